//! The teaching side: every built-in lab's scripted solution passes
//! `ebsim lab check` and its scripted typical mistake fails with a report
//! naming the mistake; the layers view's numbers equal lsblk -b and df -B1
//! at each step of the seed runbook (ebsim's applets, and the kernel's for
//! an image on a loop device); hints; the SVG against a golden file and
//! rsvg-convert; checkpoints; the web view in headless Chromium.

mod common;
#[path = "teach_util/ws.rs"]
mod ws;

use common::{require_mount, require_tools, run, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::ebsim_bin());
        c.args(args)
            .env("EBSIM_HOME", self.0.path())
            .env("EBSIM_CLOCK", "manual")
            .env_remove("EBSIM_INSTANCE")
            .env_remove("EBSIM_HINTS");
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = run(&mut self.cmd(args));
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    }
    fn inst(&self, i: &str, args: &[&str]) -> std::process::Output {
        run(self.cmd(args).env("EBSIM_INSTANCE", i))
    }
    /// `aws ec2 ARGS --query QUERY --output text`, trimmed.
    fn query(&self, args: &[&str], query: &str) -> String {
        let mut a = vec!["aws", "ec2"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--query", query, "--output", "text"]);
        self.ok(&a).trim().to_string()
    }
    /// Launches the Ubuntu AMI on `ty` and waits for it to run (cloud-init's
    /// boot growth has then seen the AMI's size): its id.
    fn launch(&self, ty: &str) -> String {
        let i = self.query(
            &[
                "run-instances",
                "--image-id",
                "ami-080e1f13689e07408",
                "--instance-type",
                ty,
            ],
            "Instances[0].InstanceId",
        );
        self.ok(&[
            "aws",
            "ec2",
            "wait",
            "instance-running",
            "--instance-ids",
            &i,
        ]);
        i
    }
    /// The first volume (the root volume of the first instance).
    fn root_volume(&self) -> String {
        self.query(&["describe-volumes"], "Volumes[0].VolumeId")
    }
    /// Modifies `volume` to `gib` GiB and lets the modification reach
    /// optimizing (the manual clock).
    fn grow_volume(&self, volume: &str, gib: &str) {
        self.ok(&[
            "aws",
            "ec2",
            "modify-volume",
            "--volume-id",
            volume,
            "--size",
            gib,
        ]);
        self.ok(&["clock", "advance", "30s"]);
    }
    /// Runs `args` in instance `i` with hints on.
    fn hinted(&self, i: &str, args: &[&str]) -> std::process::Output {
        run(self
            .cmd(args)
            .env("EBSIM_INSTANCE", i)
            .env("EBSIM_HINTS", "1"))
    }
    /// Runs `args` in instance `i` and asserts it succeeded.
    fn inst_ok(&self, i: &str, args: &[&str]) -> String {
        let o = self.inst(i, args);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    }
}

fn lab(name: &str) {
    let h = Home::new();
    let start = h.ok(&["lab", "start", name]);
    assert!(start.contains("ebsim shell i-"), "{start}");
    // Nothing done yet: not passed.
    assert!(!run(&mut h.cmd(&["lab", "check"])).status.success());
    h.ok(&["lab", "solution", "--run"]);
    let o = run(&mut h.cmd(&["lab", "check"]));
    assert!(
        o.status.success(),
        "{name}: the solution fails:\n{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("passed"), "{}", stdout(&o));
    // The mistake from the same start.
    h.ok(&["lab", "reset"]);
    h.ok(&["lab", "mistake", "--run"]);
    let o = run(&mut h.cmd(&["lab", "check"]));
    let report = stdout(&o);
    assert!(!o.status.success(), "{name}: the mistake passes:\n{report}");
    let l = ebsim::teach::lab::find(name).unwrap();
    assert!(
        report.contains(&l.mistake.names),
        "{name}: the report does not name the mistake ({:?}):\n{report}",
        l.mistake.names
    );
    assert!(report.contains("[ ]") && report.contains("why:") || report.contains("[ ]"));
}

#[test]
fn lab_seed_xen() {
    lab("seed-xen");
}
#[test]
fn lab_seed_nitro() {
    lab("seed-nitro");
}
#[test]
fn lab_xfs_data_full() {
    lab("xfs-data-full");
}
#[test]
fn lab_resize_before_growpart() {
    lab("resize-before-growpart");
}
#[test]
fn lab_swap_after_root() {
    lab("swap-after-root");
}
#[test]
fn lab_mbr_2tib() {
    lab("mbr-2tib");
}
#[test]
fn lab_rate_limit() {
    lab("rate-limit");
}
#[test]
fn lab_root_from_snapshot() {
    lab("root-from-snapshot");
}
#[test]
fn lab_delete_on_termination() {
    lab("delete-on-termination");
}

#[test]
fn lab_fstab_nofail() {
    lab("fstab-nofail");
}

/// A boot that cannot mount an fstab entry without `nofail` stops in
/// emergency mode: the instance runs, its instance status check is
/// impaired (the system check passes) and ssh times out; with `nofail`
/// the same boot gets through.
#[test]
fn an_fstab_entry_without_nofail_stops_the_boot() {
    let h = Home::new();
    let i = &h.launch("t2.micro");
    let az = h.query(
        &["describe-instances", "--instance-ids", i],
        "Reservations[0].Instances[0].Placement.AvailabilityZone",
    );
    let dv = &h.query(
        &["create-volume", "--size", "1", "--availability-zone", &az],
        "VolumeId",
    );
    h.ok(&["aws", "ec2", "wait", "volume-available", "--volume-ids", dv]);
    let attach = [
        "aws",
        "ec2",
        "attach-volume",
        "--volume-id",
        dv,
        "--instance-id",
        i,
        "--device",
        "/dev/sdf",
    ];
    h.ok(&attach);
    h.ok(&["clock", "advance", "5s"]);
    h.inst_ok(i, &["sudo", "mkfs.ext4", "-q", "/dev/xvdf"]);
    let uuid = h.inst_ok(i, &["lsblk", "-no", "UUID", "/dev/xvdf"]);
    let line = format!("UUID={} /data ext4 defaults 0 2\n", uuid.trim());
    let tee = |args: &[&str], text: &str| {
        let mut c = h.cmd(args);
        c.env("EBSIM_INSTANCE", i).stdin(Stdio::piped());
        let mut child = c.stdout(Stdio::null()).spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    tee(&["sudo", "tee", "-a", "/etc/fstab"], &line);
    let fstab = h.inst_ok(i, &["cat", "/etc/fstab"]);
    let status = |what: &str| {
        h.query(
            &["describe-instance-status", "--instance-ids", i],
            &format!("InstanceStatuses[0].{what}"),
        )
    };
    let reboot = || {
        h.ok(&["aws", "ec2", "reboot-instances", "--instance-ids", i]);
        h.ok(&["clock", "advance", "5m"]);
    };
    // The device is there: the boot gets through.
    reboot();
    assert_eq!(status("InstanceStatus.Status"), "ok");
    // Detached: emergency mode.
    h.ok(&["aws", "ec2", "detach-volume", "--volume-id", dv]);
    h.ok(&["aws", "ec2", "wait", "volume-available", "--volume-ids", dv]);
    reboot();
    assert_eq!(
        h.query(
            &["describe-instances", "--instance-ids", i],
            "Reservations[0].Instances[0].State.Name"
        ),
        "running"
    );
    assert_eq!(status("InstanceStatus.Status"), "impaired");
    assert_eq!(status("InstanceStatus.Details[0].Status"), "failed");
    assert_eq!(status("SystemStatus.Status"), "ok");
    let o = run(h.cmd(&["shell", i]).stdin(Stdio::null()));
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("port 22: Connection timed out")
            && stderr(&o).contains("emergency mode")
            && stderr(&o).contains("/data without nofail"),
        "{}",
        stderr(&o)
    );
    // nofail (written from outside, as a rescue instance would): the next
    // boot gets through without the volume.
    let fixed = fstab.replace("defaults 0 2", "defaults,nofail 0 2");
    assert_ne!(fixed, fstab);
    tee(&["sudo", "tee", "/etc/fstab"], &fixed);
    reboot();
    assert_eq!(status("InstanceStatus.Status"), "ok");
    assert_eq!(status("InstanceStatus.Details[0].Status"), "passed");
}

#[test]
fn every_builtin_lab_is_tested_here() {
    let src = std::fs::read_to_string(file!()).unwrap();
    for n in ebsim::teach::lab::builtin_names() {
        assert!(
            src.contains(&format!("lab(\"{n}\")")),
            "lab {n} has no test"
        );
    }
    assert!(ebsim::teach::lab::builtin_names().len() >= 8);
}

/// `ebsim layers --json` against `lsblk -b -J` and `df -B1` of the same
/// instance: every disk and partition size, every mounted filesystem's
/// size, used and available bytes.
fn layers_equal_lsblk_and_df(h: &Home, i: &str, step: &str) {
    let l: Value = serde_json::from_slice(&h.inst(i, &["layers", "--json"]).stdout).unwrap();
    let o = h.inst(i, &["lsblk", "-b", "-J", "-o", "NAME,SIZE"]);
    let lsblk: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut sizes = std::collections::BTreeMap::new();
    for d in lsblk["blockdevices"].as_array().unwrap() {
        sizes.insert(
            d["name"].as_str().unwrap().to_string(),
            d["size"].as_u64().unwrap(),
        );
        for c in d["children"].as_array().into_iter().flatten() {
            sizes.insert(
                c["name"].as_str().unwrap().to_string(),
                c["size"].as_u64().unwrap(),
            );
        }
    }
    // The rows of block devices (tmpfs and the like are no layer).
    let df = stdout(&h.inst(i, &["df", "-B1", "--output=source,target,size,used,avail"]));
    let df: Vec<Vec<String>> = df
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("/dev/"))
        .map(|l| l.split_whitespace().skip(1).map(str::to_string).collect())
        .collect();
    let mut seen = 0;
    let mut fs_check = |f: &Value| {
        let Some(mp) = f["mountpoints"].as_array().and_then(|m| m.first()) else {
            return;
        };
        let row = df
            .iter()
            .find(|r| r[0] == mp.as_str().unwrap())
            .unwrap_or_else(|| panic!("{step}: df has no {mp}"));
        let want: Vec<u64> = row[1..].iter().map(|x| x.parse().unwrap()).collect();
        let got = vec![
            f["df_size"].as_u64().unwrap(),
            f["df_used"].as_u64().unwrap(),
            f["df_avail"].as_u64().unwrap(),
        ];
        assert_eq!(got, want, "{step}: df -B1 of {mp}");
        seen += 1;
    };
    for d in l["disks"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        assert_eq!(
            Some(&d["size"].as_u64().unwrap()),
            sizes.get(name),
            "{step}: {name}"
        );
        if !d["filesystem"].is_null() {
            fs_check(&d["filesystem"]);
        }
        for p in d["partitions"].as_array().unwrap() {
            let pn = p["name"].as_str().unwrap();
            assert_eq!(
                Some(&p["size"].as_u64().unwrap()),
                sizes.get(pn),
                "{step}: {pn}"
            );
            if !p["filesystem"].is_null() {
                fs_check(&p["filesystem"]);
            }
        }
    }
    assert_eq!(seen, df.len(), "{step}: every df row is a layer");
}

fn seed_runbook_layers(ty: &str, disk: &str, part: &str, data: &str) {
    let h = Home::new();
    let i = &h.launch(ty);
    let az = h.query(
        &["describe-instances", "--instance-ids", i],
        "Reservations[0].Instances[0].Placement.AvailabilityZone",
    );
    let root = &h.root_volume();
    layers_equal_lsblk_and_df(&h, i, "launched");
    let dv = &h.query(
        &[
            "create-volume",
            "--size",
            "200",
            "--volume-type",
            "gp3",
            "--availability-zone",
            &az,
        ],
        "VolumeId",
    );
    h.ok(&["aws", "ec2", "wait", "volume-available", "--volume-ids", dv]);
    h.ok(&[
        "aws",
        "ec2",
        "attach-volume",
        "--volume-id",
        dv,
        "--instance-id",
        i,
        "--device",
        "/dev/sdf",
    ]);
    h.ok(&["clock", "advance", "5s"]);
    h.inst_ok(i, &["sudo", "mkfs", "-t", "xfs", "-q", data]);
    h.inst_ok(i, &["sudo", "mount", data, "/var/lib"]);
    layers_equal_lsblk_and_df(&h, i, "data volume mounted");
    h.ok(&[
        "aws",
        "ec2",
        "modify-volume",
        "--volume-id",
        root,
        "--size",
        "16",
    ]);
    layers_equal_lsblk_and_df(&h, i, "modifying");
    let l = stdout(&h.inst(i, &["layers"]));
    assert!(l.contains("is modifying from 8 GiB to 16 GiB"), "{l}");
    h.ok(&["clock", "advance", "30s"]);
    layers_equal_lsblk_and_df(&h, i, "optimizing");
    let l = stdout(&h.inst(i, &["layers"]));
    assert!(
        l.contains(&format!(
            "disk 16 GiB, partition 1 ends at 8 GiB: grow the partition with growpart {disk} 1"
        )),
        "{l}"
    );
    h.inst_ok(i, &["sudo", "growpart", disk, "1"]);
    layers_equal_lsblk_and_df(&h, i, "growpart");
    let l = stdout(&h.inst(i, &["layers"]));
    assert!(
        l.contains(&format!("grow the filesystem with resize2fs {part}")),
        "{l}"
    );
    h.inst_ok(i, &["sudo", "resize2fs", part]);
    layers_equal_lsblk_and_df(&h, i, "resize2fs");
    h.grow_volume(dv, "400");
    let l = stdout(&h.inst(i, &["layers"]));
    assert!(
        l.contains(
            "grow the filesystem with xfs_growfs -d /var/lib (xfs_growfs takes the mount point"
        ),
        "{l}"
    );
    h.inst_ok(i, &["sudo", "xfs_growfs", "-d", "/var/lib"]);
    layers_equal_lsblk_and_df(&h, i, "xfs_growfs");
}

#[test]
fn layers_equal_lsblk_and_df_through_the_seed_runbook_on_xen() {
    seed_runbook_layers("t2.micro", "/dev/xvda", "/dev/xvda1", "/dev/xvdf");
}

#[test]
fn layers_equal_lsblk_and_df_through_the_seed_runbook_on_nitro() {
    seed_runbook_layers("t3.micro", "/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/nvme1n1");
}

/// An image's layers against the kernel: lsblk -b of a loop device with
/// its partitions, and df -B1 of a read-write mount.
#[test]
fn image_layers_equal_the_kernels_lsblk_and_df() {
    if !require_mount() || !require_tools(&["sfdisk", "mkfs.ext4", "lsblk", "losetup", "partx"]) {
        return;
    }
    let _lock = common::mount_lock();
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let mut sf = Command::new("sfdisk");
    sf.arg("-q").arg(&img).stdin(Stdio::piped());
    let mut c = sf.spawn().unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\n,300M\n,100M,S\n")
        .unwrap();
    assert!(c.wait().unwrap().success());
    let losetup = |args: &[&str]| {
        let o = run(Command::new("losetup").args(args).arg(&img));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    // The disk with its partitions (lsblk reads them from sysfs), and
    // partition 1 as a loop device of its own (no udev here to make the
    // partition's node).
    let loopdev = losetup(&["-f", "-P", "--show"]);
    let before = ebsim::teach::layers::of_image(&img).unwrap();
    let p = &before.disks[0].partitions[0];
    let (off, len) = (p.start.to_string(), p.size.to_string());
    let p1 = losetup(&["-f", "--show", "-o", &off, "--sizelimit", &len]);
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let result = std::panic::catch_unwind(|| {
        let o = run(Command::new("mkfs.ext4").args(["-q", &p1]));
        assert!(o.status.success(), "{}", stderr(&o));
        let l = ebsim::teach::layers::of_image(&img).unwrap();
        let disk = &l.disks[0];
        let o = run(Command::new("lsblk").args(["-b", "-J", "-o", "NAME,SIZE", &loopdev]));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let dev = &v["blockdevices"][0];
        assert_eq!(dev["size"].as_u64(), Some(disk.size));
        // Partitions as the kernel lists them when the loop driver scans
        // them (not in every container), and as util-linux's partx reads
        // the table in any case: number, start and size in bytes.
        if let Some(kids) = dev["children"].as_array() {
            assert_eq!(kids.len(), disk.partitions.len());
            for (k, p) in kids.iter().zip(&disk.partitions) {
                assert_eq!(k["size"].as_u64(), Some(p.size), "{k}");
            }
        }
        let px = stdout(&run(Command::new("partx")
            .args(["-b", "-g", "-o", "NR,START,SIZE"])
            .arg(&img)));
        let rows: Vec<Vec<u64>> = px
            .lines()
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), disk.partitions.len(), "{px}");
        for (r, p) in rows.iter().zip(&disk.partitions) {
            assert_eq!(r, &vec![u64::from(p.number), p.start / 512, p.size], "{px}");
        }
        assert!(
            run(Command::new("mount").arg(&p1).arg(&mnt))
                .status
                .success()
        );
        let df = stdout(&run(Command::new("df")
            .args(["-B1", "--output=size,used,avail"])
            .arg(&mnt)));
        let nums: Vec<u64> = df
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let f = disk.partitions[0].filesystem.as_ref().unwrap();
        assert_eq!(
            nums,
            vec![f.df_size, f.df_used, f.df_avail],
            "df -B1 of the kernel's mount"
        );
        // 111 MiB free after the swap partition, which blocks partition 1.
        assert_eq!(
            disk.limit.layer, "partition-not-last",
            "{}",
            disk.limit.sentence
        );
    });
    let _ = Command::new("umount").arg(&mnt).status();
    let _ = Command::new("losetup").args(["-d", &p1]).status();
    let _ = Command::new("losetup").args(["-d", &loopdev]).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // Grown file: swap after partition 1 blocks it, and the view explains.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let l = ebsim::teach::layers::of_image(&img).unwrap();
    assert_eq!(
        l.disks[0].limit.layer, "partition-not-last",
        "{}",
        l.disks[0].limit.sentence
    );
    assert!(
        l.disks[0]
            .limit
            .sentence
            .contains("partition 2 (swap) follows it")
    );
}

#[test]
fn hints_name_the_layer_only_when_asked() {
    let h = Home::new();
    let i = &h.launch("t2.micro");
    h.grow_volume(&h.root_volume(), "16");
    let plain = h.inst(i, &["sudo", "resize2fs", "/dev/xvda1"]);
    let hinted = h.hinted(i, &["sudo", "resize2fs", "/dev/xvda1"]);
    assert_eq!(plain.stdout, hinted.stdout);
    assert!(!stderr(&plain).contains("hint:"), "{}", stderr(&plain));
    assert!(stderr(&hinted).starts_with(&stderr(&plain)));
    assert_eq!(
        &stderr(&hinted)[stderr(&plain).len()..],
        "hint: disk 16 GiB, partition 1 ends at 8 GiB: grow the partition with growpart /dev/xvda 1 (the modification is still optimizing: growing now is fine)\n"
    );
    // A command that grows: no hint.
    let g = h.hinted(i, &["sudo", "growpart", "/dev/xvda", "1"]);
    assert!(
        g.status.success() && !stderr(&g).contains("hint:"),
        "{}",
        stderr(&g)
    );
    let g = h.hinted(i, &["sudo", "growpart", "/dev/xvda", "1"]);
    assert!(stdout(&g).starts_with("NOCHANGE"));
    assert!(stderr(&g).contains("hint: partition 1 is 15.9 GiB, its ext4 filesystem 7.9 GiB: grow the filesystem with resize2fs /dev/xvda1"), "{}", stderr(&g));
    // The command log recorded the applets, in order.
    let log = ebsim::teach::log::read(h.0.path(), i).unwrap();
    let tools: Vec<&str> = log.iter().map(|e| e.argv[0].as_str()).collect();
    assert_eq!(tools, ["resize2fs", "resize2fs", "growpart", "growpart"]);
    assert!(log.iter().all(|e| e.root));
    assert_eq!(log[3].status, 1);
}

fn png_size(p: &[u8]) -> (u32, u32) {
    assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&p[12..16], b"IHDR");
    (
        u32::from_be_bytes(p[16..20].try_into().unwrap()),
        u32::from_be_bytes(p[20..24].try_into().unwrap()),
    )
}

/// The SVG of a fixed layers document equals its golden file, and
/// rsvg-convert renders it at the size it declares.
#[test]
fn svg_golden_and_render() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/teach");
    let l: ebsim::teach::layers::Layers =
        serde_json::from_str(&std::fs::read_to_string(dir.join("layers.json")).unwrap()).unwrap();
    let svg = ebsim::teach::render::svg(&l);
    let golden = dir.join("layers.svg");
    if std::env::var_os("EBSIM_BLESS").is_some() {
        std::fs::write(&golden, &svg).unwrap();
    }
    assert_eq!(
        svg,
        std::fs::read_to_string(&golden).unwrap(),
        "the SVG changed (EBSIM_BLESS=1 to accept)"
    );
    if !require_tools(&["rsvg-convert"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let png = d.path().join("l.png");
    let o = run(Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(&golden));
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    let w: u32 = svg
        .split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let h: u32 = svg
        .split("height=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(png_size(&bytes), (w, h));
    // The terminal drawing: plain when piped, colour when asked.
    let t = ebsim::teach::render::text(&l, false, false);
    assert!(
        !t.contains('\x1b') && t.contains("=> disk 16 GiB, partition 1 ends at 8 GiB"),
        "{t}"
    );
    assert!(ebsim::teach::render::text(&l, true, false).contains("\x1b[34m"));
}

#[test]
fn checkpoints_save_and_restore_the_whole_state_sparsely() {
    let h = Home::new();
    let i = &h.launch("t2.micro");
    h.ok(&["checkpoint", "save", "fresh"]);
    let before = h.ok(&["aws", "ec2", "describe-volumes"]);
    let root = h.root_volume();
    h.grow_volume(&root, "16");
    h.inst_ok(i, &["sudo", "growpart", "/dev/xvda", "1"]);
    assert_eq!(h.ok(&["checkpoint", "list"]), "fresh\n");
    h.ok(&["checkpoint", "restore", "fresh"]);
    assert_eq!(h.ok(&["aws", "ec2", "describe-volumes"]), before);
    let l = stdout(&h.inst(i, &["layers"]));
    assert!(l.contains("xvda (") && l.contains("  8 GiB, gpt"), "{l}");
    // Sparse: the checkpoint's image allocates what the volume does.
    let img = h.0.path().join(format!("volumes/{}.img", root));
    let saved =
        h.0.path()
            .join(format!("teach/checkpoints/fresh/volumes/{}.img", root));
    assert!(common::allocated(&saved) <= common::allocated(&img) + (1 << 20));
    assert!(common::allocated(&saved) < 8 << 30);
    let bad = run(&mut h.cmd(&["checkpoint", "restore", "../x"]));
    assert!(!bad.status.success() && stderr(&bad).contains("invalid checkpoint name"));
}

/// What a home holds (state document, volumes, snapshots, command logs),
/// by path and SHA-256, and the restore's leftovers (none allowed).
fn home_state(home: &Path) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    use sha2::Digest;
    let hex = |b: &[u8]| -> String {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let mut m = std::collections::BTreeMap::new();
    fn walk(dir: &Path, base: &Path, m: &mut std::collections::BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, m);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                m.insert(rel, common::raw_content_hash(&p));
            }
        }
    }
    if let Ok(b) = std::fs::read(home.join("state.json")) {
        m.insert("state.json".into(), hex(&b));
    }
    for d in ["volumes", "snapshots", "teach/log"] {
        walk(&home.join(d), home, &mut m);
    }
    let left = [
        "teach/restore.staging",
        "teach/restore.old",
        "teach/restore.pending",
    ]
    .iter()
    .filter(|p| home.join(p).exists())
    .map(|p| p.to_string())
    .collect();
    (m, left)
}

/// A checkpoint restore stopped between any two of its steps (the fault
/// hook) or killed at any moment (SIGKILL) leaves, once the next
/// checkpoint command has recovered, the state as it was or as the
/// checkpoint holds it, and nothing of the restore under EBSIM_HOME.
#[test]
fn checkpoint_restore_survives_a_fault_at_every_step_and_sigkill() {
    let h = Home::new();
    let vol = |size: &str| {
        h.query(
            &[
                "create-volume",
                "--size",
                size,
                "--availability-zone",
                "us-east-1a",
            ],
            "VolumeId",
        )
    };
    let (v1, v2) = (vol("1"), vol("2"));
    h.ok(&["clock", "advance", "5s"]);
    let img = |v: &str| h.0.path().join(format!("volumes/{v}.img"));
    h.ok(&["mkfs.ext4", "-q", img(&v1).to_str().unwrap()]);
    h.ok(&["checkpoint", "save", "a"]);
    let saved = home_state(h.0.path());
    // Then: a new volume, one deleted, one formatted again.
    vol("3");
    h.ok(&["aws", "ec2", "delete-volume", "--volume-id", &v2]);
    h.ok(&["mkfs", "-t", "xfs", "-q", "-f", img(&v1).to_str().unwrap()]);
    let current = home_state(h.0.path());
    assert_ne!(saved.0, current.0);
    let template = tempfile::tempdir().unwrap();
    let copy_home = |to: &Path| {
        let o = run(Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(format!("{}/.", h.0.path().display()))
            .arg(to));
        assert!(o.status.success(), "{}", stderr(&o));
    };
    copy_home(template.path());
    let in_home = |home: &Path, args: &[&str]| {
        let mut c = h.cmd(args);
        c.env("EBSIM_HOME", home);
        c
    };
    let check = |home: &Path, what: &str| -> bool {
        let o = run(&mut in_home(home, &["checkpoint", "list"]));
        assert!(o.status.success(), "{what}: recover: {}", stderr(&o));
        let (now, left) = home_state(home);
        assert!(left.is_empty(), "{what}: left behind: {left:?}");
        assert!(
            now == current.0 || now == saved.0,
            "{what}: neither the state before nor the checkpoint's"
        );
        now == saved.0
    };
    let (mut rolled_back, mut restored, mut k) = (0, 0, 0u64);
    loop {
        let d = tempfile::tempdir().unwrap();
        copy_home(d.path());
        let o = run(in_home(d.path(), &["checkpoint", "restore", "a"])
            .env("EBSIM_FAULT_AFTER_WRITES", k.to_string()));
        if o.status.success() {
            assert!(check(d.path(), "no fault"));
            break;
        }
        assert!(stderr(&o).contains("injected fault"), "{}", stderr(&o));
        if check(d.path(), &format!("fault after {k} steps")) {
            restored += 1;
        } else {
            rolled_back += 1;
        }
        k += 1;
        assert!(k < 1000);
    }
    eprintln!(
        "checkpoint restore: {k} fault points, {rolled_back} rolled back, {restored} finished by recovery"
    );
    assert!(rolled_back > 0 && restored > 0);
    // SIGKILL at a spread of moments.
    for delay_us in (0..16).map(|i| i * 1500) {
        let d = tempfile::tempdir().unwrap();
        copy_home(d.path());
        let mut c = in_home(d.path(), &["checkpoint", "restore", "a"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = c.kill();
        let _ = c.wait();
        check(d.path(), &format!("SIGKILL after {delay_us} us"));
    }
}

/// Reads one server-sent event's data line from `r`.
fn next_event(r: &mut impl std::io::BufRead) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(d) = line.strip_prefix("data: ") {
            return Some(d.trim_end().to_string());
        }
    }
}

/// The web view's event stream: the state at once, a change another
/// process makes within two seconds, and SIGTERM with two clients still
/// listening stops the server at once, both streams ended.
#[test]
fn web_events_stream_changes_and_end_on_sigterm() {
    use std::io::{BufRead, BufReader, Write};
    let h = Home::new();
    let i = h.launch("t2.micro");
    let mut web = h
        .cmd(&["web", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(web.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listen = || {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(c);
        let mut head = String::new();
        r.read_line(&mut head).unwrap();
        assert_eq!(head, "HTTP/1.1 200 OK\r\n");
        r
    };
    let (mut a, mut b) = (listen(), listen());
    let first: Value = serde_json::from_str(&next_event(&mut a).unwrap()).unwrap();
    assert_eq!(first["instances"][0]["id"], i.as_str());
    assert!(next_event(&mut b).unwrap().contains(&i));
    // A change made by another process arrives within two seconds.
    let t = Instant::now();
    let v = h.query(
        &[
            "create-volume",
            "--size",
            "3",
            "--availability-zone",
            "us-east-1a",
        ],
        "VolumeId",
    );
    let ev = next_event(&mut a).unwrap();
    assert!(ev.contains(&v), "{ev}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // SIGTERM with both clients connected: the server ends, the streams too.
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = web.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Each stream reaches its end (what was sent before is read first; a
    // read that times out instead fails).
    for r in [&mut a, &mut b] {
        let mut rest = Vec::new();
        let n = std::io::Read::read_to_end(r, &mut rest);
        assert!(n.is_ok(), "{n:?}");
    }
}

/// The web view in headless Chromium: no console error, the instance's
/// disks shown, and a modify-volume + growpart run in another process
/// shown within two seconds.
#[test]
fn web_view_in_headless_chromium() {
    if !require_tools(&["chromium"]) {
        return;
    }
    let h = Home::new();
    let i = h.launch("t2.micro");
    let root = h.root_volume();
    let mut web = h
        .cmd(&["web", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(web.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    let profile = tempfile::tempdir().unwrap();
    let mut chrome = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let port_file = profile.path().join("DevToolsActivePort");
        let t0 = Instant::now();
        while !port_file.exists() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let port = std::fs::read_to_string(&port_file).unwrap();
        let port = port.lines().next().unwrap().to_string();
        let mut s = ws::Ws::connect(&ws::page_ws(&format!("127.0.0.1:{port}")));
        s.call("Runtime.enable", serde_json::json!({}));
        s.call("Log.enable", serde_json::json!({}));
        s.call("Page.navigate", serde_json::json!({"url": url}));
        let text = |s: &mut ws::Ws| -> String {
            let v = s.call("Runtime.evaluate", serde_json::json!({"expression": "(document.querySelector('.disk[data-name=xvda]') || {dataset: {}}).dataset.size + '|' + document.body.innerText", "returnByValue": true}));
            v["result"]["result"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let wait_for = |s: &mut ws::Ws, what: &str, limit: Duration| -> (bool, String) {
            let t = Instant::now();
            loop {
                let body = text(s);
                if body.contains(what) {
                    return (true, body);
                }
                if t.elapsed() > limit {
                    return (false, body);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let (ok, body) = wait_for(&mut s, "8589934592|", Duration::from_secs(20));
        assert!(ok && body.contains("xvda") && body.contains(&i), "{body}");
        // Another process grows the volume and the partition.
        h.grow_volume(&root, "16");
        h.inst_ok(&i, &["sudo", "growpart", "/dev/xvda", "1"]);
        let t = Instant::now();
        let (ok, body) = wait_for(
            &mut s,
            "111 MiB .. 16 GiB (15.9 GiB)",
            Duration::from_secs(2),
        );
        assert!(ok, "not shown within 2 s ({:?}):\n{body}", t.elapsed());
        assert!(body.starts_with("17179869184|"), "{body}");
        let errors: Vec<&Value> = s
            .events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    });
    let _ = chrome.kill();
    let _ = chrome.wait();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = web.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
