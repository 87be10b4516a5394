//! The FUSE server (`ebsim mount`) against the kernel's own filesystems:
//! random file operations applied through the mount and to a reference
//! directory on the host compare equal after every step (content, sizes,
//! modes, link counts, entries, errnos); a port of pjdfstest's errno cases;
//! real tools writing into the mount leave an fsck-clean image the kernel
//! reads the same; a server killed mid-write leaves a consistent image; an
//! online grow through the control channel keeps the data.
//!
//! `common::mount_lock()` is taken only for the kernel's loop mounts at
//! the end of a test: the FUSE mounts (each on its own image and
//! directory, no loop device, no kernel filesystem) run beside each other.

mod common;
mod fuse_util;

use common::{ebsim, mount_lock, require_mount, require_tools, run, stderr, stdout};
use fuse_util::*;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const M: u64 = 1 << 20;

fn ready() -> bool {
    require_mount()
        && require_tools(&["mkfs.ext4", "mkfs.xfs", "e2fsck", "xfs_repair", "setpriv"])
        && Path::new("/dev/fuse").exists()
}

/// The outcome of one operation: Ok, or the errno.
type Outcome = Result<(), i32>;

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn io<T>(r: std::io::Result<T>) -> Outcome {
    r.map(|_| ()).map_err(errno_of)
}

fn nx<T>(r: nix::Result<T>) -> Outcome {
    r.map(|_| ()).map_err(|e| e as i32)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// The names random operations use: a few files and directories, two
/// levels deep, so that renames, links and removals collide often.
const PATHS: &[&str] = &[
    "f0", "f1", "f2", "f3", "d0", "d1", "d0/f0", "d0/f1", "d0/d2", "d0/d2/f0", "d1/f0", "d1/f1",
    "l0", "d0/l1",
];

#[derive(Debug, Clone)]
enum Op {
    Create(String, u32),
    Write(String, u64, usize, u64),
    Truncate(String, u64),
    Fallocate(String, i32, u64, u64),
    Rename(String, String, u32),
    Link(String, String),
    Unlink(String),
    Mkdir(String, u32),
    Rmdir(String),
    Symlink(String, String),
    Chmod(String, u32),
    Fsync(String),
}

/// A random operation; `tree` (per path of the reference, a description
/// starting with its type letter, as in a manifest) lets it pick
/// existing files and directories most of the time, so most operations
/// succeed and the rest fail in every way.
fn random_op(r: &mut Rng, tree: &BTreeMap<String, String>) -> Op {
    let p = |r: &mut Rng| r.pick(PATHS).to_string();
    let of = |r: &mut Rng, t: char| {
        let v: Vec<&String> = tree
            .iter()
            .filter(|(k, v)| v.starts_with(t) && PATHS.contains(&k.as_str()))
            .map(|(k, _)| k)
            .collect();
        if v.is_empty() || r.below(5) == 0 {
            r.pick(PATHS).to_string()
        } else {
            v[r.below(v.len() as u64) as usize].clone()
        }
    };
    let f = |r: &mut Rng| of(r, 'f');
    // A name not taken, in a directory that exists.
    let free = |r: &mut Rng| {
        let v: Vec<&str> = PATHS
            .iter()
            .copied()
            .filter(|k| {
                !tree.contains_key(*k)
                    && k.rsplit_once('/')
                        .is_none_or(|(d, _)| tree.get(d).is_some_and(|v| v.starts_with('d')))
            })
            .collect();
        if v.is_empty() || r.below(4) == 0 {
            r.pick(PATHS).to_string()
        } else {
            r.pick(&v).to_string()
        }
    };
    let off = |r: &mut Rng| match r.below(10) {
        0 => r.below(2 * M),
        1..=3 => r.below(4096) * 4096,
        _ => r.below(256 * 1024),
    };
    let modes = [0o644, 0o600, 0o755, 0o700, 0o4755, 0o1777, 0o444];
    match r.below(25) {
        0..=2 => Op::Create(free(r), modes[r.below(4) as usize]),
        3..=7 => {
            let len = if r.below(8) == 0 {
                300 * 1024
            } else {
                r.below(64 * 1024) as usize + 1
            };
            Op::Write(f(r), off(r), len, r.next())
        }
        8 | 9 => Op::Truncate(f(r), off(r)),
        10 | 11 => {
            let mode = match r.below(3) {
                0 => 0,
                1 => libc_flags::KEEP_SIZE,
                _ => libc_flags::KEEP_SIZE | libc_flags::PUNCH_HOLE,
            };
            Op::Fallocate(f(r), mode, off(r), r.below(200 * 1024) + 1)
        }
        12 | 13 => {
            let flags = match r.below(6) {
                0 => 1, // RENAME_NOREPLACE
                1 => 2, // RENAME_EXCHANGE
                _ => 0,
            };
            let from = if r.below(2) == 0 { f(r) } else { of(r, 'd') };
            Op::Rename(from, p(r), flags)
        }
        14 => Op::Link(f(r), free(r)),
        15 => Op::Unlink(f(r)),
        16 => Op::Unlink(of(r, 'l')),
        17 | 18 => {
            let dirs = ["d0", "d1", "d0/d2", "d0", "d1"];
            let at = if r.below(4) == 0 {
                p(r)
            } else {
                r.pick(&dirs).to_string()
            };
            Op::Mkdir(at, modes[r.below(4) as usize] | 0o700)
        }
        19 => {
            // An empty directory most of the time.
            let empty: Vec<&String> = tree
                .iter()
                .filter(|(k, v)| {
                    v.starts_with('d') && !tree.keys().any(|o| o.starts_with(&format!("{k}/")))
                })
                .map(|(k, _)| k)
                .collect();
            if empty.is_empty() || r.below(3) == 0 {
                Op::Rmdir(of(r, 'd'))
            } else {
                Op::Rmdir(empty[r.below(empty.len() as u64) as usize].clone())
            }
        }
        20 => {
            let targets = ["f0", "../f1", "d0/f0", "nowhere", "d0"];
            Op::Symlink(r.pick(&targets).to_string(), p(r))
        }
        21 | 22 => Op::Chmod(p(r), modes[r.below(modes.len() as u64) as usize]),
        _ => Op::Fsync(p(r)),
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Create(..) => "create",
        Op::Write(..) => "write",
        Op::Truncate(..) => "truncate",
        Op::Fallocate(..) => "fallocate",
        Op::Rename(..) => "rename",
        Op::Link(..) => "link",
        Op::Unlink(..) => "unlink",
        Op::Mkdir(..) => "mkdir",
        Op::Rmdir(..) => "rmdir",
        Op::Symlink(..) => "symlink",
        Op::Chmod(..) => "chmod",
        Op::Fsync(..) => "fsync",
    }
}

mod libc_flags {
    pub const KEEP_SIZE: i32 = 0x01;
    pub const PUNCH_HOLE: i32 = 0x02;
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..len).map(|_| r.next() as u8).collect()
}

/// Applies `op` under `root`.
fn apply(root: &Path, op: &Op) -> Outcome {
    use nix::fcntl::{FallocateFlags, RenameFlags, fallocate, renameat2};
    let at = |p: &str| root.join(p);
    match op {
        Op::Create(p, mode) => io(OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode)
            .open(at(p))),
        Op::Write(p, off, len, seed) => {
            use std::os::unix::fs::FileExt;
            let f = OpenOptions::new()
                .write(true)
                .open(at(p))
                .map_err(errno_of)?;
            io(f.write_all_at(&pattern(*seed, *len), *off))
        }
        Op::Truncate(p, size) => nx(nix::unistd::truncate(
            &at(p),
            i64::try_from(*size).unwrap_or(0),
        )),
        Op::Fallocate(p, mode, off, len) => {
            let f = OpenOptions::new()
                .write(true)
                .open(at(p))
                .map_err(errno_of)?;
            nx(fallocate(
                &f,
                FallocateFlags::from_bits_truncate(*mode),
                i64::try_from(*off).unwrap_or(0),
                i64::try_from(*len).unwrap_or(0),
            ))
        }
        Op::Rename(a, b, flags) => nx(renameat2(
            nix::fcntl::AT_FDCWD,
            &at(a),
            nix::fcntl::AT_FDCWD,
            &at(b),
            RenameFlags::from_bits_truncate(*flags),
        )),
        Op::Link(a, b) => io(std::fs::hard_link(at(a), at(b))),
        Op::Unlink(p) => io(std::fs::remove_file(at(p))),
        Op::Mkdir(p, mode) => io(std::fs::DirBuilder::new().mode(*mode).create(at(p))),
        Op::Rmdir(p) => io(std::fs::remove_dir(at(p))),
        Op::Symlink(t, p) => io(std::os::unix::fs::symlink(t, at(p))),
        Op::Chmod(p, mode) => io(std::fs::set_permissions(
            at(p),
            std::fs::Permissions::from_mode(*mode),
        )),
        Op::Fsync(p) => {
            let f = std::fs::File::open(at(p)).map_err(errno_of)?;
            io(f.sync_all())
        }
    }
}

/// `steps` random operations through the mount of a fresh `kind` image
/// and on a host directory, compared after each; then the image is
/// fsck-clean and the kernel reads the same tree.
fn fsx(kind: Kind, seed: u64, steps: usize) {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    let host = tempfile::tempdir().expect("tempdir");
    let reference = host.path().join("ref");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    std::fs::create_dir(&reference).expect("mkdir ref");
    make_image(&img, kind, 512 * M);
    let served = Served::mount(img.to_str().expect("utf-8 path"), &mnt, &[]);
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut log = Vec::new();
    // Successes per kind of operation: the run must exercise each.
    let mut done: BTreeMap<&'static str, usize> = BTreeMap::new();
    // The reference as it is before each step (read once per step).
    let mut mb = tree(&reference, false);
    for step in 0..steps {
        let kinds: BTreeMap<String, String> = mb
            .iter()
            .map(|(k, e)| (k.clone(), e.head.clone()))
            .collect();
        let op = random_op(&mut r, &kinds);
        let a = apply(&mnt, &op);
        let b = apply(&reference, &op);
        if a.is_ok() {
            *done.entry(op_name(&op)).or_default() += 1;
        }
        log.push(format!("{step}: {op:?} -> {a:?}"));
        let tail = log[log.len().saturating_sub(12)..].join("\n");
        assert_eq!(
            a, b,
            "{kind:?} seed {seed} step {step}: {op:?}: the mount says {a:?}, the host {b:?}\n{tail}"
        );
        let ma = tree(&mnt, false);
        mb = tree(&reference, false);
        assert!(
            ma == mb,
            "{kind:?} seed {seed} step {step}: trees differ after {op:?} (mount, then host):\n{}\n{tail}",
            diff(&lines(&ma), &lines(&mb))
        );
    }
    eprintln!("{kind:?} seed {seed}: successful operations {done:?}");
    for name in [
        "create",
        "write",
        "truncate",
        "fallocate",
        "rename",
        "link",
        "unlink",
        "mkdir",
        "rmdir",
        "symlink",
        "chmod",
    ] {
        assert!(
            done.get(name).copied().unwrap_or(0) > 0,
            "{kind:?} seed {seed}: no {name} succeeded in {steps} steps: {done:?}"
        );
    }
    let before = manifest(&mnt, true);
    served.unmount();
    assert_fsck_clean(&img, kind);
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let lm = LoopMount::new(&img, &kdir);
    let k = manifest(&lm.dir, true);
    assert!(
        k == before,
        "the kernel reads another tree than the mount showed:\n{}",
        diff(&before, &k)
    );
}

#[test]
fn fsx_ext4_seed1() {
    fsx(Kind::Ext4, 1, 250);
}

#[test]
fn fsx_ext4_seed2() {
    fsx(Kind::Ext4, 2, 250);
}

#[test]
fn fsx_ext4_seed3() {
    fsx(Kind::Ext4, 3, 250);
}

#[test]
fn fsx_xfs_seed1() {
    fsx(Kind::Xfs, 1, 250);
}

#[test]
fn fsx_xfs_seed2() {
    fsx(Kind::Xfs, 2, 250);
}

#[test]
fn fsx_xfs_seed3() {
    fsx(Kind::Xfs, 3, 250);
}

/// An operation of an errno case, on a root.
type Case = Box<dyn Fn(&Path) -> Outcome>;

/// One errno case of pjdfstest's kind: an operation, the errno POSIX and
/// Linux give.
fn errno_case(root: &Path, what: &str, op: &dyn Fn(&Path) -> Outcome, want: Outcome) {
    let got = op(root);
    assert_eq!(
        got,
        want,
        "{what} in {}: got {got:?}, want {want:?}",
        root.display()
    );
}

/// The setup pjdfstest's cases start from.
fn pjd_setup(root: &Path) {
    sh_in(
        root,
        "mkdir dir full sticky && chmod 1777 sticky && touch file full/x sticky/rootfile \
         && chmod 0644 file && ln -s file link && echo data > rofile && chmod 0444 rofile",
    );
}

/// A port of pjdfstest's errno cases (open, create, unlink, rename, link,
/// mkdir, rmdir, chmod, chown, truncate, symlink), as root and as an
/// unprivileged user, on the mount and on the host, which must agree.
fn pjd(kind: Kind) {
    use nix::errno::Errno::*;
    use nix::fcntl::{RenameFlags, renameat2};
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    let host = tempfile::tempdir().expect("tempdir");
    let reference = host.path().join("ref");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    std::fs::create_dir(&reference).expect("mkdir ref");
    make_image(&img, kind, 512 * M);
    let served = Served::mount(img.to_str().expect("utf-8 path"), &mnt, &[]);
    let long = "x".repeat(256);
    let e = |x: nix::errno::Errno| Err(x as i32);
    for root in [&mnt, &reference] {
        pjd_setup(root);
        let open = |p: &str, o: &mut OpenOptions| {
            let p = p.to_string();
            let o = o.clone();
            move |r: &Path| io(o.open(r.join(&p)))
        };
        let rn = |a: &'static str, b: &'static str, f: RenameFlags| {
            move |r: &Path| {
                nx(renameat2(
                    nix::fcntl::AT_FDCWD,
                    &r.join(a),
                    nix::fcntl::AT_FDCWD,
                    &r.join(b),
                    f,
                ))
            }
        };
        let none = RenameFlags::empty();
        let cases: Vec<(&str, Case, Outcome)> = vec![
            (
                "open O_CREAT|O_EXCL of an existing file",
                Box::new(open(
                    "file",
                    OpenOptions::new().write(true).create_new(true),
                )),
                e(EEXIST),
            ),
            (
                "open of a missing file",
                Box::new(open("missing", OpenOptions::new().read(true))),
                e(ENOENT),
            ),
            (
                "open of a directory for writing",
                Box::new(open("dir", OpenOptions::new().write(true))),
                e(EISDIR),
            ),
            (
                "open through a file as a directory",
                Box::new(open("file/x", OpenOptions::new().read(true))),
                e(ENOTDIR),
            ),
            (
                "create of a 256-byte name",
                Box::new(open(&long, OpenOptions::new().write(true).create(true))),
                e(ENAMETOOLONG),
            ),
            (
                "unlink of a directory",
                Box::new(|r: &Path| io(std::fs::remove_file(r.join("dir")))),
                e(EISDIR),
            ),
            (
                "unlink of a missing name",
                Box::new(|r: &Path| io(std::fs::remove_file(r.join("missing")))),
                e(ENOENT),
            ),
            (
                "rmdir of a non-empty directory",
                Box::new(|r: &Path| io(std::fs::remove_dir(r.join("full")))),
                e(ENOTEMPTY),
            ),
            (
                "rmdir of a file",
                Box::new(|r: &Path| io(std::fs::remove_dir(r.join("file")))),
                e(ENOTDIR),
            ),
            (
                "rmdir of dir/.",
                Box::new(|r: &Path| {
                    nx(nix::unistd::unlinkat(
                        nix::fcntl::AT_FDCWD,
                        &r.join("dir/."),
                        nix::unistd::UnlinkatFlags::RemoveDir,
                    ))
                }),
                e(EINVAL),
            ),
            (
                "mkdir of an existing name",
                Box::new(|r: &Path| io(std::fs::create_dir(r.join("file")))),
                e(EEXIST),
            ),
            (
                "mkdir of a 256-byte name",
                Box::new({
                    let l = long.clone();
                    move |r: &Path| io(std::fs::create_dir(r.join(&l)))
                }),
                e(ENAMETOOLONG),
            ),
            (
                "rename of a directory over a non-empty one",
                Box::new(rn("dir", "full", none)),
                e(ENOTEMPTY),
            ),
            (
                "rename of a file over a directory",
                Box::new(rn("file", "dir", none)),
                e(EISDIR),
            ),
            (
                "rename of a directory over a file",
                Box::new(rn("dir", "file", none)),
                e(ENOTDIR),
            ),
            (
                "rename of a directory into itself",
                Box::new(rn("full", "full/sub", none)),
                e(EINVAL),
            ),
            (
                "rename RENAME_NOREPLACE over an existing name",
                Box::new(rn("file", "rofile", RenameFlags::RENAME_NOREPLACE)),
                e(EEXIST),
            ),
            (
                "rename RENAME_EXCHANGE with a missing name",
                Box::new(rn("file", "missing", RenameFlags::RENAME_EXCHANGE)),
                e(ENOENT),
            ),
            (
                "rename of a missing name",
                Box::new(rn("missing", "other", none)),
                e(ENOENT),
            ),
            (
                "link of a directory",
                Box::new(|r: &Path| io(std::fs::hard_link(r.join("dir"), r.join("dirlink")))),
                e(EPERM),
            ),
            (
                "link onto an existing name",
                Box::new(|r: &Path| io(std::fs::hard_link(r.join("file"), r.join("rofile")))),
                e(EEXIST),
            ),
            (
                "symlink onto an existing name",
                Box::new(|r: &Path| io(std::os::unix::fs::symlink("x", r.join("file")))),
                e(EEXIST),
            ),
            (
                "truncate of a directory",
                Box::new(|r: &Path| nx(nix::unistd::truncate(&r.join("dir"), 0))),
                e(EISDIR),
            ),
            (
                "truncate to a negative size",
                Box::new(|r: &Path| nx(nix::unistd::truncate(&r.join("file"), -1))),
                e(EINVAL),
            ),
            (
                "readlink of a file",
                Box::new(|r: &Path| io(std::fs::read_link(r.join("file")))),
                e(EINVAL),
            ),
            (
                "rename of a file over a file",
                Box::new(rn("rofile", "file", none)),
                Ok(()),
            ),
            (
                "rename RENAME_EXCHANGE of a file and a directory",
                Box::new(rn("file", "dir", RenameFlags::RENAME_EXCHANGE)),
                Ok(()),
            ),
        ];
        for (what, op, want) in &cases {
            errno_case(root, what, op.as_ref(), *want);
        }
    }
    // As an unprivileged user: the kernel's permission checks
    // (default_permissions) and the owner checks.
    let script = "t() { \"$@\" 2>&1 | sed 's/^[^:]*: //'; }
        t touch dir/new
        t chmod 777 link
        t chown 65534 rofile
        t truncate -s 0 rofile
        t rm -f sticky/rootfile
        t mkdir file/x
        t ln -s x dir/sym
        t mv rofile dir/
        echo done";
    let mut outs = Vec::new();
    for root in [&mnt, &reference] {
        let o = run(Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg(script)
            .current_dir(root));
        outs.push(format!("{}{}", stdout(&o), stderr(&o)));
    }
    assert_eq!(outs[0], outs[1], "unprivileged: the mount, then the host");
    for want in [
        "Permission denied",
        "Operation not permitted",
        "Not a directory",
    ] {
        assert!(
            outs[0].contains(want),
            "unprivileged run without {want}: {}",
            outs[0]
        );
    }
    assert!(outs[0].ends_with("done\n"), "{}", outs[0]);
    let (a, b) = (manifest(&mnt, false), manifest(&reference, false));
    assert!(a == b, "trees differ:\n{}", diff(&a, &b));
    served.unmount();
    assert_fsck_clean(&img, kind);
}

#[test]
fn pjd_errno_cases_ext4() {
    pjd(Kind::Ext4);
}

#[test]
fn pjd_errno_cases_xfs() {
    pjd(Kind::Xfs);
}

/// A read-only mount refuses every change with EROFS and changes nothing.
#[test]
fn read_only_mount_refuses_writes() {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    make_image(&img, Kind::Ext4, 256 * M);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &[]);
    sh_in(&mnt, "echo hello > f && mkdir d");
    served.unmount();
    let before = common::file_hash(&img);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &["ro"]);
    assert_eq!(
        std::fs::read_to_string(mnt.join("f")).expect("read"),
        "hello\n"
    );
    let erofs = Err(nix::errno::Errno::EROFS as i32);
    assert_eq!(
        io(OpenOptions::new().append(true).open(mnt.join("f"))),
        erofs
    );
    assert_eq!(io(std::fs::create_dir(mnt.join("e"))), erofs);
    assert_eq!(io(std::fs::remove_file(mnt.join("f"))), erofs);
    served.unmount();
    assert_eq!(common::file_hash(&img), before, "a read-only mount wrote");
}

/// What real tools do in the real-tools test: copy a documentation tree,
/// unpack headers with tar, write with dd, allocate and punch with
/// fallocate, move and remove trees, link.
const TOOLS_SCRIPT: &str = "set -e
cp -a /usr/share/doc doc
tar -C /usr -cf - include | tar -xf -
dd if=\"$SRC\" of=big bs=1M conv=fsync status=none
dd if=\"$SRC\" of=big bs=4k seek=100 count=50 conv=notrunc status=none
fallocate -l 20M falloc
fallocate -p -o 4096 -l 1M big
touch kept && fallocate -n -l 8M -o 0 kept
mv doc documentation
mv include/linux linux-headers
rm -r include/asm-generic documentation/bash
ln big big.link
ln -s documentation docs
mkdir -p a/b/c && echo deep > a/b/c/file && chmod 0600 a/b/c/file
sync
";

/// Real tools write into an `ebsim mount`; after the unmount the image is
/// fsck-clean and the kernel reads exactly what the mount showed, which is
/// what the same commands made in a host directory.
fn real_tools(kind: Kind) {
    if !ready() || !require_tools(&["tar", "fallocate", "dd"]) {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    let host = tempfile::tempdir().expect("tempdir");
    let reference = host.path().join("ref");
    let src = tmp.path().join("src.bin");
    std::fs::write(&src, pattern(7, 24 * M as usize)).expect("write source");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    std::fs::create_dir(&reference).expect("mkdir ref");
    make_image(&img, kind, 1024 * M);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &[]);
    for root in [&mnt, &reference] {
        let o = run(Command::new("sh")
            .arg("-c")
            .arg(TOOLS_SCRIPT)
            .env("SRC", &src)
            .current_dir(root));
        assert!(
            o.status.success(),
            "tools in {}: {}{}",
            root.display(),
            stdout(&o),
            stderr(&o)
        );
    }
    let (a, b) = (manifest(&mnt, false), manifest(&reference, false));
    assert!(a.len() > 1000, "only {} entries", a.len());
    assert!(a == b, "mount and host differ:\n{}", diff(&a, &b));
    let shown = manifest(&mnt, true);
    served.unmount();
    assert_fsck_clean(&img, kind);
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let lm = LoopMount::new(&img, &kdir);
    let k = manifest(&lm.dir, true);
    assert!(
        k == shown,
        "the kernel reads another tree than the mount showed:\n{}",
        diff(&shown, &k)
    );
}

#[test]
fn real_tools_ext4() {
    real_tools(Kind::Ext4);
}

#[test]
fn real_tools_xfs() {
    real_tools(Kind::Xfs);
}

/// The server killed with SIGKILL while tools write: the next open of the
/// image rolls back a half-made commit (or finds it complete), the image is
/// fsck-clean, and what was fsynced before the kill is there.
fn kill9(kind: Kind) {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    make_image(&img, kind, 1024 * M);
    let data = pattern(11, 3 * M as usize);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &[]);
    {
        let mut f = std::fs::File::create(mnt.join("durable")).expect("create");
        std::io::Write::write_all(&mut f, &data).expect("write");
        f.sync_all().expect("fsync");
    }
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg("cp -a /usr/share/doc doc; tar -C /usr -cf - include | tar -xf -")
        .current_dir(&mnt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start writers");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    served.kill9();
    let _ = writer.wait();
    // The next open (a mount) recovers; then unmount cleanly.
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &[]);
    assert_eq!(
        std::fs::read(mnt.join("durable")).expect("read durable"),
        data,
        "fsynced data lost"
    );
    served.unmount();
    assert_fsck_clean(&img, kind);
}

#[test]
fn kill9_mid_write_ext4() {
    kill9(Kind::Ext4);
}

#[test]
fn kill9_mid_write_xfs() {
    kill9(Kind::Xfs);
}

/// resize2fs / xfs_growfs of a served image grow it online through the
/// server: files written before and after are intact, statfs shows the
/// new size, the image is fsck-clean and the kernel reads it.
fn online_grow(kind: Kind) {
    if !ready() {
        return;
    }
    // Not on /dev/shm: growpart reads a `/dev/...` path as a guest's device.
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    make_image(&img, kind, 512 * M);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &[]);
    let before = pattern(21, 5 * M as usize);
    std::fs::write(mnt.join("before"), &before).expect("write before");
    let size0 = nix::sys::statvfs::statvfs(&mnt).expect("statvfs");
    std::fs::File::options()
        .write(true)
        .open(&img)
        .expect("open image")
        .set_len(2048 * M)
        .expect("grow image");
    let o = match kind {
        Kind::Ext4 => run(ebsim("resize2fs").arg(&img)),
        Kind::Xfs => run(ebsim("xfs_growfs").arg(&mnt)),
    };
    assert!(o.status.success(), "grow: {}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    match kind {
        Kind::Ext4 => assert!(
            text.contains("on-line resizing required") && text.contains("is now 524288 (4k)"),
            "{text}"
        ),
        Kind::Xfs => assert!(
            text.contains("data blocks changed from 131072 to 524288"),
            "{text}"
        ),
    }
    let size1 = nix::sys::statvfs::statvfs(&mnt).expect("statvfs");
    assert!(
        size1.blocks() * size1.fragment_size() > 3 * size0.blocks() * size0.fragment_size(),
        "statfs after the grow: {} blocks of {}",
        size1.blocks(),
        size1.fragment_size()
    );
    // Fill past the old size.
    let after = pattern(22, 700 * M as usize);
    std::fs::write(mnt.join("after"), &after).expect("write past the old size");
    assert_eq!(std::fs::read(mnt.join("before")).expect("read"), before);
    served.unmount();
    assert_fsck_clean(&img, kind);
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let lm = LoopMount::new(&img, &kdir);
    assert_eq!(std::fs::read(lm.dir.join("before")).expect("read"), before);
    assert!(std::fs::read(lm.dir.join("after")).expect("read") == after);
}

#[test]
fn online_grow_ext4() {
    online_grow(Kind::Ext4);
}

#[test]
fn online_grow_xfs() {
    online_grow(Kind::Xfs);
}

/// fuse2fs's exit codes: 2 when the image holds no filesystem ebsim
/// serves, 1 for usage errors; nothing is mounted either way.
#[test]
fn mount_errors_exit_as_fuse2fs() {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("zeros.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    std::fs::File::create(&img)
        .expect("create")
        .set_len(64 * M)
        .expect("size");
    let o = run(ebsim("mount").arg(&img).arg(&mnt));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no ext4 or XFS filesystem found"),
        "{}",
        stderr(&o)
    );
    let o = run(ebsim("mount").arg("-o").arg("bogus").arg(&img).arg(&mnt));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown mount option 'bogus'"));
    assert!(!is_ebsim_mount(&mnt));
}

/// The kernel's own `umount DIR` (not ebsim's) ends the server, which
/// makes the final commit before it exits; the daemonizing form returns
/// once the mount is live.
#[test]
fn plain_umount_commits() {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    make_image(&img, Kind::Xfs, 512 * M);
    // Daemonized (no -f): live when the command returns.
    let o = run(ebsim("mount")
        .arg(&img)
        .arg(&mnt)
        .arg("-o")
        .arg("commit=60"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_ebsim_mount(&mnt));
    let guard = DetachOnDrop(mnt.clone());
    sh_in(
        &mnt,
        "echo kept > f && mkdir -p d/e && cp /etc/os-release d/e/",
    );
    let info = ebsim::fuse::control::info(&img)
        .expect("control channel")
        .expect("served");
    assert_eq!(info.fs_type, "xfs");
    let o = run(Command::new("umount").arg(&mnt));
    assert!(o.status.success(), "umount: {}", stderr(&o));
    // The server exits after its final commit.
    let proc = format!("/proc/{}", info.pid);
    let start = std::time::Instant::now();
    while Path::new(&proc).exists()
        && !std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(start.elapsed().as_secs() < 30, "the server did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(guard);
    assert_fsck_clean(&img, Kind::Xfs);
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let lm = LoopMount::new(&img, &kdir);
    assert_eq!(
        std::fs::read_to_string(lm.dir.join("f")).expect("read"),
        "kept\n"
    );
    assert_eq!(
        std::fs::read(lm.dir.join("d/e/os-release")).expect("read"),
        std::fs::read("/etc/os-release").expect("read")
    );
}

/// Detaches a mount left behind by a failed test.
struct DetachOnDrop(std::path::PathBuf);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        if is_ebsim_mount(&self.0) {
            let _ = run(ebsim("umount").arg(&self.0));
        }
        if is_ebsim_mount(&self.0) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Partition 1 of a GPT image served as `IMAGE@1`: growpart of the
/// served disk sends the table's writes to the server (the disk belongs to
/// it, as the kernel takes BLKPG while a partition is mounted), which
/// writes them around the partition it serves; the partition's filesystem
/// is then grown online through the control channel (the partition's new
/// extent read from the table), with files written before and after
/// intact, the table equal to what the real growpart writes on a copy,
/// sgdisk -v clean, fsck-clean and read by the kernel.
#[test]
fn partition_served_and_grown() {
    if !ready() || !require_tools(&["sfdisk", "growpart", "sgdisk"]) {
        return;
    }
    // Not on /dev/shm: growpart reads a `/dev/...` path as a guest's device.
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = tmp.path().join("disk.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let imgs = img.to_str().expect("utf-8").to_string();
    common::sh(&format!(
        "truncate -s 1G {imgs} && printf 'label: gpt\\nstart=2048, size=400M\\n' | sfdisk -q {imgs} \
         && mkfs.ext4 -q -b 4096 -E offset=1048576 {imgs} 400M"
    ));
    let spec = format!("{imgs}@1");
    let served = Served::mount(&spec, &mnt, &[]);
    let a = pattern(31, 3 * M as usize);
    std::fs::write(mnt.join("a"), &a).expect("write a");
    common::sh(&format!("truncate -s 2G {imgs}"));
    let dump = || stdout(&run(Command::new("sfdisk").arg("--dump").arg(&img)));
    // The real growpart on a copy of the table (the filesystem's bytes do
    // not matter to it).
    let copy = tmp.path().join("copy.img");
    common::sh(&format!(
        "truncate -s 2G {c} && dd if={imgs} of={c} bs=1M count=1 conv=notrunc status=none \
         && sgdisk -e {c} >/dev/null && growpart {c} 1 >/dev/null",
        c = copy.display()
    ));
    let o = run(ebsim("growpart").arg(&img).arg("1"));
    assert!(o.status.success(), "growpart: {}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).starts_with("CHANGED: partition=1"),
        "{}",
        stdout(&o)
    );
    assert!(
        ebsim::fuse::control::info(&img).expect("info").is_some(),
        "the server ended"
    );
    let strip = |d: String| {
        d.lines()
            .filter(|l| !l.starts_with("device:") && !l.starts_with("label-id:"))
            .map(|l| l.replace(&*copy.to_string_lossy(), &imgs))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(dump()),
        strip(stdout(&run(Command::new("sfdisk")
            .arg("--dump")
            .arg(&copy)))),
        "the table differs from the real growpart's"
    );
    let o = run(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(
        o.status.success() && stdout(&o).contains("No problems found"),
        "sgdisk -v: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let grown = ebsim::fuse::control::grow(
        &img,
        ebsim::fuse::GrowArgs {
            blocks: None,
            force: false,
            imaxpct: None,
            now: 0,
        },
    )
    .expect("grow through the control channel");
    match grown {
        ebsim::fuse::GrowReport::Ext4 {
            old_blocks,
            new_blocks,
            ..
        } => {
            assert_eq!(old_blocks, 102_400);
            assert!(new_blocks > 500_000, "{new_blocks}");
        }
        other => panic!("not ext4: {other:?}"),
    }
    let b = pattern(32, 600 * M as usize);
    std::fs::write(mnt.join("b"), &b).expect("write past the old end");
    assert_eq!(std::fs::read(mnt.join("a")).expect("read a"), a);
    served.unmount();
    let o = run(Command::new("e2fsck")
        .arg("-fn")
        .arg(format!("{imgs}?offset=1048576")));
    assert!(o.status.success(), "e2fsck: {}{}", stdout(&o), stderr(&o));
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let o = run(Command::new("mount")
        .args(["-o", "loop,ro,offset=1048576"])
        .arg(&img)
        .arg(&kdir));
    assert!(o.status.success(), "mount: {}", stderr(&o));
    let lm = LoopMount { dir: kdir };
    assert_eq!(std::fs::read(lm.dir.join("a")).expect("read a"), a);
    assert!(std::fs::read(lm.dir.join("b")).expect("read b") == b);
}

/// SIGTERM to the server commits and unmounts, and it exits 0.
#[test]
fn sigterm_commits_and_unmounts() {
    if !ready() {
        return;
    }
    let tmp = common::big_tempdir();
    let img = tmp.path().join("fs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    make_image(&img, Kind::Ext4, 256 * M);
    let served = Served::mount(img.to_str().expect("utf-8"), &mnt, &["commit=60"]);
    std::fs::write(mnt.join("f"), b"staged\n").expect("write");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(served.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let status = served.wait_exit();
    assert!(status.success(), "the server exited with {status}");
    assert!(!is_ebsim_mount(&mnt));
    assert_fsck_clean(&img, Kind::Ext4);
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let lm = LoopMount::new(&img, &kdir);
    assert_eq!(
        std::fs::read_to_string(lm.dir.join("f")).expect("read"),
        "staged\n"
    );
}

/// Two partitions of one disk served by one process (as the guest's init
/// serves them): the second `Volume::open` joins the first's image handle
/// and lock, each partition has its own FUSE mount, and the image's one
/// control channel routes by partition: info, growpart's table write
/// (checked against both partitions) and the online grow of the XFS
/// partition. Unmounting one leaves the other served; both are fsck-clean
/// after and the kernel reads what was written. A second host process
/// (`ebsim mount IMAGE@1`) is refused with the holder named.
#[test]
fn two_partitions_one_server() {
    use ebsim::fuse::{self, CommitPolicy, MountConfig, Volume, VolumeSpec, kernel};
    if !ready() || !require_tools(&["sfdisk", "sgdisk"]) {
        return;
    }
    // Not on /dev/shm: growpart reads a `/dev/...` path as a guest's device.
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = tmp.path().join("disk.img");
    let imgs = img.to_str().expect("utf-8").to_string();
    common::sh(&format!(
        "truncate -s 1G {imgs} && printf 'label: gpt\\nstart=2048, size=300M\\nsize=300M\\n' \
         | sfdisk -q {imgs} && mkfs.ext4 -q -b 4096 -E offset=1048576 {imgs} 300M \
         && truncate -s 600M {imgs}.x && mkfs.xfs -q -f -d file,name={imgs}.x,size=300m \
         && dd if={imgs}.x of={imgs} bs=1M seek=301 count=300 conv=notrunc,sparse status=none \
         && rm {imgs}.x"
    ));
    let serve = |part: u32, dir: &Path| {
        std::fs::create_dir(dir).expect("mkdir");
        let vol = Volume::open(VolumeSpec {
            image: img.clone(),
            part: Some(part),
            read_only: false,
        })
        .expect("open the partition");
        let cfg = MountConfig {
            mountpoint: dir.to_path_buf(),
            flags: kernel::MountFlags {
                read_only: false,
                allow_other: true,
                nosuid: false,
                nodev: true,
                noexec: false,
                noatime: false,
                fsname: format!("{imgs}@{part}"),
                root_mode: 0o040755,
            },
            policy: CommitPolicy::default(),
            control_image: Some(img.clone()),
            part: Some(part),
        };
        let m = fuse::mount(Box::new(vol), &cfg).expect("mount");
        let h = m.handle();
        let t = std::thread::spawn(move || m.run());
        (h, t, DetachOnDrop(dir.to_path_buf()))
    };
    let d1 = tmp.path().join("p1");
    let d2 = tmp.path().join("p2");
    let (h1, t1, g1) = serve(1, &d1);
    // The same partition twice is refused, not a second writer.
    let again = Volume::open(VolumeSpec {
        image: img.clone(),
        part: Some(1),
        read_only: false,
    });
    assert!(
        matches!(&again, Err(e) if e.to_string().contains("busy")),
        "{again:?}"
    );
    drop(again);
    let (h2, t2, g2) = serve(2, &d2);
    let a = pattern(41, 2 * M as usize);
    let b = pattern(42, 3 * M as usize);
    std::fs::write(d1.join("a"), &a).expect("write a");
    std::fs::write(d2.join("b"), &b).expect("write b");
    let i1 = fuse::control::info_of(&img, Some(1))
        .expect("info")
        .expect("p1 served");
    let i2 = fuse::control::info_of(&img, Some(2))
        .expect("info")
        .expect("p2 served");
    assert_eq!((i1.fs_type.as_str(), i2.fs_type.as_str()), ("ext4", "xfs"));
    assert_eq!(i1.served.len(), 2, "{:?}", i1.served);
    assert!(
        fuse::control::info_of(&img, Some(3))
            .expect("info")
            .is_none()
    );
    // A second process cannot join: refused, naming the holder.
    let d3 = tmp.path().join("p3");
    std::fs::create_dir(&d3).expect("mkdir");
    let o = run(ebsim("mount").arg("-f").arg(format!("{imgs}@1")).arg(&d3));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "served by ebsim mount (pid {})",
            std::process::id()
        )) && stderr(&o).contains("partition 2 at"),
        "{}",
        stderr(&o)
    );
    // growpart of the disk: the table's writes go to the server, which
    // checks them against both partitions; then p2's XFS grows online.
    common::sh(&format!("truncate -s 2G {imgs}"));
    let o = run(ebsim("growpart").arg(&img).arg("2"));
    assert!(o.status.success(), "growpart: {}{}", stdout(&o), stderr(&o));
    let o = run(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(stdout(&o).contains("No problems found"), "{}", stdout(&o));
    let grown =
        fuse::control::grow_of(&img, Some(2), ebsim::fuse::GrowArgs::default()).expect("grow p2");
    match grown {
        fuse::GrowReport::Xfs {
            old_dblocks,
            new_dblocks,
            ..
        } => assert!(
            new_dblocks > 4 * old_dblocks,
            "{old_dblocks} -> {new_dblocks}"
        ),
        other => panic!("not XFS: {other:?}"),
    }
    // A table write inside a served partition is refused.
    let inside = fuse::control::write_table(&img, vec![(2 * M, vec![0u8; 512])]);
    assert!(
        matches!(&inside, Err(e) if e.to_string().contains("inside the mounted partition")),
        "{inside:?}"
    );
    let big = pattern(43, 500 * M as usize);
    std::fs::write(d2.join("big"), &big).expect("write past p2's old end");
    // Unmount p1: p2 stays served, through the same channel.
    h1.sync().expect("sync p1");
    h1.unmount().expect("unmount p1");
    h1.wait();
    t1.join().expect("p1 thread").expect("p1 session");
    drop(g1);
    assert!(!is_ebsim_mount(&d1));
    let i2 = fuse::control::info(&img)
        .expect("info")
        .expect("p2 still served");
    assert_eq!(i2.part, Some(2));
    assert_eq!(i2.served.len(), 1);
    assert_eq!(std::fs::read(d2.join("b")).expect("read b"), b);
    std::fs::write(d2.join("after"), b"p1 gone\n").expect("write after");
    h2.sync().expect("sync p2");
    h2.unmount().expect("unmount p2");
    h2.wait();
    t2.join().expect("p2 thread").expect("p2 session");
    drop(g2);
    assert!(fuse::control::info(&img).expect("info").is_none());
    assert!(!fuse::control::socket_path(&img).exists());
    // Both clean, and the kernel reads both.
    let o = run(Command::new("e2fsck")
        .arg("-fn")
        .arg(format!("{imgs}?offset=1048576")));
    assert!(o.status.success(), "e2fsck: {}{}", stdout(&o), stderr(&o));
    // The kernel's side: the lock from here on (see the module doc).
    let _lock = mount_lock();
    let p2_off = 301 * M;
    let o = run(Command::new("losetup")
        .args(["-f", "--show", "-o", &p2_off.to_string()])
        .arg(&img));
    assert!(o.status.success(), "losetup: {}", stderr(&o));
    let lo = stdout(&o).trim().to_string();
    let o2 = run(Command::new("xfs_repair").arg("-n").arg(&lo));
    let kdir = tmp.path().join("kernel");
    std::fs::create_dir(&kdir).expect("mkdir kernel");
    let om = run(Command::new("mount").args(["-o", "ro"]).arg(&lo).arg(&kdir));
    let read_big = std::fs::read(kdir.join("big"));
    let read_after = std::fs::read_to_string(kdir.join("after"));
    if om.status.success() {
        let _ = run(Command::new("umount").arg(&kdir));
    }
    let _ = run(Command::new("losetup").arg("-d").arg(&lo));
    assert!(
        o2.status.success(),
        "xfs_repair: {}{}",
        stdout(&o2),
        stderr(&o2)
    );
    assert!(om.status.success(), "mount: {}", stderr(&om));
    assert!(read_big.expect("read big") == big);
    assert_eq!(read_after.expect("read after"), "p1 gone\n");
    let k1 = tmp.path().join("k1");
    std::fs::create_dir(&k1).expect("mkdir k1");
    let o = run(Command::new("mount")
        .args(["-o", "loop,ro,offset=1048576"])
        .arg(&img)
        .arg(&k1));
    assert!(o.status.success(), "mount: {}", stderr(&o));
    let lm = LoopMount { dir: k1 };
    assert_eq!(std::fs::read(lm.dir.join("a")).expect("read a"), a);
}
