//! `umount` (util-linux) inside the emulated instance: removes a mount from
//! the instance model, named by its mount point or by its device. `/`
//! cannot be unmounted (the emulated system runs from it: "target is
//! busy"), nor a mount with other mounts below it unless `-l` or `-R`.
//! Messages follow the instance's util-linux generation as mount's do
//! (see `mount.rs`). Parsed by hand for the same reasons as mount.

use super::getopt::{LongOpt, getopt_long};
use super::guest::{self, Context, NoGuest};
use super::mount::{EX_FAIL, EX_USAGE, Ul, version_line};
use super::output::{err, out};
use ebsim::ec2::model::Mount;
use std::ffi::OsString;

const HELP: &str = "
Usage:
 umount [-hV]
 umount -a [options]
 umount [options] <source> | <directory>

Unmount filesystems (ebsim: inside the emulated instance).

Options:
 -a, --all               unmount all filesystems
 -f, --force             force unmount
 -l, --lazy              detach the filesystem now, and the mounts below it
 -n, --no-mtab           don't write to /etc/mtab
 -q, --quiet             suppress 'not mounted' error messages
 -R, --recursive         recursively unmount a target with all its children
 -t, --types <list>      limit the set of filesystem types (with -a)
 -v, --verbose           say what is being done
 -h, --help              display this help
 -V, --version           display version

ebsim: the mount is removed from the emulated instance; nothing on this
machine is unmounted. `/` stays mounted (target is busy).
";

#[derive(Default)]
struct Cli {
    all: bool,
    lazy: bool,
    recursive: bool,
    quiet: bool,
    verbose: bool,
    types: Option<String>,
    operands: Vec<String>,
}

fn usage_error(msg: &str) -> i32 {
    err(&format!(
        "umount: {msg}\nTry 'umount --help' for more information.\n"
    ));
    EX_USAGE
}

/// util-linux umount's options, for glibc's getopt_long.
const OPTSTRING: &str = "acdfhilnqRrO:t:vVN:";
const LONGOPTS: &[LongOpt] = &[
    LongOpt::flag("all", 'a'),
    LongOpt::flag("detach-loop", 'd'),
    LongOpt::flag("force", 'f'),
    LongOpt::flag("help", 'h'),
    LongOpt::flag("internal-only", 'i'),
    LongOpt::flag("lazy", 'l'),
    LongOpt::arg("namespace", 'N'),
    LongOpt::flag("no-canonicalize", 'c'),
    LongOpt::flag("no-mtab", 'n'),
    LongOpt::flag("quiet", 'q'),
    LongOpt::flag("read-only", 'r'),
    LongOpt::flag("recursive", 'R'),
    LongOpt::arg("test-opts", 'O'),
    LongOpt::arg("types", 't'),
    LongOpt::flag("verbose", 'v'),
    LongOpt::flag("version", 'V'),
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
        match o.val {
            'a' => c.all = true,
            'l' => c.lazy = true,
            'R' => c.recursive = true,
            'q' => c.quiet = true,
            'v' => c.verbose = true,
            't' => c.types = o.arg,
            'h' => {
                out(HELP);
                return 0;
            }
            'V' => {
                out(&version_line("umount", &util_linux_or_default()));
                return 0;
            }
            // -c -d -f -i -n -r -O -N change nothing in the emulation.
            _ => {}
        }
    }
    if !c.all && c.operands.is_empty() {
        return usage_error("bad usage");
    }
    let mut ctx = match guest::context() {
        Ok(c) => c,
        Err(NoGuest(why)) => {
            err(&format!("umount: {why}\n"));
            return EX_FAIL;
        }
    };
    let ul = Ul::of(&ctx.util_linux);
    if c.all {
        return umount_all(&mut ctx, &c, ul);
    }
    let mut rc = 0;
    for spec in c.operands.clone() {
        rc |= umount_spec(&mut ctx, &c, ul, &spec);
    }
    rc
}

fn util_linux_or_default() -> String {
    guest::context().map(|c| c.util_linux).unwrap_or_default()
}

/// Why an unmount failed.
enum Failure {
    /// EINVAL: the path or device is not mounted.
    NotMounted,
    /// ENOENT: no such path or device.
    NoMountPoint,
    /// EBUSY.
    Busy,
}

fn report(ul: Ul, spec: &str, f: &Failure) -> i32 {
    let text = match (ul, f) {
        (Ul::V223, Failure::NotMounted) => format!("umount: {spec}: not mounted\n"),
        (Ul::V223, Failure::NoMountPoint) => format!("umount: {spec}: mountpoint not found\n"),
        (Ul::V223, Failure::Busy) => format!(
            "umount: {spec}: target is busy.\n        (In some cases useful info about processes that use\n         the device is found by lsof(8) or fuser(1))\n"
        ),
        (_, Failure::NotMounted) => format!("umount: {spec}: not mounted.\n"),
        (_, Failure::NoMountPoint) => format!("umount: {spec}: no mount point specified.\n"),
        (_, Failure::Busy) => format!("umount: {spec}: target is busy.\n"),
    };
    err(&text);
    EX_FAIL
}

/// The index in `ctx.mounts` of the mount `spec` names: a mount point (the
/// topmost mount there), or a device (its most recent mount).
fn find(ctx: &Context, spec: &str) -> Result<usize, Failure> {
    let is_dev =
        spec.starts_with("/dev/") || spec.starts_with("UUID=") || spec.starts_with("LABEL=");
    if !is_dev {
        let t = if spec.starts_with('/') {
            guest::normalize_path(spec)
        } else {
            spec.to_string()
        };
        return ctx
            .mounts
            .iter()
            .rposition(|m| m.target == t)
            .ok_or(Failure::NotMounted);
    }
    let r = ctx.resolve(spec).ok_or(Failure::NoMountPoint)?;
    let part = r.part.as_ref().map(|p| p.number);
    ctx.mounts
        .iter()
        .rposition(|m| m.volume_id == r.disk.view.volume_id && m.partition == part)
        .ok_or(Failure::NotMounted)
}

/// Whether `child` lies below the mount point `parent`.
fn below(parent: &str, child: &str) -> bool {
    if parent == "/" {
        return child != "/";
    }
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn umount_spec(ctx: &mut Context, c: &Cli, ul: Ul, spec: &str) -> i32 {
    // -R looks the argument up among mount points only, and words its
    // failure itself (`access(2)` decides between the two).
    if c.recursive {
        let t = if spec.starts_with('/') {
            guest::normalize_path(spec)
        } else {
            spec.to_string()
        };
        if !ctx.mounts.iter().any(|m| m.target == t) {
            let exists = !spec.starts_with("/dev/") || ctx.resolve(spec).is_some();
            let why = if exists { "not mounted" } else { "not found" };
            err(&format!("umount: {spec}: {why}\n"));
            return EX_USAGE;
        }
    }
    let idx = match find(ctx, spec) {
        Ok(i) => i,
        Err(Failure::NotMounted) if c.quiet => return EX_FAIL,
        Err(f) => return report(ul, spec, &f),
    };
    let m = ctx.mounts[idx].clone();
    if m.target == "/" {
        return report(ul, &m.target, &Failure::Busy);
    }
    // Mounts made later below this one (or on top of it) keep it busy.
    let children: Vec<Mount> = ctx.mounts[idx + 1..]
        .iter()
        .filter(|x| below(&m.target, &x.target) || x.target == m.target)
        .cloned()
        .collect();
    if !children.is_empty() && !c.lazy && !c.recursive {
        return report(ul, &m.target, &Failure::Busy);
    }
    // Children first (deepest last-mounted first), then the mount itself.
    let mut gone: Vec<Mount> = children.into_iter().rev().collect();
    gone.push(m.clone());
    for g in &gone {
        match remove_exact(g) {
            Ok(true) => {}
            Ok(false) => return report(ul, spec, &Failure::NotMounted),
            Err(NoGuest(why)) => {
                err(&format!("umount: {why}\n"));
                return EX_FAIL;
            }
        }
        if let Some(p) = ctx.mounts.iter().rposition(|x| x == g) {
            ctx.mounts.remove(p);
        }
        if c.verbose {
            err(&format!("umount: {} ({}) unmounted\n", g.target, g.source));
        }
    }
    0
}

/// Removes `m`, the topmost mount on its target (mounts above it were
/// removed first). Ok(false): someone else changed the mounts meanwhile.
fn remove_exact(m: &Mount) -> Result<bool, NoGuest> {
    Ok(guest::remove_mount(&m.target)?.is_some_and(|r| r == *m))
}

/// `umount -a`: every mount but `/`, last mounted first; `/` is busy.
fn umount_all(ctx: &mut Context, c: &Cli, ul: Ul) -> i32 {
    let mut rc = 0;
    for m in ctx.mounts.clone().into_iter().rev() {
        if let Some(t) = &c.types {
            let neg = t.starts_with("no");
            let hit = t
                .split(',')
                .map(|x| {
                    if neg {
                        x.strip_prefix("no").unwrap_or(x)
                    } else {
                        x
                    }
                })
                .any(|x| x == m.fstype);
            if hit == neg {
                continue;
            }
        }
        if m.target == "/" {
            rc |= report(ul, "/", &Failure::Busy);
            continue;
        }
        match remove_exact(&m) {
            Ok(_) => {
                if c.verbose {
                    out(&format!("{:<25}: successfully unmounted\n", m.target));
                }
            }
            Err(NoGuest(why)) => {
                err(&format!("umount: {why}\n"));
                return EX_FAIL;
            }
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    #[test]
    fn below_mount_points() {
        assert!(super::below("/var", "/var/lib"));
        assert!(!super::below("/var", "/var"));
        assert!(!super::below("/var", "/varx"));
        assert!(super::below("/", "/boot"));
    }
}
