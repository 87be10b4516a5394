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
    cloud.attach_and_settle(&data, &id, "/dev/sdf");
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
    // The session ends as ssh's does when the instance reboots.
    s.wait_exit(60);
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

/// Two partitions of one disk mounted in the guest (ext4 on xvdf1 at
/// /data, XFS on xvdf2 at /srv): one server holds the disk, both are
/// readable and writable, both show in df and lsblk, growpart of the disk
/// and xfs_growfs of /srv work while both are mounted (resize2fs of the
/// ext4 on xvdf1 reaches its own server too), and unmounting /data leaves
/// /srv served. Both filesystems are fsck-clean afterwards.
#[test]
fn two_partitions_of_one_disk_in_the_guest() {
    if !require_tools(&["xfs_repair", "e2fsck", "sfdisk", "mkfs.xfs", "mkfs.ext4"]) {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let data = cloud.volume(&["--size", "2"]);
    let img = cloud.image_of(&data);
    let imgs = img.to_str().unwrap().to_string();
    sh(&format!(
        "printf 'label: gpt\\nstart=2048, size=512M\\nsize=512M\\n' | sfdisk -q {imgs} \
         && mkfs.ext4 -q -b 4096 -E offset=1048576 {imgs} 512M \
         && truncate -s 512M {imgs}.x && mkfs.xfs -q -f {imgs}.x \
         && dd if={imgs}.x of={imgs} bs=1M seek=513 count=512 conv=notrunc,sparse status=none \
         && rm {imgs}.x"
    ));
    cloud.attach_and_settle(&data, &id, "/dev/sdf");
    let o = guest_exec(
        &cloud,
        &id,
        "set -e; sudo mkdir -p /data /srv; sudo mount /dev/xvdf1 /data; sudo mount /dev/xvdf2 /srv; \
         echo one | sudo tee /data/one >/dev/null; echo two | sudo tee /srv/two >/dev/null; \
         cat /data/one /srv/two; df -h | grep xvdf; lsblk -no NAME,FSTYPE,MOUNTPOINTS /dev/xvdf; \
         /usr/bin/df -h /data /srv | tail -2",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("one\ntwo\n"), "{out}");
    assert!(
        out.contains("/dev/xvdf1") && out.contains("/dev/xvdf2"),
        "{out}"
    );
    assert!(
        out.contains("xvdf1 ext4") && out.contains("/data") && out.contains("xvdf2 xfs"),
        "{out}"
    );
    // The kernel's statfs of both served mounts answers.
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("/dev/xvdf1 ") && l.ends_with(" /data"))
            .count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("/dev/xvdf2 ") && l.ends_with(" /srv"))
            .count(),
        2,
        "{out}"
    );
    cloud.ok(&["modify-volume", "--volume-id", &data, "--size", "4"]);
    cloud.advance("60s");
    let o = guest_exec(
        &cloud,
        &id,
        "set -e; sudo growpart /dev/xvdf 2; sudo xfs_growfs /srv; sudo resize2fs /dev/xvdf1 || true; \
         sudo fallocate -l 2G /srv/big; cat /data/one /srv/two; \
         sudo umount /data; echo three | sudo tee /srv/three >/dev/null; cat /srv/three; \
         ls /data | wc -l; df -h | grep xvdf",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("CHANGED: partition=2"), "{out}");
    assert!(out.contains("data blocks changed from 131072 to"), "{out}");
    assert!(out.contains("one\ntwo\nthree\n0\n"), "{out}");
    assert!(!out.contains("/dev/xvdf1 "), "{out}");
    assert!(out.contains("/dev/xvdf2"), "{out}");
    assert!(
        stderr(&o).contains("Nothing to do") || out.contains("Nothing to do"),
        "{}{}",
        out,
        stderr(&o)
    );
    // Both clean, checked on copies of the partitions.
    let scratch = big_tempdir();
    let p1 = scratch.path().join("p1");
    let p2 = scratch.path().join("p2");
    sh(&format!(
        "dd if={imgs} of={a} bs=1M skip=1 count=512 conv=sparse status=none \
         && dd if={imgs} of={b} bs=1M skip=513 conv=sparse status=none",
        a = p1.display(),
        b = p2.display()
    ));
    guest_files_util::fsck_clean_fs(guest_files_util::Fs::Ext4, &p1, "xvdf1");
    guest_files_util::fsck_clean_fs(guest_files_util::Fs::Xfs, &p2, "xvdf2");
    let _ = std::fs::remove_file(&p1);
    let _ = std::fs::remove_file(&p2);
}

/// A login that changes nothing writes nothing: `ebsim exec I -- true`
/// leaves the root volume's image byte for byte as it was, on Amazon Linux
/// 2023 (XFS root) and Ubuntu (ext4 root). The namespace binds the host's
/// dynamic linker cache only over a guest file that exists, never on an
/// empty file made in the guest's root for it (AL2023's seed has no
/// /etc/ld.so.cache: the first exec used to create it, nsswitch.conf and
/// resolv.conf, three inodes). ebsim also leaves the XFS log and the
/// superblock alone on an untouched mount, where the kernel rewrites both
/// (a loop mount and umount of a copy of the AL2023 root changes about
/// 100 KB: the superblock and 2 MiB of log).
#[test]
fn an_untouched_login_writes_nothing() {
    let cloud = ec2_util::Cloud::on_tmpfs();
    for (ami, itype) in [(AL2023, "t3.micro"), (UBUNTU, "t2.micro")] {
        let id = cloud.instance(ami, itype);
        let d = cloud.ok(&["describe-instances", "--instance-ids", &id]);
        let vol = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            .as_str()
            .unwrap()
            .to_string();
        let img = cloud.image_of(&vol);
        let scratch = big_tempdir();
        let copy = scratch.path().join("before.img");
        sh(&format!(
            "cp --sparse=always {} {}",
            img.display(),
            copy.display()
        ));
        for _ in 0..2 {
            let o = run(cloud.cmd("exec").args([&id, "--", "true"]));
            assert!(o.status.success(), "{ami}: {}", stderr(&o));
            let o = run(Command::new("cmp").arg(&copy).arg(&img));
            assert!(
                o.status.success(),
                "{ami}: exec -- true changed the root image: {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
        // Programs still run without the guest's linker cache.
        let o = guest_exec(
            &cloud,
            &id,
            "ls / >/dev/null && sort --version >/dev/null && echo ok",
        );
        assert!(
            stdout(&o).ends_with("ok\n"),
            "{ami}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let _ = std::fs::remove_file(&copy);
    }
}

/// Partition `n` of `img` as the host's partx reads it: first byte, length.
fn host_partition(img: &Path, n: u32) -> (u64, u64) {
    let o = sh(&format!(
        "partx -g -o START,SECTORS -n {n} {}",
        img.display()
    ));
    let out = stdout(&o);
    let v: Vec<u64> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(v.len(), 2, "{out}");
    (v[0] * 512, v[1] * 512)
}

/// The sha256 of `len` bytes of `img` from `start`, read on the host.
fn host_hash(img: &Path, start: u64, len: u64) -> String {
    let o = sh(&format!(
        "dd if={} iflag=skip_bytes,count_bytes bs=1M skip={start} count={len} status=none | sha256sum",
        img.display()
    ));
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

/// A partition node of the guest (`/dev/xvda1`, `/dev/nvme0n1p1`) is
/// backed by the partition's bytes, read-only: the host's `file -s` run in
/// the guest on the root partition says what it says of a copy of that
/// partition's bytes on the host; `sha256sum` of a data partition equals
/// the hash of its bytes read from the image outside; a write is refused
/// with EROFS and leaves the image as it was; after modify-volume and
/// growpart the node's size is the new partition's.
fn partition_nodes(ami: &str, itype: &str, root_node: &str, data_disk: &str, data_part: &str) {
    if !require_tools(&["file", "partx", "sfdisk"]) {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(ami, itype);
    let root = cloud.ok(&["describe-volumes"])["Volumes"][0]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    let root_img = cloud.image_of(&root);
    let data = cloud.volume(&["--size", "1"]);
    let img = cloud.image_of(&data);
    sh(&format!(
        "printf 'label: gpt\\nstart=2048, size=64M\\n' | sfdisk -q {i} \
         && dd if=/dev/urandom of={i} bs=1M seek=1 count=64 conv=notrunc status=none",
        i = img.display()
    ));
    cloud.attach_and_settle(&data, &id, "/dev/sdf");
    // The host's view: `file -s` of a copy of the root partition.
    let (rstart, rlen) = host_partition(&root_img, 1);
    let scratch = big_tempdir();
    let copy = scratch.path().join("root-part");
    sh(&format!(
        "dd if={} of={} iflag=skip_bytes,count_bytes bs=1M skip={rstart} count={rlen} \
         conv=sparse status=none",
        root_img.display(),
        copy.display()
    ));
    let host_file = stdout(&sh(&format!("file -s {}", copy.display())));
    let host_file = host_file
        .split_once(": ")
        .map(|(_, d)| d.trim_end().to_string())
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    let (dstart, dlen) = host_partition(&img, 1);
    assert_eq!((dstart, dlen), (1 << 20, 64 << 20));
    let before = host_hash(&img, 0, 1 << 30);
    let data_hash = host_hash(&img, dstart, dlen);
    let o = guest_exec(
        &cloud,
        &id,
        &format!(
            // Writes below aim at /dev: run nothing unless inside the guest.
            "hostname | grep -q '^ip-172-31-' || exit 99; \
             file -s /dev/{root_node}; sha256sum /dev/{data_part}; stat -c %s /dev/{data_part}; \
             sudo dd if=/dev/zero of=/dev/{data_part} bs=4096 count=1 conv=notrunc 2>&1 \
             && echo WRITTEN || echo REFUSED; \
             sudo sh -c 'echo x >> /dev/{data_part}' 2>&1 && echo WRITTEN || echo REFUSED"
        ),
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("/dev/{root_node}: {host_file}"), "{out}");
    assert!(
        host_file.contains("filesystem data"),
        "the host's file(1) recognises the root: {host_file}"
    );
    assert_eq!(lines[1], format!("{data_hash}  /dev/{data_part}"), "{out}");
    assert_eq!(lines[2], dlen.to_string(), "{out}");
    assert!(!out.contains("WRITTEN"), "{out}");
    assert_eq!(out.matches("REFUSED").count(), 2, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(
        host_hash(&img, 0, 1 << 30),
        before,
        "a refused write changed the image"
    );
    // The node follows the table: grow the volume and the partition.
    cloud.ok(&["modify-volume", "--volume-id", &data, "--size", "2"]);
    cloud.advance("60s");
    let o = guest_exec(
        &cloud,
        &id,
        &format!(
            "sudo growpart /dev/{data_disk} 1 >/dev/null; stat -c %s /dev/{data_part}; \
             head -c 1048576 /dev/{data_part} | sha256sum"
        ),
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (gstart, glen) = host_partition(&img, 1);
    assert_eq!(gstart, dstart);
    assert!(glen > dlen, "growpart grew the partition: {glen}");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], glen.to_string(), "{out}");
    assert_eq!(
        lines[1],
        format!("{}  -", host_hash(&img, dstart, 1 << 20)),
        "{out}"
    );
}

#[test]
fn partition_nodes_are_the_partitions_bytes_ubuntu() {
    partition_nodes(UBUNTU, "t2.micro", "xvda1", "xvdf", "xvdf1");
}

#[test]
fn partition_nodes_are_the_partitions_bytes_al2023() {
    partition_nodes(AL2023, "t3.micro", "nvme0n1p1", "nvme1n1", "nvme1n1p1");
}

/// A snapshot of the root volume of an instance whose shell is open is
/// taken at once (the guest's FUSE server commits what was written and
/// holds still while the copy is made, as fsfreeze does before an EBS
/// snapshot) and holds what the guest wrote; the guest goes on afterwards.
/// A host writer of that image gives up after the lock's bounded wait,
/// naming the shell whose guest holds it.
#[test]
fn snapshot_of_a_volume_in_use_by_an_open_shell() {
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let root = cloud.ok(&["describe-volumes"])["Volumes"][0]["VolumeId"]
        .as_str()
        .unwrap()
        .to_string();
    cloud.advance("30s");
    let mut s = start_shell(&cloud, &id);
    s.wait_for("ubuntu@ip-172-31-", 60);
    s.run("echo kept-by-the-snapshot > ~/note");
    let t0 = Instant::now();
    let snap = cloud.ok(&["create-snapshot", "--volume-id", &root])["SnapshotId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "create-snapshot waited {:?} for the shell",
        t0.elapsed()
    );
    let o = s.run("echo after > ~/after && cat ~/note ~/after");
    assert!(o.contains("kept-by-the-snapshot\nafter\n"), "{o}");
    let img = cloud.image_of(&root);
    let o = run(cloud
        .cmd("image")
        .env("EBSIM_LOCK_WAIT", "0.3")
        .args(["mkdir", &format!("{}@1:/x", img.display())]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(": in use by process ")
            && e.contains(&format!("ebsim shell {id})"))
            && e.ends_with("gave up after waiting 0.3 s for it\n"),
        "{e}"
    );
    s.type_line("exit");
    s.wait_exit(60);
    cloud.advance("10m");
    let vol = cloud.volume(&["--snapshot-id", &snap]);
    let copy = format!("{}@1:/home/ubuntu/", cloud.image_of(&vol).display());
    let o = run(ebsim("image").args(["cat", &format!("{copy}note")]));
    assert_eq!(stdout(&o), "kept-by-the-snapshot\n", "{}", stderr(&o));
    let o = run(ebsim("image").args(["ls", &copy]));
    assert!(!stdout(&o).contains("after"), "{}", stdout(&o));
}

/// A second session of a running instance (`ebsim exec` while `ebsim
/// shell` is open, as a second ssh login is) joins the running guest: the
/// same filesystems, hostname and processes, the command's own exit code;
/// and the guest stays up after the first session ends for as long as a
/// joined one runs.
#[test]
fn a_second_session_joins_the_running_guest() {
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    cloud.advance("30s");
    let mut s = start_shell(&cloud, &id);
    s.wait_for("ubuntu@ip-172-31-", 60);
    let shown = s.run("echo from-the-shell > ~/a; hostname");
    let o = guest_exec(
        &cloud,
        &id,
        "cat ~/a; hostname; echo from-exec > ~/b; ps -e -o comm= | grep -c '^bash$'",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&o));
    assert_eq!(lines[0], "from-the-shell");
    assert!(
        lines[1].starts_with("ip-172-31-") && shown.contains(&format!("\n{}\n", lines[1])),
        "{lines:?} {shown}"
    );
    // The shell's bash and this command's.
    assert!(lines[2].parse::<u32>().unwrap() >= 2, "{lines:?}");
    assert!(s.run("cat ~/b").contains("\nfrom-exec\n"));
    assert_eq!(guest_exec(&cloud, &id, "exit 7").status.code(), Some(7));
    let long = cloud
        .cmd("exec")
        .args([&id, "--", "bash", "-c", "sleep 2; cat ~/a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    s.type_line("exit");
    let o = long.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "from-the-shell\n");
    s.wait_exit(60);
    assert!(
        s.text().contains(&format!(
            "ebsim: {id} stays up while its other sessions run"
        )),
        "{}",
        s.text()
    );
    // Once every session has ended, the next one builds the guest again.
    let o = guest_exec(&cloud, &id, "cat ~/a ~/b");
    assert_eq!(stdout(&o), "from-the-shell\nfrom-exec\n", "{}", stderr(&o));
}

/// ext3 made and written inside the guest: mkfs.ext3 on a whole volume,
/// mounted through its server, files written by the guest's own programs
/// (block-mapped, a 20 MiB one through its double indirect block), the
/// mount shown as ext3; afterwards e2fsck finds the image clean and the
/// big file's bytes are what the guest hashed.
#[test]
fn ext3_made_and_written_in_the_guest() {
    if !require_tools(&["e2fsck", "debugfs"]) {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(UBUNTU, "t2.micro");
    let data = cloud.volume(&["--size", "1"]);
    let img = cloud.image_of(&data);
    cloud.attach_and_settle(&data, &id, "/dev/sdf");
    let o = guest_exec(
        &cloud,
        &id,
        "set -e; sudo mkfs.ext3 -q /dev/xvdf; sudo mkdir -p /data; sudo mount /dev/xvdf /data; \
         seq 1 100000 | sudo tee /data/seq >/dev/null; sudo mkdir /data/d; \
         for i in $(seq 1 40); do echo $i | sudo tee /data/d/f$i >/dev/null; done; \
         sudo dd if=/dev/urandom of=/data/big bs=1M count=20 status=none; \
         sha256sum /data/big | cut -d' ' -f1; mount | grep xvdf; df -T /data | tail -1 | tr -s ' ' | cut -d' ' -f2; \
         sudo umount /data",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[1], "/dev/xvdf on /data type ext3 (rw,relatime)",
        "{out}"
    );
    assert_eq!(lines[2], "ext3", "{out}");
    let fsck = run(Command::new("e2fsck").arg("-fn").arg(&img));
    assert!(fsck.status.success(), "{}{}", stdout(&fsck), stderr(&fsck));
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big");
    let dump = run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump /big {}", big.display()))
        .arg(&img));
    assert!(dump.status.success(), "{}", stderr(&dump));
    let bytes = std::fs::read(&big).unwrap();
    assert_eq!(bytes.len(), 20 << 20);
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(lines[0], hash);
    let stat = run(Command::new("debugfs").args(["-R", "stat /big"]).arg(&img));
    assert!(stdout(&stat).contains("(DIND)"), "{}", stdout(&stat));
}
