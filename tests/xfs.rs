//! XFS: ebsim's mkfs.xfs, xfs_growfs (offline) and xfs_info against the real
//! xfsprogs 6.1 and the kernel. Differential tests run the
//! real tools and fail, not skip, under CI when they are missing.

mod common;
mod xfs_util;

use common::{
    allocated, ebsim, in_ci, mount_lock, require_mount, require_tools, run, stderr, stdout,
};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::fs::xfs::{self, MountMode, Xfs, growfs};
use std::path::{Path, PathBuf};
use xfs_util::*;

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;
const T: u64 = 1 << 40;

const MKFS_TOOLS: &[&str] = &["mkfs.xfs", "xfs_repair", "xfs_db", "faketime"];
const GROW_TOOLS: &[&str] = &[
    "mkfs.xfs",
    "xfs_repair",
    "xfs_db",
    "xfs_growfs",
    "faketime",
    "losetup",
];

// ---------------------------------------------------------------- mkfs

/// Real mkfs.xfs and ebsim mkfs.xfs on two empty files of `size` bytes
/// (same uuid, same frozen clock): same output, the same bytes wherever
/// either wrote, a clean xfs_repair, the same `xfs_db sb 0` print.
fn mkfs_differential(size: u64, tmp: &Path) {
    if !require_tools(MKFS_TOOLS) {
        return;
    }
    let (rdir, edir) = (tmp.join("real"), tmp.join("ebsim"));
    std::fs::create_dir_all(&rdir).expect("mkdir");
    std::fs::create_dir_all(&edir).expect("mkdir");
    let (rimg, eimg) = (rdir.join("fs.img"), edir.join("fs.img"));
    sparse_file(&rimg, size);
    sparse_file(&eimg, size);
    let uuid = format!("uuid={UUID}");
    let args = ["-m", uuid.as_str(), "fs.img"];
    let r = frozen(&rdir, "mkfs.xfs", &args);
    let e = frozen_ebsim(&edir, "mkfs.xfs", &args);
    assert!(r.status.success(), "real mkfs.xfs: {}", stderr(&r));
    assert_eq!(
        e.status.code(),
        r.status.code(),
        "exit code; ebsim stderr: {}",
        stderr(&e)
    );
    assert_eq!(stdout(&e), stdout(&r), "geometry printout");
    assert_eq!(stderr(&e), stderr(&r));
    let bad = differing_blocks(&rimg, &eimg);
    assert!(
        bad.is_empty(),
        "size {size}: blocks differ: {:?}",
        &bad[..bad.len().min(20)]
    );
    let (rc, out) = repair(&eimg);
    assert_eq!(rc, 0, "xfs_repair -n on ebsim's image:\n{out}");
    assert_eq!(
        xfs_db(&eimg, &["sb 0", "print"]),
        xfs_db(&rimg, &["sb 0", "print"]),
        "xfs_db sb 0"
    );
    // Only metadata is written: about 6 blocks per AG, the root inode
    // chunk and the first log block.
    let sb =
        xfs::read_primary(&ImageFile::open(&eimg, Access::ReadOnly).expect("open")).expect("sb");
    // (plus the host filesystem's own extent blocks, which st_blocks counts).
    let budget = (u64::from(sb.agcount) * 6 + 8 + 1) * 4096 + 64 * 1024;
    assert!(
        allocated(&eimg) <= budget,
        "ebsim image allocates {} bytes, more than its {budget} bytes of metadata",
        allocated(&eimg)
    );
}

#[test]
fn mkfs_differential_300m() {
    mkfs_differential(300 * M, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_1g() {
    mkfs_differential(G, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_1g_plus_4k() {
    mkfs_differential(G + 4 * K, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_8g() {
    mkfs_differential(8 * G, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_200g() {
    mkfs_differential(200 * G, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_1t() {
    mkfs_differential(T, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_4t_minus_4k() {
    mkfs_differential(4 * T - 4 * K, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_16t_minus_4k() {
    mkfs_differential(16 * T - 4 * K, tempfile::tempdir().expect("tmp").path());
}

#[test]
fn mkfs_differential_64t_on_tmpfs() {
    // The host's ext4 caps files at 16 TiB − 4 KiB; tmpfs holds 64 TiB
    // sparse files (real mkfs writes its 2 GiB log there).
    mkfs_differential(64 * T, common::big_tempdir().path());
}

#[test]
fn mkfs_16t_allocates_under_1mib() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, 16 * T - 4 * K);
    let o = run(ebsim("mkfs.xfs").arg("-q").arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        allocated(&img) < M,
        "mkfs 16T-4K allocated {} bytes",
        allocated(&img)
    );
    let fs = Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect("xfs");
    assert_eq!((fs.sb().agcount, fs.sb().dblocks), (16, 4294967280));
    assert!(fs.info().log_clean);
}

#[test]
fn mkfs_honours_source_date_epoch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut hashes = Vec::new();
    for name in ["a.img", "b.img"] {
        let img = tmp.path().join(name);
        sparse_file(&img, G);
        let o = run(ebsim("mkfs.xfs")
            .args(["-q", "-m", &format!("uuid={UUID}")])
            .arg(&img)
            .env("SOURCE_DATE_EPOCH", "1700000000"));
        assert!(o.status.success(), "{}", stderr(&o));
        hashes.push(sparse_hash(&img));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(hashes[0], hashes[1], "same SOURCE_DATE_EPOCH, same bytes");
}

/// Runs real mkfs.xfs and ebsim's on copies of the same file with the same
/// arguments and compares exit code, stdout, stderr, and whether the file
/// changed.
fn mkfs_cli_same(setup: impl Fn(&Path), args: &[&str]) {
    if !require_tools(MKFS_TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (rdir, edir) = (tmp.path().join("r"), tmp.path().join("e"));
    for d in [&rdir, &edir] {
        std::fs::create_dir_all(d).expect("mkdir");
        setup(d);
    }
    let r = frozen(&rdir, "mkfs.xfs", args);
    let e = frozen_ebsim(&edir, "mkfs.xfs", args);
    assert_eq!(
        e.status.code(),
        r.status.code(),
        "exit code of mkfs.xfs {args:?}; ebsim stderr {}",
        stderr(&e)
    );
    assert_eq!(stdout(&e), stdout(&r), "stdout of mkfs.xfs {args:?}");
    assert_eq!(stderr(&e), stderr(&r), "stderr of mkfs.xfs {args:?}");
    let (ri, ei) = (rdir.join("fs.img"), edir.join("fs.img"));
    if ri.exists() {
        assert!(
            differing_blocks(&ri, &ei).is_empty(),
            "mkfs.xfs {args:?}: images differ"
        );
    }
}

/// [`mkfs_cli_same`] on a fresh sparse image of `size` bytes with the
/// fixed UUID, `opts` and the image as the operand.
fn mkfs_same_on(size: u64, opts: &[&str]) {
    let uuid = format!("uuid={UUID}");
    let mut args = vec!["-m", uuid.as_str()];
    args.extend_from_slice(opts);
    args.push("fs.img");
    mkfs_cli_same(|d: &Path| sparse_file(&d.join("fs.img"), size), &args);
}

#[test]
fn mkfs_cli_matches_real_tool() {
    let empty = |d: &Path| sparse_file(&d.join("fs.img"), G);
    let small = |d: &Path| sparse_file(&d.join("fs.img"), 200 * M);
    let tiny = |d: &Path| sparse_file(&d.join("fs.img"), 10 * M);
    let uuid = format!("uuid={UUID}");
    let made = |d: &Path| {
        sparse_file(&d.join("fs.img"), G);
        let uuid = format!("uuid={UUID}");
        let o = frozen(d, "mkfs.xfs", &["-q", "-m", &uuid, "fs.img"]);
        assert!(o.status.success());
    };
    mkfs_cli_same(small, &["fs.img"]);
    mkfs_cli_same(tiny, &["fs.img"]);
    mkfs_cli_same(empty, &[]);
    mkfs_cli_same(empty, &["fs.img", "other.img"]);
    mkfs_cli_same(empty, &["-V"]);
    mkfs_cli_same(empty, &["missing.img"]);
    mkfs_cli_same(empty, &["-z", "fs.img"]);
    mkfs_cli_same(empty, &["-L", "thirteen-char", "fs.img"]);
    mkfs_cli_same(empty, &["-m", "uuid=bogus", "fs.img"]);
    mkfs_cli_same(empty, &["-d", "size=2g", "fs.img"]);
    mkfs_cli_same(empty, &["-d", "size=1m", "fs.img"]);
    mkfs_cli_same(empty, &["-d", "size=100m", "fs.img"]);
    mkfs_cli_same(empty, &["-N", "-m", &uuid, "fs.img"]);
    mkfs_cli_same(made, &["fs.img"]);
    mkfs_cli_same(made, &["-N", "fs.img"]);
    mkfs_cli_same(made, &["-f", "-q", "-m", &uuid, "-L", "data", "fs.img"]);
    mkfs_cli_same(empty, &["-q", "-m", &uuid, "-d", "size=500m", "fs.img"]);
    mkfs_cli_same(empty, &["-m", &uuid, "-d", "size=536875008", "fs.img"]);
}

/// `-m` feature toggles and `-i sparse=`, alone and together, at sizes
/// whose log and AG sizing the features change: the same printout, exit
/// code and bytes as the real mkfs.xfs.
#[test]
fn mkfs_feature_toggles_match_real_tool() {
    let sets: &[&[&str]] = &[
        &["-m", "reflink=0"],
        &["-m", "rmapbt=1"],
        &["-m", "finobt=0"],
        &["-m", "finobt=0,inobtcount=1"],
        &["-m", "bigtime=0,inobtcount=0"],
        &["-m", "rmapbt=1,reflink=0,finobt=0", "-i", "sparse=0"],
        &["-i", "sparse=0"],
        &["-i", "sparse"],
        &["-m", "reflink"],
        &["-m", "reflink=2"],
        &["-m", "reflink=x"],
        &["-m", "crc=1,bigtime=1"],
        &["-m", "reflink=0,reflink=1"],
        &["-m", "rmapbt=0", "-m", "rmapbt=0"],
        &["-i", "sparse=0,sparse=1"],
        &["-m", "reflink=0x"],
        &["-m", "reflink=0x1"],
        &["-m", "reflink=+01"],
        &["-m", "reflink= "],
        &["-m", "reflink=-1"],
        &["-m", "reflink=-99999999999999999999"],
        &["-m", "reflink=99999999999999999999"],
        &["-i", "sparse=1k"],
        &["-m", "nosuch=1"],
        &["-i", "nosuch"],
    ];
    for size in [300 * M, 2 * G, 20 * G, 1024 * G] {
        for set in sets {
            mkfs_same_on(size, set);
        }
    }
}

/// `-d agcount=` and `-d agsize=`: the AGs they cut (a short last AG
/// dropped, the log in the middle AG), every refusal on the way (getnum's
/// bounds and suffixes, both given, respecified, not whole blocks, AGs
/// too small or too large, one AG left, AGs too small for a 64 MiB log):
/// the same printout, exit code and bytes as the real mkfs.xfs.
#[test]
fn mkfs_ag_count_and_size_match_real_tool() {
    for (size, d) in [
        (G, "agcount=2"),
        (G, "agcount=7"),
        (G, "agcount=16"),
        (G, "agcount=1000"),
        (G, "agcount=1"),
        (G, "agcount=0"),
        (G, "agcount=-1"),
        (G, "agcount=x"),
        (G, "agcount=3.5"),
        (G, "agcount=4294967295"),
        (G, "agcount"),
        (G, "agcount=2,agcount=3"),
        (G, "agcount=3,agsize=100m"),
        (G, "agsize=100m,agcount=3"),
        (G, "agcount=3,size=500m"),
        (G, "agsize=100m"),
        (G, "agsize=100000k"),
        (G, "agsize=100001k"),
        (G, "agsize=5000b"),
        (G, "agsize=15m"),
        (G, "agsize=12x"),
        (G, "agsize=511m"),
        (G, "agsize=1020m"),
        (G, "agsize=2g"),
        (G, "agsize=1t"),
        (G, "agsize=2t"),
        (G, "agsize="),
        (200 * M, "agcount=1"),
        (200 * M, "agcount=70"),
        (20 * G, "agcount=5"),
        (5 * T, "agsize=256g"),
        (16 * T - 4 * K, "agcount=4"),
        (16 * T - 4 * K, "agcount=1000"),
        (G, "size=-1"),
    ] {
        mkfs_same_on(size, &["-d", d]);
    }
}

/// `-l size=`, `agnum=`, `internal`, `version`, `lazy-count`, `-i
/// maxpct=` and `-n ftype`/`version`/`size`: the log where and as large as asked, or refused as mkfs.xfs
/// refuses it (getnum's bounds, whole sectors, larger than the data or an
/// AG, the log AG past the last, the switches a CRC filesystem cannot turn
/// off), with a warning for a size cut to whole blocks.
#[test]
fn mkfs_log_and_inode_cap_match_real_tool() {
    let cases: &[(u64, &[&str])] = &[
        (G, &["-l", "size=65525b"]),
        (G, &["-l", "size=65526b"]),
        (G, &["-l", "size=262144b"]),
        (G, &["-l", "size=5120b"]),
        (G, &["-l", "size=64M,agnum=3"]),
        (G, &["-l", "size=67109376"]),
        (G, &["-l", "size=67108865"]),
        (G, &["-l", "size=511b"]),
        (G, &["-l", "size=2039m"]),
        (G, &["-l", "size=-1"]),
        (G, &["-l", "size=x"]),
        (G, &["-l", "size=64m,size=65m"]),
        (G, &["-l", "size=100m", "-d", "agcount=8"]),
        (G, &["-l", "size=64m", "-d", "agcount=16"]),
        (G, &["-l", "agnum=4"]),
        (G, &["-l", "agnum=-1"]),
        (G, &["-l", "internal"]),
        (G, &["-l", "internal=0"]),
        (G, &["-l", "version=1"]),
        (G, &["-l", "version=3"]),
        (G, &["-l", "lazy-count=0"]),
        (G, &["-l", "lazy-count=1"]),
        (G, &["-l", "foo"]),
        (G, &["-i", "maxpct=7"]),
        (G, &["-i", "maxpct=0"]),
        (G, &["-i", "maxpct=101"]),
        (G, &["-i", "maxpct=5,maxpct=6"]),
        (100 * G, &["-l", "size=1g,agnum=0", "-i", "maxpct=50"]),
        (G, &["-n", "ftype=1"]),
        (G, &["-n", "ftype"]),
        (G, &["-n", "ftype=0"]),
        (G, &["-n", "ftype=2"]),
        (G, &["-n", "ftype=1,ftype=1"]),
        (G, &["-n", "version=2,size=4k"]),
        (G, &["-n", "version=1"]),
        (G, &["-n", "size=2048"]),
        (G, &["-n", "size=5000"]),
        (G, &["-n", "size=131072"]),
        (G, &["-n", "foo"]),
        // The geometry ebsim makes, said explicitly, and the checks on it.
        (G, &["-i", "size=512"]),
        (G, &["-i", "perblock=8"]),
        (G, &["-i", "attr=2,projid32bit=1,align=1,nrext64=0"]),
        (G, &["-b", "size=4k", "-s", "size=512", "-d", "noalign"]),
        (G, &["-d", "noalign=2"]),
        (G, &["-i", "size=256"]),
        (G, &["-i", "perblock=16"]),
        (G, &["-i", "size=512", "-i", "size=512"]),
        (G, &["-i", "perblock=8,size=512"]),
        (G, &["-i", "size=1k"]),
        (G, &["-i", "size=300"]),
        (G, &["-i", "size=4096"]),
        (G, &["-i", "attr=1"]),
        (G, &["-i", "attr"]),
        (G, &["-i", "projid32bit=0"]),
        (G, &["-i", "align=0"]),
        (G, &["-b", "size=3000"]),
        (G, &["-b", "size=131072"]),
        (G, &["-b", "log=12"]),
        (G, &["-s", "size=256"]),
        (G, &["-b", "size=4096,size=4096"]),
    ];
    for (size, opts) in cases {
        mkfs_same_on(*size, opts);
    }
}

/// `-b size=`, `-s size=` (and `-d`/`-l sectsize=`), `-i size=`/`perblock=`
/// and `-n size=` other than the defaults, alone and together, at sizes
/// that change the AG and log rules: the same printout, exit code and
/// bytes as the real mkfs.xfs (the AG headers over more than one block,
/// the inode chunk alignment, the realtime extent size, the clean log
/// record padded to a one-block log stripe unit), and its refusals (sizes
/// out of range, a block smaller than a sector, a `b` suffix before the
/// block size is known, directory blocks under the block, inodes over
/// half a block).
#[test]
fn mkfs_block_sector_inode_and_directory_sizes_match_real_tool() {
    let sets: &[&[&str]] = &[
        &["-b", "size=1024"],
        &["-b", "size=2048", "-s", "size=2048"],
        &["-b", "size=8192"],
        &["-b", "size=16k", "-i", "size=2048", "-n", "size=32k"],
        &["-b", "size=32768", "-m", "rmapbt=1", "-l", "size=128m"],
        &["-b", "size=65536", "-i", "size=1024", "-m", "reflink=0"],
        &["-s", "size=4096"],
        &["-s", "sectsize=4096", "-m", "rmapbt=1"],
        &["-d", "sectsize=4096", "-l", "sectsize=4096"],
        &["-i", "size=1024"],
        &["-i", "size=2048", "-i", "sparse=0"],
        &["-i", "perblock=4"],
        &["-b", "size=1024", "-i", "perblock=2"],
        &["-n", "size=8192"],
        &["-n", "size=65536"],
        &["-n", "size=4b", "-b", "size=1024"],
        &[
            "-b",
            "size=2048",
            "-m",
            "reflink=0,finobt=0",
            "-i",
            "sparse=0",
        ],
        &["-b", "size=16384", "-d", "agcount=7"],
        &["-b", "size=1024", "-d", "agsize=65536b"],
        &["-b", "size=2048", "-d", "size=300000b"],
        &["-s", "size=4096", "-d", "size=100000s"],
        &["-b", "size=2048", "-l", "size=40000b"],
        &["-b", "size=512"],
        &["-b", "size=1b"],
        &["-b", "size=2048", "-s", "size=4096"],
        &["-s", "size=4096", "-l", "sectsize=512"],
        &["-s", "size=4096", "-d", "sectsize=4096"],
        &["-s", "size=65536"],
        &["-n", "size=2048"],
        &["-b", "size=8192", "-n", "size=4096"],
        &["-b", "size=1024", "-i", "size=1024"],
        &["-b", "size=1024", "-i", "perblock=4"],
        &["-i", "perblock=16"],
    ];
    for size in [G, 20 * G, 1100 * G] {
        for set in sets {
            mkfs_same_on(size, set);
        }
    }
}

/// Where ebsim cannot be sure of the minimum log size (which it does not
/// compute) or would need two inode chunks a block, it refuses by name and
/// writes nothing.
#[test]
fn mkfs_sizes_ebsim_does_not_make_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, 10 * G);
    for (args, why) in [
        (&["-b", "size=65536"][..], "more than 64 inodes a block"),
        (
            &["-b", "size=32768", "-m", "rmapbt=1"][..],
            "minimum log size",
        ),
        (
            &["-b", "size=8192", "-l", "size=20m"][..],
            "minimum log size",
        ),
    ] {
        let o = run(ebsim("mkfs.xfs").args(args).arg(&img));
        assert_eq!(o.status.code(), Some(1), "mkfs.xfs {args:?}");
        assert!(
            stderr(&o).contains(why),
            "mkfs.xfs {args:?}: {}",
            stderr(&o)
        );
        assert!(data_ranges(&img).is_empty(), "mkfs.xfs {args:?} wrote");
    }
}

#[test]
fn mkfs_dry_run_and_refusals_write_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, G);
    let o = run(ebsim("mkfs.xfs").arg("-N").arg(&img));
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("meta-data="));
    assert!(data_ranges(&img).is_empty(), "-N wrote to the image");
    let o = run(ebsim("mkfs.xfs").arg("-q").arg(&img));
    assert!(o.status.success());
    let before = sparse_hash(&img);
    let o = run(ebsim("mkfs.xfs").arg(&img));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("appears to contain an existing filesystem (xfs)"));
    assert_eq!(sparse_hash(&img), before);
}

// ---------------------------------------------------------------- xfs_info

#[test]
fn xfs_info_matches_real_tool() {
    if !require_tools(&["xfs_info", "xfs_db", "mkfs.xfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    sparse_file(&d.join("fs.img"), 200 * G);
    assert!(
        run(real("mkfs.xfs")
            .args(["-q", "-L", "lbl", "fs.img"])
            .current_dir(d))
        .status
        .success()
    );
    sparse_file(&d.join("zero.img"), M);
    std::fs::write(d.join("tiny.img"), b"XFSB").expect("write");
    std::fs::create_dir(d.join("dir")).expect("mkdir");
    for args in [
        vec!["fs.img"],
        vec!["./fs.img"],
        vec!["zero.img"],
        vec!["tiny.img"],
        vec!["missing.img"],
        vec!["dir"],
        vec![],
        vec!["-V"],
        vec!["fs.img", "fs.img"],
        vec!["-z", "fs.img"],
    ] {
        let r = run(real("xfs_info").args(&args).current_dir(d));
        let e = run(ebsim("xfs_info").args(&args).current_dir(d));
        assert_eq!(e.status.code(), r.status.code(), "xfs_info {args:?}");
        assert_eq!(stdout(&e), stdout(&r), "xfs_info {args:?} stdout");
        assert_eq!(stderr(&e), stderr(&r), "xfs_info {args:?} stderr");
    }
}

// ---------------------------------------------------------------- growfs

/// A deterministic pseudo-random byte stream (xorshift).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Fills a mounted filesystem with files in several directories (so
/// several AGs get used) and deletes every other one (fragmented free
/// space).
fn populate(root: &Path) {
    for (di, d) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        let dir = root.join(d);
        std::fs::create_dir(&dir).expect("mkdir");
        for i in 1..=40u64 {
            let seed = (di as u64) << 8 | i;
            std::fs::write(
                dir.join(format!("f{i}")),
                pattern(seed, (i * 9973) as usize),
            )
            .expect("write");
        }
        for i in (1..=40).step_by(2) {
            std::fs::remove_file(dir.join(format!("f{i}"))).expect("rm");
        }
    }
    std::fs::write(root.join("big"), pattern(7, 16 * M as usize)).expect("write big");
}

/// The xfs_db prints of every AG's headers and free-space roots, with the
/// fields that legitimately differ between a kernel grow and an offline one
/// removed: CRCs and LSNs (the kernel logs its changes), the quota inode
/// fields (a kernel mount writes NULLFSINO where mkfs wrote 0), and the
/// summary counters of secondary superblocks (the kernel copies stale
/// in-core values; repair ignores them).
/// `primary_quota`: compare the primary superblock's quota inode fields
/// too. A kernel mount turns mkfs.xfs's 0 there into "null" when it
/// unmounts, whatever the grow did; ebsim writes null into every
/// superblock a grow writes, so they are compared where ebsim wrote the
/// primary.
fn grow_prints(img: &Path, agcount: u32, primary_quota: bool) -> Vec<String> {
    let mut out = Vec::new();
    for ag in 0..agcount {
        let sb = xfs_db(img, &[&format!("sb {ag}"), "print"]);
        let hdrs = xfs_db(
            img,
            &[
                &format!("agf {ag}"),
                "print",
                &format!("agi {ag}"),
                "print",
                &format!("agfl {ag}"),
                "print",
                &format!("agf {ag}"),
                "addr bnoroot",
                "print",
                &format!("agf {ag}"),
                "addr cntroot",
                "print",
            ],
        );
        for (what, text) in [("sb", sb), ("hdrs", hdrs)] {
            for line in text.lines() {
                let field = line.split(" = ").next().unwrap_or("");
                let always = ["crc", "lsn"];
                let secondary = ["icount", "ifree", "fdblocks"];
                let quota = ["uquotino", "gquotino", "pquotino"];
                if always.contains(&field)
                    || (what == "sb" && ag > 0 && secondary.contains(&field))
                    || (what == "sb" && ag == 0 && !primary_quota && quota.contains(&field))
                {
                    continue;
                }
                out.push(format!("AG {ag} {what}: {line}"));
            }
        }
    }
    out
}

struct GrowCase {
    base: u64,
    new: u64,
    used: bool,
    /// Extra mkfs.xfs options for the base image (other geometries and
    /// features the offline grow must handle like the kernel).
    mkopts: &'static [&'static str],
    /// `-D` this many blocks instead of `-d` (a shrink when below the
    /// current size; the image file keeps its length).
    data_blocks: Option<u64>,
}

/// Grows copies of one image with the kernel (loop mount + real
/// xfs_growfs) and with ebsim offline, and compares everything.
fn grow_differential(case: GrowCase) {
    if !require_tools(GROW_TOOLS) || !require_mount() {
        return;
    }
    let _lock = mount_lock();
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let base = d.join("base.img");
    sparse_file(&base, case.base);
    let uuid = format!("uuid={UUID}");
    let mut args = vec!["-q", "-m", uuid.as_str()];
    args.extend_from_slice(case.mkopts);
    args.push("base.img");
    let o = frozen(d, "mkfs.xfs", &args);
    assert!(o.status.success(), "mkfs: {}", stderr(&o));
    let mut files = Vec::new();
    if case.used {
        let m = LoopMount::mount(&base, false);
        populate(m.path());
        files = tree_hashes(m.path());
    }
    let (kimg, oimg) = (d.join("kernel.img"), d.join("offline.img"));
    for img in [&kimg, &oimg] {
        common::sparse_copy(&base, img);
        std::fs::OpenOptions::new()
            .write(true)
            .open(img)
            .expect("open")
            .set_len(case.new)
            .expect("grow file");
    }
    let size_args: Vec<String> = match case.data_blocks {
        Some(n) => vec!["-D".into(), n.to_string()],
        None => vec!["-d".into()],
    };
    let (k, kdev) = {
        let m = LoopMount::mount(&kimg, false);
        let out = run(real("xfs_growfs").args(&size_args).arg(m.path()));
        (out, m.dev.clone())
    };
    let o = run(ebsim("xfs_growfs").args(&size_args).arg(&oimg));
    let label = format!(
        "{} -> {} {:?} {:?}",
        case.base, case.new, case.mkopts, case.data_blocks
    );
    assert_eq!(
        o.status.code(),
        k.status.code(),
        "{label}: exit code; ebsim stderr: {}",
        stderr(&o)
    );
    assert_eq!(stderr(&o), stderr(&k), "{label}: stderr");
    // The first line names the device: /dev/loopN for the kernel, the image
    // for ebsim.
    let k_out = stdout(&k).replacen(&format!("meta-data={kdev:<22}"), "meta-data=X", 1);
    let o_out = stdout(&o).replacen(
        &format!("meta-data={:<22}", oimg.display()),
        "meta-data=X",
        1,
    );
    assert_eq!(o_out, k_out, "{label}: stdout");

    let (rc, rep) = repair(&oimg);
    assert_eq!(
        rc, 0,
        "{label}: xfs_repair -n after the offline grow:\n{rep}"
    );
    let (rc, rep) = repair(&kimg);
    assert_eq!(
        rc, 0,
        "{label}: xfs_repair -n after the kernel grow:\n{rep}"
    );
    assert!(
        allocated(&oimg) <= allocated(&kimg),
        "{label}: the offline grow allocated {} bytes, the kernel grow {}",
        allocated(&oimg),
        allocated(&kimg)
    );
    let agcount = Xfs::open(ImageFile::open(&kimg, Access::ReadOnly).expect("open"))
        .expect("xfs")
        .sb()
        .agcount;
    // ebsim wrote the primary when the size changed.
    let changed = stdout(&o).contains(" changed from ");
    let (kp, op) = (
        grow_prints(&kimg, agcount, changed),
        grow_prints(&oimg, agcount, changed),
    );
    let diff: Vec<_> = kp
        .iter()
        .zip(&op)
        .filter(|(a, b)| a != b)
        .take(20)
        .collect();
    assert!(
        diff.is_empty() && kp.len() == op.len(),
        "{label}: xfs_db differs (kernel, offline): {diff:#?}"
    );

    let predicted = Xfs::open(ImageFile::open(&oimg, Access::ReadOnly).expect("open"))
        .expect("xfs")
        .statfs(MountMode::ReadOnly)
        .expect("statfs");
    let km = LoopMount::mount(&kimg, true);
    let om = LoopMount::mount(&oimg, true);
    assert_eq!(om.statfs(), km.statfs(), "{label}: stat -f after mounting");
    assert_eq!(
        [
            predicted.f_blocks,
            predicted.f_bfree,
            predicted.f_bavail,
            predicted.f_files,
            predicted.f_ffree
        ],
        om.statfs(),
        "{label}: ebsim's statfs vs the kernel's"
    );
    if case.used {
        assert_eq!(
            tree_hashes(km.path()),
            files,
            "{label}: files after the kernel grow"
        );
        assert_eq!(
            tree_hashes(om.path()),
            files,
            "{label}: files after the offline grow"
        );
    }
    drop(om);
    // And read-write, where the kernel also takes its reservations.
    let rw = Xfs::open(ImageFile::open(&oimg, Access::ReadOnly).expect("open"))
        .expect("xfs")
        .statfs(MountMode::ReadWrite)
        .expect("statfs");
    let om = LoopMount::mount(&oimg, false);
    assert_eq!(
        [rw.f_blocks, rw.f_bfree, rw.f_bavail, rw.f_files, rw.f_ffree],
        om.statfs(),
        "{label}: ebsim's statfs vs the kernel's, read-write"
    );
}

#[test]
fn grow_differential_1g_to_2g() {
    grow_differential(GrowCase {
        base: G,
        new: 2 * G,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_1g_to_1g_plus_100m() {
    grow_differential(GrowCase {
        base: G,
        new: G + 100 * M,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_1g_plus_4k_to_2g_extends_last_ag() {
    grow_differential(GrowCase {
        base: G + 4 * K,
        new: 2 * G,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_63_block_tail_is_dropped() {
    grow_differential(GrowCase {
        base: G,
        new: G + 63 * 4 * K,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_64_block_last_ag() {
    grow_differential(GrowCase {
        base: G,
        new: G + 64 * 4 * K,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_used_1g_plus_4k_to_3g() {
    grow_differential(GrowCase {
        base: G + 4 * K,
        new: 3 * G,
        used: true,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_1t_to_16t_minus_4k() {
    grow_differential(GrowCase {
        base: T,
        new: 16 * T - 4 * K,
        used: false,
        mkopts: &[],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_used_rmapbt() {
    grow_differential(GrowCase {
        base: G + 4 * K,
        new: 3 * G,
        used: true,
        mkopts: &["-m", "rmapbt=1"],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_used_1k_blocks() {
    grow_differential(GrowCase {
        base: G + 4 * K,
        new: 3 * G,
        used: true,
        mkopts: &["-b", "size=1024"],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_used_4k_sectors_no_reflink_finobt() {
    grow_differential(GrowCase {
        base: G + 4 * K,
        new: 3 * G,
        used: true,
        mkopts: &["-s", "size=4096", "-m", "reflink=0,finobt=0"],
        data_blocks: None,
    });
}

#[test]
fn grow_differential_used_300m_to_10g() {
    grow_differential(GrowCase {
        base: 300 * M,
        new: 10 * G,
        used: true,
        mkopts: &[],
        data_blocks: None,
    });
}

/// The kernel's shrink (xfs_growfs -D below the current size, kernel 5.12
/// and later): the free tail of the last AG goes, on a fresh and a used
/// filesystem, 1 KiB blocks and rmapbt; and what it refuses: a shrink
/// that would remove whole AGs (EINVAL), and one taking more than one
/// allocation may (ENOSPC: a 131072-block AG gives up at most 130144).
#[test]
fn shrink_differential_last_ag() {
    for (base, blocks, used, mkopts) in [
        (2 * G, 450_000, true, &[][..]),
        (2 * G, 394_144, false, &[][..]),
        (2 * G, 394_143, false, &[][..]),
        (2 * G, 300_000, false, &[][..]),
        (2 * G, 1_900_000, true, &["-b", "size=1024"][..]),
        (2 * G, 500_000, true, &["-m", "rmapbt=1"][..]),
        (300 * M, 70_000, false, &[][..]),
    ] {
        grow_differential(GrowCase {
            base,
            new: base,
            used,
            mkopts,
            data_blocks: Some(blocks),
        });
    }
}

/// The messages of xfs_growfs that need a mounted filesystem for the real
/// tool: ebsim says the same on the image, and changes it only when the
/// kernel changes the mounted one.
#[test]
fn growfs_messages_match_kernel_grow() {
    if !require_tools(GROW_TOOLS) || !require_mount() {
        return;
    }
    let _lock = mount_lock();
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, G);
    assert!(run(real("mkfs.xfs").arg("-q").arg(&img)).status.success());
    for args in [
        vec!["-D", "262144"],
        vec!["-D", "300000"],
        vec!["-d", "-n"],
        vec!["-n"],
        vec!["-l"],
        vec!["-i"],
        vec!["-L", "20000"],
        vec!["-x"],
        vec!["-r"],
        vec!["-R", "10"],
        vec!["-e", "3"],
        vec!["-m", "25"],
        vec!["-m", "30"],
        vec!["-d"],
    ] {
        let (kimg, oimg) = (tmp.path().join("k.img"), tmp.path().join("o.img"));
        let _ = std::fs::remove_file(&kimg);
        let _ = std::fs::remove_file(&oimg);
        common::sparse_copy(&img, &kimg);
        common::sparse_copy(&img, &oimg);
        let (k, kdev) = {
            let m = LoopMount::mount(&kimg, false);
            (
                run(real("xfs_growfs").args(&args).arg(m.path())),
                m.dev.clone(),
            )
        };
        let before = sparse_hash(&oimg);
        let o = run(ebsim("xfs_growfs").args(&args).arg(&oimg));
        assert_eq!(
            o.status.code(),
            k.status.code(),
            "xfs_growfs {args:?}: {}",
            stderr(&o)
        );
        let kerr = stderr(&k).replace(&tmp.path().join("k.img").display().to_string(), "X");
        let mount_dir_line = |s: &str| {
            // "failed to access realtime device for <mount point>" names the
            // mount point; ebsim names the image.
            s.lines()
                .map(|l| match l.find(" for /") {
                    Some(i) if l.contains("realtime device") => format!("{} for X", &l[..i]),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            mount_dir_line(&stderr(&o)),
            mount_dir_line(&kerr),
            "xfs_growfs {args:?} stderr"
        );
        let k_out = stdout(&k).replacen(&format!("meta-data={kdev:<22}"), "meta-data=X", 1);
        let o_out = stdout(&o).replacen(
            &format!("meta-data={:<22}", oimg.display()),
            "meta-data=X",
            1,
        );
        assert_eq!(o_out, k_out, "xfs_growfs {args:?} stdout");
        let imax = |p: &Path| xfs_db(p, &["sb 0", "p imax_pct"]);
        assert_eq!(imax(&oimg), imax(&kimg), "xfs_growfs {args:?}: imax_pct");
        if imax(&oimg) == imax(&img) {
            assert_eq!(
                sparse_hash(&oimg),
                before,
                "xfs_growfs {args:?} changed the image"
            );
        }
    }
}

#[test]
fn growfs_cli_matches_real_tool_without_mount() {
    if !require_tools(&["xfs_growfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    sparse_file(&d.join("zero.img"), G);
    for args in [
        vec!["zero.img"],
        vec!["missing.img"],
        vec!["."],
        vec![],
        vec!["-V"],
        vec!["-z", "zero.img"],
        vec!["-D"],
        vec!["a", "b"],
    ] {
        let r = run(real("xfs_growfs").args(&args).current_dir(d));
        let e = run(ebsim("xfs_growfs").args(&args).current_dir(d));
        assert_eq!(e.status.code(), r.status.code(), "xfs_growfs {args:?}");
        assert_eq!(stdout(&e), stdout(&r), "xfs_growfs {args:?} stdout");
        assert_eq!(stderr(&e), stderr(&r), "xfs_growfs {args:?} stderr");
    }
}

#[test]
fn offline_grow_without_real_tools() {
    // The library path on its own: mkfs, grow twice, statfs, repair-free
    // checks of the result (the differential tests compare with the kernel).
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, G + 4 * K);
    assert!(run(ebsim("mkfs.xfs").arg("-q").arg(&img)).status.success());
    for new in [2 * G, 5 * G + 12345] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .expect("open")
            .set_len(new)
            .expect("len");
        let o = run(ebsim("xfs_growfs").arg(&img));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("data blocks changed from"));
    }
    let fs = Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect("xfs");
    assert_eq!(fs.sb().dblocks, (5 * G + 12345) / 4096);
    let st = fs.statfs(MountMode::ReadWrite).expect("statfs");
    assert_eq!(st.f_blocks, fs.sb().dblocks - u64::from(fs.sb().logblocks));
    assert!(fs.info().log_clean);
    assert!(
        allocated(&img) < 2 * M,
        "grow allocated {}",
        allocated(&img)
    );
}

// ---------------------------------------------------------------- statfs

#[test]
fn statfs_matches_kernel_on_fresh_images() {
    if !require_tools(&["mount", "losetup"]) || !require_mount() {
        return;
    }
    let _lock = mount_lock();
    let tmp = tempfile::tempdir().expect("tmp");
    for size in [G, 8 * G, 200 * G, T, 16 * T - 4 * K] {
        let img = tmp.path().join(format!("{size}.img"));
        sparse_file(&img, size);
        assert!(run(ebsim("mkfs.xfs").arg("-q").arg(&img)).status.success());
        let fs = Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect("xfs");
        for (mode, ro) in [(MountMode::ReadOnly, true), (MountMode::ReadWrite, false)] {
            let st = fs.statfs(mode).expect("statfs");
            let m = LoopMount::mount(&img, ro);
            assert_eq!(
                [st.f_blocks, st.f_bfree, st.f_bavail, st.f_files, st.f_ffree],
                m.statfs(),
                "statfs of a fresh {size}-byte filesystem mounted {mode:?}"
            );
        }
        std::fs::remove_file(&img).expect("rm");
    }
}

// ---------------------------------------------------------------- bad input

/// Makes a fresh 1G image with ebsim.
fn fresh(dir: &Path, name: &str) -> PathBuf {
    let img = dir.join(name);
    sparse_file(&img, G);
    let o = run(ebsim("mkfs.xfs")
        .args(["-q", "-m", &format!("uuid={UUID}")])
        .arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    img
}

fn patch(img: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open");
    f.write_all_at(bytes, off).expect("patch");
}

/// Recomputes the CRC32C of the sector at `off` with its CRC at `crc_off`.
fn fix_crc(img: &Path, off: u64, len: usize, crc_off: usize) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open");
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).expect("read");
    b[crc_off..crc_off + 4].fill(0);
    let crc = crc32c::crc32c(&b);
    f.write_all_at(&crc.to_le_bytes(), off + crc_off as u64)
        .expect("write");
}

/// ebsim xfs_growfs on a damaged image: exit 1, the expected words, and
/// not a byte changed.
fn refuses(img: &Path, grow_to: u64, expect: &str) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open")
        .set_len(grow_to)
        .expect("len");
    let before = sparse_hash(img);
    let o = run(ebsim("xfs_growfs").arg(img));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}: {}{}",
        img.display(),
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(expect),
        "{}: expected {expect:?} in {:?}",
        img.display(),
        stderr(&o)
    );
    assert_eq!(
        sparse_hash(img),
        before,
        "{}: the image changed",
        img.display()
    );
    assert!(!Path::new(&format!("{}.ebsim-undo", img.display())).exists());
}

#[test]
fn growfs_refuses_bad_input_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let ag = 65536 * 4096u64;

    let img = fresh(d, "magic.img");
    patch(&img, 0, b"XFSC");
    refuses(&img, 2 * G, "is not a mounted XFS filesystem");

    let img = fresh(d, "sbcrc.img");
    patch(&img, 0x90, &[0xff]);
    refuses(&img, 2 * G, "bad CRC in superblock of AG 0");

    let img = fresh(d, "agfcrc.img");
    patch(&img, ag + 512 + 0x34, &[0xff]);
    refuses(&img, 2 * G, "bad CRC in AGF of AG 1");

    let img = fresh(d, "agicrc.img");
    patch(&img, 2 * ag + 1024 + 0x1c, &[0xff]);
    refuses(&img, 2 * G, "bad CRC in AGI of AG 2");

    let img = fresh(d, "v4.img");
    patch(&img, 0x64, &[0xb4, 0xa4]);
    refuses(&img, 2 * G, "v4");

    let img = fresh(d, "incompat.img");
    patch(&img, 0xd8, &[0x80, 0, 0, 0x0b]);
    fix_crc(&img, 0, 512, 0xe0);
    refuses(&img, 2 * G, "unknown incompatible feature");

    // A log whose last record is not an unmount record (a transaction).
    let img = fresh(d, "dirty.img");
    let log = (2 * 65536 + 6) * 4096u64;
    patch(&img, log + 512 + 9, &[0x01]);
    refuses(&img, 2 * G, "the log is dirty");

    let img = fresh(d, "trunc.img");
    refuses(&img, G - 64 * M, "truncated");
}

#[test]
fn growfs_refuses_a_log_left_dirty_by_the_kernel() {
    if !require_tools(&["mkfs.xfs", "xfs_io", "losetup"]) || !require_mount() {
        return;
    }
    let _lock = mount_lock();
    let tmp = tempfile::tempdir().expect("tmp");
    let img = fresh(tmp.path(), "fs.img");
    {
        let m = LoopMount::mount(&img, false);
        std::fs::write(m.path().join("f"), b"data").expect("write");
        let o = run(real("xfs_io")
            .args(["-x", "-c", "shutdown -f"])
            .arg(m.path()));
        assert!(o.status.success(), "shutdown: {}", stderr(&o));
    }
    refuses(&img, 2 * G, "the log is dirty");
}

#[test]
fn bad_input_to_xfs_info_and_statfs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = fresh(tmp.path(), "fs.img");
    patch(&img, 0, b"ABCD");
    let o = run(ebsim("xfs_info").arg(&img));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unexpected SB magic number 0x41424344"));
    let err =
        Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect_err("bad magic");
    assert!(matches!(err, xfs::Error::NotXfs { magic: 0x4142_4344 }));
    let img = fresh(tmp.path(), "t.img");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(100)
        .expect("len");
    let err =
        Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect_err("truncated");
    assert!(matches!(err, xfs::Error::Truncated { .. }), "{err}");
}

// ---------------------------------------------------------------- fuzzing

/// A sparse in-memory device: 4 KiB blocks in a map, the rest zeros.
#[derive(Clone, Default)]
struct SparseMem {
    size: u64,
    blocks: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl BlockDevice for SparseMem {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ebsim::blockdev::Error> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(ebsim::blockdev::Error::OutOfRange {
                offset,
                len: buf.len() as u64,
                size: self.size,
            });
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (blk, within) = (at / 4096, (at % 4096) as usize);
            let n = (4096 - within).min(buf.len() - done);
            match self.blocks.get(&blk) {
                Some(b) => buf[done..done + n].copy_from_slice(&b[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn commit(
        &mut self,
        plan: &dyn ebsim::blockdev::WritePlan,
    ) -> Result<(), ebsim::blockdev::Error> {
        if let Some(len) = plan.new_len() {
            self.size = len;
        }
        let blocks = &mut self.blocks;
        plan.for_each_write(&mut |offset, bytes| {
            let mut done = 0usize;
            while done < bytes.len() {
                let at = offset + done as u64;
                let (blk, within) = (at / 4096, (at % 4096) as usize);
                let n = (4096 - within).min(bytes.len() - done);
                blocks.entry(blk).or_insert_with(|| vec![0; 4096])[within..within + n]
                    .copy_from_slice(&bytes[done..done + n]);
                done += n;
            }
            Ok(())
        })
    }
    fn data_ranges(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<std::ops::Range<u64>>, ebsim::blockdev::Error> {
        Ok(self
            .blocks
            .keys()
            .map(|b| b * 4096..(b + 1) * 4096)
            .filter(|r| r.start < range.end && r.end > range.start)
            .collect())
    }
    fn name(&self) -> String {
        "sparse-memory".into()
    }
}

fn fresh_mem() -> SparseMem {
    static FRESH: std::sync::OnceLock<SparseMem> = std::sync::OnceLock::new();
    FRESH.get_or_init(make_fresh_mem).clone()
}

fn make_fresh_mem() -> SparseMem {
    let mut dev = SparseMem {
        size: G + 4 * K,
        ..Default::default()
    };
    let opts = xfs::mkfs::MkfsOptions {
        uuid: [0x42; 16],
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
    let plan = xfs::mkfs::plan(&dev, &opts).expect("plan");
    xfs::mkfs::apply(&mut dev, &plan).expect("apply");
    dev.size = 3 * G;
    dev
}

/// Everything ebsim does with an image, on a damaged one: it may fail, it
/// must not panic.
fn exercise(dev: SparseMem) {
    let Ok(fs) = Xfs::open(dev) else { return };
    let _ = fs.info();
    let _ = fs.statfs(MountMode::ReadWrite);
    let _ = xfs::report::render(fs.sb(), "x");
    for newblocks in [fs.sb().dblocks + 1, fs.sb().dblocks + 100_000, 3 * G / 4096] {
        if let Ok(plan) = growfs::plan(
            &fs,
            &growfs::GrowRequest {
                newblocks,
                imaxpct: None,
            },
        ) {
            let mut dev = fs.dev().clone();
            let _ = growfs::apply(&mut dev, &plan);
            if let Ok(grown) = Xfs::open(dev) {
                let _ = grown.statfs(MountMode::ReadOnly);
            }
        }
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: if in_ci() { 1024 } else { 256 }, ..ProptestConfig::default() })]

        #[test]
        fn header_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4200)) {
            if let Ok(sb) = xfs::Superblock::from_bytes(&bytes, 0) {
                let _ = sb.validate(0);
                let _ = xfs::report::render(&sb, "x");
                let _ = xfs::superblock::Superblock::verify_crc(&bytes, 0);
            }
            let _ = xfs::agf::Agf::from_bytes(&bytes, 0);
            let _ = xfs::agi::Agi::from_bytes(&bytes, 0);
            let _ = xfs::agfl::Agfl::from_bytes(&bytes, 0);
            let _ = xfs::btree::parse_alloc_leaf(&bytes, xfs::Structure::Bnobt, 0, xfs::btree::XFS_ABTB_CRC_MAGIC, &[0; 16], 8);
        }

        /// Words of one AG header (AGF, AGI or AGFL) overwritten with
        /// boundary or random values, the CRC fixed so the values reach the
        /// verifiers: no panic anywhere, and whatever passes the verifiers
        /// and grows still passes them afterwards.
        #[test]
        fn ag_header_fields_never_panic(
            ag in 0u32..4,
            sector in 1usize..4,
            edits in proptest::collection::vec(
                (0usize..128, prop_oneof![any::<u32>(), 0u32..200, Just(u32::MAX), 65_500u32..65_540]),
                1..4,
            ),
        ) {
            let mut dev = fresh_mem();
            let agblocks = u64::from(Xfs::open(dev.clone()).expect("fresh").sb().agblocks);
            let (len, crc_off) = match sector {
                1 => (0xe0, 0xd8),
                2 => (0x158, 0x138),
                _ => (512, 0x20),
            };
            let block = dev
                .blocks
                .get_mut(&(u64::from(ag) * agblocks))
                .expect("the AG's header block");
            let s = &mut block[sector * 512..(sector + 1) * 512];
            for (word, v) in edits {
                let at = (word * 4) % len;
                if at != crc_off {
                    s[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            s[crc_off..crc_off + 4].fill(0);
            let crc = crc32c::crc32c(s);
            s[crc_off..crc_off + 4].copy_from_slice(&crc.to_le_bytes());
            let fs = Xfs::open(dev).expect("the superblock is intact");
            let head = fs.log_head().expect("the log is intact");
            let verdict = fs.verify_ags(&head);
            let _ = fs.statfs(MountMode::ReadWrite);
            match &verdict {
                Err(xfs::Error::Metadata(c)) => {
                    let _ = (c.to_string(), c.kernel_message(), c.mount_effect(fs.sb()));
                }
                Err(e) => prop_assert!(false, "not a metadata error: {e}"),
                Ok(()) => {
                    let req = growfs::GrowRequest { newblocks: 3 * G / 4096, imaxpct: None };
                    if let Ok(plan) = growfs::plan(&fs, &req) {
                        let mut grown = fs.dev().clone();
                        growfs::apply(&mut grown, &plan).expect("apply in memory");
                        let grown = Xfs::open(grown).expect("the grown image opens");
                        let head = grown.log_head().expect("the log is untouched");
                        let again = grown.verify_ags(&head);
                        prop_assert!(again.is_ok(), "grown image fails: {:?}", again.err().map(|e| e.to_string()));
                    }
                }
            }
        }

        #[test]
        fn damaged_images_never_panic(
            edits in proptest::collection::vec((0usize..64, 0usize..4096, any::<u8>()), 1..8),
            fix_crcs in any::<bool>(),
        ) {
            let mut dev = fresh_mem();
            let keys: Vec<u64> = dev.blocks.keys().copied().collect();
            for (k, off, v) in edits {
                let key = keys[k % keys.len()];
                if let Some(b) = dev.blocks.get_mut(&key) {
                    b[off] = v;
                }
            }
            if fix_crcs {
                // Make the damage pass the CRC checks, so the values reach
                // the code behind them.
                for b in dev.blocks.values_mut() {
                    for (sect, crc_off) in [(0usize, 0xe0usize), (512, 0xd8), (1024, 0x138), (1536, 0x20)] {
                        let magic = &b[sect..sect + 4];
                        if [b"XFSB", b"XAGF", b"XAGI", b"XAFL"].iter().any(|m| magic == *m) {
                            let mut s = b[sect..sect + 512].to_vec();
                            s[crc_off..crc_off + 4].fill(0);
                            let crc = crc32c::crc32c(&s);
                            b[sect + crc_off..sect + crc_off + 4].copy_from_slice(&crc.to_le_bytes());
                        }
                    }
                    if [b"AB3B", b"AB3C"].iter().any(|m| b[..4] == **m) {
                        b[0x34..0x38].fill(0);
                        let crc = crc32c::crc32c(b);
                        b[0x34..0x38].copy_from_slice(&crc.to_le_bytes());
                    }
                }
            }
            exercise(dev);
        }
    }
}

#[test]
fn growfs_refuses_an_image_in_use_by_a_loop_device() {
    if !require_tools(&["losetup", "mount"]) || !require_mount() {
        return;
    }
    let _lock = mount_lock();
    let tmp = tempfile::tempdir().expect("tmp");
    let img = fresh(tmp.path(), "fs.img");
    let m = LoopMount::mount(&img, false);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(2 * G)
        .expect("len");
    let before = sparse_hash(&img);
    let o = run(ebsim("xfs_growfs").arg(&img));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("is attached to {}", m.dev)),
        "{}",
        stderr(&o)
    );
    assert_eq!(sparse_hash(&img), before);
}

// ---------------------------------------------------------------- crash safety

/// Interrupts an offline grow after every possible number of writes (the
/// blockdev fault hook) and checks that the next open rolls the unfinished
/// commit back: the filesystem is the old one, xfs_repair finds nothing, and
/// the grow then completes.
#[test]
fn interrupted_grow_rolls_back() {
    let repair_ok = require_tools(&["xfs_repair"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let img = fresh(tmp.path(), "fs.img");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(G + 300 * M)
        .expect("len");
    let old = sparse_hash(&img);
    let mut completed = false;
    for n in 0..64 {
        let o = run(ebsim("xfs_growfs")
            .arg(&img)
            .env("EBSIM_FAULT_AFTER_WRITES", n.to_string()));
        if o.status.success() {
            completed = true;
            break;
        }
        assert!(stderr(&o).contains("injected fault"), "{}", stderr(&o));
        // Reopening recovers; the filesystem must be the old size.
        let fs = Xfs::open(ImageFile::open(&img, Access::ReadWrite).expect("open")).expect("xfs");
        assert_eq!(fs.sb().dblocks, 262144, "after a fault at write {n}");
        drop(fs);
        if repair_ok {
            let (rc, out) = repair(&img);
            assert_eq!(rc, 0, "xfs_repair -n after a fault at write {n}:\n{out}");
        }
        if n == 0 {
            assert_eq!(
                sparse_hash(&img),
                old,
                "a fault before any write changed the image"
            );
        }
    }
    assert!(completed, "the grow never completed");
    let fs = Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect("xfs");
    assert_eq!(fs.sb().dblocks, (G + 300 * M) / 4096);
    if repair_ok {
        assert_eq!(repair(&img).0, 0);
    }
}

/// The same for mkfs: an interrupted mkfs leaves the file as it was.
#[test]
fn interrupted_mkfs_rolls_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, G);
    for n in 0..32 {
        let o = run(ebsim("mkfs.xfs")
            .arg("-q")
            .arg(&img)
            .env("EBSIM_FAULT_AFTER_WRITES", n.to_string()));
        if o.status.success() {
            return;
        }
        drop(ImageFile::open(&img, Access::ReadWrite).expect("recover"));
        assert!(
            data_ranges(&img).is_empty(),
            "a fault at write {n} left data behind"
        );
    }
    panic!("mkfs never completed");
}
