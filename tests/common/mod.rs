//! Shared helpers of the integration test binaries.
#![allow(dead_code)]

pub mod manifest;

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
pub fn mount_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/ebsim-mount.lock")
        .expect("open /tmp/ebsim-mount.lock");
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock /tmp/ebsim-mount.lock")
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

/// Allocated bytes of a file (st_blocks × 512).
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").blocks() * 512
}

/// A temporary directory able to hold very large sparse files: the host's
/// ext4 caps files at 16 TiB − 4 KiB, tmpfs does not.
pub fn big_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().expect("tempdir"))
}

/// Copies a file keeping holes (`cp --sparse=always`).
pub fn sparse_copy(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
    assert!(out.status.success(), "cp failed: {}", stderr(&out));
}
