//! `ebsim shell` driven through a pseudo-terminal: a scripted session types
//! the guest half of the runbook at the prompt, as a user would, and reads
//! the screen.

mod common;

use common::*;
use std::process::Command;

const UBUNTU: &str = "ami-080e1f13689e07408";

fn ebsim_cli(home: &std::path::Path, args: &[&str]) -> String {
    let o = run(Command::new(ebsim_bin())
        .args(args)
        .env("EBSIM_HOME", home)
        .env("EBSIM_CLOCK", "manual"));
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn a_typed_runbook_session_in_a_pty() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let id = ebsim_cli(
        h,
        &[
            "aws",
            "ec2",
            "run-instances",
            "--image-id",
            UBUNTU,
            "--instance-type",
            "t2.micro",
            "--query",
            "Instances[0].InstanceId",
            "--output",
            "text",
        ],
    );
    ebsim_cli(
        h,
        &[
            "aws",
            "ec2",
            "wait",
            "instance-running",
            "--instance-ids",
            &id,
        ],
    );
    let root = ebsim_cli(
        h,
        &[
            "aws",
            "ec2",
            "describe-volumes",
            "--query",
            "Volumes[0].VolumeId",
            "--output",
            "text",
        ],
    );
    ebsim_cli(
        h,
        &[
            "aws",
            "ec2",
            "modify-volume",
            "--volume-id",
            &root,
            "--size",
            "16",
        ],
    );
    ebsim_cli(h, &["clock", "advance", "30s"]);

    let user_home = tempfile::tempdir().unwrap();
    let mut s = pty::Session::spawn(
        Command::new(ebsim_bin())
            .args(["shell", "--host-mode"])
            .env("EBSIM_HOME", h)
            .env("EBSIM_CLOCK", "manual")
            .env("SHELL", "/bin/bash")
            .env("HOME", user_home.path())
            .env("TERM", "dumb")
            .env("LANG", "C.UTF-8")
            .current_dir(user_home.path()),
    );
    let prompt = format!("[ubuntu@{id} ");
    s.wait_for_count(&prompt, 1, 60);
    let commands = [
        "lsblk",
        "df -hT",
        "sudo growpart /dev/xvda 1",
        "lsblk /dev/xvda1",
        "echo $EBSIM_INSTANCE",
    ];
    for (i, c) in commands.iter().enumerate() {
        s.type_line(c);
        s.wait_for_count(&prompt, i + 2, 60);
    }
    s.type_line("exit");
    let status = s.child.wait().unwrap();
    assert!(status.success());
    let screen = s.text();
    for want in [
        // The snaps' loop devices, before the disks (by MAJ:MIN).
        "NAME     MAJ:MIN RM  SIZE RO TYPE MOUNTPOINTS\n\
         loop0      7:0    0 24.9M  1 loop /snap/amazon-ssm-agent/7628\n",
        "loop4      7:4    0 40.4M  1 loop /snap/snapd/20671\nxvda     202:0    0   16G  0 disk \n",
        "\u{251c}\u{2500}xvda1  202:1    0  7.9G  0 part /\n",
        // A t2.micro's rows as on the real AMI: the tmpfs mounts sized
        // from its memory, the EFI system partition at /boot/efi.
        "/dev/root      ext4   7.6G  1.5G  6.1G  20% /\n\
         tmpfs          tmpfs  484M     0  484M   0% /dev/shm\n\
         tmpfs          tmpfs  194M  868K  193M   1% /run\n\
         tmpfs          tmpfs  5.0M     0  5.0M   0% /run/lock\n\
         /dev/xvda15    vfat   105M  6.1M   99M   6% /boot/efi\n\
         tmpfs          tmpfs   97M  4.0K   97M   1% /run/user/1000\n",
        // Ubuntu's growpart 0.32 counts ends one past the partition, as
        // real Ubuntu instances print (`end=16777183` on 8 GiB).
        "CHANGED: partition=1 start=227328 old: size=16549855 end=16777183 new: size=33327071 end=33554399\n",
        "xvda1 202:1    0 15.9G  0 part /\n",
    ] {
        assert!(
            screen.contains(want),
            "missing {want:?} in the session:\n{screen}"
        );
    }
    assert!(
        screen.contains(&format!("\n{id}\n")),
        "EBSIM_INSTANCE: {screen}"
    );
}
