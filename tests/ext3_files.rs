//! The ext4 file layer on ext2 and ext3 (block-mapped inodes):
//! differential against the real mkfs.ext3/mkfs.ext2, e2fsck and the
//! kernel. ebsim writes a tree (small files, sparse files with holes,
//! files through the double and triple indirect blocks, a large
//! directory, symlinks, then overwrites, truncates and removals); e2fsck
//! is silent; a kernel mount sees the same manifest and statfs; the
//! kernel writes more (its own block maps); ebsim reads that back and
//! writes again; e2fsck is silent again and a read-only mount agrees.

mod common;
mod ext4_files_util;
mod ext4_util;

use common::require_tools;
use ebsim::blockdev::ImageFile;
use ebsim::blockdev::image::Access;
use ebsim::fs::ext4::files::Ext4Files;
use ebsim::fs::ext4::files::block_map;
use ebsim::fs::node::{ErrorKind, FallocateMode, FileSystem, FileType, RenameFlags, SetAttr};
use ext4_files_util::*;
use std::path::Path;

const MIB: u64 = 1 << 20;

fn open(img: &Path) -> Ext4Files<ImageFile> {
    let dev = ImageFile::open(img, Access::ReadWrite).expect("open image");
    Ext4Files::open(dev).expect("open ext2/ext3")
}

/// The real `mkfs.ext3 -q -F` or `mkfs.ext2 -q -F` (fixed UUID, hash seed
/// and time) on a sparse image of `len` bytes.
fn real_mkfs(kind: &str, img: &Path, len: u64) {
    ext4_util::sparse_file(img, len);
    let o = common::run(
        ext4_util::tool(&format!("mkfs.{kind}"))
            .env("E2FSPROGS_FAKE_TIME", ext4_util::MKFS_TIME)
            .args([
                "-q",
                "-F",
                "-U",
                ext4_util::UUID,
                "-E",
                &format!("hash_seed={}", ext4_util::HASH_SEED),
            ])
            .arg(img),
    );
    assert!(o.status.success(), "mkfs.{kind}: {}", common::stderr(&o));
}

/// `dumpe2fs -h`'s value of `key`.
fn dumpe2fs_line(img: &Path, key: &str) -> String {
    let out = ext4_util::dumpe2fs(img, true);
    out.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("dumpe2fs has no {key}:\n{out}"))
}

/// The block size and the largest block-mapped file (the kernel's
/// `s_bitmap_maxbytes`) of `img`.
fn geometry(img: &Path) -> (u64, u64) {
    let bs: u64 = dumpe2fs_line(img, "Block size:").parse().expect("bs");
    let features = dumpe2fs_line(img, "Filesystem features:");
    assert!(!features.contains("extent"), "{features}");
    let huge = features.split_whitespace().any(|f| f == "huge_file");
    (bs, block_map::max_file_blocks(bs, huge) * bs)
}

/// A logical offset reached only through the triple indirect block.
fn tind_offset(bs: u64) -> u64 {
    let apb = bs / 4;
    (12 + apb + apb * apb + 5) * bs
}

/// What ebsim writes first.
fn ebsim_writes(fs: &mut Ext4Files<ImageFile>, bs: u64, max: u64) {
    let ctx = root_ctx();
    let r = fs.root();
    let d1 = fs.mkdir(ctx, r, b"d1", 0o755).expect("mkdir").ino;
    let d2 = fs.mkdir(ctx, d1, b"d2", 0o750).expect("mkdir").ino;
    let d3 = fs.mkdir(ctx, d2, b"d3", 0o700).expect("mkdir").ino;
    mkfile(fs, r, "empty", b"");
    mkfile(fs, r, "one", b"1");
    mkfile(fs, d1, "page", &bytes(1, 4096));
    mkfile(fs, d3, "odd", &bytes(3, 123_457));
    // Through the double indirect block whatever the block size.
    let dind = mkfile(fs, r, "dind", &bytes(2, 6 * MIB as usize));
    // Sparse: data at 0, past 10 MiB and through the triple indirect
    // block; zeros over a hole stay a hole.
    let sp = mkfile(fs, r, "sparse", &bytes(4, 4096));
    fs.write(ctx, sp, 10 * MIB + 123, &bytes(5, 65536))
        .expect("write");
    let before = fs.getattr(sp).expect("stat").blocks;
    fs.write(ctx, sp, 7 * MIB, &vec![0u8; 8192])
        .expect("write zeros");
    assert_eq!(fs.getattr(sp).expect("stat").blocks, before);
    fs.write(ctx, sp, tind_offset(bs) + 77, &bytes(6, 10_000))
        .expect("write through the TIND");
    fs.setattr(
        ctx,
        sp,
        SetAttr {
            size: Some(tind_offset(bs) + 20 * MIB),
            ..SetAttr::default()
        },
    )
    .expect("extend");
    // A directory of many blocks (past the 12 direct ones with 1 KiB
    // blocks), some entries removed.
    let many = fs.mkdir(ctx, r, b"many", 0o755).expect("mkdir").ino;
    for i in 0..600usize {
        let data = if i % 3 == 0 {
            Vec::new()
        } else {
            bytes(i as u64, i % 5000)
        };
        mkfile(fs, many, &format!("entry-{i:05}-with-a-longer-name"), &data);
    }
    for i in (0..600usize).step_by(7) {
        fs.unlink(
            ctx,
            many,
            format!("entry-{i:05}-with-a-longer-name").as_bytes(),
        )
        .expect("unlink");
    }
    // Symlinks: fast, slow (block-mapped), dangling.
    fs.symlink(ctx, r, b"fast", b"d1/d2").expect("symlink");
    let long = format!("d1/{}/../../dind", "x".repeat(200));
    fs.symlink(ctx, d1, b"slow", long.as_bytes())
        .expect("symlink");
    fs.symlink(ctx, r, b"dangling", b"/nonexistent/target")
        .expect("symlink");
    fs.link(ctx, dind, d1, b"dind-link").expect("link");
    mkfile(fs, r, "tmp1", b"renamed file\n");
    fs.rename(ctx, r, b"tmp1", d2, b"renamed", RenameFlags::default())
        .expect("rename");
    fs.rename(ctx, d2, b"d3", r, b"d3moved", RenameFlags::default())
        .expect("rename dir");
    // Overwrites, truncations, a punched hole, removals.
    fs.write(ctx, dind, MIB + 5, &bytes(7, 300_000))
        .expect("overwrite");
    let tr = mkfile(fs, r, "trunc", &bytes(8, 5 * MIB as usize));
    fs.setattr(
        ctx,
        tr,
        SetAttr {
            size: Some(100 * 1024 + 5),
            ..SetAttr::default()
        },
    )
    .expect("truncate");
    let pun = mkfile(fs, r, "punched", &bytes(9, 2 * MIB as usize));
    fs.fallocate(ctx, pun, 200 * 1024 + 5, MIB, FallocateMode::PunchHole)
        .expect("punch");
    let gone = fs.mkdir(ctx, r, b"gone", 0o755).expect("mkdir").ino;
    mkfile(fs, gone, "big", &bytes(10, 5 * MIB as usize));
    fs.unlink(ctx, gone, b"big").expect("unlink");
    fs.rmdir(ctx, r, b"gone").expect("rmdir");
    // No preallocation in a block map (fallocate(1): "Operation not
    // supported").
    let e = fs
        .fallocate(
            ctx,
            pun,
            0,
            MIB,
            FallocateMode::Allocate { keep_size: false },
        )
        .expect_err("fallocate on a block-mapped file");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // The largest block-mapped file: a byte before the limit, EFBIG at it.
    let edge = mkfile(fs, r, "edge", b"");
    let e = fs.write(ctx, edge, max, b"x").expect_err("EFBIG");
    assert_eq!(e.kind(), ErrorKind::FileTooBig);
    assert_eq!(fs.write(ctx, edge, max - 1, b"xyz").expect("write"), 1);
    let e = fs
        .setattr(
            ctx,
            edge,
            SetAttr {
                size: Some(max + 1),
                ..SetAttr::default()
            },
        )
        .expect_err("EFBIG");
    assert_eq!(e.kind(), ErrorKind::FileTooBig);
    // Special files and a user's files.
    fs.mknod(ctx, r, b"fifo", FileType::Fifo, 0o644, 0)
        .expect("mkfifo");
    fs.mknod(ctx, r, b"null", FileType::CharDevice, 0o666, (1 << 8) | 3)
        .expect("mknod");
    let u = user_ctx(1000);
    let home = fs.mkdir(ctx, r, b"home", 0o755).expect("mkdir").ino;
    let a = fs.mkdir(u, home, b"user", 0o700).expect("mkdir as user");
    let f = fs
        .mknod(u, a.ino, b"notes.txt", FileType::Regular, 0o600, 0)
        .expect("create as user");
    fs.write(u, f.ino, 0, b"user data\n").expect("write");
}

/// What the kernel adds: its own block maps (small, double and triple
/// indirect), an htree directory, an append and an overwrite of ebsim's
/// files, an xattr block, links, a rename and a removal; its fallocate
/// and size limit agree with ebsim's.
fn kernel_writes(root: &Path, bs: u64, max: u64) {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let k = root.join("kernel/a/b/c");
    std::fs::create_dir_all(&k).expect("mkdir");
    for i in 0..20u64 {
        std::fs::write(k.join(format!("k{i}")), bytes(100 + i, 5000 * i as usize)).expect("write");
    }
    std::fs::write(root.join("kernel/big"), bytes(20, 5 * MIB as usize)).expect("write");
    let f = std::fs::File::create(root.join("kernel/tind")).expect("create");
    f.write_all_at(&bytes(21, 3000), 5000).expect("write");
    f.write_all_at(&bytes(22, 9000), tind_offset(bs) + 4321)
        .expect("write through the TIND");
    drop(f);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("one"))
        .expect("open");
    f.write_all(&bytes(23, 1000)).expect("append");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("dind"))
        .expect("open");
    f.write_all_at(&bytes(24, 200_000), 3 * MIB + 17)
        .expect("overwrite");
    // fallocate and the size limit, as ebsim has them.
    let e = nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, 4096)
        .expect_err("fallocate on ext3");
    assert_eq!(e, nix::errno::Errno::EOPNOTSUPP);
    drop(f);
    let f = std::fs::File::create(root.join("kernel/edge")).expect("create");
    let e = f.write_at(b"x", max).expect_err("EFBIG");
    assert_eq!(e.raw_os_error(), Some(libc_efbig()), "{e}");
    assert_eq!(f.write_at(b"xyz", max - 1).expect("write"), 1);
    let e = f.set_len(max + 1).expect_err("EFBIG");
    assert_eq!(e.raw_os_error(), Some(libc_efbig()), "{e}");
    drop(f);
    let kdir = root.join("kdir");
    std::fs::create_dir(&kdir).expect("mkdir");
    for i in 0..400 {
        std::fs::write(kdir.join(format!("kernel-file-number-{i:04}")), b"x").expect("write");
    }
    std::fs::hard_link(root.join("one"), root.join("kernel/one-link")).expect("link");
    std::os::unix::fs::symlink("../dind", root.join("kernel/link")).expect("symlink");
    std::os::unix::fs::symlink("y".repeat(300), root.join("kernel/slow")).expect("symlink");
    std::fs::rename(root.join("d1/page"), root.join("kernel/page")).expect("rename");
    std::fs::remove_file(root.join("d3moved/odd")).expect("rm");
    let x = root.join("xattr");
    std::fs::create_dir(&x).expect("mkdir");
    for n in ["a", "b"] {
        std::fs::write(x.join(n), n).expect("write");
    }
    common::sh(&format!(
        "/usr/bin/python3 -c \"import os\nfor n in 'ab': os.setxattr('{}/' + n, 'user.big', b'v' * 300)\"",
        x.display()
    ));
}

fn libc_efbig() -> i32 {
    nix::errno::Errno::EFBIG as i32
}

/// ebsim again, on the kernel's files.
fn ebsim_writes_again(fs: &mut Ext4Files<ImageFile>, bs: u64) {
    let ctx = root_ctx();
    edit_kernel_files(fs);
    // Into the kernel's maps: fill holes next to its TIND data, punch and
    // truncate its DIND file.
    let t = resolve(fs, "/kernel/tind");
    fs.write(
        ctx,
        t,
        tind_offset(bs) + 3 * bs,
        &bytes(25, 5 * bs as usize),
    )
    .expect("write into the kernel's TIND");
    fs.write(ctx, t, 200_000, &bytes(26, 50_000))
        .expect("write into a hole");
    let big = resolve(fs, "/kernel/big");
    fs.fallocate(ctx, big, 100_000, 700_000, FallocateMode::PunchHole)
        .expect("punch");
    fs.setattr(
        ctx,
        big,
        SetAttr {
            size: Some(2 * MIB + 99),
            ..SetAttr::default()
        },
    )
    .expect("truncate");
    let e = fs
        .fallocate(
            ctx,
            big,
            0,
            4096,
            FallocateMode::Allocate { keep_size: true },
        )
        .expect_err("fallocate");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let x = resolve(fs, "/xattr");
    fs.unlink(ctx, x, b"a").expect("unlink");
    let r = fs.root();
    mkfile(fs, r, "after-kernel", &bytes(27, 777_777));
    fs.unlink(ctx, r, b"sparse").expect("unlink the TIND file");
}

/// `debugfs -R 'stat PATH'`: the flags and the block list.
fn debugfs_stat(img: &Path, path: &str) -> String {
    let o = common::run(
        ext4_util::tool("debugfs")
            .arg("-R")
            .arg(format!("stat {path}"))
            .arg(img),
    );
    assert!(o.status.success(), "debugfs: {}", common::stderr(&o));
    common::stdout(&o)
}

/// The inode flags debugfs shows.
fn flags(stat: &str) -> u32 {
    let f = stat
        .split("Flags: 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("Flags line");
    u32::from_str_radix(f, 16).expect("hex flags")
}

/// The structure e2fsprogs sees: ebsim's files are block-mapped (no
/// EXTENTS_FL) with the indirect levels their sizes need.
fn assert_block_mapped(img: &Path) {
    for (path, levels) in [
        ("/dind", &["(IND)", "(DIND)"][..]),
        ("/sparse", &["(IND)", "(TIND)"][..]),
        ("/many", &[][..]),
        ("/d1/slow", &[][..]),
        ("/edge", &["(TIND)"][..]),
    ] {
        let st = debugfs_stat(img, path);
        assert_eq!(flags(&st) & 0x80000, 0, "{path} has EXTENTS_FL:\n{st}");
        assert!(!st.contains("EXTENTS:"), "{path}:\n{st}");
        for l in levels {
            assert!(st.contains(l), "{path} has no {l}:\n{st}");
        }
    }
}

fn statfs_array(fs: &Ext4Files<ImageFile>) -> [u64; 6] {
    let st = fs.statfs().expect("statfs");
    [
        st.frsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree,
    ]
}

fn round_trip(kind: &str, len: u64) {
    if !require_tools(&[
        &format!("mkfs.{kind}"),
        "e2fsck",
        "dumpe2fs",
        "debugfs",
        "python3",
    ]) || !common::require_mount()
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join(format!("{kind}.img"));
    real_mkfs(kind, &img, len);
    let (bs, max) = geometry(&img);
    let _lock = common::mount_lock();
    let mut fs = open(&img);
    ebsim_writes(&mut fs, bs, max);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let ours_statfs = statfs_array(&fs);
    drop(fs);
    assert_e2fsck_silent(&img);
    assert_block_mapped(&img);
    let m = RwMount::new(&img);
    assert_manifests_equal(
        &ours,
        &host_manifest(m.path()),
        &format!("{kind}: ebsim's tree through the kernel"),
    );
    assert_eq!(
        m.statvfs(),
        ours_statfs,
        "{kind}: statvfs vs ebsim's statfs"
    );
    kernel_writes(m.path(), bs, max);
    common::sh("sync");
    let kernel = host_manifest(m.path());
    let kernel_statfs = m.statvfs();
    m.umount();
    assert_e2fsck_silent(&img);
    let mut fs = open(&img);
    let back = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    assert_manifests_equal(
        &kernel,
        &back,
        &format!("{kind}: the kernel's writes read by ebsim"),
    );
    assert_eq!(
        statfs_array(&fs),
        kernel_statfs,
        "{kind}: statfs of the kernel's result"
    );
    ebsim_writes_again(&mut fs, bs);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let st = statfs_array(&fs);
    drop(fs);
    assert_e2fsck_silent(&img);
    let m = ext4_util::RoMount::new(&img);
    assert_manifests_equal(
        &ours,
        &host_manifest(m.dir.path()),
        &format!("{kind}: second round through the kernel"),
    );
    assert_eq!(
        m.stat_f()[..3],
        st[..3],
        "{kind}: statfs after the second round"
    );
}

/// ext3 of 256 MiB: mke2fs's "small" type, 1 KiB blocks (the double
/// indirect range starts at 268 KiB, the triple at 64 MiB), 128-byte
/// inodes, a journal (a block-mapped inode itself).
#[test]
fn ext3_small_round_trip() {
    round_trip("ext3", 256 * MIB);
}

/// ext2 of 1 GiB: 4 KiB blocks, 256-byte inodes, no journal; the triple
/// indirect range starts past 4 GiB and the largest file is near 2 TiB.
#[test]
fn ext2_round_trip() {
    round_trip("ext2", 1 << 30);
}

/// ext3 of 1 GiB (4 KiB blocks, a journal).
#[test]
fn ext3_round_trip() {
    round_trip("ext3", 1 << 30);
}

/// An ext4 filesystem made without `extent` holds block-mapped files
/// from the start (its root directory too); ebsim writes them.
#[test]
fn ext4_without_extents_round_trip() {
    if !require_tools(&["mkfs.ext4", "e2fsck", "python3"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("noext.img");
    ext4_util::sparse_file(&img, 512 * MIB);
    ext4_util::real_mkfs(&img, &["-O", "^extent,^64bit"]);
    let (bs, max) = geometry(&img);
    let _lock = common::mount_lock();
    let mut fs = open(&img);
    ebsim_writes(&mut fs, bs, max);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    drop(fs);
    assert_e2fsck_silent(&img);
    assert_block_mapped(&img);
    let m = ext4_util::RoMount::new(&img);
    assert_manifests_equal(&ours, &host_manifest(m.dir.path()), "ext4 ^extent");
}

/// ext3 turned into ext4 by `tune2fs -O extent`: the kernel's old files
/// keep their block maps when ebsim writes them (as the kernel keeps
/// them), new files get extent trees.
#[test]
fn old_block_mapped_files_on_ext4_stay_block_mapped() {
    if !require_tools(&["mkfs.ext3", "tune2fs", "e2fsck", "debugfs"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("upgraded.img");
    real_mkfs("ext3", &img, 512 * MIB);
    let _lock = common::mount_lock();
    {
        let m = RwMount::new(&img);
        std::fs::create_dir(m.path().join("olddir")).expect("mkdir");
        std::fs::write(m.path().join("olddir/old"), bytes(30, 3 * MIB as usize)).expect("write");
        m.umount();
    }
    let o = common::run(ext4_util::tool("tune2fs").args(["-O", "extent"]).arg(&img));
    assert!(o.status.success(), "tune2fs: {}", common::stderr(&o));
    let ctx = root_ctx();
    let mut fs = open(&img);
    let old = resolve(&fs, "/olddir/old");
    fs.write(ctx, old, 6 * MIB, &bytes(31, 100_000))
        .expect("append past a hole");
    let d = resolve(&fs, "/olddir");
    for i in 0..300 {
        mkfile(
            &mut fs,
            d,
            &format!("new-file-with-a-long-name-{i:04}"),
            b"n",
        );
    }
    let r = fs.root();
    mkfile(&mut fs, r, "new", &bytes(32, 2 * MIB as usize));
    let e = fs
        .fallocate(
            ctx,
            old,
            0,
            4096,
            FallocateMode::Allocate { keep_size: true },
        )
        .expect_err("fallocate in a block map");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let newf = resolve(&fs, "/new");
    fs.fallocate(
        ctx,
        newf,
        0,
        4 * MIB,
        FallocateMode::Allocate { keep_size: true },
    )
    .expect("fallocate in an extent file");
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    drop(fs);
    assert_e2fsck_silent(&img);
    assert_eq!(flags(&debugfs_stat(&img, "/olddir/old")) & 0x80000, 0);
    assert_eq!(flags(&debugfs_stat(&img, "/olddir")) & 0x80000, 0);
    assert_ne!(flags(&debugfs_stat(&img, "/new")) & 0x80000, 0);
    assert_ne!(
        flags(&debugfs_stat(
            &img,
            "/olddir/new-file-with-a-long-name-0000"
        )) & 0x80000,
        0
    );
    let m = ext4_util::RoMount::new(&img);
    assert_manifests_equal(&ours, &host_manifest(m.dir.path()), "upgraded ext3");
}

/// A sync on ext3 (1 KiB blocks: the files reach the double indirect
/// block) interrupted at every write: after the next open (which rolls
/// back) the image is the old or the new one, and e2fsck-clean.
#[test]
fn ext3_interrupted_sync_rolls_back_at_every_write() {
    if !require_tools(&["mkfs.ext3", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    real_mkfs("ext3", &base, 64 * MIB);
    let (_, rolled_back) = sync_fault_sweep(dir.path(), &base, false);
    assert!(rolled_back >= 3, "the sweep interrupted too few writes");
}

/// Filling ext3 (1 KiB blocks) as root with writes: ebsim stops within a
/// page of where the kernel stops (the kernel reserves a 4 KiB page at a
/// time; ebsim places every last block), data and indirect blocks
/// together using every free block.
#[test]
fn ext3_write_fill_like_the_kernel() {
    if !require_tools(&["mkfs.ext3", "e2fsck", "dd"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fill.img");
    real_mkfs("ext3", &img, 128 * MIB);
    let _lock = common::mount_lock();
    let kernel = {
        let m = RwMount::new(&img);
        let f = m.path().join("fill");
        for bs in ["1M", "4k"] {
            let o = common::run(std::process::Command::new("sh").arg("-c").arg(format!(
                "dd if=/dev/urandom of={} bs={bs} iflag=fullblock oflag=append conv=notrunc status=none; rc=$?; sync; exit $rc",
                f.display()
            )));
            assert!(
                !o.status.success() && common::stderr(&o).contains("No space left on device"),
                "dd: {}",
                common::stderr(&o)
            );
        }
        let n = std::fs::metadata(&f).expect("stat").len();
        std::fs::remove_file(&f).expect("rm");
        m.umount();
        n
    };
    let mut fs = open(&img);
    let ctx = root_ctx();
    let r = fs.root();
    let a = fs
        .mknod(ctx, r, b"fill", FileType::Regular, 0o644, 0)
        .expect("create");
    let chunk = bytes(77, MIB as usize);
    let mut off = 0u64;
    loop {
        match fs.write(ctx, a.ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                break;
            }
        }
    }
    assert_eq!(fs.statfs().expect("statfs").bfree, 0);
    fs.sync().expect("sync");
    drop(fs);
    assert_e2fsck_silent(&img);
    eprintln!("ext3 fill: kernel {kernel} bytes, ebsim {off}");
    assert!(
        kernel.abs_diff(off) <= 4096,
        "kernel {kernel} bytes, ebsim {off}"
    );
}
