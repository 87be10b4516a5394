//! Crash safety of the one write path (issue 9): every command that writes
//! an image is interrupted at every write (sampled evenly above 60), the
//! image is opened as a user would, and it must be byte for byte (and
//! extent for extent) what it was before or what a clean run makes, and
//! fsck-clean. Then the reproductions of the issue: an undo log is never
//! replayed over an image that changed since (edited, rebuilt, reached
//! through a symlink), a shortened file gets its cut bytes back, a 254-byte
//! image name works, and the e2fsck advice appears only when nothing will
//! undo a failed change.

mod common;
mod ec2_util;

use common::{
    SweepReport, copy_image, ebsim, fault_sweep, image_state, require_tools, run, stderr, stdout,
    undo_log,
};
use ebsim::blockdev::image::FAULT_ENV;
use ec2_util::Cloud;
use std::path::{Path, PathBuf};
use std::process::Command;

const UUID: &str = "11111111-2222-4333-8444-555555555555";
const HASH_SEED: &str = "66666666-7777-8888-9999-aaaaaaaaaaaa";
const FAKE_TIME: &str = "1700000000";
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;
const TOOLS: &[&str] = &[
    "mkfs.ext4",
    "e2fsck",
    "debugfs",
    "mkfs.xfs",
    "xfs_repair",
    "sgdisk",
    "sfdisk",
];

/// PATH with the sbin directories.
fn path_env() -> std::ffi::OsString {
    let mut p = std::env::var_os("PATH").unwrap_or_default();
    p.push(":/usr/sbin:/sbin:/usr/bin:/bin");
    p
}

/// A real tool by its bare name.
fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.env("PATH", path_env());
    c
}

fn ok(c: &mut Command) -> String {
    let o = run(c);
    assert!(
        o.status.success(),
        "{c:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).expect("create");
    f.set_len(len).expect("set_len");
}

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("set_len");
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
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

fn write_at(path: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .write_all_at(bytes, off)
        .expect("write");
}

fn e2fsck_clean(img: &Path) {
    ok(tool("e2fsck").arg("-fn").arg(img));
}

fn xfs_clean(img: &Path) {
    ok(tool("xfs_repair").arg("-n").arg(img));
}

fn gpt_clean(img: &Path) {
    let out = ok(tool("sgdisk").arg("-v").arg(img));
    assert!(out.contains("No problems found"), "{out}");
}

fn mbr_clean(img: &Path) {
    let out = ok(tool("sfdisk").arg("--verify").arg(img));
    assert!(out.contains("No errors detected"), "{out}");
}

/// An ext4 made by the real mkfs.ext4 holding a few files of noise.
fn populated_ext4(path: &Path, len: u64) {
    populated_ext4_with(path, len, &[]);
}

/// [`populated_ext4`] made with extra mke2fs options (`-t ext3`...).
fn populated_ext4_with(path: &Path, len: u64, mkfs_opts: &[&str]) {
    sparse(path, len);
    ok(tool("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-U", UUID, "-E"])
        .arg(format!("hash_seed={HASH_SEED}"))
        .args(mkfs_opts)
        .arg(path));
    debugfs_noise_files(
        path,
        &path.with_extension("files"),
        &[3 * M as usize, 70_000, 5],
        7,
    );
}

/// Writes noise files of `sizes` bytes (noise seeds `seed`, `seed + 1`,
/// ...) into the ext4 image `path` with the real debugfs, each twice: as
/// `/fN` and as `/sub/gN`. The files are staged in `dir`.
fn debugfs_noise_files(path: &Path, dir: &Path, sizes: &[usize], seed: u64) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut script = String::from("mkdir sub\n");
    for (i, n) in sizes.iter().enumerate() {
        let f = dir.join(format!("f{i}"));
        std::fs::write(&f, noise(i as u64 + seed, *n)).expect("write");
        script.push_str(&format!("write {} f{i}\n", f.display()));
        script.push_str(&format!("write {} sub/g{i}\n", f.display()));
    }
    let s = dir.join("script");
    std::fs::write(&s, script).expect("script");
    ok(tool("debugfs")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .arg("-w")
        .arg("-f")
        .arg(&s)
        .arg(path));
}

/// An XFS made by the real mkfs.xfs with a prototype file of noise files.
fn populated_xfs(path: &Path, len: u64) {
    sparse(path, len);
    let dir = path.with_extension("files");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (i, n) in [3 * M as usize, 70_000].iter().enumerate() {
        std::fs::write(dir.join(format!("f{i}")), noise(i as u64 + 11, *n)).expect("write");
    }
    let proto = format!(
        "/dev/null\n0 0\nd--755 0 0\nbig ---644 0 0 {d}/f0\nsmall ---644 0 0 {d}/f1\n\
         sub d--755 0 0\ninner ---600 0 0 {d}/f1\n$\n$\n",
        d = dir.display()
    );
    let p = dir.join("proto");
    std::fs::write(&p, proto).expect("proto");
    ok(tool("mkfs.xfs")
        .args(["-q", "-f", "-m"])
        .arg(format!("uuid={UUID}"))
        .arg("-p")
        .arg(&p)
        .arg(path));
}

fn mkfs_ext4_cmd(img: &Path) -> Command {
    mke2fs_cmd("mkfs.ext4", img)
}

/// `ebsim APPLET` (mkfs.ext4, mkfs.ext3, ...) with fixed UUID, seed, time.
fn mke2fs_cmd(applet: &str, img: &Path) -> Command {
    let mut c = ebsim(applet);
    c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-U", UUID, "-E"])
        .arg(format!("hash_seed={HASH_SEED}"))
        .arg(img);
    c
}

fn mkfs_xfs_cmd(img: &Path) -> Command {
    let mut c = ebsim("mkfs.xfs");
    c.env("SOURCE_DATE_EPOCH", FAKE_TIME)
        .args(["-q", "-f", "-m"])
        .arg(format!("uuid={UUID}"))
        .arg(img);
    c
}

fn report(name: &str, r: &SweepReport) {
    eprintln!(
        "{name}: {} write steps, {} fault points, {} rolled back, {} finished",
        r.writes,
        r.points.len(),
        r.rolled_back,
        r.completed
    );
    assert_eq!(r.rolled_back + r.completed, r.points.len());
}

// ------------------------------------------------------------------------
// Fault-point sweeps

/// Every sweep's start: the tools, a scratch directory and the path of
/// its template image (not made yet); None when a tool is missing (outside
/// CI, where `require_tools` fails instead).
fn scratch() -> Option<(tempfile::TempDir, PathBuf)> {
    if !require_tools(TOOLS) {
        return None;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    Some((d, t))
}

/// [`fault_sweep`] and its report under one name.
fn sweep(
    name: &str,
    template: &Path,
    cmd: &dyn Fn(&Path) -> Command,
    check_before: Option<&dyn Fn(&Path)>,
    check_after: &dyn Fn(&Path),
) -> SweepReport {
    let r = fault_sweep(name, template, cmd, check_before, check_after);
    report(name, &r);
    r
}

#[test]
fn fault_points_cover_every_write_up_to_60_then_spread() {
    assert_eq!(common::fault_points(25), (0..25).collect::<Vec<_>>());
    assert_eq!(common::fault_points(60).len(), 60);
    let p = common::fault_points(1000);
    assert!(p.len() >= 60 && p.len() <= 64, "{}", p.len());
    assert_eq!((p[0], p[1], p[2]), (0, 1, 2));
    assert_eq!(p[p.len() - 1], 999);
    assert!(p.contains(&997) && p.contains(&998));
    assert!(p.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= 17));
}

#[test]
fn sweep_mkfs_ext4_over_nothing() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    sweep(
        "mkfs.ext4 over nothing",
        &t,
        &mkfs_ext4_cmd,
        None,
        &e2fsck_clean,
    );
}

#[test]
fn sweep_mkfs_ext4_over_ext4() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_ext4(&t, 256 * M);
    let r = sweep(
        "mkfs.ext4 over ext4",
        &t,
        &mkfs_ext4_cmd,
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
    // The discard of the old data happens after the commit point, so some
    // faults land after it and are finished by the next open.
    assert!(r.completed > 0, "no fault point after the commit point");
}

/// ext3 over ext4: a block-mapped journal with its indirect blocks.
#[test]
fn sweep_mkfs_ext3_over_ext4() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_ext4(&t, 256 * M);
    let mkfs_ext3 = |img: &Path| mke2fs_cmd("mkfs.ext3", img);
    sweep(
        "mkfs.ext3 over ext4",
        &t,
        &mkfs_ext3,
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
}

#[test]
fn sweep_mkfs_ext4_over_xfs() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_xfs(&t, 320 * M);
    let r = sweep(
        "mkfs.ext4 over xfs",
        &t,
        &mkfs_ext4_cmd,
        Some(&xfs_clean),
        &e2fsck_clean,
    );
    assert!(r.completed > 0, "no fault point after the commit point");
}

#[test]
fn sweep_mkfs_xfs_over_nothing() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    sparse(&t, 320 * M);
    sweep("mkfs.xfs over nothing", &t, &mkfs_xfs_cmd, None, &xfs_clean);
}

#[test]
fn sweep_mkfs_xfs_over_ext4() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_ext4(&t, 320 * M);
    sweep(
        "mkfs.xfs over ext4",
        &t,
        &mkfs_xfs_cmd,
        Some(&e2fsck_clean),
        &xfs_clean,
    );
}

#[test]
fn sweep_mkfs_xfs_over_xfs() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_xfs(&t, 320 * M);
    sweep(
        "mkfs.xfs over xfs",
        &t,
        &mkfs_xfs_cmd,
        Some(&xfs_clean),
        &xfs_clean,
    );
}

/// Other sizes over an XFS of the default ones: the new AG headers span
/// two blocks (4 KiB sectors in 8 KiB blocks), the clean log record fills
/// its one-block stripe unit, and the old XFS's headers, found by its own
/// geometry, are discarded after the commit point.
#[test]
fn sweep_mkfs_xfs_other_sizes_over_xfs() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_xfs(&t, 320 * M);
    let cmd = |img: &Path| {
        let mut c = ebsim("mkfs.xfs");
        c.env("SOURCE_DATE_EPOCH", FAKE_TIME)
            .args(["-q", "-f", "-m"])
            .arg(format!("uuid={UUID}"))
            .args(["-b", "size=8192", "-s", "size=4096", "-i", "size=1024"])
            .arg(img);
        c
    };
    let r = sweep(
        "mkfs.xfs -b size=8192 -s size=4096 -i size=1024 over xfs",
        &t,
        &cmd,
        Some(&xfs_clean),
        &xfs_clean,
    );
    assert!(r.completed > 0, "no fault point after the commit point");
}

fn resize2fs_cmd(size: &'static str) -> impl Fn(&Path) -> Command {
    move |img| {
        let mut c = ebsim("resize2fs");
        c.env("E2FSPROGS_FAKE_TIME", "1700000500")
            .arg(img)
            .arg(size);
        c
    }
}

#[test]
fn sweep_resize2fs_growing_the_file() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_ext4(&t, 128 * M);
    // The file is shorter than the new size: resize2fs extends it.
    sweep(
        "resize2fs growing the file",
        &t,
        &resize2fs_cmd("512M"),
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
}

/// A grow without group checksums (ext3): every new group's block and
/// inode bitmaps are written, none is flagged uninitialized.
#[test]
fn sweep_resize2fs_ext3() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_ext4_with(&t, 128 * M, &["-t", "ext3"]);
    sweep(
        "resize2fs of an ext3",
        &t,
        &resize2fs_cmd("1G"),
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
}

/// A 64 MiB ext4 of 1 KiB blocks made by the real mkfs.ext4, its reserved
/// GDT blocks sized for 256 MiB (so growing to a few GiB overruns them).
/// Small blocks keep the image small: every fault point copies and reads
/// its data.
fn small_ext4_with_reserve(t: &Path) {
    sparse(t, 64 * M);
    ok(tool("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-b", "1024", "-U", UUID, "-E"])
        .arg(format!("hash_seed={HASH_SEED},resize=262144"))
        .arg(t));
}

/// The online resize past the reserved GDT blocks (an instance's
/// resize2fs on a mounted volume): the conversion to meta_bg. A 64 MiB
/// ext4 of 1 KiB blocks (8 MiB groups, 16 descriptors a block) with room
/// for 256 MiB (2 descriptor blocks, 1 reserved) in a 640 MiB image grows
/// to 640 MiB: 5 descriptor blocks, so the classic table takes the
/// reserved block, `resize_inode` goes, and groups from 32 on are in meta
/// groups. (Small blocks keep the image small: every fault point copies
/// and reads its data.)
#[test]
fn sweep_online_grow_converting_to_meta_bg() {
    let Some((d, t)) = scratch() else {
        return;
    };
    small_ext4_with_reserve(&t);
    set_len(&t, 640 * M);
    let grow = |img: &Path| {
        let mut c = ebsim("debug-fs");
        c.env("E2FSPROGS_FAKE_TIME", "1700000500")
            .arg(img)
            .arg("grow-online");
        c
    };
    // A clean run converts.
    let probe = d.path().join("probe.img");
    copy_image(&t, &probe);
    ok(&mut grow(&probe));
    let head = ok(tool("dumpe2fs").arg("-h").arg(&probe));
    assert!(
        head.contains(" meta_bg") && head.contains("First meta block group:   2\n"),
        "{head}"
    );
    std::fs::remove_file(&probe).expect("rm");
    sweep(
        "online grow converting to meta_bg",
        &t,
        &grow,
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
}

/// The offline grow past the reserved GDT blocks (resize2fs's
/// relocation): a 64 MiB ext4 of 1 KiB blocks with room for 256 MiB (2
/// descriptor blocks, 1 reserved) and files written by debugfs grows to
/// 5 GiB: 40 descriptor blocks, so the bitmaps and group 0's inode table
/// after the reserve move, and the directories and files they land on
/// with them.
#[test]
fn sweep_resize2fs_relocating_past_the_reserve() {
    let Some((d, t)) = scratch() else {
        return;
    };
    small_ext4_with_reserve(&t);
    debugfs_noise_files(
        &t,
        &d.path().join("files"),
        &[300_000, 70_000, 5, 2_000_000],
        11,
    );
    set_len(&t, 5120 * M);
    // A clean run relocates: the classic table grows in place.
    let probe = d.path().join("probe.img");
    copy_image(&t, &probe);
    ok(&mut resize2fs_cmd("5G")(&probe));
    let dump = ok(tool("dumpe2fs").arg(&probe));
    assert!(
        dump.contains("Primary superblock at 1, Group descriptors at 2-41\n")
            && !dump.contains("Inode table at 20-531")
            && !dump.contains("Reserved GDT blocks at")
            && !dump.contains(" meta_bg"),
        "{dump}"
    );
    e2fsck_clean(&probe);
    std::fs::remove_file(&probe).expect("rm");
    let r = sweep(
        "resize2fs relocating past the reserve",
        &t,
        &resize2fs_cmd("5G"),
        Some(&e2fsck_clean),
        &e2fsck_clean,
    );
    assert!(r.writes > 10, "{} write steps", r.writes);
}

#[test]
fn sweep_resize2fs_shortening_the_file() {
    let Some((d, t)) = scratch() else {
        return;
    };
    // A 64 MiB filesystem at the start of a 256 MiB file with data past
    // 128 MiB: growing it to 128M cuts the file there, and every
    // interrupted run must give those bytes back.
    sparse(&t, 256 * M);
    ok(tool("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-U", UUID])
        .arg(&t)
        .arg("64M"));
    write_at(&t, 150 * M, &noise(1, 2 * M as usize));
    write_at(&t, 256 * M - 4096 - 77, &noise(2, 4096 + 77));
    let tail = |p: &Path| {
        let b = std::fs::read(p).expect("read");
        common::sha256_hex(&b[(128 * M) as usize..])
    };
    let cut = tail(&t);
    let r = sweep(
        "resize2fs shortening the file",
        &t,
        &resize2fs_cmd("128M"),
        Some(&e2fsck_clean),
        &|p: &Path| {
            assert_eq!(std::fs::metadata(p).expect("stat").len(), 128 * M);
            e2fsck_clean(p);
        },
    );
    // The sweep compared whole images; say it about the cut bytes too.
    let last = r.points.last().copied().unwrap_or(0);
    let img = d.path().join("again.img");
    copy_image(&t, &img);
    let o = run(resize2fs_cmd("128M")(&img).env(FAULT_ENV, last.to_string()));
    assert!(!o.status.success());
    run(ebsim("xfs_info").arg(&img));
    assert_eq!(tail(&img), cut, "the cut-off bytes were not restored");
}

/// A shrink that moves data and renumbers inodes: a 128 MiB ext4 of
/// 1 KiB blocks (16 groups of 8 inodes, so debugfs's files fill the groups
/// in turn; twelve removed again leave room early on) shrinks to 48 MiB:
/// the journal and the files' blocks move, the inodes past the sixth
/// group are renumbered and the directories naming them rewritten, and
/// the file is cut.
#[test]
fn sweep_resize2fs_shrinking() {
    let Some((d, t)) = scratch() else {
        return;
    };
    sparse(&t, 128 * M);
    ok(tool("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-b", "1024", "-N", "64", "-U", UUID])
        .arg(&t));
    let mut sizes = vec![5usize; 20];
    sizes[0] = 300_000;
    sizes[17] = 70_000;
    debugfs_noise_files(&t, &d.path().join("files"), &sizes, 13);
    let script = d.path().join("rm.debugfs");
    let rm: String = (1..=12).map(|i| format!("rm /f{i}\n")).collect();
    std::fs::write(&script, rm).expect("script");
    ok(tool("debugfs")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-w", "-f"])
        .arg(&script)
        .arg(&t));
    // A clean run renumbers inodes (resize2fs -p shows pass 4).
    let probe = d.path().join("probe.img");
    copy_image(&t, &probe);
    let out = ok(ebsim("resize2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000500")
        .arg("-p")
        .arg(&probe)
        .arg("48M"));
    assert!(out.contains("Begin pass 4"), "{out}");
    std::fs::remove_file(&probe).expect("rm");
    let r = sweep(
        "resize2fs shrinking",
        &t,
        &resize2fs_cmd("48M"),
        Some(&e2fsck_clean),
        &|p: &Path| {
            assert_eq!(std::fs::metadata(p).expect("stat").len(), 48 * M);
            e2fsck_clean(p);
        },
    );
    assert!(r.writes > 10, "{} write steps", r.writes);
}

fn xfs_growfs_cmd(img: &Path) -> Command {
    let mut c = ebsim("xfs_growfs");
    c.arg(img);
    c
}

#[test]
fn sweep_xfs_growfs_full_last_ag() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_xfs(&t, 320 * M);
    set_len(&t, 700 * M);
    sweep(
        "xfs_growfs, full last AG",
        &t,
        &xfs_growfs_cmd,
        Some(&xfs_clean),
        &xfs_clean,
    );
}

#[test]
fn sweep_xfs_growfs_short_last_ag() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    sparse(&t, 400 * M);
    // 84483 blocks in 4 AGs of 21121: the last one is a block short.
    ok(tool("mkfs.xfs")
        .args(["-q", "-f", "-m"])
        .arg(format!("uuid={UUID}"))
        .arg("-d")
        .arg(format!("size={}", 84483 * 4096))
        .arg(&t));
    set_len(&t, 500 * M);
    sweep(
        "xfs_growfs, short last AG",
        &t,
        &xfs_growfs_cmd,
        Some(&xfs_clean),
        &xfs_clean,
    );
}

/// The kernel's shrink of the last AG's free tail (`xfs_growfs -D`
/// below the current size): its AGF, AGI, free-space leaves and every
/// superblock change.
#[test]
fn sweep_xfs_growfs_shrinking_the_last_ag() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    populated_xfs(&t, 320 * M);
    // 81920 blocks in 4 AGs of 20480: the last AG keeps 15000.
    sweep(
        "xfs_growfs shrinking the last AG",
        &t,
        &|img: &Path| {
            let mut c = ebsim("xfs_growfs");
            c.args(["-D", "76440"]).arg(img);
            c
        },
        Some(&xfs_clean),
        &|p: &Path| {
            xfs_clean(p);
            let o = run(tool("xfs_db")
                .args(["-r", "-c", "sb 0", "-c", "p dblocks"])
                .arg(p));
            let d = stdout(&o);
            assert!(
                d.contains("dblocks = 76440") || d.contains("dblocks = 81920"),
                "{d}"
            );
        },
    );
}

fn growpart_cmd(part: &'static str) -> impl Fn(&Path) -> Command {
    move |img| {
        let mut c = ebsim("growpart");
        c.arg(img).arg(part);
        c
    }
}

fn mkswap_cmd(img: &Path) -> Command {
    let mut c = ebsim("mkswap");
    c.args(["-q", "-U", UUID, "-L", "sw"]).arg(img);
    c
}

/// The real blkid reads a swap area with the UUID the sweep wrote.
fn swap_clean(img: &Path) {
    let out = ok(tool("blkid").args(["-p", "-o", "export"]).arg(img));
    assert!(
        out.lines().any(|l| l == "TYPE=swap") && out.contains(UUID),
        "{out}"
    );
}

#[test]
fn sweep_mkswap_over_ext4() {
    if !require_tools(TOOLS) || !require_tools(&["blkid"]) {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    populated_ext4(&t, 64 * M);
    let r = fault_sweep(
        "mkswap over ext4",
        &t,
        &mkswap_cmd,
        Some(&e2fsck_clean),
        &swap_clean,
    );
    report("mkswap over ext4", &r);
}

#[test]
fn sweep_growpart_gpt() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    ok(tool("sgdisk")
        .args(["-U", UUID, "-n", "1:2048:+100M", "-u"])
        .arg(format!("1:{HASH_SEED}"))
        .arg(&t));
    set_len(&t, 512 * M);
    sweep("growpart GPT", &t, &growpart_cmd("1"), None, &gpt_clean);
}

#[test]
fn sweep_sfdisk_delete_gpt() {
    let Some((_d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    ok(tool("sgdisk")
        .args(["-U", UUID, "-n", "1:2048:+100M", "-n", "2:0:+50M"])
        .arg(&t));
    let delete = |img: &Path| {
        let mut c = ebsim("sfdisk");
        c.arg("--delete").arg(img).arg("2");
        c
    };
    sweep("sfdisk --delete GPT", &t, &delete, None, &gpt_clean);
}

/// `ebsim sfdisk -q IMG` with `script` on its standard input (through
/// sh, as `fault_sweep` runs a command without one).
fn sfdisk_script(script: &Path) -> impl Fn(&Path) -> Command + '_ {
    move |img: &Path| {
        let mut c = Command::new("sh");
        c.args(["-c", "exec \"$0\" sfdisk -q \"$1\" < \"$2\""])
            .arg(common::ebsim_bin())
            .arg(img)
            .arg(script);
        c
    }
}

/// A new GPT from a script (fixed GUIDs, so a finished run is the clean
/// run's bytes) over a disk that has one.
#[test]
fn sweep_sfdisk_script_gpt() {
    let Some((d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    ok(tool("sgdisk")
        .args(["-U", UUID, "-n", "1:2048:+100M", "-n", "2:0:+50M"])
        .arg(&t));
    let script = d.path().join("script");
    std::fs::write(
        &script,
        "label: gpt\nlabel-id: 0F3A2C1D-5B6E-4F70-8192-A3B4C5D6E7F8\n\n\
         sweep.img1 : start=2048, size=307200, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=11111111-2222-4333-8444-555555555555\n\
         sweep.img2 : start=309248, size=204800, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=66666666-7777-4888-8999-AAAAAAAAAAAA\n",
    )
    .expect("script");
    let cmd = sfdisk_script(&script);
    sweep("sfdisk -q script GPT", &t, &cmd, None, &gpt_clean);
}

/// A new MBR table (with an extended partition and a logical one) from a
/// script over a disk that has one.
#[test]
fn sweep_sfdisk_script_mbr() {
    let Some((d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    let mut c = tool("sfdisk");
    c.arg("-q").arg(&t).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().expect("sfdisk");
    {
        use std::io::Write;
        let mut sin = child.stdin.take().expect("stdin");
        sin.write_all(b"label: dos\nlabel-id: 0x1234abcd\n\nstart=2048, size=100M, type=83\n")
            .expect("write");
    }
    assert!(child.wait().expect("wait").success());
    let script = d.path().join("script");
    std::fs::write(
        &script,
        "label: dos\nlabel-id: 0x5678ef01\n\n\
         sweep.img1 : start=2048, size=204800, type=83\n\
         sweep.img2 : start=206848, size=307200, type=5\n\
         sweep.img5 : start=208896, size=102400, type=82\n",
    )
    .expect("script");
    let cmd = sfdisk_script(&script);
    sweep("sfdisk -q script MBR", &t, &cmd, None, &mbr_clean);
}

#[test]
fn sweep_growpart_mbr_with_logicals() {
    let Some((d, t)) = scratch() else {
        return;
    };
    sparse(&t, 256 * M);
    let script = "label: dos\nlabel-id: 0x01020304\n\nx1 : start=2048, size=104800, type=83\n\
                  x2 : start=106848, size=209000, type=5\nx5 : start=108896, size=50000, type=83\n\
                  x6 : start=161296, size=50000, type=83\n";
    let s = d.path().join("script");
    std::fs::write(&s, script).expect("script");
    ok(Command::new("sh").arg("-c").arg(format!(
        "PATH=$PATH:/sbin:/usr/sbin sfdisk -q '{}' < '{}'",
        t.display(),
        s.display()
    )));
    set_len(&t, 512 * M);
    sweep(
        "growpart MBR with logicals",
        &t,
        &growpart_cmd("2"),
        Some(&mbr_clean),
        &mbr_clean,
    );
}

/// Catalog image `key`, and the first sector and the length in sectors of
/// its EFI system partition.
fn esp_of(key: &str) -> (&'static ebsim::ec2::catalog::CatalogImage, u64, u64) {
    use ebsim::ec2::catalog::{self, FsKind};
    let c = catalog::by_key(key).expect("catalog key");
    let p = c
        .layout
        .partitions
        .iter()
        .find(|p| p.fs.is_some_and(|f| f.kind == FsKind::Vfat))
        .expect("an EFI system partition");
    let end = p.end_lba.expect("a fixed end");
    (c, p.start_lba, end - p.start_lba + 1)
}

/// Copies the partition at `start` (`sectors` long) out of `img` into a
/// sparse file beside it (`.esp`), for fsck.vfat and mtools.
fn extract_esp(img: &Path, start: u64, sectors: u64) -> std::path::PathBuf {
    let esp = img.with_extension("esp");
    ok(Command::new("dd")
        .arg(format!("if={}", img.display()))
        .arg(format!("of={}", esp.display()))
        .args(["bs=512", "conv=sparse", "status=none"])
        .arg(format!("skip={start}"))
        .arg(format!("count={sectors}")));
    esp
}

/// The EFI system partition's write while catalog image `key` is built
/// (`ec2::catalog::make_fs`, one commit through the partition's slice):
/// the template is the built image (cut after the partition) with the
/// partition punched back to a hole; every cut-off write leaves it so or as the full build made it
/// (a clean run must equal the build byte for byte), and the partition
/// a clean run writes passes the real `fsck.vfat -n`.
fn sweep_esp_of(key: &str) {
    if !require_tools(&["fsck.vfat", "fallocate", "dd"]) {
        return;
    }
    use ebsim::ec2::catalog;
    let (c, start, sectors) = esp_of(key);
    // Not under /dev/shm: tools read a `/dev/...` argument as the guest's.
    let d = tempfile::tempdir().expect("tempdir");
    let built = d.path().join("built.img");
    catalog::default_builder()
        .build(c, &built)
        .expect("build the catalog image");
    // Only the bytes up to the partition's end matter to its write (the
    // sweep hashes every state, holes included): the rest is cut off.
    set_len(&built, ((start + sectors) * 512).div_ceil(M) * M);
    let t = d.path().join("t.img");
    copy_image(&built, &t);
    ok(Command::new("fallocate")
        .args(["-p", "-o", &(start * 512).to_string()])
        .args(["-l", &(sectors * 512).to_string()])
        .arg(&t));
    assert_ne!(
        image_state(&t),
        image_state(&built),
        "{key}: nothing punched"
    );
    let want = image_state(&built);
    let esp_clean = |img: &Path| {
        assert!(
            image_state(img) == want,
            "{key}: the clean run differs from the catalog build"
        );
        let esp = extract_esp(img, start, sectors);
        let o = run(Command::new("fsck.vfat").arg("-n").arg(&esp));
        assert!(
            o.status.success(),
            "{key}: fsck.vfat -n: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let _ = std::fs::remove_file(&esp);
    };
    let cmd = |img: &Path| {
        let mut c = ebsim("debug-fs");
        c.arg(img).args(["build-esp", key]);
        c
    };
    let name = format!("the EFI system partition of {key}");
    sweep(&name, &t, &cmd, None, &esp_clean);
}

/// Files written into a catalog image's EFI system partition through
/// the FAT file layer (`fs/vfat_files.rs`, the layer that serves
/// /boot/efi in the guest): a directory made, a file of 70000 bytes put,
/// a file removed, a directory moved out of its parent, a file renamed
/// across directories, all committed as one batch. Interrupted at every
/// write step, the next open leaves the partition as it was or as the
/// clean run leaves it, and `fsck.vfat -n` passes.
fn sweep_esp_writes_of(key: &str, remove: &str) {
    if !require_tools(&["fsck.vfat", "dd"]) {
        return;
    }
    use ebsim::ec2::catalog;
    let (c, start, sectors) = esp_of(key);
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    catalog::default_builder()
        .build(c, &t)
        .expect("build the catalog image");
    set_len(&t, ((start + sectors) * 512).div_ceil(M) * M);
    let blob = d.path().join("blob");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&blob, &bytes).expect("write blob");
    let script = d.path().join("script");
    std::fs::write(
        &script,
        format!(
            "mkdir /EFI/test\nmkdir /EFI/test/sub\nput {} /EFI/test/blob.bin\nrm {remove}\n\
             mv /EFI/test/sub /moved\nmv /EFI/test/blob.bin /moved/Blob.Bin\n",
            blob.display()
        ),
    )
    .expect("write script");
    let esp_clean = |img: &Path| {
        let esp = extract_esp(img, start, sectors);
        let o = run(Command::new("fsck.vfat").arg("-n").arg(&esp));
        let _ = std::fs::remove_file(&esp);
        assert!(
            o.status.success() && !stdout(&o).contains("Dirty"),
            "{key}: fsck.vfat -n: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    let cmd = |img: &Path| {
        let mut c = ebsim("debug-fs");
        c.arg("--offset")
            .arg((start * 512).to_string())
            .arg(img)
            .arg("-")
            .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
            .stdin(std::fs::File::open(&script).expect("open script"));
        c
    };
    let name = format!("files written into the EFI system partition of {key}");
    let r = sweep(&name, &t, &cmd, Some(&esp_clean), &esp_clean);
    assert!(r.writes > 0 && r.rolled_back > 0, "{r:?}");
    // The clean run's files, as the real mtools read them.
    let img = d.path().join("clean.img");
    copy_image(&t, &img);
    ok(&mut cmd(&img));
    let esp = extract_esp(&img, start, sectors);
    if require_tools(&["mtype"]) {
        let o = run(Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&esp)
            .arg("::/moved/Blob.Bin"));
        assert!(o.stdout == bytes, "{key}: mtype ::/moved/Blob.Bin differs");
    }
}

#[test]
fn sweep_esp_writes_ubuntu() {
    sweep_esp_writes_of("ubuntu-22.04", "/EFI/BOOT/fbx64.efi");
}

#[test]
fn sweep_esp_writes_al2023() {
    sweep_esp_writes_of("al2023", "/EFI/amzn/grub.cfg");
}

#[test]
fn sweep_esp_of_ubuntu() {
    sweep_esp_of("ubuntu-22.04");
}

#[test]
fn sweep_esp_of_al2023() {
    sweep_esp_of("al2023");
}

/// growpart of a disk whose partition is mounted (`ebsim mount IMAGE@1`):
/// the table's writes go to the FUSE server (`WriteTable`), which commits
/// them. The server is interrupted at every write step of its commit (the
/// fault limit is in its environment) and then killed as if it had died
/// there; the next open leaves the disk as it was or as a clean run (mount,
/// growpart, unmount) leaves it, sgdisk -v and e2fsck clean.
#[test]
fn sweep_growpart_through_the_fuse_server() {
    if !require_tools(TOOLS) {
        return;
    }
    if !std::path::Path::new("/dev/fuse").exists() || !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but this sweep needs root and /dev/fuse"
        );
        eprintln!("skipping: needs root and /dev/fuse");
        return;
    }
    let _lock = common::mount_lock();
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    sparse(&t, 256 * M);
    ok(tool("sgdisk")
        .args(["-U", UUID, "-n", "1:2048:+100M", "-u"])
        .arg(format!("1:{HASH_SEED}"))
        .arg(&t));
    ok(tool("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .args(["-q", "-F", "-b", "4096", "-U", UUID, "-E"])
        .arg(format!("offset={M},hash_seed={HASH_SEED}"))
        .arg(&t)
        .arg("100M"));
    set_len(&t, 512 * M);
    let bin = common::ebsim_bin();
    // Serve partition 1, grow it, unmount; on a failure the server is
    // killed (the fault stands for its death) and its dead mount detached.
    let script = r#"
        IMG=$1 MNT=$2 BIN=$3
        "$BIN" mount -f "$IMG@1" "$MNT" </dev/null >/dev/null 2>&1 &
        SRV=$!
        until grep -qs " $MNT fuse.ebsim " /proc/mounts; do
            kill -0 $SRV 2>/dev/null || exit 3
            sleep 0.01
        done
        if "$BIN" growpart "$IMG" 1 >/dev/null 2>&1; then
            "$BIN" umount "$MNT" || exit 4
            wait $SRV
            exit $?
        fi
        kill -9 $SRV
        wait $SRV
        umount -l "$MNT"
        exit 1
    "#;
    let cmd = |img: &Path| {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(img)
            .arg(&mnt)
            .arg(&bin)
            .env("PATH", path_env());
        c
    };
    let ext4_clean = |img: &Path| {
        ok(tool("e2fsck")
            .arg("-fn")
            .arg(format!("{}?offset={M}", img.display())));
    };
    let check = |img: &Path| {
        gpt_clean(img);
        ext4_clean(img);
    };
    let r = sweep(
        "growpart through the FUSE server",
        &t,
        &cmd,
        // Before, the disk has grown past its backup table (as after
        // ModifyVolume): only the filesystem is checked.
        Some(&ext4_clean),
        &check,
    );
    assert!(r.writes > 0 && r.rolled_back > 0, "{r:?}");
}

// ------------------------------------------------------------------------
// The issue's reproductions

/// The files of a directory, hashed (length, allocated extents and their
/// bytes, so a 64 GiB sparse image hashes in an instant): to show nothing
/// was touched.
fn dir_state(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                common::data_digest(&p),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs ebsim resize2fs with a fault after `n` writes and returns its
/// stderr; it must fail and leave the log.
fn interrupted_resize(img: &Path, size: &str, n: u64) -> String {
    let o = run(ebsim("resize2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000500")
        .env(FAULT_ENV, n.to_string())
        .arg(img)
        .arg(size));
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(undo_log(img).exists(), "no log after the fault");
    stderr(&o)
}

/// Issue 9.1: a log is not replayed onto an image that changed since.
#[test]
fn a_log_is_refused_after_the_image_changed() {
    if !require_tools(TOOLS) {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let img = d.path().join("d.img");
    sparse(&img, G);
    ok(tool("mkfs.ext4").args(["-q", "-F"]).arg(&img));
    let err = interrupted_resize(&img, "64G", 30);
    // Issue 9.8: no e2fsck advice for a change the log undoes.
    assert!(!err.contains("e2fsck"), "{err}");
    assert!(err.contains("injected fault"), "{err}");
    assert!(err.contains("undoes it"), "{err}");
    // The user repairs and writes a file, not knowing about the log.
    run(tool("e2fsck").arg("-fy").arg(&img));
    let p = d.path().join("p");
    std::fs::write(&p, noise(5, 20 * M as usize)).expect("write");
    ok(tool("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!("write {} newfile", p.display()))
        .arg(&img));
    let before = dir_state(d.path());
    let o = run(ebsim("xfs_info").arg(&img));
    let msg = stderr(&o);
    assert!(!o.status.success());
    assert!(
        msg.contains("does not match")
            && msg.contains(&undo_log(&img).display().to_string())
            && msg.contains("d.img")
            && msg.contains("neither the old nor the new contents"),
        "{msg}"
    );
    assert_eq!(dir_state(d.path()), before, "the refusal changed something");
    // The new file is intact.
    e2fsck_clean(&img);
    let back = d.path().join("back");
    ok(tool("debugfs")
        .arg("-R")
        .arg(format!("dump newfile {}", back.display()))
        .arg(&img));
    assert_eq!(
        std::fs::read(&back).expect("read"),
        std::fs::read(&p).expect("read")
    );
    // Removing the log, as the message says, keeps the image as it is.
    std::fs::remove_file(undo_log(&img)).expect("rm log");
    let kept = image_state(&img);
    run(ebsim("xfs_info").arg(&img));
    assert_eq!(image_state(&img), kept);
    e2fsck_clean(&img);
}

/// Issue 9.1: an image rebuilt at the same path (a new file, or the same
/// file rewritten) is not cut back to the interrupted change's old length.
#[test]
fn a_log_is_refused_for_a_rebuilt_image() {
    if !require_tools(TOOLS) {
        return;
    }
    for in_place in [false, true] {
        let d = tempfile::tempdir().expect("tempdir");
        let img = d.path().join("d.img");
        sparse(&img, G);
        ok(tool("mkfs.ext4").args(["-q", "-F"]).arg(&img));
        interrupted_resize(&img, "2G", 3);
        // A new 2 GiB image at the same path.
        if in_place {
            set_len(&img, 0);
            set_len(&img, 2 * G);
        } else {
            std::fs::remove_file(&img).expect("rm");
            sparse(&img, 2 * G);
        }
        ok(tool("mkfs.xfs").args(["-q", "-f"]).arg(&img));
        let before = dir_state(d.path());
        let o = run(ebsim("xfs_info").arg(&img));
        assert!(!o.status.success(), "in place {in_place}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("does not match"),
            "in place {in_place}: {}",
            stderr(&o)
        );
        assert_eq!(dir_state(d.path()), before, "in place {in_place}");
        assert_eq!(std::fs::metadata(&img).expect("stat").len(), 2 * G);
        xfs_clean(&img);
    }
}

/// Issue 9.1: the log lives beside the real file, so a symlink and its
/// target find the same log.
#[test]
fn a_symlink_and_its_target_share_the_log() {
    if !require_tools(TOOLS) {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let real_dir = d.path().join("real");
    let link_dir = d.path().join("links");
    std::fs::create_dir_all(&real_dir).expect("mkdir");
    std::fs::create_dir_all(&link_dir).expect("mkdir");
    let img = real_dir.join("d.img");
    let link = link_dir.join("l.img");
    sparse(&img, G);
    ok(tool("mkfs.ext4").args(["-q", "-F"]).arg(&img));
    std::os::unix::fs::symlink(&img, &link).expect("symlink");
    let pristine = image_state(&img);
    for (via, open) in [(&link, &img), (&img, &link)] {
        interrupted_resize(via, "2G", 4);
        assert_eq!(undo_log(&img), undo_log(&link));
        assert_eq!(undo_log(&img).parent(), Some(real_dir.as_path()));
        assert_eq!(
            std::fs::read_dir(&link_dir).expect("ls").count(),
            1,
            "something was written beside the link"
        );
        run(ebsim("xfs_info").arg(open));
        assert!(!undo_log(&img).exists());
        assert_eq!(
            image_state(&img),
            pristine,
            "not rolled back via {}",
            open.display()
        );
    }
    // Changed after the crash, then opened through the link: refused,
    // nothing touched.
    interrupted_resize(&img, "2G", 4);
    let p = d.path().join("p");
    std::fs::write(&p, noise(3, M as usize)).expect("write");
    run(tool("e2fsck").arg("-fy").arg(&img));
    ok(tool("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!("write {} newfile", p.display()))
        .arg(&img));
    let (img_before, log_before) = (
        common::data_digest(&img),
        common::data_digest(&undo_log(&img)),
    );
    let o = run(ebsim("xfs_info").arg(&link));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    assert_eq!(common::data_digest(&img), img_before);
    assert_eq!(common::data_digest(&undo_log(&img)), log_before);
    std::fs::remove_file(undo_log(&img)).expect("rm log");
    std::fs::remove_file(&img).expect("rm");
    sparse(&img, G);
    ok(tool("mkfs.ext4").args(["-q", "-F"]).arg(&img));
    // A later open through the link finds nothing to replay: newer data
    // stays.
    interrupted_resize(&link, "2G", 4);
    run(ebsim("xfs_info").arg(&img));
    ok(ebsim("resize2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000500")
        .arg(&img)
        .arg("2G"));
    let grown = image_state(&img);
    run(ebsim("xfs_info").arg(&link));
    assert_eq!(image_state(&img), grown);
    e2fsck_clean(&img);
}

/// Issue 9.8: an image name of 254 (and 255) bytes works: the log's name
/// does not grow with it.
#[test]
fn long_image_names_work() {
    if !require_tools(TOOLS) {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    for len in [254usize, 255] {
        let name = format!("{}.img", "n".repeat(len - 4));
        let img = d.path().join(&name);
        sparse(&img, 256 * M);
        ok(&mut mkfs_ext4_cmd(&img));
        let before = image_state(&img);
        interrupted_resize(&img, "512M", 2);
        run(ebsim("xfs_info").arg(&img));
        assert!(!undo_log(&img).exists());
        assert_eq!(image_state(&img), before, "{len}: not rolled back");
        ok(ebsim("resize2fs").arg(&img).arg("512M"));
        e2fsck_clean(&img);
    }
}

/// A read-only open that may not write the image reports the pending log
/// instead of reading a half-changed image.
#[test]
fn a_read_only_open_reports_a_pending_log() {
    if !require_tools(&["chattr", "mkfs.ext4"]) {
        return;
    }
    // chattr needs a filesystem that has it (not tmpfs): beside the build.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let d = tempfile::tempdir_in(&base).expect("tempdir");
    let img = d.path().join("d.img");
    sparse(&img, 256 * M);
    ok(&mut mkfs_ext4_cmd(&img));
    interrupted_resize(&img, "512M", 2);
    let state = image_state(&img);
    let immutable = run(Command::new("chattr").arg("+i").arg(&img))
        .status
        .success();
    if !immutable {
        assert!(!common::in_ci(), "chattr +i does not work here");
        return;
    }
    struct Unfreeze<'a>(&'a Path);
    impl Drop for Unfreeze<'_> {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        }
    }
    let guard = Unfreeze(&img);
    let o = run(ebsim("xfs_info").arg(&img));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("an interrupted change is pending"),
        "{}",
        stderr(&o)
    );
    drop(guard);
    assert_eq!(image_state(&img), state);
    assert!(undo_log(&img).exists());
    run(ebsim("xfs_info").arg(&img));
    assert!(!undo_log(&img).exists());
}

/// mkfs over existing data saves only the metadata it overwrites: the undo
/// log of a mkfs.ext4 over 200 MB of data stays under 1% of it.
#[test]
fn mkfs_over_data_logs_only_metadata() {
    if !require_tools(TOOLS) {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let img = d.path().join("d.img");
    sparse(&img, G);
    let data = 200 * M;
    let chunk = noise(9, M as usize);
    for i in 0..data / M {
        write_at(&img, 64 * M + i * M, &chunk);
    }
    let before = image_state(&img);
    for (applet, cmd) in [
        ("mkfs.ext4", mkfs_ext4_cmd as fn(&Path) -> Command),
        ("mkfs.xfs", mkfs_xfs_cmd),
    ] {
        // Stopped before its first write: the complete undo log is there.
        let o = run(cmd(&img).env(FAULT_ENV, "0"));
        assert!(!o.status.success(), "{applet}");
        let log = std::fs::metadata(undo_log(&img)).expect("log").len();
        assert!(
            log * 100 < data,
            "{applet}: an undo log of {log} bytes for {data} bytes of data"
        );
        run(ebsim("xfs_info").arg(&img));
        assert_eq!(image_state(&img), before, "{applet}");
    }
    // And the finished mkfs discarded the data.
    ok(&mut mkfs_ext4_cmd(&img));
    e2fsck_clean(&img);
    assert!(common::allocated(&img) < 64 * M);
}

// ------------------------------------------------------------------------
// cloud-init's growth at boot

/// Every file under `dir`, by its path relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            let rel = p.strip_prefix(dir).expect("under the home");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// The byte offset and length of partition `n` as the real sfdisk reads
/// the table.
fn real_partition(img: &Path, n: usize) -> (u64, u64) {
    let j: serde_json::Value =
        serde_json::from_str(&ok(tool("sfdisk").arg("-J").arg(img))).expect("sfdisk -J");
    let p = &j["partitiontable"]["partitions"][n - 1];
    let (start, size) = (p["start"].as_u64(), p["size"].as_u64());
    (start.expect("start") * 512, size.expect("size") * 512)
}

/// An instance whose root volume was modified 4 GiB larger is rebooted
/// with a fault after K writes, for every K until the reboot runs clean
/// (sampled evenly above 60); then `ebsim exec I -- lsblk`, as a user
/// would. Its root must be byte for byte (and extent for extent) as before
/// the reboot or as a clean reboot leaves it, the real fsck clean on both,
/// the instance reachable, and the home holding the files a clean run
/// leaves (no undo log, no temporary file).
fn sweep_boot_growth(ami: &str, itype: &str, fs_clean: &dyn Fn(&Path)) {
    let t = Cloud::on_tmpfs();
    let id = t.instance(ami, itype);
    let d = t.ok(&["describe-instances", "--instance-ids", &id]);
    let vol = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .expect("root volume")
        .to_string();
    let size = t.describe_volume(&vol)["Size"].as_u64().expect("Size");
    t.ok(&[
        "modify-volume",
        "--volume-id",
        &vol,
        "--size",
        &(size + 4).to_string(),
    ]);
    t.advance("10m");
    // Each run on a fresh copy of the home: (cloud, reboot, log left,
    // root state, next command when `then_lsblk`).
    let run_at = |fault: Option<u64>, then_lsblk: bool| {
        let c = Cloud::on_tmpfs();
        ok(Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(t.path().join("."))
            .arg(c.path()));
        let mut r = c.cmd("ec2");
        r.args(["reboot-instances", "--instance-ids", &id]);
        if let Some(k) = fault {
            r.env(FAULT_ENV, k.to_string());
        }
        let reboot = run(&mut r);
        let img = c.image_of(&vol);
        let left_log = undo_log(&img).exists();
        // Opened as a user would (read-only: it finishes or undoes what
        // was cut short); its state then, before the guest runs anything
        // (a login writes to the root of its own).
        let open = run(ebsim("xfs_info").arg(&img));
        assert!(
            !stderr(&open).contains("undo log"),
            "opening after the reboot: {}",
            stderr(&open)
        );
        let state = image_state(&img);
        let next = then_lsblk.then(|| run(c.cmd("exec").args([&id, "--", "lsblk"])));
        (c, reboot, left_log, state, next)
    };
    let scratch = common::big_tempdir();
    let before = {
        // The template as every run starts from it (copied the same way).
        let c = Cloud::on_tmpfs();
        ok(Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(t.path().join("."))
            .arg(c.path()));
        let img = c.image_of(&vol);
        let (off, len) = real_partition(&img, 1);
        fs_clean(&part_copy(&img, off, len, scratch.path()));
        image_state(&img)
    };
    let (clean, o, left, after, next) = run_at(None, true);
    let next = next.expect("lsblk ran");
    assert!(o.status.success(), "clean reboot: {}", stderr(&o));
    assert!(!left, "a clean reboot left its undo log");
    assert!(next.status.success(), "lsblk: {}", stderr(&next));
    let img = clean.image_of(&vol);
    assert_ne!(before, after, "{ami}: the reboot grew nothing");
    let (off, len) = real_partition(&img, 1);
    assert!(len > (size + 3) << 30, "{ami}: root partition {len}");
    ok(tool("sgdisk").arg("-v").arg(&img));
    fs_clean(&part_copy(&img, off, len, scratch.path()));
    let clean_tree = tree(clean.path());
    let clean_lsblk = stdout(&next);
    drop(clean);
    // The reboot's write steps: the least fault limit that lets it run
    // clean (no log left, the root as a clean reboot leaves it).
    let clean_at = |k: u64| {
        let (_, _, left, now, _) = run_at(Some(k), false);
        !left && now == after
    };
    let writes = common::least_passing_limit(1 << 20, clean_at)
        .unwrap_or_else(|| panic!("{ami}: the reboot never ran clean"));
    let (mut rolled_back, mut completed) = (0, 0);
    for k in common::fault_points(writes) {
        let (c, o, _, now, next) = run_at(Some(k), true);
        let next = next.expect("lsblk ran");
        assert!(
            o.status.success(),
            "reboot, fault after {k}: {}",
            stderr(&o)
        );
        assert!(
            next.status.success(),
            "{ami}: fault after {k}: lsblk: {}",
            stderr(&next)
        );
        assert_eq!(tree(c.path()), clean_tree, "{ami}: fault after {k}: files");
        if now == before {
            rolled_back += 1;
        } else if now == after {
            completed += 1;
            assert_eq!(stdout(&next), clean_lsblk);
        } else {
            panic!(
                "{ami}: fault after {k} of {writes}: the root is neither as before nor as after a reboot"
            );
        }
    }
    eprintln!("{ami}: {writes} write steps, {rolled_back} rolled back, {completed} finished");
    assert!(rolled_back > 0, "{ami}: no fault point rolled back");
}

/// The partition's bytes copied out (sparse) beside, for the real fsck.
fn part_copy(img: &Path, off: u64, len: u64, dir: &Path) -> PathBuf {
    let out = dir.join("part.img");
    ok(Command::new("dd")
        .arg(format!("if={}", img.display()))
        .arg(format!("of={}", out.display()))
        .args([
            "bs=1M",
            "conv=sparse",
            "status=none",
            "iflag=skip_bytes,count_bytes",
        ])
        .arg(format!("skip={off}"))
        .arg(format!("count={len}")));
    out
}

#[test]
fn sweep_cloud_init_growth_at_reboot_ext4_ubuntu() {
    if !require_tools(TOOLS) {
        return;
    }
    sweep_boot_growth("ami-080e1f13689e07408", "t2.micro", &|p| {
        ok(tool("e2fsck").arg("-fn").arg(p));
    });
}

#[test]
fn sweep_cloud_init_growth_at_reboot_xfs_al2023() {
    if !require_tools(TOOLS) {
        return;
    }
    sweep_boot_growth("ami-051f8a213df8bc089", "t3.micro", &|p| {
        ok(tool("xfs_repair").arg("-n").arg(p));
    });
}
