//! What every file command shares: the guest session (instance, VFS,
//! user, clock), stdout with coreutils' write-error rule, errno wording and
//! the host devices a guest path may name.

use super::users::Users;
use super::{CWD_ENV, USER_ENV};
use crate::cli::error::AppletError;
use ebsim::blockdev::image::Access;
use ebsim::ec2::DEFAULT_REGION;
use ebsim::ec2::model::InstanceState;
use ebsim::fs::node::{ErrorKind, NodeError, Timespec};
use ebsim::guest::instance;
use ebsim::guest::vfs::{Creds, InstanceVfs, Vfs};
use std::io::Write;

/// The guest's default user: uid and gid 1000.
pub const DEFAULT_UID: u32 = 1000;

/// One command's view of the instance.
pub struct Session {
    /// The VFS.
    pub vfs: Vfs,
    /// Names of users and groups (read from the guest when first needed).
    pub users: Users,
}

/// Whether the messages' locale is UTF-8, as `LC_ALL`, `LC_MESSAGES` then
/// `LANG` say (the first one set); the C locale when none is.
pub fn utf8_locale() -> bool {
    for v in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(s) = std::env::var(v) {
            if s.is_empty() {
                continue;
            }
            let l = s.to_ascii_lowercase();
            return l.contains("utf-8") || l.contains("utf8");
        }
    }
    false
}

/// The calling process's umask.
pub fn process_umask() -> u16 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    (old.bits() & 0o777) as u16
}

/// Opens the current instance's VFS for `prog` (`write`: the command may
/// change files; the images it reaches are then held under their
/// exclusive locks). Err: the message to print (`PROG: why`).
pub fn session(prog: &str, write: bool) -> Result<Session, String> {
    let fail = |why: String| format!("{prog}: {why}\n");
    let ec2 = crate::cli::env::ec2(DEFAULT_REGION).map_err(|e| fail(e.to_string()))?;
    let wanted = crate::cli::env::instance();
    // The state's transaction ends before any image is opened.
    let (disks, mounts, flavour, now) = ec2
        .transact(|txn| {
            let id = txn.resolve_instance(wanted.as_deref())?;
            let inst = txn.instance(&id)?.clone();
            if inst.state != InstanceState::Running {
                return Err(ebsim::ec2::ApiError::new(
                    "IncorrectInstanceState",
                    format!(
                        "instance {id} is not running (it is {}); guest commands run only in a running instance",
                        inst.state.as_str()
                    ),
                )
                .into());
            }
            let disks = instance::disks(txn, &id)?;
            Ok((disks, inst.mounts.clone(), inst.flavour.clone(), txn.now()))
        })
        .map_err(|e| fail(e.to_string().trim().to_string()))?;
    let default_user = match flavour.as_deref() {
        Some(f) if f.starts_with("ubuntu") => "ubuntu",
        Some(f) if f.starts_with("centos") => "centos",
        _ => "ec2-user",
    }
    .to_string();
    let creds = match std::env::var(USER_ENV).ok().as_deref() {
        Some("root") => Creds::root(),
        _ => Creds::user(DEFAULT_UID, DEFAULT_UID, Vec::new()),
    };
    let cwd = std::env::var_os(CWD_ENV)
        .map(|c| std::os::unix::ffi::OsStrExt::as_bytes(c.as_os_str()).to_vec())
        .filter(|c| c.starts_with(b"/"))
        .unwrap_or_else(|| format!("/home/{default_user}").into_bytes());
    let ms = now.0;
    let now = Timespec {
        sec: ms.div_euclid(1000),
        nsec: (ms.rem_euclid(1000) * 1_000_000) as u32,
    };
    let access = if write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let vfs = InstanceVfs::build(&disks, &mounts, access, creds, process_umask(), &cwd, now);
    Ok(Session {
        vfs,
        users: Users::new(&default_user),
    })
}

/// Starts a session; `Err`: why not (`PROG: why`, status 1).
pub fn start(prog: &str, write: bool) -> Result<Session, AppletError> {
    session(prog, write).map_err(|m| AppletError::new(1, m))
}

/// The C library's words for an error, and for ebsim's own refusals
/// (a feature it does not write, damage, an I/O failure) what exactly.
pub fn strerror(e: &NodeError) -> String {
    match e.kind() {
        ErrorKind::Unsupported | ErrorKind::Corrupt | ErrorKind::Io => e.to_string(),
        k => k.message().to_string(),
    }
}

/// The wording of a host I/O error (`strerror`).
pub fn io_strerror(e: &std::io::Error) -> String {
    crate::cli::output::strerror(e)
}

/// The host devices a guest command may use as a source or sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostDev {
    /// `/dev/null`
    Null,
    /// `/dev/zero`
    Zero,
    /// `/dev/urandom` or `/dev/random`
    Random,
    /// `/dev/full`
    Full,
    /// `-`, `/dev/stdin`
    Stdin,
    /// `-` as an output, `/dev/stdout`
    Stdout,
    /// `/dev/stderr`
    Stderr,
}

impl HostDev {
    /// The host device `path` names, if it is one a guest may use (`-` is
    /// not: its meaning depends on the command).
    pub fn of(path: &[u8]) -> Option<HostDev> {
        Some(match path {
            b"/dev/null" => HostDev::Null,
            b"/dev/zero" => HostDev::Zero,
            b"/dev/urandom" | b"/dev/random" => HostDev::Random,
            b"/dev/full" => HostDev::Full,
            b"/dev/stdin" | b"/dev/fd/0" => HostDev::Stdin,
            b"/dev/stdout" | b"/dev/fd/1" => HostDev::Stdout,
            b"/dev/stderr" | b"/dev/fd/2" => HostDev::Stderr,
            _ => return None,
        })
    }

    /// Reads from it into `buf` (stdin and the host devices).
    pub fn read(self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Read;
        match self {
            HostDev::Null => Ok(0),
            HostDev::Zero | HostDev::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            HostDev::Stdin => std::io::stdin().lock().read(buf),
            HostDev::Random => std::fs::File::open("/dev/urandom")?.read(buf),
            HostDev::Stdout | HostDev::Stderr => {
                Err(std::io::Error::from_raw_os_error(nix::libc::EBADF))
            }
        }
    }

    /// Writes all of `data` to it.
    pub fn write_all(self, data: &[u8]) -> std::io::Result<()> {
        match self {
            HostDev::Null | HostDev::Zero | HostDev::Random => Ok(()),
            HostDev::Full => Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC)),
            HostDev::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(data)?;
                o.flush()
            }
            HostDev::Stderr => std::io::stderr().lock().write_all(data),
            HostDev::Stdin => Err(std::io::Error::from_raw_os_error(nix::libc::EBADF)),
        }
    }
}

/// stdout for a command's output, buffered here and written through
/// [`crate::cli::output`], whose `close_stdout` reports a failed write as
/// coreutils does (`PROG: write error: REASON`, status 1) when the applet
/// ends; a closed pipe ends the output quietly.
pub struct Stdout {
    buf: Vec<u8>,
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Stdout {
    /// Buffered stdout.
    pub fn new() -> Stdout {
        Stdout {
            buf: Vec::with_capacity(64 << 10),
        }
    }

    /// Writes bytes (dropped after a failure).
    pub fn bytes(&mut self, b: &[u8]) {
        if self.failed() {
            return;
        }
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 << 10 {
            self.flush();
        }
    }

    /// Writes text.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Flushes now (before a message on stderr that must come after).
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            crate::cli::output::out_bytes(&self.buf);
            self.buf.clear();
        }
    }

    /// True once a write failed.
    pub fn failed(&self) -> bool {
        crate::cli::output::stdout_failed()
    }

    /// Flushes; the status to return (the dispatcher reports a failed
    /// write).
    pub fn finish(mut self, _prog: &str, code: i32) -> i32 {
        self.flush();
        code
    }
}

/// Arguments as bytes (file names need not be UTF-8).
pub fn arg_bytes(args: &[std::ffi::OsString]) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// `"Try 'PROG --help' for more information.\n"`.
/// The quotation marks of coreutils' messages around an option name or
/// a valid argument: ‘ ’ in a UTF-8 locale, ' ' otherwise.
pub fn quote_marks(utf8: bool) -> (&'static str, &'static str) {
    if utf8 {
        ("\u{2018}", "\u{2019}")
    } else {
        ("'", "'")
    }
}

pub fn try_help(prog: &str) -> String {
    format!("Try '{prog} --help' for more information.\n")
}

/// Syncs the session's changes: `code` when they are written, else the
/// failure as `PROG: why`, status 1.
pub fn sync(prog: &str, s: &mut Session, code: i32) -> Result<i32, AppletError> {
    s.vfs
        .sync()
        .map(|()| code)
        .map_err(|e| AppletError::new(1, format!("{prog}: {}\n", strerror(&e))))
}
