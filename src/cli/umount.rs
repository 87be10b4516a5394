//! `umount` (util-linux) inside the emulated instance: removes a mount from
//! the instance model, named by its mount point or by its device. Which
//! mounts go (and when the target is busy) is `ebsim::guest::mount`'s;
//! messages follow the instance's util-linux generation as mount's do.

use super::env;
use super::error::{self, AppletError};
use super::getopt::{LongOpt, getopt_long};
use super::mount::{EX_FAIL, EX_USAGE, version_line};
use super::output::{err, out};
use ebsim::ec2::DEFAULT_REGION;
use ebsim::ec2::model::Mount;
use ebsim::guest::Context;
use ebsim::guest::mount::{self as rules, Generation, UmountError};
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

/// A usage error: the message and the pointer to `--help`.
fn usage_error(msg: &str) -> AppletError {
    AppletError::new(
        EX_USAGE,
        format!("umount: {msg}\nTry 'umount --help' for more information.\n"),
    )
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
    // A directory where ebsim serves a host image over FUSE.
    if let Some(code) = super::fuse_mount::umount_host(&args) {
        return code;
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
        match o.val {
            'a' => c.all = true,
            'l' => c.lazy = true,
            'R' => c.recursive = true,
            'q' => c.quiet = true,
            'v' => c.verbose = true,
            't' => c.types = o.arg,
            'h' => {
                out(HELP);
                return Ok(0);
            }
            'V' => {
                out(&version_line("umount"));
                return Ok(0);
            }
            // -c -d -f -i -n -r -O -N change nothing in the emulation.
            _ => {}
        }
    }
    if !c.all && c.operands.is_empty() {
        return Err(usage_error("bad usage"));
    }
    let mut ctx = match env::context() {
        Ok(c) => c,
        Err(why) => return Err(AppletError::new(EX_FAIL, format!("umount: {why}\n"))),
    };
    let generation = Generation::of(&ctx.release);
    if c.all {
        return Ok(umount_all(&ctx, &c, generation));
    }
    let mut rc = 0;
    for operand in c.operands.clone() {
        rc |= umount_spec(&mut ctx, &c, generation, &operand);
    }
    Ok(rc)
}

fn report(generation: Generation, spec: &str, f: &UmountError) -> i32 {
    let text = match (generation, f) {
        (_, UmountError::NotAMountPoint { exists }) => {
            let why = if *exists { "not mounted" } else { "not found" };
            err(&format!("umount: {spec}: {why}\n"));
            return EX_USAGE;
        }
        (Generation::V223, UmountError::NotMounted) => format!("umount: {spec}: not mounted\n"),
        (Generation::V223, UmountError::NoMountPoint) => {
            format!("umount: {spec}: mountpoint not found\n")
        }
        (Generation::V223, UmountError::Busy(t)) => format!(
            "umount: {t}: target is busy.\n        (In some cases useful info about processes that use\n         the device is found by lsof(8) or fuser(1))\n"
        ),
        (_, UmountError::NotMounted) => format!("umount: {spec}: not mounted.\n"),
        (_, UmountError::NoMountPoint) => format!("umount: {spec}: no mount point specified.\n"),
        (_, UmountError::Busy(t)) => format!("umount: {t}: target is busy.\n"),
    };
    err(&text);
    EX_FAIL
}

/// Removes `m` from the instance. Ok(false): someone else changed the
/// mounts meanwhile.
fn remove(ctx: &Context, m: &Mount) -> Result<bool, String> {
    let ec2 = env::ec2(DEFAULT_REGION).map_err(|e| env::why(&e))?;
    let removed =
        ebsim::guest::context::remove_mount(&ec2, &ctx.instance_id, m).map_err(|e| env::why(&e))?;
    // Inside the guest namespace its init unmounts for real.
    if removed {
        super::guest_ns::notify("sync")?;
    }
    Ok(removed)
}

fn umount_spec(ctx: &mut Context, c: &Cli, generation: Generation, spec: &str) -> i32 {
    let gone = match rules::plan_umount(ctx, spec, c.lazy, c.recursive) {
        Ok(g) => g,
        Err(UmountError::NotMounted) if c.quiet => return EX_FAIL,
        Err(f) => return report(generation, spec, &f),
    };
    for g in &gone {
        match remove(ctx, g) {
            Ok(true) => {}
            Ok(false) => return report(generation, spec, &UmountError::NotMounted),
            Err(why) => {
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

/// `umount -a`: every mount but `/`, last mounted first; `/` is busy.
fn umount_all(ctx: &Context, c: &Cli, generation: Generation) -> i32 {
    let mut rc = 0;
    for m in rules::umount_all_order(ctx, c.types.as_deref()) {
        if m.target == "/" {
            rc |= report(generation, "/", &UmountError::Busy(m.target.clone()));
            continue;
        }
        match remove(ctx, &m) {
            Ok(_) => {
                if c.verbose {
                    out(&format!("{:<25}: successfully unmounted\n", m.target));
                }
            }
            Err(why) => {
                err(&format!("umount: {why}\n"));
                return EX_FAIL;
            }
        }
    }
    rc
}
