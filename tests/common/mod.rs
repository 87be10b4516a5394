//! Shared helpers of the integration test binaries.
#![allow(dead_code)]

pub mod manifest;
pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ebsim binary under test.
pub fn ebsim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ebsim"))
}

/// `ebsim APPLET` as a command.
pub fn ebsim(applet: &str) -> Command {
    let mut c = Command::new(ebsim_bin());
    c.arg(applet);
    c
}

/// True when `tool` is on PATH (or in /sbin, /usr/sbin).
pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/sbin"), PathBuf::from("/usr/sbin")])
        .any(|d| d.join(tool).is_file())
}

/// True under CI, where a differential test must run, not skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Returns true when every tool is installed. When one is missing: panics
/// under CI (the test must not silently skip), otherwise prints a note and
/// returns false so the caller can return early.
pub fn require_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have_tool(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI is set but these real tools are missing: {missing:?} (scripts/test.sh installs them)"
    );
    eprintln!("skipping: real tools missing: {missing:?}");
    false
}

/// Whether this process may use loop devices and mount (root, and losetup
/// works). Under CI a test that needs it fails instead of skipping.
pub fn require_mount() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let ok = root && have_tool("losetup") && Path::new("/dev/loop-control").exists();
    if ok {
        return true;
    }
    assert!(
        !in_ci(),
        "CI is set but loop devices/mount are not usable here"
    );
    eprintln!("skipping: loop devices and mount need root");
    false
}

/// A process-wide and cross-process lock serializing tests that use loop
/// devices and mounts (cargo runs tests in parallel, and several test
/// binaries may run at once). Held until dropped.
///
/// The lock is a flock on a fresh descriptor, so a thread that takes it
/// again while holding it would wait for itself forever: that panics
/// instead, naming the mistake.
pub fn mount_lock() -> MountLock {
    HELD.with(|held| {
        assert!(
            !held.get(),
            "mount_lock() taken twice by one thread: it would wait for itself \
             (a helper that mounts takes the lock; do not hold it around it)"
        );
    });
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/ebsim-mount.lock")
        .expect("open /tmp/ebsim-mount.lock");
    let flock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock /tmp/ebsim-mount.lock");
    HELD.with(|held| held.set(true));
    MountLock { _flock: flock }
}

thread_local! {
    /// Whether this thread holds [`mount_lock`].
    static HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`mount_lock`]'s guard.
pub struct MountLock {
    _flock: nix::fcntl::Flock<std::fs::File>,
}

impl Drop for MountLock {
    fn drop(&mut self) {
        // Only the taking thread drops it in these tests; a guard moved
        // to another thread would clear that thread's flag, harmlessly.
        HELD.with(|held| held.set(false));
    }
}

/// Runs a command, returning its output; panics if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a shell command line with `sh -c`, panicking with its output when it
/// fails.
pub fn sh(script: &str) -> Output {
    let out = run(Command::new("sh").arg("-c").arg(script));
    assert!(
        out.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout as a String.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a String.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// SHA-256 of a file's contents, hex, for "left untouched" checks. Holes
/// are skipped (SEEK_DATA), so a 16 TiB sparse image hashes in an instant;
/// the size and the offset of every data range are hashed too.
pub fn file_hash(path: &Path) -> String {
    use ebsim::blockdev::image::Access;
    use ebsim::blockdev::{BlockDevice, ImageFile};
    use sha2::{Digest, Sha256};
    let img = ImageFile::open(path, Access::ReadOnly).expect("open for hashing");
    let mut h = Sha256::new();
    h.update(img.size().to_le_bytes());
    for r in img.data_ranges(0..img.size()).expect("data ranges") {
        let mut off = r.start;
        while off < r.end {
            let n = (r.end - off).min(1 << 20) as usize;
            let chunk = img.read_vec(off, n).expect("read for hashing");
            if chunk.iter().any(|&b| b != 0) {
                h.update(off.to_le_bytes());
                h.update(&chunk);
            }
            off += n as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `losetup -d DEV`, then waits until the device is really detached: the
/// kernel defers a detach while something (udev's probe) still holds the
/// device open, and the next step must not find the image still attached.
pub fn detach_loop(dev: &str) {
    let _ = Command::new("losetup").arg("-d").arg(dev).output();
    let name = dev.trim_start_matches("/dev/");
    let backing = format!("/sys/block/{name}/loop/backing_file");
    for _ in 0..100 {
        if !Path::new(&backing).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Allocated bytes of a file (st_blocks × 512).
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").blocks() * 512
}

/// A temporary directory on tmpfs (`/dev/shm`) where there is one: able
/// to hold very large sparse files (the host's ext4 caps files at 16 TiB −
/// 4 KiB, tmpfs does not), and fast for images that a mount fsyncs often
/// (on a busy disk every fsync through a FUSE mount reaches the image's
/// file). Not for a test that runs growpart or resize2fs on the image
/// through a `/dev/...` path read as a guest's device.
pub fn big_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().expect("tempdir"))
}

/// Copies a file keeping holes (`cp --sparse=always`).
pub fn sparse_copy(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
    assert!(out.status.success(), "cp failed: {}", stderr(&out));
}

// ------------------------------------------------------------------------
// Crash-safety sweeps: interrupt a command at every write, open the image
// as a user would, and require it to be exactly as before or exactly as
// after a clean run.

/// What an image file holds, read straight from the file (never through
/// ebsim, which would replay a pending undo log): its length, a SHA-256 of
/// its contents (see [`raw_content_hash`]: two files of one length hash
/// alike exactly when every byte, holes read as zeros, is equal) and its
/// allocated extents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageState {
    pub len: u64,
    pub sha256: String,
    pub layout: Vec<(u64, u64)>,
}

/// The allocated extents of a file (`SEEK_DATA`/`SEEK_HOLE`), read raw.
pub fn raw_extents(path: &Path) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let f = std::fs::File::open(path).expect("open for extents");
    let len = f.metadata().expect("stat").len();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < len {
        let data = match lseek(&f, pos as i64, Whence::SeekData) {
            Ok(d) => d as u64,
            Err(_) => break,
        };
        let hole = lseek(&f, data as i64, Whence::SeekHole).expect("seek hole") as u64;
        out.push((data, hole));
        pos = hole;
    }
    out
}

/// SHA-256 of a file's contents read raw (never through ebsim), hex: its
/// length and every non-zero 4 KiB block with its offset, found through
/// its allocated extents. Equal for equal contents whatever the hole
/// layout, and quick on large sparse images.
pub fn raw_content_hash(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).expect("open for hashing");
    let len = f.metadata().expect("stat").len();
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in raw_extents(path) {
        let mut off = start;
        while off < end {
            let n = (end - off).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..n], off)
                .expect("read for hashing");
            for (i, block) in buf[..n].chunks(4096).enumerate() {
                if block.iter().any(|&b| b != 0) {
                    h.update((off + (i as u64) * 4096).to_le_bytes());
                    h.update(block);
                }
            }
            off += n as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The state of an image file (see [`ImageState`]). Its cost is the
/// allocated data, not the length: the holes of a 12 GiB root volume are
/// never read (hashing them as zeros once cost seconds per state).
pub fn image_state(path: &Path) -> ImageState {
    let len = std::fs::metadata(path).expect("stat").len();
    ImageState {
        len,
        sha256: raw_content_hash(path),
        layout: raw_extents(path),
    }
}

/// Copies an image byte for byte and extent for extent (holes stay holes,
/// allocated zeros stay allocated), without going through ebsim.
pub fn copy_image(from: &Path, to: &Path) {
    use std::os::unix::fs::FileExt;
    let src = std::fs::File::open(from).expect("open source");
    let len = src.metadata().expect("stat").len();
    let dst = std::fs::File::create(to).expect("create copy");
    dst.set_len(len).expect("set length");
    let mut buf = vec![0u8; 1 << 20];
    for (s, e) in raw_extents(from) {
        let mut at = s;
        while at < e {
            let k = (e - at).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..k], at).expect("read");
            dst.write_all_at(&buf[..k], at).expect("write");
            at += k as u64;
        }
    }
}

/// A digest of a file that costs only its data: its length, and every
/// allocated extent with its bytes (equal digests: equal contents and equal
/// allocation). Read raw, never through ebsim.
pub fn data_digest(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).expect("open for digest");
    let mut h = Sha256::new();
    h.update(f.metadata().expect("stat").len().to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    for (s, e) in raw_extents(path) {
        h.update(s.to_le_bytes());
        h.update(e.to_le_bytes());
        let mut at = s;
        while at < e {
            let k = (e - at).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..k], at).expect("read");
            h.update(&buf[..k]);
            at += k as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path of an image's undo log (beside its real file).
pub fn undo_log(image: &Path) -> PathBuf {
    ebsim::blockdev::image::undo_log_path(image)
}

/// What a sweep found.
#[derive(Debug)]
pub struct SweepReport {
    /// Write steps of a complete run.
    pub writes: u64,
    /// The fault points tried.
    pub points: Vec<u64>,
    /// Points that left the image as it was before.
    pub rolled_back: usize,
    /// Points that left it as a clean run does (a fault after the commit
    /// point, finished by the next open).
    pub completed: usize,
}

/// Fault points for a command of `n` write steps: all of them up to 60,
/// else 60 spread evenly plus the first and last three.
pub fn fault_points(n: u64) -> Vec<u64> {
    if n <= 60 {
        return (0..n).collect();
    }
    let mut v: Vec<u64> = (0..60).map(|i| i * (n - 1) / 59).collect();
    v.extend([1, 2, n - 3, n - 2]);
    v.sort_unstable();
    v.dedup();
    v
}

/// Interrupts `cmd` (built for an image path) after every possible number
/// of writes (sampled evenly above 60), each time on a fresh copy of
/// `template`; then opens the image as a user would (`ebsim xfs_info`,
/// which opens it read-only and so finishes or undoes the interrupted
/// change) and requires the image to be exactly (length, every byte,
/// allocated extents) as `template` was, or as a clean run leaves it, and
/// its undo log gone. `check_before`/`check_after` run the real checkers
/// (fsck) on the two allowed states once.
pub fn fault_sweep(
    name: &str,
    template: &Path,
    cmd: &dyn Fn(&Path) -> Command,
    check_before: Option<&dyn Fn(&Path)>,
    check_after: &dyn Fn(&Path),
) -> SweepReport {
    let dir = tempfile::tempdir_in(template.parent().expect("template dir")).expect("tempdir");
    let before = image_state(template);
    if let Some(check) = check_before {
        check(template);
    }
    let run_at = |fault: Option<u64>| -> (PathBuf, Output) {
        let img = dir.path().join("sweep.img");
        let _ = std::fs::remove_file(&img);
        let _ = std::fs::remove_file(undo_log(&img));
        copy_image(template, &img);
        let mut c = cmd(&img);
        if let Some(k) = fault {
            c.env(ebsim::blockdev::image::FAULT_ENV, k.to_string());
        } else {
            c.env_remove(ebsim::blockdev::image::FAULT_ENV);
        }
        let o = run(&mut c);
        (img, o)
    };
    // A clean run: the only other allowed state.
    let (img, o) = run_at(None);
    assert!(
        o.status.success(),
        "{name}: the clean run failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!undo_log(&img).exists(), "{name}: a clean run left its log");
    let after = image_state(&img);
    check_after(&img);
    assert_ne!(before, after, "{name}: the clean run changed nothing");
    // The number of write steps: the least fault limit that lets it finish.
    let writes = least_passing_limit(1 << 24, |k| run_at(Some(k)).1.status.success())
        .unwrap_or_else(|| panic!("{name}: the fault hook never let the command finish"));
    let points = fault_points(writes);
    let (mut rolled_back, mut completed) = (0, 0);
    for &k in &points {
        let (img, o) = run_at(Some(k));
        assert!(
            !o.status.success(),
            "{name}: fault after {k} of {writes} writes did not fail"
        );
        let log = undo_log(&img);
        // Open it as a user would.
        let open = run(crate::common::ebsim("xfs_info").arg(&img));
        assert!(
            !stderr(&open).contains("undo log") && !stderr(&open).contains("interrupted change"),
            "{name}: fault after {k}: opening failed: {}",
            stderr(&open)
        );
        assert!(
            !log.exists(),
            "{name}: fault after {k}: the log is still there"
        );
        let now = image_state(&img);
        if now == before {
            rolled_back += 1;
        } else if now == after {
            completed += 1;
        } else {
            let what = if now.len != before.len && now.len != after.len {
                format!(
                    "length {} (before {}, after {})",
                    now.len, before.len, after.len
                )
            } else if now.sha256 != before.sha256 && now.sha256 != after.sha256 {
                "contents".to_string()
            } else {
                format!(
                    "allocation ({} extents; before {}, after {})",
                    now.layout.len(),
                    before.layout.len(),
                    after.layout.len()
                )
            };
            panic!(
                "{name}: fault after {k} of {writes} writes: the image is neither as before \
                 nor as after a clean run: its {what} differ"
            );
        }
    }
    assert!(rolled_back > 0, "{name}: no fault point rolled back");
    SweepReport {
        writes,
        points,
        rolled_back,
        completed,
    }
}

/// The least fault limit `k` at which `passes(k)` holds (passing is
/// monotonic in `k`): doubled until it passes, then bisected. None when
/// nothing below `cap` passes.
pub fn least_passing_limit(cap: u64, mut passes: impl FnMut(u64) -> bool) -> Option<u64> {
    let mut hi = 1u64;
    while !passes(hi) {
        hi *= 2;
        if hi >= cap {
            return None;
        }
    }
    let mut lo = hi / 2;
    while lo < hi {
        let mid = (lo + hi) / 2;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

/// `umount DIR`, retried for up to two seconds while the kernel calls the
/// mount busy (something on the host may be looking at a new mount); the
/// last attempt's output.
pub fn umount_retrying(dir: &Path) -> Output {
    let mut o = run(Command::new("umount").arg(dir));
    for _ in 0..20 {
        if o.status.success() || !stderr(&o).contains("busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = run(Command::new("umount").arg(dir));
    }
    o
}
