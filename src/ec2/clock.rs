//! The virtual clock every timed state change runs on.
//!
//! The state document keeps an anchor: the virtual time at some real
//! moment. The virtual now is the anchor plus the real time elapsed since,
//! times the speed of the process's clock mode (`EBSIM_CLOCK`):
//!
//! - `fast` (the default): 10 virtual seconds per real second, so the
//!   30-second `modifying` phase of a resize lasts 3 real seconds and its
//!   `optimizing` phase at least 6;
//! - `realtime`: 1:1, durations as on AWS;
//! - `Nx` (e.g. `600x`): N virtual seconds per real second;
//! - `manual`: frozen; only `ebsim clock advance` (and the waiters) move it.
//!
//! Each write of the state re-anchors at (virtual now, real now), so a
//! process that switches modes continues from where the clock stood.

use super::error::{Error, Result};
use super::time::Millis;
use serde::{Deserialize, Serialize};

/// The environment variable selecting the clock mode.
pub const CLOCK_ENV: &str = "EBSIM_CLOCK";
/// Speed of the default `fast` mode: virtual seconds per real second.
pub const FAST_SPEED: u32 = 10;

/// How this process sees the clock move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Frozen: virtual time moves only when advanced explicitly.
    Manual,
    /// Runs at `speed` virtual seconds per real second.
    Running {
        /// Virtual seconds per real second (at least 1).
        speed: u32,
    },
}

impl ClockMode {
    /// The mode `EBSIM_CLOCK` sets (its value, read by the caller; unset
    /// is `fast`).
    pub fn from_setting(value: Option<&str>) -> Result<ClockMode> {
        match value {
            Some(v) => Self::parse(v).ok_or_else(|| Error::BadSetting {
                var: CLOCK_ENV.to_string(),
                value: v.to_string(),
                reason: "expected manual, fast, realtime or a speed such as 600x".to_string(),
            }),
            None => Ok(ClockMode::Running { speed: FAST_SPEED }),
        }
    }

    /// Parses a mode name.
    pub fn parse(v: &str) -> Option<ClockMode> {
        match v.trim() {
            "" | "fast" => Some(ClockMode::Running { speed: FAST_SPEED }),
            "manual" | "frozen" => Some(ClockMode::Manual),
            "realtime" | "real" => Some(ClockMode::Running { speed: 1 }),
            other => {
                let n: u32 = other.strip_suffix('x').unwrap_or(other).parse().ok()?;
                (n >= 1).then_some(ClockMode::Running { speed: n })
            }
        }
    }

    /// A description for `ebsim clock`.
    pub fn describe(&self) -> String {
        match self {
            ClockMode::Manual => {
                "manual (frozen; moves only with `ebsim clock advance` and `aws ec2 wait`)"
                    .to_string()
            }
            ClockMode::Running { speed: 1 } => {
                "realtime (1 virtual second per real second)".to_string()
            }
            ClockMode::Running { speed } if *speed == FAST_SPEED => {
                format!("fast ({speed} virtual seconds per real second)")
            }
            ClockMode::Running { speed } => {
                format!("{speed}x ({speed} virtual seconds per real second)")
            }
        }
    }
}

/// The clock's anchor, kept in the state document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockState {
    /// Virtual time at the anchor.
    pub virtual_ms: Millis,
    /// Real time (ms since the epoch) at the anchor.
    pub real_ms: i64,
}

impl ClockState {
    /// A clock starting now at the real time.
    pub fn starting_at(real_ms: i64) -> ClockState {
        ClockState {
            virtual_ms: Millis(real_ms),
            real_ms,
        }
    }

    /// The virtual now for a process in `mode` at real time `real_ms`.
    /// Never earlier than the anchor, never later than
    /// [`super::time::LATEST`] (a document an older ebsim advanced past it
    /// reads as that instant, and `ebsim clock reset` brings it back).
    pub fn now(&self, mode: ClockMode, real_ms: i64) -> Millis {
        let t = match mode {
            ClockMode::Manual => self.virtual_ms,
            ClockMode::Running { speed } => {
                let elapsed = real_ms.saturating_sub(self.real_ms).max(0);
                self.virtual_ms
                    .plus(elapsed.saturating_mul(i64::from(speed)))
            }
        };
        t.min(super::time::LATEST)
    }
}

/// The real time in milliseconds since the epoch.
pub fn real_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(ClockMode::parse("manual"), Some(ClockMode::Manual));
        assert_eq!(
            ClockMode::parse("fast"),
            Some(ClockMode::Running { speed: FAST_SPEED })
        );
        assert_eq!(
            ClockMode::parse("600x"),
            Some(ClockMode::Running { speed: 600 })
        );
        assert_eq!(ClockMode::parse("0x"), None);
        assert_eq!(ClockMode::parse("soon"), None);
    }

    #[test]
    fn running_clock_scales_real_time() {
        let c = ClockState {
            virtual_ms: Millis(1_000),
            real_ms: 10_000,
        };
        assert_eq!(c.now(ClockMode::Manual, 20_000), Millis(1_000));
        assert_eq!(
            c.now(ClockMode::Running { speed: 60 }, 11_000),
            Millis(61_000)
        );
        // A real clock stepping back never moves virtual time back.
        assert_eq!(
            c.now(ClockMode::Running { speed: 60 }, 5_000),
            Millis(1_000)
        );
    }
}
