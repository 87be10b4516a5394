//! `mkswap` (util-linux 2.38.1) against the real one: on copies of the
//! same image, ebsim's and the real tool's results are byte-identical and
//! so are their stdout, stderr (the file name aside) and exit codes; the
//! real blkid reads ebsim's header. Inside an instance: `mkswap
//! /dev/xvdf2`, the swap in `lsblk -f`, a mounted partition refused, and
//! `mount` of a swap partition refused as the kernel does.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;

use common::{ebsim, require_tools, run, stderr, stdout};
use ec2_util::Cloud;
use std::path::Path;
use std::process::Command;

const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";
const M: u64 = 1 << 20;

fn real(name: &str) -> Command {
    let mut c = Command::new(name);
    let mut p = std::env::var_os("PATH").unwrap_or_default();
    p.push(":/usr/sbin:/sbin");
    c.env("PATH", p);
    c
}

fn ok(c: &mut Command) {
    let o = run(c);
    assert!(o.status.success(), "{c:?}: {}{}", stdout(&o), stderr(&o));
}

/// A sparse file of `len` bytes, mode 0600, prepared by `prep`.
fn image(path: &Path, len: u64, prep: &dyn Fn(&Path)) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(f);
    prep(path);
}

struct Result3 {
    out: String,
    err: String,
    code: i32,
}

fn result(c: &mut Command, name: &Path) -> Result3 {
    let o = run(c);
    let n = name.display().to_string();
    Result3 {
        out: stdout(&o).replace(&n, "IMG"),
        err: stderr(&o).replace(&n, "IMG"),
        code: o.status.code().unwrap_or(-1),
    }
}

/// Runs the real mkswap and ebsim's with `args` on two copies of one
/// prepared image; everything must agree. Returns ebsim's image.
fn differential(
    d: &Path,
    case: &str,
    len: u64,
    prep: &dyn Fn(&Path),
    args: &[&str],
) -> std::path::PathBuf {
    let a = d.join(format!("{case}-real.img"));
    let b = d.join(format!("{case}-ebsim.img"));
    image(&a, len, prep);
    common::copy_image(&a, &b);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = result(real("mkswap").args(args).arg(&a), &a);
    let e = result(ebsim("mkswap").args(args).arg(&b), &b);
    assert_eq!(e.code, r.code, "{case}: exit code; stderr {}", e.err);
    assert_eq!(e.out, r.out, "{case}: stdout");
    assert_eq!(e.err, r.err, "{case}: stderr");
    assert!(ec2_util::same_bytes(&a, &b), "{case}: the images differ");
    b
}

#[test]
fn mkswap_matches_the_real_one() {
    if !require_tools(&[
        "mkswap",
        "mkfs.ext4",
        "mkfs.xfs",
        "mkfs.vfat",
        "sfdisk",
        "blkid",
    ]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let none = |_: &Path| {};
    let u = ["-U", UUID];
    // Plain, with a label, a label cut at 15 bytes, the UUID keywords.
    differential(
        d.path(),
        "plain",
        64 * M,
        &none,
        &["-U", UUID, "-L", "myswap"],
    );
    differential(
        d.path(),
        "long-label",
        64 * M,
        &none,
        &["-U", UUID, "-L", "0123456789abcdefghij"],
    );
    differential(d.path(), "clear", 64 * M, &none, &["-U", "clear"]);
    differential(d.path(), "quiet", 64 * M, &none, &["-q", "-U", UUID]);
    // Sizes: ten pages is the least; a block count; past the device.
    differential(d.path(), "ten-pages", 40 * 1024, &none, &u);
    differential(d.path(), "nine-pages", 36 * 1024 + 1000, &none, &u);
    differential(
        d.path(),
        "count",
        64 * M,
        &none,
        &["-U", UUID, "-L", "x", "--", "40000"],
    );
    differential(
        d.path(),
        "count-too-big",
        M,
        &none,
        &["-U", UUID, "--", "4000"],
    );
    differential(
        d.path(),
        "count-forced",
        M,
        &none,
        &["-f", "-U", UUID, "--", "4000"],
    );
    differential(d.path(), "count-bad", M, &none, &["-U", UUID, "--", "0x30"]);
    // Page sizes.
    differential(
        d.path(),
        "page-8k",
        64 * M,
        &none,
        &["-U", UUID, "-p", "8192"],
    );
    differential(
        d.path(),
        "page-bad",
        64 * M,
        &none,
        &["-U", UUID, "-p", "1024"],
    );
    differential(
        d.path(),
        "page-text",
        64 * M,
        &none,
        &["-U", UUID, "-p", "x"],
    );
    // Options refused.
    differential(d.path(), "version-0", M, &none, &["-v", "0"]);
    differential(d.path(), "check-quiet", M, &none, &["-c", "-q"]);
    differential(d.path(), "check-file", M, &none, &["-c", "-U", UUID]);
    differential(d.path(), "bad-uuid", M, &none, &["-U", "nope"]);
    differential(d.path(), "bad-option", M, &none, &["-x"]);
    // Over what was there: old signatures are wiped, a table keeps the
    // boot sectors unless forced.
    let ext4 = |p: &Path| ok(real("mkfs.ext4").args(["-q", "-F"]).arg(p));
    let xfs = |p: &Path| ok(real("mkfs.xfs").args(["-q", "-f"]).arg(p));
    let vfat = |p: &Path| ok(real("mkfs.vfat").arg(p));
    let swap = |p: &Path| ok(real("mkswap").args(["-q"]).arg(p));
    let gpt = |p: &Path| {
        let mut c = real("sfdisk");
        c.args(["-q"]).arg(p).stdin(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        ch.stdin
            .take()
            .unwrap()
            .write_all(b"label: gpt\n,,L\n")
            .unwrap();
        assert!(ch.wait().unwrap().success());
    };
    let dos = |p: &Path| {
        let mut c = real("sfdisk");
        c.args(["-q"]).arg(p).stdin(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        ch.stdin.take().unwrap().write_all(b"label: dos\n").unwrap();
        assert!(ch.wait().unwrap().success());
    };
    differential(d.path(), "over-ext4", 300 * M, &ext4, &u);
    differential(d.path(), "over-xfs", 300 * M, &xfs, &u);
    differential(d.path(), "over-vfat", 64 * M, &vfat, &u);
    differential(d.path(), "over-swap", 64 * M, &swap, &u);
    differential(d.path(), "over-gpt", 64 * M, &gpt, &u);
    differential(
        d.path(),
        "over-gpt-forced",
        64 * M,
        &gpt,
        &["-f", "-U", UUID],
    );
    differential(d.path(), "over-empty-dos", 64 * M, &dos, &u);

    // The real blkid reads ebsim's swap area.
    let b = differential(d.path(), "blkid", 64 * M, &none, &["-U", UUID, "-L", "sw"]);
    let o = run(real("blkid").args(["-p", "-o", "export"]).arg(&b));
    let text = stdout(&o);
    for want in [
        "TYPE=swap",
        &format!("UUID={UUID}"),
        "LABEL=sw",
        "VERSION=1",
    ] {
        assert!(text.lines().any(|l| l == want), "blkid: {text}");
    }
}

#[test]
fn mkswap_inside_an_instance() {
    if !require_tools(&["blkid"]) {
        return;
    }
    let c = Cloud::on_tmpfs();
    let id = c.instance("ami-080e1f13689e07408", "t2.micro");
    let v = c.volume(&["--size", "2"]);
    c.ok(&[
        "attach-volume",
        "--volume-id",
        &v,
        "--instance-id",
        &id,
        "--device",
        "/dev/sdf",
    ]);
    c.advance("5s");
    let go = |applet: &str, args: &[&str], stdin: Option<&str>| {
        let mut cmd = c.cmd(applet);
        cmd.env("EBSIM_INSTANCE", &id).args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = ch.stdin.take().unwrap();
            i.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        }
        let o = ch.wait_with_output().unwrap();
        (stdout(&o), stderr(&o), o.status.code().unwrap_or(-1))
    };
    let (_, e, code) = go(
        "sfdisk",
        &["-q", "/dev/xvdf"],
        Some(
            "label: gpt\n/dev/xvdf1 : start=2048, size=2097152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n/dev/xvdf2 : start=2099200, size=2095071, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n",
        ),
    );
    assert_eq!(code, 0, "{e}");
    let (_, e, code) = go("mkfs.ext4", &["-q", "/dev/xvdf1"], None);
    assert_eq!(code, 0, "{e}");
    let (_, e, code) = go("mount", &["/dev/xvdf1", "/data"], None);
    assert_eq!(code, 0, "{e}");

    let (o, e, code) = go("mkswap", &["-U", UUID, "-L", "sw", "/dev/xvdf2"], None);
    assert_eq!(
        (o.as_str(), e.as_str(), code),
        (
            "Setting up swapspace version 1, size = 1023 MiB (1072668672 bytes)\nLABEL=sw, UUID=01234567-89ab-cdef-0123-456789abcdef\n",
            "",
            0,
        )
    );
    // The bytes: the real blkid on the partition's range.
    let img = c.image_of(&v);
    let part = tempfile::NamedTempFile::new().unwrap();
    ok(Command::new("dd")
        .arg(format!("if={}", img.display()))
        .arg(format!("of={}", part.path().display()))
        .args(["bs=1M", "skip=1025", "count=1", "status=none"]));
    let b = run(real("blkid").args(["-p", "-o", "export"]).arg(part.path()));
    let t = stdout(&b);
    assert!(
        t.contains("TYPE=swap") && t.contains(&format!("UUID={UUID}")),
        "{t}"
    );

    let (o, _, _) = go("lsblk", &["-f", "/dev/xvdf"], None);
    let line = o
        .lines()
        .find(|l| l.contains("xvdf2"))
        .unwrap_or("")
        .to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words, ["└─xvdf2", "swap", "1", "sw", UUID], "{o}");

    // A mounted partition is refused; a swap partition does not mount.
    let (o, e, code) = go("mkswap", &["/dev/xvdf1"], None);
    assert_eq!(
        (o.as_str(), e.as_str(), code),
        (
            "",
            "mkswap: error: /dev/xvdf1 is mounted; will not make swapspace\n",
            1
        )
    );
    let (_, e, code) = go("mount", &["/dev/xvdf2", "/mnt"], None);
    assert!(e.contains("unknown filesystem type 'swap'"), "{e}");
    assert_eq!(code, 32);
    // The whole disk, with a partition mounted: the exclusive open fails.
    let (_, e, code) = go("mkswap", &["/dev/xvdf"], None);
    assert_eq!(
        (e.as_str(), code),
        (
            "mkswap: cannot open /dev/xvdf: Device or resource busy\n",
            1
        )
    );
}
