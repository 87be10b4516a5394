//! Helpers of the XFS integration tests: the real tools under a frozen
//! clock, sparse-aware image comparison, loop mounts with cleanup, xfs_db
//! prints.
#![allow(dead_code)]

use crate::common::{self, run, stderr, stdout};
use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};

/// The uuid given to every filesystem made by both tools.
pub const UUID: &str = "11111111-2222-4333-8444-555555555555";
/// The frozen clock both mkfs run under.
pub const FAKETIME: &str = "2024-01-02 03:04:05";

/// PATH with the sbin directories, so real tools run by bare name (their
/// messages quote argv[0] as given).
pub fn path_env() -> std::ffi::OsString {
    let mut p = std::env::var_os("PATH").unwrap_or_default();
    p.push(":/usr/sbin:/sbin:/usr/bin:/bin");
    p
}

/// `faketime -f FAKETIME prog args...` in `dir`.
pub fn frozen(dir: &Path, prog: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let mut c = Command::new("faketime");
    c.arg("-f")
        .arg(FAKETIME)
        .arg(prog)
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env());
    run(&mut c)
}

/// A real tool, run by its bare name.
pub fn real(tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("PATH", path_env());
    c
}

/// Runs `ebsim APPLET args` under the frozen clock in `dir`.
pub fn frozen_ebsim(dir: &Path, applet: &str, args: &[&str]) -> Output {
    let mut all = vec![applet];
    all.extend_from_slice(args);
    frozen(dir, common::ebsim_bin(), &all)
}

/// Creates a sparse file of `len` bytes.
pub fn sparse_file(path: &Path, len: u64) {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(len).expect("set image length");
}

/// The data extents of a file (SEEK_DATA / SEEK_HOLE).
pub fn data_ranges(path: &Path) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let f = std::fs::File::open(path).expect("open for extents");
    let size = f.metadata().expect("stat").len();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        let Ok(d) = lseek(&f, pos as i64, Whence::SeekData) else {
            break;
        };
        let h = lseek(&f, d, Whence::SeekHole).expect("seek hole");
        out.push((d as u64, h as u64));
        pos = h as u64;
    }
    out
}

/// The 4 KiB blocks holding data in either file.
fn data_blocks(a: &Path, b: &Path) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for p in [a, b] {
        for (s, e) in data_ranges(p) {
            for blk in s / 4096..e.div_ceil(4096) {
                set.insert(blk);
            }
        }
    }
    set
}

/// Compares two images block by block wherever either holds data (holes
/// read as zeros, so real mkfs's zeroed or preallocated areas count as
/// equal to ebsim's holes). Returns the differing block numbers.
pub fn differing_blocks(a: &Path, b: &Path) -> Vec<u64> {
    let fa = std::fs::File::open(a).expect("open a");
    let fb = std::fs::File::open(b).expect("open b");
    assert_eq!(
        fa.metadata().expect("stat").len(),
        fb.metadata().expect("stat").len(),
        "image sizes differ"
    );
    let mut bad = Vec::new();
    let (mut x, mut y) = (vec![0u8; 4096], vec![0u8; 4096]);
    for blk in data_blocks(a, b) {
        fa.read_exact_at(&mut x, blk * 4096).expect("read a");
        fb.read_exact_at(&mut y, blk * 4096).expect("read b");
        if x != y {
            bad.push(blk);
        }
    }
    bad
}

/// `xfs_db -r -c CMD... IMG` stdout (stderr appended).
pub fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut c = real("xfs_db");
    c.arg("-r");
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    c.arg(img);
    let o = run(&mut c);
    format!("{}{}", stdout(&o), stderr(&o))
}

/// `xfs_repair -n IMG`: exit code and output.
pub fn repair(img: &Path) -> (i32, String) {
    let o = run(real("xfs_repair").arg("-n").arg(img));
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&o), stderr(&o)),
    )
}

/// A loop device, and maybe a mount of it; both undone on drop.
pub struct LoopMount {
    pub dev: String,
    pub dir: Option<tempfile::TempDir>,
}

impl LoopMount {
    /// Attaches `img` (read-only when `ro`) and mounts it.
    pub fn mount(img: &Path, ro: bool) -> LoopMount {
        let mut c = Command::new("losetup");
        c.arg("-f").arg("--show");
        if ro {
            c.arg("-r");
        }
        let o = run(c.arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let mut lm = LoopMount {
            dev: stdout(&o).trim().to_string(),
            dir: None,
        };
        let dir = tempfile::tempdir().expect("mount dir");
        // nouuid: copies of one image share its uuid, and XFS refuses to
        // mount a second filesystem with a uuid already mounted.
        let mut m = Command::new("mount");
        m.arg("-o").arg(if ro { "ro,nouuid" } else { "nouuid" });
        let o = run(m.arg(&lm.dev).arg(dir.path()));
        assert!(o.status.success(), "mount {}: {}", lm.dev, stderr(&o));
        lm.dir = Some(dir);
        lm
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted").path()
    }

    /// `stat -f` numbers: blocks, bfree, bavail, files, ffree.
    pub fn statfs(&self) -> [u64; 5] {
        let st = nix::sys::statvfs::statvfs(self.path()).expect("statvfs");
        [
            st.blocks(),
            st.blocks_free(),
            st.blocks_available(),
            st.files(),
            st.files_free(),
        ]
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new("umount").arg(dir.path()).status();
        }
        crate::common::detach_loop(&self.dev);
    }
}

/// SHA-256 of a file reading only its data ranges (fast on huge sparse
/// images; holes hash as their offsets).
pub fn sparse_hash(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let f = std::fs::File::open(path).expect("open");
    let mut h = Sha256::new();
    h.update(f.metadata().expect("stat").len().to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    for (s, e) in data_ranges(path) {
        h.update(s.to_le_bytes());
        let mut pos = s;
        while pos < e {
            let n = ((e - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos).expect("read");
            h.update(&buf[..n]);
            pos += n as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes every regular file under `root`, by relative path.
pub fn tree_hashes(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.push((rel, common::file_hash(&p)));
            }
        }
    }
    out.sort();
    out
}
