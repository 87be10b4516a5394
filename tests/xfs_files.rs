//! The XFS file write path (`xfs::XfsFiles`) against xfs_repair and the
//! kernel: trees written by ebsim are repair-clean, the kernel reads them
//! back exactly (content, size, mode, owner, links, targets, statfs), the
//! kernel's own additions are read back by ebsim; full disks stop where
//! the kernel stops; an interrupted sync leaves the image as it was or as
//! a clean run leaves it.

mod common;
mod xfs_util;

use common::{require_tools, run, stdout};
use ebsim::blockdev::{ImageFile, image::Access};
use ebsim::fs::node::{
    Cred, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, Ino, RenameFlags, SetAttr, Timespec,
};
use ebsim::fs::xfs::{self, XfsFiles};
use std::path::Path;
use xfs_util::*;

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_000_000,
            nsec: 123_456_789,
        },
    }
}

/// Makes an XFS of `size` bytes on a new sparse file with ebsim's mkfs.
fn ebsim_mkfs(path: &Path, size: u64) {
    let mut f = ImageFile::create(path, size).expect("create image");
    let opts = xfs::mkfs::MkfsOptions {
        uuid: *uuid::Uuid::new_v4().as_bytes(),
        label: Vec::new(),
        dblocks: None,
        times: xfs::inode::MkfsTimes {
            root: xfs::inode::Timestamp::EPOCH,
            rbm: xfs::inode::Timestamp::EPOCH,
            rsum: xfs::inode::Timestamp::EPOCH,
        },
        features: None,
        ask: Default::default(),
    };
    let plan = xfs::mkfs::plan(&f, &opts).expect("plan");
    xfs::mkfs::apply(&mut f, &plan).expect("mkfs");
}

fn open(path: &Path) -> XfsFiles<ImageFile> {
    XfsFiles::open(ImageFile::open(path, Access::ReadWrite).expect("open image")).expect("open xfs")
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all<F: FileSystem>(fs: &F, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(ino).expect("getattr").size as usize;
    let mut buf = vec![0u8; size];
    let n = fs.read(ino, 0, &mut buf).expect("read");
    assert_eq!(n, size);
    buf
}

fn assert_repair_clean(img: &Path) {
    let (rc, out) = repair(img);
    assert_eq!(rc, 0, "xfs_repair -n: {out}");
}

#[test]
fn smoke_tree_is_repair_clean() {
    if !require_tools(&["xfs_repair"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G);
    let c = ctx();
    {
        let mut fs = open(&img);
        let root = fs.root();
        let d = fs.mkdir(c, root, b"dir", 0o755).expect("mkdir").ino;
        let f = fs
            .mknod(c, d, b"file", FileType::Regular, 0o644, 0)
            .expect("create")
            .ino;
        let data = pattern(1, 100_000);
        assert_eq!(fs.write(c, f, 0, &data).expect("write"), data.len());
        assert_eq!(read_all(&fs, f), data);
        let s = fs
            .symlink(c, root, b"link", b"dir/file")
            .expect("symlink")
            .ino;
        assert_eq!(fs.readlink(s).expect("readlink"), b"dir/file");
        let long = vec![b'x'; 600];
        let s2 = fs.symlink(c, root, b"long", &long).expect("symlink").ino;
        assert_eq!(fs.readlink(s2).expect("readlink"), long);
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    let fs = open(&img);
    let root = fs.root();
    let d = fs.lookup(root, b"dir").expect("lookup").ino;
    let f = fs.lookup(d, b"file").expect("lookup").ino;
    assert_eq!(read_all(&fs, f), pattern(1, 100_000));
}

// ---------------------------------------------------------------- manifests

/// What the kernel and ebsim must agree on for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: FileType,
    perm: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    size: u64,
    /// SHA-256 of the non-zero 4 KiB blocks and their offsets.
    hash: String,
    target: Vec<u8>,
    rdev: u64,
    /// `st_blocks`.
    blocks: u64,
    mtime: (i64, u32),
}

type Manifest = std::collections::BTreeMap<String, Node>;

/// Hashes a file's content from candidate data ranges: only non-zero
/// 4 KiB blocks count (with their offsets), so two readers that see holes,
/// unwritten extents and zero blocks differently agree on equal content.
fn content_hash(size: u64, ranges: &[(u64, u64)], mut read: impl FnMut(u64, &mut [u8])) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let mut last_end = 0u64;
    for &(s, e) in ranges {
        let mut pos = (s / 4096 * 4096).max(last_end);
        let e = e.min(size);
        while pos < e {
            let n = (e - pos).min(buf.len() as u64) as usize;
            read(pos, &mut buf[..n]);
            for (i, blk) in buf[..n].chunks(4096).enumerate() {
                if blk.iter().any(|&b| b != 0) {
                    h.update((pos + 4096 * i as u64).to_le_bytes());
                    h.update(blk);
                }
            }
            pos += n as u64;
        }
        last_end = last_end.max(e);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn ebsim_manifest(fs: &XfsFiles<ImageFile>) -> Manifest {
    let mut out = Manifest::new();
    let mut stack = vec![(String::new(), fs.root())];
    while let Some((path, dir)) = stack.pop() {
        for e in fs.readdir(dir).expect("readdir") {
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let a = fs.getattr(e.ino).expect("getattr");
            assert_eq!(a.kind, e.kind, "{p}: entry type vs inode");
            let mut n = Node {
                kind: a.kind,
                perm: u32::from(a.perm),
                uid: a.uid,
                gid: a.gid,
                nlink: a.nlink,
                size: a.size,
                hash: String::new(),
                target: Vec::new(),
                rdev: u64::from(a.rdev),
                blocks: a.blocks,
                mtime: (a.mtime.sec, a.mtime.nsec),
            };
            match a.kind {
                FileType::Directory => {
                    n.size = 0;
                    stack.push((p.clone(), e.ino));
                }
                FileType::Regular => {
                    let ranges = fs.data_extents(e.ino).expect("extents");
                    n.hash = content_hash(a.size, &ranges, |off, buf| {
                        let got = fs.read(e.ino, off, buf).expect("read");
                        assert_eq!(got, buf.len(), "{p}: short read at {off}");
                    });
                }
                FileType::Symlink => n.target = fs.readlink(e.ino).expect("readlink"),
                _ => {}
            }
            out.insert(p, n);
        }
    }
    out
}

fn kernel_manifest(root: &Path) -> Manifest {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Manifest::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(root).expect("under root").display());
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                FileType::Directory
            } else if ft.is_symlink() {
                FileType::Symlink
            } else if ft.is_file() {
                FileType::Regular
            } else if ft.is_fifo() {
                FileType::Fifo
            } else if ft.is_socket() {
                FileType::Socket
            } else if ft.is_char_device() {
                FileType::CharDevice
            } else {
                FileType::BlockDevice
            };
            let mut n = Node {
                kind,
                perm: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                nlink: m.nlink() as u32,
                size: m.size(),
                hash: String::new(),
                target: Vec::new(),
                rdev: m.rdev(),
                blocks: m.blocks(),
                mtime: (m.mtime(), m.mtime_nsec() as u32),
            };
            match kind {
                FileType::Directory => {
                    n.size = 0;
                    stack.push(p.clone());
                }
                FileType::Regular => {
                    use std::os::unix::fs::FileExt;
                    let f = std::fs::File::open(&p).expect("open");
                    let ranges = data_ranges(&p);
                    n.hash = content_hash(m.size(), &ranges, |off, buf| {
                        f.read_exact_at(buf, off).expect("read");
                    });
                }
                FileType::Symlink => {
                    use std::os::unix::ffi::OsStrExt;
                    n.target = std::fs::read_link(&p)
                        .expect("readlink")
                        .as_os_str()
                        .as_bytes()
                        .to_vec();
                }
                _ => {}
            }
            out.insert(rel, n);
        }
    }
    out
}

/// Compares two manifests, field by field, naming the first differences.
fn assert_same(a: &Manifest, b: &Manifest, what: &str, with_mtime: bool) {
    let mut diffs = Vec::new();
    for (p, n) in a {
        match b.get(p) {
            None => diffs.push(format!("{p}: only in the first")),
            Some(m) => {
                let mut m = m.clone();
                if !with_mtime {
                    m.mtime = n.mtime;
                }
                if &m != n {
                    diffs.push(format!("{p}: {n:?} vs {m:?}"));
                }
            }
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("{p}: only in the second"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
}

// ---------------------------------------------------------------- the tree

fn user() -> Ctx {
    Ctx {
        cred: Cred {
            uid: 1000,
            gid: 1000,
        },
        now: Timespec {
            sec: 1_700_000_100,
            nsec: 7,
        },
    }
}

fn lookup_path<F: FileSystem>(fs: &F, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs
            .lookup(ino, part.as_bytes())
            .unwrap_or_else(|e| panic!("lookup {path}: {e}"))
            .ino;
    }
    ino
}

fn create<F: FileSystem>(fs: &mut F, c: Ctx, dir: Ino, name: &str, data: &[u8]) -> Ino {
    let ino = fs
        .mknod(c, dir, name.as_bytes(), FileType::Regular, 0o644, 0)
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
        .ino;
    if !data.is_empty() {
        assert_eq!(fs.write(c, ino, 0, data).expect("write"), data.len());
    }
    ino
}

/// Writes the test tree with ebsim: every kind of file, directories of
/// every format, links, renames, removals, attribute changes.
/// `prealloc` is the size of the big preallocated file.
fn write_tree(fs: &mut XfsFiles<ImageFile>, prealloc: u64) {
    let c = ctx();
    let root = fs.root();
    let a = fs.mkdir(c, root, b"a", 0o755).expect("mkdir a").ino;
    let b = fs.mkdir(c, a, b"b", 0o755).expect("mkdir b").ino;
    let cc = fs.mkdir(c, b, b"c", 0o750).expect("mkdir c").ino;
    let d = fs.mkdir(c, cc, b"d", 0o700).expect("mkdir d").ino;
    create(fs, c, d, "empty", b"");
    create(fs, c, d, "one", b"1");
    let page = create(fs, c, d, "page", &pattern(2, 4096));
    let mib = create(fs, c, d, "mib", &pattern(3, M as usize));
    // Sparse: data, a hole, data; then extended with a hole.
    let sp = create(fs, c, a, "sparse", &pattern(4, 4096));
    fs.write(c, sp, 100 * M + 123, &pattern(5, 8192))
        .expect("write far");
    fs.setattr(
        c,
        sp,
        SetAttr {
            size: Some(300 * M),
            ..Default::default()
        },
    )
    .expect("extend");
    // Zeros over a hole stay a hole.
    let z = create(fs, c, a, "zeros", &vec![0u8; M as usize]);
    assert_eq!(fs.getattr(z).expect("getattr").blocks, 0);
    // 40 extents: a bmap btree.
    let frag = create(fs, c, a, "frag", b"");
    for i in 0..40u64 {
        fs.write(c, frag, i * 8192, &pattern(100 + i, 4096))
            .expect("frag write");
    }
    // Directories of every format.
    let sfd = fs.mkdir(c, root, b"sfdir", 0o755).expect("mkdir").ino;
    for i in 0..5 {
        create(fs, c, sfd, &format!("s{i}"), b"");
    }
    let bd = fs.mkdir(c, root, b"blockdir", 0o755).expect("mkdir").ino;
    for i in 0..40 {
        create(fs, c, bd, &format!("entry-{i:04}"), b"");
    }
    let ld = fs.mkdir(c, root, b"leafdir", 0o755).expect("mkdir").ino;
    for i in 0..200 {
        create(
            fs,
            c,
            ld,
            &format!("leaf-entry-{i:05}"),
            &pattern(i, (i % 3) as usize * 10),
        );
    }
    let big = fs.mkdir(c, root, b"big", 0o755).expect("mkdir").ino;
    for i in 0..3100u64 {
        let data = if i % 97 == 0 {
            pattern(i, 100)
        } else {
            Vec::new()
        };
        create(fs, c, big, &format!("file-{i:05}"), &data);
    }
    for i in (10..3100).step_by(50) {
        fs.unlink(c, big, format!("file-{i:05}").as_bytes())
            .expect("unlink");
    }
    // Symlinks, local and remote.
    fs.symlink(c, a, b"link_local", b"b/c/d/mib")
        .expect("symlink");
    let long: Vec<u8> = b"x/".repeat(250).into_iter().chain(*b"end").collect();
    fs.symlink(c, a, b"link_remote", &long).expect("symlink");
    // Hard links.
    fs.link(c, mib, a, b"hl1").expect("link");
    fs.link(c, mib, big, b"hl2").expect("link");
    // Renames: a file across directories, a directory across directories,
    // over an existing file, NOREPLACE, EXCHANGE.
    fs.rename(c, d, b"one", a, b"one_moved", RenameFlags::default())
        .expect("rename");
    fs.rename(c, b, b"c", sfd, b"c_moved", RenameFlags::default())
        .expect("rename dir");
    create(fs, c, a, "victim", b"victim");
    create(fs, c, b, "x", b"replacement");
    fs.rename(c, b, b"x", a, b"victim", RenameFlags::default())
        .expect("rename over");
    let e = fs
        .rename(
            c,
            a,
            b"one_moved",
            a,
            b"victim",
            RenameFlags {
                noreplace: true,
                exchange: false,
            },
        )
        .expect_err("noreplace");
    assert_eq!(e.kind(), ErrorKind::Exists);
    fs.rename(
        c,
        a,
        b"one_moved",
        a,
        b"b",
        RenameFlags {
            noreplace: false,
            exchange: true,
        },
    )
    .expect("exchange");
    // Removals.
    let gone = fs.mkdir(c, root, b"gone", 0o755).expect("mkdir").ino;
    create(fs, c, gone, "f", &pattern(9, 10_000));
    let e = fs.rmdir(c, root, b"gone").expect_err("not empty");
    assert_eq!(e.kind(), ErrorKind::DirectoryNotEmpty);
    fs.unlink(c, gone, b"f").expect("unlink");
    fs.rmdir(c, root, b"gone").expect("rmdir");
    // Attributes.
    fs.setattr(
        c,
        page,
        SetAttr {
            perm: Some(0o600),
            uid: Some(1000),
            gid: Some(1000),
            mtime: Some(Timespec {
                sec: 1_000_000_000,
                nsec: 5,
            }),
            atime: Some(Timespec {
                sec: 1_000_000_001,
                nsec: 6,
            }),
            ..Default::default()
        },
    )
    .expect("setattr");
    // Special files and a file of another user.
    fs.mknod(c, a, b"fifo", FileType::Fifo, 0o644, 0)
        .expect("fifo");
    fs.mknod(c, a, b"null", FileType::CharDevice, 0o666, (1 << 8) | 3)
        .expect("chardev");
    let u = user();
    let home = fs.mkdir(c, root, b"home", 0o755).expect("mkdir").ino;
    fs.setattr(
        c,
        home,
        SetAttr {
            uid: Some(1000),
            gid: Some(1000),
            ..Default::default()
        },
    )
    .expect("chown");
    create(fs, u, home, "mine", &pattern(11, 5000));
    // Preallocation: KEEP_SIZE, the big one, and a write into it.
    let keep = create(fs, c, root, "keep", b"");
    fs.fallocate(
        c,
        keep,
        0,
        64 * M,
        FallocateMode::Allocate { keep_size: true },
    )
    .expect("keep size");
    let pre = create(fs, c, root, "prealloc", b"");
    fs.fallocate(
        c,
        pre,
        0,
        prealloc,
        FallocateMode::Allocate { keep_size: false },
    )
    .expect("fallocate");
    fs.write(c, pre, prealloc / 2 + 100, &pattern(12, 3 * 4096))
        .expect("write into unwritten");
    // Truncation and punching.
    let t = create(fs, c, a, "trunc", &pattern(13, 100_000));
    fs.setattr(
        c,
        t,
        SetAttr {
            size: Some(5000),
            ..Default::default()
        },
    )
    .expect("truncate");
    fs.setattr(
        c,
        t,
        SetAttr {
            size: Some(20000),
            ..Default::default()
        },
    )
    .expect("extend");
    let p = create(fs, c, a, "punch", &pattern(14, M as usize));
    fs.fallocate(c, p, 300 * 1024 + 17, 100 * 1024, FallocateMode::PunchHole)
        .expect("punch");
}

/// A line in the kernel log, so that the lines after it can be told apart.
fn kmsg_marker() -> String {
    let m = format!("ebsim-xfs-files-{}", uuid::Uuid::new_v4());
    std::fs::write("/dev/kmsg", format!("{m}\n")).expect("write /dev/kmsg");
    m
}

/// Kernel log lines after `marker` that mention `dev`.
fn kmsg_since(marker: &str, dev: &str) -> Vec<String> {
    let o = run(&mut std::process::Command::new("dmesg"));
    let text = stdout(&o);
    let after = text.rsplit_once(marker).map_or("", |(_, a)| a);
    let name = dev.trim_start_matches("/dev/");
    after
        .lines()
        .filter(|l| l.contains(name))
        .map(str::to_string)
        .collect()
}

fn ebsim_statfs(fs: &XfsFiles<ImageFile>) -> [u64; 5] {
    let s = fs.statfs().expect("statfs");
    [s.blocks, s.bfree, s.bavail, s.files, s.ffree]
}

/// The kernel's additions: files, a directory, appends, a write into the
/// unwritten file, enough entries to convert two directories, removals.
fn kernel_writes(root: &Path, prealloc: u64) {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let k = root.join("kdir");
    std::fs::create_dir(&k).expect("mkdir");
    for i in 0..50u64 {
        std::fs::write(
            k.join(format!("k{i}")),
            pattern(500 + i, (i * 1000) as usize),
        )
        .expect("write");
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("sfdir/c_moved/d/mib"))
        .expect("open");
    f.write_all(&pattern(600, 70_000)).expect("append");
    f.sync_all().expect("fsync");
    let pre = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("prealloc"))
        .expect("open");
    pre.write_all_at(&pattern(601, M as usize), prealloc / 3)
        .expect("write");
    for i in 0..700 {
        std::fs::write(root.join(format!("leafdir/kernel-{i:05}")), b"").expect("create");
    }
    for i in 0..30 {
        std::fs::write(root.join(format!("sfdir/kernel-{i}")), b"k").expect("create");
    }
    std::fs::remove_file(root.join("big/file-00020")).expect("rm");
    std::fs::rename(root.join("a/trunc"), root.join("kdir/trunc")).expect("rename");
    std::fs::create_dir_all(root.join("kdir/x/y/z")).expect("mkdir -p");
    std::os::unix::fs::symlink("../a", root.join("kdir/up")).expect("symlink");
    let long = "k/".repeat(400);
    std::os::unix::fs::symlink(&long, root.join("kdir/long-link")).expect("symlink");
    nix::unistd::mkfifo(
        &root.join("kdir/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("mkfifo");
    // 40 separate extents: the kernel's own bmap btree.
    let frag = std::fs::File::create(root.join("kdir/frag")).expect("create");
    for i in 0..40u64 {
        frag.write_all_at(&pattern(800 + i, 4096), i * 8192)
            .expect("write");
        frag.sync_data().expect("fdatasync");
    }
}

/// A tree made by the kernel alone: nested directories, a directory of
/// 600 entries, files of several sizes, a 40-extent file, a
/// preallocation written into, symlinks, a FIFO, a hard link.
fn kernel_populate(root: &Path) {
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
    for (i, size) in [0usize, 1, 4096, 100_000, 1 << 20].iter().enumerate() {
        std::fs::write(root.join(format!("a/b/c/f{i}")), pattern(i as u64, *size)).expect("write");
    }
    std::fs::create_dir(root.join("many")).expect("mkdir");
    for i in 0..600 {
        std::fs::write(root.join(format!("many/entry-{i:04}")), b"x").expect("create");
    }
    let frag = std::fs::File::create(root.join("frag")).expect("create");
    for i in 0..40u64 {
        frag.write_all_at(&pattern(800 + i, 4096), i * 8192)
            .expect("write");
        frag.sync_data().expect("fdatasync");
    }
    let o = run(std::process::Command::new("fallocate")
        .args(["-l", "50M"])
        .arg(root.join("pre")));
    assert!(o.status.success(), "fallocate");
    let pre = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("pre"))
        .expect("open");
    pre.write_all_at(&pattern(9, 12345), 20 * M).expect("write");
    std::os::unix::fs::symlink("a/b/c/f4", root.join("short")).expect("symlink");
    std::os::unix::fs::symlink("z/".repeat(400), root.join("long")).expect("symlink");
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    std::fs::hard_link(root.join("a/b/c/f3"), root.join("hard")).expect("link");
}

/// ebsim's second round on what the kernel left.
fn ebsim_again(fs: &mut XfsFiles<ImageFile>) {
    let c = ctx();
    let k = lookup_path(fs, "/kdir");
    for i in 0..10 {
        fs.unlink(c, k, format!("k{i}").as_bytes())
            .expect("unlink kernel file");
    }
    let f = lookup_path(fs, "/kdir/k20");
    fs.write(c, f, 5, &pattern(700, 30_000))
        .expect("write kernel file");
    let ld = lookup_path(fs, "/leafdir");
    for i in 0..300 {
        fs.unlink(c, ld, format!("kernel-{i:05}").as_bytes())
            .expect("unlink");
    }
    fs.rename(c, k, b"x", ld, b"x_from_kernel", RenameFlags::default())
        .expect("rename");
    fs.mkdir(c, k, b"ebsim-again", 0o755).expect("mkdir");
    let sfd = lookup_path(fs, "/sfdir");
    create(fs, c, sfd, "after-kernel", &pattern(701, 12345));
}

/// `core.format` and the bmap of a path, as xfs_db prints them.
fn db_format(img: &Path, path: &str) -> (String, String) {
    let out = xfs_db(img, &[&format!("path {path}"), "p core.format", "bmap"]);
    let fmt = out
        .lines()
        .find_map(|l| l.strip_prefix("core.format = "))
        .unwrap_or("?")
        .to_string();
    (fmt, out)
}

/// Checks that the tree exercises every directory format and a bmap
/// btree, as xfs_db sees them.
fn assert_formats(img: &Path) {
    let (f, _) = db_format(img, "/sfdir");
    assert_eq!(f, "1 (local)", "/sfdir");
    let (f, out) = db_format(img, "/blockdir");
    assert_eq!(f, "2 (extents)", "/blockdir");
    assert!(
        !out.contains("offset 8388608"),
        "/blockdir is one block: {out}"
    );
    let (_, out) = db_format(img, "/leafdir");
    assert!(
        out.contains("offset 8388608") && !out.contains("offset 16777216"),
        "/leafdir is a leaf directory: {out}"
    );
    let (_, out) = db_format(img, "/big");
    assert!(
        out.contains("offset 16777216"),
        "/big is a node directory: {out}"
    );
    let (f, _) = db_format(img, "/a/frag");
    assert_eq!(f, "3 (btree)", "/a/frag");
}

/// The whole round trip on one image. `prealloc`: the big fallocate.
fn round_trip(img: &Path, prealloc: u64) {
    {
        let mut fs = open(img);
        write_tree(&mut fs, prealloc);
        fs.sync().expect("sync");
    }
    assert_repair_clean(img);
    let isize = xfs::Xfs::open(ImageFile::open(img, Access::ReadOnly).expect("open"))
        .expect("xfs")
        .sb()
        .inodesize;
    if isize == 512 {
        // The thresholds below are those of 512-byte inodes.
        assert_formats(img);
    }
    let (m1, s1) = {
        let fs = open(img);
        (ebsim_manifest(&fs), ebsim_statfs(&fs))
    };
    let k2 = {
        let _lock = common::mount_lock();
        let marker = kmsg_marker();
        let lm = LoopMount::mount(img, false);
        let log = kmsg_since(&marker, &lm.dev);
        assert!(
            !log.iter()
                .any(|l| l.contains("ENOSPC") || l.contains("orrupt") || l.contains("rror")),
            "kernel log at mount: {log:#?}"
        );
        assert_same(
            &m1,
            &kernel_manifest(lm.path()),
            "ebsim's tree as the kernel reads it",
            true,
        );
        assert_eq!(lm.statfs(), s1, "statvfs of the mount vs ebsim's statfs");
        kernel_writes(lm.path(), prealloc);
        let k2 = kernel_manifest(lm.path());
        drop(lm);
        k2
    };
    assert_repair_clean(img);
    let s2 = {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(img, true);
        lm.statfs()
    };
    {
        let mut fs = XfsFiles::open(ImageFile::open(img, Access::ReadWrite).expect("open"))
            .expect("open after the kernel");
        assert_same(
            &k2,
            &ebsim_manifest(&fs),
            "the kernel's tree as ebsim reads it",
            true,
        );
        let kfrag = lookup_path(&fs, "/kdir/frag");
        assert_eq!(fs.data_extents(kfrag).expect("extents").len(), 40);
        let ro = XfsFiles::open_read_only(ImageFile::open(img, Access::ReadOnly).expect("open"))
            .expect("open ro");
        assert_eq!(ebsim_statfs(&ro), s2, "read-only statfs after the kernel");
        drop(ro);
        ebsim_again(&mut fs);
        fs.sync().expect("sync");
    }
    assert_repair_clean(img);
    let (m3, s3) = {
        let fs = open(img);
        (ebsim_manifest(&fs), ebsim_statfs(&fs))
    };
    assert!(m3.len() > 3000, "the tree has {} paths", m3.len());
    let _lock = common::mount_lock();
    let lm = LoopMount::mount(img, false);
    assert_same(
        &m3,
        &kernel_manifest(lm.path()),
        "ebsim's second round as the kernel reads it",
        true,
    );
    assert_eq!(lm.statfs(), s3, "statvfs after ebsim's second round");
}

fn round_trip_tools() -> bool {
    require_tools(&["xfs_repair", "mkfs.xfs", "losetup"]) && common::require_mount()
}

#[test]
fn round_trip_1g() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G);
    round_trip(&img, 300 * M);
}

#[test]
fn round_trip_300m() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, 300 * M);
    round_trip(&img, 100 * M);
}

#[test]
fn round_trip_200g_with_150g_prealloc() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, 200 * G);
    round_trip(&img, 150 * G);
}

#[test]
fn round_trip_grown_by_ebsim() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G + 4096);
    std::fs::File::options()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(3 * G)
        .expect("grow file");
    let o = run(common::ebsim("xfs_growfs").arg("-d").arg(&img));
    assert!(o.status.success(), "xfs_growfs: {}", common::stderr(&o));
    round_trip(&img, G);
}

/// The feature sets `mkfs.xfs -m`/`-i sparse=` make that the write path
/// updates (without finobt, without sparse inode chunks — 4-block chunk
/// alignment —, without bigtime): made by ebsim's mkfs.xfs, written, and
/// judged by xfs_repair and the kernel.
#[test]
fn round_trip_other_feature_sets() {
    if !round_trip_tools() {
        return;
    }
    for opts in [
        &["-m", "finobt=0", "-i", "sparse=0"][..],
        &["-i", "sparse=0"],
        &["-m", "finobt=0,reflink=0"],
        &["-m", "bigtime=0,inobtcount=0"],
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        sparse_file(&img, G);
        let o = run(common::ebsim("mkfs.xfs").arg("-q").args(opts).arg(&img));
        assert!(
            o.status.success(),
            "mkfs.xfs {opts:?}: {}",
            common::stderr(&o)
        );
        round_trip(&img, 300 * M);
    }
}

/// With rmapbt (which ebsim does not update) a write is refused by name
/// and the image is left as it was.
#[test]
fn rmapbt_writes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    sparse_file(&img, G);
    let o = run(common::ebsim("mkfs.xfs")
        .args(["-q", "-m", "rmapbt=1"])
        .arg(&img));
    assert!(o.status.success(), "mkfs.xfs: {}", common::stderr(&o));
    let before = sparse_hash(&img);
    let err = XfsFiles::open(ImageFile::open(&img, Access::ReadWrite).expect("open image"))
        .err()
        .expect("rmapbt refused");
    assert!(err.to_string().contains("rmapbt=1"), "{err}");
    assert_eq!(sparse_hash(&img), before, "image changed");
}

#[test]
fn round_trip_made_by_real_mkfs() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    sparse_file(&img, G);
    let o = run(real("mkfs.xfs").arg("-q").arg(&img));
    assert!(o.status.success(), "mkfs.xfs: {}", common::stderr(&o));
    round_trip(&img, 300 * M);
}

#[test]
fn prealloc_150g_keeps_the_image_sparse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, 200 * G);
    let before = common::allocated(&img);
    {
        let mut fs = open(&img);
        let root = fs.root();
        let f = create(&mut fs, ctx(), root, "data", b"");
        fs.fallocate(
            ctx(),
            f,
            0,
            150 * G,
            FallocateMode::Allocate { keep_size: false },
        )
        .expect("fallocate");
        assert_eq!(fs.getattr(f).expect("getattr").size, 150 * G);
        fs.sync().expect("sync");
    }
    let grew = common::allocated(&img) - before;
    assert!(
        grew < M,
        "a 150 GiB fallocate grew the image by {grew} bytes"
    );
}

// ---------------------------------------------------------------- full disks

/// Largest `n` in `0..hi` for which `ok(n)` holds (`ok` monotone).
fn bisect(hi: u64, mut ok: impl FnMut(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0u64, hi);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Whether the kernel can `fallocate -l LEN` a new file on a fresh copy
/// of `base`, as root or as `uid` (in a directory that user owns).
fn kernel_fallocate_ok(base: &Path, work: &Path, len: u64, uid: Option<u32>) -> bool {
    let _ = std::fs::remove_file(work);
    common::sparse_copy(base, work);
    let lm = LoopMount::mount(work, false);
    let ok = match uid {
        None => run(std::process::Command::new("fallocate")
            .arg("-l")
            .arg(len.to_string())
            .arg(lm.path().join("f")))
        .status
        .success(),
        Some(u) => {
            let d = lm.path().join("u");
            std::fs::create_dir(&d).expect("mkdir");
            std::os::unix::fs::chown(&d, Some(u), Some(u)).expect("chown");
            run(std::process::Command::new("setpriv")
                .arg(format!("--reuid={u}"))
                .arg(format!("--regid={u}"))
                .arg("--clear-groups")
                .arg("fallocate")
                .arg("-l")
                .arg(len.to_string())
                .arg(d.join("f")))
            .status
            .success()
        }
    };
    drop(lm);
    ok
}

/// Whether ebsim can fallocate LEN on `img` (nothing is synced).
fn ebsim_fallocate_ok(img: &Path, len: u64, uid: Option<u32>) -> bool {
    let mut fs = open(img);
    let root = fs.root();
    let (dir, c) = match uid {
        None => (root, ctx()),
        Some(u) => {
            let d = fs.mkdir(ctx(), root, b"u", 0o755).expect("mkdir").ino;
            fs.setattr(
                ctx(),
                d,
                SetAttr {
                    uid: Some(u),
                    gid: Some(u),
                    ..Default::default()
                },
            )
            .expect("chown");
            let mut c = ctx();
            c.cred = Cred { uid: u, gid: u };
            (d, c)
        }
    };
    let f = create(&mut fs, c, dir, "f", b"");
    let before = fs.statfs().expect("statfs");
    match fs.fallocate(c, f, 0, len, FallocateMode::Allocate { keep_size: false }) {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NoSpace, "fallocate {len}: {e}");
            assert_eq!(
                fs.statfs().expect("statfs"),
                before,
                "a failed fallocate changed statfs"
            );
            assert_eq!(fs.getattr(f).expect("getattr").blocks, 0);
            false
        }
    }
}

/// The largest fallocate on `base` for the kernel and for ebsim, in
/// blocks, as root and as uid 1000: equal within one block.
fn fallocate_limits_match(base: &Path, dir: &Path) {
    let work = dir.join("work.img");
    let hi = {
        let fs = open(base);
        fs.statfs().expect("statfs").bfree + 2
    };
    for uid in [None, Some(1000)] {
        let kernel = {
            let _lock = common::mount_lock();
            bisect(hi, |n| kernel_fallocate_ok(base, &work, n * 4096, uid))
        };
        let ours = bisect(hi, |n| ebsim_fallocate_ok(base, n * 4096, uid));
        eprintln!("largest fallocate as {uid:?}: kernel {kernel} blocks, ebsim {ours}");
        assert!(
            kernel.abs_diff(ours) <= 1,
            "largest fallocate as {uid:?}: kernel {kernel} blocks, ebsim {ours}"
        );
        // The largest one, written, is repair-clean and mounts without
        // the kernel warning about per-AG reservations.
        let _ = std::fs::remove_file(&work);
        common::sparse_copy(base, &work);
        {
            let mut fs = open(&work);
            let root = fs.root();
            let f = create(&mut fs, ctx(), root, "f", b"");
            fs.fallocate(
                ctx(),
                f,
                0,
                ours * 4096,
                FallocateMode::Allocate { keep_size: false },
            )
            .expect("largest fallocate");
            fs.sync().expect("sync");
        }
        assert_repair_clean(&work);
        let _lock = common::mount_lock();
        let marker = kmsg_marker();
        let lm = LoopMount::mount(&work, false);
        let log = kmsg_since(&marker, &lm.dev);
        assert!(
            !log.iter().any(|l| l.contains("ENOSPC")),
            "mount of a full fs: {log:#?}"
        );
    }
}

/// Bytes written in 1 MiB chunks until ENOSPC, each chunk synced before
/// the next is written.
///
/// Why synced: a buffered write(2) on XFS reserves delayed allocation —
/// the data blocks, the worst case of bmap btree blocks for each delalloc
/// extent, and speculative preallocation past EOF — and writeback turns
/// the reservation into real extents, giving back what was not needed. On
/// ENOSPC the kernel flushes, drops the preallocation and retries once.
/// With plain buffered writes, how much of the file is still delalloc when
/// the disk fills depends on how far writeback has got, so the stop point
/// moved with load (136,249,344–136,314,880 bytes on a quiet machine,
/// 135,725,056 once under load). Writing every chunk to disk before the
/// next (write + fdatasync for root, `dd oflag=dsync` for the user, as a
/// careful real fill does) leaves only the last write's reservation
/// outstanding, and the kernel stops at the same byte every time: 18 runs,
/// quiet and under load (two busy loops and a 300 MB dd rewriting a file
/// in parallel, load average 13), all stopped at 136,773,632 bytes, 72 KiB
/// before ebsim, which allocates exactly what it writes and stops at the
/// transaction reserve.
fn kernel_fill(base: &Path, work: &Path, uid: Option<u32>) -> u64 {
    use std::io::Write;
    let _ = std::fs::remove_file(work);
    common::sparse_copy(base, work);
    let _lock = common::mount_lock();
    let lm = LoopMount::mount(work, false);
    if let Some(u) = uid {
        // dd as the user, 1 MiB at a time (O_DSYNC), until ENOSPC.
        let d = lm.path().join("u");
        std::fs::create_dir(&d).expect("mkdir");
        std::os::unix::fs::chown(&d, Some(u), Some(u)).expect("chown");
        let _ = run(std::process::Command::new("setpriv")
            .arg(format!("--reuid={u}"))
            .arg(format!("--regid={u}"))
            .arg("--clear-groups")
            .args([
                "dd",
                "if=/dev/urandom",
                "bs=1M",
                "iflag=fullblock",
                "oflag=dsync",
                "status=none",
            ])
            .arg(format!("of={}", d.join("fill").display())));
        return std::fs::metadata(d.join("fill")).expect("stat").len();
    }
    let chunk = pattern(77, M as usize);
    let mut f = std::fs::File::create(lm.path().join("fill")).expect("create");
    let mut n = 0u64;
    while let Ok(w) = f.write(&chunk) {
        n += w as u64;
        if w < chunk.len() {
            break;
        }
        // Each chunk on disk before the next (see kernel_fill).
        if f.sync_data().is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    n
}

fn ebsim_fill(base: &Path, work: &Path, uid: Option<u32>) -> u64 {
    let _ = std::fs::remove_file(work);
    common::sparse_copy(base, work);
    let mut fs = open(work);
    let root = fs.root();
    let (dir, c) = match uid {
        None => (root, ctx()),
        Some(u) => {
            let d = fs.mkdir(ctx(), root, b"u", 0o755).expect("mkdir").ino;
            fs.setattr(
                ctx(),
                d,
                SetAttr {
                    uid: Some(u),
                    gid: Some(u),
                    ..Default::default()
                },
            )
            .expect("chown");
            let mut c = ctx();
            c.cred = Cred { uid: u, gid: u };
            (d, c)
        }
    };
    let f = create(&mut fs, c, dir, "fill", b"");
    let chunk = pattern(77, M as usize);
    let mut n = 0u64;
    loop {
        match fs.write(c, f, n, &chunk) {
            Ok(w) => {
                n += w as u64;
                if w < chunk.len() {
                    break;
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                break;
            }
        }
    }
    fs.sync().expect("sync");
    drop(fs);
    assert_repair_clean(work);
    n
}

fn full_disk_tools() -> bool {
    require_tools(&["xfs_repair", "losetup", "fallocate", "setpriv"]) && common::require_mount()
}

#[test]
fn full_disk_fresh_1g_matches_kernel() {
    if !full_disk_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ebsim_mkfs(&base, G);
    fallocate_limits_match(&base, dir.path());
    let work = dir.path().join("fill.img");
    let mut ours = Vec::new();
    for uid in [None, Some(1000)] {
        let (k, e) = (
            kernel_fill(&base, &work, uid),
            ebsim_fill(&base, &work, uid),
        );
        eprintln!("write fill as {uid:?}: kernel {k} bytes, ebsim {e}");
        assert!(
            k.abs_diff(e) <= M,
            "write fill as {uid:?}: kernel {k} bytes, ebsim {e}"
        );
        ours.push(e);
    }
    // No root reserve on XFS.
    assert_eq!(ours[0], ours[1]);
}

#[test]
fn full_disk_used_300m_matches_kernel() {
    if !full_disk_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ebsim_mkfs(&base, 300 * M);
    {
        let mut fs = open(&base);
        write_tree(&mut fs, 20 * M);
        fs.sync().expect("sync");
    }
    fallocate_limits_match(&base, dir.path());
    let work = dir.path().join("fill.img");
    let mut ours = Vec::new();
    for uid in [None, Some(1000)] {
        let (k, e) = (
            kernel_fill(&base, &work, uid),
            ebsim_fill(&base, &work, uid),
        );
        eprintln!("write fill as {uid:?}: kernel {k} bytes, ebsim {e}");
        assert!(
            k.abs_diff(e) <= M,
            "write fill as {uid:?}: kernel {k} bytes, ebsim {e}"
        );
        ours.push(e);
    }
    // No root reserve on XFS.
    assert_eq!(ours[0], ours[1]);
}

// ---------------------------------------------------------------- crashes

/// The changes the crash sweep syncs: new files with data, a directory
/// converted to block format, a preallocation, removals that free blocks,
/// a rename.
fn crash_script(fs: &mut XfsFiles<ImageFile>) {
    let c = ctx();
    let root = fs.root();
    let d = fs.mkdir(c, root, b"new", 0o755).expect("mkdir").ino;
    for i in 0..40u64 {
        create(
            fs,
            c,
            d,
            &format!("file-{i:03}"),
            &pattern(900 + i, (i as usize) * 3000),
        );
    }
    let p = create(fs, c, root, "pre", b"");
    fs.fallocate(
        c,
        p,
        0,
        50 * M,
        FallocateMode::Allocate { keep_size: false },
    )
    .expect("fallocate");
    let old = lookup_path(fs, "/old");
    for i in 0..20 {
        fs.unlink(c, old, format!("o{i}").as_bytes())
            .expect("unlink");
    }
    fs.rename(c, old, b"o30", d, b"moved", RenameFlags::default())
        .expect("rename");
    let keep = lookup_path(fs, "/old/o31");
    fs.write(c, keep, 1000, &pattern(999, 20_000))
        .expect("overwrite");
}

/// The child side of the crash sweep: runs the script and syncs (the
/// sync stops at the injected fault).
#[test]
fn crash_child() {
    let Ok(img) = std::env::var("EBSIM_XFS_CRASH_CHILD") else {
        return;
    };
    let mut fs = open(Path::new(&img));
    crash_script(&mut fs);
    match fs.sync() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("sync: {e}");
            std::process::exit(3);
        }
    }
}

fn run_crash_child(img: &Path, fault: Option<u64>) -> std::process::Output {
    let mut c = std::process::Command::new(std::env::current_exe().expect("test binary"));
    c.args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("EBSIM_XFS_CRASH_CHILD", img);
    match fault {
        Some(n) => c.env("EBSIM_FAULT_AFTER_WRITES", n.to_string()),
        None => c.env_remove("EBSIM_FAULT_AFTER_WRITES"),
    };
    run(&mut c)
}

/// A sync interrupted at every write leaves the image exactly as before
/// (the undo log rolls it back on the next open) or, once every write is
/// made, exactly as an uninterrupted sync leaves it; repair-clean either
/// way.
#[test]
fn crash_sweep_over_a_sync() {
    let repair_ok = require_tools(&["xfs_repair"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ebsim_mkfs(&base, G);
    {
        let mut fs = open(&base);
        let root = fs.root();
        let old = fs.mkdir(ctx(), root, b"old", 0o755).expect("mkdir").ino;
        for i in 0..40u64 {
            create(&mut fs, ctx(), old, &format!("o{i}"), &pattern(i, 50_000));
        }
        fs.sync().expect("sync");
    }
    let before = sparse_hash(&base);
    let clean = dir.path().join("clean.img");
    common::sparse_copy(&base, &clean);
    let o = run_crash_child(&clean, None);
    assert!(o.status.success(), "clean run: {}", common::stderr(&o));
    let after = sparse_hash(&clean);
    assert_ne!(before, after);
    if repair_ok {
        assert_repair_clean(&clean);
    }
    let work = dir.path().join("work.img");
    let mut completed = false;
    for n in 0..10_000u64 {
        let _ = std::fs::remove_file(&work);
        common::sparse_copy(&base, &work);
        let o = run_crash_child(&work, Some(n));
        // Reopening rolls an interrupted change back.
        drop(ImageFile::open(&work, Access::ReadWrite).expect("recover"));
        let got = sparse_hash(&work);
        if o.status.success() {
            assert_eq!(got, after, "a complete sync differs from the clean run");
            eprintln!("the sync completed with the fault after {n} writes");
            completed = true;
            break;
        }
        assert_eq!(o.status.code(), Some(3), "child: {}", common::stderr(&o));
        assert_eq!(got, before, "after a crash at write {n}");
        if repair_ok && n % 16 == 0 {
            assert_repair_clean(&work);
        }
    }
    assert!(completed, "the sync never completed");
}

// ---------------------------------------------------------------- btrees

fn db_field(img: &Path, cmds: &[&str], field: &str) -> u64 {
    let out = xfs_db(img, cmds);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field} = ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {out}"))
}

/// Free-space and inode btrees of more than one level: written by ebsim
/// (leaf splits, blocks from the AGFL, agf_btreeblks, agi_iblocks and
/// agi_fblocks), read back by the kernel and repair, grown further by the
/// kernel and read by ebsim, and shrunk again by ebsim.
#[test]
fn multi_level_ag_btrees() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G);
    let c = ctx();
    {
        let mut fs = open(&img);
        let root = fs.root();
        // 17000 inodes in one AG: more chunk records than one inobt leaf
        // holds (252); one freed inode per chunk: a two-level finobt too.
        let many = fs.mkdir(c, root, b"many", 0o755).expect("mkdir").ino;
        for i in 0..17000u64 {
            create(&mut fs, c, many, &format!("inode-{i:05}"), b"");
        }
        for i in (0..17000u64).step_by(64) {
            fs.unlink(c, many, format!("inode-{i:05}").as_bytes())
                .expect("unlink");
        }
        // 3000 one-block files, every other one removed: about 1500 free
        // extents in one AG, three bnobt/cntbt leaves.
        let frag = fs.mkdir(c, root, b"frag", 0o755).expect("mkdir").ino;
        for i in 0..3000u64 {
            create(&mut fs, c, frag, &format!("f{i:04}"), &pattern(i, 4096));
        }
        for i in (0..3000u64).step_by(2) {
            fs.unlink(c, frag, format!("f{i:04}").as_bytes())
                .expect("unlink");
        }
        // A directory in the fragmented AG gets its blocks one hole at a
        // time: a bmap btree directory.
        let fag = fs.ino_ag(frag);
        let mut fragdir = None;
        for i in 0..8 {
            let d = fs
                .mkdir(c, root, format!("fd{i}").as_bytes(), 0o755)
                .expect("mkdir")
                .ino;
            if fs.ino_ag(d) == fag && fragdir.is_none() {
                fragdir = Some((i, d));
            }
        }
        let (i, fd) = fragdir.expect("a directory in the fragmented AG");
        for k in 0..2000u64 {
            create(
                &mut fs,
                c,
                fd,
                &format!("entry-in-a-fragmented-dir-{k:05}"),
                b"",
            );
        }
        fs.rename(
            c,
            root,
            format!("fd{i}").as_bytes(),
            root,
            b"fragdir",
            RenameFlags::default(),
        )
        .expect("rename");
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    assert_eq!(db_format(&img, "/fragdir").0, "3 (btree)", "/fragdir");
    let ino_ag = |name: &str| {
        let fs = open(&img);
        let ino = lookup_path(&fs, name);
        // AG of the directory's inodes: agno = ino >> (agblklog + inopblog).
        ino >> (16 + 3)
    };
    let many_ag = ino_ag("/many");
    let frag_ag = ino_ag("/frag");
    let agi = format!("agi {many_ag}");
    assert!(
        db_field(&img, &[&agi, "p level"], "level") >= 2,
        "inobt height"
    );
    assert!(
        db_field(&img, &[&agi, "p free_level"], "free_level") >= 2,
        "finobt height"
    );
    let agf = format!("agf {frag_ag}");
    assert!(
        db_field(&img, &[&agf, "p bnolevel"], "bnolevel") >= 2,
        "bnobt height"
    );
    assert!(
        db_field(&img, &[&agf, "p cntlevel"], "cntlevel") >= 2,
        "cntbt height"
    );
    assert!(
        db_field(&img, &[&agf, "p btreeblks"], "btreeblks") >= 4,
        "agf_btreeblks"
    );

    let (m1, s1) = {
        let fs = open(&img);
        (ebsim_manifest(&fs), ebsim_statfs(&fs))
    };
    let k2 = {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(&img, false);
        assert_same(
            &m1,
            &kernel_manifest(lm.path()),
            "multi-level trees as the kernel reads them",
            true,
        );
        assert_eq!(lm.statfs(), s1, "statvfs with multi-level trees");
        // The kernel splits and joins further.
        for i in (1..3000u64).step_by(4) {
            std::fs::remove_file(lm.path().join(format!("frag/f{i:04}"))).expect("rm");
        }
        for i in 0..2000u64 {
            std::fs::write(lm.path().join(format!("many/kernel-{i:04}")), b"").expect("create");
        }
        let k2 = kernel_manifest(lm.path());
        drop(lm);
        k2
    };
    assert_repair_clean(&img);
    {
        let mut fs = open(&img);
        assert_same(
            &k2,
            &ebsim_manifest(&fs),
            "the kernel's multi-level trees as ebsim reads them",
            true,
        );
        let root = fs.root();
        for d in ["many", "frag", "fragdir"] {
            let dino = lookup_path(&fs, d);
            for e in fs.readdir(dino).expect("readdir") {
                fs.unlink(c, dino, &e.name).expect("unlink");
            }
            fs.rmdir(c, root, d.as_bytes()).expect("rmdir");
        }
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    assert_eq!(
        db_field(&img, &[&agi, "p level"], "level"),
        1,
        "inobt shrank back"
    );
    assert_eq!(
        db_field(&img, &[&agf, "p bnolevel"], "bnolevel"),
        1,
        "bnobt shrank back"
    );
    let s3 = ebsim_statfs(&open(&img));
    let _lock = common::mount_lock();
    let lm = LoopMount::mount(&img, false);
    assert_eq!(lm.statfs(), s3, "statvfs after ebsim shrank the trees");
}

/// With `n` blocks left free, whether the kernel can create a file and a
/// directory (each reserves a new inode chunk, inode btree splits and a
/// directory insertion: 47 blocks on a 1 GiB filesystem).
fn kernel_creates_with_free(base: &Path, work: &Path, bfree: u64, n: u64) -> (bool, bool) {
    let _ = std::fs::remove_file(work);
    common::sparse_copy(base, work);
    let lm = LoopMount::mount(work, false);
    let o = run(std::process::Command::new("fallocate")
        .arg("-l")
        .arg(((bfree - n) * 4096).to_string())
        .arg(lm.path().join("f")));
    assert!(o.status.success(), "fallocate");
    assert_eq!(lm.statfs()[1], n);
    let file = std::fs::File::create(lm.path().join("g")).is_ok();
    let dir = std::fs::create_dir(lm.path().join("d")).is_ok();
    (file, dir)
}

/// On a nearly full filesystem a create fails exactly where the kernel's
/// does, and a failed operation changes nothing.
#[test]
fn enospc_thresholds_and_nothing_changed() {
    if !full_disk_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ebsim_mkfs(&base, G);
    let bfree = open(&base).statfs().expect("statfs").bfree;
    let work = dir.path().join("work.img");
    let c = ctx();
    for n in [46u64, 47] {
        let kernel = {
            let _lock = common::mount_lock();
            kernel_creates_with_free(&base, &work, bfree, n)
        };
        let mut fs = open(&base);
        let root = fs.root();
        let f = create(&mut fs, c, root, "f", b"");
        fs.fallocate(
            c,
            f,
            0,
            (bfree - n) * 4096,
            FallocateMode::Allocate { keep_size: false },
        )
        .expect("fallocate");
        assert_eq!(fs.statfs().expect("statfs").bfree, n);
        let ours = (
            fs.mknod(c, root, b"g", FileType::Regular, 0o644, 0).is_ok(),
            fs.mkdir(c, root, b"d", 0o755).is_ok(),
        );
        assert_eq!(ours, kernel, "creates with {n} blocks free: (file, dir)");
    }
    // Fill completely; every operation that needs space fails and
    // changes nothing.
    let mut fs = open(&base);
    let root = fs.root();
    let keep = create(&mut fs, c, root, "keep", &pattern(1, 10_000));
    let f = create(&mut fs, c, root, "f", b"");
    let left = fs.statfs().expect("statfs").bfree;
    fs.fallocate(
        c,
        f,
        0,
        (left - 4) * 4096,
        FallocateMode::Allocate { keep_size: false },
    )
    .expect("fill");
    let before = (
        fs.statfs().expect("statfs"),
        fs.readdir(root).expect("readdir"),
    );
    let nospc = |r: Result<(), ebsim::fs::node::NodeError>| {
        assert_eq!(r.expect_err("no space").kind(), ErrorKind::NoSpace);
    };
    nospc(fs.mkdir(c, root, b"d", 0o755).map(|_| ()));
    nospc(fs.symlink(c, root, b"s", b"target").map(|_| ()));
    nospc(
        fs.mknod(c, root, b"n", FileType::Regular, 0o644, 0)
            .map(|_| ()),
    );
    nospc(fs.write(c, keep, 1 << 30, b"far away").map(|_| ()));
    nospc(fs.fallocate(
        c,
        keep,
        0,
        1 << 30,
        FallocateMode::Allocate { keep_size: true },
    ));
    assert_eq!(
        (
            fs.statfs().expect("statfs"),
            fs.readdir(root).expect("readdir")
        ),
        before
    );
    assert_eq!(read_all(&fs, keep), pattern(1, 10_000));
    // link and rename go on without a reservation when the entry fits
    // (the kernel retries them without one).
    fs.link(c, keep, root, b"l")
        .expect("link on a full filesystem");
    fs.rename(c, root, b"l", root, b"l2", RenameFlags::default())
        .expect("rename on a full filesystem");
    fs.unlink(c, root, b"l2").expect("unlink");
    // Removing still works and gives the space back.
    fs.unlink(c, root, b"f").expect("unlink");
    assert!(fs.statfs().expect("statfs").bfree > left - 10);
    fs.sync().expect("sync");
    drop(fs);
    assert_repair_clean(&base);
}

// ---------------------------------------------------------------- sparse chunks

fn sparse_records(fs: &XfsFiles<ImageFile>) -> usize {
    (0..4u32)
        .flat_map(|ag| fs.inode_chunks(ag))
        .filter(|r| r.holemask != 0)
        .count()
}

/// Fills a filesystem with 7-block files and removes every other one,
/// then preallocates every free extent of 8 blocks or more: free space is
/// 7-block holes, each holding a 4-aligned 4-block run (a sparse chunk's
/// part) but no aligned 8-block chunk. Then creates `more` empty files:
/// once the freed inodes are used up, only sparse chunks can be had.
fn fragment_and_create(fs: &mut XfsFiles<ImageFile>, more: u64) {
    let c = ctx();
    let root = fs.root();
    let fill = fs.mkdir(c, root, b"fill", 0o755).expect("mkdir").ino;
    let mut n = 0u64;
    loop {
        let name = format!("f{n:06}");
        let Ok(a) = fs.mknod(c, fill, name.as_bytes(), FileType::Regular, 0o644, 0) else {
            break;
        };
        if fs
            .write(c, a.ino, 0, &pattern(n, 7 * 4096))
            .map(|w| w < 7 * 4096)
            .unwrap_or(true)
        {
            break;
        }
        n += 1;
    }
    for i in (0..n).step_by(2) {
        fs.unlink(c, fill, format!("f{i:06}").as_bytes())
            .expect("unlink");
    }
    // A directory in every AG, to preallocate each AG's large extents.
    let mut dirs = std::collections::BTreeMap::new();
    for i in 0..16 {
        let d = fs
            .mkdir(c, root, format!("pad{i}").as_bytes(), 0o755)
            .expect("mkdir")
            .ino;
        dirs.entry(fs.ino_ag(d)).or_insert(d);
    }
    for (&agno, &d) in &dirs {
        for k in 0..500 {
            let Some(longest) = fs.free_extents(agno).iter().map(|e| e.1).max() else {
                break;
            };
            if longest < 8 {
                break;
            }
            let Ok(a) = fs.mknod(
                c,
                d,
                format!("p{k}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            ) else {
                break;
            };
            if fs
                .fallocate(
                    c,
                    a.ino,
                    0,
                    u64::from(longest) * 4096,
                    FallocateMode::Allocate { keep_size: false },
                )
                .is_err()
            {
                break;
            }
        }
    }
    let new = fs.mkdir(c, root, b"new", 0o755).expect("mkdir").ino;
    for i in 0..more {
        if fs
            .mknod(
                c,
                new,
                format!("n{i:06}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            )
            .is_err()
        {
            break;
        }
    }
}

/// Sparse inode chunks: made by ebsim when no aligned chunk fits (and read
/// by the kernel and repair), made by the kernel (and read, used and freed
/// by ebsim).
#[test]
fn sparse_inode_chunks() {
    if !round_trip_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // ebsim makes them.
    let img = dir.path().join("ebsim.img");
    ebsim_mkfs(&img, 300 * M);
    {
        let mut fs = open(&img);
        fragment_and_create(&mut fs, 12_000);
        assert!(sparse_records(&fs) > 0, "ebsim made no sparse chunk");
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    let (m, s) = {
        let fs = open(&img);
        (ebsim_manifest(&fs), ebsim_statfs(&fs))
    };
    {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(&img, false);
        assert_same(
            &m,
            &kernel_manifest(lm.path()),
            "ebsim's sparse chunks as the kernel reads them",
            true,
        );
        assert_eq!(lm.statfs(), s);
    }
    // The kernel makes them, on free space ebsim fragmented the same way.
    let img = dir.path().join("kernel.img");
    ebsim_mkfs(&img, 300 * M);
    {
        let mut fs = open(&img);
        fragment_and_create(&mut fs, 0);
        fs.sync().expect("sync");
    }
    let k = {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(&img, false);
        let root = lm.path();
        for i in 0..12_000 {
            if std::fs::write(root.join(format!("new/n{i:06}")), b"").is_err() {
                break;
            }
        }
        kernel_manifest(root)
    };
    assert_repair_clean(&img);
    {
        let mut fs = open(&img);
        assert!(sparse_records(&fs) > 0, "the kernel made no sparse chunk");
        assert_same(
            &k,
            &ebsim_manifest(&fs),
            "the kernel's sparse chunks as ebsim reads them",
            true,
        );
        // Free every inode of the new files (whole sparse chunks go back to
        // free space) and make new ones.
        let c = ctx();
        let new = lookup_path(&fs, "/new");
        for e in fs.readdir(new).expect("readdir") {
            fs.unlink(c, new, &e.name).expect("unlink");
        }
        for i in 0..3000u64 {
            fs.mknod(
                c,
                new,
                format!("again{i:05}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            )
            .expect("create");
        }
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    let (m, s) = {
        let fs = open(&img);
        (ebsim_manifest(&fs), ebsim_statfs(&fs))
    };
    let _lock = common::mount_lock();
    let lm = LoopMount::mount(&img, false);
    assert_same(
        &m,
        &kernel_manifest(lm.path()),
        "ebsim's changes to sparse chunks as the kernel reads them",
        true,
    );
    assert_eq!(lm.statfs(), s);
}

/// The write path on a partition (a `Slice` of a GPT disk image): the
/// kernel reads the partition through a loop device with an offset.
#[test]
fn on_a_partition() {
    if !(round_trip_tools() && require_tools(&["sgdisk"])) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("disk.img");
    sparse_file(&img, 2 * G);
    let o = run(real("sgdisk")
        .args(["-n", "1:2048:0", "-t", "1:8300"])
        .arg(&img));
    assert!(o.status.success(), "sgdisk: {}", common::stderr(&o));
    let (off, len) = (2048 * 512, 2 * G - 2048 * 512 - 34 * 512);
    let len = len / 4096 * 4096;
    {
        let dev = ImageFile::open(&img, Access::ReadWrite).expect("open");
        let mut part = ebsim::blockdev::Slice::new(dev, off, len).expect("slice");
        let opts = xfs::mkfs::MkfsOptions {
            uuid: [0x5a; 16],
            label: Vec::new(),
            dblocks: None,
            times: xfs::inode::MkfsTimes {
                root: xfs::inode::Timestamp::EPOCH,
                rbm: xfs::inode::Timestamp::EPOCH,
                rsum: xfs::inode::Timestamp::EPOCH,
            },
            features: None,
            ask: Default::default(),
        };
        let plan = xfs::mkfs::plan(&part, &opts).expect("plan");
        xfs::mkfs::apply(&mut part, &plan).expect("mkfs");
        let mut fs = XfsFiles::open(part).expect("open xfs");
        let root = fs.root();
        let d = fs.mkdir(ctx(), root, b"data", 0o755).expect("mkdir").ino;
        create(&mut fs, ctx(), d, "file", &pattern(42, 300_000));
        fs.sync().expect("sync");
    }
    let _lock = common::mount_lock();
    let o = run(std::process::Command::new("losetup")
        .args([
            "-f",
            "--show",
            "-o",
            &off.to_string(),
            "--sizelimit",
            &len.to_string(),
        ])
        .arg(&img));
    assert!(o.status.success(), "losetup: {}", common::stderr(&o));
    let dev = stdout(&o).trim().to_string();
    let (rc, out) = {
        let o = run(real("xfs_repair").arg("-n").arg(&dev));
        (
            o.status.code(),
            format!("{}{}", stdout(&o), common::stderr(&o)),
        )
    };
    let mnt = tempfile::tempdir().expect("mnt");
    let mounted = run(std::process::Command::new("mount")
        .arg(&dev)
        .arg(mnt.path()));
    let content = std::fs::read(mnt.path().join("data/file"));
    let _ = run(std::process::Command::new("umount").arg(mnt.path()));
    let _ = run(std::process::Command::new("losetup").arg("-d").arg(&dev));
    assert_eq!(rc, Some(0), "xfs_repair -n on the partition: {out}");
    assert!(
        mounted.status.success(),
        "mount: {}",
        common::stderr(&mounted)
    );
    assert_eq!(content.expect("read"), pattern(42, 300_000));
}

// ---------------------------------------------------------------- variants

/// Makes a 1 GiB XFS with the real mkfs.xfs and `opts`.
fn real_mkfs(img: &Path, opts: &[&str]) {
    sparse_file(img, G);
    let o = run(real("mkfs.xfs").arg("-q").args(opts).arg(img));
    assert!(
        o.status.success(),
        "mkfs.xfs {opts:?}: {}",
        common::stderr(&o)
    );
}

/// Round trips on filesystems made with other options that ebsim writes:
/// 4 KiB sectors, no reflink/finobt/inobtcount, 64-bit extent counters,
/// old timestamps, 1 KiB inodes.
#[test]
fn round_trip_mkfs_variants() {
    if !round_trip_tools() {
        return;
    }
    for opts in [
        &["-s", "size=4096"][..],
        &["-m", "reflink=0,finobt=0,inobtcount=0"],
        &["-i", "nrext64=1"],
        &["-m", "bigtime=0"],
        &["-i", "size=1024"],
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        real_mkfs(&img, opts);
        eprintln!("round trip with mkfs.xfs {opts:?}");
        round_trip(&img, 300 * M);
    }
}

/// What ebsim does not write is refused by name; it is still read, and
/// read right (compared with the kernel's view).
#[test]
fn refuses_features_it_does_not_write_but_reads_them() {
    if !round_trip_tools() {
        return;
    }
    for (opts, feature) in [
        (&["-m", "rmapbt=1"][..], "rmapbt"),
        (&["-n", "version=ci"], "ascii-ci"),
        (&["-n", "size=8192"], "directory blocks of 8192 bytes"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        real_mkfs(&img, opts);
        // This kernel no longer mounts ascii-ci filesystems.
        let k = if feature == "ascii-ci" {
            Manifest::new()
        } else {
            let _lock = common::mount_lock();
            let lm = LoopMount::mount(&img, false);
            kernel_populate(lm.path());
            kernel_manifest(lm.path())
        };
        let err = XfsFiles::open(ImageFile::open(&img, Access::ReadWrite).expect("open"))
            .err()
            .unwrap_or_else(|| panic!("{opts:?} opened read-write"));
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{opts:?}: {err}");
        assert!(err.to_string().contains(feature), "{opts:?}: {err}");
        let ro = XfsFiles::open_read_only(ImageFile::open(&img, Access::ReadOnly).expect("open"))
            .unwrap_or_else(|e| panic!("{opts:?} read-only: {e}"));
        assert_same(
            &k,
            &ebsim_manifest(&ro),
            &format!("{opts:?} read by ebsim"),
            true,
        );
    }
}

/// A log the kernel left dirty (a shutdown without unmount) is refused,
/// read-write and read-only.
#[test]
fn refuses_a_dirty_log() {
    if !round_trip_tools() || !require_tools(&["xfs_io"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G);
    {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(&img, false);
        std::fs::write(lm.path().join("f"), b"data").expect("write");
        let o = run(real("xfs_io")
            .args(["-x", "-c", "shutdown -f"])
            .arg(lm.path()));
        assert!(o.status.success(), "shutdown: {}", common::stderr(&o));
    }
    let err = XfsFiles::open(ImageFile::open(&img, Access::ReadWrite).expect("open"))
        .err()
        .expect("a dirty log opened");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("log is dirty"), "{err}");
    assert!(
        XfsFiles::open_read_only(ImageFile::open(&img, Access::ReadOnly).expect("open")).is_err()
    );
}

/// The checks the kernel makes, as error kinds; none of them changes
/// anything.
#[test]
fn errors_as_the_kernel_gives_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, 300 * M);
    let mut fs = open(&img);
    let c = ctx();
    let root = fs.root();
    let d = fs.mkdir(c, root, b"d", 0o755).expect("mkdir").ino;
    let sub = fs.mkdir(c, d, b"sub", 0o755).expect("mkdir").ino;
    let f = create(&mut fs, c, d, "f", b"hello");
    let before = (fs.statfs().expect("statfs"), ebsim_manifest(&fs));
    let kind = |r: Result<(), ebsim::fs::node::NodeError>| r.expect_err("must fail").kind();
    let unit = |r: Result<ebsim::fs::node::Attr, ebsim::fs::node::NodeError>| r.map(|_| ());
    assert_eq!(
        kind(unit(fs.link(c, d, root, b"dirlink"))),
        ErrorKind::NotPermitted
    );
    assert_eq!(kind(unit(fs.mkdir(c, d, b"f", 0o755))), ErrorKind::Exists);
    assert_eq!(kind(unit(fs.lookup(d, b"missing"))), ErrorKind::NotFound);
    assert_eq!(
        kind(unit(fs.mkdir(c, f, b"x", 0o755))),
        ErrorKind::NotADirectory
    );
    assert_eq!(kind(fs.unlink(c, root, b"d")), ErrorKind::IsADirectory);
    assert_eq!(kind(fs.rmdir(c, d, b"f")), ErrorKind::NotADirectory);
    assert_eq!(kind(fs.rmdir(c, root, b"d")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(
        kind(unit(fs.mkdir(c, d, &[b'n'; 256], 0o755))),
        ErrorKind::NameTooLong
    );
    assert_eq!(
        kind(unit(fs.mkdir(c, d, b"a/b", 0o755))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(unit(fs.mknod(c, d, b"dd", FileType::Directory, 0o755, 0))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(fs.write(c, d, 0, b"x").map(|_| ())),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        kind(fs.read(d, 0, &mut [0; 4]).map(|_| ())),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        kind(unit(fs.setattr(
            c,
            d,
            SetAttr {
                size: Some(0),
                ..Default::default()
            }
        ))),
        ErrorKind::IsADirectory
    );
    assert_eq!(kind(fs.readlink(f).map(|_| ())), ErrorKind::InvalidArgument);
    assert_eq!(
        kind(unit(fs.symlink(c, d, b"toolong", &[b'x'; 1025]))),
        ErrorKind::NameTooLong
    );
    // A directory into itself or below itself.
    assert_eq!(
        kind(fs.rename(c, root, b"d", sub, b"d", RenameFlags::default())),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(fs.rename(c, root, b"d", d, b"f", RenameFlags::default())),
        ErrorKind::InvalidArgument
    );
    // Types must match when replacing.
    create(&mut fs, c, root, "file", b"");
    assert_eq!(
        kind(fs.rename(c, root, b"file", d, b"sub", RenameFlags::default())),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        kind(fs.rename(c, d, b"sub", root, b"file", RenameFlags::default())),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(fs.rename(
            c,
            root,
            b"missing",
            root,
            b"x",
            RenameFlags {
                noreplace: false,
                exchange: true
            }
        )),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.fallocate(c, f, 0, 0, FallocateMode::Allocate { keep_size: false })),
        ErrorKind::InvalidArgument
    );
    fs.unlink(c, root, b"file").expect("unlink");
    assert_eq!((fs.statfs().expect("statfs"), ebsim_manifest(&fs)), before);
    assert_eq!(fs.read(f, 100, &mut [0; 4]).expect("read past EOF"), 0);
    // A rename onto a hard link of itself changes nothing.
    fs.link(c, f, d, b"f2").expect("link");
    fs.rename(c, d, b"f", d, b"f2", RenameFlags::default())
        .expect("same inode");
    assert_eq!(fs.getattr(f).expect("getattr").nlink, 2);
    // Read-only: every change is refused.
    drop(fs);
    let mut ro = XfsFiles::open_read_only(ImageFile::open(&img, Access::ReadOnly).expect("open"))
        .expect("open ro");
    let root = ro.root();
    assert_eq!(
        kind(unit(ro.mkdir(c, root, b"x", 0o755))),
        ErrorKind::ReadOnly
    );
}

/// Files the kernel made immutable or append-only (chattr +i, +a) are
/// refused as the VFS refuses them: EPERM.
#[test]
fn immutable_and_append_only_files() {
    if !(round_trip_tools() && require_tools(&["chattr"])) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, 300 * M);
    {
        let _lock = common::mount_lock();
        let lm = LoopMount::mount(&img, false);
        for (name, flag) in [("imm", "+i"), ("app", "+a")] {
            std::fs::write(lm.path().join(name), b"0123456789").expect("write");
            let o = run(real("chattr").arg(flag).arg(lm.path().join(name)));
            assert!(o.status.success(), "chattr: {}", common::stderr(&o));
        }
    }
    let mut fs = open(&img);
    let c = ctx();
    let root = fs.root();
    let imm = lookup_path(&fs, "/imm");
    let app = lookup_path(&fs, "/app");
    let eperm = |r: Result<(), ebsim::fs::node::NodeError>| {
        assert_eq!(r.expect_err("must fail").kind(), ErrorKind::NotPermitted);
    };
    eperm(fs.write(c, imm, 0, b"x").map(|_| ()));
    eperm(fs.write(c, imm, 10, b"x").map(|_| ()));
    eperm(fs.unlink(c, root, b"imm"));
    eperm(fs.link(c, imm, root, b"l").map(|_| ()));
    eperm(
        fs.setattr(
            c,
            imm,
            SetAttr {
                perm: Some(0o600),
                ..Default::default()
            },
        )
        .map(|_| ()),
    );
    eperm(fs.write(c, app, 0, b"x").map(|_| ()));
    eperm(fs.unlink(c, root, b"app"));
    eperm(fs.rename(c, root, b"app", root, b"moved", RenameFlags::default()));
    eperm(
        fs.setattr(
            c,
            app,
            SetAttr {
                size: Some(0),
                ..Default::default()
            },
        )
        .map(|_| ()),
    );
    eperm(fs.fallocate(c, app, 0, 4096, FallocateMode::PunchHole));
    assert_eq!(fs.write(c, app, 10, b"appended").expect("append"), 8);
    fs.sync().expect("sync");
    drop(fs);
    assert_repair_clean(&img);
    let fs = open(&img);
    assert_eq!(
        read_all(&fs, lookup_path(&fs, "/app")),
        b"0123456789appended"
    );
}
