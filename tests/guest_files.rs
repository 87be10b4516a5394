//! The file commands inside an instance against coreutils 9.1 and
//! util-linux 2.38 on the kernel (see tests/guest_files_util): each case
//! runs the real command on a loop mount and ebsim's applet in the
//! instance, from the same image, and compares stdout, stderr, the exit
//! code and the tree after it; both images must pass `e2fsck -fn`.

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;
mod guest_files_util;

use guest_files_util::{Rig, Who};

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

fn rig() -> Option<(Rig, nix::fcntl::Flock<std::fs::File>)> {
    if !common::require_tools(&["e2fsck", "setpriv", "losetup"]) || !common::require_mount() {
        return None;
    }
    let lock = common::mount_lock();
    Some((Rig::new(1, FIXTURE), lock))
}

#[test]
fn reading_commands() {
    let Some((r, _lock)) = rig() else { return };
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

#[test]
fn writing_commands() {
    let Some((r, _lock)) = rig() else { return };
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
    let Some((r, _lock)) = rig() else { return };
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
