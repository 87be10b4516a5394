//! lsblk and df against the real tools' output (fixtures/views, captured by
//! scripts/capture-views.sh on loop devices with real mounts).
//!
//! For every case: rebuild its images with the same real tools and fixed
//! ids (as plain files: no root, no loop device, no mount), describe the
//! instance with ebsim's own probing (partition tables through
//! `ebsim::partition::probe`, filesystems through `ebsim::fs`, statfs from
//! the filesystem layer), name the devices and mounts as the capture
//! recorded them, then run `ebsim lsblk` / `ebsim df` with every recorded
//! command line (through the EBSIM_GUEST_SNAPSHOT test hook) and require
//! byte-identical stdout, stderr and exit code. Every `-J` output is also
//! parsed back as JSON.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile, Slice};
use ebsim::guest::Snapshot;
use ebsim::guest::df::{Mount, StatFs};
use ebsim::guest::lsblk::{Device, FsUsage, UtilLinux};
use ebsim::partition::{self, Label};

const FAKE_TIME: &str = "1700000000";

/// statfs differences between ebsim and the kernel that are understood and
/// left to the filesystem layer: (case, mount point, why). For these the
/// snapshot takes the kernel's numbers (so the rendering is still checked)
/// and the test requires the difference to be exactly the one described,
/// so it fails once the difference is gone (remove the entry then).
const KNOWN_STATFS: &[(&str, &str, &str)] = &[(
    "gpt-xfs-16g-grown",
    "/mnt/root",
    "XFS grown while mounted: after growfs the kernel sets maxicount to \
     dblocks*imaxpct/100 blocks' worth of inodes without rounding down to \
     whole inode chunks (xfs_growfs_data), so f_files/f_ffree are 48 higher \
     than after a fresh mount, which is what ebsim's statfs computes",
)];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/views")
}

fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures/views")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("recipe").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Splits a recipe line into words: blanks separate, double quotes group
/// (and may sit inside a word: `128:"EFI System Partition"`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn sh(cmd: &mut Command) {
    let out = common::run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
}

/// Byte range of partition `part` of an image (0: the whole image), from
/// ebsim's partition probe.
fn part_range(img: &Path, part: u32) -> (u64, u64) {
    let dev = ImageFile::open(img, Access::ReadOnly).expect("open image");
    if part == 0 {
        return (0, dev.size());
    }
    let probe = partition::probe(&dev).expect("probe");
    let label = probe.label.expect("a partition table");
    let (_, start, size) = label
        .partitions()
        .into_iter()
        .find(|(n, _, _)| *n == part)
        .unwrap_or_else(|| panic!("no partition {part} in {}", img.display()));
    (start * 512, size * 512)
}

/// Copies `len` bytes at `from_off` of `from` to `to_off` of `to`, only
/// the data ranges (holes stay holes; the target must be fresh or hold
/// zeros there). Test scaffolding standing in for `dd conv=sparse`.
fn sparse_copy_range(from: &Path, from_off: u64, len: u64, to: &Path, to_off: u64) {
    use std::os::unix::fs::FileExt;
    let src = ImageFile::open(from, Access::ReadOnly).expect("open source");
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .expect("open target");
    for r in src
        .data_ranges(from_off..from_off + len)
        .expect("data ranges")
    {
        let mut pos = r.start;
        while pos < r.end {
            let n = (r.end - pos).min(1 << 20) as usize;
            let buf = src.read_vec(pos, n).expect("read");
            if buf.iter().any(|&b| b != 0) {
                dst.write_all_at(&buf, to_off + (pos - from_off))
                    .expect("write");
            }
            pos += n as u64;
        }
    }
}

/// Runs a command on the filesystem of partition `part`: on the image
/// itself for a whole disk, else on a copy of the partition's bytes that is
/// copied back afterwards (the real tools cannot address a partition
/// inside an image file). `fresh`: start from an empty partition.
fn on_partition(dir: &Path, img: &Path, part: u32, fresh: bool, f: impl FnOnce(&Path)) {
    if part == 0 {
        f(img);
        return;
    }
    let (off, size) = part_range(img, part);
    let tmp = dir.join("part.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::File::create(&tmp)
        .and_then(|f| f.set_len(size))
        .expect("create partition file");
    if !fresh {
        sparse_copy_range(img, off, size, &tmp, 0);
    }
    f(&tmp);
    if !fresh {
        // Old data the tool zeroed must not survive: clear the range first.
        let d = std::fs::OpenOptions::new()
            .write(true)
            .open(img)
            .expect("open image");
        let zeros = vec![0u8; 1 << 20];
        let src = ImageFile::open(img, Access::ReadOnly).expect("open image");
        use std::os::unix::fs::FileExt;
        for r in src.data_ranges(off..off + size).expect("data ranges") {
            let mut pos = r.start;
            while pos < r.end {
                let n = (r.end - pos).min(1 << 20) as usize;
                d.write_all_at(&zeros[..n], pos).expect("zero");
                pos += n as u64;
            }
        }
    }
    sparse_copy_range(&tmp, 0, size, img, off);
    std::fs::remove_file(&tmp).expect("remove partition file");
}

/// One recorded mount: disk name, partition (0: whole disk), target,
/// fstype and the kernel's statfs.
#[derive(Debug, Clone)]
struct ObservedMount {
    disk: String,
    part: u32,
    target: String,
    fstype: String,
    stat: StatFs,
}

#[derive(Debug, Default)]
struct Observed {
    util_linux: String,
    /// disk name -> (kernel name, major, minor, size), in recipe order.
    disks: Vec<(String, String, u32, u32, u64)>,
    /// (disk, part) -> (kernel name, major, minor, size)
    parts: BTreeMap<(String, u32), (String, u32, u32, u64)>,
    mounts: Vec<ObservedMount>,
}

fn majmin(s: &str) -> (u32, u32) {
    let (a, b) = s.split_once(':').expect("MAJ:MIN");
    (a.parse().expect("major"), b.parse().expect("minor"))
}

fn read_observed(dir: &Path) -> Observed {
    let text = std::fs::read_to_string(dir.join("observed")).expect("observed");
    let mut o = Observed::default();
    for line in text.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        match w[0] {
            "util-linux" => o.util_linux = w[1].to_string(),
            "disk" => {
                let (ma, mi) = majmin(w[3]);
                o.disks.push((
                    w[1].to_string(),
                    w[2].to_string(),
                    ma,
                    mi,
                    w[4].parse().expect("size"),
                ));
            }
            "part" => {
                let (ma, mi) = majmin(w[4]);
                o.parts.insert(
                    (w[1].to_string(), w[2].parse().expect("number")),
                    (w[3].to_string(), ma, mi, w[5].parse().expect("size")),
                );
            }
            "mount" => {
                let n: Vec<u64> = w[5..11]
                    .iter()
                    .map(|x| x.parse().expect("statfs"))
                    .collect();
                o.mounts.push(ObservedMount {
                    disk: w[1].to_string(),
                    part: w[2].parse().expect("part"),
                    target: w[3].to_string(),
                    fstype: w[4].to_string(),
                    stat: StatFs {
                        blocks: n[0],
                        bfree: n[1],
                        bavail: n[2],
                        files: n[3],
                        ffree: n[4],
                        frsize: n[5],
                    },
                });
            }
            _ => {}
        }
    }
    o
}

/// Rebuilds the case's images in `dir` from its recipe, with the real
/// tools (and ebsim's own grow where the real one needs a mount).
fn build_images(case_dir: &Path, dir: &Path) {
    let recipe = std::fs::read_to_string(case_dir.join("recipe")).expect("recipe");
    let img = |name: &str| dir.join(format!("{name}.img"));
    for line in recipe.lines().filter(|l| !l.trim().is_empty()) {
        let w = words(line);
        let op = w[0].as_str();
        match op {
            "image" => {
                let f = std::fs::File::create(img(&w[1])).expect("create image");
                f.set_len(w[2].parse().expect("size")).expect("size image");
            }
            "sgdisk" => {
                let mut c = Command::new("sgdisk");
                c.args(&w[2..]).arg(img(&w[1]));
                sh(&mut c);
            }
            "sfdisk" => {
                let script = w[2].replace("\\n", "\n");
                let mut child = Command::new("sfdisk")
                    .arg("-q")
                    .arg(img(&w[1]))
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("sfdisk");
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(script.as_bytes())
                    .expect("write sfdisk script");
                assert!(child.wait().expect("sfdisk").success(), "sfdisk failed");
            }
            "mkfs" => {
                let part: u32 = w[2].parse().expect("part");
                let args = &w[4..];
                let kind = w[3].clone();
                on_partition(dir, &img(&w[1]), part, true, |f| {
                    let mut c = match kind.as_str() {
                        "ext4" => {
                            let mut c = Command::new("mkfs.ext4");
                            c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME).args(["-q", "-F"]);
                            c
                        }
                        "xfs" => {
                            let mut c = Command::new("faketime");
                            c.args(["2023-11-14 22:13:20", "mkfs.xfs", "-q", "-f"]);
                            c
                        }
                        k => panic!("unknown filesystem {k}"),
                    };
                    c.args(args).arg(f);
                    sh(&mut c);
                });
            }
            "grow-image" => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(img(&w[1]))
                    .expect("open image");
                f.set_len(w[2].parse().expect("size")).expect("grow image");
            }
            "growpart" => {
                let mut c = Command::new("growpart");
                c.arg(img(&w[1])).arg(&w[2]);
                sh(&mut c);
            }
            "resize2fs" => {
                let part: u32 = w[2].parse().expect("part");
                on_partition(dir, &img(&w[1]), part, false, |f| {
                    let mut c = Command::new("resize2fs");
                    c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME).arg("-f").arg(f);
                    sh(&mut c);
                });
            }
            "xfs_growfs" => {
                // The real xfs_growfs needs a mount; ebsim's grows an
                // unmounted image as the kernel grows a mounted one.
                let part: u32 = w[2].parse().expect("part");
                on_partition(dir, &img(&w[1]), part, false, |f| {
                    sh(common::ebsim("xfs_growfs").arg("-d").arg(f));
                });
            }
            "attach" | "mount" => {}
            op => panic!("unknown recipe step {op}"),
        }
    }
}

fn lower_guid(g: &ebsim::partition::guid::Guid) -> String {
    g.to_string().to_ascii_lowercase()
}

/// Filesystem facts of one device: (fstype, fsver, uuid, label, statfs).
type FsFacts = (String, Option<String>, String, Option<String>, StatFs);

/// Probes the filesystem at `range` of `img` with ebsim's fs layers (the
/// `ebsim::fs` facade over ext4 and XFS), and its statfs as mounted.
fn probe_fs(img: &Path, (off, len): (u64, u64)) -> Option<FsFacts> {
    let slice = || {
        let dev = ImageFile::open(img, Access::ReadOnly).expect("open image");
        Slice::new(dev, off, len).expect("slice")
    };
    let info = ebsim::fs::probe(slice()).expect("fs probe")?;
    let st = ebsim::fs::statfs(slice(), info.kind, false).expect("statfs");
    Some((
        info.kind.name().to_string(),
        info.version.clone(),
        info.uuid.clone(),
        Some(info.label.clone()).filter(|l| !l.is_empty()),
        StatFs {
            frsize: st.frsize,
            blocks: st.blocks,
            bfree: st.bfree,
            bavail: st.bavail,
            files: st.files,
            ffree: st.ffree,
        },
    ))
}

/// The instance as ebsim sees the rebuilt images, named as the capture
/// named them.
fn snapshot(case: &str, dir: &Path, obs: &Observed) -> (Snapshot, Vec<String>) {
    let mut problems = Vec::new();
    let mut devices = Vec::new();
    // (disk, part) -> filesystem facts, for mounts.
    let mut facts: BTreeMap<(String, u32), FsFacts> = BTreeMap::new();
    for (disk, kname, major, minor, size) in &obs.disks {
        let path = dir.join(format!("{disk}.img"));
        let dev = ImageFile::open(&path, Access::ReadOnly).expect("open image");
        if dev.size() != *size {
            problems.push(format!(
                "{disk}: image is {} bytes, kernel saw {size}",
                dev.size()
            ));
        }
        let mut d = Device {
            name: kname.clone(),
            major: *major,
            minor: *minor,
            size: dev.size(),
            kind: "loop".into(),
            ..Default::default()
        };
        let probe = partition::probe(&dev).expect("partition probe");
        drop(dev);
        let mut parts: Vec<(u32, u64, u64)> = Vec::new();
        match &probe.label {
            Some(Label::Gpt(g)) => {
                d.pttype = Some("gpt".into());
                d.ptuuid = Some(lower_guid(&g.primary.disk_guid));
                for (n, e) in g.partitions() {
                    parts.push((n, e.first_lba, e.size()));
                    let mut p = Device {
                        name: format!("{kname}p{n}"),
                        kind: "part".into(),
                        partuuid: Some(lower_guid(&e.unique_guid)),
                        parttype: Some(lower_guid(&e.type_guid)),
                        partlabel: Some(e.name_string()).filter(|s| !s.is_empty()),
                        ..Default::default()
                    };
                    p.pttype = d.pttype.clone();
                    p.ptuuid = d.ptuuid.clone();
                    p.size = e.size() * 512;
                    d.children.push(p);
                }
            }
            Some(Label::Dos(l)) => {
                d.pttype = Some("dos".into());
                d.ptuuid = Some(format!("{:08x}", l.disk_id));
                for p in &l.partitions {
                    parts.push((p.number, p.start, p.size));
                    // The kernel (and partx) shows an extended partition as
                    // at most 2 sectors.
                    let extended = l.extended == Some(p.number);
                    let bytes = if extended {
                        p.size.min(2) * 512
                    } else {
                        p.size * 512
                    };
                    d.children.push(Device {
                        name: format!("{kname}p{}", p.number),
                        kind: "part".into(),
                        size: bytes,
                        partuuid: Some(format!("{:08x}-{:02x}", l.disk_id, p.number)),
                        parttype: Some(format!("0x{:x}", p.sys)),
                        pttype: d.pttype.clone(),
                        ptuuid: d.ptuuid.clone(),
                        ..Default::default()
                    });
                }
            }
            None => {}
        }
        // Numbers and filesystems of the partitions.
        for (child, &(n, start, sectors)) in d.children.iter_mut().zip(&parts) {
            match obs.parts.get(&(disk.clone(), n)) {
                Some((pk, ma, mi, psize)) => {
                    child.major = *ma;
                    child.minor = *mi;
                    if pk != &child.name || *psize != child.size {
                        problems.push(format!(
                            "{disk} partition {n}: ebsim {} {} bytes, kernel {pk} {psize}",
                            child.name, child.size
                        ));
                    }
                }
                None => problems.push(format!("{disk} partition {n}: the kernel has none")),
            }
            if let Some(f) = probe_fs(&path, (start * 512, sectors * 512)) {
                child.fstype = Some(f.0.clone());
                child.fsver = f.1.clone();
                child.uuid = Some(f.2.clone());
                child.label = f.3.clone();
                facts.insert((disk.clone(), n), f);
            }
        }
        let nparts = obs.parts.keys().filter(|(dk, _)| dk == disk).count();
        if nparts != d.children.len() {
            problems.push(format!(
                "{disk}: ebsim finds {} partitions, the kernel {nparts}",
                d.children.len()
            ));
        }
        if probe.label.is_none() {
            if let Some(f) = probe_fs(&path, (0, d.size)) {
                d.fstype = Some(f.0.clone());
                d.fsver = f.1.clone();
                d.uuid = Some(f.2.clone());
                d.label = f.3.clone();
                facts.insert((disk.clone(), 0), f);
            }
        }
        devices.push(d);
    }
    // Mounts, in mount order; each device lists its mount points most
    // recent first.
    let mut mounts = Vec::new();
    for m in &obs.mounts {
        let Some(f) = facts.get(&(m.disk.clone(), m.part)) else {
            problems.push(format!(
                "{} {}: mounted, but ebsim finds no filesystem",
                m.disk, m.part
            ));
            continue;
        };
        if f.0 != m.fstype {
            problems.push(format!(
                "{}: ebsim says {}, the kernel {}",
                m.target, f.0, m.fstype
            ));
        }
        let mut stat = f.4;
        let known = KNOWN_STATFS
            .iter()
            .any(|(c, t, _)| *c == case && *t == m.target);
        if known {
            let only_inodes = StatFs {
                files: m.stat.files,
                ffree: m.stat.ffree,
                ..stat
            } == m.stat;
            if stat == m.stat || !only_inodes {
                problems.push(format!(
                    "{}: KNOWN_STATFS entry is stale: ebsim {:?}, the kernel {:?}",
                    m.target, stat, m.stat
                ));
            }
            stat = m.stat;
        } else if stat != m.stat {
            problems.push(format!(
                "{}: ebsim statfs {:?}, the kernel {:?}",
                m.target, stat, m.stat
            ));
        }
        let disk = devices
            .iter_mut()
            .find(|d| {
                obs.disks
                    .iter()
                    .any(|(n, k, ..)| n == &m.disk && k == &d.name)
            })
            .expect("mounted disk");
        let dev: &mut Device = if m.part == 0 {
            disk
        } else {
            let name = format!("{}p{}", disk.name, m.part);
            disk.children
                .iter_mut()
                .find(|c| c.name == name)
                .expect("mounted partition")
        };
        dev.mountpoints.insert(0, m.target.clone());
        dev.fs = Some(FsUsage {
            frsize: stat.frsize,
            blocks: stat.blocks,
            bfree: stat.bfree,
            bavail: stat.bavail,
        });
        mounts.push(Mount {
            source: format!("/dev/{}", dev.name),
            fstype: f.0.clone(),
            target: m.target.clone(),
            stat,
        });
    }
    let snap = Snapshot {
        devices,
        mounts,
        util_linux: UtilLinux::from_version(&obs.util_linux),
    };
    (snap, problems)
}

/// Runs every recorded command against `snap`; returns the mismatches.
fn compare_commands(case_dir: &Path, snap_json: &Path) -> (usize, Vec<String>) {
    let commands = std::fs::read_to_string(case_dir.join("commands")).expect("commands");
    let mut failures = Vec::new();
    let mut n = 0;
    for line in commands.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        let (id, rc, argv) = (w[0], w[1].parse::<i32>().expect("rc"), &w[2..]);
        n += 1;
        let want_out = std::fs::read_to_string(case_dir.join(format!("{id}.out"))).expect("out");
        let want_err =
            std::fs::read_to_string(case_dir.join(format!("{id}.err"))).unwrap_or_default();
        let out = common::run(
            common::ebsim(argv[0])
                .args(&argv[1..])
                .env("EBSIM_GUEST_SNAPSHOT", snap_json)
                .env("LANG", "C.UTF-8")
                .env_remove("LC_ALL")
                .env_remove("LC_CTYPE"),
        );
        let (got_out, got_err) = (common::stdout(&out), common::stderr(&out));
        let got_rc = out.status.code().unwrap_or(-1);
        if got_out != want_out || got_err != want_err || got_rc != rc {
            failures.push(format!(
                "{id}: `{}`\n--- real (rc {rc})\n{want_out}{want_err}--- ebsim (rc {got_rc})\n{got_out}{got_err}",
                argv.join(" ")
            ));
        }
        if argv[0] == "lsblk" && argv.iter().any(|a| a.starts_with("-J")) {
            for (who, text) in [("real", &want_out), ("ebsim", &got_out)] {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                    failures.push(format!("{id}: {who} -J output is not JSON: {e}"));
                }
            }
        }
    }
    (n, failures)
}

fn run_case(case: &str) {
    let case_dir = fixtures().join(case);
    let tmp = tempfile::tempdir().expect("tempdir");
    build_images(&case_dir, tmp.path());
    let obs = read_observed(&case_dir);
    let (snap, problems) = snapshot(case, tmp.path(), &obs);
    let json = tmp.path().join("snapshot.json");
    std::fs::write(&json, serde_json::to_string_pretty(&snap).expect("json")).expect("write");
    let (n, failures) = compare_commands(&case_dir, &json);
    assert!(
        problems.is_empty() && failures.is_empty(),
        "case {case}: {} of {n} commands differ\n{}\n{}",
        failures.len(),
        problems.join("\n"),
        failures.join("\n")
    );
}

fn tools() -> bool {
    common::require_tools(&[
        "sgdisk",
        "sfdisk",
        "mkfs.ext4",
        "resize2fs",
        "mkfs.xfs",
        "faketime",
        "growpart",
    ])
}

#[test]
fn golden_cases() {
    if !tools() {
        return;
    }
    let cases = cases();
    assert!(
        cases.len() >= 12,
        "fixtures/views has {} cases",
        cases.len()
    );
    let mut ran = 0;
    let mut failed = Vec::new();
    for c in &cases {
        ran += 1;
        if let Err(e) = std::panic::catch_unwind(|| run_case(c)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(msg);
        }
    }
    assert!(ran >= 12, "only {ran} cases ran");
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn every_captured_json_parses() {
    for c in cases() {
        let dir = fixtures().join(&c);
        let commands = std::fs::read_to_string(dir.join("commands")).expect("commands");
        for line in commands.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            if w[2] == "lsblk" && w[3..].iter().any(|a| a.starts_with("-J")) {
                let text = std::fs::read_to_string(dir.join(format!("{}.out", w[0]))).expect("out");
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{c}/{}: {e}", w[0]));
                assert!(v["blockdevices"].is_array(), "{c}/{}", w[0]);
            }
        }
    }
}

#[test]
fn recipe_words() {
    assert_eq!(
        words(r#"sgdisk root -c 128:"EFI System Partition" -n 1:0:0"#),
        [
            "sgdisk",
            "root",
            "-c",
            "128:EFI System Partition",
            "-n",
            "1:0:0"
        ]
    );
    assert_eq!(words(r#"sfdisk d "a\nb""#), ["sfdisk", "d", r"a\nb"]);
}
