//! Volumes past the host's file size limit (issue 13 item 7): on a host
//! filesystem that caps a file (ext4: 16 TiB − 4 KiB), a 20 TiB and a
//! 64 TiB gp3 volume are segmented images, and every consumer works on
//! them unchanged: created, attached, mkfs.xfs, grown, snapshotted,
//! restored, the host tools; allocated bytes stay small. A crash sweep
//! over a segmented grow by a real command (resize2fs to a larger size:
//! new segments, writes across segment boundaries); damaged segmented
//! images are refused by the commands with nothing touched.

mod common;
mod ec2_util;

use common::{ebsim, require_tools, run, stderr, stdout};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ec2_util::Cloud;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const AL2023: &str = "ami-051f8a213df8bc089";
const GIB: u64 = 1 << 30;

/// Whether files in `dir` are capped below `len` bytes (probed).
fn host_caps(dir: &Path, len: u64) -> bool {
    let p = dir.join("probe");
    let f = std::fs::File::create(&p).expect("probe");
    let capped = f.set_len(len).is_err();
    drop(f);
    std::fs::remove_file(&p).expect("remove probe");
    capped
}

/// Skips (or fails under CI) where the host takes a 20 TiB file.
fn capped_host(dir: &Path) -> bool {
    if host_caps(dir, 20 << 40) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{}: this host takes a 20 TiB file; these tests need one that caps it (ext4)",
        dir.display()
    );
    eprintln!("skipped: the host takes a 20 TiB file");
    false
}

/// Host bytes under a path (a file, or every file of a directory), from
/// st_blocks, read raw.
fn allocated(p: &Path) -> u64 {
    let m = std::fs::symlink_metadata(p).expect("stat");
    if !m.is_dir() {
        return m.blocks() * 512;
    }
    std::fs::read_dir(p)
        .expect("read dir")
        .map(|e| e.expect("entry").metadata().expect("stat").blocks() * 512)
        .sum()
}

/// A digest of an image's contents through the image layer: its length
/// and every non-zero 4 KiB block with its offset.
fn contents(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let img = ImageFile::open(p, Access::ReadOnly).expect("open image");
    let mut h = Sha256::new();
    h.update(img.size().to_le_bytes());
    let mut blocks = 0u64;
    for r in img.data_ranges(0..img.size()).expect("map") {
        let mut at = r.start / 4096 * 4096;
        while at < r.end {
            let n = (img.size() - at)
                .min(1 << 20)
                .min(r.end.div_ceil(4096) * 4096 - at);
            let b = img.read_vec(at, n as usize).expect("read");
            for (i, blk) in b.chunks(4096).enumerate() {
                if blk.iter().any(|&x| x != 0) {
                    h.update((at + i as u64 * 4096).to_le_bytes());
                    h.update(blk);
                    blocks += 1;
                }
            }
            at += n;
        }
    }
    assert!(blocks > 0, "{}: no data", p.display());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn guest(cloud: &Cloud, id: &str, argv: &[&str]) -> String {
    let o = run(cloud
        .cmd(argv[0])
        .args(&argv[1..])
        .env("EBSIM_INSTANCE", id));
    assert!(
        o.status.success(),
        "{argv:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The agcount and agsize mkfs.xfs prints.
fn ag_geometry(mkfs_out: &str) -> (u64, u64) {
    let field = |k: &str| -> u64 {
        let at = mkfs_out
            .find(k)
            .unwrap_or_else(|| panic!("{k} in {mkfs_out}"))
            + k.len();
        mkfs_out[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .expect("number")
    };
    (field("agcount="), field("agsize="))
}

/// The geometry the real mkfs.xfs picks for a device of `bytes` (a dry
/// run on a sparse file in /dev/shm, which takes 64 TiB).
fn real_mkfs_geometry(bytes: u64) -> Option<(u64, u64)> {
    if !require_tools(&["mkfs.xfs"]) {
        return None;
    }
    let d = tempfile::tempdir_in("/dev/shm").ok()?;
    let f = d.path().join("real.img");
    std::fs::File::create(&f).ok()?.set_len(bytes).ok()?;
    let mut c = Command::new("mkfs.xfs");
    c.env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .args(["-N", "-f"])
        .arg(&f);
    let o = run(&mut c);
    assert!(o.status.success(), "mkfs.xfs -N: {}", stderr(&o));
    Some(ag_geometry(&stdout(&o)))
}

fn one_volume(cloud: &Cloud, inst: &str, size_gib: u64, grown_gib: u64, dev: &str) {
    let vol = cloud.volume(&["--size", &size_gib.to_string(), "--volume-type", "gp3"]);
    let img = cloud.image_of(&vol);
    assert!(img.is_dir(), "{}: not segmented", img.display());
    // Where the bytes are.
    let o = run(ebsim("image").arg("info").arg(&img));
    let info = stdout(&o);
    let segs = (size_gib * GIB).div_ceil(8 << 40);
    assert!(
        info.starts_with(&format!(
            "{}: segmented image (a file here may not be {} bytes long), {} bytes in {segs} \
             segments of up to 8796093022208 bytes, ",
            img.display(),
            size_gib * GIB,
            size_gib * GIB
        )),
        "{info}"
    );
    assert!(
        info.contains(&format!("{}/manifest\n", img.display())),
        "{info}"
    );
    assert!(
        info.contains(&format!("/seg-{:05}  bytes ", segs - 1)),
        "{info}"
    );
    cloud.ok(&[
        "attach-volume",
        "--volume-id",
        &vol,
        "--instance-id",
        inst,
        "--device",
        "/dev/sdf",
    ]);
    cloud.advance("10s");
    let out = guest(cloud, inst, &["sudo", "mkfs.xfs", dev]);
    if let Some(real) = real_mkfs_geometry(size_gib * GIB) {
        assert_eq!(
            ag_geometry(&out),
            real,
            "mkfs.xfs geometry at {size_gib} GiB"
        );
    }
    guest(cloud, inst, &["sudo", "mkdir", "-p", "/data"]);
    guest(cloud, inst, &["sudo", "mount", dev, "/data"]);
    let df = guest(cloud, inst, &["df", "-h", "/data"]);
    assert!(df.contains(dev), "{df}");
    // Grow it.
    cloud.ok(&[
        "modify-volume",
        "--volume-id",
        &vol,
        "--size",
        &grown_gib.to_string(),
    ]);
    cloud.advance("1m");
    let lsblk = guest(cloud, inst, &["lsblk", "-b", "-o", "NAME,SIZE", dev]);
    assert!(lsblk.contains(&format!("{}", grown_gib * GIB)), "{lsblk}");
    let grow = guest(cloud, inst, &["sudo", "xfs_growfs", "/data"]);
    assert!(grow.contains("data blocks changed from"), "{grow}");
    let xi = guest(cloud, inst, &["xfs_info", "/data"]);
    let dblocks: u64 = {
        let at = xi.find("blocks=").expect("blocks=") + 7;
        xi[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .expect("blocks")
    };
    assert_eq!(dblocks * 4096, grown_gib * GIB, "{xi}");
    let size = ImageFile::open(&img, Access::ReadOnly)
        .expect("open")
        .size();
    assert_eq!(size, grown_gib * GIB);
    // Snapshot, restore: the same bytes in a new segmented image.
    let snap = cloud.ok(&["create-snapshot", "--volume-id", &vol])["SnapshotId"]
        .as_str()
        .expect("SnapshotId")
        .to_string();
    cloud.ok(&["wait", "snapshot-completed", "--snapshot-ids", &snap]);
    let restored = cloud.volume(&["--snapshot-id", &snap, "--volume-type", "gp3"]);
    let rimg = cloud.image_of(&restored);
    assert!(rimg.is_dir());
    assert_eq!(contents(&img), contents(&rimg));
    let xi2 = run(ebsim("xfs_info").arg(&rimg));
    assert!(xi2.status.success(), "{}", stderr(&xi2));
    assert!(stdout(&xi2).contains(&format!("blocks={dblocks},")));
    // KiB to MiB on the host.
    for p in [&img, &rimg] {
        let a = allocated(p);
        assert!(a < 32 << 20, "{}: {a} bytes allocated", p.display());
        eprintln!("{}: {a} bytes allocated", p.display());
    }
    guest(cloud, inst, &["sudo", "umount", "/data"]);
    cloud.ok(&["detach-volume", "--volume-id", &vol]);
    cloud.advance("10s");
    // Deleting removes the whole directory.
    for v in [&vol, &restored] {
        cloud.ok(&["delete-volume", "--volume-id", v]);
    }
    assert!(!img.exists() && !rimg.exists());
}

#[test]
fn gp3_volumes_of_20_and_64_tib_on_a_capped_host() {
    let cloud = Cloud::new();
    if !capped_host(cloud.path()) {
        return;
    }
    let inst = cloud.instance(AL2023, "t3.micro");
    one_volume(&cloud, &inst, 20000, 30000, "/dev/nvme1n1");
    one_volume(&cloud, &inst, 40000, 65536, "/dev/nvme1n1");
    // A volume created small, as one file, and modified past the limit is
    // converted in place.
    let vol = cloud.volume(&["--size", "100", "--volume-type", "gp3"]);
    let img = cloud.image_of(&vol);
    assert!(img.is_file());
    cloud.ok(&["modify-volume", "--volume-id", &vol, "--size", "20000"]);
    cloud.advance("1m");
    assert!(img.is_dir());
    let dev = ImageFile::open(&img, Access::ReadOnly).expect("open");
    assert_eq!(dev.size(), 20000 * GIB);
    assert!(allocated(&img) < 1 << 20);
}

/// A state of a segmented image read raw: every file's name, length,
/// allocated extents and the digest of their bytes.
fn raw_state(dir: &Path) -> Vec<(String, common::ImageState)> {
    let mut v: Vec<(String, common::ImageState)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                common::image_state(&e.path()),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        common::copy_image(&e.path(), &to.join(e.file_name()));
    }
}

#[test]
fn sweep_resize2fs_growing_a_segmented_image() {
    if !require_tools(&["e2fsck"]) {
        return;
    }
    const S: u64 = 32 << 20;
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    drop(ImageFile::create_segmented(&t, 3 * S, Some(S)).expect("create"));
    let o = run(ebsim("mkfs.ext4").args(["-q", "-F"]).arg(&t));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(ebsim("image")
        .args(["cp", "/etc/services"])
        .arg(format!("{}:/services", t.display())));
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, (_keep, clean)) = sweep(&t, &|p: &Path| {
        let mut c = ebsim("resize2fs");
        c.env("E2FSPROGS_FAKE_TIME", "1700000000")
            .arg(p)
            .arg("200M");
        c
    });
    assert_eq!(std::fs::read_dir(&clean).expect("dir").count(), 1 + 7);
    // e2fsck on the grown filesystem, read through the image layer into a
    // plain file.
    let flat = d.path().join("flat.img");
    {
        let img = ImageFile::open(&clean, Access::ReadOnly).expect("open");
        let f = std::fs::File::create(&flat).expect("flat");
        f.set_len(img.size()).expect("len");
        use std::os::unix::fs::FileExt;
        for r in img.data_ranges(0..img.size()).expect("map") {
            let b = img
                .read_vec(r.start, (r.end - r.start) as usize)
                .expect("read");
            f.write_all_at(&b, r.start).expect("write");
        }
    }
    let o = run(Command::new("e2fsck")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .args(["-fn"])
        .arg(&flat));
    assert!(o.status.success(), "e2fsck: {}{}", stdout(&o), stderr(&o));
}

/// mkfs.xfs over a segmented image holding data: writes in every segment,
/// then discards (punches) after the commit point, so faults there roll
/// forward.
#[test]
fn sweep_mkfs_xfs_over_a_segmented_image() {
    const S: u64 = 128 << 20;
    let d = tempfile::tempdir().expect("tempdir");
    let t = d.path().join("t.img");
    drop(ImageFile::create_segmented(&t, 4 * S, Some(S)).expect("create"));
    let o = run(ebsim("mkfs.ext4").args(["-q", "-F"]).arg(&t));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(ebsim("image")
        .args(["cp", "/etc/services"])
        .arg(format!("{}:/services", t.display())));
    assert!(o.status.success(), "{}", stderr(&o));
    let (counts, _) = sweep(&t, &|p: &Path| {
        let mut c = ebsim("mkfs.xfs");
        c.env("SOURCE_DATE_EPOCH", "1700000000")
            .args([
                "-q",
                "-f",
                "-m",
                "uuid=11111111-2222-4333-8444-555555555555",
            ])
            .arg(p);
        c
    });
    assert!(counts.1 > 0, "no fault point rolled forward: {counts:?}");
    let o = run(ebsim("xfs_info").arg(&t));
    assert!(!o.status.success(), "the template was changed");
}

/// Interrupts `cmd` on a copy of the segmented image `t` after every write
/// step; each time the next open (`ebsim xfs_info`, as a user would) must
/// leave every file of the image exactly as before or as a clean run does.
/// Returns (rolled back, finished, steps) and the clean run's copy.
fn sweep(
    t: &Path,
    cmd: &dyn Fn(&Path) -> Command,
) -> ((u64, u64, u64), (tempfile::TempDir, PathBuf)) {
    let before = raw_state(t);
    let parent = t.parent().expect("parent");
    let attempt = |fault: Option<u64>| -> (tempfile::TempDir, PathBuf, bool) {
        let w = tempfile::tempdir_in(parent).expect("tempdir");
        let p = w.path().join("s.img");
        copy_dir(t, &p);
        let mut c = cmd(&p);
        match fault {
            Some(k) => c.env(ebsim::blockdev::image::FAULT_ENV, k.to_string()),
            None => c.env_remove(ebsim::blockdev::image::FAULT_ENV),
        };
        let ok = run(&mut c).status.success();
        (w, p, ok)
    };
    let (w, clean, ok) = attempt(None);
    assert!(ok);
    let after = raw_state(&clean);
    assert_ne!(before, after);
    let mut n = 0u64;
    let (mut back, mut forward) = (0, 0);
    loop {
        let (_w, p, ok) = attempt(Some(n));
        if ok {
            assert_eq!(raw_state(&p), after);
            break;
        }
        let o = run(ebsim("xfs_info").arg(&p));
        assert!(!stderr(&o).contains("undo log"), "{n}: {}", stderr(&o));
        assert!(!common::undo_log(&p).exists(), "{n}: log left");
        let now = raw_state(&p);
        if now == before {
            back += 1;
        } else if now == after {
            forward += 1;
        } else {
            panic!("fault after {n} writes: the segmented image is neither as before nor after");
        }
        n += 1;
        assert!(n < 10_000);
    }
    eprintln!("{n} write steps: {back} rolled back, {forward} finished");
    assert!(back > 0 && n > 4, "{n} steps");
    ((back, forward, n), (w, clean))
}

#[test]
fn commands_refuse_a_damaged_segmented_image_and_touch_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("s.img");
    drop(ImageFile::create_segmented(&p, 512 << 20, Some(128 << 20)).expect("create"));
    let o = run(ebsim("mkfs.xfs").arg(&p));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(p.join("seg-00002")).expect("remove");
    let before = raw_state(&p);
    for argv in [
        vec!["xfs_info"],
        vec!["xfs_growfs"],
        vec!["mkfs.xfs", "-f"],
        vec!["image", "ls"],
    ] {
        let mut c = ebsim(argv[0]);
        c.args(&argv[1..]);
        if argv[0] == "image" {
            c.arg(format!("{}:/", p.display()));
        } else {
            c.arg(&p);
        }
        let o = run(&mut c);
        assert!(!o.status.success(), "{argv:?} succeeded");
        assert!(
            stderr(&o).contains("segmented image: seg-00002 is missing"),
            "{argv:?}: {}",
            stderr(&o)
        );
        assert_eq!(raw_state(&p), before, "{argv:?} changed it");
    }
}
