//! `mount` (util-linux) inside the emulated instance: list the mounts,
//! mount a device of the instance on a path, mount what the image's fstab
//! lists (`mount DIR`, `mount -a`). A mount is recorded in the instance
//! model (what lsblk, df, resize2fs and xfs_growfs see); nothing is mounted
//! on the host, and mount points are not host directories.
//!
//! Messages, channels and exit codes follow the instance's util-linux:
//! 2.38 (the default: libmount's messages with the `dmesg(1)` hint after a
//! failed mount system call), 2.30 to 2.37 (Amazon Linux 2, Ubuntu 22.04,
//! Amazon Linux 2023: the same messages without the hint) and 2.23
//! (CentOS 7: its own wording). Parsed by hand: mount's getopt_long with
//! permutation and its own "bad usage" rules do not map onto clap.

use super::getopt::{LongOpt, getopt_long};
use super::guest::{self, Context, NoGuest, Resolved};
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::ec2::model::Mount;
use ebsim::fs::{self, FsInfo, FsKind};
use std::ffi::OsString;

/// Exit codes of mount(8) and umount(8) (`MNT_EX_*`).
pub const EX_USAGE: i32 = 1;
/// A mount or unmount failed.
pub const EX_FAIL: i32 = 32;
/// `mount -a`: some failed, some succeeded.
pub const EX_SOMEOK: i32 = 64;

/// The util-linux generations whose messages differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ul {
    /// 2.23 (CentOS 7): mount's own messages, no libmount excode.
    V223,
    /// 2.30 to 2.37: `mount: TARGET: MESSAGE.`
    V230,
    /// 2.38 and later: the same plus the `dmesg(1)` hint.
    V238,
}

impl Ul {
    /// The generation of a version string (`2.37.2`); unknown: 2.38.
    pub fn of(version: &str) -> Ul {
        let minor = version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok());
        match minor {
            Some(m) if m < 30 => Ul::V223,
            Some(m) if m < 38 => Ul::V230,
            _ => Ul::V238,
        }
    }
}

/// The minor number of a util-linux version (`2.37.2` → 37); unknown: 38.
pub fn minor_of(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(38)
}

/// `mount --version` of a util-linux version. The library feature list
/// is the one Debian 12's 2.38.1 prints; other builds list theirs.
pub fn version_line(prog: &str, version: &str) -> String {
    let v = if version.is_empty() {
        "2.38.1"
    } else {
        version
    };
    format!(
        "{prog} from util-linux {v} (libmount {v}: selinux, smack, btrfs, verity, namespaces, assert, debug)\n"
    )
}

const HINT: &str = "       dmesg(1) may have more information after failed mount system call.\n";

/// Why a mount failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// EINVAL: no filesystem, wrong type, bad option.
    WrongFs { dev: String },
    /// ENOENT on the source.
    NoDevice { dev: String },
    /// ENOENT on the target.
    NoMountPoint,
    /// EBUSY: `src` is mounted on `on` (first mount) already.
    Busy { src: String, on: Vec<String> },
    /// ENODEV.
    UnknownType(String),
    /// Not in fstab (`mount DIR`).
    NotInFstab,
    /// `UUID=`/`LABEL=` names nothing.
    CantFind(String),
}

/// Prints mount's message for `f` (about `spec`, the target or, without
/// one, the source) and returns the exit code.
fn report(ul: Ul, spec: &str, f: &Failure) -> i32 {
    let (msg, syscall, code) = match f {
        Failure::WrongFs { dev } => (
            format!(
                "wrong fs type, bad option, bad superblock on {dev}, missing codepage or helper program, or other error"
            ),
            true,
            EX_FAIL,
        ),
        Failure::NoDevice { dev } => (
            format!("special device {dev} does not exist"),
            true,
            EX_FAIL,
        ),
        Failure::NoMountPoint => ("mount point does not exist".to_string(), true, EX_FAIL),
        Failure::Busy { src, on } => (
            match on.first() {
                Some(t) => format!("{src} already mounted on {t}"),
                None => format!("{src} already mounted or mount point busy"),
            },
            true,
            EX_FAIL,
        ),
        Failure::UnknownType(t) => (format!("unknown filesystem type '{t}'"), true, EX_FAIL),
        Failure::NotInFstab => ("can't find in /etc/fstab".to_string(), false, EX_USAGE),
        Failure::CantFind(s) => (format!("can't find {s}"), false, EX_USAGE),
    };
    if ul == Ul::V223 {
        err(&report_223(spec, f));
        return code;
    }
    let mut text = format!("mount: {spec}: {msg}.\n");
    if syscall && ul == Ul::V238 {
        text.push_str(HINT);
    }
    err(&text);
    code
}

/// util-linux 2.23's wording (sys-utils/mount.c of that release).
fn report_223(spec: &str, f: &Failure) -> String {
    match f {
        Failure::WrongFs { dev } => format!(
            "mount: wrong fs type, bad option, bad superblock on {dev},\n       \
             missing codepage or helper program, or other error\n\n       \
             In some cases useful info is found in syslog - try\n       \
             dmesg | tail or so.\n"
        ),
        Failure::NoDevice { dev } => format!("mount: special device {dev} does not exist\n"),
        Failure::NoMountPoint => format!("mount: mount point {spec} does not exist\n"),
        Failure::Busy { src, on } => {
            let mut s = format!("mount: {src} is already mounted or {spec} busy\n");
            for t in on {
                s.push_str(&format!("       {src} is already mounted on {t}\n"));
            }
            s
        }
        Failure::UnknownType(t) => format!("mount: unknown filesystem type '{t}'\n"),
        Failure::NotInFstab => format!("mount: can't find {spec} in /etc/fstab\n"),
        Failure::CantFind(s) => format!("mount: can't find {s}\n"),
    }
}

/// Filesystem types a guest kernel knows (mounting another is ENODEV).
const KERNEL_TYPES: &[&str] = &[
    "ext2",
    "ext3",
    "ext4",
    "xfs",
    "btrfs",
    "vfat",
    "msdos",
    "fat",
    "exfat",
    "iso9660",
    "udf",
    "squashfs",
    "tmpfs",
    "ramfs",
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "overlay",
    "nfs",
    "nfs4",
    "cifs",
    "fuse",
    "efivarfs",
    "autofs",
    "mqueue",
    "hugetlbfs",
];

/// libmount's type pattern (`-t`): a comma list; a leading `no` on the
/// first item negates the whole list.
fn type_matches(pattern: &str, fstype: &str) -> bool {
    let neg = pattern.starts_with("no");
    let hit = pattern
        .split(',')
        .map(|t| {
            if neg {
                t.strip_prefix("no").unwrap_or(t)
            } else {
                t
            }
        })
        .any(|t| t == fstype);
    hit != neg
}

/// The options /proc/mounts shows for a mount of `kind` with the user's
/// `-o` options, on a guest of util-linux generation `ul` (its kernel: 3.10
/// on CentOS 7, 5.10 to 6.x elsewhere). Err: an option the kernel
/// refuses (EINVAL).
pub fn kernel_options(kind: FsKind, opts: &[String], ul: Ul) -> Result<String, ()> {
    let mut ro = false;
    let (mut nosuid, mut nodev, mut noexec) = (false, false, false);
    let (mut sync, mut dirsync, mut lazytime) = (false, false, false);
    #[derive(PartialEq)]
    enum Atime {
        Relatime,
        Noatime,
        Strict,
    }
    let mut atime = Atime::Relatime;
    let mut nodiratime = false;
    let mut fs_opts: Vec<String> = Vec::new();
    for o in opts
        .iter()
        .flat_map(|o| o.split(','))
        .filter(|o| !o.is_empty())
    {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "nosuid" => nosuid = true,
            "suid" => nosuid = false,
            "nodev" => nodev = true,
            "dev" => nodev = false,
            "noexec" => noexec = true,
            "exec" => noexec = false,
            "sync" => sync = true,
            "async" => sync = false,
            "dirsync" => dirsync = true,
            "lazytime" => lazytime = true,
            "nolazytime" => lazytime = false,
            "noatime" => atime = Atime::Noatime,
            "relatime" | "atime" => atime = Atime::Relatime,
            "strictatime" => atime = Atime::Strict,
            "norelatime" => atime = Atime::Strict,
            "nodiratime" => nodiratime = true,
            "diratime" => nodiratime = false,
            // Userspace options: fstab's and mount's own, never the kernel's.
            "defaults" | "auto" | "noauto" | "user" | "nouser" | "users" | "owner" | "group"
            | "nofail" | "_netdev" | "silent" | "loud" => {}
            _ if o.starts_with("x-") || o.starts_with("comment=") => {}
            other => fs_opts.push(other.to_string()),
        }
    }
    let mut out = vec![if ro { "ro" } else { "rw" }.to_string()];
    for (on, name) in [
        (sync, "sync"),
        (dirsync, "dirsync"),
        (lazytime, "lazytime"),
        (nosuid, "nosuid"),
        (nodev, "nodev"),
        (noexec, "noexec"),
        (atime == Atime::Noatime, "noatime"),
        (nodiratime, "nodiratime"),
        (atime == Atime::Relatime, "relatime"),
    ] {
        if on {
            out.push(name.to_string());
        }
    }
    match kind {
        FsKind::Ext4 => out.extend(ext4_options(&fs_opts, ul)?),
        FsKind::Xfs => out.extend(xfs_options(&fs_opts, ul)?),
    }
    Ok(out.join(","))
}

/// ext4's part, in `_ext4_show_options` order: flags, then errors=,
/// commit=, data=. Defaults are not shown (data=ordered only by 3.10).
fn ext4_options(opts: &[String], ul: Ul) -> Result<Vec<String>, ()> {
    const FLAGS: &[&str] = &[
        "journal_checksum",
        "nobarrier",
        "noauto_da_alloc",
        "discard",
        "nodelalloc",
        "dioread_nolock",
        "noinit_itable",
    ];
    let mut flags: Vec<&str> = Vec::new();
    let (mut errors, mut commit, mut data) = (None, None, None);
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
        match (k, v) {
            (f, None) if FLAGS.contains(&f) => {
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            ("nodiscard", None) => flags.retain(|f| *f != "discard"),
            ("barrier", None) => flags.retain(|f| *f != "nobarrier"),
            ("delalloc", None) => flags.retain(|f| *f != "nodelalloc"),
            ("auto_da_alloc", None) => flags.retain(|f| *f != "noauto_da_alloc"),
            ("init_itable", _) => flags.retain(|f| *f != "noinit_itable"),
            ("user_xattr" | "acl" | "journal_async_commit", None) => {}
            ("errors", Some(e @ ("remount-ro" | "continue" | "panic"))) => errors = Some(e),
            ("commit", Some(n)) if n.parse::<u32>().is_ok() => commit = Some(n),
            ("data", Some(d @ ("ordered" | "journal" | "writeback"))) => data = Some(d),
            _ => return Err(()),
        }
    }
    flags.sort_by_key(|f| FLAGS.iter().position(|x| x == f));
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    // errors=continue is the default of ebsim's mkfs (s_errors = 1).
    if let Some(e) = errors.filter(|e| *e != "continue") {
        out.push(format!("errors={e}"));
    }
    if let Some(c) = commit.filter(|c| *c != "5") {
        out.push(format!("commit={c}"));
    }
    match data {
        Some(d) if d != "ordered" => out.push(format!("data={d}")),
        _ if ul == Ul::V223 => out.push("data=ordered".into()),
        _ => {}
    }
    Ok(out)
}

/// XFS's part, in `xfs_showargs` order: flags, allocsize=, inode64,
/// logbufs=, logbsize=, quota. The guest kernels (3.10 to 6.x) show
/// `attr2`; 3.10 does not show the default log buffers.
fn xfs_options(opts: &[String], ul: Ul) -> Result<Vec<String>, ()> {
    const FLAGS: &[&str] = &[
        "wsync",
        "noalign",
        "swalloc",
        "nouuid",
        "norecovery",
        "attr2",
        "filestreams",
        "grpid",
        "discard",
        "largeio",
    ];
    let mut flags: Vec<&str> = vec!["attr2"];
    let mut allocsize = None;
    let mut inode64 = true;
    let (mut logbufs, mut logbsize) = (None, None);
    let (mut uq, mut pq, mut gq) = (false, false, false);
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
        match (k, v) {
            (f, None) if FLAGS.contains(&f) => {
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            ("nodiscard", None) => flags.retain(|f| *f != "discard"),
            ("noattr2", None) => flags.retain(|f| *f != "attr2"),
            ("inode64", None) => inode64 = true,
            ("inode32", None) => inode64 = false,
            ("allocsize", Some(s)) => allocsize = Some(s.to_string()),
            ("logbufs", Some(n)) if matches!(n.parse::<u32>(), Ok(2..=8)) => logbufs = Some(n),
            ("logbsize", Some(s)) => logbsize = Some(s.to_string()),
            ("usrquota" | "uquota" | "quota" | "uqnoenforce" | "qnoenforce", None) => uq = true,
            ("prjquota" | "pquota" | "pqnoenforce", None) => pq = true,
            ("grpquota" | "gquota" | "gqnoenforce", None) => gq = true,
            ("noquota", None) => (uq, pq, gq) = (false, false, false),
            _ => return Err(()),
        }
    }
    flags.sort_by_key(|f| FLAGS.iter().position(|x| x == f));
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    if let Some(a) = allocsize {
        out.push(format!("allocsize={a}"));
    }
    out.push(if inode64 { "inode64" } else { "inode32" }.into());
    match (logbufs, ul) {
        (Some(n), _) => out.push(format!("logbufs={n}")),
        (None, Ul::V223) => {}
        (None, _) => out.push("logbufs=8".into()),
    }
    match (logbsize, ul) {
        (Some(s), _) => out.push(format!("logbsize={s}")),
        (None, Ul::V223) => {}
        (None, _) => out.push("logbsize=32k".into()),
    }
    for (on, name) in [(uq, "usrquota"), (pq, "prjquota"), (gq, "grpquota")] {
        if on {
            out.push(name.into());
        }
    }
    if !(uq || pq || gq) {
        out.push("noquota".into());
    }
    Ok(out)
}

/// The filesystem on a resolved device (None: nothing ebsim knows).
pub fn probe(r: &Resolved) -> Option<FsInfo> {
    let dev = guest::open(r, Access::ReadOnly).ok()?;
    fs::probe(dev).ok().flatten()
}

#[derive(Default)]
struct Cli {
    all: bool,
    types: Option<String>,
    options: Vec<String>,
    labels: bool,
    verbose: bool,
    fake: bool,
    source: Option<String>,
    target: Option<String>,
    operands: Vec<String>,
}

const HELP: &str = "
Usage:
 mount [-lhV]
 mount -a [options]
 mount [options] [--source] <source> | [--target] <directory>
 mount [options] <source> <directory>

Mount a filesystem (ebsim: inside the emulated instance).

Options:
 -a, --all               mount all filesystems mentioned in fstab
 -f, --fake              dry run; skip the mount(2) syscall
 -l, --show-labels       show also filesystem labels
 -n, --no-mtab           don't write to /etc/mtab
 -o, --options <list>    comma-separated list of mount options
 -r, --read-only         mount the filesystem read-only (same as -o ro)
 -t, --types <list>      limit the set of filesystem types
 -v, --verbose           say what is being done
 -w, --rw, --read-write  mount the filesystem read-write (default)
 -L, --label <label>     synonym for LABEL=<label>
 -U, --uuid <uuid>       synonym for UUID=<uuid>
     --source <src>      explicitly specifies source (path, label, uuid)
     --target <target>   explicitly specifies mountpoint
 -h, --help              display this help
 -V, --version           display version

Source:
 /dev/xvdf, /dev/nvme1n1p1   a disk or partition of the instance
 /dev/sdf                    the device name given to attach-volume
 UUID=<uuid>, LABEL=<label>  the filesystem with that UUID or label

ebsim: the mount is recorded in the emulated instance (lsblk, df, resize2fs
and xfs_growfs see it); nothing is mounted on this machine. Mount points are
not directories of this machine: any absolute path is accepted. Without a
filesystem type the device is probed (ext4 and XFS). `mount DIR` and
`mount -a` use the fstab of the instance's image.
";

fn usage_error(msg: &str) -> i32 {
    err(&format!(
        "mount: {msg}\nTry 'mount --help' for more information.\n"
    ));
    EX_USAGE
}

/// util-linux 2.38 mount's options, for glibc's getopt_long. The codes
/// of long-only options are private letters.
const OPTSTRING: &str = "aBcfFhilL:m::Mno:O:rRsU:vVwt:T:N:";
const LONGOPTS: &[LongOpt] = &[
    LongOpt::flag("all", 'a'),
    LongOpt::flag("fake", 'f'),
    LongOpt::arg("fstab", 'T'),
    LongOpt::flag("fork", 'F'),
    LongOpt::flag("help", 'h'),
    LongOpt::flag("no-mtab", 'n'),
    LongOpt::flag("read-only", 'r'),
    LongOpt::flag("ro", 'r'),
    LongOpt::flag("verbose", 'v'),
    LongOpt::flag("version", 'V'),
    LongOpt::flag("read-write", 'w'),
    LongOpt::flag("rw", 'w'),
    LongOpt::arg("options", 'o'),
    LongOpt::arg("test-opts", 'O'),
    LongOpt::arg("types", 't'),
    LongOpt::arg("uuid", 'U'),
    LongOpt::arg("label", 'L'),
    LongOpt::flag("bind", 'B'),
    LongOpt::flag("move", 'M'),
    LongOpt::flag("rbind", 'R'),
    LongOpt::flag("make-shared", '\u{1}'),
    LongOpt::flag("make-slave", '\u{1}'),
    LongOpt::flag("make-private", '\u{1}'),
    LongOpt::flag("make-unbindable", '\u{1}'),
    LongOpt::flag("make-rshared", '\u{1}'),
    LongOpt::flag("make-rslave", '\u{1}'),
    LongOpt::flag("make-rprivate", '\u{1}'),
    LongOpt::flag("make-runbindable", '\u{1}'),
    LongOpt::optional("mkdir", 'm'),
    LongOpt::flag("no-canonicalize", 'c'),
    LongOpt::flag("internal-only", 'i'),
    LongOpt::flag("show-labels", 'l'),
    LongOpt::arg("target", '\u{2}'),
    LongOpt::arg("target-prefix", '\u{3}'),
    LongOpt::arg("source", '\u{4}'),
    LongOpt::arg("options-mode", '\u{3}'),
    LongOpt::arg("options-source", '\u{3}'),
    LongOpt::flag("options-source-force", '\u{5}'),
    LongOpt::arg("namespace", 'N'),
];

pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (opts, operands) = match getopt_long(&args, OPTSTRING, LONGOPTS).strict() {
        Ok(v) => v,
        Err(e) => return usage_error(&e.text()),
    };
    let mut c = Cli {
        operands,
        ..Cli::default()
    };
    for o in opts {
        let v = o.arg.clone().unwrap_or_default();
        match o.val {
            'a' => c.all = true,
            'f' => c.fake = true,
            'l' => c.labels = true,
            'v' => c.verbose = true,
            'r' => c.options.push("ro".into()),
            'w' => c.options.push("rw".into()),
            't' => c.types = Some(v),
            'o' => c.options.push(v),
            'L' => c.source = Some(format!("LABEL=\"{v}\"")),
            'U' => c.source = Some(format!("UUID={v}")),
            '\u{4}' => c.source = Some(v),
            '\u{2}' => c.target = Some(v),
            'h' => {
                out(HELP);
                return 0;
            }
            'V' => {
                out(&version_line("mount", &util_linux_or_default()));
                return 0;
            }
            'B' | 'R' | 'M' | '\u{1}' => {
                err("mount: bind, move and propagation changes are not supported by ebsim\n");
                return EX_USAGE;
            }
            '\u{3}' | 'T' | 'm' => {
                err(&format!(
                    "mount: {} is not supported by ebsim\n",
                    o.spelling()
                ));
                return EX_USAGE;
            }
            // -c -F -i -n -s -O -N change nothing in the emulation.
            _ => {}
        }
    }
    let ctx = match guest::context() {
        Ok(c) => c,
        Err(NoGuest(why)) => {
            err(&format!("mount: {why}\n"));
            return EX_FAIL;
        }
    };
    let ul = Ul::of(&ctx.util_linux);
    if c.all {
        return mount_all(&ctx, &c, ul);
    }
    // Sources and targets from operands and --source/--target/-L/-U.
    let (source, target) = match (c.source.clone(), c.target.clone(), c.operands.as_slice()) {
        // Options without anything to mount: util-linux refuses.
        (None, None, []) if !c.options.is_empty() => return usage_error("bad usage"),
        (None, None, []) => return list(&ctx, &c),
        (None, None, [one]) => return mount_fstab(&ctx, &c, ul, one),
        (Some(s), None, []) => return mount_fstab(&ctx, &c, ul, &s),
        (None, Some(t), []) => return mount_fstab(&ctx, &c, ul, &t),
        (None, None, [s, t]) => (s.clone(), t.clone()),
        (Some(s), None, [t]) => (s, t.clone()),
        (None, Some(t), [s]) => (s.clone(), t),
        (Some(s), Some(t), []) => (s, t),
        _ => return usage_error("bad usage"),
    };
    let mut req = Request {
        source,
        target,
        types: c.types.clone(),
        options: c.options.clone(),
        fstab: false,
    };
    req.target = if req.target.starts_with('/') {
        guest::normalize_path(&req.target)
    } else {
        req.target
    };
    match mount_one(&ctx, &req, ul, minor_of(&ctx.util_linux), c.fake) {
        Ok(m) => {
            if c.verbose {
                out(&format!("mount: {} mounted on {}.\n", m.source, m.target));
            }
            0
        }
        Err((spec, f)) => report(ul, &spec, &f),
    }
}

fn util_linux_or_default() -> String {
    guest::context().map(|c| c.util_linux).unwrap_or_default()
}

/// One mount to make.
struct Request {
    source: String,
    target: String,
    types: Option<String>,
    options: Vec<String>,
    fstab: bool,
}

/// Checks and records one mount. Err: the spec to name and why.
fn mount_one(
    ctx: &Context,
    req: &Request,
    ul: Ul,
    minor: u32,
    fake: bool,
) -> Result<Mount, (String, Failure)> {
    let tgt = req.target.clone();
    let fail = |f: Failure| Err((tgt.clone(), f));
    let Some(r) = ctx.resolve(&req.source) else {
        if req.source.starts_with("UUID=") || req.source.starts_with("LABEL=") {
            return fail(Failure::CantFind(req.source.clone()));
        }
        if !req.target.starts_with('/') {
            return fail(Failure::NoMountPoint);
        }
        return fail(Failure::NoDevice {
            dev: req.source.clone(),
        });
    };
    // A device name resolves to a device; a path would be a mount point.
    if !req.source.starts_with("/dev/")
        && !req.source.starts_with("UUID=")
        && !req.source.starts_with("LABEL=")
    {
        return fail(Failure::NoDevice {
            dev: req.source.clone(),
        });
    }
    if !req.target.starts_with('/') {
        return fail(Failure::NoMountPoint);
    }
    let dev = r.dev_path();
    let mine = ctx.mounts_of(&r);
    let on: Vec<String> = mine.iter().map(|m| m.target.clone()).collect();
    // The kernel keeps one superblock per device: mounting it again on the
    // same (topmost) mount point, or as another type, is EBUSY.
    let top_here = ctx.mounts.iter().rev().find(|m| m.target == req.target);
    let same_top = top_here.is_some_and(|m| {
        m.volume_id == r.disk.view.volume_id && m.partition == r.part.as_ref().map(|p| p.number)
    });
    let info = probe(&r);
    let wanted: Vec<&str> = match req.types.as_deref() {
        None | Some("auto") | Some("") => Vec::new(),
        Some(t) => t.split(',').filter(|t| !t.is_empty()).collect(),
    };
    if let Some(unknown) = wanted.iter().find(|t| !KERNEL_TYPES.contains(t)) {
        if wanted.len() == 1 {
            return fail(Failure::UnknownType((*unknown).to_string()));
        }
    }
    let type_ok = |i: &FsInfo| wanted.is_empty() || wanted.contains(&i.kind.name());
    if !mine.is_empty() && (same_top || info.as_ref().is_some_and(|i| !type_ok(i))) {
        return fail(Failure::Busy { src: dev, on });
    }
    let Some(info) = info.filter(|i| i.clean && type_ok(i)) else {
        return fail(Failure::WrongFs { dev });
    };
    let Ok(mut options) = kernel_options(info.kind, &req.options, ul) else {
        return fail(Failure::WrongFs { dev });
    };
    // A second mount shares the superblock, whose read-only state it may
    // not change (EBUSY). Since 2.36 libmount then tries read-only, which
    // works when the superblock is read-only.
    let is_ro = |o: &str| o.split(',').next() == Some("ro");
    let mut warn_ro = false;
    if let Some(first) = mine.first() {
        if is_ro(&first.options) != is_ro(&options) {
            if !is_ro(&first.options) || minor < 36 {
                return fail(Failure::Busy { src: dev, on });
            }
            let mut o = req.options.clone();
            o.push("ro".into());
            let Ok(ro) = kernel_options(info.kind, &o, ul) else {
                return fail(Failure::WrongFs { dev });
            };
            options = ro;
            warn_ro = true;
        }
    }
    let m = Mount {
        volume_id: r.disk.view.volume_id.clone(),
        partition: r.part.as_ref().map(|p| p.number),
        source: dev,
        target: req.target.clone(),
        fstype: info.kind.name().to_string(),
        options,
        fstab: req.fstab,
    };
    if !fake {
        if let Err(NoGuest(why)) = guest::add_mounts(vec![m.clone()]) {
            err(&format!("mount: {why}\n"));
            return fail(Failure::WrongFs { dev: m.source });
        }
    }
    if warn_ro {
        err(&format!(
            "mount: {}: WARNING: source write-protected, mounted read-only.\n",
            m.target
        ));
    }
    Ok(m)
}

/// `mount` with no arguments: the mount table (`-t` filters, `-l` adds
/// labels), as util-linux prints it.
fn list(ctx: &Context, c: &Cli) -> i32 {
    let mut text = String::new();
    for m in &ctx.mounts {
        if let Some(t) = &c.types {
            if !type_matches(t, &m.fstype) {
                continue;
            }
        }
        text.push_str(&format!(
            "{} on {} type {} ({})",
            m.source, m.target, m.fstype, m.options
        ));
        if c.labels {
            // By mount point: a source such as Ubuntu's /dev/root is not a
            // device node.
            if let Some(label) = ctx
                .resolve(&m.target)
                .and_then(|r| probe(&r))
                .map(|i| i.label)
                .filter(|l| !l.is_empty())
            {
                text.push_str(&format!(" [{label}]"));
            }
        }
        text.push('\n');
    }
    out(&text);
    0
}

/// The fstab entry `spec` names: its mount point, or its device.
fn fstab_entry<'a>(ctx: &'a Context, spec: &str) -> Option<&'a Mount> {
    if spec.starts_with('/') && !spec.starts_with("/dev/") {
        let t = guest::normalize_path(spec);
        return ctx.fstab.iter().find(|m| m.target == t);
    }
    let r = ctx.resolve(spec)?;
    let dev = r.dev_path();
    ctx.fstab.iter().find(|m| m.source == dev)
}

/// `mount DIR` / `mount DEVICE`: what the fstab says.
fn mount_fstab(ctx: &Context, c: &Cli, ul: Ul, spec: &str) -> i32 {
    let Some(e) = fstab_entry(ctx, spec) else {
        return report(ul, spec, &Failure::NotInFstab);
    };
    let req = fstab_request(e, c);
    match mount_one(ctx, &req, ul, minor_of(&ctx.util_linux), c.fake) {
        Ok(m) => {
            if c.verbose {
                out(&format!("mount: {} mounted on {}.\n", m.source, m.target));
            }
            0
        }
        Err((spec, f)) => report(ul, &spec, &f),
    }
}

fn fstab_request(e: &Mount, c: &Cli) -> Request {
    let mut options = vec![e.options.clone()];
    options.extend(c.options.iter().cloned());
    Request {
        source: e.source.clone(),
        target: e.target.clone(),
        types: Some(e.fstype.clone()),
        options,
        fstab: true,
    }
}

/// `mount -a`: every fstab entry not mounted yet.
fn mount_all(ctx: &Context, c: &Cli, ul: Ul) -> i32 {
    let (mut ok, mut failed) = (0, 0);
    let mut ctx = ctx.clone();
    for e in ctx.fstab.clone() {
        if let Some(t) = &c.types {
            if !type_matches(t, &e.fstype) {
                continue;
            }
        }
        let mounted = ctx.mounts.iter().any(|m| {
            m.target == e.target && m.volume_id == e.volume_id && m.partition == e.partition
        });
        if mounted {
            if c.verbose {
                out(&format!("{:<25}: already mounted\n", e.target));
            }
            continue;
        }
        match mount_one(
            &ctx,
            &fstab_request(&e, c),
            ul,
            minor_of(&ctx.util_linux),
            c.fake,
        ) {
            Ok(m) => {
                ok += 1;
                if c.verbose {
                    out(&format!("{:<25}: successfully mounted\n", e.target));
                }
                ctx.mounts.push(m);
            }
            Err((spec, f)) => {
                failed += 1;
                report(ul, &spec, &f);
            }
        }
    }
    match (ok, failed) {
        (_, 0) => 0,
        (0, _) => EX_FAIL,
        _ => EX_SOMEOK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_proc_mounts_shows_them() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            kernel_options(FsKind::Xfs, &none, Ul::V230).as_deref(),
            Ok("rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
        assert_eq!(
            kernel_options(FsKind::Xfs, &none, Ul::V223).as_deref(),
            Ok("rw,relatime,attr2,inode64,noquota")
        );
        assert_eq!(
            kernel_options(FsKind::Ext4, &none, Ul::V238).as_deref(),
            Ok("rw,relatime")
        );
        let ubuntu = vec!["discard,errors=remount-ro".to_string()];
        assert_eq!(
            kernel_options(FsKind::Ext4, &ubuntu, Ul::V230).as_deref(),
            Ok("rw,relatime,discard,errors=remount-ro")
        );
        let al = vec!["defaults,noatime,nofail".to_string(), "ro".to_string()];
        assert_eq!(
            kernel_options(FsKind::Xfs, &al, Ul::V230).as_deref(),
            Ok("ro,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
        assert!(kernel_options(FsKind::Ext4, &["bogus".to_string()], Ul::V238).is_err());
        // The catalog's fstab options read back unchanged.
        let amzn = vec!["rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota".to_string()];
        assert_eq!(
            kernel_options(FsKind::Xfs, &amzn, Ul::V230).as_deref(),
            Ok("rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
    }

    #[test]
    fn type_patterns() {
        assert!(type_matches("xfs", "xfs"));
        assert!(!type_matches("xfs", "ext4"));
        assert!(type_matches("ext4,xfs", "xfs"));
        assert!(!type_matches("noext4", "ext4"));
        assert!(type_matches("noext4", "xfs"));
        assert!(type_matches("nosuchfs", "xfs"));
    }

    #[test]
    fn generations() {
        assert_eq!(Ul::of("2.23.2"), Ul::V223);
        assert_eq!(Ul::of("2.30.2"), Ul::V230);
        assert_eq!(Ul::of("2.37.4"), Ul::V230);
        assert_eq!(Ul::of("2.38.1"), Ul::V238);
        assert_eq!(Ul::of(""), Ul::V238);
    }
}
