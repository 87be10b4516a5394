//! `aws ec2 wait WAITER`: botocore's waiters (waiters-2.json) over the
//! describe operations. The first poll is immediate; then each poll is
//! 15 virtual seconds later: in manual clock mode the waiter moves the
//! clock itself, otherwise it sleeps 15 s divided by the clock's speed.

use super::args::{self, Args, P};
use super::ops::{self, Fail};
use super::query::Query;
use ebsim::ec2::wire::json::J;
use ebsim::ec2::{ClockMode, Ec2};

/// How an acceptor matches.
#[derive(Clone, Copy)]
enum Matcher {
    /// Every element of the path equals the value (non-empty list).
    All(&'static str),
    /// Some element equals the value.
    Any(&'static str),
    /// The call failed with this error code.
    Error(&'static str),
    /// The path's value is `true` (botocore's `path` matcher, expected
    /// `true`).
    IsTrue,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Success,
    Failure,
    Retry,
}

/// One waiter.
pub struct Waiter {
    /// CLI name.
    pub name: &'static str,
    /// botocore name, for messages.
    api: &'static str,
    /// The describe operation it polls.
    op: &'static str,
    /// The JMESPath of the acceptors.
    path: &'static str,
    acceptors: &'static [(Matcher, Then)],
    /// Virtual milliseconds between polls.
    delay_ms: i64,
}

const VOL: &str = "Volumes[].State";
const INST: &str = "Reservations[].Instances[].State.Name";

/// The waiters.
pub const WAITERS: &[Waiter] = &[
    Waiter {
        name: "image-available",
        api: "ImageAvailable",
        op: "describe-images",
        path: "Images[].State",
        acceptors: &[
            (Matcher::All("available"), Then::Success),
            (Matcher::Any("failed"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "image-exists",
        api: "ImageExists",
        op: "describe-images",
        path: "length(Images[]) > `0`",
        acceptors: &[
            (Matcher::IsTrue, Then::Success),
            (Matcher::Error("InvalidAMIID.NotFound"), Then::Retry),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "instance-exists",
        api: "InstanceExists",
        op: "describe-instances",
        path: "length(Reservations[]) > `0`",
        acceptors: &[
            (Matcher::IsTrue, Then::Success),
            (Matcher::Error("InvalidInstanceID.NotFound"), Then::Retry),
        ],
        delay_ms: 5_000,
    },
    Waiter {
        name: "instance-running",
        api: "InstanceRunning",
        op: "describe-instances",
        path: INST,
        acceptors: &[
            (Matcher::All("running"), Then::Success),
            (Matcher::Any("shutting-down"), Then::Failure),
            (Matcher::Any("terminated"), Then::Failure),
            (Matcher::Any("stopping"), Then::Failure),
            (Matcher::Error("InvalidInstanceID.NotFound"), Then::Retry),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "instance-status-ok",
        api: "InstanceStatusOk",
        op: "describe-instance-status",
        path: "InstanceStatuses[].InstanceStatus.Status",
        acceptors: &[
            (Matcher::All("ok"), Then::Success),
            (Matcher::Error("InvalidInstanceID.NotFound"), Then::Retry),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "instance-stopped",
        api: "InstanceStopped",
        op: "describe-instances",
        path: INST,
        acceptors: &[
            (Matcher::All("stopped"), Then::Success),
            (Matcher::Any("pending"), Then::Failure),
            (Matcher::Any("terminated"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "instance-terminated",
        api: "InstanceTerminated",
        op: "describe-instances",
        path: INST,
        acceptors: &[
            (Matcher::All("terminated"), Then::Success),
            (Matcher::Any("pending"), Then::Failure),
            (Matcher::Any("stopping"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "snapshot-completed",
        api: "SnapshotCompleted",
        op: "describe-snapshots",
        path: "Snapshots[].State",
        acceptors: &[
            (Matcher::All("completed"), Then::Success),
            (Matcher::Any("error"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "system-status-ok",
        api: "SystemStatusOk",
        op: "describe-instance-status",
        path: "InstanceStatuses[].SystemStatus.Status",
        acceptors: &[(Matcher::All("ok"), Then::Success)],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "volume-available",
        api: "VolumeAvailable",
        op: "describe-volumes",
        path: VOL,
        acceptors: &[
            (Matcher::All("available"), Then::Success),
            (Matcher::Any("deleted"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "volume-deleted",
        api: "VolumeDeleted",
        op: "describe-volumes",
        path: VOL,
        acceptors: &[
            (Matcher::All("deleted"), Then::Success),
            (Matcher::Error("InvalidVolume.NotFound"), Then::Success),
        ],
        delay_ms: DELAY_MS,
    },
    Waiter {
        name: "volume-in-use",
        api: "VolumeInUse",
        op: "describe-volumes",
        path: VOL,
        acceptors: &[
            (Matcher::All("in-use"), Then::Success),
            (Matcher::Any("deleted"), Then::Failure),
        ],
        delay_ms: DELAY_MS,
    },
];

/// The usual delay between polls (botocore: 15 s, 5 s for instance-exists)
/// and the attempts (40 for all of these).
const DELAY_MS: i64 = 15_000;
const MAX_ATTEMPTS: u32 = 40;

/// The waiter named `name`.
pub fn find(name: &str) -> Option<&'static Waiter> {
    WAITERS.iter().find(|w| w.name == name)
}

/// Its parameters: those of the describe operation it polls.
pub fn params(w: &Waiter) -> &'static [P] {
    ops::find(w.op).map(|o| o.params).unwrap_or(&[])
}

/// The outcome: Ok(()) when the waiter succeeded; Err(message, exit) else.
pub fn run(ec2: &Ec2, w: &Waiter, a: &Args) -> Result<(), Fail> {
    let Some(op) = ops::find(w.op) else {
        return Err(Fail::Query(format!("no operation {}", w.op)));
    };
    let path = Query::compile(w.path).map_err(Fail::Query)?;
    let fail = |reason: String| Fail::Waiter { api: w.api, reason };
    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = match op.run(ec2, a) {
            Ok(resp) => {
                let doc = resp.unwrap_or(J::Obj(Vec::new()));
                let got = path.search(&doc).map_err(Fail::Query)?;
                let items: Vec<String> = match &got {
                    J::Arr(a) => a
                        .iter()
                        .map(|x| match x {
                            J::Str(s) => s.clone(),
                            other => other.to_pretty(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let mut decided = None;
                for (m, then) in w.acceptors {
                    let hit = match m {
                        Matcher::All(v) => !items.is_empty() && items.iter().all(|x| x == v),
                        Matcher::Any(v) => items.iter().any(|x| x == v),
                        Matcher::IsTrue => got == J::Bool(true),
                        Matcher::Error(_) => false,
                    };
                    if hit {
                        decided = Some((*m, *then));
                        break;
                    }
                }
                decided
            }
            Err(Fail::Api(e)) => {
                let acc = w
                    .acceptors
                    .iter()
                    .find(|(m, _)| matches!(m, Matcher::Error(code) if *code == e.code));
                match acc {
                    Some((m, then)) => Some((*m, *then)),
                    None => {
                        return Err(fail(format!(
                            "An error occurred ({}): {}",
                            e.code, e.message
                        )));
                    }
                }
            }
            Err(other) => return Err(other),
        };
        match outcome {
            Some((_, Then::Success)) => return Ok(()),
            Some((Matcher::Any(v) | Matcher::All(v), Then::Failure)) => {
                return Err(fail(format!(
                    "Waiter encountered a terminal failure state: For expression \"{}\" we matched expected path: \"{v}\" at least once",
                    w.path
                )));
            }
            _ => {}
        }
        if attempt == MAX_ATTEMPTS {
            break;
        }
        match ec2.mode() {
            ClockMode::Manual => {
                ec2.transact(|t| t.advance(w.delay_ms))?;
            }
            ClockMode::Running { speed } => {
                let ms = u64::try_from(w.delay_ms).unwrap_or(15_000) / u64::from(speed.max(1));
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
    Err(fail("Max attempts exceeded".to_string()))
}

/// Parses a waiter's arguments.
pub fn parse(w: &Waiter, words: &[String]) -> Result<Args, args::ArgError> {
    args::parse(params(w), words)
}
