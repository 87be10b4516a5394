//! `mount` (util-linux) inside the emulated instance: list the mounts,
//! mount a device of the instance on a path, mount what the image's fstab
//! lists (`mount DIR`, `mount -a`). What the kernel and libmount decide is
//! `ebsim::guest::mount`'s; this is the command line, the wording and the
//! exit codes.
//!
//! Messages, channels and exit codes follow the instance's util-linux:
//! 2.38 (the default: libmount's messages with the `dmesg(1)` hint after a
//! failed mount system call), 2.30 to 2.37 (Amazon Linux 2, Ubuntu 22.04,
//! Amazon Linux 2023: the same messages without the hint) and 2.23
//! (CentOS 7: its own wording). Parsed with glibc's getopt_long (mount's
//! table), then mount's own "bad usage" rules.

use super::env;
use super::error::{self, AppletError};
use super::getopt::{LongOpt, getopt_long};
use super::output::{err, out};
use ebsim::ec2::DEFAULT_REGION;
use ebsim::guest::Context;
use ebsim::guest::mount::{
    self as rules, FstabStep, Generation, MountError, MountFailure, Planned, Request,
};
use std::ffi::OsString;

/// Exit codes of mount(8) and umount(8) (`MNT_EX_*`).
pub const EX_USAGE: i32 = 1;
/// A mount or unmount failed.
pub const EX_FAIL: i32 = 32;
/// `mount -a`: some failed, some succeeded.
pub const EX_SOMEOK: i32 = 64;

/// `mount --version` of the guest's util-linux (Debian 12's 2.38.1 without
/// an instance). The library feature list is the one Debian 12's 2.38.1
/// prints; other builds list theirs.
pub fn version_line(prog: &str) -> String {
    let v = env::context().map_or(ebsim::ec2::release::DEBIAN_12, |c| c.release);
    let v = v.util_linux;
    format!(
        "{prog} from util-linux {v} (libmount {v}: selinux, smack, btrfs, verity, namespaces, assert, debug)\n"
    )
}

const HINT: &str = "       dmesg(1) may have more information after failed mount system call.\n";

/// Prints mount's message for `f` and returns the exit code.
fn report(generation: Generation, f: &MountFailure) -> i32 {
    let spec = &f.spec;
    let (msg, code) = match &f.error {
        MountError::WrongFs { dev } => (
            format!(
                "wrong fs type, bad option, bad superblock on {dev}, missing codepage or helper program, or other error"
            ),
            EX_FAIL,
        ),
        MountError::NoDevice { dev } => (format!("special device {dev} does not exist"), EX_FAIL),
        MountError::NoMountPoint => ("mount point does not exist".to_string(), EX_FAIL),
        MountError::Busy { src, on } => (
            match on.first() {
                Some(t) => format!("{src} already mounted on {t}"),
                None => format!("{src} already mounted or mount point busy"),
            },
            EX_FAIL,
        ),
        MountError::UnknownType(t) => (format!("unknown filesystem type '{t}'"), EX_FAIL),
        MountError::NotInFstab => ("can't find in /etc/fstab".to_string(), EX_USAGE),
        MountError::CantFind(s) => (format!("can't find {s}"), EX_USAGE),
        MountError::Unreadable { dev } => (format!("can't read superblock on {dev}"), EX_FAIL),
        MountError::NeedsCleaning { .. } => (
            "mount(2) system call failed: Structure needs cleaning".to_string(),
            EX_FAIL,
        ),
    };
    if generation == Generation::V223 {
        err(&report_223(spec, &f.error));
        return code;
    }
    let mut text = format!("mount: {spec}: {msg}.\n");
    if f.error.from_syscall() && generation == Generation::V238 {
        text.push_str(HINT);
    }
    err(&text);
    code
}

/// util-linux 2.23's wording (sys-utils/mount.c of that release).
fn report_223(spec: &str, f: &MountError) -> String {
    match f {
        MountError::WrongFs { dev } => format!(
            "mount: wrong fs type, bad option, bad superblock on {dev},\n       \
             missing codepage or helper program, or other error\n\n       \
             In some cases useful info is found in syslog - try\n       \
             dmesg | tail or so.\n"
        ),
        MountError::NoDevice { dev } => format!("mount: special device {dev} does not exist\n"),
        MountError::NoMountPoint => format!("mount: mount point {spec} does not exist\n"),
        MountError::Busy { src, on } => {
            let mut s = format!("mount: {src} is already mounted or {spec} busy\n");
            for t in on {
                s.push_str(&format!("       {src} is already mounted on {t}\n"));
            }
            s
        }
        MountError::UnknownType(t) => format!("mount: unknown filesystem type '{t}'\n"),
        MountError::NotInFstab => format!("mount: can't find {spec} in /etc/fstab\n"),
        MountError::CantFind(s) => format!("mount: can't find {s}\n"),
        MountError::Unreadable { dev } => format!("mount: {dev}: can't read superblock\n"),
        MountError::NeedsCleaning { dev } => {
            format!("mount: mount {dev} on {spec} failed: Structure needs cleaning\n")
        }
    }
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

/// A usage error: the message and the pointer to `--help`.
fn usage_error(msg: &str) -> AppletError {
    AppletError::new(
        EX_USAGE,
        format!("mount: {msg}\nTry 'mount --help' for more information.\n"),
    )
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
    // A host image and a directory: the FUSE mount.
    if super::fuse_mount::is_host_mount(&args) {
        return super::fuse_mount::run(args);
    }
    error::finish(main(&args), String::new)
}

fn main(args: &[OsString]) -> Result<i32, AppletError> {
    let args = super::getopt::after_argv0(args);
    let (opts, operands) = match getopt_long(&args, OPTSTRING, LONGOPTS).strict() {
        Ok(v) => v,
        Err(e) => return Err(usage_error(&e.text())),
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
                return Ok(0);
            }
            'V' => {
                out(&version_line("mount"));
                return Ok(0);
            }
            'B' | 'R' | 'M' | '\u{1}' => {
                return Err(AppletError::prog(
                    "mount",
                    "bind, move and propagation changes are not supported by ebsim",
                ));
            }
            '\u{3}' | 'T' | 'm' => {
                return Err(AppletError::prog(
                    "mount",
                    &format!("{} is not supported by ebsim", o.spelling()),
                ));
            }
            // -c -F -i -n -s -O -N change nothing in the emulation.
            _ => {}
        }
    }
    let ctx = match env::context() {
        Ok(c) => c,
        Err(why) => return Err(AppletError::new(EX_FAIL, format!("mount: {why}\n"))),
    };
    if c.all {
        return Ok(mount_all(&ctx, &c));
    }
    // Sources and targets from operands and --source/--target/-L/-U.
    let (source, target) = match (c.source.clone(), c.target.clone(), c.operands.as_slice()) {
        // Options without anything to mount: util-linux refuses.
        (None, None, []) if !c.options.is_empty() => return Err(usage_error("bad usage")),
        (None, None, []) => return Ok(list(&ctx, &c)),
        (None, None, [one]) => return Ok(mount_fstab(&ctx, &c, one)),
        (Some(s), None, []) => return Ok(mount_fstab(&ctx, &c, &s)),
        (None, Some(t), []) => return Ok(mount_fstab(&ctx, &c, &t)),
        (None, None, [s, t]) => (s.clone(), t.clone()),
        (Some(s), None, [t]) => (s, t.clone()),
        (None, Some(t), [s]) => (s.clone(), t),
        (Some(s), Some(t), []) => (s, t),
        _ => return Err(usage_error("bad usage")),
    };
    let req = Request::new(source, target, c.types.clone(), c.options.clone());
    Ok(finish(&ctx, &c, rules::plan(&ctx, &req)))
}

/// Records a planned mount (unless `-f`) and reports it.
fn finish(ctx: &Context, c: &Cli, planned: Result<Planned, MountFailure>) -> i32 {
    let generation = Generation::of(&ctx.release);
    match planned.and_then(|p| record(ctx, c, &p).map(|()| p)) {
        Ok(p) => {
            if c.verbose {
                out(&format!(
                    "mount: {} mounted on {}.\n",
                    p.mount.source, p.mount.target
                ));
            }
            0
        }
        Err(f) => report(generation, &f),
    }
}

/// Adds the mount to the instance (not with `-f`), then libmount's warning
/// when it fell back to read-only.
fn record(ctx: &Context, c: &Cli, p: &Planned) -> Result<(), MountFailure> {
    if !c.fake {
        let added = env::ec2(DEFAULT_REGION)
            .map_err(|e| env::why(&e))
            .and_then(|ec2| {
                ebsim::guest::context::add_mounts(&ec2, &ctx.instance_id, vec![p.mount.clone()])
                    .map_err(|e| env::why(&e))
            });
        // Inside the guest namespace its init makes the real mount.
        let added = added.and_then(|()| super::guest_ns::notify("sync"));
        if let Err(why) = added {
            err(&format!("mount: {why}\n"));
            return Err(MountFailure {
                spec: p.mount.target.clone(),
                error: MountError::WrongFs {
                    dev: p.mount.source.clone(),
                },
            });
        }
    }
    if p.read_only_fallback {
        err(&format!(
            "mount: {}: WARNING: source write-protected, mounted read-only.\n",
            p.mount.target
        ));
    }
    Ok(())
}

/// `mount` with no arguments: the mount table (`-t` filters, `-l` adds
/// labels), as util-linux prints it.
fn list(ctx: &Context, c: &Cli) -> i32 {
    let mut text = String::new();
    for (m, label) in rules::table(ctx, c.types.as_deref(), c.labels) {
        text.push_str(&format!(
            "{} on {} type {} ({})",
            rules::libmount_source(ctx, m),
            m.target,
            m.fstype,
            m.options
        ));
        if let Some(label) = label {
            text.push_str(&format!(" [{label}]"));
        }
        text.push('\n');
    }
    out(&text);
    0
}

/// `mount DIR` / `mount DEVICE`: what the fstab says.
fn mount_fstab(ctx: &Context, c: &Cli, spec: &str) -> i32 {
    finish(ctx, c, rules::plan_fstab(ctx, spec, &c.options))
}

/// `mount -a`: every fstab entry not mounted yet, in order.
fn mount_all(ctx: &Context, c: &Cli) -> i32 {
    let generation = Generation::of(&ctx.release);
    let (mut ok, mut failed) = (0, 0);
    let mut ctx = ctx.clone();
    for e in ctx.fstab.clone() {
        match rules::fstab_step(&ctx, &e, c.types.as_deref(), &c.options) {
            FstabStep::Excluded => {}
            FstabStep::AlreadyMounted => {
                if c.verbose {
                    out(&format!("{:<25}: already mounted\n", e.target));
                }
            }
            FstabStep::Mount(planned) => {
                match planned.and_then(|p| record(&ctx, c, &p).map(|()| p)) {
                    Ok(p) => {
                        ok += 1;
                        if c.verbose {
                            out(&format!("{:<25}: successfully mounted\n", e.target));
                        }
                        ctx.mounts.push(p.mount);
                    }
                    Err(f) => {
                        failed += 1;
                        report(generation, &f);
                    }
                }
            }
        }
    }
    match (ok, failed) {
        (_, 0) => 0,
        (0, _) => EX_FAIL,
        _ => EX_SOMEOK,
    }
}
