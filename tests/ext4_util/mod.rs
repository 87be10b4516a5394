//! Helpers of the ext4 integration tests: running mkfs/resize2fs (real and
//! ebsim) with pinned UUIDs and time, comparing dumpe2fs output and raw
//! metadata blocks, populating images and reading them back through
//! ebsim's own reader, and loop-mounting read-only for the kernel's statfs.
#![allow(dead_code)]

use crate::common::{self, run, stderr, stdout};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `-U` for every mkfs in these tests.
pub const UUID: &str = "11111111-2222-3333-4444-555555555555";
/// `-E hash_seed=` for every mkfs.
pub const HASH_SEED: &str = "66666666-7777-8888-9999-aaaaaaaaaaaa";
/// E2FSPROGS_FAKE_TIME for mkfs.
pub const MKFS_TIME: &str = "1700000000";
/// E2FSPROGS_FAKE_TIME for resize2fs.
pub const GROW_TIME: &str = "1700000500";
/// The real tools the differential tests need.
pub const TOOLS: &[&str] = &["mkfs.ext4", "resize2fs", "dumpe2fs", "e2fsck", "debugfs"];
/// 4 KiB.
pub const BS: u64 = 4096;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// What may differ between real e2fsprogs and ebsim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Nothing: mkfs, and resize2fs when it moves no block, count
    /// `s_kbytes_written` as e2fsprogs does (its write cache replayed).
    Exact,
    /// `s_kbytes_written` (and so the superblock checksum): resize2fs
    /// moving blocks and inode tables out of a growing descriptor table's
    /// way, or shrinking, where ebsim counts the bytes of its own batch.
    Moved,
}

/// dumpe2fs lines that may differ under [`Lifetime::Moved`].
const DUMPE2FS_EXCEPTIONS: &[&str] = &["Lifetime writes:", "Checksum:"];

/// Superblock byte ranges that may differ under [`Lifetime::Moved`]:
/// s_kbytes_written (0x178..0x180) and s_checksum (0x3FC..0x400), in every
/// superblock copy.
const SB_EXCEPTIONS: &[std::ops::Range<usize>] = &[0x178..0x180, 0x3FC..0x400];

/// A sparse file of `len` bytes.
pub fn sparse_file(path: &Path, len: u64) {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(len).expect("set_len");
}

pub fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.env(
        "PATH",
        format!(
            "/usr/sbin:/sbin:{}",
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    c
}

/// Real `mkfs.ext4 -q -F -U .. -E hash_seed=.. [extra] img`.
pub fn real_mkfs(img: &Path, extra: &[&str]) -> Output {
    let mut c = tool("mkfs.ext4");
    c.env("E2FSPROGS_FAKE_TIME", MKFS_TIME)
        .args([
            "-q",
            "-F",
            "-U",
            UUID,
            "-E",
            &format!("hash_seed={HASH_SEED}"),
        ])
        .args(extra)
        .arg(img);
    let o = run(&mut c);
    assert!(o.status.success(), "real mkfs failed: {}", stderr(&o));
    o
}

/// `ebsim mkfs.ext4` with the same arguments.
pub fn ebsim_mkfs(img: &Path, extra: &[&str]) -> Output {
    let mut c = common::ebsim("mkfs.ext4");
    c.env("E2FSPROGS_FAKE_TIME", MKFS_TIME)
        .args([
            "-q",
            "-F",
            "-U",
            UUID,
            "-E",
            &format!("hash_seed={HASH_SEED}"),
        ])
        .args(extra)
        .arg(img);
    let o = run(&mut c);
    assert!(
        o.status.success(),
        "ebsim mkfs failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Runs resize2fs (real or ebsim) in the image's directory on its file
/// name, so both print the same device name.
pub fn resize2fs(ebsim: bool, img: &Path, args: &[&str]) -> Output {
    let dir = img.parent().expect("dir");
    let name = img.file_name().expect("name");
    let mut c = if ebsim {
        common::ebsim("resize2fs")
    } else {
        tool("resize2fs")
    };
    c.current_dir(dir)
        .env("E2FSPROGS_FAKE_TIME", GROW_TIME)
        .args(args)
        .arg(name);
    run(&mut c)
}

/// Same, with a size argument.
pub fn resize2fs_to(ebsim: bool, img: &Path, size: &str) -> Output {
    let dir = img.parent().expect("dir");
    let name = img.file_name().expect("name");
    let mut c = if ebsim {
        common::ebsim("resize2fs")
    } else {
        tool("resize2fs")
    };
    c.current_dir(dir)
        .env("E2FSPROGS_FAKE_TIME", GROW_TIME)
        .arg(name)
        .arg(size);
    run(&mut c)
}

/// `dumpe2fs` (all groups, or `-h`) of an image.
pub fn dumpe2fs(img: &Path, header_only: bool) -> String {
    let mut c = tool("dumpe2fs");
    if header_only {
        c.arg("-h");
    }
    c.arg(img);
    let o = run(&mut c);
    assert!(o.status.success(), "dumpe2fs failed: {}", stderr(&o));
    stdout(&o)
}

/// Asserts two dumpe2fs outputs are equal (but for what `lifetime`
/// excuses).
pub fn assert_dumpe2fs_equal(real: &str, ours: &str, lifetime: Lifetime, what: &str) {
    let a: Vec<&str> = real.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    assert_eq!(a.len(), b.len(), "{what}: dumpe2fs line counts differ");
    let mut bad = Vec::new();
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            continue;
        }
        let excused = lifetime == Lifetime::Moved
            && DUMPE2FS_EXCEPTIONS
                .iter()
                .any(|p| x.starts_with(p) && y.starts_with(p));
        if !excused {
            bad.push(format!("real : {x}\nebsim: {y}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: dumpe2fs differs:\n{}",
        bad.join("\n")
    );
}

/// Runs both dumpe2fs in parallel and compares.
pub fn compare_dumpe2fs(
    real: &Path,
    ours: &Path,
    header_only: bool,
    lifetime: Lifetime,
    what: &str,
) {
    let (r, o) = std::thread::scope(|s| {
        let a = s.spawn(|| dumpe2fs(real, header_only));
        let b = s.spawn(|| dumpe2fs(ours, header_only));
        (
            a.join().expect("dumpe2fs thread"),
            b.join().expect("dumpe2fs thread"),
        )
    });
    assert_dumpe2fs_equal(&r, &o, lifetime, what);
}

/// `e2fsck -fn` must exit 0.
pub fn assert_fsck_clean(img: &Path) {
    let o = run(tool("e2fsck").arg("-fn").arg(img));
    assert!(
        o.status.success(),
        "e2fsck -fn {} failed:\n{}{}",
        img.display(),
        stdout(&o),
        stderr(&o)
    );
}

/// 4 KiB blocks holding data in either image.
fn data_blocks(img: &ImageFile) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for r in img.data_ranges(0..img.size()).expect("data ranges") {
        for b in r.start / BS..r.end.div_ceil(BS) {
            set.insert(b);
        }
    }
    set
}

/// Byte offsets of every superblock copy of the filesystem in `img`
/// (primary at 1024, backups at their groups' first blocks).
fn sb_copies(img: &ImageFile) -> BTreeSet<u64> {
    let sb = ebsim::fs::ext4::read_superblock(img).expect("superblock");
    let bs = u64::from(sb.block_size());
    let fdb = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let mut set = BTreeSet::from([1024u64]);
    for g in 1..sb.group_count() {
        if sb.group_has_super(g) {
            set.insert((fdb + g * bpg) * bs);
        }
    }
    set
}

/// Compares every non-hole block of two images byte for byte (except, with
/// [`Lifetime::Moved`], the superblock fields in [`SB_EXCEPTIONS`]).
/// Returns (blocks compared, descriptions of unexplained differences).
pub fn metadata_diff(real: &Path, ours: &Path, lifetime: Lifetime) -> (usize, Vec<String>) {
    let a = ImageFile::open(real, Access::ReadOnly).expect("open real");
    let b = ImageFile::open(ours, Access::ReadOnly).expect("open ebsim");
    let mut blocks = data_blocks(&a);
    blocks.extend(data_blocks(&b));
    let copies = sb_copies(&a);
    let mut bad = Vec::new();
    let mut x = vec![0u8; BS as usize];
    let mut y = vec![0u8; BS as usize];
    for &blk in &blocks {
        let off = blk * BS;
        let len = BS
            .min(a.size().saturating_sub(off))
            .min(b.size().saturating_sub(off)) as usize;
        a.read_at(off, &mut x[..len]).expect("read real");
        b.read_at(off, &mut y[..len]).expect("read ebsim");
        if x[..len] == y[..len] {
            continue;
        }
        // A superblock copy starting in this chunk (at most one: copies
        // are a group apart).
        let sb = copies
            .range(off..off + BS)
            .next()
            .map(|&c| (c - off) as usize);
        let diffs: Vec<usize> = (0..len)
            .filter(|&i| x[i] != y[i])
            .filter(|&i| match sb {
                Some(s) if lifetime == Lifetime::Moved && i >= s && i < s + 1024 => {
                    !SB_EXCEPTIONS.iter().any(|r| r.contains(&(i - s)))
                }
                _ => true,
            })
            .collect();
        if !diffs.is_empty() {
            bad.push(format!(
                "block {blk}: {} bytes differ, first at {:?}",
                diffs.len(),
                &diffs[..diffs.len().min(8)]
            ));
        }
    }
    (blocks.len(), bad)
}

/// Asserts [`metadata_diff`] finds nothing unexplained.
pub fn assert_metadata_equal(real: &Path, ours: &Path, lifetime: Lifetime, what: &str) -> usize {
    let (n, bad) = metadata_diff(real, ours, lifetime);
    assert!(
        bad.is_empty(),
        "{what}: metadata differs in {} of {n} blocks:\n{}",
        bad.len(),
        bad.join("\n")
    );
    n
}

/// Bytes of an image that hold data (the sum of its `SEEK_DATA` extents),
/// for the sparse-discipline comparisons with the real tools. Not
/// `st_blocks`: that also counts the host filesystem's own extent-tree
/// blocks for the image file, whose number depends on how the host
/// allocated it (when it flushed, amid what other I/O), not on which blocks
/// the tool wrote.
pub fn allocated(p: &Path) -> u64 {
    common::raw_extents(p).iter().map(|(s, e)| e - s).sum()
}

/// A file tree to copy into images: nested directories, small files, a
/// sparse file over 1 GiB with data in three places, and symlinks (fast,
/// slow and dangling).
pub fn make_tree(root: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    std::fs::create_dir_all(root.join("a/b/c/d")).expect("mkdir");
    std::fs::create_dir_all(root.join("empty-dir")).expect("mkdir");
    let mut seed: u64 = 0x1234_5678;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (i, dir) in ["", "a", "a/b", "a/b/c", "a/b/c/d"].iter().enumerate() {
        for j in 0..12 {
            let len = (next() % 70_000) as usize + j;
            let data: Vec<u8> = (0..len).map(|_| (next() & 0xFF) as u8).collect();
            std::fs::write(root.join(dir).join(format!("file-{i}-{j}.bin")), data).expect("write");
        }
    }
    std::fs::write(root.join("a/hello.txt"), b"hello, ebsim\n").expect("write");
    std::fs::write(root.join("zero-length"), b"").expect("write");
    let mut f = std::fs::File::create(root.join("big.sparse")).expect("create");
    for (off, byte) in [(0u64, 1u8), (300 << 20, 2), (GIB, 3)] {
        f.seek(SeekFrom::Start(off)).expect("seek");
        f.write_all(&vec![byte; 128 * 1024 + 17]).expect("write");
    }
    f.set_len(GIB + 12345 + 128 * 1024 + 17).expect("set_len");
    std::os::unix::fs::symlink("a/b", root.join("link-to-b")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).expect("symlink");
    let long = "x".repeat(100);
    std::os::unix::fs::symlink(format!("a/{long}/../hello.txt"), root.join("long-link"))
        .expect("symlink");
}

/// Copies `root` into an existing filesystem with `debugfs -w` (for images
/// ebsim made, which mkfs -d cannot populate).
pub fn populate_with_debugfs(img: &Path, root: &Path) {
    let mut cmds = String::new();
    fn walk(root: &Path, rel: &Path, cmds: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
            .expect("read_dir")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let ft = e.file_type().expect("file type");
            let dest = format!("/{}", r.display());
            if ft.is_symlink() {
                let t = std::fs::read_link(e.path()).expect("readlink");
                cmds.push_str(&format!("symlink {dest} {}\n", t.display()));
            } else if ft.is_dir() {
                cmds.push_str(&format!("mkdir {dest}\n"));
                walk(root, &r, cmds);
            } else {
                cmds.push_str(&format!("write {} {dest}\n", e.path().display()));
            }
        }
    }
    walk(root, Path::new(""), &mut cmds);
    let script = img.with_extension("debugfs");
    std::fs::write(&script, cmds).expect("write script");
    let o = run(tool("debugfs")
        .env("E2FSPROGS_FAKE_TIME", MKFS_TIME)
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(img));
    assert!(o.status.success(), "debugfs failed: {}", stderr(&o));
}

/// A digest of an image that costs only its data: length, and every data
/// range with its bytes (holes read as zeros, so equal digests mean equal
/// contents and equal allocation layout). For "nothing written" checks on
/// multi-GiB sparse images.
pub fn image_digest(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let img = ImageFile::open(p, Access::ReadOnly).expect("open for digest");
    let mut h = Sha256::new();
    h.update(img.size().to_le_bytes());
    for r in img.data_ranges(0..img.size()).expect("data ranges") {
        h.update(r.start.to_le_bytes());
        h.update(r.end.to_le_bytes());
        let mut pos = r.start;
        while pos < r.end {
            let n = (r.end - pos).min(1 << 20) as usize;
            let buf = img.read_vec(pos, n).expect("read");
            h.update(&buf);
            pos += n as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of an image's contents only (length, and every 4 KiB block
/// that is not all zeros, with its index): equal for two files that read
/// the same even where one has a zeroed block and the other a hole (a
/// rolled-back write of less than a block leaves zeros, not a hole).
pub fn content_digest(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let img = ImageFile::open(p, Access::ReadOnly).expect("open for digest");
    let mut h = Sha256::new();
    h.update(img.size().to_le_bytes());
    for b in data_blocks(&img) {
        let off = b * BS;
        let len = BS.min(img.size() - off) as usize;
        let buf = img.read_vec(off, len).expect("read");
        if buf.iter().any(|&x| x != 0) {
            h.update(b.to_le_bytes());
            h.update(&buf);
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex of bytes.
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads every entry of `root` back from the image through ebsim's own
/// ext4 reader (the file layer, read-only) and compares: directory
/// listings, file contents (chunk by chunk, and SHA-256 for small files),
/// symlink targets. Returns the number of entries checked.
pub fn assert_tree_matches(img: &Path, root: &Path) -> usize {
    use ebsim::fs::node::{FileSystem, FileType};
    use sha2::{Digest, Sha256};
    let dev = ImageFile::open(img, Access::ReadOnly).expect("open image");
    let fs = ebsim::fs::ext4::files::Ext4Files::open(dev).expect("open ext4");
    let mut checked = 0;
    let mut stack = vec![(PathBuf::new(), fs.root())];
    while let Some((rel, dir)) = stack.pop() {
        let host = root.join(&rel);
        let inside = format!("/{}", rel.display());
        let mut want: Vec<String> = std::fs::read_dir(&host)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        let entries = fs.readdir(dir).expect("readdir");
        let mut got: Vec<String> = entries
            .iter()
            .map(|e| String::from_utf8(e.name.clone()).expect("utf8 name"))
            .filter(|n| !(rel.as_os_str().is_empty() && n == "lost+found"))
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "directory {inside}");
        for e in entries {
            let name = String::from_utf8(e.name.clone()).expect("utf8 name");
            if rel.as_os_str().is_empty() && name == "lost+found" {
                continue;
            }
            let r = rel.join(&name);
            let h = root.join(&r);
            let p = format!("/{}", r.display());
            let meta = std::fs::symlink_metadata(&h).expect("lstat");
            checked += 1;
            match e.kind {
                FileType::Symlink => {
                    assert!(
                        meta.file_type().is_symlink(),
                        "{p}: not a symlink on the host"
                    );
                    let t = fs.readlink(e.ino).expect("readlink");
                    assert_eq!(
                        t,
                        std::fs::read_link(&h)
                            .expect("readlink")
                            .into_os_string()
                            .into_encoded_bytes(),
                        "{p}"
                    );
                }
                FileType::Directory => {
                    assert!(meta.is_dir(), "{p}: not a directory on the host");
                    stack.push((r, e.ino));
                }
                _ => {
                    use std::io::Read;
                    let mut host = std::fs::File::open(&h).expect("open host file");
                    let mut a = vec![0u8; 1 << 20];
                    let mut b = vec![0u8; 1 << 20];
                    let mut total = 0u64;
                    let mut hasher = Sha256::new();
                    loop {
                        let n = fs.read(e.ino, total, &mut a).expect("read");
                        if n == 0 {
                            break;
                        }
                        host.read_exact(&mut b[..n]).expect("read host file");
                        assert!(
                            a[..n] == b[..n],
                            "{p}: contents differ in the MiB at {total}"
                        );
                        if meta.len() < (1 << 20) {
                            hasher.update(&a[..n]);
                        }
                        total += n as u64;
                    }
                    assert_eq!(total, meta.len(), "{p}: length");
                    if meta.len() < (1 << 20) {
                        let got: String = hasher
                            .finalize()
                            .iter()
                            .map(|x| format!("{x:02x}"))
                            .collect();
                        assert_eq!(got, sha256(&std::fs::read(&h).expect("read")), "{p}: hash");
                    }
                }
            }
        }
    }
    checked
}

/// A read-only loop mount, undone on drop (also when the test fails).
pub struct RoMount {
    pub dir: tempfile::TempDir,
    loopdev: String,
    mounted: bool,
}

impl RoMount {
    pub fn new(img: &Path) -> RoMount {
        let dir = tempfile::tempdir().expect("mount dir");
        let o = run(Command::new("losetup")
            .args(["-f", "--show", "-r"])
            .arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let loopdev = stdout(&o).trim().to_string();
        let mut m = RoMount {
            dir,
            loopdev,
            mounted: false,
        };
        let o = run(Command::new("mount")
            .args(["-t", "ext4", "-o", "ro"])
            .arg(&m.loopdev)
            .arg(m.dir.path()));
        assert!(o.status.success(), "mount: {}", stderr(&o));
        m.mounted = true;
        m
    }

    /// `stat -f -c '%S %b %f %a %c %d'`: block size, blocks, free,
    /// available, files, free files.
    pub fn stat_f(&self) -> [u64; 6] {
        let o = run(Command::new("stat")
            .args(["-f", "-c", "%S %b %f %a %c %d"])
            .arg(self.dir.path()));
        assert!(o.status.success(), "stat -f: {}", stderr(&o));
        let v: Vec<u64> = stdout(&o)
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        [v[0], v[1], v[2], v[3], v[4], v[5]]
    }
}

impl Drop for RoMount {
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
