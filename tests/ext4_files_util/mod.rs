//! Helpers of the ext4 file-layer tests: a tree writer driven through the
//! `FileSystem` trait, manifests (path → type, size, mode, owner, links,
//! SHA-256 or target) taken through ebsim and through a kernel mount, a
//! read-write loop mount undone on drop, and e2fsck's verdict.
#![allow(dead_code)]

use crate::common::{run, stderr, stdout};
use ebsim::fs::node::{Attr, Cred, Ctx, FileSystem, FileType, Ino, Timespec};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the manifest records of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// "file", "dir", "symlink", "fifo", "char", "block", "socket".
    pub kind: &'static str,
    /// Size in bytes (files and symlinks; 0 for the rest).
    pub size: u64,
    /// Permission bits.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    /// SHA-256 of a file's contents, a symlink's target, or "".
    pub content: String,
    /// Modification time (seconds).
    pub mtime: i64,
}

pub type Manifest = BTreeMap<String, Item>;

fn kind_name(k: FileType) -> &'static str {
    match k {
        FileType::Regular => "file",
        FileType::Directory => "dir",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::CharDevice => "char",
        FileType::BlockDevice => "block",
        FileType::Socket => "socket",
    }
}

pub fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file read through `fs` (1 MiB at a time).
pub fn fs_hash(fs: &dyn FileSystem, ino: Ino, size: u64) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < size {
        let n = fs.read(ino, off, &mut buf).expect("read");
        assert!(n > 0, "short read at {off} of {size}");
        h.update(&buf[..n]);
        off += n as u64;
    }
    hex(h.finalize())
}

/// The manifest of everything under the root, through ebsim (skipping
/// `lost+found`). Files larger than `hash_limit` are hashed too, but
/// sparse regions cost reading zeros: keep it large only when needed.
pub fn fs_manifest(fs: &dyn FileSystem) -> Manifest {
    let mut out = Manifest::new();
    let mut stack = vec![(String::new(), fs.root())];
    while let Some((path, dir)) = stack.pop() {
        for e in fs.readdir(dir).expect("readdir") {
            let name = String::from_utf8(e.name.clone()).expect("utf8 name");
            if path.is_empty() && name == "lost+found" {
                continue;
            }
            let p = format!("{path}/{name}");
            let a: Attr = fs.getattr(e.ino).expect("getattr");
            assert_eq!(a.kind, e.kind, "{p}: entry type and inode type differ");
            let content = match a.kind {
                FileType::Regular => fs_hash(fs, e.ino, a.size),
                FileType::Symlink => {
                    String::from_utf8(fs.readlink(e.ino).expect("readlink")).expect("utf8 target")
                }
                _ => String::new(),
            };
            if a.kind == FileType::Directory {
                stack.push((p.clone(), e.ino));
            }
            out.insert(
                p,
                Item {
                    kind: kind_name(a.kind),
                    size: if matches!(a.kind, FileType::Regular | FileType::Symlink) {
                        a.size
                    } else {
                        0
                    },
                    perm: u32::from(a.perm),
                    uid: a.uid,
                    gid: a.gid,
                    nlink: u64::from(a.nlink),
                    content,
                    mtime: a.mtime.sec,
                },
            );
        }
    }
    out
}

/// The manifest of a mounted directory, through the kernel.
pub fn host_manifest(root: &Path) -> Manifest {
    let mut out = Manifest::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name().into_string().expect("utf8");
            if rel.as_os_str().is_empty() && name == "lost+found" {
                continue;
            }
            let r = rel.join(&name);
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            let ft = m.file_type();
            let (kind, content) = if ft.is_symlink() {
                let t = std::fs::read_link(e.path()).expect("readlink");
                ("symlink", t.into_os_string().into_string().expect("utf8"))
            } else if ft.is_dir() {
                stack.push(r.clone());
                ("dir", String::new())
            } else if ft.is_file() {
                use std::io::Read;
                let mut h = Sha256::new();
                let mut f = std::fs::File::open(e.path()).expect("open");
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = f.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                ("file", hex(h.finalize()))
            } else if ft.is_fifo() {
                ("fifo", String::new())
            } else if ft.is_char_device() {
                ("char", String::new())
            } else if ft.is_block_device() {
                ("block", String::new())
            } else {
                ("socket", String::new())
            };
            out.insert(
                format!("/{}", r.display()),
                Item {
                    kind,
                    size: if kind == "file" || kind == "symlink" {
                        m.len()
                    } else {
                        0
                    },
                    perm: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    nlink: m.nlink(),
                    content,
                    mtime: m.mtime(),
                },
            );
        }
    }
    out
}

/// Asserts two manifests are equal, listing the differences.
pub fn assert_manifests_equal(a: &Manifest, b: &Manifest, what: &str) {
    let mut bad = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => bad.push(format!("{k}: only in the first")),
            Some(w) if w != v => bad.push(format!("{k}:\n  {v:?}\n  {w:?}")),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            bad.push(format!("{k}: only in the second"));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} differences:\n{}",
        bad.len(),
        bad[..bad.len().min(30)].join("\n")
    );
}

/// `e2fsck -fn`: must exit 0 and print nothing but the pass lines and the
/// summary.
pub fn assert_e2fsck_silent(img: &Path) {
    let o = run(Command::new("e2fsck").arg("-fn").arg(img));
    let out = stdout(&o);
    let extra: Vec<&str> = out
        .lines()
        .filter(|l| {
            !(l.starts_with("Pass 1: Checking inodes, blocks, and sizes")
                || l.starts_with("Pass 2: Checking directory structure")
                || l.starts_with("Pass 3: Checking directory connectivity")
                || l.starts_with("Pass 4: Checking reference counts")
                || l.starts_with("Pass 5: Checking group summary information")
                || (l.contains(" files (") && l.contains(" blocks")))
        })
        .collect();
    assert!(
        o.status.success() && extra.is_empty(),
        "e2fsck -fn {} (rc {:?}):\n{}{}",
        img.display(),
        o.status.code(),
        out,
        stderr(&o)
    );
}

/// A read-write loop mount, unmounted and detached on drop.
pub struct RwMount {
    pub dir: tempfile::TempDir,
    loopdev: String,
    mounted: bool,
}

impl RwMount {
    pub fn new(img: &Path) -> RwMount {
        let dir = tempfile::tempdir().expect("mount dir");
        let o = run(Command::new("losetup").args(["-f", "--show"]).arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let loopdev = stdout(&o).trim().to_string();
        let mut m = RwMount {
            dir,
            loopdev,
            mounted: false,
        };
        let o = run(Command::new("mount")
            .args(["-t", "ext4"])
            .arg(&m.loopdev)
            .arg(m.dir.path()));
        assert!(o.status.success(), "mount: {}", stderr(&o));
        m.mounted = true;
        m
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// statvfs of the mount: (bsize, blocks, bfree, bavail, files, ffree).
    pub fn statvfs(&self) -> [u64; 6] {
        let s = nix::sys::statvfs::statvfs(self.dir.path()).expect("statvfs");
        [
            s.fragment_size(),
            s.blocks(),
            s.blocks_free(),
            s.blocks_available(),
            s.files(),
            s.files_free(),
        ]
    }

    /// Unmounts now (asserting it worked).
    pub fn umount(mut self) {
        let o = run(Command::new("umount").arg(self.dir.path()));
        assert!(o.status.success(), "umount: {}", stderr(&o));
        self.mounted = false;
    }
}

impl Drop for RwMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.loopdev)
            .status();
    }
}

/// A deterministic pseudo-random byte stream.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The context of root at a fixed time.
pub fn root_ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_001_000,
            nsec: 123_456_789,
        },
    }
}

/// A user's context.
pub fn user_ctx(uid: u32) -> Ctx {
    Ctx {
        cred: Cred { uid, gid: uid },
        now: Timespec {
            sec: 1_700_002_000,
            nsec: 5,
        },
    }
}

/// Walks `path` (absolute, no `.`/`..`) to an inode.
pub fn resolve(fs: &dyn FileSystem, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs
            .lookup(ino, part.as_bytes())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .ino;
    }
    ino
}
