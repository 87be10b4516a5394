//! The file commands inside an instance against coreutils 9.1 and
//! util-linux 2.38 on the kernel (see tests/guest_files_util): each case
//! runs the real command on a loop mount and ebsim's applet in the
//! instance, from the same image, and compares stdout, stderr, the exit
//! code and the tree after it; both images must pass `e2fsck -fn`.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;
mod guest_files_util;

use guest_files_util::{Fs, Rig, Who};
use std::process::Command;

/// The tree every case starts from (run by sh as root in the mount).
const FIXTURE: &str = r#"set -e
mkdir -p dir/sub/deep emptydir 'sp ace' private home tmp
echo hello > dir/a.txt
yes 'line of text' | head -c 5000 > dir/b.txt
yes abcdefgh | head -c 1048576 > big.bin
truncate -s 10M sparse
printf data | dd of=sparse bs=1 seek=5242880 conv=notrunc status=none
ln -s dir/a.txt link
ln -s nowhere dangling
ln dir/a.txt hard
echo secret > private/s
chmod 700 private
echo mine > home/m
mkdir home/sub
chown -R 1000:1000 home
chmod 1777 tmp
touch tmp/rootfile
echo ro > readonly
chmod 444 readonly
echo x > 'sp ace/f'
find . -exec touch -h -d '2020-01-02 03:04:05' {} +
"#;

/// The rig of the ext4 cases. No test here holds `common::mount_lock()`
/// itself: each kernel mount takes it for as long as it exists (see
/// `MountAt`), so ebsim's side of one test runs beside another's mount.
fn rig() -> Option<Rig> {
    if !common::require_tools(&["e2fsck", "setpriv", "losetup"]) || !common::require_mount() {
        return None;
    }
    Some(Rig::new(1, FIXTURE))
}

#[test]
fn reading_commands() {
    let Some(r) = rig() else { return };
    let m = r.m();
    let m = m.as_str();
    let cases: &[(Who, &[&str])] = &[
        (Who::Root, &["cat", "dir/a.txt"]),
        (Who::Root, &["cat", "nope"]),
        (Who::Root, &["cat", "dir"]),
        (Who::Root, &["cat", "dir/a.txt", "nope", "link", "sp ace/f"]),
        (Who::Root, &["cat", "-n", "dir/b.txt"]),
        (Who::Root, &["cat", "-A", "dir/a.txt"]),
        (Who::User, &["cat", "private/s"]),
        (Who::User, &["cat", "readonly"]),
        (Who::Root, &["cat", "dangling"]),
        (Who::Root, &["cat", "dir/a.txt/"]),
        (Who::Root, &["cat", "-z"]),
        (Who::Root, &["ls"]),
        (Who::Root, &["ls", "-l"]),
        (Who::Root, &["ls", "-la", "dir"]),
        (Who::Root, &["ls", "-lh"]),
        (Who::Root, &["ls", "-1", "dir", "sp ace", "link"]),
        (Who::Root, &["ls", "-R", "dir"]),
        (Who::Root, &["ls", "-d", "dir", "emptydir"]),
        (Who::Root, &["ls", "-li", "dir/a.txt", "hard"]),
        (Who::Root, &["ls", "-ls", "."]),
        (Who::Root, &["ls", "nope", "dir"]),
        (Who::User, &["ls", "private"]),
        (Who::User, &["ls", "-l", "private/s"]),
        (Who::Root, &["ls", "-A", "dir"]),
        (Who::Root, &["ls", "-lS"]),
        (Who::Root, &["ls", "-lt", "--color=never", "dir"]),
        (Who::Root, &["ls", "-lR", "home"]),
        (Who::Root, &["ls", "-l", m]),
        (Who::Root, &["ls", "--color=bogus"]),
        (Who::Root, &["ls", "-lF", "dir", "link"]),
        (Who::Root, &["ls", "-U"]),
        (Who::Root, &["ls", "-AU", "dir", "home"]),
    ];
    for (who, argv) in cases {
        r.same(*who, m, argv, None);
    }
}

/// The tree the ls option cases list: names for every sort key, sizes,
/// times (mtime, atime and ctime differ), owners, every file type,
/// names that need quoting, backups and hidden files.
const LS_FIXTURE: &str = r#"set -e
mkdir -p d/sub/deep zdir 'sp ace'
yes abc | head -c 20000 > big.txt
echo hi > a.txt
echo hello > b.c
head -c 3000 /dev/urandom > mid.bin
touch file1 file2 file10 file1.2.tar.gz file1.10.tar.gz 'v1.0~rc1' v1.0 v1.0.1 .hidden 'back~' '.hb~' 'q"uote' 'x@y' 'st*r' 'col:on' zdir/in d/sub/f
printf '#!/bin/sh\n' > run.sh
chmod 755 run.sh
mkfifo pipe
mknod cdev c 1 3
ln -s zdir lnkdir
ln -s a.txt lnk
ln -s gone dangling
chown 1000:1000 b.c file10 zdir
chown 1000:0 a.txt
find . -exec touch -h -d '2020-01-02 03:04:05' {} +
touch -m -d '2021-06-07 08:09:10.123456789' big.txt
touch -m -d '2022-01-01 00:00:00' file10 d
touch -a -d '2019-03-04 05:06:07' a.txt
touch -a -d '2023-03-04 05:06:07' mid.bin
"#;

/// ls's options (coreutils 9.1) against the real ls on the same tree:
/// block sizes, every sort key, widths and tab sizes, time styles, the
/// long format's columns, indicators, quoting styles, ignore patterns,
/// links on the command line, and the wrong arguments.
#[test]
fn ls_options() {
    if !common::require_tools(&["e2fsck", "setpriv", "losetup", "mknod", "mkfifo"])
        || !common::require_mount()
    {
        return;
    }
    let r = Rig::new(1, LS_FIXTURE);
    let m = r.m();
    let m = m.as_str();
    ls_cases(&r, m, &[]);
}

/// The same cases (the ones that read the volume) on XFS.
#[test]
fn ls_options_on_xfs() {
    if !common::require_tools(&["xfs_repair", "setpriv", "losetup", "mknod", "mkfifo"])
        || !common::require_mount()
    {
        return;
    }
    let r = Rig::on(Fs::Xfs, 1, LS_FIXTURE);
    let m = r.m();
    let m = m.as_str();
    // "." and ".." come first from XFS's readdir (ext4's one-block and
    // indexed directories return them in hash order, which ebsim's ls
    // does not place).
    ls_cases(&r, m, &[&["ls", "-Ua"], &["ls", "-f"]]);
}

/// Every case of [`LS_CASES`] on both sides; the ones that differ are
/// reported together.
fn ls_cases(r: &Rig, m: &str, extra: &[&[&str]]) {
    let mut bad = Vec::new();
    for argv in LS_CASES.iter().chain(extra) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.same(Who::Root, m, argv, None);
        }));
        if run.is_err() {
            bad.push(format!("{argv:?}"));
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

const LS_CASES: &[&[&str]] = &[
    // Block sizes: the block counts (-s, total) and the sizes (-l).
    &["ls", "-l", "--block-size=K"],
    &["ls", "-ls", "--block-size=1K"],
    &["ls", "-s", "--block-size=M"],
    &["ls", "-l", "--block-size=1000"],
    &["ls", "-ls", "--block-size=KB"],
    &["ls", "-l", "--block-size=KiB"],
    &["ls", "-ls", "--block-size=human-readable"],
    &["ls", "-ls", "--block-size=si"],
    &["ls", "-lh"],
    &["ls", "-ls", "--si"],
    &["ls", "-sk"],
    &["ls", "-lsk"],
    &["ls", "-lsh", "-k"],
    &["ls", "-s", "-h", "--block-size=512"],
    // Sorting.
    &["ls", "--sort=none"],
    &["ls", "--sort=size"],
    &["ls", "-l", "--sort=time"],
    &["ls", "--sort=version"],
    &["ls", "--sort=extension"],
    &["ls", "--sort=width"],
    &["ls", "--sort=s"],
    &["ls", "-U"],
    &["ls", "-UA"],
    &["ls", "-X"],
    &["ls", "-Xr"],
    &["ls", "-v"],
    &["ls", "-va"],
    &["ls", "-S"],
    &["ls", "-Sr"],
    &["ls", "-t"],
    &["ls", "-tr"],
    &["ls", "-c"],
    &["ls", "-u"],
    &["ls", "-lu"],
    &["ls", "-lc"],
    &["ls", "-lc", "--time-style=iso"],
    &["ls", "-ltc", "--full-time"],
    &["ls", "-ltu"],
    &["ls", "-l", "--time=atime", "-t"],
    &["ls", "-r"],
    &["ls", "--group-directories-first"],
    &["ls", "-l", "--group-directories-first", "-r"],
    &["ls", "-U", "--group-directories-first"],
    &["ls", "-St", "big.txt", "a.txt", "zdir", "d", "mid.bin"],
    // Layouts.
    &["ls", "-C"],
    &["ls", "-C", "-w", "40"],
    &["ls", "-x", "-w", "40"],
    &["ls", "-C", "--width=0"],
    &["ls", "-x", "-w", "0"],
    &["ls", "-C", "-w", "1"],
    &["ls", "-m"],
    &["ls", "-m", "-w", "30"],
    &["ls", "-m", "-w", "0"],
    &["ls", "-Cw", "30", "-T", "4"],
    &["ls", "-x", "-T0", "-w", "50"],
    &["ls", "-Csi", "-w", "70"],
    &["ls", "-xs", "--block-size=K", "-w", "60"],
    &["ls", "-mi"],
    &["ls", "--format=across", "-w", "60"],
    &["ls", "--format=commas"],
    &["ls", "--format=long"],
    &["ls", "--format=single-column", "-C"],
    &["ls", "-l", "-1"],
    &["ls", "-1", "-l"],
    &["ls", "-fA"],
    &["ls", "-lfA"],
    &["ls", "-flA"],
    &["ls", "-fsA"],
    // Times.
    &["ls", "-l", "--full-time"],
    &["ls", "--full-time", "-u"],
    &["ls", "-l", "--time-style=full-iso"],
    &["ls", "-l", "--time-style=long-iso"],
    &["ls", "-l", "--time-style=iso"],
    &["ls", "-l", "--time-style=locale"],
    &["ls", "-l", "--time-style=posix-long-iso"],
    &[
        "ls",
        "-l",
        "--time-style=+%Y/%m/%d %T %s %j %a %A %b %B %p %e %k %l %I %y %C %u %w %U %W %V %G %g %D %F %R %r %c %x %X %Z %z %% %N %3N %-d %_m %^b %#a",
    ],
    &["ls", "-l", "--time-style=+%F%n%R"],
    &["ls", "-lu", "--time-style=+old %F\nnew %H:%M:%S"],
    &["ls", "-l", "--time-style=+%Y\n%m"],
    &["ls", "--time-style=bad"],
    &["ls", "-l", "--time-style=long"],
    &["ls", "-l", "--time-style=f"],
    // The long format's columns.
    &["ls", "-ln"],
    &["ls", "-g"],
    &["ls", "-o"],
    &["ls", "-lG"],
    &["ls", "-gG"],
    &["ls", "-l", "--author"],
    &["ls", "-li"],
    &["ls", "-lis"],
    &["ls", "-l", "cdev", "a.txt"],
    // Indicators.
    &["ls", "-F"],
    &["ls", "-p"],
    &["ls", "-lF"],
    &["ls", "-lp"],
    &["ls", "--file-type"],
    &["ls", "-l", "--file-type"],
    &["ls", "--indicator-style=slash"],
    &["ls", "--indicator-style=classify", "-x"],
    &["ls", "--classify=always"],
    &["ls", "--classify=never"],
    &["ls", "-F", "--color=never"],
    // Quoting.
    &["ls", "-Q"],
    &["ls", "-b"],
    &["ls", "-N"],
    &["ls", "-bF"],
    &["ls", "-QF"],
    &["ls", "-lQ"],
    &["ls", "-q"],
    &["ls", "--quoting-style=c"],
    &["ls", "--quoting-style=escape"],
    &["ls", "--quoting-style=literal"],
    &["ls", "--quoting-style=shell-escape", "-C"],
    &["ls", "--quoting-style=shell-escape", "-l"],
    &["ls", "--quoting-style=shell-always"],
    &["ls", "--quoting-style=locale"],
    &["ls", "-Q", "-R", "sp ace"],
    // Ignoring.
    &["ls", "-I", "*.txt"],
    &["ls", "--ignore=file*"],
    &["ls", "-B"],
    &["ls", "-aB"],
    &["ls", "--hide=*.txt"],
    &["ls", "-a", "--hide=*.txt"],
    &["ls", "-A", "-I", ".*"],
    &["ls", "-a", "-I", "*"],
    &["ls", "-I", "[a-c]*", "-I", "[!a-z]*"],
    &["ls", "-I", "?[0-9]*"],
    // Recursion and links.
    &["ls", "-R"],
    &["ls", "-lR", "--group-directories-first"],
    &["ls", "-RS", "d"],
    &["ls", "lnkdir"],
    &["ls", "-l", "lnkdir"],
    &["ls", "-F", "lnkdir"],
    &["ls", "-H", "-l", "lnkdir", "lnk"],
    &["ls", "-L", "-l"],
    &["ls", "-L", "lnk", "lnkdir"],
    &[
        "ls",
        "--dereference-command-line-symlink-to-dir",
        "-l",
        "lnkdir",
    ],
    &["ls", "-d", "d", "zdir", "lnkdir"],
    &["ls", "-dl"],
    &["ls", "--zero"],
    // Wrong arguments.
    &["ls", "--sort=foo"],
    &["ls", "--sort="],
    &["ls", "--block-size=zz"],
    &["ls", "-w", "-1"],
    &["ls", "-l", "--time-style=bad"],
    &["ls", "--time=foo"],
];

#[test]
fn writing_commands() {
    let Some(r) = rig() else { return };
    let m = r.m();
    let m = m.as_str();
    let cases: &[(Who, &[&str])] = &[
        (Who::Root, &["mkdir", "new"]),
        (Who::Root, &["mkdir", "dir"]),
        (Who::Root, &["mkdir", "-p", "a/b/c"]),
        (Who::Root, &["mkdir", "-pv", "x/y", "dir/sub"]),
        (Who::Root, &["mkdir", "-m", "700", "m7"]),
        (Who::Root, &["mkdir", "-m", "u+w,g-r", "m8"]),
        (Who::Root, &["mkdir", "-m", "1777", "m9"]),
        (Who::Root, &["mkdir", "-m", "bad", "m10"]),
        (Who::Root, &["mkdir", "nope/x"]),
        (Who::Root, &["mkdir", "-p", "dir/a.txt/x"]),
        (Who::Root, &["mkdir"]),
        (Who::User, &["mkdir", "private/x"]),
        (Who::User, &["mkdir", "home/x"]),
        (Who::User, &["mkdir", "x"]),
        (Who::User, &["mkdir", "-p", "home/a/b"]),
        (Who::Root, &["touch", "newf", "dir/a.txt"]),
        (Who::Root, &["touch", "nope/x"]),
        (Who::Root, &["touch", "-c", "none"]),
        (Who::Root, &["touch", "-d", "garbage", "x"]),
        (Who::User, &["touch", "readonly"]),
        (Who::User, &["touch", "home/new"]),
        (Who::User, &["touch", "dir/a.txt"]),
        (Who::Root, &["touch", "dangling"]),
        (Who::Root, &["rm", "dir/a.txt"]),
        (Who::Root, &["rm", "dir"]),
        (Who::Root, &["rm", "-r", "dir"]),
        (Who::Root, &["rm", "-rv", "sp ace"]),
        (Who::Root, &["rm", "-rv", "dir"]),
        (Who::Root, &["rm", "-f", "nope"]),
        (Who::Root, &["rm", "nope"]),
        (Who::Root, &["rm", "-d", "emptydir", "dir"]),
        (Who::Root, &["rm", "."]),
        (Who::Root, &["rm", "-r", "dir/.."]),
        (Who::Root, &["rm", "link", "dangling"]),
        (Who::User, &["rm", "tmp/rootfile"]),
        (Who::User, &["rm", "-rf", "private"]),
        (Who::User, &["rm", "-r", "home"]),
        (Who::User, &["rm", "home/m"]),
    ];
    for (who, argv) in cases {
        r.same(*who, m, argv, None);
    }
    // tee, with its input.
    r.same(Who::Root, m, &["tee", "newt", "dir/a.txt"], Some(b"data\n"));
    r.same(Who::Root, m, &["tee", "-a", "dir/a.txt"], Some(b"more\n"));
    r.same(Who::Root, m, &["tee", "nope/x", "-"], Some(b"z\n"));
    r.same(Who::User, m, &["tee", "readonly"], Some(b"z\n"));
    // Sequences: a change, then what ls and cat say of it.
    r.same_seq(
        Who::Root,
        m,
        &[
            (&["touch", "-d", "2021-03-04 05:06:07", "dir/a.txt"], None),
            (&["ls", "-l", "--full-time", "dir/a.txt"], None),
            (&["touch", "-t", "202201020304.05", "-m", "dir/b.txt"], None),
            (&["ls", "-l", "dir"], None),
        ],
    );
}

#[test]
fn copies_and_moves() {
    let Some(r) = rig() else { return };
    let m = r.m();
    let m = m.as_str();
    let cases: &[(Who, &[&str])] = &[
        (Who::Root, &["cp", "dir/a.txt", "new"]),
        (Who::Root, &["cp", "dir/a.txt", "dir/sub"]),
        (Who::Root, &["cp", "nope", "x"]),
        (Who::Root, &["cp", "dir", "x"]),
        (Who::Root, &["cp", "dir/a.txt", "dir/a.txt"]),
        (Who::Root, &["cp", "dir/a.txt", "hard"]),
        (Who::Root, &["cp", "dir/a.txt", "nope/x"]),
        (Who::Root, &["cp", "dir/a.txt", "dir/b.txt", "readonly"]),
        (Who::Root, &["cp", "dir/a.txt", "dir/b.txt", "nope"]),
        (Who::Root, &["cp"]),
        (Who::Root, &["cp", "dir/a.txt"]),
        (Who::Root, &["cp", "-r", "dir", "copy"]),
        (Who::Root, &["cp", "-a", "dir", "copy"]),
        (Who::Root, &["cp", "-rv", "sp ace", "sp2"]),
        (Who::Root, &["cp", "-p", "dir/a.txt", "p"]),
        (Who::Root, &["cp", "sparse", "sparse2"]),
        (Who::Root, &["cp", "big.bin", "b2"]),
        (Who::Root, &["cp", "link", "l2"]),
        (Who::Root, &["cp", "-P", "link", "l3"]),
        (Who::Root, &["cp", "-a", "link", "dangling", "emptydir"]),
        (Who::Root, &["cp", "-r", "dir/", "emptydir"]),
        (Who::Root, &["cp", "-a", "dir/a.txt", "hard", "emptydir"]),
        (Who::Root, &["cp", "-r", "dir", "dir/a.txt"]),
        (Who::Root, &["cp", "-T", "dir/a.txt", "emptydir"]),
        (Who::Root, &["cp", "-n", "dir/b.txt", "dir/a.txt"]),
        (Who::Root, &["cp", "-t", "emptydir", "dir/a.txt", "big.bin"]),
        (Who::Root, &["cp", "--sparse=bogus", "a", "b"]),
        (Who::User, &["cp", "dir/a.txt", "home/"]),
        (Who::User, &["cp", "-p", "dir/a.txt", "home/"]),
        (Who::User, &["cp", "private/s", "home/"]),
        (Who::User, &["cp", "dir/a.txt", "readonly"]),
        (Who::User, &["cp", "-f", "dir/a.txt", "readonly"]),
        (Who::User, &["cp", "-r", "dir", "home/d"]),
        (Who::Root, &["mv", "dir/a.txt", "x"]),
        (Who::Root, &["mv", "-v", "dir/b.txt", "dir/sub"]),
        (Who::Root, &["mv", "nope", "x"]),
        (Who::Root, &["mv", "dir", "dir/sub"]),
        (Who::Root, &["mv", "dir/a.txt", "hard"]),
        (Who::Root, &["mv", "emptydir", "dir"]),
        (Who::Root, &["mv", "big.bin", "dir"]),
        (Who::Root, &["mv", "-T", "dir", "emptydir"]),
        (Who::Root, &["mv", "-T", "dir", "home"]),
        (Who::Root, &["mv", "dir", "readonly"]),
        (Who::Root, &["mv", "readonly", "dir/sub"]),
        (Who::Root, &["mv", "-n", "readonly", "dir/a.txt"]),
        (Who::Root, &["mv", "link", "dangling", "sp ace"]),
        (Who::User, &["mv", "tmp/rootfile", "tmp/x"]),
        (Who::User, &["mv", "home/m", "home/n"]),
        (Who::User, &["mv", "home/m", "x"]),
    ];
    for (who, argv) in cases {
        r.same(*who, m, argv, None);
    }
}

/// dd's transfer line with its time and rate replaced (they vary), after
/// checking their shape: `, 0.00123 s, 4.5 MB/s`.
fn dd_norm(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(" copied, ") {
            Some(i) => {
                let rest = &l[i + " copied, ".len()..];
                let (t, rate) = rest.split_once(" s, ").expect("time");
                assert!(t.parse::<f64>().is_ok(), "time {t:?} in {l:?}");
                let r = rate.strip_suffix("/s").expect("rate");
                let (n, unit) = r.split_once(' ').expect("rate unit");
                assert!(
                    n.parse::<f64>().is_ok() || n == "Infinity",
                    "rate {r:?} in {l:?}"
                );
                assert!(
                    ["B", "kB", "MB", "GB", "TB"].contains(&unit),
                    "unit {unit:?} in {l:?}"
                );
                format!("{} copied, T s, R/s\n", &l[..i])
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// stat's device numbers differ (a loop device there, the guest's disk
/// here).
fn stat_norm(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("Device: ") {
            Some(rest) => format!("Device: D\t{}\n", rest.split_once('\t').map_or("", |x| x.1)),
            None => format!("{l}\n"),
        })
        .collect()
}

#[test]
fn sizes_sums_and_status() {
    let Some(r) = rig() else { return };
    let m = r.m();
    let m = m.as_str();
    let same = |who, argv: &[&str]| {
        r.same(who, m, argv, None);
    };
    // du
    for argv in [
        &["du"][..],
        &["du", "-s", "dir", "big.bin", "sparse"],
        &["du", "-sh", "."],
        &["du", "-a", "dir"],
        &["du", "--apparent-size", "-a", "dir"],
        &["du", "-b", "sparse", "big.bin"],
        &["du", "-c", "dir", "home"],
        &["du", "-d", "1", "."],
        &["du", "nope", "dir/sub"],
        &["du", "-sk", "sparse"],
        &["du", "-sm", "big.bin"],
    ] {
        same(Who::Root, argv);
    }
    same(Who::User, &["du", "private", "home"]);
    // sha256sum
    same(
        Who::Root,
        &["sha256sum", "dir/a.txt", "big.bin", "sparse", "nope", "dir"],
    );
    r.same(Who::Root, m, &["sha256sum", "-"], Some(b"piped\n"));
    r.same_seq(
        Who::Root,
        m,
        &[
            (&["sha256sum", "dir/a.txt", "big.bin"], None),
            (&["tee", "sums"], Some(b"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  dir/a.txt\n0000000000000000000000000000000000000000000000000000000000000000  big.bin\nbad line\n5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  nope\n")),
            (&["sha256sum", "-c", "sums"], None),
            (&["sha256sum", "--quiet", "-c", "sums"], None),
            (&["sha256sum", "-c", "nope"], None),
        ],
    );
    // stat
    let stat_steps: &[&[&str]] = &[
        &["stat", "dir/a.txt", "link", "dir", "emptydir"],
        &["stat", "-L", "link"],
        &["stat", "nope"],
        &[
            "stat",
            "-c",
            "%n %N %a %A %b %B %f %F %g %G %h %i %o %s %u %U %x %y %z %w %X %Y %Z %W",
            "dir/a.txt",
            "link",
            "sparse",
        ],
        &["stat", "--printf", "%n\t%s\n", "big.bin"],
        &["stat", "-c", "%m %-8s| %08s| %.3s|%5a", "dir/b.txt"],
        &["stat", "-f", "."],
        &["stat", "-f", "-c", "%b %f %a %c %d %s %S %T %l %i", "dir"],
    ];
    for argv in stat_steps {
        r.same_norm(Who::Root, m, &[(argv, None)], &stat_norm);
    }
    // truncate, fallocate and dd: the trees are compared.
    for argv in [
        &["truncate", "-s", "10K", "dir/a.txt", "newt"][..],
        &["truncate", "-s", "+1M", "big.bin"],
        &["truncate", "-s", "-100", "big.bin"],
        &["truncate", "-s", "%4096", "dir/b.txt"],
        &["truncate", "-s", "<1K", "dir/b.txt"],
        &["truncate", "-c", "-s", "1K", "none"],
        &["truncate", "-s", "1x", "f"],
        &["truncate", "f"],
        &["truncate", "-s", "1K", "nope/x"],
        &["truncate", "-s", "0", "dir"],
        &["truncate", "-s", "1E", "newt"],
        &["truncate", "-r", "big.bin", "newr"],
        &["fallocate", "-l", "1M", "fa"],
        &["fallocate", "-l", "1M", "-o", "1K", "fa"],
        &["fallocate", "-n", "-l", "4M", "big.bin"],
        &["fallocate", "-p", "-o", "4096", "-l", "8192", "big.bin"],
        &["fallocate", "-v", "-l", "2M", "fb"],
        &[
            "fallocate",
            "-v",
            "-p",
            "-o",
            "0",
            "-l",
            "4096",
            "dir/b.txt",
        ],
        &["fallocate", "-l", "1x", "fc"],
        &["fallocate", "fc"],
        &["fallocate", "-l", "0", "fc"],
        &["fallocate", "-l", "1M", "nope/x"],
        &["fallocate", "-l", "1M", "dir"],
        &["fallocate", "-l", "100P", "fd"],
        &["fallocate", "-l", "1.5M", "fe"],
        &["fallocate"],
    ] {
        same(Who::Root, argv);
    }
    same(Who::User, &["fallocate", "-l", "1M", "readonly"]);
    same(Who::User, &["truncate", "-s", "0", "readonly"]);
    for argv in [
        &["dd", "if=big.bin", "of=copy", "bs=4k"][..],
        &["dd", "if=big.bin", "of=copy", "bs=1M", "count=1", "skip=0"],
        &["dd", "if=/dev/zero", "of=zeros", "bs=1M", "count=3"],
        &["dd", "if=/dev/zero", "of=zeros", "bs=100", "count=5"],
        &[
            "dd",
            "if=big.bin",
            "of=dir/a.txt",
            "bs=4096",
            "count=2",
            "skip=1",
            "seek=3",
            "conv=notrunc",
        ],
        &[
            "dd",
            "if=big.bin",
            "of=dir/b.txt",
            "bs=1000",
            "count=3",
            "seek=2",
        ],
        &["dd", "if=nope", "of=x"],
        &["dd", "if=big.bin", "of=nope/x"],
        &["dd", "bogus=1"],
        &["dd", "bs=x"],
        &[
            "dd",
            "if=big.bin",
            "of=copy",
            "bs=3000",
            "count=2",
            "status=none",
        ],
        &[
            "dd",
            "if=big.bin",
            "of=copy",
            "ibs=1000",
            "obs=3000",
            "count=7",
        ],
        &["dd", "if=sparse", "of=sp", "bs=1M", "conv=sparse"],
        &["dd", "if=dir/a.txt", "of=/dev/null"],
        &[
            "dd",
            "if=big.bin",
            "of=copy",
            "bs=4k",
            "count=2",
            "status=noxfer",
        ],
    ] {
        r.same_norm(Who::Root, m, &[(argv, None)], &dd_norm);
    }
    r.same_norm(
        Who::Root,
        m,
        &[(&["dd", "of=piped"], Some(b"abcdefgh"))],
        &dd_norm,
    );
    r.same_norm(Who::Root, m, &[(&["dd", "if=dir/a.txt"], None)], &dd_norm);
    r.same_norm(
        Who::User,
        m,
        &[(&["dd", "if=/dev/zero", "of=readonly", "count=1"], None)],
        &dd_norm,
    );
}

/// The same commands on an XFS volume (the kernel's XFS on one side,
/// ebsim's XFS file layer on the other; `xfs_repair -n` after each).
#[test]
fn on_xfs() {
    if !common::require_tools(&["xfs_repair", "setpriv", "losetup"]) || !common::require_mount() {
        return;
    }
    let r = Rig::on(Fs::Xfs, 1, FIXTURE);
    let m = r.m();
    let m = m.as_str();
    let cases: &[(Who, &[&str])] = &[
        (Who::Root, &["ls", "-l"]),
        (Who::Root, &["ls", "-la", "dir", "home"]),
        (Who::Root, &["ls", "-lR", "dir"]),
        (Who::Root, &["ls", "-U", "dir"]),
        (Who::Root, &["cat", "dir/a.txt", "nope", "dir"]),
        (Who::User, &["cat", "private/s"]),
        (Who::Root, &["du", "-a"]),
        (Who::Root, &["sha256sum", "big.bin", "sparse"]),
        (Who::Root, &["mkdir", "-pv", "a/b/c", "dir"]),
        (Who::User, &["mkdir", "home/x", "x"]),
        (Who::Root, &["touch", "newf", "nope/x"]),
        (Who::Root, &["rm", "-rv", "dir"]),
        (Who::Root, &["rm", "emptydir", "nope"]),
        (Who::User, &["rm", "tmp/rootfile"]),
        (Who::Root, &["cp", "-a", "dir", "copy"]),
        (Who::Root, &["cp", "sparse", "big.bin", "emptydir"]),
        (Who::User, &["cp", "-r", "dir", "home/d"]),
        (Who::Root, &["mv", "dir", "emptydir", "home"]),
        (Who::Root, &["mv", "dir", "dir/sub"]),
        (Who::Root, &["truncate", "-s", "+1M", "big.bin", "new"]),
        (Who::Root, &["fallocate", "-l", "10M", "fa"]),
        (
            Who::Root,
            &["fallocate", "-p", "-o", "4096", "-l", "8192", "big.bin"],
        ),
        (Who::Root, &["fallocate", "-n", "-l", "4M", "dir/a.txt"]),
    ];
    for (who, argv) in cases {
        r.same(*who, m, argv, None);
    }
    r.same(Who::Root, m, &["tee", "-a", "dir/a.txt", "t"], Some(b"x\n"));
    r.same_norm(
        Who::Root,
        m,
        &[
            (&["dd", "if=/dev/zero", "of=z", "bs=1M", "count=3"], None),
            (
                &[
                    "dd",
                    "if=big.bin",
                    "of=dir/b.txt",
                    "bs=1000",
                    "count=3",
                    "seek=2",
                    "conv=notrunc",
                ],
                None,
            ),
            (
                &[
                    "stat",
                    "-c",
                    "%n %s %b %h %a %U %G %F %i",
                    "z",
                    "dir",
                    "dir/b.txt",
                ],
                None,
            ),
            (&["stat", "dir/a.txt"], None),
        ],
        &|t| stat_norm(&dd_norm(t)),
    );
}

/// A filesystem left with about 600 KiB free for root (none for a user
/// on ext4, whose reserved blocks are root's): the command that hits the
/// full disk says "No space left on device" as the real one does, with
/// its exit code, and the tree after it equals the kernel's.
///
/// On XFS the real cp clones (9.1's `--reflink=auto` default), which
/// ebsim does not: the copies there say `--reflink=never`. And where a
/// write that does not fit ends differs on XFS: the kernel reserves
/// delayed allocation for a whole write(2) and refuses it whole (a 1 MiB
/// dd block: nothing; a 128 KiB cp buffer: nothing of that buffer), or
/// cuts it short after a flush and retry, depending on writeback timing;
/// ebsim writes the blocks that fit. There the data commands are held to
/// the same message and exit code, a size within 1 MiB of the kernel's
/// and a clean `xfs_repair -n`.
fn full_disk(fs: Fs) {
    type WriteCase<'a> = (Who, &'a [&'a str], Option<&'a [u8]>);
    let tools: &[&str] = match fs {
        Fs::Ext4 => &["e2fsck", "setpriv", "losetup"],
        Fs::Xfs => &["xfs_repair", "setpriv", "losetup"],
    };
    if !common::require_tools(tools) || !common::require_mount() {
        return;
    }
    // The largest preallocation that leaves about 150 blocks free (the
    // extent tree's blocks come from the rest).
    let fixture = format!(
        "{FIXTURE}\nsync\nn=$(( $(stat -f -c %f .) - 150 ))\nuntil fallocate -l $(( n * $(stat -f -c %S .) )) filler 2>/dev/null; do n=$(( n - 16 )); done\nsync\n"
    );
    let r = Rig::on(fs, 1, &fixture);
    let m = r.m();
    let m = m.as_str();
    // Commands whose result does not depend on where a write is cut.
    let exact: &[(Who, &[&str])] = &[
        (Who::Root, &["fallocate", "-l", "10M", "fa"]),
        (Who::Root, &["fallocate", "-l", "10M", "big.bin"]),
        (Who::Root, &["truncate", "-s", "1G", "t"]),
        (Who::User, &["touch", "home/new"]),
        (Who::User, &["mkdir", "home/d"]),
        (Who::User, &["fallocate", "-l", "1M", "home/f"]),
        (Who::Root, &["mv", "big.bin", "dir/moved"]),
        (Who::Root, &["rm", "filler"]),
    ];
    for (who, argv) in exact {
        r.same(*who, m, argv, None);
    }
    let big = vec![b'x'; 2 << 20];
    let writes: &[WriteCase<'_>] = &[
        (
            Who::Root,
            &["cp", "--reflink=never", "big.bin", "copy"],
            None,
        ),
        (
            Who::Root,
            &["cp", "--reflink=never", "-r", "dir", "big.bin", "emptydir"],
            None,
        ),
        (
            Who::User,
            &["cp", "--reflink=never", "big.bin", "home/"],
            None,
        ),
        (Who::Root, &["tee", "t1", "t2"], Some(&big)),
        (Who::User, &["tee", "home/t"], Some(&big[..8192])),
        (
            Who::Root,
            &["dd", "if=/dev/zero", "of=z", "bs=1M", "count=4"],
            None,
        ),
        (Who::Root, &["dd", "if=big.bin", "of=z", "bs=64k"], None),
        (
            Who::User,
            &["dd", "if=/dev/urandom", "of=home/z", "bs=4k", "count=300"],
            None,
        ),
    ];
    for (who, argv, stdin) in writes {
        if fs == Fs::Ext4 {
            r.same_norm(*who, m, &[(argv, *stdin)], &dd_norm);
            continue;
        }
        let steps = [(*argv, *stdin)];
        let (k, kt) = r.kernel_seq(*who, m, &steps);
        let (e, et) = r.ebsim_seq(*who, m, &steps);
        let first = |t: &str| t.lines().next().unwrap_or("").to_string();
        assert_eq!(first(&e[0].err), first(&k[0].err), "{argv:?}: message");
        assert_eq!(e[0].code, k[0].code, "{argv:?}: exit code");
        assert_eq!(sizes_within(&kt, &et, 1 << 20), Ok(()), "{argv:?}");
    }
}

/// Two manifests list the same entries with the same attributes, and
/// file sizes within `slack` bytes of each other.
fn sizes_within(a: &str, b: &str, slack: u64) -> Result<(), String> {
    let strip = |l: &str| -> (String, u64) {
        match l.find(" size ") {
            Some(i) => {
                let n = l[i + 6..].split(' ').next().unwrap_or("0");
                (l[..i].to_string(), n.parse().unwrap_or(0))
            }
            None => (l.to_string(), 0),
        }
    };
    let (la, lb): (Vec<_>, Vec<_>) = (
        a.lines().map(strip).collect(),
        b.lines().map(strip).collect(),
    );
    if la.len() != lb.len() {
        return Err(format!("entries differ:\n{a}\n--\n{b}"));
    }
    for ((pa, sa), (pb, sb)) in la.iter().zip(&lb) {
        if pa != pb || sa.abs_diff(*sb) > slack {
            return Err(format!("{pa} size {sa} vs {pb} size {sb}"));
        }
    }
    Ok(())
}

#[test]
fn full_disk_ext4() {
    full_disk(Fs::Ext4);
}

#[test]
fn full_disk_xfs() {
    full_disk(Fs::Xfs);
}

/// ebsim's `sudo` runs only ebsim's applets: a host program (by name or
/// path), a root shell and ebsim's own shell/exec are refused with the
/// reason, exit 1; and the guest commands, as root, writing to paths that
/// also exist on the host, leave the host's tree as it was (its hash).
#[test]
fn sudo_refuses_host_programs_and_nothing_leaks_to_the_host() {
    if !common::require_tools(&["e2fsck", "setpriv", "losetup"]) || !common::require_mount() {
        return;
    }
    let r = Rig::new(1, FIXTURE);
    let sentinel = tempfile::Builder::new()
        .prefix("ebsim-sentinel-")
        // Not under /tmp: the guest has /tmp only as the way to the
        // volume's mount point (no directory of its root filesystem).
        .tempdir_in("/var/tmp")
        .unwrap();
    let host = sentinel.path().to_str().unwrap().to_string();
    std::fs::write(sentinel.path().join("keep"), b"host data\n").unwrap();
    std::fs::create_dir(sentinel.path().join("d")).unwrap();
    std::fs::write(sentinel.path().join("d/f"), b"host file\n").unwrap();
    let hash = || {
        guest_files_util::manifest(sentinel.path())
            + &guest_files_util::manifest(std::path::Path::new(&r.m()))
    };
    let before = hash();
    let why = "runs on the host, not in the instance; ebsim runs only its own applets as root in a guest (see 'ebsim shell --help')\n";
    for (argv, name) in [
        (&["vi", "/etc/fstab"][..], "vi"),
        (&["/bin/rm", "-rf", &host], "/bin/rm"),
        (&["-u", "root", "sh", "-c", "id"], "sh"),
        (&["--", "bash"], "bash"),
        (&["ebsim", "exec", &r.id, "--", "sh"], "ebsim exec"),
        (&["ebsim", "shell"], "ebsim shell"),
    ] {
        let o = r
            .cloud
            .cmd("sudo")
            .args(argv)
            .env("EBSIM_INSTANCE", &r.id)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "sudo {argv:?}");
        assert_eq!(
            common::stderr(&o),
            format!("sudo: {name}: {why}"),
            "sudo {argv:?}"
        );
        assert!(o.stdout.is_empty());
    }
    for argv in [&["-i"][..], &["-s"]] {
        let o = r
            .cloud
            .cmd("sudo")
            .args(argv)
            .env("EBSIM_INSTANCE", &r.id)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "sudo {argv:?}");
        assert_eq!(common::stderr(&o), format!("sudo: a root shell {why}"));
    }
    // Guest commands as root on the host's paths: the guest's files.
    let steps: &[(&str, Vec<String>)] = &[
        ("mkdir", vec!["-p".into(), format!("{host}/d")]),
        ("tee", vec![format!("{host}/keep")]),
        (
            "dd",
            vec![
                "if=/dev/zero".into(),
                format!("of={host}/d/f"),
                "bs=4k".into(),
                "count=2".into(),
                "status=none".into(),
            ],
        ),
        ("cp", vec!["/etc/passwd".into(), format!("{host}/p")]),
        (
            "fallocate",
            vec!["-l".into(), "1M".into(), format!("{host}/fa")],
        ),
        (
            "truncate",
            vec!["-s".into(), "0".into(), format!("{host}/keep")],
        ),
        ("touch", vec![format!("{host}/t")]),
        ("rm", vec!["-r".into(), format!("{host}/d")]),
        // Across the guest's filesystems (EXDEV): copy, then remove.
        ("mv", vec![format!("{}/big.bin", r.m()), format!("{host}/")]),
    ];
    for (applet, args) in steps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = r.ebsim_in(Who::Root, Some("/"), applet, &args, Some(b"guest\n"));
        assert_eq!(o.code, 0, "{applet} {args:?}: {o:?}");
    }
    let o = r.ebsim_in(Who::Root, Some("/"), "ls", &["-A", &host], None);
    assert_eq!(o.out, "big.bin\nfa\nkeep\np\nt\n", "{o:?}");
    let o = r.ebsim_in(Who::Root, Some(&host), "sha256sum", &["big.bin"], None);
    assert_eq!(
        o.out, "c8809ab9ad4d6b7ed412f7eee217bdae3890aea97c486ed8b2288d9b2dffaaf8  big.bin\n",
        "{o:?}"
    );
    let o = r.ebsim_in(Who::Root, None, "ls", &["big.bin"], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(hash(), before, "the host's files changed");
}

/// The issue's example: on the seed's 200 GiB XFS data volume at
/// /var/lib, `sudo fallocate -l 150G /var/lib/data` fills it and ebsim's
/// `df -h` shows what the kernel's df shows for the same image (size,
/// used, available, use%); the image grows by metadata only.
#[test]
fn fallocate_150g_on_the_seeds_data_volume() {
    if !common::require_tools(&["xfs_repair", "losetup"]) || !common::require_mount() {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(guest_files_util::UBUNTU, "t2.micro");
    let vol = cloud.volume(&["--size", "200"]);
    cloud.ok(&[
        "attach-volume",
        "--volume-id",
        &vol,
        "--instance-id",
        &id,
        "--device",
        "/dev/sdf",
    ]);
    for _ in 0..100 {
        if cloud.describe_volume(&vol)["Attachments"][0]["State"] == "attached" {
            break;
        }
        cloud.advance("1s");
    }
    let guest = |argv: &[&str]| {
        let o = cloud
            .cmd(argv[0])
            .args(&argv[1..])
            .env("EBSIM_INSTANCE", &id)
            .output()
            .unwrap();
        assert!(o.status.success(), "{argv:?}: {}", common::stderr(&o));
        common::stdout(&o)
    };
    guest(&["sudo", "mkfs.xfs", "-q", "/dev/xvdf"]);
    guest(&["sudo", "mount", "/dev/xvdf", "/var/lib"]);
    let image = cloud.image_of(&vol);
    let blocks = || std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&image).unwrap());
    let before = blocks();
    guest(&["sudo", "fallocate", "-l", "150G", "/var/lib/data"]);
    let grown = (blocks() - before) * 512;
    assert!(grown < 1 << 20, "the image grew by {grown} bytes");
    let df = guest(&["df", "-h"]);
    let ours = df
        .lines()
        .find(|l| l.ends_with(" /var/lib"))
        .unwrap_or_else(|| panic!("{df}"))
        .split_whitespace()
        .skip(1)
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("ebsim df -h: {ours}");
    guest_files_util::fsck_clean_fs(guest_files_util::Fs::Xfs, &image, "after fallocate 150G");
    // A read-write mount, as the guest's: a read-only one makes no per-AG
    // metadata reservation, which statfs counts as used.
    let dir = tempfile::tempdir().unwrap();
    let theirs = {
        let _m = guest_files_util::MountAt::new(&image, dir.path(), "rw");
        let o = common::run(
            std::process::Command::new("df")
                .args(["-h", "--output=size,used,avail,pcent"])
                .arg(dir.path()),
        );
        common::stdout(&o)
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(ours, theirs, "df -h of /var/lib against the kernel's");
}

/// The usual mistakes on the command line of every file command (and
/// df): an unknown option, a missing operand, a bad size or block size,
/// a bad dd operand. The real tool runs on an empty scratch directory of
/// this machine, ebsim's applet in an instance (through `sudo`); stdout,
/// stderr and the exit code must be equal. None of these reaches a file,
/// so no mount is needed on either side.
#[test]
fn usage_errors_are_the_real_tools() {
    if !common::require_tools(&["fallocate", "truncate", "dd"]) {
        return;
    }
    let cloud = ec2_util::Cloud::on_tmpfs();
    let id = cloud.instance(guest_files_util::UBUNTU, "t2.micro");
    let scratch = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        // du, df: block sizes (gnulib's xstrtol messages), depths, options.
        &["du", "-B", "zz", "x"],
        &["du", "--block-size=zz", "x"],
        &["du", "--block=zz", "x"],
        &["du", "-B", "0", "x"],
        &["du", "-B", "1Q", "x"],
        &["du", "-B", "1KQ", "x"],
        &["du", "-B", "1.5K", "x"],
        &["du", "-B", "-1", "x"],
        &["du", "-B", "99999999999999999999", "x"],
        &["du", "--block-size", "99999999999999999999", "x"],
        &["du", "-B"],
        &["du", "-d", "x"],
        &["du", "-d", "-1", "x"],
        &["du", "--max-depth=1x", "x"],
        &["du", "-sa", "x"],
        &["du", "-y"],
        &["du", "--bogus"],
        &["df", "-B", "zz"],
        &["df", "--block-size=1Q"],
        &["df", "-B", "0"],
        &["df", "-y"],
        &["df", "--bogus"],
        // ls
        &["ls", "-y"],
        &["ls", "--bogus"],
        &["ls", "--sort=foo"],
        &["ls", "--sort=t", "--sort=s", "--sort=bogus"],
        &["ls", "--block-size=zz"],
        &["ls", "--block-size=0"],
        &["ls", "--block-size=-1"],
        &["ls", "--block-size=1Q"],
        &["ls", "--block-size=99999999999999999999"],
        &["ls", "--block-size"],
        &["ls", "-w", "-1"],
        &["ls", "--width=x"],
        &["ls", "-w"],
        &["ls", "-l", "--time-style=bad"],
        &["ls", "-l", "--time-style=l"],
        &["ls", "-l", "--time-style=+%Y\n%m\n%d"],
        &["ls", "--time=foo"],
        &["ls", "--format=foo"],
        &["ls", "--indicator-style=x"],
        &["ls", "--quoting-style=x"],
        &["ls", "--classify=bad"],
        &["ls", "--color=bad"],
        &["ls", "-T", "x"],
        &["ls", "--tabsize=-1"],
        // cat, tee, sha256sum, stat
        &["cat", "-y"],
        &["cat", "--bogus"],
        &["tee", "-y"],
        &["tee", "--bogus"],
        &["sha256sum", "-y"],
        &["sha256sum", "--quiet", "x"],
        &["sha256sum", "--status", "x"],
        &["sha256sum", "--warn", "x"],
        &["sha256sum", "--strict", "x"],
        &["sha256sum", "--ignore-missing", "x"],
        &["sha256sum", "-c", "-z", "x"],
        &["sha256sum", "-c", "--tag", "x"],
        &["sha256sum", "-c", "-b", "x"],
        &["sha256sum", "--tag", "-t", "x"],
        &["stat"],
        &["stat", "-y"],
        &["stat", "-c"],
        // cp, mv, rm, mkdir, touch
        &["cp"],
        &["cp", "a"],
        &["cp", "-y", "a", "b"],
        &["cp", "--bogus", "a", "b"],
        &["mv"],
        &["mv", "a"],
        &["mv", "-y", "a", "b"],
        &["rm"],
        &["rm", "-y", "a"],
        &["mkdir"],
        &["mkdir", "-y", "a"],
        &["mkdir", "-m", "bad", "a"],
        &["mkdir", "-m"],
        &["touch"],
        &["touch", "-y", "a"],
        &["touch", "-d", "garbage", "a"],
        &["touch", "-t", "20xx", "a"],
        &["touch", "-t", "1", "a"],
        // truncate
        &["truncate"],
        &["truncate", "f"],
        &["truncate", "-s"],
        &["truncate", "-s", "abc", "f"],
        &["truncate", "-s", "1Q", "f"],
        &["truncate", "-s", "1KQ", "f"],
        &["truncate", "-s", "", "f"],
        &["truncate", "-s", "-", "f"],
        &["truncate", "-s", "99999999999999999999", "f"],
        &["truncate", "-s", "1", "-r", "x", "f"],
        &["truncate", "-s", "1", "-r", "x"],
        &["truncate", "-s", "1b", "f"],
        &["truncate", "-s", "1w", "f"],
        &["truncate", "-s", "1Y", "f"],
        &["truncate", "-s", "9223372036854775808", "f"],
        &["truncate", "-s", "<-1", "f"],
        &["truncate", "-s", "< abc", "f"],
        &["truncate", "-s", " +abc", "f"],
        &["truncate", "-s", "+ 5", "f"],
        &["truncate", "-s", "%0", "f"],
        &["truncate", "-s", "abc", "-s", "1", "f"],
        &["truncate", "-s", "1"],
        &["truncate", "-o", "f"],
        &["truncate", "-y", "f"],
        // fallocate
        &["fallocate"],
        &["fallocate", "f"],
        &["fallocate", "-l"],
        &["fallocate", "-l", "1Q", "f"],
        &["fallocate", "-l", "abc", "f"],
        &["fallocate", "-l", "0", "f"],
        &["fallocate", "-l", "-1", "f"],
        &["fallocate", "-l", "1.5X", "f"],
        &["fallocate", "-l", "99999999999999999999", "f"],
        &["fallocate", "-o", "x", "-l", "1", "f"],
        &["fallocate", "-l", "1"],
        &["fallocate", "-l", "1", "f", "g"],
        &["fallocate", "-y", "f"],
        &["fallocate", "--bogus", "f"],
        // dd
        &["dd", "bs=0"],
        &["dd", "bs=abc"],
        &["dd", "bs=1Q"],
        &["dd", "bs=-1"],
        &["dd", "ibs=0"],
        &["dd", "obs=0"],
        &["dd", "cbs=0"],
        &["dd", "count=x"],
        &["dd", "skip=-1"],
        &["dd", "seek=1Q"],
        &["dd", "foo=bar"],
        &["dd", "if"],
        &["dd", "conv=bogus"],
        &["dd", "iflag=bogus"],
        &["dd", "oflag=bogus"],
        &["dd", "status=bogus"],
        &["dd", "conv=ascii,ebcdic"],
        &["dd", "conv=excl,nocreat"],
        &["dd", "-y"],
        &["dd", "--bogus"],
        &["dd", "bs=99999999999999999999"],
        &["dd", "count=8E"],
        &["dd", "bs=1Ex16"],
        &["dd", "conv=block,unblock"],
        &["dd", "conv=block,unblock", "cbs=1"],
        &["dd", "conv=lcase,ucase"],
        &["dd", "if=x", "-y"],
    ];
    let mut bad = Vec::new();
    for argv in cases {
        let host = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(scratch.path())
            .env("LC_ALL", "C.UTF-8")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let guest = cloud
            .cmd("sudo")
            .args(*argv)
            .env("EBSIM_INSTANCE", &id)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("EBSIM_GUEST_USER")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        // dd's summary line: its time and rate are compared by shape.
        let h = (
            common::stdout(&host),
            dd_norm(&common::stderr(&host)),
            host.status.code(),
        );
        let g = (
            common::stdout(&guest),
            dd_norm(&common::stderr(&guest)),
            guest.status.code(),
        );
        if h != g {
            bad.push(format!("{argv:?}\n  real:  {h:?}\n  ebsim: {g:?}"));
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    // The scratch directory stays empty: none of these made a file.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}
