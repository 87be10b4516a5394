//! Checkpoints of the whole state (`EBSIM_HOME`: the state document, the
//! volume images with their undo logs, the snapshots, the command logs),
//! saved and restored by name under `EBSIM_HOME/teach/checkpoints/NAME`.
//!
//! Cheap on sparse images: a file is copied extent by extent, the data
//! ranges found with `SEEK_DATA`/`SEEK_HOLE` and moved with
//! `copy_file_range`, which shares the blocks (a reflink) on filesystems
//! that can (XFS with reflink, btrfs) and copies them in the kernel
//! elsewhere; holes stay holes and no zero is ever written. Snapshot
//! chunks never change once written (their name is their SHA-256), so
//! they are hard-linked.
//!
//! Crash-safe: a save is built under a staging name and renamed into
//! place once every file and directory in it is fsynced. A restore is
//! first staged the same way, then a marker (`teach/restore.pending`) is
//! made durable, then, under the state lock, the state document is moved
//! aside first (from then on every other command refuses the home as
//! "state missing" instead of reading a half-restored one), the snapshot
//! and volume directories are swapped, and the restored state document is
//! renamed in last. Every step checks what is already done, so a restore
//! cut short is finished by the next checkpoint or lab command
//! ([`recover`]).
//!
//! Consistent: besides the state lock, a save and the swap of a restore
//! hold every volume image's own lock (the exclusive `flock` a writing
//! command or a FUSE server holds on the image file, or on a segmented
//! image's directory), so no image is copied or replaced while something
//! writes it. The locks are tried, never waited on while the state lock
//! is held: when one is taken, everything is let go and tried again every
//! 100 ms, up to a limit ([`LOCK_WAIT`]), then the checkpoint fails naming
//! the image (a served filesystem keeps its image locked as long as the
//! shell that mounted it runs).

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Whence, lseek};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Errors of checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The name is not `[A-Za-z0-9._-]`, 1 to 64 characters, not starting
    /// with a dot.
    #[error(
        "invalid checkpoint name {0:?} (letters, digits, '.', '_', '-'; not starting with '.')"
    )]
    BadName(String),
    /// No checkpoint of that name.
    #[error("no checkpoint named {0:?} (see `ebsim checkpoint list`)")]
    NotFound(String),
    /// There is no state to save.
    #[error("{0}: no ebsim state here to save")]
    NoState(PathBuf),
    /// A volume image stayed locked by another process (a FUSE server of
    /// a running `ebsim shell`, or a command writing it).
    #[error(
        "{0}: the image is in use by another ebsim process (a filesystem served by a running `ebsim shell`, or a command writing it): end it and try again"
    )]
    Busy(PathBuf),
    /// A file operation failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// The durable steps of this process's checkpoint work so far (files
/// copied, the marker, each rename and removal of a restore), for the
/// crash tests' fault hook.
static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A step is done: with `EBSIM_FAULT_AFTER_WRITES=K` (the image layer's
/// fault hook, [`crate::blockdev::image::FAULT_ENV`]) the step after the
/// K-th fails as a crash there would leave things (nothing is cleaned up),
/// so the tests can stop a restore between any two of its steps.
fn step(path: &Path) -> Result<()> {
    let n = STEPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let limit = std::env::var(crate::blockdev::image::FAULT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    match limit {
        Some(k) if n > k => Err(CheckpointError::Io {
            path: path.to_path_buf(),
            what: "injected fault",
            source: std::io::Error::other(format!("fault after {k} steps")),
        }),
        _ => Ok(()),
    }
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io { path, what, source }
}

fn nix_io(path: &Path, what: &'static str) -> impl FnOnce(nix::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |e| CheckpointError::Io {
        path,
        what,
        source: std::io::Error::from(e),
    }
}

/// Checks a checkpoint name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CheckpointError::BadName(name.to_string()))
    }
}

/// Where the checkpoints live.
pub fn dir(home: &Path) -> PathBuf {
    home.join("teach").join("checkpoints")
}

fn marker(home: &Path) -> PathBuf {
    home.join("teach").join("restore.pending")
}

fn restore_staging(home: &Path) -> PathBuf {
    home.join("teach").join("restore.staging")
}

fn restore_old(home: &Path) -> PathBuf {
    home.join("teach").join("restore.old")
}

/// Takes the state's lock (the same `flock` every command takes), without
/// reading the document (which a cut-short restore may have moved).
fn lock(home: &Path) -> Result<Flock<File>> {
    let p = home.join("state.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io(&p, "open"))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| nix_io(&p, "flock")(e))
}

/// How long a checkpoint waits for the volume images' locks.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The state lock and every volume image's lock, held together.
struct Locks {
    _images: Vec<Flock<File>>,
    _state: Flock<File>,
}

/// The volume images under `home/volumes` (files and segmented
/// directories named `*.img`).
fn images(home: &Path) -> Result<Vec<PathBuf>> {
    let d = home.join("volumes");
    let rd = match std::fs::read_dir(&d) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&d, "read directory")(e)),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(io(&d, "read directory"))?;
        if e.file_name().to_string_lossy().ends_with(".img") {
            v.push(e.path());
        }
    }
    v.sort();
    Ok(v)
}

/// Takes the state lock, then tries every image's lock; when one is held
/// elsewhere, lets all go and tries again, for up to `wait`.
fn lock_all(home: &Path, wait: std::time::Duration) -> Result<Locks> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let state = lock(home)?;
        let mut held = Vec::new();
        let mut busy = None;
        for p in images(home)? {
            let f = match File::open(&p) {
                Ok(f) => f,
                // Deleted since it was listed (a volume deleted before
                // this command took the state lock).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&p, "open")(e)),
            };
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => held.push(l),
                Err((_, nix::Error::EWOULDBLOCK)) => {
                    busy = Some(p);
                    break;
                }
                Err((_, e)) => return Err(nix_io(&p, "flock")(e)),
            }
        }
        let Some(p) = busy else {
            return Ok(Locks {
                _images: held,
                _state: state,
            });
        };
        drop(held);
        drop(state);
        if std::time::Instant::now() >= deadline {
            return Err(CheckpointError::Busy(p));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn sync_dir(d: &Path) -> Result<()> {
    File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(io(d, "fsync"))
}

/// Copies `src` to a new file `dst` keeping its holes: only the data
/// ranges are copied (shared where the filesystem can), and the length is
/// set, never written. Returns the bytes of data copied.
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<u64> {
    let mut from = File::open(src).map_err(io(src, "open"))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(io(dst, "create"))?;
    let len = from.metadata().map_err(io(src, "stat"))?.len();
    to.set_len(len).map_err(io(dst, "truncate"))?;
    let ilen = i64::try_from(len).unwrap_or(i64::MAX);
    let mut pos: i64 = 0;
    let mut copied = 0u64;
    while pos < ilen {
        let start = match lseek(&from, pos, Whence::SeekData) {
            Ok(s) => s,
            Err(nix::Error::ENXIO) => break,
            Err(e) => return Err(nix_io(src, "SEEK_DATA")(e)),
        };
        let end = lseek(&from, start, Whence::SeekHole).map_err(nix_io(src, "SEEK_HOLE"))?;
        copy_range(&mut from, &mut to, src, dst, start, end)?;
        copied += u64::try_from(end - start).unwrap_or(0);
        pos = end;
    }
    to.sync_all().map_err(io(dst, "fsync"))?;
    Ok(copied)
}

fn copy_range(
    from: &mut File,
    to: &mut File,
    src: &Path,
    dst: &Path,
    start: i64,
    end: i64,
) -> Result<()> {
    let (mut off_in, mut off_out) = (start, start);
    while off_in < end {
        let want = usize::try_from(end - off_in)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match nix::fcntl::copy_file_range(&*from, Some(&mut off_in), &*to, Some(&mut off_out), want)
        {
            Ok(0) => break,
            Ok(_) => {}
            // Across filesystems on old kernels, or a filesystem without
            // it: copy by hand, leaving all-zero blocks as holes.
            Err(
                nix::Error::EXDEV
                | nix::Error::EINVAL
                | nix::Error::EOPNOTSUPP
                | nix::Error::ENOSYS,
            ) => {
                return copy_by_hand(from, to, src, dst, off_in, end);
            }
            Err(e) => return Err(nix_io(dst, "copy_file_range")(e)),
        }
    }
    Ok(())
}

fn copy_by_hand(
    from: &mut File,
    to: &mut File,
    src: &Path,
    dst: &Path,
    start: i64,
    end: i64,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = u64::try_from(start).unwrap_or(0);
    let end = u64::try_from(end).unwrap_or(0);
    while pos < end {
        let n = usize::try_from(end - pos)
            .unwrap_or(buf.len())
            .min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        from.seek(SeekFrom::Start(pos)).map_err(io(src, "seek"))?;
        from.read_exact(chunk).map_err(io(src, "read"))?;
        if chunk.iter().any(|&b| b != 0) {
            to.seek(SeekFrom::Start(pos)).map_err(io(dst, "seek"))?;
            to.write_all(chunk).map_err(io(dst, "write"))?;
        }
        pos += n as u64;
    }
    Ok(())
}

/// Copies the tree `src` into the new directory `dst`: regular files
/// sparse (or hard-linked when `link(path)` says so), directories
/// recursively; anything else is skipped. Every file and directory is
/// fsynced.
fn copy_tree(src: &Path, dst: &Path, link: &dyn Fn(&Path) -> bool) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(io(dst, "mkdir"))?;
    let rd = std::fs::read_dir(src).map_err(io(src, "read directory"))?;
    for e in rd {
        let e = e.map_err(io(src, "read directory"))?;
        let t = e.file_type().map_err(io(&e.path(), "stat"))?;
        let to = dst.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &to, link)?;
        } else if t.is_file() {
            step(&to)?;
            if link(&e.path()) {
                std::fs::hard_link(e.path(), &to).map_err(io(&to, "link"))?;
            } else {
                copy_sparse(&e.path(), &to)?;
            }
        }
    }
    sync_dir(dst)
}

fn is_chunk(p: &Path) -> bool {
    p.components().any(|c| c.as_os_str() == "chunks")
}

fn remove_dir_if(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(p, "remove")(e)),
    }
}

/// Copies the home's state (document, volumes, snapshots, logs) into the
/// new directory `to`.
fn copy_home(home: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io(to, "mkdir"))?;
    let state = home.join("state.json");
    if !state.exists() {
        return Err(CheckpointError::NoState(home.to_path_buf()));
    }
    copy_sparse(&state, &to.join("state.json"))?;
    for d in ["volumes", "snapshots"] {
        let src = home.join(d);
        if src.is_dir() {
            copy_tree(&src, &to.join(d), &is_chunk)?;
        }
    }
    let log = home.join("teach").join("log");
    if log.is_dir() {
        copy_tree(&log, &to.join("log"), &|_| false)?;
    }
    sync_dir(to)
}

/// Saves the whole state as `name` (replacing a checkpoint of that name),
/// waiting up to [`LOCK_WAIT`] for the images' locks.
pub fn save(home: &Path, name: &str) -> Result<()> {
    save_waiting(home, name, LOCK_WAIT)
}

/// [`save`], waiting up to `wait` for the images' locks.
pub fn save_waiting(home: &Path, name: &str, wait: std::time::Duration) -> Result<()> {
    check_name(name)?;
    recover(home)?;
    let _lock = lock_all(home, wait)?;
    let base = dir(home);
    std::fs::create_dir_all(&base).map_err(io(&base, "mkdir"))?;
    let staging = base.join(format!(".staging-{name}-{}", std::process::id()));
    remove_dir_if(&staging)?;
    if let Err(e) = copy_home(home, &staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let target = base.join(name);
    let trash = base.join(format!(".old-{name}-{}", std::process::id()));
    if target.exists() {
        std::fs::rename(&target, &trash).map_err(io(&target, "rename"))?;
    }
    std::fs::rename(&staging, &target).map_err(io(&target, "rename"))?;
    sync_dir(&base)?;
    remove_dir_if(&trash)
}

/// The checkpoints, by name (after finishing or clearing away a restore
/// cut short, as every checkpoint command does).
pub fn list(home: &Path) -> Result<Vec<String>> {
    recover(home)?;
    let base = dir(home);
    let rd = match std::fs::read_dir(&base) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&base, "read directory")(e)),
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| check_name(n).is_ok())
        .collect();
    out.sort();
    Ok(out)
}

/// Restores checkpoint `name` over the whole state, waiting up to
/// [`LOCK_WAIT`] for the images' locks.
pub fn restore(home: &Path, name: &str) -> Result<()> {
    restore_waiting(home, name, LOCK_WAIT)
}

/// [`restore`], waiting up to `wait` for the images' locks: the images
/// replaced are locked from before the marker is written until they are
/// moved aside, so none is replaced under a writer.
pub fn restore_waiting(home: &Path, name: &str, wait: std::time::Duration) -> Result<()> {
    check_name(name)?;
    recover(home)?;
    let src = dir(home).join(name);
    if !src.join("state.json").is_file() {
        return Err(CheckpointError::NotFound(name.to_string()));
    }
    let staging = restore_staging(home);
    remove_dir_if(&staging)?;
    copy_tree(&src, &staging, &is_chunk)?;
    let _lock = match lock_all(home, wait) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let m = marker(home);
    step(&m)?;
    {
        let mut f = File::create(&m).map_err(io(&m, "create"))?;
        f.write_all(name.as_bytes()).map_err(io(&m, "write"))?;
        f.sync_all().map_err(io(&m, "fsync"))?;
    }
    if let Some(parent) = m.parent() {
        sync_dir(parent)?;
    }
    roll_forward(home)
}

/// Finishes a restore that was cut short (see the module documentation);
/// nothing to do without its marker.
pub fn recover(home: &Path) -> Result<()> {
    if !marker(home).exists() {
        // A staging left by a restore that died before its marker.
        remove_dir_if(&restore_staging(home))?;
        return remove_dir_if(&restore_old(home));
    }
    let _lock = lock_all(home, LOCK_WAIT)?;
    roll_forward(home)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    step(from)?;
    std::fs::rename(from, to).map_err(io(from, "rename"))
}

fn roll_forward(home: &Path) -> Result<()> {
    let staging = restore_staging(home);
    let old = restore_old(home);
    std::fs::create_dir_all(&old).map_err(io(&old, "mkdir"))?;
    let state = home.join("state.json");
    if staging.join("state.json").exists() && state.exists() {
        rename(&state, &old.join("state.json"))?;
        sync_dir(home)?;
    }
    for d in ["snapshots", "volumes"] {
        let new = staging.join(d);
        if new.exists() {
            let cur = home.join(d);
            if cur.exists() {
                remove_dir_if(&old.join(d))?;
                rename(&cur, &old.join(d))?;
            }
            rename(&new, &cur)?;
            sync_dir(home)?;
        }
    }
    let log = home.join("teach").join("log");
    if staging.join("log").exists() {
        remove_dir_if(&log)?;
        rename(&staging.join("log"), &log)?;
    } else if staging.join("state.json").exists() {
        remove_dir_if(&log)?;
    }
    if staging.join("state.json").exists() {
        rename(&staging.join("state.json"), &state)?;
        sync_dir(home)?;
    }
    let m = marker(home);
    step(&m)?;
    std::fs::remove_file(&m).map_err(io(&m, "remove"))?;
    if let Some(parent) = m.parent() {
        sync_dir(parent)?;
    }
    remove_dir_if(&staging)?;
    remove_dir_if(&old)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("before-grow_1.0").is_ok());
        for bad in ["", ".x", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sparse_copy_keeps_holes_and_bytes() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a");
        {
            let mut f = File::create(&src).unwrap();
            f.set_len(64 << 20).unwrap();
            f.seek(SeekFrom::Start(8 << 20)).unwrap();
            f.write_all(&[7u8; 4096]).unwrap();
            f.seek(SeekFrom::Start((64 << 20) - 4096)).unwrap();
            f.write_all(&[9u8; 4096]).unwrap();
        }
        let dst = d.path().join("b");
        copy_sparse(&src, &dst).unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&dst).unwrap().blocks() * 512;
        assert!(blocks < 4 << 20, "{blocks} bytes allocated");
    }

    #[test]
    fn save_and_restore_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path();
        std::fs::create_dir_all(h.join("volumes")).unwrap();
        std::fs::write(h.join("state.json"), b"{\"v\":1}").unwrap();
        std::fs::write(h.join("volumes/vol-1.img"), b"one").unwrap();
        save(h, "a").unwrap();
        std::fs::write(h.join("state.json"), b"{\"v\":2}").unwrap();
        std::fs::write(h.join("volumes/vol-1.img"), b"two").unwrap();
        std::fs::write(h.join("volumes/vol-2.img"), b"new").unwrap();
        assert_eq!(list(h).unwrap(), vec!["a".to_string()]);
        restore(h, "a").unwrap();
        assert_eq!(std::fs::read(h.join("state.json")).unwrap(), b"{\"v\":1}");
        assert_eq!(std::fs::read(h.join("volumes/vol-1.img")).unwrap(), b"one");
        assert!(!h.join("volumes/vol-2.img").exists());
        assert!(!marker(h).exists() && !restore_old(h).exists());
        assert!(matches!(
            restore(h, "nope"),
            Err(CheckpointError::NotFound(_))
        ));
    }

    /// Holds `img`'s lock as a writer does (its own open file, so the
    /// lock conflicts within this process too), writes `bytes` into it
    /// after `write_after`, and lets go after `hold`.
    fn writer(
        img: PathBuf,
        bytes: &'static [u8],
        write_after: std::time::Duration,
        hold: std::time::Duration,
    ) -> (std::sync::mpsc::Receiver<()>, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
            let mut l = Flock::lock(f, FlockArg::LockExclusive).unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(write_after);
            l.seek(SeekFrom::Start(0)).unwrap();
            l.write_all(bytes).unwrap();
            std::thread::sleep(hold.saturating_sub(write_after));
        });
        (rx, t)
    }

    #[test]
    fn a_checkpoint_waits_for_an_image_being_written() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path();
        std::fs::create_dir_all(h.join("volumes")).unwrap();
        std::fs::write(h.join("state.json"), b"s").unwrap();
        let img = h.join("volumes/vol-1.img");
        std::fs::write(&img, b"aaaa").unwrap();
        let ms = std::time::Duration::from_millis;
        // A writer holds the lock, writes after 300 ms, lets go at 400 ms:
        // the save waits and copies what the writer wrote.
        let (rx, t) = writer(img.clone(), b"bbbb", ms(300), ms(400));
        rx.recv().unwrap();
        save_waiting(h, "a", ms(5000)).unwrap();
        t.join().unwrap();
        assert_eq!(
            std::fs::read(dir(h).join("a/volumes/vol-1.img")).unwrap(),
            b"bbbb"
        );
        // A restore waits the same way, and replaces the image only once
        // the writer is done: the writer's bytes go, the checkpoint's stay.
        let (rx, t) = writer(img.clone(), b"cccc", ms(300), ms(400));
        rx.recv().unwrap();
        restore_waiting(h, "a", ms(5000)).unwrap();
        t.join().unwrap();
        assert_eq!(std::fs::read(&img).unwrap(), b"bbbb");
    }

    #[test]
    fn a_checkpoint_refuses_an_image_locked_past_its_wait() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path();
        std::fs::create_dir_all(h.join("volumes")).unwrap();
        std::fs::write(h.join("state.json"), b"s").unwrap();
        let img = h.join("volumes/vol-1.img");
        std::fs::write(&img, b"aaaa").unwrap();
        save(h, "a").unwrap();
        let ms = std::time::Duration::from_millis;
        let (rx, t) = writer(img.clone(), b"bbbb", ms(0), ms(1500));
        rx.recv().unwrap();
        let e = save_waiting(h, "b", ms(300)).unwrap_err();
        assert!(matches!(&e, CheckpointError::Busy(p) if p == &img), "{e}");
        assert!(
            e.to_string().contains("vol-1.img: the image is in use"),
            "{e}"
        );
        let e = restore_waiting(h, "a", ms(300)).unwrap_err();
        assert!(matches!(&e, CheckpointError::Busy(p) if p == &img), "{e}");
        t.join().unwrap();
        // Nothing half done is left: no checkpoint b, no staging, no marker,
        // and the image holds the writer's bytes.
        assert_eq!(list(h).unwrap(), vec!["a".to_string()]);
        let left: Vec<_> = std::fs::read_dir(dir(h))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(!marker(h).exists() && !restore_staging(h).exists());
        assert_eq!(std::fs::read(&img).unwrap(), b"bbbb");
    }

    #[test]
    fn a_cut_short_restore_is_finished() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path();
        std::fs::create_dir_all(h.join("volumes")).unwrap();
        std::fs::write(h.join("state.json"), b"old").unwrap();
        std::fs::write(h.join("volumes/v.img"), b"old").unwrap();
        // Staged, marker durable, state moved aside, then the process died.
        let st = restore_staging(h);
        std::fs::create_dir_all(st.join("volumes")).unwrap();
        std::fs::write(st.join("state.json"), b"new").unwrap();
        std::fs::write(st.join("volumes/v.img"), b"new").unwrap();
        std::fs::write(marker(h), b"x").unwrap();
        std::fs::create_dir_all(restore_old(h)).unwrap();
        std::fs::rename(h.join("state.json"), restore_old(h).join("state.json")).unwrap();
        recover(h).unwrap();
        assert_eq!(std::fs::read(h.join("state.json")).unwrap(), b"new");
        assert_eq!(std::fs::read(h.join("volumes/v.img")).unwrap(), b"new");
        assert!(!marker(h).exists());
    }
}
