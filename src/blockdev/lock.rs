//! The locks on an image file: an exclusive `flock` for whoever writes it
//! (a command, or the FUSE server of a mounted filesystem, which holds it
//! for as long as the filesystem is mounted), a shared one for a reader
//! that must not see it change.
//!
//! Taken with a bounded wait: tried without blocking, then waited for (as
//! the kernel's queued waiter) for up to [`wait_limit`] (10 s, or
//! `EBSIM_LOCK_WAIT` seconds).
//! A holder that keeps the image longer (an `ebsim shell` whose guest has
//! the filesystem mounted) makes the opener fail with [`Error::Busy`],
//! naming the process that holds it (from `/proc/locks`), instead of
//! waiting without end.

use super::Error;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable that sets how long an opener waits for an
/// image's lock, in seconds (a decimal number; 0: do not wait).
pub const WAIT_ENV: &str = "EBSIM_LOCK_WAIT";

/// How long an opener waits for an image's lock without `EBSIM_LOCK_WAIT`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// How long an opener waits for an image's lock: `EBSIM_LOCK_WAIT` when it
/// holds a number of seconds, [`DEFAULT_WAIT`] otherwise.
pub fn wait_limit() -> Duration {
    std::env::var(WAIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_WAIT)
}

/// How an image is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One writer, no reader holding a shared lock.
    Exclusive,
    /// Readers that keep writers out.
    Shared,
}

/// Locks `file` (the image at `path`), waiting up to [`wait_limit`].
pub fn lock(file: File, path: &Path, kind: Kind) -> Result<Flock<File>, Error> {
    lock_within(file, path, kind, wait_limit())
}

impl Kind {
    /// The `flock` operation: blocking, or failing at once with
    /// `EWOULDBLOCK` while another process holds a lock that excludes it.
    fn arg(self, block: bool) -> FlockArg {
        match (self, block) {
            (Kind::Exclusive, true) => FlockArg::LockExclusive,
            (Kind::Exclusive, false) => FlockArg::LockExclusiveNonblock,
            (Kind::Shared, true) => FlockArg::LockShared,
            (Kind::Shared, false) => FlockArg::LockSharedNonblock,
        }
    }
}

/// `flock`, made again when a signal interrupts it.
fn flock(file: File, arg: FlockArg) -> Result<Flock<File>, (File, Errno)> {
    let mut file = file;
    loop {
        match Flock::lock(file, arg) {
            Err((back, Errno::EINTR)) => file = back,
            other => return other,
        }
    }
}

/// Locks `file` without waiting: `Ok(Err(file))` when another process
/// holds a lock that excludes this one.
pub fn try_lock(file: File, path: &Path, kind: Kind) -> Result<Result<Flock<File>, File>, Error> {
    match flock(file, kind.arg(false)) {
        Ok(l) => Ok(Ok(l)),
        Err((f, Errno::EWOULDBLOCK)) => Ok(Err(f)),
        Err((_, e)) => Err(Error::io(path, "flock", e.into())),
    }
}

/// Locks `file` (the image at `path`), waiting up to `limit`.
///
/// The wait is a blocking `flock` on a duplicate of the descriptor, made
/// by a thread of its own, so that the kernel queues it as a waiter (it
/// shows in `/proc/locks`) and it is granted the moment the holder lets
/// go. When `limit` passes first, the thread is left waiting; if it is
/// granted the lock later, nobody takes it and it lets go at once.
pub fn lock_within(
    file: File,
    path: &Path,
    kind: Kind,
    limit: Duration,
) -> Result<Flock<File>, Error> {
    let t0 = Instant::now();
    let file = match try_lock(file, path, kind)? {
        Ok(l) => return Ok(l),
        Err(f) => f,
    };
    let busy = |file: &File| Error::Busy {
        path: path.to_path_buf(),
        holder: holder(file),
        waited: t0.elapsed(),
    };
    if limit.is_zero() {
        return Err(busy(&file));
    }
    let waiter = file.try_clone().map_err(|e| Error::io(path, "dup", e))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let got = flock(waiter, kind.arg(true)).map_err(|(_, e)| e);
        // A send that fails drops the lock: the opener gave up.
        let _ = tx.send(got);
    });
    match rx.recv_timeout(limit) {
        Ok(got) => {
            // Gone before this returns: a process that goes on to make
            // namespaces (`ebsim shell`) must be single-threaded again.
            let _ = thread.join();
            got.map_err(|e| Error::io(path, "flock", e.into()))
        }
        Err(_) => Err(busy(&file)),
    }
}

/// Who holds a lock on `file`: "process PID (COMMAND LINE)", from the
/// kernel's table of locks; None when it cannot be told.
pub fn holder(file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = holder_pid(&table, meta.dev(), meta.ino())?;
    let command = command_line(pid);
    let mut who = if command.is_empty() {
        format!("process {pid}")
    } else {
        format!("process {pid} ({command})")
    };
    // ebsim's hidden helpers (a guest's init, which serves its mounted
    // filesystems) are better known by the command that started them.
    if command
        .split(' ')
        .nth(1)
        .is_some_and(|w| w.starts_with("__"))
    {
        if let Some(parent) = parent_pid(pid) {
            let started_by = command_line(parent);
            if !started_by.is_empty() {
                who.push_str(&format!(", started by process {parent} ({started_by})"));
            }
        }
    }
    Some(who)
}

/// A process's command line, its words joined by spaces (at most 80
/// characters); empty when it cannot be read.
fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let line = words.join(" ");
    if line.chars().count() > 80 {
        line.chars().take(77).collect::<String>() + "..."
    } else {
        line
    }
}

/// A process's parent, from `/proc/PID/status`.
fn parent_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|&p| p != 0)
}

/// A wait as the busy error states it: tenths of a second below 10 s.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

/// The process of the first granted `flock` in `/proc/locks` text on the
/// file `dev`/`ino`. A line reads `ID: FLOCK ADVISORY WRITE PID MAJ:MIN:INO
/// START END` (major and minor in hex, the inode in decimal); a waiter's
/// line has `->` after the id and is skipped. PID 0 (a holder outside this
/// PID namespace) tells nothing.
fn holder_pid(table: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    table.lines().find_map(|line| {
        let mut f = line.split_whitespace().skip(1);
        let kind = f.next()?;
        if kind != "FLOCK" {
            return None;
        }
        let pid: u32 = f.nth(2)?.parse().ok()?;
        let mut id = f.next()?.split(':');
        let maj = u64::from_str_radix(id.next()?, 16).ok()?;
        let min = u64::from_str_radix(id.next()?, 16).ok()?;
        let i: u64 = id.next()?.parse().ok()?;
        (maj == major && min == minor && i == ino && pid != 0).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_pid_reads_granted_flocks_only() {
        let dev = nix::sys::stat::makedev(0xfd, 0x01);
        let table = "\
1: POSIX  ADVISORY  WRITE 77 fd:01:42 0 EOF
2: FLOCK  ADVISORY  WRITE 1234 fd:01:42 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 fd:01:42 0 EOF
3: FLOCK  ADVISORY  READ 55 fd:01:43 0 EOF
";
        assert_eq!(holder_pid(table, dev, 42), Some(1234));
        assert_eq!(holder_pid(table, dev, 43), Some(55));
        assert_eq!(holder_pid(table, dev, 44), None);
        assert_eq!(holder_pid(table, nix::sys::stat::makedev(8, 1), 42), None);
        assert_eq!(holder_pid("garbage\n1:\n", dev, 42), None);
    }

    #[test]
    fn a_held_lock_is_waited_for_then_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, b"x").unwrap();
        let held = lock(File::open(&p).unwrap(), &p, Kind::Exclusive).unwrap();
        // Another open file description conflicts even in this process.
        let t0 = Instant::now();
        let e = lock_within(
            File::open(&p).unwrap(),
            &p,
            Kind::Shared,
            Duration::from_millis(120),
        )
        .unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(120));
        let msg = e.to_string();
        let me = format!("process {}", std::process::id());
        assert!(msg.contains(&me), "{msg}");
        assert!(matches!(e, Error::Busy { .. }), "{e:?}");
        drop(held);
        lock_within(File::open(&p).unwrap(), &p, Kind::Shared, Duration::ZERO).unwrap();
    }

    #[test]
    fn a_lock_let_go_while_waited_for_is_granted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, b"x").unwrap();
        let held = lock(File::open(&p).unwrap(), &p, Kind::Exclusive).unwrap();
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let t0 = Instant::now();
        let got = lock_within(
            File::open(&p).unwrap(),
            &p,
            Kind::Exclusive,
            Duration::from_secs(20),
        );
        assert!(got.is_ok(), "{got:?}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        letting_go.join().unwrap();
    }
}
