//! The command line's own behaviour: write errors reported as coreutils and
//! util-linux report them (and a closed pipe kept quiet), ebsim's own
//! commands (clap) with their completions and man page, and the applets
//! passed through untouched.

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

#[test]
fn own_commands_completions_and_man_page() {
    let o = run(Command::new(ebsim_bin()).arg("--help"));
    assert_eq!(o.status.code(), Some(0));
    for cmd in ["demo", "clock", "shell", "exec", "--list"] {
        assert!(stdout(&o).contains(cmd), "{cmd}: {}", stdout(&o));
    }
    // Without arguments: the help on stderr, status 2.
    let o = run(&mut Command::new(ebsim_bin()));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage: ebsim APPLET"), "{}", stderr(&o));
    let o = run(ebsim("nosuchapplet").arg("-x"));
    assert_eq!(
        (stderr(&o).as_str(), o.status.code()),
        (
            "ebsim: unknown applet 'nosuchapplet' (try 'ebsim --list')\n",
            Some(2)
        )
    );
    let o = run(ebsim("exec").arg("--help"));
    assert!(
        stdout(&o).contains("exec [OPTIONS] <INSTANCE> <COMMAND>..."),
        "{}",
        stdout(&o)
    );
    // Completions know the subcommands and their options; bash accepts them.
    let o = run(ebsim("completions").arg("bash"));
    let script = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    for word in ["demo", "clock", "--nitro", "--transcript", "advance"] {
        assert!(script.contains(word), "{word}");
    }
    if require_tools(&["bash"]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("ebsim.bash");
        std::fs::write(&f, &script).expect("write");
        let o = run(Command::new("bash").arg("-n").arg(&f));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = run(ebsim("completions").arg("zsh"));
    assert!(stdout(&o).starts_with("#compdef ebsim"), "{}", stdout(&o));
    // The man page is roff with the commands in it; man(1) renders it.
    let o = run(&mut ebsim("manpage"));
    let page = stdout(&o);
    assert!(page.contains(".TH ebsim 1"), "{page}");
    assert!(page.contains("demo") && page.contains("clock"), "{page}");
    // An applet's own --help is the applet's, not clap's.
    let o = run(ebsim("growpart").arg("--help"));
    assert!(
        stdout(&o).starts_with("growpart disk partition\n"),
        "{}",
        stdout(&o)
    );
}

/// The file commands' usage errors, which come before any instance is
/// needed, against the real coreutils and util-linux on this machine (C
/// locale): the same stderr, stdout and exit status.
#[test]
fn file_commands_usage_errors_match_the_real_tools() {
    if !require_tools(&["fallocate", "truncate", "sha256sum"]) {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let cases: &[&[&str]] = &[
        &["mkdir"],
        &["mkdir", "-m", "zzz", "d"],
        &["mkdir", "--bogus"],
        &["rm"],
        &["stat"],
        &["cat", "--bogus"],
        &["cp"],
        &["cp", "a"],
        &["cp", "--sparse=bogus", "a", "b"],
        &["mv"],
        &["mv", "a"],
        &["du", "-s", "-a"],
        &["fallocate"],
        &["fallocate", "-l", "0", "f"],
        &["fallocate", "-l", "1", "f", "g"],
        &["fallocate", "-l", "x", "f"],
        &["ls", "--color=bad"],
        &["sha256sum", "--bogus"],
        &["tee", "--bogus"],
        &["touch"],
        &["truncate"],
        &["truncate", "-s", "x", "f"],
        &["truncate", "-s", "/0", "f"],
        &["truncate", "--io-blocks", "f"],
        &["dd", "bs=x"],
    ];
    for argv in cases {
        let real = run(Command::new(argv[0])
            .args(&argv[1..])
            .env("LC_ALL", "C")
            .current_dir(home.path())
            .stdin(Stdio::null()));
        let ours = run(ebsim(argv[0])
            .args(&argv[1..])
            .env("LC_ALL", "C")
            .env("EBSIM_HOME", home.path())
            .stdin(Stdio::null()));
        assert_eq!(
            (stderr(&ours), stdout(&ours), ours.status.code()),
            (stderr(&real), stdout(&real), real.status.code()),
            "{argv:?}"
        );
    }
    // Nothing was made by either.
    let left: Vec<_> = std::fs::read_dir(home.path())
        .expect("read home")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        left.iter().all(|n| n == "state.json" || n == "state.lock"),
        "{left:?}"
    );
}
