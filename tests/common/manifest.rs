//! Manifests of a filesystem's tree — path → type, size, mode, owner,
//! link count, content (SHA-256) or symlink target, mtime — taken through
//! ebsim's own reader ([`of_fs`]) or through the kernel ([`of_dir`] on a
//! [`LoopMount`]), so a test can record one before a resize and verify it
//! after, both ways ([`Recorded`]).
#![allow(dead_code)]

use super::{run, stderr, stdout};
use ebsim::fs::node::{FileSystem, FileType, Ino};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a manifest records of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// "file", "dir", "symlink", "fifo", "char", "block", "socket".
    pub kind: &'static str,
    /// Size of a file or symlink (0 for the rest).
    pub size: u64,
    /// Permission bits.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    /// SHA-256 of a file (see [`sparse_digest`] past 64 MiB), the target
    /// of a symlink, `MAJ:MIN` of a device, or "".
    pub content: String,
    /// Modification time, seconds.
    pub mtime: i64,
}

/// Path (from the root, `/a/b`) → entry. `lost+found` at the root is left
/// out.
pub type Manifest = BTreeMap<String, Entry>;

/// Files up to this size are hashed whole; larger ones by their data.
pub const WHOLE_HASH_LIMIT: u64 = 64 << 20;

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

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

/// A digest of a large file costing only its data: the size and each
/// non-zero 4 KiB chunk inside `ranges`, with its offset. Equal contents
/// give equal digests whatever the ranges' boundaries.
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

fn fs_content(fs: &dyn FileSystem, ino: Ino, size: u64) -> String {
    if size <= WHOLE_HASH_LIMIT {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < size {
            let n = fs.read(ino, off, &mut buf).expect("read");
            assert!(n > 0, "short read at {off} of {size}");
            h.update(&buf[..n]);
            off += n as u64;
        }
        return hex(h.finalize());
    }
    let ranges = fs.data_ranges(ino).expect("data ranges");
    sparse_digest(size, &ranges, &mut |off, buf| {
        let n = fs.read(ino, off, buf).expect("read");
        assert_eq!(n, buf.len());
    })
}

fn dev_string(rdev: u64) -> String {
    format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    )
}

/// The manifest of everything in `fs`, through ebsim's reader.
pub fn of_fs(fs: &dyn FileSystem) -> Manifest {
    let mut out = Manifest::new();
    let mut stack = vec![(String::new(), fs.root())];
    while let Some((path, dir)) = stack.pop() {
        for e in fs.readdir(dir).expect("readdir") {
            let name = String::from_utf8(e.name.clone()).expect("utf8 name");
            if path.is_empty() && name == "lost+found" {
                continue;
            }
            let p = format!("{path}/{name}");
            let a = fs.getattr(e.ino).expect("getattr");
            assert_eq!(a.kind, e.kind, "{p}: entry type and inode type differ");
            let content = match a.kind {
                FileType::Regular => fs_content(fs, e.ino, a.size),
                FileType::Symlink => {
                    String::from_utf8(fs.readlink(e.ino).expect("readlink")).expect("utf8 target")
                }
                FileType::CharDevice | FileType::BlockDevice => dev_string(u64::from(a.rdev)),
                _ => String::new(),
            };
            if a.kind == FileType::Directory {
                stack.push((p.clone(), e.ino));
            }
            let sized = matches!(a.kind, FileType::Regular | FileType::Symlink);
            out.insert(
                p,
                Entry {
                    kind: kind_name(a.kind),
                    size: if sized { a.size } else { 0 },
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

fn host_content(path: &Path, size: u64) -> String {
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

/// The manifest of a directory tree on the host (a kernel mount).
pub fn of_dir(root: &Path) -> Manifest {
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
                ("char", dev_string(m.rdev()))
            } else if ft.is_block_device() {
                ("block", dev_string(m.rdev()))
            } else {
                ("socket", String::new())
            };
            out.insert(
                format!("/{}", r.display()),
                Entry {
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

/// The same manifest without what differs between filesystem types for
/// the same tree: directories' link counts (btrfs counts 1) and mtimes
/// (filling a directory stamps it).
pub fn portable(m: &Manifest) -> Manifest {
    m.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if v.kind == "dir" {
                v.nlink = 0;
                v.mtime = 0;
            }
            (k.clone(), v)
        })
        .collect()
}

/// Prefixes every path of `m` with `dir` (`/srv` + `/a` → `/srv/a`).
pub fn under(dir: &str, m: &Manifest) -> Manifest {
    m.iter()
        .map(|(k, v)| (format!("{dir}{k}"), v.clone()))
        .collect()
}

/// The entries of `m` under `dir` (excluded), with `dir` cut off.
pub fn subtree(m: &Manifest, dir: &str) -> Manifest {
    let pre = format!("{dir}/");
    m.iter()
        .filter_map(|(k, v)| k.strip_prefix(&pre).map(|r| (format!("/{r}"), v.clone())))
        .collect()
}

/// Asserts two manifests are equal, listing the differences.
pub fn assert_same(a: &Manifest, b: &Manifest, what: &str) {
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

/// A loop device over an image (or a byte range of it: a partition),
/// detached on drop.
pub struct Loop {
    pub dev: String,
}

impl Loop {
    /// `losetup -f --show [-o OFFSET --sizelimit LEN] IMG`.
    pub fn new(img: &Path, range: Option<(u64, u64)>) -> Loop {
        let mut c = Command::new("losetup");
        c.args(["-f", "--show"]);
        if let Some((off, len)) = range {
            c.args(["-o", &off.to_string(), "--sizelimit", &len.to_string()]);
        }
        let o = run(c.arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        Loop {
            dev: stdout(&o).trim().to_string(),
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        super::detach_loop(&self.dev);
    }
}

/// A kernel mount of an image or partition, unmounted (and its loop
/// device detached) on drop. Take `mount_lock()` first.
pub struct LoopMount {
    pub dir: tempfile::TempDir,
    lo: Loop,
    mounted: bool,
}

impl LoopMount {
    /// Mounts `img` (or its byte range `range`) read-write, or read-only
    /// with `norecovery` semantics left to the kernel's defaults.
    pub fn new(img: &Path, range: Option<(u64, u64)>, read_only: bool) -> LoopMount {
        let lo = Loop::new(img, range);
        let dir = tempfile::tempdir().expect("mount dir");
        let mut c = Command::new("mount");
        if read_only {
            c.args(["-o", "ro"]);
        }
        let o = run(c.arg(&lo.dev).arg(dir.path()));
        assert!(o.status.success(), "mount {}: {}", lo.dev, stderr(&o));
        LoopMount {
            dir,
            lo,
            mounted: true,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// statvfs: (frsize, blocks, bfree, bavail, files, ffree).
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

    /// Unmounts now, asserting it worked (retrying a moment while the
    /// kernel still calls the mount busy: something on the host may be
    /// looking at a new mount).
    pub fn umount(mut self) {
        let o = super::umount_retrying(self.dir.path());
        assert!(o.status.success(), "umount: {}", stderr(&o));
        self.mounted = false;
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
        let _ = &self.lo;
    }
}

/// Which checker: by the filesystem's magic, probed afresh (`-p`: blkid's
/// cache may remember what a loop device of the same name held before).
fn is_xfs(dev: &str) -> bool {
    let o = run(Command::new("blkid").args(["-p", "-o", "value", "-s", "TYPE", dev]));
    stdout(&o).trim() == "xfs"
}

/// The real checker on an image or partition (`e2fsck -fn` or
/// `xfs_repair -n`) must exit 0 and, for e2fsck, print nothing beyond its
/// pass lines and summary.
pub fn assert_fsck_clean(img: &Path, range: Option<(u64, u64)>) {
    let lo = Loop::new(img, range);
    if is_xfs(&lo.dev) {
        let o = run(Command::new("xfs_repair").arg("-n").arg(&lo.dev));
        assert!(
            o.status.success(),
            "xfs_repair -n {} (rc {:?}):\n{}{}",
            img.display(),
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        return;
    }
    let o = run(Command::new("e2fsck").arg("-fn").arg(&lo.dev));
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
        "e2fsck -fn {} {range:?} (rc {:?}):\n{}{}",
        img.display(),
        o.status.code(),
        out,
        stderr(&o)
    );
}

/// The byte range of partition `n` of `img`, as ebsim's partition layer
/// reads the table.
pub fn partition_range(img: &Path, n: u32) -> (u64, u64) {
    use ebsim::blockdev::ImageFile;
    use ebsim::blockdev::image::Access;
    let dev = ImageFile::open(img, Access::ReadOnly).expect("open image");
    let probe = ebsim::partition::probe(&dev).expect("probe table");
    let (_, start, len) = probe
        .label
        .expect("a partition table")
        .partitions()
        .into_iter()
        .find(|p| p.0 == n)
        .expect("the partition");
    (start * 512, len * 512)
}

/// A manifest recorded before a change, verified after it through
/// ebsim's reader and through a kernel mount.
pub struct Recorded {
    pub manifest: Manifest,
}

impl Recorded {
    /// Records through ebsim's reader (`ebsim::imgio::open`) and checks
    /// the kernel sees the same (a read-only loop mount).
    pub fn take(img: &Path, partition: Option<u32>) -> Recorded {
        let manifest = ebsim_manifest(img, partition);
        assert!(!manifest.is_empty(), "nothing to record");
        kernel_agrees(img, partition, &manifest, "before");
        Recorded { manifest }
    }

    /// Verifies the tree is unchanged: through ebsim's reader, the kernel,
    /// and the real checker.
    pub fn verify(&self, img: &Path, partition: Option<u32>, what: &str) {
        let now = ebsim_manifest(img, partition);
        assert_same(&self.manifest, &now, &format!("{what}: ebsim's reader"));
        kernel_agrees(img, partition, &self.manifest, what);
        let range = partition.map(|n| partition_range(img, n));
        assert_fsck_clean(img, range);
    }
}

/// The manifest through ebsim.
pub fn ebsim_manifest(img: &Path, partition: Option<u32>) -> Manifest {
    let o = ebsim::imgio::open(img, partition, false).expect("open the image's filesystem");
    of_fs(o.fs.as_ref())
}

fn kernel_agrees(img: &Path, partition: Option<u32>, want: &Manifest, what: &str) {
    let _lock = super::mount_lock();
    let range = partition.map(|n| partition_range(img, n));
    let m = LoopMount::new(img, range, true);
    let got = of_dir(m.path());
    m.umount();
    assert_same(want, &got, &format!("{what}: the kernel"));
}
