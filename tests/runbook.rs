//! The seed runbook end to end (issue 6), on a Xen type (t2.micro: xvda,
//! xvdf) and a Nitro type (t3.micro: nvme0n1, nvme1n1): launch Ubuntu 22.04,
//! add a 200 GiB XFS volume at /var/lib, snapshot the root, modify it to
//! 16 GiB, watch lsblk and df through `modifying` and `optimizing`,
//! growpart + resize2fs online, grow the data volume to 400 GiB and
//! xfs_growfs it, keep the root with the seed's JSON file, terminate.
//!
//! Each command's output is compared with the golden transcript in
//! fixtures/runbook/ (ids replaced by placeholders). The goldens' formatting
//! rules are the ones tests/views.rs checks against the real lsblk and df on
//! loop devices, and their numbers are checked here against the real tools:
//! after the runbook, the real `sfdisk`, `e2fsck -fn`, `xfs_repair -n` and a
//! kernel mount of each final volume must agree with what ebsim printed.
//! Regenerate the goldens with EBSIM_BLESS=1 after checking the diff.

mod common;

use common::*;
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile, Slice};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Replaces generated ids by `INSTANCE`, `VOL1`, `SNAP1`... in order of
/// first appearance.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut counters = std::collections::HashMap::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let mut matched = false;
        for (prefix, name) in [("i-", "INSTANCE"), ("vol-", "VOL"), ("snap-", "SNAP")] {
            let p = prefix.as_bytes();
            let n = p.len() + 17;
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if boundary
                && bytes.len() >= i + n
                && &bytes[i..i + p.len()] == p
                && bytes[i + p.len()..i + n]
                    .iter()
                    .all(|b| b.is_ascii_hexdigit())
                && bytes.get(i + n).is_none_or(|b| !b.is_ascii_alphanumeric())
            {
                let id = &text[i..i + n];
                let label = match seen.iter().find(|(k, _)| k == id) {
                    Some((_, v)) => v.clone(),
                    None => {
                        let c = counters.entry(name).or_insert(0);
                        *c += 1;
                        let v = if name == "INSTANCE" {
                            format!(
                                "{name}{}",
                                if *c == 1 {
                                    String::new()
                                } else {
                                    c.to_string()
                                }
                            )
                        } else {
                            format!("{name}{c}")
                        };
                        seen.push((id.to_string(), v.clone()));
                        v
                    }
                };
                out.push_str(&label);
                i += n;
                matched = true;
                break;
            }
        }
        if !matched {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/runbook")
        .join(name);
    if std::env::var_os("EBSIM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with EBSIM_BLESS=1 to create it)",
            path.display()
        )
    });
    if want != got {
        let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
        let first = w
            .iter()
            .zip(&g)
            .position(|(a, b)| a != b)
            .unwrap_or(w.len().min(g.len()));
        panic!(
            "{name} differs from the golden transcript at line {}:\n  want: {:?}\n  got:  {:?}",
            first + 1,
            w.get(first),
            g.get(first)
        );
    }
}

/// The volume images the runbook left, by size in GiB.
fn images(home: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(home.join("volumes"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "img"))
        .map(|p| (std::fs::metadata(&p).unwrap().len() >> 30, p))
        .collect();
    v.sort();
    v
}

/// Copies `len` bytes at `off` of `img` into a new sparse file (data
/// ranges only: a 16 GiB partition costs what it holds).
fn extract(img: &Path, off: u64, len: u64, to: &Path) {
    let src = ImageFile::open(img, Access::ReadOnly).unwrap();
    let part = Slice::new(&src, off, len).unwrap();
    let mut dst = ImageFile::create(to, len).unwrap();
    let mut batch = ebsim::blockdev::WriteBatch::new();
    for r in part.data_ranges(0..len).unwrap() {
        batch.write(
            r.start,
            part.read_vec(r.start, (r.end - r.start) as usize).unwrap(),
        );
    }
    dst.commit(&batch).unwrap();
}

/// The kernel's statfs of a filesystem image (a loop mount of a copy).
fn kernel_statfs(fs_image: &Path, read_only: bool) -> [u64; 6] {
    let _lock = mount_lock();
    let mnt = tempfile::tempdir().unwrap();
    let opt = if read_only { "ro" } else { "rw" };
    sh(&format!(
        "mount -o loop,{opt} '{}' '{}'",
        fs_image.display(),
        mnt.path().display()
    ));
    let out = run(Command::new("stat")
        .args(["-f", "-c", "%b %f %a %c %d %S"])
        .arg(mnt.path()));
    let um = run(Command::new("umount").arg(mnt.path()));
    assert!(um.status.success(), "umount: {}", stderr(&um));
    let v: Vec<u64> = stdout(&out)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    [v[0], v[1], v[2], v[3], v[4], v[5]]
}

fn ours(img: &Path, off: u64, len: u64, read_only: bool) -> [u64; 6] {
    let dev = ImageFile::open(img, Access::ReadOnly).unwrap();
    let slice = Slice::new(&dev, off, len).unwrap();
    let info = ebsim::fs::probe(&slice).unwrap().unwrap();
    let s = ebsim::fs::statfs(&slice, info.kind, read_only).unwrap();
    [s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.frsize]
}

fn check_flavour(nitro: bool) {
    check_flavour_with(nitro, false);
}

fn check_flavour_with(nitro: bool, hints: bool) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = ebsim("demo");
    if hints {
        cmd.env("EBSIM_HINTS", "1");
    } else {
        cmd.env_remove("EBSIM_HINTS");
    }
    cmd.args(["--transcript", "--home"]).arg(home.path());
    if nitro {
        cmd.arg("--nitro");
    }
    let o = run(&mut cmd);
    assert!(
        o.status.success(),
        "the runbook stopped:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    let transcript = normalize(&stdout(&o));
    golden(if nitro { "nitro.txt" } else { "xen.txt" }, &transcript);
    if hints {
        // Every command of the runbook succeeded normally: no hint line.
        return;
    }

    // The final volumes, checked with the real tools.
    if !require_tools(&["sfdisk", "e2fsck", "xfs_repair"]) {
        return;
    }
    let imgs = images(home.path());
    assert_eq!(imgs.len(), 2, "{imgs:?}");
    let (root, data) = (&imgs[0].1, &imgs[1].1);
    assert_eq!((imgs[0].0, imgs[1].0), (16, 400));
    // growpart's result as sfdisk reads it.
    let dump = stdout(&run(Command::new("sfdisk").arg("--dump").arg(root)));
    let line = dump
        .lines()
        .find(|l| l.contains(".img1 :"))
        .unwrap_or_else(|| panic!("{dump}"));
    assert!(
        line.contains("start=      227328, size=    33327071"),
        "{line}"
    );
    let v = run(Command::new("sgdisk").arg("-v").arg(root));
    assert!(stdout(&v).contains("No problems found"), "{}", stdout(&v));
    // The root's files (the catalog's, written by ebsim) survived the
    // ModifyVolume, growpart and the online resize2fs: the same manifest
    // as a fresh build of the AMI's disk, through ebsim and the kernel.
    if require_mount() && require_tools(&["losetup"]) {
        let fresh = tempfile::tempdir().unwrap();
        let disk = fresh.path().join("ubuntu.img");
        let ubuntu = ebsim::ec2::catalog::by_key("ubuntu-22.04").unwrap();
        ebsim::ec2::catalog::ImageBuilder::build(
            &ebsim::ec2::catalog::NativeImageBuilder,
            ubuntu,
            &disk,
        )
        .unwrap();
        let mut before = manifest::Recorded {
            manifest: manifest::ebsim_manifest(&disk, Some(1)),
        };
        assert!(before.manifest.len() > 100);
        // The one file the instance's boots changed: cloud-init's log
        // (the AMI ships it empty; each boot appends its growpart and
        // resizefs lines).
        let log = "/var/log/cloud-init.log";
        let after = manifest::ebsim_manifest(root, Some(1));
        let grown = after.get(log).cloned().unwrap();
        assert_eq!(before.manifest.get(log).map(|e| e.size), Some(0));
        assert!(grown.size > 0, "{grown:?}");
        before.manifest.insert(log.to_string(), grown);
        before.verify(root, Some(1), "the root after the runbook");
    }
    let (off, len) = (227328 * 512, 33327071 * 512);
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = scratch.path().join("root.ext4");
    extract(root, off, len, &rootfs);
    let fsck = run(Command::new("e2fsck").arg("-fn").arg(&rootfs));
    assert!(
        fsck.status.success(),
        "e2fsck: {}{}",
        stdout(&fsck),
        stderr(&fsck)
    );
    let repair = run(Command::new("xfs_repair").arg("-n").arg(data));
    assert!(repair.status.success(), "xfs_repair: {}", stderr(&repair));
    // The df numbers came from ebsim's statfs: the kernel must agree.
    if require_mount() {
        assert_eq!(
            ours(root, off, len, false),
            kernel_statfs(&rootfs, true),
            "root ext4"
        );
        let datafs = scratch.path().join("data.xfs");
        sparse_copy(data, &datafs);
        let size = ImageFile::open(data, Access::ReadOnly).unwrap().size();
        assert_eq!(
            ours(data, 0, size, false),
            kernel_statfs(&datafs, false),
            "data xfs"
        );
    }
}

#[test]
fn seed_runbook_on_xen() {
    check_flavour(false);
}

#[test]
fn seed_runbook_on_nitro() {
    check_flavour(true);
}

/// EBSIM_HINTS=1 adds a line only after a growing command that changed
/// nothing or failed: the runbook's transcripts stay byte-identical.
#[test]
fn hints_on_leave_the_runbook_transcripts_unchanged() {
    check_flavour_with(false, true);
    check_flavour_with(true, true);
}

#[test]
fn ids_are_normalized_in_order() {
    assert_eq!(
        normalize(
            "i-0123456789abcdef0 vol-0123456789abcdef0 vol-1123456789abcdef0 vol-0123456789abcdef0 xi-0123456789abcdef0"
        ),
        "INSTANCE VOL1 VOL2 VOL1 xi-0123456789abcdef0"
    );
}
