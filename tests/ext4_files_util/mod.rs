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
    /// st_blocks.
    pub blocks: u64,
    /// st_rdev (device files).
    pub rdev: u64,
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

/// Files up to this size are hashed whole; larger ones by their
/// non-zero 4 KiB chunks within their data ranges (see [`sparse_digest`]).
pub const WHOLE_HASH_LIMIT: u64 = 64 << 20;

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

/// A digest of a large file that costs only its data: its size, and each
/// non-zero 4 KiB-aligned chunk inside `ranges` with its offset. Equal
/// for equal contents whatever the ranges' boundaries.
pub fn sparse_digest(
    size: u64,
    ranges: &[std::ops::Range<u64>],
    read: &mut dyn FnMut(u64, &mut [u8]),
) -> String {
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut buf = vec![0u8; 4096];
    for r in ranges {
        let mut off = r.start / 4096 * 4096;
        while off < r.end.min(size) {
            let n = (size - off).min(4096) as usize;
            read(off, &mut buf[..n]);
            if buf[..n].iter().any(|&b| b != 0) {
                h.update(off.to_le_bytes());
                h.update(&buf[..n]);
            }
            off += 4096;
        }
    }
    format!("sparse:{}", hex(h.finalize()))
}

/// The content digest of a file through ebsim.
pub fn fs_content(
    fs: &dyn FileSystem,
    ranges: &dyn Fn(Ino) -> Vec<std::ops::Range<u64>>,
    ino: Ino,
    size: u64,
) -> String {
    if size <= WHOLE_HASH_LIMIT {
        return fs_hash(fs, ino, size);
    }
    let r = ranges(ino);
    sparse_digest(size, &r, &mut |off, buf| {
        let n = fs.read(ino, off, buf).expect("read");
        assert_eq!(n, buf.len());
    })
}

/// The manifest of everything under the root, through ebsim (skipping
/// `lost+found`); `ranges` gives a file's data ranges (for large files).
pub fn fs_manifest(
    fs: &dyn FileSystem,
    ranges: &dyn Fn(Ino) -> Vec<std::ops::Range<u64>>,
) -> Manifest {
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
                FileType::Regular => fs_content(fs, ranges, e.ino, a.size),
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
                    blocks: a.blocks,
                    rdev: u64::from(a.rdev),
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
                ("file", host_content(&e.path(), m.len()))
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
                    blocks: m.blocks(),
                    rdev: m.rdev(),
                    content,
                    mtime: m.mtime(),
                },
            );
        }
    }
    out
}

/// The content digest of a host file (as [`fs_content`]).
pub fn host_content(path: &Path, size: u64) -> String {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let mut f = std::fs::File::open(path).expect("open");
    if size <= WHOLE_HASH_LIMIT {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        return hex(h.finalize());
    }
    use nix::unistd::{Whence, lseek};
    let mut ranges = Vec::new();
    let mut pos: i64 = 0;
    let end = size as i64;
    while pos < end {
        let Ok(d) = lseek(&f, pos, Whence::SeekData) else {
            break;
        };
        let h = lseek(&f, d, Whence::SeekHole).unwrap_or(end);
        ranges.push(d as u64..h as u64);
        pos = h;
    }
    sparse_digest(size, &ranges, &mut |off, buf| {
        f.read_exact_at(buf, off).expect("read");
    })
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

/// What [`write_tree`] makes, beyond its fixed parts.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Bytes of the preallocated file `/prealloc` (`fallocate -l`).
    pub prealloc: u64,
    /// Entries in `/many`.
    pub many: usize,
}

pub fn mkfile(fs: &mut dyn FileSystem, dir: Ino, name: &str, data: &[u8]) -> Ino {
    let ctx = root_ctx();
    let a = fs
        .mknod(ctx, dir, name.as_bytes(), FileType::Regular, 0o644, 0)
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    let mut off = 0;
    while off < data.len() {
        let n = fs
            .write(ctx, a.ino, off as u64, &data[off..])
            .unwrap_or_else(|e| panic!("write {name}: {e}"));
        assert!(n > 0);
        off += n;
    }
    a.ino
}

/// Writes the test tree through the trait: nested directories, a
/// directory of `spec.many` entries, files of 0 B, 1 B, 4 KiB, 1 MiB and
/// odd sizes, a sparse file (with an all-zero write that must stay a
/// hole), a preallocation, a KEEP_SIZE preallocation, a punched file, a
/// truncated file, fast, slow and dangling symlinks, hard links, renames
/// (plain, over a file, a directory across parents, NOREPLACE refused,
/// EXCHANGE), removals, chmod/chown/utimes, a FIFO and a device node.
pub fn write_tree(fs: &mut dyn FileSystem, spec: TreeSpec) {
    use ebsim::fs::node::{ErrorKind, FallocateMode, RenameFlags, SetAttr};
    let ctx = root_ctx();
    let r = fs.root();
    let d1 = fs.mkdir(ctx, r, b"d1", 0o755).expect("mkdir d1").ino;
    let d2 = fs.mkdir(ctx, d1, b"d2", 0o750).expect("mkdir d2").ino;
    let d3 = fs.mkdir(ctx, d2, b"d3", 0o700).expect("mkdir d3").ino;
    mkfile(fs, r, "empty", b"");
    mkfile(fs, r, "one", b"1");
    mkfile(fs, d1, "page", &bytes(1, 4096));
    let mib = mkfile(fs, r, "mib", &bytes(2, 1 << 20));
    mkfile(fs, d3, "odd", &bytes(3, 123_457));
    // A sparse file: data at 0 and past 10 MiB, zeros written over a
    // hole (must stay a hole), size 100 MiB.
    let sp = mkfile(fs, r, "sparse", &bytes(4, 4096));
    fs.write(ctx, sp, (10 << 20) + 123, &bytes(5, 65536))
        .expect("write");
    let before = fs.getattr(sp).expect("stat").blocks;
    fs.write(ctx, sp, 50 << 20, &vec![0u8; 8192])
        .expect("write zeros");
    assert_eq!(
        fs.getattr(sp).expect("stat").blocks,
        before,
        "zeros over a hole allocated blocks"
    );
    fs.setattr(
        ctx,
        sp,
        SetAttr {
            size: Some(100 << 20),
            ..SetAttr::default()
        },
    )
    .expect("extend");
    // Many entries in one directory, some removed again.
    let many = fs.mkdir(ctx, r, b"many", 0o755).expect("mkdir many").ino;
    for i in 0..spec.many {
        let data = if i % 3 == 0 {
            Vec::new()
        } else {
            bytes(i as u64, i % 5000)
        };
        mkfile(fs, many, &format!("entry-{i:05}-with-a-longer-name"), &data);
    }
    for i in (0..spec.many).step_by(7) {
        fs.unlink(
            ctx,
            many,
            format!("entry-{i:05}-with-a-longer-name").as_bytes(),
        )
        .expect("unlink");
    }
    // Symlinks.
    fs.symlink(ctx, r, b"fast", b"d1/d2").expect("symlink");
    let long = format!("d1/{}/../../mib", "x".repeat(200));
    fs.symlink(ctx, d1, b"slow", long.as_bytes())
        .expect("symlink");
    fs.symlink(ctx, r, b"dangling", b"/nonexistent/target")
        .expect("symlink");
    // Hard links.
    fs.link(ctx, mib, d1, b"mib-link").expect("link");
    fs.link(ctx, mib, d2, b"mib-link2").expect("link");
    fs.unlink(ctx, d2, b"mib-link2").expect("unlink link");
    // Renames.
    mkfile(fs, r, "tmp1", b"renamed file\n");
    fs.rename(ctx, r, b"tmp1", d2, b"renamed", RenameFlags::default())
        .expect("rename");
    mkfile(fs, r, "victim", b"victim\n");
    mkfile(fs, r, "over", b"over\n");
    fs.rename(ctx, r, b"over", r, b"victim", RenameFlags::default())
        .expect("rename over");
    let e = fs
        .rename(
            ctx,
            r,
            b"one",
            r,
            b"victim",
            RenameFlags {
                noreplace: true,
                exchange: false,
            },
        )
        .expect_err("noreplace");
    assert_eq!(e.kind(), ErrorKind::Exists);
    fs.rename(ctx, d2, b"d3", r, b"d3moved", RenameFlags::default())
        .expect("rename dir across parents");
    mkfile(fs, r, "swap-a", b"a\n");
    mkfile(fs, d1, "swap-b", b"bb\n");
    fs.rename(
        ctx,
        r,
        b"swap-a",
        d1,
        b"swap-b",
        RenameFlags {
            noreplace: false,
            exchange: true,
        },
    )
    .expect("exchange");
    let sub = fs
        .mkdir(ctx, d1, b"subdir-to-swap", 0o755)
        .expect("mkdir")
        .ino;
    mkfile(fs, sub, "inside", b"inside\n");
    mkfile(fs, d2, "file-to-swap", b"file\n");
    fs.rename(
        ctx,
        d1,
        b"subdir-to-swap",
        d2,
        b"file-to-swap",
        RenameFlags {
            noreplace: false,
            exchange: true,
        },
    )
    .expect("exchange dir and file across parents");
    // Removals.
    let gone = fs.mkdir(ctx, r, b"gone", 0o755).expect("mkdir").ino;
    mkfile(fs, gone, "f", b"x");
    assert_eq!(
        fs.rmdir(ctx, r, b"gone").expect_err("not empty").kind(),
        ErrorKind::DirectoryNotEmpty
    );
    fs.unlink(ctx, gone, b"f").expect("unlink");
    fs.rmdir(ctx, r, b"gone").expect("rmdir");
    // chmod, chown, utimes.
    let page = fs.lookup(d1, b"page").expect("lookup").ino;
    fs.setattr(
        ctx,
        page,
        SetAttr {
            perm: Some(0o4751),
            uid: Some(1000),
            gid: Some(100),
            atime: Some(Timespec {
                sec: 1_000_000_000,
                nsec: 0,
            }),
            mtime: Some(Timespec {
                sec: 1_234_567_890,
                nsec: 987_654_321,
            }),
            size: None,
        },
    )
    .expect("setattr");
    // Preallocations, a punched file, a truncated file.
    let pre = mkfile(fs, r, "prealloc", b"");
    fs.fallocate(
        ctx,
        pre,
        0,
        spec.prealloc,
        FallocateMode::Allocate { keep_size: false },
    )
    .expect("fallocate");
    let keep = mkfile(fs, r, "keep", b"");
    fs.fallocate(
        ctx,
        keep,
        0,
        1 << 20,
        FallocateMode::Allocate { keep_size: true },
    )
    .expect("fallocate keep");
    let pun = mkfile(fs, r, "punched", &bytes(6, 1 << 20));
    fs.fallocate(
        ctx,
        pun,
        200 * 1024 + 5,
        100 * 1024,
        FallocateMode::PunchHole,
    )
    .expect("punch");
    let tr = mkfile(fs, r, "trunc", &bytes(7, 300 * 1024));
    fs.setattr(
        ctx,
        tr,
        SetAttr {
            size: Some(100 * 1024 + 5),
            ..SetAttr::default()
        },
    )
    .expect("truncate");
    // Special files.
    fs.mknod(ctx, r, b"fifo", FileType::Fifo, 0o644, 0)
        .expect("mkfifo");
    fs.mknod(ctx, r, b"null", FileType::CharDevice, 0o666, (1 << 8) | 3)
        .expect("mknod");
    // Major 300, minor 70000: the kernel's "new" encoding.
    let big = (300 << 8) | (70000 & 0xFF) | ((70000 & 0xF_FF00) << 12);
    fs.mknod(ctx, r, b"bigdev", FileType::BlockDevice, 0o600, big)
        .expect("mknod");
    // Files owned by a user.
    let u = user_ctx(1000);
    let home = fs.mkdir(ctx, r, b"home", 0o755).expect("mkdir").ino;
    let a = fs.mkdir(u, home, b"user", 0o700).expect("mkdir as user");
    let f = fs
        .mknod(u, a.ino, b"notes.txt", FileType::Regular, 0o600, 0)
        .expect("create as user");
    fs.write(u, f.ino, 0, b"user data\n")
        .expect("write as user");
}

/// `ebsim debug-fs IMAGE -` with `script` on stdin, the fault hook set to
/// `fault` writes (none when `None`). Returns whether it succeeded.
pub fn debug_fs(img: &Path, script: &str, fault: Option<u64>) -> bool {
    use std::io::Write;
    let mut c = crate::common::ebsim("debug-fs");
    c.arg(img)
        .arg("-")
        .env("E2FSPROGS_FAKE_TIME", "1700003000")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match fault {
        Some(n) => c.env(ebsim::blockdev::image::FAULT_ENV, n.to_string()),
        None => c.env_remove(ebsim::blockdev::image::FAULT_ENV),
    };
    let mut child = c.spawn().expect("spawn ebsim debug-fs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let o = child.wait_with_output().expect("wait");
    if fault.is_none() {
        assert!(
            o.status.success(),
            "debug-fs: {}",
            crate::common::stderr(&o)
        );
    }
    o.status.success()
}

/// The sync fault sweep both file-layer suites run on `base` (a fresh
/// filesystem): files and directories made with `debug-fs`, then one sync
/// that creates, writes, (with `fallocate`) preallocates 200 MiB, removes,
/// renames and truncates, interrupted after every write in turn. After
/// the next read-write open (which rolls back) each result must have the
/// contents of before or of the clean run, block by block (a rolled-back
/// partial write over a hole reads as the zeros of the hole), and be
/// e2fsck-silent. Returns the fault points and how many rolled back.
pub fn sync_fault_sweep(dir: &Path, base: &Path, fallocate: bool) -> (u32, u32) {
    use ebsim::blockdev::ImageFile;
    use ebsim::blockdev::image::Access;
    let host = dir.join("data.bin");
    std::fs::write(&host, bytes(42, (3 << 20) + 777)).expect("write host file");
    let small = dir.join("small.bin");
    std::fs::write(&small, bytes(43, 5000)).expect("write host file");
    let h = host.display();
    let sm = small.display();
    debug_fs(
        base,
        &format!("mkdir /old\nput {h} /old/a\nput {sm} /old/b\nput {h} /keep\nmkdir /gone\n"),
        None,
    );
    assert_e2fsck_silent(base);
    let pre = if fallocate {
        "fallocate 200M /new/pre\n"
    } else {
        ""
    };
    let script = format!(
        "mkdir /new\nmkdir /new/sub\nput {h} /new/data\nput {sm} /new/sub/s\n{pre}\
         rm /old/a\nrm /old/b\nrmdir /gone\nmv /keep /new/kept\nsymlink /new/data /new/link\ntruncate 1000 /new/kept\n"
    );
    let clean = dir.join("clean.img");
    crate::common::sparse_copy(base, &clean);
    assert!(debug_fs(&clean, &script, None));
    assert_e2fsck_silent(&clean);
    let before = crate::ext4_util::content_digest(base);
    let after = crate::ext4_util::content_digest(&clean);
    assert_ne!(before, after);
    let t = dir.join("t.img");
    let mut points = 0;
    let mut rolled_back = 0;
    for n in 0u64.. {
        std::fs::remove_file(&t).ok();
        crate::common::sparse_copy(base, &t);
        let ok = debug_fs(&t, &script, Some(n));
        if !ok {
            // The next read-write open rolls the interrupted commit back.
            drop(ImageFile::open(&t, Access::ReadWrite).expect("open after crash"));
        }
        let got = crate::ext4_util::content_digest(&t);
        assert!(
            got == before || got == after,
            "fault after {n} writes: the image is neither the old nor the new one"
        );
        assert_e2fsck_silent(&t);
        points += 1;
        if got == before {
            rolled_back += 1;
        }
        if ok {
            break;
        }
        assert!(n < 10_000, "the sync never completes");
    }
    eprintln!("{points} fault points, {rolled_back} rolled back");
    (points, rolled_back)
}

/// ebsim's first edits of the files the kernel wrote (both file-layer
/// round trips): 30 new files in the kernel's htree directory `/kdir`,
/// every third of its `kernel-file-number-NNNN` removed, and
/// `/kernel/a/b/c/k3` removed.
pub fn edit_kernel_files<D: ebsim::blockdev::BlockDevice>(
    fs: &mut ebsim::fs::ext4::files::Ext4Files<D>,
) {
    let ctx = root_ctx();
    let kdir = resolve(fs, "/kdir");
    for i in 0..30 {
        let a = fs
            .mknod(
                ctx,
                kdir,
                format!("ebsim-{i}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            )
            .expect("create in htree dir");
        fs.write(ctx, a.ino, 0, &bytes(200 + i, 3000))
            .expect("write");
    }
    for i in (0..400).step_by(3) {
        fs.unlink(ctx, kdir, format!("kernel-file-number-{i:04}").as_bytes())
            .expect("unlink");
    }
    let c = resolve(fs, "/kernel/a/b/c");
    fs.unlink(ctx, c, b"k3").expect("unlink");
}
