//! The command line's own behaviour: write errors reported as coreutils and
//! util-linux report them (and a closed pipe kept quiet), ebsim's own
//! commands' help, completions and man page.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// `cmd` with stdout on /dev/full: (stderr, exit code).
fn to_full(cmd: &mut Command) -> (String, i32) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let o = run(cmd.stdout(full));
    (stderr(&o), o.status.code().unwrap_or(-1))
}

#[test]
fn write_errors_are_reported_like_coreutils() {
    let (e, code) = to_full(Command::new(ebsim_bin()).arg("--list"));
    assert_eq!(
        (e.as_str(), code),
        ("ebsim: write error: No space left on device\n", 1)
    );
    let (e, code) = to_full(ebsim("clock").arg("--help"));
    assert_eq!(
        (e.as_str(), code),
        ("ebsim: write error: No space left on device\n", 1)
    );
    // Output larger than the stdio buffer (4096 bytes on /dev/full) failed
    // at an earlier flush: the message has no reason.
    let home = tempfile::tempdir().expect("tempdir");
    let (e, code) = to_full(
        ebsim("ec2")
            .arg("describe-images")
            .env("EBSIM_HOME", home.path()),
    );
    assert_eq!((e.as_str(), code), ("ebsim: write error\n", 1));
    // The guest's tools, against the real ones: coreutils' df and
    // util-linux's mount and umount report and fail (their help is shorter
    // than the buffer, as ebsim's is); xfsprogs does not look.
    if !require_tools(&["df", "lsblk", "mount", "umount", "mkfs.xfs"]) {
        return;
    }
    for (tool, args) in [
        ("df", &["--help"][..]),
        ("mount", &["--help"]),
        ("umount", &["--help"]),
        ("mkfs.xfs", &["-V"]),
    ] {
        let real = to_full(Command::new(tool).args(args));
        let ours = to_full(ebsim(tool).args(args));
        assert_eq!(ours, real, "{tool} {args:?} >/dev/full");
    }
    // lsblk's help (4110 bytes) outgrows the buffer: the short form.
    let (e, code) = to_full(Command::new("lsblk").arg("--help"));
    assert_eq!((e.as_str(), code), ("lsblk: write error\n", 1));
    let (e, code) = to_full(ebsim("lsblk").arg("--help"));
    assert_eq!(
        (e.as_str(), code),
        ("lsblk: write error: No space left on device\n", 1)
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // A pipe whose reading end is closed before ebsim starts: every write
    // fails with EPIPE (Rust ignores SIGPIPE).
    let (r, w) = nix::unistd::pipe().expect("pipe");
    drop(r);
    for args in [&["--list"][..], &["df", "--help"], &["clock", "--help"]] {
        let o = run(Command::new(ebsim_bin())
            .args(args)
            .stdout(Stdio::from(w.try_clone().expect("dup"))));
        assert_eq!(
            (stderr(&o).as_str(), o.status.code()),
            ("", Some(0)),
            "{args:?}"
        );
    }
}
