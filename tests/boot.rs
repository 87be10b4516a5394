//! Instances that behave like their AMIs (issue 13): ssh's refusal of an
//! instance that is not running, cloud-init's growpart and resizefs at
//! every boot, a swapped root volume, the API device names each AMI's udev
//! rules create.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;

use common::{stderr, stdout};
use ec2_util::Cloud;

const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2023: &str = "ami-051f8a213df8bc089";

fn exec(c: &Cloud, id: &str, cmd: &[&str]) -> (String, String, i32) {
    let o = c
        .cmd("exec")
        .arg(id)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run ebsim exec");
    (stdout(&o), stderr(&o), o.status.code().unwrap_or(-1))
}

fn private_ip(c: &Cloud, id: &str) -> String {
    let d = c.ok(&["describe-instances", "--instance-ids", id]);
    d["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `exec` and `shell` reach only a running instance; otherwise ssh's own
/// line (refused while the host boots or shuts down, timed out when it is
/// off), the state on a second line, status 255, and nothing run.
#[test]
fn shell_and_exec_refuse_an_instance_that_is_not_running() {
    let c = Cloud::new();
    let r = c.ok(&[
        "run-instances",
        "--image-id",
        UBUNTU,
        "--instance-type",
        "t2.micro",
    ]);
    let id = r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = private_ip(&c, &id);
    let line = |why: &str, state: &str| {
        format!(
            "ssh: connect to host {ip} port 22: {why}\n(ebsim: instance {id} is {state}; commands run only while it is running)\n"
        )
    };
    // pending
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (String::new(), line("Connection refused", "pending"), 255)
    );
    let o = c.cmd("shell").arg(&id).output().unwrap();
    assert_eq!(stderr(&o), line("Connection refused", "pending"));
    assert_eq!(o.status.code(), Some(255));
    c.ok(&["wait", "instance-running", "--instance-ids", &id]);
    let (out, _, code) = exec(&c, &id, &["lsblk", "-o", "NAME"]);
    assert_eq!(code, 0);
    assert!(out.contains("xvda1"), "{out}");
    // stopping, stopped
    c.ok(&["stop-instances", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (String::new(), line("Connection refused", "stopping"), 255)
    );
    c.ok(&["wait", "instance-stopped", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["df"]),
        (String::new(), line("Connection timed out", "stopped"), 255)
    );
    // shutting-down, terminated
    c.ok(&["terminate-instances", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (
            String::new(),
            line("Connection refused", "shutting-down"),
            255
        )
    );
    c.ok(&["wait", "instance-terminated", "--instance-ids", &id]);
    assert_eq!(
        exec(&c, &id, &["lsblk"]),
        (
            String::new(),
            line("Connection timed out", "terminated"),
            255
        )
    );
}
