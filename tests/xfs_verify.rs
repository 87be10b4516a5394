//! XFS grows only what the kernel would mount (issue 9, item 7): ebsim's
//! xfs_growfs checks every AGF, AGI and AGFL (and the inode btree roots a
//! mount reads) as the kernel's read verifiers do, refuses with the
//! kernel's wording, and writes nothing. Each damaged image is then given
//! to the kernel itself (a loop mount under `mount_lock`): it must refuse or
//! fail exactly as ebsim predicted, and log the line ebsim printed. Intact
//! images still grow and pass `xfs_repair -n`. Under CI the real tools,
//! loop devices and the kernel log must be available.

mod common;
mod ec2_util;
mod xfs_util;

use common::{ebsim, mount_lock, require_mount, require_tools, run, stderr, stdout};
use ebsim::blockdev::{ImageFile, image::Access};
use ebsim::fs::xfs::{self, Corruption, MountEffect, Problem, Structure, Xfs};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use xfs_util::{UUID, real, repair, sparse_file, sparse_hash};

const G: u64 = 1 << 30;
/// Bytes per AG of a default 1 GiB filesystem (65536 blocks of 4 KiB).
const AG: u64 = 65536 * 4096;
const TOOLS: &[&str] = &[
    "mkfs.xfs",
    "xfs_repair",
    "losetup",
    "mount",
    "umount",
    "dmesg",
    "fallocate",
];

/// A 1 GiB filesystem made by the real mkfs.xfs (`opts` added to `-m`).
fn real_mkfs(dir: &Path, name: &str, opts: &str) -> PathBuf {
    let img = dir.join(name);
    sparse_file(&img, G);
    let m = if opts.is_empty() {
        format!("uuid={UUID}")
    } else {
        format!("uuid={UUID},{opts}")
    };
    let o = run(real("mkfs.xfs").args(["-q", "-m", &m]).arg(&img));
    assert!(o.status.success(), "mkfs.xfs: {}", stderr(&o));
    img
}

fn copy(from: &Path, to: &Path) {
    common::sparse_copy(from, to);
}

/// The three AG headers, with what the tests need of their layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    Agf,
    Agi,
    Agfl,
}

impl Hdr {
    fn sector(self) -> u64 {
        match self {
            Hdr::Agf => 1,
            Hdr::Agi => 2,
            Hdr::Agfl => 3,
        }
    }
    fn crc_off(self) -> usize {
        match self {
            Hdr::Agf => 0xd8,
            Hdr::Agi => 0x138,
            Hdr::Agfl => 0x20,
        }
    }
    fn seqno_off(self) -> usize {
        match self {
            Hdr::Agfl => 4,
            _ => 8,
        }
    }
    /// A counter field to damage without fixing the CRC.
    fn counter_off(self) -> usize {
        match self {
            Hdr::Agf => 0x34,
            Hdr::Agi => 0x1c,
            Hdr::Agfl => 0x30,
        }
    }
    fn structure(self) -> Structure {
        match self {
            Hdr::Agf => Structure::Agf,
            Hdr::Agi => Structure::Agi,
            Hdr::Agfl => Structure::Agfl,
        }
    }
    fn offset(self, ag: u32) -> u64 {
        u64::from(ag) * AG + self.sector() * 512
    }
}

/// Rewrites `bytes` at `at` inside a 512-byte sector at `sector`, then its
/// CRC32C at `crc_off` (so the damage reaches the checks behind the CRC).
fn patch_fixed(img: &Path, sector: u64, crc_off: usize, at: usize, bytes: &[u8]) {
    patch_block(img, sector, 512, crc_off, at, bytes);
}

/// The same for a block of `len` bytes.
fn patch_block(img: &Path, off: u64, len: usize, crc_off: usize, at: usize, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open image");
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).expect("read");
    b[at..at + bytes.len()].copy_from_slice(bytes);
    b[crc_off..crc_off + 4].fill(0);
    let crc = crc32c::crc32c(&b);
    b[crc_off..crc_off + 4].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&b, off).expect("write");
}

/// Flips a byte at `off` (the CRC no longer matches).
fn flip(img: &Path, off: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open image");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).expect("read");
    b[0] ^= 0x5a;
    f.write_all_at(&b, off).expect("write");
}

fn set_len(img: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open")
        .set_len(len)
        .expect("set_len");
}

/// The library's verdict on `img`: the first corruption, if any.
fn verdict(img: &Path) -> (xfs::Superblock, Option<Corruption>) {
    let fs = Xfs::open(ImageFile::open(img, Access::ReadOnly).expect("open")).expect("xfs");
    let head = fs.log_head().expect("clean log");
    let sb = fs.sb().clone();
    match fs.verify_ags(&head) {
        Ok(()) => (sb, None),
        Err(xfs::Error::Metadata(c)) => (sb, Some(*c)),
        Err(e) => panic!("{}: unexpected error {e}", img.display()),
    }
}

/// ebsim xfs_growfs on a damaged `img` (grown to 2 GiB): exit 1, nothing on
/// stdout, the kernel's report and ebsim's prediction on stderr, not a
/// byte changed, no undo log left.
fn ebsim_refuses(img: &Path, c: &Corruption, sb: &xfs::Superblock, args: &[&str]) {
    set_len(img, 2 * G);
    let before = sparse_hash(img);
    let o = run(ebsim("xfs_growfs").args(args).arg(img));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}: {err}", img.display());
    assert_eq!(stdout(&o), "", "{}: nothing on stdout", img.display());
    let name = img.display().to_string();
    let first = format!("xfs_growfs: {name}: {c}\n");
    assert!(
        err.starts_with(&first),
        "{name}: {err:?} should start {first:?}"
    );
    let second = match c.mount_effect(sb) {
        MountEffect::ReservationFails => "Error -117 reserving per-AG metadata reserve pool.",
        MountEffect::RootInodeUnreadable { .. } => "Failed to read root inode 0x80, error 117",
        MountEffect::FirstUseFails => "fail its first allocation in AG",
        MountEffect::VerifiersPass => "xfs_repair reports it",
    };
    assert!(err.contains(second), "{name}: {err:?} lacks {second:?}");
    assert!(
        err.ends_with("nothing was written, run xfs_repair\n"),
        "{err:?}"
    );
    assert_eq!(sparse_hash(img), before, "{name}: the image changed");
    assert!(!Path::new(&format!("{name}.ebsim-undo")).exists());
}

/// What the kernel did with an image.
#[derive(Debug)]
struct Kernel {
    /// mount's exit code.
    rc: i32,
    /// mount's stderr.
    mount_err: String,
    /// Whether the filesystem was mounted and used (see [`kernel_mount`]).
    used: bool,
    /// The kernel log lines of this attempt, offsets ("+0x7a/0x110")
    /// removed.
    log: Vec<String>,
}

/// Writes a unique marker into the kernel log; lines after it belong to
/// this attempt.
fn kmsg_marker() -> String {
    use std::io::Write;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let marker = format!("ebsim-xfs-verify-{}-{n}", std::process::id());
    let mut k = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .expect("the tests need to write to /dev/kmsg (root)");
    k.write_all(format!("{marker}\n").as_bytes())
        .expect("write /dev/kmsg");
    marker
}

fn kernel_log_after(marker: &str, dev: &str) -> Vec<String> {
    let o = run(&mut Command::new("dmesg"));
    assert!(o.status.success(), "dmesg: {}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains(marker))
        .expect("marker in the kernel log");
    let tag = format!("XFS ({}): ", dev.trim_start_matches("/dev/"));
    let offsets = |l: &str| {
        // "xfs_agf_read_verify+0x7a/0x110," -> "xfs_agf_read_verify,"
        let mut out = String::new();
        let mut rest = l;
        while let Some(i) = rest.find("+0x") {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    lines[start + 1..]
        .iter()
        .filter_map(|l| l.split_once(&tag).map(|(_, m)| offsets(m.trim_end())))
        .collect()
}

/// Loop-mounts `img` read-write (under `mount_lock`, which the caller
/// holds); when it mounts and `allocate`, allocates in every AG (900 MiB
/// of a 1 GiB filesystem, and directories, which go to each AG in turn,
/// with files), then unmounts. Every loop device and mount made is undone.
fn kernel_mount(img: &Path, allocate: bool) -> Kernel {
    let marker = kmsg_marker();
    let o = run(Command::new("losetup").args(["-f", "--show"]).arg(img));
    assert!(o.status.success(), "losetup: {}", stderr(&o));
    let dev = stdout(&o).trim().to_string();
    let dir = tempfile::tempdir().expect("mount dir");
    let m = run(Command::new("mount")
        .args(["-o", "nouuid"])
        .arg(&dev)
        .arg(dir.path()));
    let mut used = false;
    if m.status.success() {
        if allocate {
            // Failures are the point: the kernel log tells what happened.
            let _ = run(Command::new("fallocate")
                .args(["-l", "900M"])
                .arg(dir.path().join("f")));
            for i in 0..8 {
                let d = dir.path().join(format!("d{i}"));
                if std::fs::create_dir(&d).is_ok() {
                    let _ = std::fs::write(d.join("f"), b"x");
                }
            }
            used = true;
        }
        let u = run(Command::new("umount").arg(dir.path()));
        assert!(u.status.success(), "umount: {}", stderr(&u));
    }
    let d = run(Command::new("losetup").arg("-d").arg(&dev));
    assert!(d.status.success(), "losetup -d: {}", stderr(&d));
    Kernel {
        rc: m.status.code().unwrap_or(-1),
        mount_err: stderr(&m),
        used,
        log: kernel_log_after(&marker, &dev),
    }
}

/// The kernel's behaviour on `img` must be what ebsim predicted for `c`,
/// and its log must carry ebsim's report line.
fn kernel_agrees(img: &Path, c: &Corruption, sb: &xfs::Superblock) {
    let effect = c.mount_effect(sb);
    let k = kernel_mount(img, effect == MountEffect::FirstUseFails);
    let name = img.display();
    let has = |s: &str| k.log.iter().any(|l| l.contains(s));
    match effect {
        MountEffect::ReservationFails => {
            assert_eq!(k.rc, 32, "{name}: {k:?}");
            assert!(
                k.mount_err.contains("can't read superblock"),
                "{name}: {k:?}"
            );
            assert!(
                has("Error -117 reserving per-AG metadata reserve pool."),
                "{name}: {k:?}"
            );
        }
        MountEffect::RootInodeUnreadable { rootino } => {
            assert_eq!(k.rc, 32, "{name}: {k:?}");
            assert!(
                k.mount_err.contains("Structure needs cleaning"),
                "{name}: {k:?}"
            );
            assert!(
                has(&format!(
                    "Failed to read root inode {rootino:#x}, error 117"
                )),
                "{name}: {k:?}"
            );
        }
        MountEffect::FirstUseFails => {
            assert_eq!(k.rc, 0, "{name}: the kernel mounts it: {k:?}");
            assert!(k.used, "{name}: {k:?}");
            assert!(
                has("Uncorrected metadata errors detected; please run xfs_repair."),
                "{name}: {k:?}"
            );
        }
        MountEffect::VerifiersPass => {
            assert_eq!(k.rc, 0, "{name}: the kernel mounts it: {k:?}");
            assert!(!has("detected at"), "{name}: {k:?}");
        }
    }
    if let Some(line) = c.kernel_message() {
        assert!(has(&line), "{name}: the kernel log lacks {line:?}: {k:?}");
    }
}

/// A damaged image: ebsim refuses it with the expected problem, and the
/// kernel agrees.
fn refused_by_both(
    img: &Path,
    structure: Structure,
    ag: u32,
    expect: impl Fn(&Problem) -> bool,
) -> Corruption {
    let (sb, c) = verdict(img);
    let c = c.unwrap_or_else(|| panic!("{}: ebsim accepts it", img.display()));
    assert_eq!(
        (c.structure, c.agno),
        (structure, ag),
        "{}: {c}",
        img.display()
    );
    assert!(expect(&c.problem), "{}: unexpected {c}", img.display());
    ebsim_refuses(img, &c, &sb, &[]);
    kernel_agrees(img, &c, &sb);
    c
}

/// An image both ebsim and the kernel accept.
fn accepted_by_both(img: &Path) {
    let (_, c) = verdict(img);
    assert_eq!(c, None, "{}", img.display());
    let k = kernel_mount(img, false);
    assert_eq!(k.rc, 0, "{}: {k:?}", img.display());
    assert!(
        !k.log.iter().any(|l| l.contains("detected at")),
        "{}: {k:?}",
        img.display()
    );
}

/// For AGF, AGI and AGFL, in AG 0 and in the last AG: a broken CRC, a
/// wrong magic number and a wrong sequence number (the last two with the
/// CRC fixed, so they reach the checks behind it).
#[test]
fn broken_ag_headers_are_refused_as_the_kernel_refuses_them() {
    if !require_tools(TOOLS) || !require_mount() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let base = real_mkfs(tmp.path(), "base.img", "");
    let _lock = mount_lock();
    for hdr in [Hdr::Agf, Hdr::Agi, Hdr::Agfl] {
        for ag in [0u32, 3] {
            let off = hdr.offset(ag);
            let img = tmp.path().join(format!("{hdr:?}-{ag}-crc.img"));
            copy(&base, &img);
            flip(&img, off + hdr.counter_off() as u64);
            let c = refused_by_both(&img, hdr.structure(), ag, |p| {
                matches!(p, Problem::BadCrc { .. })
            });
            assert!(c.to_string().starts_with("Metadata CRC error detected at "));

            let img = tmp.path().join(format!("{hdr:?}-{ag}-magic.img"));
            copy(&base, &img);
            patch_fixed(&img, off, hdr.crc_off(), 0, &0x1234_5678u32.to_be_bytes());
            refused_by_both(&img, hdr.structure(), ag, |p| {
                *p == Problem::BadMagic {
                    found: 0x1234_5678,
                    expected: match hdr {
                        Hdr::Agf => 0x5841_4746,
                        Hdr::Agi => 0x5841_4749,
                        Hdr::Agfl => 0x5841_464c,
                    },
                }
            });

            let img = tmp.path().join(format!("{hdr:?}-{ag}-seqno.img"));
            copy(&base, &img);
            let wrong = (ag + 1) % 4;
            patch_fixed(
                &img,
                off,
                hdr.crc_off(),
                hdr.seqno_off(),
                &wrong.to_be_bytes(),
            );
            refused_by_both(&img, hdr.structure(), ag, |p| {
                *p == Problem::BadSeqno { found: wrong }
            });
        }
    }
}

/// A field of an AG 3 header, a value the kernel accepts there and one it
/// refuses, and ebsim's finding for the latter.
struct Bound {
    what: &'static str,
    hdr: Hdr,
    at: usize,
    ok: Vec<u8>,
    bad: Vec<u8>,
    problem: Problem,
}

impl Bound {
    fn new(
        what: &'static str,
        hdr: Hdr,
        at: usize,
        ok: Vec<u8>,
        bad: Vec<u8>,
        problem: Problem,
    ) -> Self {
        Bound {
            what,
            hdr,
            at,
            ok,
            bad,
            problem,
        }
    }
}

/// [`UUID`] as bytes.
const UUID_BYTES: [u8; 16] = [
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x43, 0x33, 0x84, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
];

/// The other checks of the verifiers, each at its boundary: the value the
/// kernel still accepts and the first it refuses (btree heights from the AG
/// geometry, free list indexes, counters, LSNs against the log head,
/// unlinked inode numbers, AGFL slots, uuid, lengths), and the inode btree
/// roots a mount reads.
#[test]
fn verifier_bounds_are_the_kernels() {
    if !require_tools(TOOLS) || !require_mount() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let base = real_mkfs(tmp.path(), "base.img", "");
    let _lock = mount_lock();
    let be = |v: u32| v.to_be_bytes().to_vec();
    let lsn = |v: u64| v.to_be_bytes().to_vec();
    let mut other_uuid = UUID_BYTES;
    other_uuid[3] = 0x12;
    let level = |tree, level, max| Problem::Level { tree, level, max };
    let cases = [
        Bound::new(
            "bno level",
            Hdr::Agf,
            0x1c,
            be(2),
            be(3),
            level("bno", 3, 2),
        ),
        Bound::new(
            "refcount level",
            Hdr::Agf,
            0x5c,
            be(3),
            be(4),
            level("refcount", 4, 3),
        ),
        Bound::new(
            "flfirst",
            Hdr::Agf,
            0x28,
            be(118),
            be(119),
            Problem::FreeListIndex {
                field: "flfirst",
                value: 119,
                slots: 119,
            },
        ),
        Bound::new(
            "freeblks",
            Hdr::Agf,
            0x34,
            be(65526),
            be(5),
            Problem::FreeCounts {
                freeblks: 5,
                longest: 65526,
                length: 65536,
            },
        ),
        Bound::new(
            "lsn",
            Hdr::Agf,
            0xd0,
            lsn(0x1_0000_0002),
            lsn(0x1_0000_0003),
            Problem::LsnAhead {
                lsn: 0x1_0000_0003,
                head: 0x1_0000_0002,
            },
        ),
        Bound::new(
            "uuid",
            Hdr::Agf,
            0x40,
            UUID_BYTES.to_vec(),
            other_uuid.to_vec(),
            Problem::ForeignUuid { found: other_uuid },
        ),
        Bound::new(
            "inode level",
            Hdr::Agi,
            0x18,
            be(2),
            be(3),
            level("inode", 3, 2),
        ),
        Bound::new(
            "free inode level",
            Hdr::Agi,
            0x14c,
            be(1),
            be(0),
            level("free inode", 0, 2),
        ),
        Bound::new(
            "unlinked",
            Hdr::Agi,
            0x28,
            be(64),
            be(10),
            Problem::UnlinkedInode {
                bucket: 0,
                value: 10,
            },
        ),
    ];
    for b in cases {
        let name = b.what.replace(' ', "-");
        let (sector, crc_off) = (b.hdr.offset(3), b.hdr.crc_off());
        let img = tmp.path().join(format!("{name}-ok.img"));
        copy(&base, &img);
        patch_fixed(&img, sector, crc_off, b.at, &b.ok);
        accepted_by_both(&img);
        let img = tmp.path().join(format!("{name}-bad.img"));
        copy(&base, &img);
        patch_fixed(&img, sector, crc_off, b.at, &b.bad);
        refused_by_both(&img, b.hdr.structure(), 3, |p| *p == b.problem);
    }

    let agf = Hdr::Agf.crc_off();
    let agf3 = Hdr::Agf.offset(3);
    // A length only the last AG may have; in the last AG the kernel lets
    // any length from 64 blocks to the AG size pass, xfs_repair and ebsim
    // do not.
    let img = tmp.path().join("agf0-length.img");
    copy(&base, &img);
    patch_fixed(&img, Hdr::Agf.offset(0), agf, 0x0c, &be(65535));
    refused_by_both(&img, Structure::Agf, 0, |p| {
        matches!(
            p,
            Problem::BadLength {
                found: 65535,
                last: false,
                ..
            }
        )
    });
    let img = tmp.path().join("agf3-length.img");
    copy(&base, &img);
    patch_fixed(&img, agf3, agf, 0x0c, &be(65535));
    let c = refused_by_both(&img, Structure::Agf, 3, |p| {
        *p == Problem::LengthMismatch {
            found: 65535,
            expected: 65536,
        }
    });
    assert_eq!(c.kernel_message(), None);
    let (rc, out) = repair(&img);
    assert_eq!(rc, 1, "xfs_repair -n passes it: {out}");

    // An AGFL slot past the AG size: the kernel mounts, then fails the
    // first allocation that reads the AGFL.
    let img = tmp.path().join("agfl-slot.img");
    copy(&base, &img);
    patch_fixed(
        &img,
        Hdr::Agfl.offset(3),
        Hdr::Agfl.crc_off(),
        0x24 + 4 * 5,
        &be(65536),
    );
    refused_by_both(&img, Structure::Agfl, 3, |p| {
        matches!(
            p,
            Problem::FreeListBlock {
                slot: 5,
                value: 65536,
                ..
            }
        )
    });

    // The inode btree root of the root directory's AG is read at mount.
    let img = tmp.path().join("inobt-root.img");
    copy(&base, &img);
    flip(&img, 3 * 4096 + 0x40);
    refused_by_both(&img, Structure::Inobt, 0, |p| {
        matches!(p, Problem::BadCrc { .. })
    });
    // With inobtcount the finobt is not walked at mount: a broken finobt
    // root in AG 3 passes both.
    let img = tmp.path().join("finobt-root-counted.img");
    copy(&base, &img);
    flip(&img, 3 * AG + 4 * 4096 + 0x40);
    accepted_by_both(&img);
    // Without inobtcount the kernel walks every finobt to size its
    // reservation.
    let nocount = real_mkfs(tmp.path(), "nocount.img", "inobtcount=0");
    let img = tmp.path().join("finobt-root.img");
    copy(&nocount, &img);
    flip(&img, 3 * AG + 4 * 4096 + 0x40);
    refused_by_both(&img, Structure::Finobt, 3, |p| {
        matches!(p, Problem::BadCrc { .. })
    });
    let img = tmp.path().join("finobt-magic.img");
    copy(&nocount, &img);
    patch_block(&img, 3 * AG + 4 * 4096, 4096, 0x34, 0, b"IAB3");
    refused_by_both(&img, Structure::Finobt, 3, |p| {
        matches!(
            p,
            Problem::BadMagic {
                found: 0x4941_4233,
                ..
            }
        )
    });
}

/// Which headers a mount reads depends on the features: without finobt,
/// reflink and rmapbt nothing reserves per-AG space, and a broken AGF or
/// AGI outside the root directory's AG goes unnoticed until first use;
/// ebsim refuses it all the same.
#[test]
fn mount_effects_follow_the_features() {
    if !require_tools(TOOLS) || !require_mount() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let _lock = mount_lock();
    for (opts, agf_effect, agi_effect) in [
        (
            "finobt=0,reflink=0",
            MountEffect::FirstUseFails,
            MountEffect::FirstUseFails,
        ),
        (
            "reflink=0",
            MountEffect::ReservationFails,
            MountEffect::ReservationFails,
        ),
        (
            "rmapbt=1,reflink=0,finobt=0",
            MountEffect::ReservationFails,
            MountEffect::FirstUseFails,
        ),
    ] {
        let base = real_mkfs(tmp.path(), "base.img", opts);
        let (sb, _) = verdict(&base);
        for (hdr, effect) in [(Hdr::Agf, agf_effect), (Hdr::Agi, agi_effect)] {
            let img = tmp.path().join(format!("{hdr:?}.img"));
            copy(&base, &img);
            flip(&img, hdr.offset(2) + hdr.counter_off() as u64);
            let c = refused_by_both(&img, hdr.structure(), 2, |p| {
                matches!(p, Problem::BadCrc { .. })
            });
            assert_eq!(c.mount_effect(&sb), effect, "{opts} {hdr:?}");
        }
    }
}

/// The paths that used to skip the AG headers: a tail under 64 blocks
/// (which only rewrites the secondary superblocks), a new imaxpct alone,
/// and `-n` on an image. All refuse a broken AGF without writing.
#[test]
fn every_grow_path_checks_the_headers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let img = tmp.path().join("fs.img");
    sparse_file(&img, G);
    let o = run(ebsim("mkfs.xfs")
        .args(["-q", "-m", &format!("uuid={UUID}")])
        .arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    flip(&img, Hdr::Agf.offset(0) + 0x34);
    let (sb, c) = verdict(&img);
    let c = c.expect("refused");
    for (len, args) in [
        (G + 63 * 4096, vec![]),
        (G, vec!["-m", "30"]),
        (2 * G, vec!["-n"]),
        (2 * G, vec!["-d"]),
    ] {
        set_len(&img, len);
        let before = sparse_hash(&img);
        let o = run(ebsim("xfs_growfs").args(&args).arg(&img));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&c.to_string()),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(sparse_hash(&img), before, "{args:?}");
    }
    ebsim_refuses(&img, &c, &sb, &["-d"]);
    // The library refuses the plan itself, whatever the request.
    let fs = Xfs::open(ImageFile::open(&img, Access::ReadOnly).expect("open")).expect("xfs");
    for newblocks in [fs.sb().dblocks, fs.sb().dblocks + 63, 2 * G / 4096] {
        let r = xfs::growfs::plan(
            &fs,
            &xfs::growfs::GrowRequest {
                newblocks,
                imaxpct: Some(30),
            },
        );
        assert!(
            matches!(&r, Err(xfs::Error::Metadata(got)) if **got == c),
            "{newblocks}: {:?}",
            r.map(|p| p.new.dblocks)
        );
    }
}

/// Intact images of several feature sets, fresh and after the kernel has
/// mounted, written and unmounted them (headers with real LSNs), pass the
/// verifiers, grow, and pass `xfs_repair -n`.
#[test]
fn intact_images_still_grow_and_pass_repair() {
    if !require_tools(TOOLS) || !require_mount() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    for opts in ["", "inobtcount=0", "rmapbt=1", "finobt=0,reflink=0"] {
        let img = real_mkfs(tmp.path(), "fs.img", opts);
        {
            let _lock = mount_lock();
            let m = xfs_util::LoopMount::mount(&img, false);
            for i in 0..40 {
                let d = m.path().join(format!("d{i}"));
                std::fs::create_dir(&d).expect("mkdir");
                std::fs::write(d.join("f"), vec![i as u8; 70_000]).expect("write");
            }
        }
        let (_, c) = verdict(&img);
        assert_eq!(c, None, "{opts}");
        set_len(&img, 2 * G + 4096 * 100);
        let o = run(ebsim("xfs_growfs").arg(&img));
        assert_eq!(o.status.code(), Some(0), "{opts}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("data blocks changed from 262144 to 524388"),
            "{opts}: {}",
            stdout(&o)
        );
        let (rc, out) = repair(&img);
        assert_eq!(rc, 0, "{opts}: xfs_repair -n: {out}");
        let (_, c) = verdict(&img);
        assert_eq!(c, None, "{opts}: after the grow");
        std::fs::remove_file(&img).expect("rm");
    }
}

/// On an instance the filesystem is mounted: the real xfs_growfs prints the
/// geometry, then the grow ioctl fails on the bad block (the kernel logs
/// its report). ebsim prints the report and the failed ioctl, exit 1, and
/// writes nothing.
#[test]
fn instance_grow_fails_like_the_ioctl() {
    let g = ec2_util::Cloud::on_tmpfs();
    let id = g.instance("ami-080e1f13689e07408", "t2.micro");
    let v = g.volume(&["--size", "2"]);
    g.ok(&[
        "attach-volume",
        "--volume-id",
        &v,
        "--instance-id",
        &id,
        "--device",
        "/dev/sdf",
    ]);
    for _ in 0..100 {
        if g.describe_volume(&v)["Attachments"][0]["State"] == "attached" {
            break;
        }
        g.advance("1s");
    }
    let sh = |applet: &str, args: &[&str]| {
        let o = g.cmd(applet).args(args).output().expect("run");
        (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
    };
    let (rc, _, err) = sh("mkfs.xfs", &["-q", "/dev/xvdf"]);
    assert_eq!(rc, 0, "{err}");
    let (rc, _, err) = sh("mount", &["/dev/xvdf", "/var/lib"]);
    assert_eq!(rc, 0, "{err}");
    g.ok(&["modify-volume", "--volume-id", &v, "--size", "4"]);
    for _ in 0..1000 {
        let d = g.ok(&["describe-volumes-modifications", "--volume-ids", &v]);
        if d["VolumesModifications"][0]["ModificationState"] != "modifying" {
            break;
        }
        g.advance("5s");
    }
    let img = g.image_of(&v);
    // 2 GiB: 4 AGs of 131072 blocks; break the AGF of AG 1.
    let agf1 = 131072 * 4096 + 512;
    flip(&img, agf1 + 0x34);
    let before = sparse_hash(&img);
    let (rc, out, err) = sh("xfs_growfs", &["-d", "/var/lib"]);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(out.starts_with("meta-data=/dev/xvdf "), "{out}");
    assert!(!out.contains("data blocks changed"), "{out}");
    assert!(
        err.starts_with(
            "xfs_growfs: /dev/xvdf: Metadata CRC error detected at xfs_agf_read_verify, \
             xfs_agf block 0x100001: bad CRC in AGF of AG 1 (stored "
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            "\nxfs_growfs: XFS_IOC_FSGROWFSDATA xfsctl failed: Structure needs cleaning\n"
        ),
        "{err}"
    );
    assert_eq!(sparse_hash(&img), before, "the volume changed");
    // -n shows the geometry and checks nothing, as the real one does.
    let (rc, out, _) = sh("xfs_growfs", &["-n", "/var/lib"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("meta-data=/dev/xvdf "), "{out}");
}
