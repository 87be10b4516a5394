//! The guest namespace of `ebsim shell` and `ebsim exec`: a runbook typed
//! into `ebsim shell` through a pseudo-terminal on each catalog AMI, the
//! host's safety against a guest root, and the refusal (with the way out)
//! where the host forbids namespaces or FUSE.

mod common;
mod ec2_util;
mod guest_files_util;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const AL2: &str = "ami-0a3c3a20c09d6f377";
const AL2023: &str = "ami-051f8a213df8bc089";
const UBUNTU: &str = "ami-080e1f13689e07408";
const CENTOS7: &str = "ami-002070d43b0a4f171";

/// `ebsim shell ID` in a pseudo-terminal.
fn start_shell(cloud: &ec2_util::Cloud, id: &str) -> pty::Session {
    pty::Session::spawn(
        cloud
            .cmd("shell")
            .arg(id)
            .env("TERM", "dumb")
            .env("LANG", "C.UTF-8"),
    )
}

fn guest_exec(cloud: &ec2_util::Cloud, id: &str, script: &str) -> std::process::Output {
    run(cloud.cmd("exec").args([id, "--", "bash", "-c", script]))
}

/// The runbook of issue 12 on one AMI, typed at the shell's prompt.
fn runbook(ami: &str, pretty: &str, prompt_user: &str, root_grow: &str) {
    if !require_tools(&["xfs_repair"]) {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(ami, "t2.micro");
    let root = cloud.ok(&["describe-volumes"])["Volumes"][0]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    let root_size = cloud.describe_volume(&root)["Size"].as_u64().unwrap();
    let data = cloud.volume(&["--size", "200"]);
    cloud.ok(&[
        "attach-volume",
        "--volume-id",
        &data,
        "--instance-id",
        &id,
        "--device",
        "/dev/sdf",
    ]);
    cloud.advance("30s");
    let mut s = start_shell(&cloud, &id);
    s.wait_for(&format!("{prompt_user}@ip-172-31-"), 60);
    let o = s.run("cat /etc/os-release");
    assert!(o.contains(pretty), "os-release: {o}");
    let o = s.run("hostname; echo $USER $HOME; pwd");
    assert!(o.contains("\nip-172-31-"), "{o}");
    assert!(
        o.contains(&format!("{prompt_user} /home/{prompt_user}")),
        "{o}"
    );
    let o = s.run(
        "sudo mkfs.xfs -q /dev/xvdf && sudo mount /dev/xvdf /var/lib && \
         echo keepme | sudo tee /var/lib/keep >/dev/null && echo made",
    );
    assert!(o.contains("\nmade\n"), "{o}");
    let o = s.run("sudo fallocate -l 150G /var/lib/data && df -h | grep /var/lib && /usr/bin/df -h /var/lib | tail -1");
    // ebsim's df (the guest's table) and the kernel's statfs of the served
    // mount agree: size, used, available, use%.
    let lines: Vec<Vec<&str>> = o
        .lines()
        .filter(|l| l.ends_with("/var/lib"))
        .map(|l| l.split_whitespace().skip(1).take(4).collect())
        .collect();
    assert_eq!(lines.len(), 2, "{o}");
    assert_eq!(lines[0], lines[1], "{o}");
    assert_eq!(lines[0][3], "76%", "{o}");
    // ModifyVolume from outside, then the grows inside while mounted.
    cloud.ok(&["modify-volume", "--volume-id", &data, "--size", "400"]);
    let bigger = (root_size + 8).to_string();
    cloud.ok(&["modify-volume", "--volume-id", &root, "--size", &bigger]);
    cloud.advance("60s");
    let o = s.run("sudo xfs_growfs -d /var/lib");
    assert!(
        o.contains("data blocks changed from 52428800 to 104857600"),
        "{o}"
    );
    let o = s.run("sudo growpart /dev/xvda 1");
    assert!(o.contains("CHANGED: partition=1"), "{o}");
    let o = s.run(root_grow);
    assert!(
        o.contains("is now") || o.contains("data blocks changed"),
        "{o}"
    );
    let o = s.run("cat /var/lib/keep; df -h | grep /var/lib; grep xvda1 /proc/partitions");
    assert!(o.contains("\nkeepme\n"), "{o}");
    assert!(o.contains(" 400G "), "{o}");
    // The guest's own fstab brings the data volume back after a reboot.
    let o = s.run(
        "U=$(lsblk -no UUID /dev/xvdf); sudo umount /var/lib && sudo mkdir -p /data && \
         echo \"UUID=$U /data xfs defaults,nofail 0 2\" | sudo tee -a /etc/fstab",
    );
    assert!(o.contains("/data xfs defaults,nofail 0 2"), "{o}");
    s.master.write_all(b"sudo reboot\n").unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{}", s.text());
        std::thread::sleep(Duration::from_millis(50));
    };
    // The session ends as ssh's does when the instance reboots.
    let _ = status;
    assert!(s.text().contains("closed by remote host"), "{}", s.text());
    cloud.advance("60s");
    let o = guest_exec(&cloud, &id, "df -h | grep /data; cat /data/keep");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(" 400G "), "{}", stdout(&o));
    assert!(stdout(&o).contains("/data\nkeepme\n"), "{}", stdout(&o));
    guest_files_util::fsck_clean_fs(
        guest_files_util::Fs::Xfs,
        &cloud.image_of(&data),
        "after the runbook",
    );
}

#[test]
fn runbook_in_a_pty_ubuntu() {
    runbook(
        UBUNTU,
        "Ubuntu 22.04.4 LTS",
        "ubuntu",
        "sudo resize2fs /dev/xvda1",
    );
}

#[test]
fn runbook_in_a_pty_al2() {
    runbook(AL2, "Amazon Linux 2", "ec2-user", "sudo xfs_growfs -d /");
}

#[test]
fn runbook_in_a_pty_al2023() {
    runbook(
        AL2023,
        "Amazon Linux 2023",
        "ec2-user",
        "sudo xfs_growfs -d /",
    );
}

#[test]
fn runbook_in_a_pty_centos7() {
    runbook(CENTOS7, "CentOS Linux 7", "centos", "sudo xfs_growfs -d /");
}

/// What a tree holds: every path with its type, size and content hash.
fn tree_hash(root: &Path) -> String {
    let o = run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -xdev \\( -type f -o -type d -o -type l \\) -printf '%p %y %s %m\\n' | sort | sha256sum",
        root.display()
    )));
    stdout(&o)
}

/// A root in the guest writes into every top-level directory and removes
/// guest directories that also exist on the host; the host's sentinel
/// tree and its matching directories are unchanged, escapes are refused,
/// and the guest's images are fsck-clean.
#[test]
fn host_is_out_of_reach() {
    if !require_tools(&["e2fsck", "losetup", "partx"]) || !require_mount() {
        return;
    }
    let sentinel = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sentinel.path().join("a/b")).unwrap();
    std::fs::write(sentinel.path().join("a/b/file"), "host data\n").unwrap();
    let watched = [
        sentinel.path().to_path_buf(),
        "/var/lib/dpkg".into(),
        "/usr/share/doc".into(),
        "/etc".into(),
        "/root".into(),
    ];
    let before: Vec<String> = watched.iter().map(|p| tree_hash(p)).collect();
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let sent = sentinel.path().display().to_string();
    let script = format!(
        "if ! grep -q '^NAME=\"Ubuntu\"' /etc/os-release; then echo not-isolated; exit 97; fi; \
         case \"$(hostname)\" in ip-172-31-*) ;; *) echo not-isolated; exit 97;; esac; \
         for d in /*; do [ -d \"$d\" ] && sudo sh -c \"echo guest > '$d/.guest-probe'\" 2>/dev/null; done; \
         sudo rm -rf /var/lib/dpkg /etc/cloud /root; sudo mkdir -p {sent}; echo x | sudo tee {sent}/a 2>/dev/null; \
         sudo rm -rf /usr/share/doc 2>/dev/null; echo rm-doc=$?; \
         sudo /usr/bin/mount -o remount,rw /usr 2>/dev/null; echo remount=$?; \
         unshare -Urm sh -c 'mount -o remount,rw /usr' 2>/dev/null; echo nested=$?; \
         touch /usr/.probe 2>/dev/null; echo usr=$?; \
         ls -a /var/lib | grep -c dpkg; cat /etc/.guest-probe"
    );
    let o = guest_exec(&cloud, &id, &script);
    let out = stdout(&o);
    // The destructive part runs only once the guest proved to be the guest
    // (this host is Debian): a broken namespace must not reach the host.
    assert!(!out.contains("not-isolated"), "{out}\n{}", stderr(&o));
    assert!(out.contains("rm-doc=1"), "{out}\n{}", stderr(&o));
    assert!(!out.contains("remount=0"), "{out}");
    assert!(!out.contains("nested=0"), "{out}");
    assert!(out.contains("usr=1"), "{out}");
    assert!(out.contains("\n0\nguest\n"), "{out}");
    let after: Vec<String> = watched.iter().map(|p| tree_hash(p)).collect();
    for (i, p) in watched.iter().enumerate() {
        assert_eq!(before[i], after[i], "{} changed", p.display());
    }
    assert!(!Path::new("/etc/.guest-probe").exists());
    // The guest's root partition is fsck-clean, and kept what it did.
    let root = cloud.ok(&["describe-volumes"])["Volumes"][0]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    let image = cloud.image_of(&root);
    // Partition 1's start, from the real partx (this host makes no
    // /dev/loopNp1 nodes without udev, so the loop device is at its offset).
    let o = run(Command::new("partx")
        .args(["-g", "-o", "START", "-n", "1"])
        .arg(&image));
    assert!(o.status.success(), "{}", stderr(&o));
    let start: u64 = stdout(&o).trim().parse().unwrap();
    let _lock = mount_lock();
    let o = run(Command::new("losetup")
        .args(["-f", "--show", "-r", "-o"])
        .arg((start * 512).to_string())
        .arg(&image));
    let dev = stdout(&o).trim().to_string();
    assert!(o.status.success(), "{}", stderr(&o));
    let fsck = run(Command::new("e2fsck").args(["-fn", &dev]));
    let _ = run(Command::new("losetup").args(["-d", &dev]));
    assert!(fsck.status.success(), "{}{}", stdout(&fsck), stderr(&fsck));
}

/// Where the host forbids the guest, ebsim says what is missing and how to
/// enable it, and `--host-mode` runs as before.
#[test]
fn a_host_without_namespaces_or_fuse_is_told_why() {
    let cloud = ec2_util::Cloud::new();
    let id = cloud.instance(UBUNTU, "t2.micro");
    for (what, says) in [
        ("userns", "user.max_user_namespaces"),
        ("apparmor", "kernel.apparmor_restrict_unprivileged_userns"),
        ("fuse", "/dev/fuse"),
        ("linux", "not Linux"),
    ] {
        let o = run(cloud
            .cmd("exec")
            .env("EBSIM_SIMULATE_MISSING", what)
            .args([&id, "--", "true"]));
        assert_eq!(o.status.code(), Some(1), "{what}");
        let e = stderr(&o);
        assert!(e.contains(says), "{what}: {e}");
        assert!(e.contains("--host-mode"), "{what}: {e}");
        let o = run(cloud.cmd("exec").env("EBSIM_SIMULATE_MISSING", what).args([
            "--host-mode",
            &id,
            "--",
            "lsblk",
            "/dev/xvda1",
        ]));
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        assert!(stdout(&o).contains("xvda1"), "{}", stdout(&o));
        // The banner goes to stderr; stdout is the command's alone.
        assert!(
            stderr(&o).starts_with("ebsim exec --host-mode: ")
                && stderr(&o).contains("every other command acts on THIS HOST"),
            "{what}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).starts_with("NAME"), "{}", stdout(&o));
    }
    let o = run(cloud
        .cmd("shell")
        .env("EBSIM_SIMULATE_MISSING", "fuse")
        .env("SHELL", "/bin/true")
        .args(["--host-mode", &id]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("every other command acts on THIS HOST"));
}

/// `fusermount3 -u` ends an `ebsim mount` (the server commits and exits).
#[test]
fn fusermount3_unmounts_an_ebsim_mount() {
    if !require_tools(&["fusermount3", "e2fsck"]) {
        return;
    }
    let _lock = mount_lock();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let o = run(Command::new("truncate").args(["-s", "64M"]).arg(&img));
    assert!(o.status.success());
    let o = run(ebsim("mkfs.ext4").arg("-q").arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(ebsim("mount").arg(&img).arg(&mnt));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(mnt.join("hello"), "world\n").unwrap();
    let o = run(Command::new("fusermount3").arg("-u").arg(&mnt));
    assert!(o.status.success(), "{}", stderr(&o));
    let t0 = Instant::now();
    while img.with_extension("img.ebsim-fuse").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = run(Command::new("e2fsck").arg("-fn").arg(&img));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run(ebsim("image").args(["cat", &format!("{}:/hello", img.display())]));
    assert_eq!(stdout(&o), "world\n", "{}", stderr(&o));
}

/// Ubuntu's snaps as a jammy instance shows them: lsblk's loop rows (first,
/// by MAJ:MIN) in the tree, -f and -b modes, `/proc/partitions` lists them
/// first, df has no loop row, and the guest's tools do not find
/// `/dev/loop0` (no node is made for it). Amazon Linux has no snaps.
#[test]
fn ubuntu_snap_loop_devices() {
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let o = guest_exec(&cloud, &id, "lsblk");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(
            "NAME     MAJ:MIN RM  SIZE RO TYPE MOUNTPOINTS\n\
             loop0      7:0    0 24.9M  1 loop /snap/amazon-ssm-agent/7628\n\
             loop1      7:1    0 55.7M  1 loop /snap/core18/2812\n\
             loop2      7:2    0 63.9M  1 loop /snap/core20/2182\n\
             loop3      7:3    0   87M  1 loop /snap/lxd/27037\n\
             loop4      7:4    0 40.4M  1 loop /snap/snapd/20671\n\
             xvda     202:0    0    8G  0 disk \n"
        ),
        "{}",
        stdout(&o)
    );
    let o = guest_exec(&cloud, &id, "lsblk -f | sed -n 2p | tr -s ' '");
    assert_eq!(
        stdout(&o),
        "loop0 squashfs 4.0 0 100% /snap/amazon-ssm-agent/7628\n"
    );
    let o = guest_exec(
        &cloud,
        &id,
        "lsblk -b -n -o NAME,SIZE,RO,TYPE -r /dev/loop3",
    );
    assert_eq!(stdout(&o), "loop3 91226112 1 loop\n");
    let o = guest_exec(&cloud, &id, "sed -n 3,8p /proc/partitions");
    assert_eq!(
        stdout(&o),
        "   7        0      25496 loop0\n\
         \x20  7        1      57036 loop1\n\
         \x20  7        2      65432 loop2\n\
         \x20  7        3      89088 loop3\n\
         \x20  7        4      41368 loop4\n\
         \x20202        0    8388608 xvda\n"
    );
    let o = guest_exec(
        &cloud,
        &id,
        "df | grep -c loop; test -e /dev/loop0; echo $?",
    );
    assert!(stdout(&o).ends_with("0\n1\n"), "{}", stdout(&o));
    let o = guest_exec(&cloud, &id, "sudo mkfs.ext4 /dev/loop0; echo rc=$?");
    assert!(
        stdout(&o).ends_with("rc=1\n") && stderr(&o).contains("The file /dev/loop0 does not exist"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    let o = guest_exec(&cloud, &id, "sudo mount /dev/loop0 /mnt; echo rc=$?");
    assert!(
        stderr(&o).contains("special device /dev/loop0 does not exist"),
        "{}",
        stderr(&o)
    );
    let al = cloud.instance(AL2023, "t3.micro");
    let o = guest_exec(&cloud, &al, "lsblk; cat /proc/partitions");
    assert!(!stdout(&o).contains("loop"), "{}", stdout(&o));
}

/// The guest shares one CPU with the servers of its filesystems (each file
/// operation is a round trip to them), unless `EBSIM_GUEST_PIN=0`.
#[test]
fn guest_shares_one_cpu_with_its_servers_unless_told_not_to() {
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let o = guest_exec(&cloud, &id, "nproc");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n");
    let host = std::thread::available_parallelism().unwrap().get();
    let o = run(cloud
        .cmd("exec")
        .env("EBSIM_GUEST_PIN", "0")
        .args([id.as_str(), "--", "nproc"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{host}\n"));
}
