//! `ebsim image` against the kernel, e2fsck and xfs_repair, on ext4 and
//! XFS: a tree copied in is what a loop mount shows; what the kernel
//! writes is what ebsim copies out, byte for byte; ls, stat and df agree
//! with coreutils on the mount; the checker is silent after every write;
//! refused commands leave the image byte-identical.

mod common;

use common::manifest::{
    LoopMount, Manifest, assert_fsck_clean, assert_same, of_dir, partition_range, portable, subtree,
};
use common::{ebsim, file_hash, mount_lock, require_mount, require_tools, run, stderr, stdout};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn tools() -> bool {
    require_tools(&[
        "e2fsck",
        "mkfs.ext4",
        "xfs_repair",
        "mkfs.xfs",
        "sgdisk",
        "losetup",
        "ls",
        "stat",
    ]) && require_mount()
}

/// The filesystem a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ext4,
    Xfs,
}

/// A sparse file of `size` bytes (at least 512 MiB for XFS, above
/// mkfs.xfs's minimum) with a filesystem made by ebsim's mkfs.
fn fs_image(kind: Kind, path: &Path, size: u64) {
    let (size, mkfs) = match kind {
        Kind::Ext4 => (size, "mkfs.ext4"),
        Kind::Xfs => (size.max(512 << 20), "mkfs.xfs"),
    };
    let f = std::fs::File::create(path).expect("create");
    f.set_len(size).expect("size");
    let o = run(ebsim(mkfs).arg("-q").arg(path));
    assert!(o.status.success(), "{mkfs}: {}", stderr(&o));
}

/// `ebsim image ARGS...`.
fn image(args: &[&str]) -> Output {
    let mut c = ebsim("image");
    c.args(args).env("SOURCE_DATE_EPOCH", "1709276826");
    run(&mut c)
}

fn ok(args: &[&str]) -> Output {
    let o = image(args);
    assert!(
        o.status.success(),
        "ebsim image {args:?} failed ({:?}):\n{}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    o
}

/// A sparse file with an ext4 filesystem made by ebsim.
fn ext4_image(path: &Path, size: u64) {
    fs_image(Kind::Ext4, path, size);
}

fn sh(script: &str) {
    common::sh(script);
}

/// A deterministic pseudo-random byte stream.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
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

/// A host tree with everything cp must carry: nested directories, files
/// of 0 B, 1 B, 4 KiB and 1 MiB, a sparse file, many entries in one
/// directory, fast and slow symlinks, hard links, a FIFO and devices,
/// odd modes, other owners, old mtimes, names with spaces.
fn host_tree(root: &Path, many: usize) {
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    };
    w("empty", b"");
    w("one", b"x");
    w("page", &bytes(1, 4096));
    w("mib", &bytes(2, 1 << 20));
    w("a/b/c/deep", b"deep\n");
    w("with space/it's", b"quoted\n");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(root.join("sparse")).expect("create");
        f.write_all_at(&bytes(3, 10_000), 5 << 20).expect("write");
        f.write_all_at(&[0u8; 8192], 1 << 20).expect("zeros");
        f.set_len(20 << 20).expect("len");
    }
    for i in 0..many {
        w(&format!("many/entry-{i:05}"), format!("{i}\n").as_bytes());
    }
    std::os::unix::fs::symlink("a/b/c/deep", root.join("fast")).expect("symlink");
    std::os::unix::fs::symlink("s".repeat(300), root.join("slow")).expect("symlink");
    std::os::unix::fs::symlink("a/b", root.join("dirlink")).expect("symlink");
    std::fs::hard_link(root.join("one"), root.join("a/one-again")).expect("link");
    std::fs::hard_link(root.join("one"), root.join("a/b/one-thrice")).expect("link");
    sh(&format!(
        "cd '{}' && mkfifo fifo && mknod null c 1 3 && mknod disk b 202 17 \
         && chmod 4755 page && chmod 1777 a && chmod 2750 a/b && chmod 600 mib \
         && chown 1000:1000 mib a/b/c && chown -h 1001:50 fast \
         && touch -h -d '2020-02-02 02:02:02.5' fast mib a/b/c/deep",
        root.display()
    ));
}

/// Every byte of `img` outside `range`, hashed (partitions next to the
/// one written must stay as they were).
fn hash_outside(img: &Path, range: (u64, u64)) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).expect("open");
    let len = f.metadata().expect("stat").len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (s, e) in [(0, range.0), (range.0 + range.1, len)] {
        let mut off = s;
        while off < e {
            let n = ((e - off) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], off).expect("read");
            h.update(&buf[..n]);
            off += n as u64;
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn ebsim_manifest(img: &Path, partition: Option<u32>) -> Manifest {
    common::manifest::ebsim_manifest(img, partition)
}

/// The core round trip: a host tree copied in with `cp -a` is what the
/// kernel sees (same types, sizes, modes, owners, link counts, contents,
/// targets, mtimes) and what ebsim's reader sees; e2fsck is silent.
#[test]
fn tree_copied_in_is_what_the_kernel_sees() {
    tree_copied_in(Kind::Ext4);
}

#[test]
fn tree_copied_in_is_what_the_kernel_sees_xfs() {
    tree_copied_in(Kind::Xfs);
}

fn tree_copied_in(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("tree");
    host_tree(&src, 3000);
    let img = dir.path().join("fs.img");
    fs_image(kind, &img, 512 << 20);
    let img_s = img.to_str().expect("utf8");
    ok(&["mkdir", "-p", &format!("{img_s}:/srv/data")]);
    ok(&[
        "cp",
        "-a",
        src.to_str().expect("utf8"),
        &format!("{img_s}:/srv/data"),
    ]);
    assert_fsck_clean(&img, None);
    let host = of_dir(&src);
    let ours = ebsim_manifest(&img, None);
    assert_same(
        &portable(&host),
        &portable(&subtree(&ours, "/srv/data/tree")),
        "the host tree vs ebsim's reader",
    );
    let _lock = mount_lock();
    let m = LoopMount::new(&img, None, true);
    let kernel = of_dir(m.path());
    assert_same(&ours, &kernel, "ebsim's reader vs the kernel");
    assert_same(
        &portable(&host),
        &portable(&subtree(&kernel, "/srv/data/tree")),
        "the host tree vs the kernel",
    );
    // The sparse file stayed sparse: its data and nothing else.
    let sp = std::fs::metadata(m.path().join("srv/data/tree/sparse")).expect("stat");
    assert!(
        sp.blocks() * 512 <= 16 << 10,
        "sparse file uses {} bytes",
        sp.blocks() * 512
    );
    m.umount();
}

/// Without -p a copy is owned by the caller, stamped now, and its mode
/// is the source's minus the umask; a copy onto an existing file keeps
/// the file (inode, mode) and replaces its data; into a directory it goes
/// under its own name.
#[test]
fn plain_copies_follow_cp() {
    plain_copies(Kind::Ext4);
}

#[test]
fn plain_copies_follow_cp_xfs() {
    plain_copies(Kind::Xfs);
}

fn plain_copies(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    fs_image(kind, &img, 64 << 20);
    let img_s = img.to_str().expect("utf8");
    let f = dir.path().join("f");
    std::fs::write(&f, b"first").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    sh(&format!("chown 1000:1000 {}", f.display()));
    ok(&["cp", f.to_str().expect("utf8"), &format!("{img_s}:/copy")]);
    ok(&["cp", f.to_str().expect("utf8"), &format!("{img_s}:/")]);
    std::fs::write(&f, b"second, longer").expect("write");
    ok(&["cp", f.to_str().expect("utf8"), &format!("{img_s}:/copy")]);
    assert_fsck_clean(&img, None);
    let m = ebsim_manifest(&img, None);
    let c = &m["/copy"];
    assert_eq!((c.uid, c.gid, c.perm, c.size), (0, 0, 0o644, 14));
    assert_eq!(c.mtime, 1_709_276_826, "stamped with the command's time");
    assert_eq!(m["/f"].size, 5);
    let o = ok(&["cat", &format!("{img_s}:/copy"), &format!("{img_s}:/f")]);
    assert_eq!(o.stdout, b"second, longerfirst");
}

/// A tree the kernel writes (files, a 1 GiB preallocation with data in
/// its middle, sparse files, links, devices) is copied out by ebsim with
/// the same bytes and attributes, sparse on the host.
#[test]
fn the_kernels_files_copied_out_byte_for_byte() {
    copied_out(Kind::Ext4);
}

#[test]
fn the_kernels_files_copied_out_byte_for_byte_xfs() {
    copied_out(Kind::Xfs);
}

fn copied_out(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    fs_image(kind, &img, 2 << 30);
    let lock = mount_lock();
    let m = LoopMount::new(&img, None, false);
    let k = m.path().join("k");
    host_tree(&k, 500);
    sh(&format!(
        "cd '{}' && fallocate -l 1G prealloc && dd if=/dev/urandom of=prealloc bs=64k count=3 \
         seek=5000 conv=notrunc status=none && truncate -s 5G huge-hole && sync",
        k.display()
    ));
    let kernel = of_dir(&k);
    m.umount();
    drop(lock);
    assert_fsck_clean(&img, None);
    let img_s = img.to_str().expect("utf8");
    let out = dir.path().join("out");
    ok(&[
        "cp",
        "-a",
        &format!("{img_s}:/k"),
        out.to_str().expect("utf8"),
    ]);
    assert_same(&kernel, &of_dir(&out), "the kernel's tree copied out");
    let alloc = |p: &str| std::fs::metadata(out.join(p)).expect("stat").blocks() * 512;
    assert!(
        alloc("prealloc") <= 1 << 20,
        "prealloc: {}",
        alloc("prealloc")
    );
    assert_eq!(alloc("huge-hole"), 0);
    // One file to a new name, and to stdout.
    let one = dir.path().join("one-file");
    ok(&[
        "cp",
        &format!("{img_s}:/k/mib"),
        one.to_str().expect("utf8"),
    ]);
    assert_eq!(
        std::fs::read(&one).expect("read"),
        std::fs::read(out.join("mib")).expect("read")
    );
    let o = ok(&["cat", &format!("{img_s}:/k/a/b/c/deep")]);
    assert_eq!(o.stdout, b"deep\n");
    // Copying out wrote nothing into the image.
    let before = file_hash(&img);
    ok(&[
        "cp",
        "-r",
        &format!("{img_s}:/k/a"),
        dir.path().join("a2").to_str().expect("utf8"),
    ]);
    assert_eq!(file_hash(&img), before);
}

/// On a GPT disk: `IMAGE@N:` and `--partition N` reach partition N only;
/// every byte outside it stays as it was; the kernel (through an offset
/// loop device) sees the files; the real mke2fs made this filesystem.
#[test]
fn partitions_by_number() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .expect("create")
        .set_len(300 << 20)
        .expect("size");
    sh(&format!(
        "sgdisk -n 1:2048:+100M -n 2:0:+150M -t 1:8300 -t 2:8300 {0} >/dev/null",
        img.display()
    ));
    let p1 = partition_range(&img, 1);
    let p2 = partition_range(&img, 2);
    {
        let _lock = mount_lock();
        for (range, label) in [(p1, "one"), (p2, "two")] {
            let lo = common::manifest::Loop::new(&img, Some(range));
            let o = run(Command::new("mkfs.ext4").args(["-q", "-L", label, &lo.dev]));
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    let img_s = img.to_str().expect("utf8");
    let src = dir.path().join("t");
    host_tree(&src, 20);
    let outside = hash_outside(&img, p2);
    ok(&[
        "cp",
        "-a",
        src.to_str().expect("utf8"),
        &format!("{img_s}@2:/"),
    ]);
    ok(&["--partition", "2", "mkdir", &format!("{img_s}:/by-option")]);
    assert_eq!(hash_outside(&img, p2), outside, "bytes outside partition 2");
    assert_fsck_clean(&img, Some(p2));
    assert_fsck_clean(&img, Some(p1));
    let ours = ebsim_manifest(&img, Some(2));
    assert!(ours.contains_key("/by-option"));
    {
        let _lock = mount_lock();
        let m = LoopMount::new(&img, Some(p2), true);
        assert_same(&ours, &of_dir(m.path()), "partition 2 through the kernel");
    }
    assert_same(
        &portable(&of_dir(&src)),
        &portable(&subtree(&ours, "/t")),
        "the tree in partition 2",
    );
    // Partition 1 is still empty.
    let o = ok(&["ls", &format!("{img_s}@1:/")]);
    assert_eq!(stdout(&o), "lost+found\n");
    // The whole disk is not a filesystem: the message names the table and
    // the partitions that hold one.
    let o = image(&["ls", img_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("holds a gpt partition table")
            && stderr(&o).contains("partition 1 is ext4, 2 is ext4"),
        "{}",
        stderr(&o)
    );
}

/// ls -ln, ls -la and stat -c agree with coreutils on the kernel's mount
/// (TZ=UTC, C locale), and df's numbers with statfs.
#[test]
fn ls_stat_df_match_coreutils() {
    ls_stat_df(Kind::Ext4);
}

#[test]
fn ls_stat_df_match_coreutils_xfs() {
    ls_stat_df(Kind::Xfs);
}

fn ls_stat_df(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    fs_image(kind, &img, 128 << 20);
    let img_s = img.to_str().expect("utf8");
    let src = dir.path().join("t");
    host_tree(&src, 30);
    ok(&[
        "cp",
        "-a",
        src.to_str().expect("utf8"),
        &format!("{img_s}:/"),
    ]);
    ok(&["fallocate", "-l", "10M", &format!("{img_s}:/t/prealloc")]);
    let fmt = "%n|%s|%b|%f|%a|%A|%F|%u|%g|%h|%i|%t|%T|%X|%Y|%x|%y|%o|%N";
    let _lock = mount_lock();
    let m = LoopMount::new(&img, None, true);
    let coreutils = |cmd: &str| {
        let o = run(Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(m.path())
            .env("TZ", "UTC")
            .env("LC_ALL", "C"));
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        stdout(&o)
    };
    for (ours, theirs) in [
        (
            vec!["ls", "-ln", "--time-style=long-iso"],
            "ls -ln --time-style=long-iso t",
        ),
        (
            vec!["ls", "-lna", "--time-style=full-iso"],
            "ls -lna --time-style=full-iso t",
        ),
        (vec!["ls", "-a"], "ls -a t"),
        (
            vec!["ls", "-ln", "--time-style=long-iso"],
            "ls -ln --time-style=long-iso t/a t/many",
        ),
    ] {
        let mut args: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
        let paths: Vec<&str> = theirs.split(' ').filter(|w| w.starts_with('t')).collect();
        args.extend(paths.iter().map(|p| format!("{img_s}:/{p}")));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = stdout(&ok(&a));
        // ls names directories as given: ours are IMAGE:/t/a, its t/a.
        let got = got.replace(&format!("{img_s}:/"), "");
        assert_eq!(got, coreutils(theirs), "{theirs}");
    }
    for p in [
        "t/page",
        "t/fast",
        "t/fifo",
        "t/null",
        "t/disk",
        "t/a",
        "t/prealloc",
        "t/empty",
    ] {
        let got = stdout(&ok(&["stat", "-c", fmt, &format!("{img_s}:/{p}")]));
        let want = coreutils(&format!("stat -c '{fmt}' {p}"));
        assert_eq!(got.replace(&format!("{img_s}:/"), ""), want, "stat {p}");
    }
    // The default stat layout, but for the Device line and the names.
    let got = stdout(&ok(&["stat", &format!("{img_s}:/t/page")]));
    let want = coreutils("stat t/page");
    // Owner names: the image has no /etc/passwd (UNKNOWN), the host's
    // says root; the Device line names the image.
    let keep = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("Device:") && !l.starts_with("  File:"))
            .map(|l| l.split("Uid:").next().unwrap_or("").to_string())
            .collect()
    };
    let (g, w) = (keep(&got), keep(&want));
    assert_eq!(g, w, "stat's default layout");
    // df: the numbers of statfs, as df prints them.
    let got = stdout(&ok(&["df", img_s]));
    let want = coreutils("df -k .");
    let nums = |s: &str| -> Vec<String> {
        s.lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .take(4)
            .map(String::from)
            .collect()
    };
    assert_eq!(nums(&got), nums(&want), "df:\n{got}\n{want}");
    let got = stdout(&ok(&["df", "-ih", img_s]));
    let want = coreutils("df -ih .");
    assert_eq!(nums(&got), nums(&want), "df -ih:\n{got}\n{want}");
    m.umount();
}

/// mkdir, rm, fallocate and cp change the image as the same commands do
/// on the kernel's mount of a copy of it: the same manifest and statfs
/// after the same sequence.
#[test]
fn changes_match_the_kernel_doing_the_same() {
    changes_match(Kind::Ext4);
}

#[test]
fn changes_match_the_kernel_doing_the_same_xfs() {
    changes_match(Kind::Xfs);
}

fn changes_match(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = dir.path().join("ours.img");
    fs_image(kind, &ours, 256 << 20);
    let theirs = dir.path().join("theirs.img");
    std::fs::copy(&ours, &theirs).expect("copy");
    let src = dir.path().join("t");
    host_tree(&src, 100);
    let s = ours.to_str().expect("utf8");
    let at = |p: &str| format!("{s}:{p}");
    ok(&["cp", "-a", src.to_str().expect("utf8"), &at("/")]);
    ok(&["mkdir", "-p", "-m", "0750", &at("/x/y/z")]);
    ok(&["mkdir", &at("/x/w"), &at("/x/v")]);
    ok(&["fallocate", "-l", "100M", &at("/x/y/z/pre")]);
    ok(&["fallocate", "-l", "4M", &at("/x/keep")]);
    ok(&["fallocate", "-n", "-l", "1M", "-o", "4M", &at("/x/keep")]);
    ok(&["fallocate", "-p", "-o", "1M", "-l", "2M", &at("/t/sparse")]);
    ok(&["rm", "-r", &at("/t/many"), &at("/t/a/b")]);
    ok(&["rm", &at("/t/fast"), &at("/t/one")]);
    ok(&["rm", "-f", &at("/nope"), &at("/t/mib")]);
    assert_fsck_clean(&ours, None);
    let _lock = mount_lock();
    {
        let m = LoopMount::new(&theirs, None, false);
        let r = m.path();
        sh(&format!(
            "cd '{}' && umask 022 && cp -a '{}' . && mkdir -p x/y/z && chmod 0750 x/y/z \
             && mkdir x/w x/v && fallocate -l 100M x/y/z/pre && fallocate -l 4M x/keep && fallocate -n -l 1M -o 4M x/keep \
             && fallocate -p -o 1M -l 2M t/sparse && rm -r t/many t/a/b && rm t/fast t/one \
             && rm -f nope t/mib && sync",
            r.display(),
            src.display()
        ));
        m.umount();
    }
    // One mount at a time: the two are copies, and the kernel mounts no
    // second XFS with the same UUID.
    let look = |img: &Path| {
        let m = LoopMount::new(img, None, true);
        let r = (of_dir(m.path()), m.statvfs());
        m.umount();
        r
    };
    let (theirs_files, k) = look(&theirs);
    let (ours_files, e) = look(&ours);
    // Times differ (ebsim's are the command's); the rest is the same.
    let strip = |m: Manifest| -> Manifest {
        m.into_iter()
            .map(|(k, mut v)| {
                if v.kind == "dir" || k.starts_with("/x") || k == "/t/sparse" {
                    v.mtime = 0;
                }
                (k, v)
            })
            .collect()
    };
    assert_same(
        &strip(theirs_files),
        &strip(ours_files),
        "the kernel's result vs ebsim's",
    );
    assert_eq!(k[4..], e[4..], "inodes in use");
    // Block use: the same data and preallocations; metadata placement may
    // differ by a few blocks (directory and tree blocks).
    assert!(
        k[2].abs_diff(e[2]) <= 16,
        "free blocks: kernel {} ebsim {}",
        k[2],
        e[2]
    );
}

/// Refusals: each exits 1 with a message naming the problem and leaves
/// the image byte-identical.
#[test]
fn refusals_leave_the_image_untouched() {
    refusals(Kind::Ext4);
}

#[test]
fn refusals_leave_the_image_untouched_xfs() {
    refusals(Kind::Xfs);
}

fn refusals(kind: Kind) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    fs_image(kind, &img, 64 << 20);
    let s = img.to_str().expect("utf8");
    let src = dir.path().join("t");
    host_tree(&src, 10);
    let big = dir.path().join("big");
    std::fs::write(&big, bytes(9, 80 << 20)).expect("write");
    let medium = dir.path().join("medium");
    std::fs::write(&medium, bytes(10, 20 << 20)).expect("write");
    ok(&["cp", "-r", src.to_str().expect("utf8"), &format!("{s}:/")]);
    // /t/t/one is a directory where the tree has a file.
    ok(&["mkdir", "-p", &format!("{s}:/t/t/one")]);
    // Leave about 12 MiB free: the 20 MiB copy (small enough to be staged
    // without a dry run) runs out of space in the real run.
    let free = free_bytes(&img, true);
    ok(&[
        "fallocate",
        "-l",
        &(free - (12 << 20)).to_string(),
        &format!("{s}:/filler"),
    ]);
    let blank = dir.path().join("blank.img");
    std::fs::File::create(&blank)
        .expect("create")
        .set_len(64 << 20)
        .expect("size");
    let inline = dir.path().join("inline.img");
    std::fs::File::create(&inline)
        .expect("create")
        .set_len(64 << 20)
        .expect("size");
    let o = run(Command::new("mkfs.ext4")
        .args(["-q", "-O", "inline_data"])
        .arg(&inline));
    assert!(o.status.success(), "{}", stderr(&o));
    let b = blank.to_str().expect("utf8");
    let i = inline.to_str().expect("utf8");
    let t = src.to_str().expect("utf8");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["ls".into(), format!("{s}x:/")],
            "No such file or directory",
        ),
        (
            vec!["ls".into(), format!("{b}:/")],
            "no ext4 or XFS filesystem found",
        ),
        (
            vec!["mkdir".into(), format!("{s}@1:/d")],
            "no partition table, so no partition 1",
        ),
        (
            vec!["cp".into(), big.display().to_string(), format!("{s}:/big")],
            "No space left on device",
        ),
        (
            vec![
                "cp".into(),
                medium.display().to_string(),
                medium.display().to_string(),
                big.display().to_string(),
                format!("{s}:/t"),
            ],
            "No space left on device",
        ),
        (
            vec![
                "cp".into(),
                medium.display().to_string(),
                format!("{s}:/t/medium"),
            ],
            "No space left on device",
        ),
        (
            vec![
                "fallocate".into(),
                "-l".into(),
                "1G".into(),
                format!("{s}:/pre"),
            ],
            "No space left on device",
        ),
        (
            vec!["cp".into(), t.into(), format!("{s}:/")],
            "-r not specified; omitting directory",
        ),
        (
            vec!["cp".into(), "-r".into(), t.into(), format!("{s}:/t/one")],
            "cannot overwrite non-directory",
        ),
        (
            vec!["cp".into(), "-r".into(), t.into(), format!("{s}:/t")],
            "cannot overwrite directory",
        ),
        (
            vec![
                "fallocate".into(),
                "-n".into(),
                "-l".into(),
                "1M".into(),
                format!("{s}:/new"),
            ],
            "No such file or directory",
        ),
        (
            vec!["cp".into(), format!("{t}/one"), format!("{s}:/no/such/dir")],
            "No such file or directory",
        ),
        (
            vec![
                "cp".into(),
                format!("{t}/one"),
                format!("{t}/one"),
                format!("{s}:/t/one"),
            ],
            "is not a directory",
        ),
        (
            vec!["cp".into(), format!("{t}/nope"), format!("{s}:/x")],
            "No such file or directory",
        ),
        (vec!["rm".into(), format!("{s}:/t")], "Is a directory"),
        (
            vec!["rm".into(), format!("{s}:/nope")],
            "No such file or directory",
        ),
        (
            vec!["rm".into(), "-r".into(), format!("{s}:/")],
            "dangerous",
        ),
        (
            vec!["rm".into(), format!("{s}:/t/one"), format!("{s}:/nope")],
            "No such file or directory",
        ),
        (vec!["mkdir".into(), format!("{s}:/t")], "File exists"),
        (
            vec!["mkdir".into(), format!("{s}:/t/one/x")],
            "Not a directory",
        ),
        (
            vec!["mkdir".into(), format!("{s}:/new"), format!("{s}:/t/one/x")],
            "Not a directory",
        ),
        (
            vec!["mkdir".into(), "-p".into(), format!("{s}:/t/one/x")],
            "Not a directory",
        ),
        (vec!["cat".into(), format!("{s}:/t")], "Is a directory"),
        (
            vec![
                "fallocate".into(),
                "-l".into(),
                "1M".into(),
                format!("{s}:/t"),
            ],
            "Is a directory",
        ),
        (
            vec!["mkdir".into(), format!("{s}:/x"), format!("{b}:/y")],
            "different images",
        ),
        (
            vec!["cp".into(), format!("{s}:/t/one"), format!("{s}:/t/two")],
            "not supported",
        ),
        (
            vec![
                "ls".into(),
                "--partition".into(),
                "2".into(),
                format!("{s}@1:/"),
            ],
            "--partition says 2",
        ),
    ];
    // An ext4 feature ebsim's file layer refuses by name.
    let mut cases = cases;
    if kind == Kind::Ext4 {
        cases.push((vec!["mkdir".into(), format!("{i}:/d")], "inline_data"));
    }
    for (args, want) in cases {
        let before = file_hash(&img);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = image(&a);
        assert_eq!(o.status.code(), Some(1), "{a:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{a:?}: want {want:?} in {:?}",
            stderr(&o)
        );
        assert_eq!(file_hash(&img), before, "{a:?} changed the image");
        let logs: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ebsim-undo"))
            .map(|e| e.file_name())
            .collect();
        assert!(logs.is_empty(), "{a:?} left an undo log: {logs:?}");
    }
    assert_fsck_clean(&img, None);
    assert_eq!(
        stderr(&image(&["ls", "x"])).trim(),
        "ebsim image ls: x: No such file or directory"
    );
}

/// What root (`bfree`) or a user (`bavail`) may still allocate, in bytes
/// (opened for writing, as the commands that allocate open it: XFS then
/// holds back its per-AG reservations).
fn free_bytes(img: &Path, root: bool) -> u64 {
    let o = ebsim::imgio::open(img, None, true).expect("open");
    let st = o.fs.statfs().expect("statfs");
    (if root { st.bfree } else { st.bavail }) * st.frsize
}

/// Root may use the blocks ext4 reserves for it, a user may not: a copy
/// (large enough to be tried without data first) that fits only into
/// the reserve fails as uid 1000, changing nothing, and works as root;
/// the user's new files are the user's.
#[test]
fn the_reserve_is_roots() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ext4_image(&img, 64 << 20);
    let s = img.to_str().expect("utf8");
    let (user, root) = (free_bytes(&img, false), free_bytes(&img, true));
    assert!(root - user > 2 << 20, "reserve {}", root - user);
    let size = user + (root - user) / 2;
    let f = dir.path().join("f");
    std::fs::write(&f, bytes(5, size as usize)).expect("write");
    ok(&["--user", "1000", "mkdir", &format!("{s}:/home")]);
    let before = file_hash(&img);
    let o = image(&[
        "--user",
        "1000:1000",
        "cp",
        f.to_str().expect("utf8"),
        &format!("{s}:/home/f"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert_eq!(file_hash(&img), before);
    ok(&["cp", f.to_str().expect("utf8"), &format!("{s}:/home/f")]);
    assert_fsck_clean(&img, None);
    let m = ebsim_manifest(&img, None);
    assert_eq!((m["/home"].uid, m["/home"].gid), (1000, 1000));
    assert_eq!((m["/home/f"].uid, m["/home/f"].size), (0, size));
}

/// 150 GiB preallocated on a 200 GiB image costs metadata only: the
/// image grows by the block bitmaps of the groups it fills (4 KiB per
/// 128 MiB), no more than the kernel's own `fallocate` grows a copy of
/// it; the kernel sees the file.
#[test]
fn preallocation_stays_sparse() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("big.img");
    ext4_image(&img, 200 << 30);
    let copy = dir.path().join("kernel.img");
    common::sparse_copy(&img, &copy);
    let before = common::allocated(&img);
    let s = img.to_str().expect("utf8");
    ok(&["fallocate", "-l", "150G", &format!("{s}:/var-lib-data")]);
    let ours = common::allocated(&img) - before;
    let m = ebsim_manifest(&img, None);
    assert_eq!(m["/var-lib-data"].size, 150 << 30);
    let o = ok(&["df", "-h", s]);
    assert!(stdout(&o).contains("151G"), "{}", stdout(&o));
    let _lock = mount_lock();
    let k = LoopMount::new(&img, None, true);
    let md = std::fs::metadata(k.path().join("var-lib-data")).expect("stat");
    assert_eq!(md.len(), 150 << 30);
    assert!(md.blocks() * 512 >= 150 << 30);
    k.umount();
    let before = common::allocated(&copy);
    let k = LoopMount::new(&copy, None, false);
    sh(&format!(
        "fallocate -l 150G {}/var-lib-data",
        k.path().display()
    ));
    k.umount();
    let kernel = common::allocated(&copy) - before;
    assert!(
        ours <= kernel && ours < 8 << 20,
        "the image grew by {ours} bytes (the kernel's copy by {kernel})"
    );
}
