//! The native ext4 file layer (issue 11): differential against e2fsck and
//! the kernel.

mod common;
mod ext4_files_util;
mod ext4_util;

use common::require_tools;
use ebsim::blockdev::ImageFile;
use ebsim::blockdev::image::Access;
use ebsim::fs::ext4::files::Ext4Files;
use ebsim::fs::node::{FallocateMode, FileSystem, FileType, RenameFlags, SetAttr};
use ext4_files_util::*;
use std::path::Path;

fn open(img: &Path) -> Ext4Files<ImageFile> {
    let dev = ImageFile::open(img, Access::ReadWrite).expect("open image");
    Ext4Files::open(dev).expect("open ext4")
}

#[test]
fn smoke_small() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("s.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    let ctx = root_ctx();
    let mut fs = open(&img);
    let root = fs.root();
    let f = fs
        .mknod(ctx, root, b"hello", FileType::Regular, 0o644, 0)
        .expect("create");
    assert_eq!(
        fs.write(ctx, f.ino, 0, b"hello world\n").expect("write"),
        12
    );
    let d = fs.mkdir(ctx, root, b"dir", 0o755).expect("mkdir");
    let big = fs
        .mknod(ctx, d.ino, b"big", FileType::Regular, 0o600, 0)
        .expect("create");
    let data = bytes(7, 3 << 20);
    fs.write(ctx, big.ino, 0, &data).expect("write big");
    fs.symlink(ctx, root, b"fast", b"dir/big").expect("symlink");
    fs.symlink(ctx, root, b"slow", &[b'x'; 200])
        .expect("symlink");
    fs.sync().expect("sync");
    drop(fs);
    assert_e2fsck_silent(&img);
    let fs = open(&img);
    let m = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    assert_eq!(m["/hello"].size, 12);
    assert_eq!(
        m["/dir/big"].content,
        hex(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    assert_eq!(m["/slow"].content.len(), 200);
    let _ = (
        FallocateMode::PunchHole,
        RenameFlags::default(),
        SetAttr::default(),
    );
}

/// The whole round trip on an image: ebsim writes the tree and syncs;
/// e2fsck is silent; the kernel mounts it and sees the same manifest and
/// statfs; the kernel writes more; ebsim reads the kernel's result, writes
/// again; e2fsck is silent again; a read-only kernel mount agrees again.
fn round_trip(img: &Path, spec: TreeSpec) {
    let _lock = common::mount_lock();
    let mut fs = open(img);
    write_tree(&mut fs, spec);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let ours_statfs = fs.statfs().expect("statfs");
    drop(fs);
    assert_e2fsck_silent(img);
    // The kernel sees what ebsim wrote.
    let m = RwMount::new(img);
    let kernel = host_manifest(m.path());
    assert_manifests_equal(&ours, &kernel, "ebsim's tree through the kernel");
    let s = m.statvfs();
    assert_eq!(
        s,
        [
            ours_statfs.frsize,
            ours_statfs.blocks,
            ours_statfs.bfree,
            ours_statfs.bavail,
            ours_statfs.files,
            ours_statfs.ffree
        ],
        "statvfs of the mount vs ebsim's statfs"
    );
    // The kernel writes more.
    kernel_writes(m.path(), spec);
    common::sh("sync");
    let kernel = host_manifest(m.path());
    let kernel_statfs = m.statvfs();
    m.umount();
    assert_e2fsck_silent(img);
    // ebsim reads the kernel's result and writes again.
    let mut fs = open(img);
    let back = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    assert_manifests_equal(&kernel, &back, "the kernel's writes read by ebsim");
    let st = fs.statfs().expect("statfs");
    assert_eq!(
        [
            st.frsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree
        ],
        kernel_statfs,
        "ebsim's statfs of the kernel's result"
    );
    ebsim_writes_again(&mut fs);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let st = fs.statfs().expect("statfs");
    drop(fs);
    assert_e2fsck_silent(img);
    let m = ext4_util::RoMount::new(img);
    assert_manifests_equal(
        &ours,
        &host_manifest(m.dir.path()),
        "second round through the kernel",
    );
    let k = m.stat_f();
    assert_eq!(
        k[..3],
        [st.frsize, st.blocks, st.bfree],
        "statfs after the second round"
    );
}

/// What the kernel adds: files and directories, an append to one of
/// ebsim's files, a write into the middle of the preallocated file, 50
/// entries in ebsim's big directory, an indexed (htree) directory, links,
/// a rename and a removal.
fn kernel_writes(root: &Path, spec: TreeSpec) {
    use std::io::{Seek, SeekFrom, Write};
    let k = root.join("kernel/a/b/c");
    std::fs::create_dir_all(&k).expect("mkdir");
    for i in 0..20 {
        std::fs::write(k.join(format!("k{i}")), bytes(100 + i, 5000 * i as usize)).expect("write");
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("mib"))
        .expect("open");
    f.write_all(&bytes(9, 1000)).expect("append");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("prealloc"))
        .expect("open");
    f.seek(SeekFrom::Start(spec.prealloc / 2 + 12345))
        .expect("seek");
    f.write_all(&bytes(10, 1 << 20))
        .expect("write into unwritten");
    drop(f);
    for i in 0..50 {
        std::fs::write(root.join(format!("many/kernel-{i}")), b"k").expect("write");
    }
    let kdir = root.join("kdir");
    std::fs::create_dir(&kdir).expect("mkdir");
    for i in 0..400 {
        std::fs::write(kdir.join(format!("kernel-file-number-{i:04}")), b"x").expect("write");
    }
    std::fs::hard_link(root.join("one"), root.join("kernel/one-link")).expect("link");
    std::os::unix::fs::symlink("../mib", root.join("kernel/link")).expect("symlink");
    std::fs::rename(root.join("d1/page"), root.join("kernel/page")).expect("rename");
    std::fs::remove_file(root.join("d3moved/odd")).expect("rm");
    // Extended attributes too big for the inode: an xattr block, shared by
    // the three files (the kernel shares identical blocks).
    let x = root.join("xattr");
    std::fs::create_dir(&x).expect("mkdir");
    for n in ["a", "b", "c"] {
        std::fs::write(x.join(n), n).expect("write");
    }
    common::sh(&format!(
        "/usr/bin/python3 -c \"import os\nfor n in 'abc': os.setxattr('{}/' + n, 'user.big', b'v' * 300)\"",
        x.display()
    ));
    common::sh(&format!(
        "mknod {} c 300 70000",
        root.join("kernel/dev").display()
    ));
    // A file of 3000 one-block extents (every other block written): the
    // kernel's own depth-2 extent tree.
    let f = std::fs::File::create(root.join("kernel/frag")).expect("create");
    for i in 0..3000u64 {
        std::os::unix::fs::FileExt::write_at(&f, &[(i % 251) as u8 + 1], i * 8192).expect("write");
    }
}

/// ebsim again: into the kernel's htree directory (un-indexed), removals
/// of kernel files, a write into the preallocated file, new files.
fn ebsim_writes_again(fs: &mut Ext4Files<ImageFile>) {
    let ctx = root_ctx();
    edit_kernel_files(fs);
    let pre = resolve(fs, "/prealloc");
    let size = fs.getattr(pre).expect("stat").size;
    fs.write(ctx, pre, size / 3, &bytes(11, 300_000))
        .expect("write into unwritten");
    let r = fs.root();
    mkfile(fs, r, "after-kernel", &bytes(12, 77_777));
    // Into the kernel's depth-2 tree: fill holes, punch, truncate.
    let frag = resolve(fs, "/kernel/frag");
    fs.write(ctx, frag, 4096 * 1001, &bytes(13, 4096 * 500))
        .expect("write into holes");
    fs.fallocate(
        ctx,
        frag,
        8192 * 2000 + 100,
        8192 * 50,
        FallocateMode::PunchHole,
    )
    .expect("punch");
    fs.setattr(
        ctx,
        frag,
        SetAttr {
            size: Some(8192 * 2800 + 77),
            ..SetAttr::default()
        },
    )
    .expect("truncate");
    // Drop two of the three references to the shared xattr block.
    let x = resolve(fs, "/xattr");
    fs.unlink(ctx, x, b"a").expect("unlink");
    fs.unlink(ctx, x, b"b").expect("unlink");
}

#[test]
fn round_trip_64m_ebsim_mkfs() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "python3", "mknod"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 16 << 20,
            many: 3600,
        },
    );
}

const GIB: u64 = 1 << 30;

#[test]
fn round_trip_1g_ebsim_mkfs() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "python3", "mknod"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 300 << 20,
            many: 3600,
        },
    );
}

#[test]
fn round_trip_1g_real_mke2fs() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "python3", "mknod"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::real_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 300 << 20,
            many: 3600,
        },
    );
}

/// 1 GiB grown to 8 GiB by ebsim's resize2fs: new groups with
/// BLOCK_UNINIT/INODE_UNINIT and no zeroed inode tables; the
/// preallocation runs through them.
#[test]
fn round_trip_grown_1g_to_8g() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "python3", "mknod"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    let o = ext4_util::resize2fs_to(true, &img, "8G");
    assert!(o.status.success(), "resize2fs: {}", common::stderr(&o));
    round_trip(
        &img,
        TreeSpec {
            prealloc: 6 * GIB,
            many: 3600,
        },
    );
}

/// 200 GiB with a 150 GiB preallocation (a depth-1 tree of about 1300
/// unwritten extents).
#[test]
fn round_trip_200g_with_150g_fallocate() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "python3", "mknod"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, 200 * GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 150 * GIB,
            many: 3600,
        },
    );
}

// ------------------------------------------------------------------------
// meta_bg: converted by an online grow, written, grown again

/// Grows `img` to `to` bytes as the instance model grows a mounted
/// filesystem (the library's online resize).
fn grow_online(img: &Path, to: u64) {
    use ebsim::fs::ext4::{self, Ext4};
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open")
        .set_len(to)
        .expect("grow file");
    let fs = Ext4::open(ImageFile::open(img, Access::ReadWrite).expect("open")).expect("ext4");
    let req = ext4::grow::GrowRequest {
        size: None,
        force: false,
        online: true,
        image_file: false,
        now: 1_700_000_500,
        ..Default::default()
    };
    let ext4::grow::GrowOutcome::Grow(plan) = ext4::grow::plan(&fs, &req).expect("plan") else {
        panic!("nothing to grow")
    };
    let mut dev = fs.into_device();
    ext4::grow::apply(&mut dev, &plan.batch).expect("apply");
}

fn dumpe2fs_line(img: &Path, key: &str) -> String {
    ext4_util::dumpe2fs(img, true)
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or("")
        .to_string()
}

/// A 1 GiB filesystem with room for 100 GiB in its reserved GDT blocks
/// (12 blocks), grown online to 1 TiB: the kernel's conversion to meta_bg
/// (`s_first_meta_bg` 13; groups from 832 on are in meta groups). ebsim's
/// file layer then writes the round trip's tree (preallocation through the
/// meta groups), and the converted filesystem grows again: offline by
/// ebsim's resize2fs against the real resize2fs on a copy (dumpe2fs and
/// every metadata block equal, e2fsck silent), and online.
#[test]
fn meta_bg_converted_online_is_written_and_grown_again() {
    if !require_tools(ext4_util::TOOLS) || !common::require_mount() {
        return;
    }
    const TIB: u64 = 1 << 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("m.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::real_mkfs(&img, &["-E", "resize=26214400"]);
    assert!(dumpe2fs_line(&img, "Reserved GDT blocks:").ends_with(" 12"));
    grow_online(&img, TIB);
    assert!(dumpe2fs_line(&img, "Filesystem features:").contains(" meta_bg"));
    assert!(dumpe2fs_line(&img, "First meta block group:").ends_with(" 13"));
    assert_e2fsck_silent(&img);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 900 * GIB,
            many: 3600,
        },
    );
    let tree = {
        let fs = open(&img);
        fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"))
    };
    // Offline, ebsim against the real resize2fs.
    std::fs::create_dir(dir.path().join("real")).expect("mkdir");
    std::fs::create_dir(dir.path().join("ebsim")).expect("mkdir");
    let real = dir.path().join("real/m.img");
    let ours = dir.path().join("ebsim/m.img");
    for p in [&real, &ours] {
        common::sparse_copy(&img, p);
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .expect("open")
            .set_len(1536 * GIB)
            .expect("grow file");
    }
    // -f: the kernel mounted it since the last check.
    let r = ext4_util::resize2fs(false, &real, &["-f"]);
    let o = ext4_util::resize2fs(true, &ours, &["-f"]);
    assert!(r.status.success(), "real: {}", common::stderr(&r));
    assert_eq!(common::stdout(&o), common::stdout(&r), "stdout");
    assert_eq!(common::stderr(&o), common::stderr(&r), "stderr");
    assert_eq!(o.status.code(), r.status.code());
    ext4_util::compare_dumpe2fs(
        &real,
        &ours,
        false,
        ext4_util::Lifetime::Exact,
        "meta_bg 1T -> 1.5T",
    );
    let n = ext4_util::assert_metadata_equal(
        &real,
        &ours,
        ext4_util::Lifetime::Exact,
        "meta_bg 1T -> 1.5T",
    );
    assert_e2fsck_silent(&ours);
    let fs = open(&ours);
    let back = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    drop(fs);
    assert_manifests_equal(&tree, &back, "the tree after the offline grow");
    eprintln!("meta_bg offline grow: {n} metadata blocks identical to resize2fs's");
    // Online, then the kernel reads the tree.
    grow_online(&img, 2 * TIB);
    assert_e2fsck_silent(&img);
    let _lock = common::mount_lock();
    let m = ext4_util::RoMount::new(&img);
    assert_manifests_equal(&tree, &host_manifest(m.dir.path()), "after the online grow");
}

// ------------------------------------------------------------------------
// Full disks

/// Largest `lo..hi` value for which `ok` holds (ok(lo) true, ok(hi) false).
fn bsearch(mut lo: u64, mut hi: u64, mut ok: impl FnMut(u64) -> bool) -> u64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A shell command as root or (`uid` ≠ 0) as that user via setpriv;
/// returns whether it succeeded and its stderr.
fn as_user(uid: u32, script: &str) -> (bool, String) {
    let mut c = std::process::Command::new("setpriv");
    if uid != 0 {
        c.args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
        ]);
    }
    let o = common::run(c.args(["sh", "-c", script]));
    (o.status.success(), common::stderr(&o))
}

/// The largest `fallocate -l` (in blocks) that succeeds, by the kernel on
/// a mount of `img` and by ebsim on `img` itself, for `uid`.
fn largest_fallocate(img: &Path, uid: u32) -> (u64, u64) {
    let bs = 4096u64;
    let total = {
        let fs = open(img);
        fs.statfs().expect("statfs").bfree
    };
    let kernel = {
        let m = RwMount::new(img);
        let d = m.path().join("u");
        std::fs::create_dir(&d).expect("mkdir");
        common::sh(&format!("chown {uid}:{uid} {}", d.display()));
        let f = d.join("f");
        let n = bsearch(0, total + 1, |n| {
            let (ok, _) = as_user(uid, &format!("fallocate -l {} {}", n * bs, f.display()));
            common::sh(&format!("rm -f {} && sync", f.display()));
            ok
        });
        std::fs::remove_dir(&d).expect("rmdir");
        m.umount();
        n
    };
    let ours = bsearch(0, total + 1, |n| {
        let mut fs = open(img);
        let ctx = if uid == 0 { root_ctx() } else { user_ctx(uid) };
        // The same directory as on the kernel's side (it takes a block).
        let r = fs.root();
        let u = fs.mkdir(root_ctx(), r, b"u", 0o755).expect("mkdir").ino;
        let a = fs
            .mknod(ctx, u, b"f", FileType::Regular, 0o644, 0)
            .expect("create");
        let before = fs.statfs().expect("statfs");
        match fs.fallocate(
            ctx,
            a.ino,
            0,
            n * bs,
            FallocateMode::Allocate { keep_size: false },
        ) {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(e.kind(), ebsim::fs::node::ErrorKind::NoSpace, "{e}");
                assert_eq!(
                    fs.statfs().expect("statfs"),
                    before,
                    "a failed fallocate changed statfs"
                );
                false
            }
        }
    });
    (kernel, ours)
}

/// Bytes written by writes of random data until "No space left on
/// device": by the kernel with 1 MiB writes (dd), by the kernel going on
/// with 4 KiB writes, and by ebsim with 1 MiB writes (short at the end,
/// as a write(2) that can place only part of its data), for `uid`.
///
/// Unlike XFS (see xfs_files.rs `kernel_fill`), ext4's delayed allocation
/// reserves exactly the data blocks a write dirties (plus a fixed reserved
/// pool), not a worst case that writeback later gives back, so where
/// buffered writes stop does not move with writeback timing: a fresh 1 GiB
/// ext4 (mkfs.ext4) filled by a user's `dd bs=1M` stopped at 950,009,856 bytes in 12
/// runs out of 12, with and without `oflag=dsync`, quiet and with two busy
/// loops and a 300 MB dd rewriting a file in parallel.
fn write_fill(img: &Path, uid: u32) -> (u64, u64, u64) {
    let kernel = {
        let m = RwMount::new(img);
        let d = m.path().join("u");
        std::fs::create_dir(&d).expect("mkdir");
        common::sh(&format!("chown {uid}:{uid} {}", d.display()));
        let f = d.join("fill");
        let (ok, err) = as_user(
            uid,
            &format!(
                "dd if=/dev/urandom of={} bs=1M iflag=fullblock status=none; rc=$?; sync; exit $rc",
                f.display()
            ),
        );
        assert!(!ok && err.contains("No space left on device"), "dd: {err}");
        let n1 = std::fs::metadata(&f).expect("stat").len();
        // The kernel refuses a whole 1 MiB write near the end (no short
        // write): what is left, 4 KiB writes still fill.
        let (ok, err) = as_user(
            uid,
            &format!(
                "dd if=/dev/urandom of={} bs=4k oflag=append conv=notrunc status=none; rc=$?; sync; exit $rc",
                f.display()
            ),
        );
        assert!(!ok && err.contains("No space left on device"), "dd: {err}");
        let n = std::fs::metadata(&f).expect("stat").len();
        eprintln!(
            "uid {uid}: the kernel's 1 MiB writes stopped at {n1} bytes, 4 KiB writes went on to {n}"
        );
        std::fs::remove_file(&f).expect("rm");
        std::fs::remove_dir(&d).expect("rmdir");
        m.umount();
        (n1, n)
    };
    let mut fs = open(img);
    let ctx = if uid == 0 { root_ctx() } else { user_ctx(uid) };
    let r = fs.root();
    let u = fs.mkdir(root_ctx(), r, b"u", 0o755).expect("mkdir").ino;
    let a = fs
        .mknod(ctx, u, b"fill", FileType::Regular, 0o644, 0)
        .expect("create");
    let chunk = bytes(77, 1 << 20);
    let mut off = 0u64;
    loop {
        match fs.write(ctx, a.ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => {
                assert_eq!(e.kind(), ebsim::fs::node::ErrorKind::NoSpace, "{e}");
                break;
            }
        }
    }
    fs.sync().expect("sync");
    drop(fs);
    assert_e2fsck_silent(img);
    (kernel.0, kernel.1, off)
}

/// Fills a 1 GiB filesystem as root and as uid 1000, with fallocate and
/// with writes, and compares with the kernel on the same image.
#[test]
fn full_disk_like_the_kernel() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "setpriv", "fallocate", "dd"])
        || !common::require_mount()
    {
        return;
    }
    let _lock = common::mount_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ext4_util::sparse_file(&base, GIB);
    ext4_util::ebsim_mkfs(&base, &[]);
    // Some files first, so that the free space is not one run.
    {
        let mut fs = open(&base);
        let r = fs.root();
        for i in 0..40 {
            mkfile(
                &mut fs,
                r,
                &format!("f{i}"),
                &bytes(i, (i as usize + 1) * 300_000),
            );
        }
        for i in (0..40).step_by(3) {
            fs.unlink(root_ctx(), r, format!("f{i}").as_bytes())
                .expect("unlink");
        }
        fs.sync().expect("sync");
    }
    for uid in [0u32, 1000] {
        let img = dir.path().join(format!("fa-{uid}.img"));
        common::sparse_copy(&base, &img);
        let (k, o) = largest_fallocate(&img, uid);
        eprintln!("largest fallocate as uid {uid}: kernel {k} blocks, ebsim {o} blocks");
        assert!(k.abs_diff(o) <= 1, "uid {uid}: kernel {k}, ebsim {o}");
        let img = dir.path().join(format!("wr-{uid}.img"));
        common::sparse_copy(&base, &img);
        let (k1, k, o) = write_fill(&img, uid);
        eprintln!(
            "write fill as uid {uid}: kernel {k1} bytes with 1 MiB writes, {k} going on with 4 KiB ones; ebsim {o} bytes"
        );
        assert!(
            k1.abs_diff(o) <= 1 << 20,
            "uid {uid}: kernel {k1}, ebsim {o}"
        );
        assert!(k.abs_diff(o) <= 4096, "uid {uid}: kernel {k}, ebsim {o}");
    }
}

// ------------------------------------------------------------------------
// Crash safety

/// A sync that creates files, writes data, preallocates and removes files,
/// interrupted at every write: after the next open (which rolls back) the
/// image is byte-identical to before or to the clean run, and
/// e2fsck-clean.
#[test]
fn interrupted_sync_rolls_back_at_every_write() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.img");
    ext4_util::sparse_file(&base, GIB);
    ext4_util::ebsim_mkfs(&base, &[]);
    let (_, rolled_back) = sync_fault_sweep(dir.path(), &base, true);
    assert!(rolled_back >= 3, "the sweep interrupted too few writes");
}

// ------------------------------------------------------------------------
// Sparse discipline

/// A 150 GiB fallocate on a 200 GiB image writes no data: the image grows
/// only by the metadata it must change, one block bitmap per group
/// touched (1200 groups of 128 MiB: 4.7 MiB; ext4 has no way to mark a
/// group full without its bitmap), a few descriptor blocks, the tree's
/// leaves and the inode, and by no more than the kernel's own fallocate
/// grows a copy.
#[test]
fn fallocate_150g_keeps_the_image_sparse() {
    if !require_tools(&["mkfs.ext4", "fallocate"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("s.img");
    ext4_util::sparse_file(&img, 200 * GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    let copy = dir.path().join("k.img");
    common::sparse_copy(&img, &copy);
    let before = common::allocated(&img);
    let mut fs = open(&img);
    let r = fs.root();
    let a = fs
        .mknod(root_ctx(), r, b"pre", FileType::Regular, 0o644, 0)
        .expect("create");
    fs.fallocate(
        root_ctx(),
        a.ino,
        0,
        150 * GIB,
        FallocateMode::Allocate { keep_size: false },
    )
    .expect("fallocate");
    let attr = fs.getattr(a.ino).expect("stat");
    assert_eq!(attr.size, 150 * GIB);
    // Data blocks and 4 tree leaves, in 512-byte units.
    assert_eq!(attr.blocks, 150 * GIB / 512 + 4 * 8);
    fs.sync().expect("sync");
    drop(fs);
    let grown = common::allocated(&img) - before;
    let groups = (150 * GIB).div_ceil(128 << 20);
    eprintln!(
        "ebsim: the image grew by {grown} bytes ({groups} groups' bitmaps are {} bytes)",
        groups * 4096
    );
    assert!(grown <= groups * 4096 + (256 << 10), "grew by {grown}");
    let kernel = {
        let _lock = common::mount_lock();
        let before = common::allocated(&copy);
        let m = RwMount::new(&copy);
        common::sh(&format!(
            "fallocate -l {} {}/pre",
            150 * GIB,
            m.path().display()
        ));
        m.umount();
        common::allocated(&copy) - before
    };
    eprintln!("the kernel: the image grew by {kernel} bytes");
    assert!(grown <= kernel, "ebsim {grown}, kernel {kernel}");
    assert_e2fsck_silent(&img);
}

// ------------------------------------------------------------------------
// Error semantics

/// One operation, by path, for both sides of the errno differential.
#[derive(Debug, Clone)]
enum Op {
    Mkdir(&'static str),
    Create(&'static str),
    Rmdir(&'static str),
    Unlink(&'static str),
    Rename(&'static str, &'static str, RenameFlags),
    Link(&'static str, &'static str),
    Symlink(String, &'static str),
    Truncate(&'static str, u64),
    WriteAt(&'static str, u64),
    Fallocate(&'static str, u64, u64),
}

/// The errno the kernel gives for `op` under `root` (0 for success).
fn kernel_op(root: &Path, op: &Op) -> i32 {
    use nix::fcntl::{FallocateFlags, RenameFlags as KFlags, fallocate, renameat2};
    use std::os::unix::fs::FileExt;
    let p = |s: &str| root.join(s.trim_start_matches('/'));
    let errno = |r: std::io::Result<()>| r.err().and_then(|e| e.raw_os_error()).unwrap_or(0);
    match op {
        Op::Mkdir(a) => errno(std::fs::create_dir(p(a))),
        Op::Create(a) => errno(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p(a))
                .map(drop),
        ),
        Op::Rmdir(a) => errno(std::fs::remove_dir(p(a))),
        Op::Unlink(a) => errno(std::fs::remove_file(p(a))),
        Op::Rename(a, b, f) => {
            let mut k = KFlags::empty();
            if f.noreplace {
                k |= KFlags::RENAME_NOREPLACE;
            }
            if f.exchange {
                k |= KFlags::RENAME_EXCHANGE;
            }
            match renameat2(nix::fcntl::AT_FDCWD, &p(a), nix::fcntl::AT_FDCWD, &p(b), k) {
                Ok(()) => 0,
                Err(e) => e as i32,
            }
        }
        Op::Link(a, b) => errno(std::fs::hard_link(p(a), p(b))),
        Op::Symlink(t, b) => errno(std::os::unix::fs::symlink(t, p(b))),
        Op::Truncate(a, n) => errno(
            std::fs::OpenOptions::new()
                .write(true)
                .open(p(a))
                .and_then(|f| f.set_len(*n)),
        ),
        Op::WriteAt(a, off) => errno(
            std::fs::OpenOptions::new()
                .write(true)
                .open(p(a))
                .and_then(|f| f.write_at(b"x", *off).map(drop)),
        ),
        Op::Fallocate(a, off, len) => match std::fs::OpenOptions::new().write(true).open(p(a)) {
            Err(e) => e.raw_os_error().unwrap_or(0),
            Ok(f) => match fallocate(&f, FallocateFlags::empty(), *off as i64, *len as i64) {
                Ok(()) => 0,
                Err(e) => e as i32,
            },
        },
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Walks to `path` (ENOENT/ENOTDIR as the kernel's path walk gives them).
fn walk_to(fs: &Ext4Files<ImageFile>, path: &str) -> Result<u64, i32> {
    let mut ino = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let a = fs.getattr(ino).map_err(|e| e.errno())?;
        if a.kind != FileType::Directory {
            return Err(nix::errno::Errno::ENOTDIR as i32);
        }
        ino = fs.lookup(ino, part.as_bytes()).map_err(|e| e.errno())?.ino;
    }
    Ok(ino)
}

/// The errno ebsim gives for `op` (0 for success).
fn ebsim_op(fs: &mut Ext4Files<ImageFile>, op: &Op) -> i32 {
    let ctx = root_ctx();
    let r = (|| -> Result<(), i32> {
        let e = |x: ebsim::fs::node::NodeError| x.errno();
        match op {
            Op::Mkdir(a) => {
                let (d, n) = split(a);
                let d = walk_to(fs, d)?;
                fs.mkdir(ctx, d, n.as_bytes(), 0o755).map_err(e)?;
            }
            Op::Create(a) => {
                let (d, n) = split(a);
                let d = walk_to(fs, d)?;
                fs.mknod(ctx, d, n.as_bytes(), FileType::Regular, 0o644, 0)
                    .map_err(e)?;
            }
            Op::Rmdir(a) => {
                let (d, n) = split(a);
                let d = walk_to(fs, d)?;
                fs.rmdir(ctx, d, n.as_bytes()).map_err(e)?;
            }
            Op::Unlink(a) => {
                let (d, n) = split(a);
                let d = walk_to(fs, d)?;
                fs.unlink(ctx, d, n.as_bytes()).map_err(e)?;
            }
            Op::Rename(a, b, f) => {
                let (da, na) = split(a);
                let (db, nb) = split(b);
                let da = walk_to(fs, da)?;
                let db = walk_to(fs, db)?;
                fs.rename(ctx, da, na.as_bytes(), db, nb.as_bytes(), *f)
                    .map_err(e)?;
            }
            Op::Link(a, b) => {
                let i = walk_to(fs, a)?;
                let (db, nb) = split(b);
                let db = walk_to(fs, db)?;
                fs.link(ctx, i, db, nb.as_bytes()).map_err(e)?;
            }
            Op::Symlink(t, b) => {
                let (db, nb) = split(b);
                let db = walk_to(fs, db)?;
                fs.symlink(ctx, db, nb.as_bytes(), t.as_bytes())
                    .map_err(e)?;
            }
            Op::Truncate(a, n) => {
                let i = walk_to(fs, a)?;
                fs.setattr(
                    ctx,
                    i,
                    SetAttr {
                        size: Some(*n),
                        ..SetAttr::default()
                    },
                )
                .map_err(e)?;
            }
            Op::WriteAt(a, off) => {
                let i = walk_to(fs, a)?;
                fs.write(ctx, i, *off, b"x").map_err(e)?;
            }
            Op::Fallocate(a, off, len) => {
                let i = walk_to(fs, a)?;
                fs.fallocate(
                    ctx,
                    i,
                    *off,
                    *len,
                    FallocateMode::Allocate { keep_size: false },
                )
                .map_err(e)?;
            }
        }
        Ok(())
    })();
    r.err().unwrap_or(0)
}

/// The same operations on a kernel mount and through ebsim, from the same
/// image: the same errno for each (and e2fsck silent after ebsim's).
#[test]
fn errors_like_the_kernel() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let _lock = common::mount_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("e.img");
    ext4_util::sparse_file(&img, 256 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    let kimg = dir.path().join("k.img");
    common::sparse_copy(&img, &kimg);
    let noreplace = RenameFlags {
        noreplace: true,
        exchange: false,
    };
    let exchange = RenameFlags {
        noreplace: false,
        exchange: true,
    };
    let plain = RenameFlags::default();
    let long_name: &'static str = Box::leak("n".repeat(256).into_boxed_str());
    let long_path: &'static str = Box::leak(format!("/{long_name}").into_boxed_str());
    let ops = vec![
        Op::Mkdir("/a"),
        Op::Mkdir("/a"),
        Op::Create("/a/f"),
        Op::Create("/a/f"),
        Op::Mkdir("/a/f/x"),
        Op::Create("/nodir/x"),
        Op::Rmdir("/a"),
        Op::Unlink("/a"),
        Op::Rmdir("/a/f"),
        Op::Unlink("/a/missing"),
        Op::Mkdir("/a/sub"),
        Op::Rename("/a", "/a/sub/inside", plain),
        Op::Rename("/a/f", "/nodir/f", plain),
        Op::Mkdir("/c"),
        Op::Create("/c/x"),
        Op::Rename("/a", "/c", plain),
        Op::Rename("/a/f", "/c", plain),
        Op::Rename("/c", "/a/f", plain),
        Op::Rename("/a/f", "/c/x", noreplace),
        Op::Rename("/a/f", "/nothere", exchange),
        Op::Rename("/a/f", "/c/x", exchange),
        Op::Rename("/a/sub", "/c/x", exchange),
        Op::Rename("/a/f", "/a/f", plain),
        Op::Link("/a", "/a2"),
        Op::Link("/a/f", "/c/x"),
        Op::Link("/a/f", "/a/f2"),
        Op::Symlink("t".repeat(4096), "/toolong"),
        Op::Symlink("t".repeat(4095), "/longest"),
        Op::Symlink(String::new(), "/empty"),
        Op::Create(long_path),
        Op::Truncate("/a", 0),
        Op::WriteAt("/a", 0),
        Op::Fallocate("/a/f", 0, 0),
        Op::WriteAt("/a/f", 16 << 40),
        Op::Fallocate("/a/f", 16 << 40, 4096),
        Op::Truncate("/a/f", 17 << 40),
        Op::Truncate("/a/f", 12345),
        Op::Fallocate("/a/f", 0, 1 << 40),
        Op::Rmdir("/c"),
        Op::Unlink("/c/x"),
        Op::Rmdir("/c"),
        Op::Rmdir("/a/sub"),
    ];
    let kernel: Vec<i32> = {
        let m = RwMount::new(&kimg);
        let v = ops.iter().map(|o| kernel_op(m.path(), o)).collect();
        m.umount();
        v
    };
    let mut fs = open(&img);
    let ours: Vec<i32> = ops.iter().map(|o| ebsim_op(&mut fs, o)).collect();
    fs.sync().expect("sync");
    drop(fs);
    let name = |e: i32| {
        if e == 0 {
            "ok".to_string()
        } else {
            format!("{:?}", nix::errno::Errno::from_raw(e))
        }
    };
    let bad: Vec<String> = ops
        .iter()
        .zip(kernel.iter().zip(&ours))
        .filter(|(_, (k, o))| k != o)
        .map(|(op, (k, o))| format!("{op:?}: kernel {}, ebsim {}", name(*k), name(*o)))
        .collect();
    assert!(bad.is_empty(), "errno differences:\n{}", bad.join("\n"));
    assert!(ours.iter().filter(|&&e| e != 0).count() > 20);
    assert_e2fsck_silent(&img);
    assert_e2fsck_silent(&kimg);
}

// ------------------------------------------------------------------------
// Refusals

/// What ebsim refuses to open for writing, with the feature or state named
/// in the error, and the image left as it was.
#[test]
fn refuses_what_it_cannot_write_safely() {
    if !require_tools(&["mkfs.ext4", "debugfs"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |img: &Path, want: &str| {
        let before = common::file_hash(img);
        let dev = ImageFile::open(img, Access::ReadWrite).expect("open image");
        let e = Ext4Files::open(dev).expect_err("must refuse");
        assert_eq!(e.kind(), ebsim::fs::node::ErrorKind::Unsupported, "{e}");
        assert!(
            e.to_string().contains(want),
            "{e} (expected it to name {want})"
        );
        assert_eq!(common::file_hash(img), before, "refusing changed the image");
    };
    // Features.
    for (feature, name) in [
        ("inline_data", "inline_data"),
        ("quota", "quota"),
        ("orphan_file", "orphan_file"),
        ("project", "project"),
    ] {
        let img = dir.path().join(format!("{feature}.img"));
        ext4_util::sparse_file(&img, 64 << 20);
        ext4_util::real_mkfs(&img, &["-O", feature]);
        check(&img, name);
    }
    // States set with debugfs.
    for (cmd, want) in [
        ("feature needs_recovery", "needs journal recovery"),
        ("ssv state 0", "not cleanly unmounted"),
        ("ssv state 3", "errors recorded"),
        ("ssv last_orphan 12", "orphan inodes"),
    ] {
        let img = dir.path().join("state.img");
        std::fs::remove_file(&img).ok();
        ext4_util::sparse_file(&img, 64 << 20);
        ext4_util::ebsim_mkfs(&img, &[]);
        common::sh(&format!(
            "debugfs -w -R '{cmd}' {} 2>/dev/null",
            img.display()
        ));
        check(&img, want);
    }
    // A journal with transactions in it (s_start ≠ 0 in its superblock).
    let img = dir.path().join("journal.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    let o = common::sh(&format!(
        "debugfs -R 'bmap <8> 0' {} 2>/dev/null",
        img.display()
    ));
    let jblock: u64 = common::stdout(&o).trim().parse().expect("journal block");
    {
        let mut dev = ImageFile::open(&img, Access::ReadWrite).expect("open");
        let mut b = ebsim::blockdev::WriteBatch::new();
        // 1 KiB blocks at 64 MiB; s_start is big-endian at 0x1C.
        b.write(jblock * 1024 + 0x1C, 1u32.to_be_bytes().to_vec());
        ebsim::blockdev::BlockDevice::commit(&mut dev, &b).expect("poke");
    }
    check(&img, "journal is not empty");
    // The copy of a filesystem still mounted: needs recovery.
    let img = dir.path().join("mounted.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    let copy = dir.path().join("copy.img");
    {
        let _lock = common::mount_lock();
        let m = RwMount::new(&img);
        std::fs::write(m.path().join("f"), b"data").expect("write");
        common::sh("sync");
        common::sparse_copy(&img, &copy);
        m.umount();
    }
    check(&copy, "needs journal recovery");
    // The cleanly unmounted original opens.
    let dev = ImageFile::open(&img, Access::ReadWrite).expect("open");
    let fs = Ext4Files::open(dev).expect("clean after umount");
    assert_eq!(
        fs.read(resolve(&fs, "/f"), 0, &mut [0u8; 16])
            .expect("read"),
        4
    );
}

/// `encrypt` and `casefold` only change what an encrypted or casefolded
/// inode needs: such filesystems (the real mkfs.ext4's) open and take
/// files e2fsck finds clean, and the flagged inodes themselves are refused
/// by name, without a change to the image.
#[test]
fn encrypt_and_casefold_filesystems_open_and_refuse_their_inodes() {
    if !require_tools(&["mkfs.ext4", "debugfs", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::real_mkfs(&img, &["-O", "encrypt,casefold"]);
    {
        let dev = ImageFile::open(&img, Access::ReadWrite).expect("open image");
        let mut fs = Ext4Files::open(dev).expect("encrypt,casefold opens");
        let root = fs.root();
        let f = fs
            .mknod(root_ctx(), root, b"plain", FileType::Regular, 0o644, 0)
            .expect("create")
            .ino;
        fs.write(root_ctx(), f, 0, b"not encrypted").expect("write");
        fs.sync().expect("sync");
    }
    assert_e2fsck_silent(&img);
    for (flags, what) in [("0x40000000", "case-insensitive"), ("0x800", "encryption")] {
        common::sh(&format!(
            "debugfs -w -R 'mkdir d{flags}' {0} 2>/dev/null; \
             debugfs -w -R 'sif d{flags} flags {flags}' {0} 2>/dev/null",
            img.display()
        ));
        let before = common::file_hash(&img);
        let dev = ImageFile::open(&img, Access::ReadWrite).expect("open image");
        let fs = Ext4Files::open(dev).expect("open");
        let e = fs
            .lookup(fs.root(), format!("d{flags}").as_bytes())
            .expect_err("a flagged inode is refused");
        assert_eq!(e.kind(), ebsim::fs::node::ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains(what), "{e} (expected {what})");
        drop(fs);
        assert_eq!(
            common::file_hash(&img),
            before,
            "refusing changed the image"
        );
    }
}

/// Creating files until the inodes run out: the same count as the kernel,
/// then ENOSPC; a directory needing a block when none is left: ENOSPC.
#[test]
fn inodes_run_out_like_the_kernel() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("i.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &["-N", "200"]);
    let kimg = dir.path().join("k.img");
    common::sparse_copy(&img, &kimg);
    let kernel = {
        let _lock = common::mount_lock();
        let m = RwMount::new(&kimg);
        let mut n = 0;
        loop {
            match std::fs::File::create(m.path().join(format!("f{n}"))) {
                Ok(_) => n += 1,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(nix::errno::Errno::ENOSPC as i32));
                    break;
                }
            }
        }
        m.umount();
        n
    };
    let mut fs = open(&img);
    let r = fs.root();
    let mut n = 0;
    loop {
        match fs.mknod(
            root_ctx(),
            r,
            format!("f{n}").as_bytes(),
            FileType::Regular,
            0o644,
            0,
        ) {
            Ok(_) => n += 1,
            Err(e) => {
                assert_eq!(e.kind(), ebsim::fs::node::ErrorKind::NoSpace, "{e}");
                break;
            }
        }
    }
    assert_eq!(n, kernel, "files created before ENOSPC");
    assert_eq!(fs.statfs().expect("statfs").ffree, 0);
    fs.sync().expect("sync");
    drop(fs);
    assert_e2fsck_silent(&img);
}

/// The file layer on a partition: a `Slice` of a bigger image, checked
/// through a loop device with that offset.
#[test]
fn partition_slice_round_trip() {
    if !require_tools(&["e2fsck", "mkfs.ext4", "losetup"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("part.img");
    ext4_util::sparse_file(&part, 256 << 20);
    ext4_util::ebsim_mkfs(&part, &[]);
    let disk = dir.path().join("disk.img");
    let off = 1u64 << 20;
    ext4_util::sparse_file(&disk, (256 << 20) + 2 * off);
    common::sh(&format!(
        "dd if={} of={} bs=1M seek=1 conv=sparse,notrunc status=none",
        part.display(),
        disk.display()
    ));
    let ours = {
        let img = ImageFile::open(&disk, Access::ReadWrite).expect("open");
        let slice = ebsim::blockdev::Slice::new(img, off, 256 << 20).expect("slice");
        let mut fs = Ext4Files::open(slice).expect("open ext4 on the slice");
        write_tree(
            &mut fs,
            TreeSpec {
                prealloc: 32 << 20,
                many: 300,
            },
        );
        fs.sync().expect("sync");
        fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"))
    };
    let _lock = common::mount_lock();
    let o = common::sh(&format!(
        "losetup -f --show -r -o {off} --sizelimit {} {}",
        256 << 20,
        disk.display()
    ));
    let dev = common::stdout(&o).trim().to_string();
    let fsck = common::run(std::process::Command::new("e2fsck").args(["-fn", &dev]));
    let m = tempfile::tempdir().expect("mount dir");
    let mounted = common::run(
        std::process::Command::new("mount")
            .args(["-t", "ext4", "-o", "ro", &dev])
            .arg(m.path()),
    );
    let kernel = mounted.status.success().then(|| host_manifest(m.path()));
    if mounted.status.success() {
        common::sh(&format!("umount {}", m.path().display()));
    }
    common::sh(&format!("losetup -d {dev}"));
    assert!(
        fsck.status.success(),
        "e2fsck: {}{}",
        common::stdout(&fsck),
        common::stderr(&fsck)
    );
    let kernel = kernel.unwrap_or_else(|| panic!("mount: {}", common::stderr(&mounted)));
    assert_manifests_equal(&ours, &kernel, "the tree on a partition");
    // Nothing outside the partition was written.
    let img = ImageFile::open(&disk, Access::ReadOnly).expect("open");
    use ebsim::blockdev::BlockDevice;
    for r in img.data_ranges(0..img.size()).expect("ranges") {
        assert!(
            r.start >= off && r.end <= off + (256 << 20),
            "data at {r:?}"
        );
    }
}
