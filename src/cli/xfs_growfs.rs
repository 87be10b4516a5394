//! `xfs_growfs` (xfsprogs 6.1). The real tool needs a mounted filesystem;
//! ebsim also takes an image file holding an XFS and grows it offline, the
//! way the kernel would (an ebsim extension, see `--help`). Inside the
//! emulated instance it takes a mount point or the device of a mounted XFS,
//! as the real one does, and grows it through the volume's image (the
//! partition's byte range); any other path gets the real tool's "is not a
//! mounted XFS filesystem".
//!
//! Hand-parsed: the real tool uses getopt and `strtoll` (`-D 1G` means one
//! block), which clap cannot copy.

use super::error::{AppletError, finish};
use super::getopt::{getopt, strings};
use super::output::strerror;
use super::output::{err, out};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::compat::strtoll;
use ebsim::fs::xfs::growfs_options::{DataStep, GrowOption, GrowOptions, LogStep};
use ebsim::fs::xfs::{self, MountEffect, Xfs, growfs};
use ebsim::guest::Target;
use std::ffi::OsString;

fn usage_text(prog: &str) -> String {
    format!(
        "Usage: {prog} [options] mountpoint\n\n\
Options:\n\
\t-d          grow data/metadata section\n\
\t-l          grow log section\n\
\t-r          grow realtime section\n\
\t-n          don't change anything, just show geometry\n\
\t-i          convert log from external to internal format\n\
\t-t          alternate location for mount table (/etc/mtab)\n\
\t-x          convert log from internal to external format\n\
\t-D size     grow data/metadata section to size blks\n\
\t-L size     grow/shrink log section to size blks\n\
\t-R size     grow realtime section to size blks\n\
\t-e size     set realtime extent size to size blks\n\
\t-m imaxpct  set inode max percent to imaxpct\n\
\t-V          print version information\n"
    )
}

const EXTENSION_HELP: &str = "
ebsim extension: the mountpoint may also be an image file holding an XFS
filesystem (not mounted). It is then grown offline, as the kernel would grow
it when mounted: new allocation groups are added (a last group shorter than
64 blocks is dropped), a short last group is extended, and every superblock
is rewritten. The image must have been cleanly unmounted (clean log), and
its allocation group headers (AGF, AGI, AGFL) must pass the checks the
kernel makes when it reads them: an image the kernel would refuse to mount
or use is refused, with the kernel's report, and left untouched. Grow the
file first (e.g. truncate -s), then run xfs_growfs on it. Shrinking is not
supported.
";

pub fn run(args: Vec<OsString>) -> i32 {
    // The usage text names the program as -p may have changed it: each
    // error carries its own.
    finish(main(&args), String::new)
}

fn main(args: &[OsString]) -> Result<i32, AppletError> {
    let mut prog = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "xfs_growfs".into());
    // glibc's getopt messages name argv[0] as given, the tool basename.
    let argv0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| prog.clone());
    let rest = args.get(1..).unwrap_or(&[]);
    if rest.iter().any(|a| a == "--help") {
        out(&format!("{}{EXTENSION_HELP}", usage_text(&prog)));
        return Ok(0);
    }
    let parsed = getopt(&strings(rest), "dD:e:ilL:m:np:rR:t:xV");
    let mut f = GrowOptions::default();
    for item in &parsed.items {
        let o = match item {
            Ok(o) => o,
            Err(e) => {
                return Err(AppletError::new(
                    2,
                    format!("{}{}", e.message(&argv0), usage_text(&prog)),
                ));
            }
        };
        let v = o.arg_or_empty();
        match o.val {
            'D' => f.set(GrowOption::Data(Some(strtoll(&v, 10).value))),
            'd' => f.set(GrowOption::Data(None)),
            'e' | 'R' | 'r' => f.set(GrowOption::Realtime),
            'i' => f.set(GrowOption::LogInternal),
            'L' => f.set(GrowOption::Log(Some(strtoll(&v, 10).value))),
            'l' => f.set(GrowOption::Log(None)),
            'm' => f.set(GrowOption::MaxPct(strtoll(&v, 10).value)),
            'n' => f.set(GrowOption::NoChange),
            'p' => prog = v,
            'x' => f.set(GrowOption::LogExternal),
            'V' => {
                out(&format!(
                    "{prog} version {}\n",
                    super::env::release().xfsprogs
                ));
                return Ok(0);
            }
            // -t names an mtab: nothing to read in the emulation.
            _ => {}
        }
    }
    if parsed.operands.len() != 1 || !f.consistent() {
        return Err(AppletError::new(2, usage_text(&prog)));
    }
    let target = parsed.operands[0].clone();
    if let Some(done) = guest_growfs(&prog, &target, &f) {
        return done;
    }
    if let Some((image, info)) = super::fuse_mount::served(&target) {
        return grow_served(&prog, &image.display().to_string(), &image, &info, &f);
    }
    let real = match std::fs::canonicalize(&target) {
        Ok(p) => p,
        Err(e) => {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: path resolution failed for {target}: {}\n",
                    strerror(&e)
                ),
            ));
        }
    };
    let segmented = ebsim::blockdev::segmented::is_segmented(&real);
    let opened = (std::fs::metadata(&real).is_ok_and(|m| m.is_file()) || segmented)
        .then(|| ImageFile::open(&real, Access::ReadOnly));
    // A segmented image that cannot be opened says why (a missing or
    // damaged segment), as nothing else would.
    if let Some(Err(e)) = &opened
        && segmented
    {
        return Err(AppletError::new(1, format!("{prog}: {e}\n")));
    }
    let holds_xfs = opened
        .and_then(|r| r.ok())
        .and_then(|d| xfs::probe(&d).ok())
        .unwrap_or(false);
    if !holds_xfs {
        return Err(AppletError::new(
            1,
            format!("{prog}: {target} is not a mounted XFS filesystem\n"),
        ));
    }
    if let Some(loopdev) = ebsim::blockdev::host::loop_device_of(&real) {
        // The kernel may have it mounted: writing under it would corrupt it.
        return Err(AppletError::new(
            1,
            format!(
                "{prog}: {target} is attached to {loopdev}; grow it through its mount point, or \
             unmount it and detach {loopdev} first\n"
            ),
        ));
    }
    offline(&prog, &target, &f)
}

/// xfs_growfs on the emulated instance: a device name, or a path that is
/// a mount point there (a file of this machine is never one). None: not
/// the instance's business, go on with the host path.
fn guest_growfs(prog: &str, target: &str, f: &GrowOptions) -> Option<Result<i32, AppletError>> {
    let is_dev = super::env::target(target, false) == Target::Device;
    let ctx = match super::env::target_context(prog, target, false)? {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let not_mounted = || {
        Some(Err(AppletError::prog(
            prog,
            &format!("{target} is not a mounted XFS filesystem"),
        )))
    };
    // The fs table holds the XFS mounts; a directory matches a mount point,
    // a device the source of a mount (after realpath, so /dev/sdf is
    // /dev/xvdf), the first in mount order.
    let m = if is_dev {
        let Some(r) = ctx.resolve(target) else {
            return Some(Err(AppletError::new(
                1,
                format!("{prog}: path resolution failed for {target}: No such file or directory\n"),
            )));
        };
        ctx.device_mount(&r, "xfs").cloned()
    } else {
        if !ctx.is_mount_point(target) {
            return None;
        }
        ctx.mount_on(target, "xfs").cloned()
    };
    let Some(m) = m else { return not_mounted() };
    let Some(r) = ctx.resolve(&m.source) else {
        return not_mounted();
    };
    // Served (inside the guest namespace): its server grows it, as the
    // kernel does for a mounted filesystem.
    let part = r.part.as_ref().map(|p| p.number);
    if let Ok(Some(info)) = ebsim::fuse::control::info_of(r.image(), part) {
        if info.part == part {
            return Some(grow_served(prog, &m.source, r.image(), &info, f));
        }
    }
    let access = if f.read_only() {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let dev = match r.open(access) {
        Ok(d) => d,
        Err(e) => {
            return Some(Err(AppletError::new(
                1,
                format!("{prog}: cannot open {}: {e}\n", m.source),
            )));
        }
    };
    Some(grow_device(prog, &m.source, dev, f))
}

/// The grow of an image file, following xfs_growfs's main() step by step.
/// The real tool needs the filesystem mounted, so the kernel's mount checks
/// come first: an image whose AG headers fail the kernel's verifiers is
/// refused before anything is printed, as a failed mount would stop the
/// real sequence (see [`refuse_unmountable`]).
fn offline(prog: &str, target: &str, f: &GrowOptions) -> Result<i32, AppletError> {
    let access = if f.read_only() {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let dev = match ImageFile::open(target, access) {
        Ok(d) => d,
        Err(e) => {
            return Err(AppletError::new(
                1,
                format!("{prog}: cannot open {target}: {e}\n"),
            ));
        }
    };
    let fs = Xfs::open(dev).map_err(|e| AppletError::new(1, format!("{prog}: {target}: {e}\n")))?;
    // A dirty log is replayed by a mount before it reads anything else;
    // the grow refuses it later, in its own words.
    if let (Ok(()), Ok(head)) = (fs.check_size(), fs.log_head()) {
        if let Err(e) = fs.verify_ags(&head) {
            return Err(refuse_unmountable(prog, target, fs.sb(), &e));
        }
    }
    grow_fs(prog, target, fs, f, false)
}

/// An image the kernel would not mount (or would fail on first use): the
/// kernel's own report of the bad block (its "Metadata CRC error detected
/// at xfs_agf_read_verify, xfs_agf block 0x1", with what is wrong, the AG
/// and the structure), then what mount(8) and the kernel log would say, on
/// stderr; exit 1, the real xfs_growfs's status for every failure.
fn refuse_unmountable(
    prog: &str,
    target: &str,
    sb: &xfs::Superblock,
    e: &xfs::Error,
) -> AppletError {
    let mut text = format!("{prog}: {target}: {e}\n");
    if let xfs::Error::Metadata(c) = e {
        let what = match c.mount_effect(sb) {
            MountEffect::ReservationFails => "the kernel would refuse to mount it (mount: \
                 \"can't read superblock\"; kernel log: \"Error -117 reserving per-AG \
                 metadata reserve pool.\")"
                .to_string(),
            MountEffect::RootInodeUnreadable { rootino } => format!(
                "the kernel would refuse to mount it (mount: \"Structure needs cleaning\"; \
                 kernel log: \"Failed to read root inode {rootino:#x}, error 117\")"
            ),
            MountEffect::FirstUseFails => format!(
                "the kernel would mount it, but fail its first allocation in AG {} on this \
                 block (kernel log at unmount: \"Uncorrected metadata errors detected; please \
                 run xfs_repair.\")",
                c.agno
            ),
            MountEffect::VerifiersPass => {
                "the kernel would mount it, but xfs_repair reports it".to_string()
            }
        };
        text.push_str(&format!(
            "{prog}: {target}: {what}; nothing was written, run xfs_repair\n"
        ));
    }
    AppletError::new(1, text)
}

/// The grow of the XFS on `dev`, the device of a mount on the instance,
/// following xfs_growfs's main() step by step.
fn grow_device<D: BlockDevice>(
    prog: &str,
    target: &str,
    dev: D,
    f: &GrowOptions,
) -> Result<i32, AppletError> {
    let fs = Xfs::open(dev).map_err(|e| AppletError::new(1, format!("{prog}: {target}: {e}\n")))?;
    grow_fs(prog, target, fs, f, true)
}

/// The grow of `fs`, shown as `target` (the image file, or the device of a
/// mount when `mounted`).
fn grow_fs<D: BlockDevice>(
    prog: &str,
    target: &str,
    fs: Xfs<D>,
    f: &GrowOptions,
    mounted: bool,
) -> Result<i32, AppletError> {
    if f.wants_realtime() {
        // An image has no realtime device.
        return Err(AppletError::new(
            1,
            format!("{prog}: failed to access realtime device for {target}\n"),
        ));
    }
    if let Err(e) = fs.check_size() {
        return Err(AppletError::new(1, format!("{prog}: {target}: {e}\n")));
    }
    let geo = fs.sb().clone();
    let dev_bytes = fs.dev().size();
    let mut fs = Some(fs);
    grow_steps(prog, target, f, &geo, dev_bytes, |blocks, imaxpct| {
        let Some(fs) = fs.take() else {
            return Err(format!("{prog}: cannot grow {target}: grown twice\n"));
        };
        match grow(fs, blocks, imaxpct) {
            Ok(sb) => Ok(sb),
            // The mounted filesystem's grow ioctl meets the bad block: the
            // kernel logs its report, the ioctl fails with EFSCORRUPTED
            // (EUCLEAN).
            Err(e @ xfs::Error::Metadata(_)) if mounted => Err(format!(
                "{prog}: {target}: {e}\n{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: \
                 Structure needs cleaning\n"
            )),
            // What the kernel refuses: its errno (a shrink it cannot do).
            Err(xfs::Error::Invalid(_)) => Err(format!(
                "{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: Invalid argument\n"
            )),
            Err(xfs::Error::NoSpace(_)) => Err(format!(
                "{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: No space left on device\n"
            )),
            Err(e) => Err(format!("{prog}: cannot grow {target}: {e}\n")),
        }
    })
}

/// A filesystem `ebsim mount` serves: the server grows it (the role of the
/// kernel's XFS_IOC_FSGROWFSDATA), from the geometry it reports.
fn grow_served(
    prog: &str,
    target: &str,
    image: &std::path::Path,
    info: &ebsim::fuse::control::Info,
    f: &GrowOptions,
) -> Result<i32, AppletError> {
    let target = target.to_string();
    let sb = match xfs::Superblock::from_bytes(&info.superblock, 0) {
        Ok(sb) if info.fs_type == "xfs" => sb,
        _ => {
            return Err(AppletError::new(
                1,
                format!("{prog}: {target} is not a mounted XFS filesystem\n"),
            ));
        }
    };
    if f.wants_realtime() {
        return Err(AppletError::new(
            1,
            format!("{prog}: failed to access realtime device for {target}\n"),
        ));
    }
    grow_steps(
        prog,
        &target,
        f,
        &sb,
        info.device_size,
        |blocks, imaxpct| {
            let args = ebsim::fuse::GrowArgs {
                blocks: Some(blocks),
                force: false,
                imaxpct: Some(imaxpct),
                now: 0,
            };
            match ebsim::fuse::control::grow_of(image, info.part, args) {
                Ok(ebsim::fuse::GrowReport::Xfs { .. }) => {
                    let now = ebsim::fuse::control::info_of(image, info.part)
                        .ok()
                        .flatten()
                        .and_then(|i| xfs::Superblock::from_bytes(&i.superblock, 0).ok());
                    now.ok_or_else(|| format!("{prog}: {target}: the server went away\n"))
                }
                Ok(_) => Err(format!(
                    "{prog}: {target} is not a mounted XFS filesystem\n"
                )),
                // The kernel says no more than its errno for what it
                // refuses (a shrink it cannot do).
                Err(ebsim::fuse::control::ControlError::Failed { errno, .. })
                    if errno == nix::errno::Errno::EINVAL as i32
                        || errno == nix::errno::Errno::ENOSPC as i32 =>
                {
                    Err(format!(
                        "{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: {}\n",
                        strerror(&std::io::Error::from_raw_os_error(errno))
                    ))
                }
                Err(ebsim::fuse::control::ControlError::Failed { errno, message }) => Err(format!(
                    "{prog}: {target}: {message}\n{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: {}\n",
                    strerror(&std::io::Error::from_raw_os_error(errno))
                )),
                Err(e) => Err(format!("{prog}: {e}\n")),
            }
        },
    )
}

/// xfs_growfs's main() after the filesystem is open: the geometry report,
/// the data section's grow (through `grow_data(blocks, imaxpct)`, which
/// returns the new superblock or the lines to print), the log, and what
/// changed.
fn grow_steps(
    prog: &str,
    target: &str,
    f: &GrowOptions,
    geo: &xfs::Superblock,
    dev_bytes: u64,
    mut grow_data: impl FnMut(u64, u8) -> Result<xfs::Superblock, String>,
) -> Result<i32, AppletError> {
    let geo = geo.clone();
    out(&xfs::report::render_as(
        &geo,
        target,
        super::env::release().xfs_report,
        xfs::report::Printer::Growfs,
    ));
    let steps = f.steps(&geo, dev_bytes);
    let mut new_geo = geo.clone();
    let mut error = match steps.data {
        DataStep::Nothing => false,
        DataStep::TooLarge { blocks, max } => {
            err(&format!("data size {blocks} too large, maximum is {max}\n"));
            true
        }
        DataStep::Shrink {
            blocks,
            current,
            imaxpct,
            run,
        } => {
            if super::env::release().xfsprogs < ebsim::ec2::release::Version::new(5, 12, 0) {
                // Before 5.12 xfs_growfs refuses a smaller size itself.
                err(&format!(
                    "data size {blocks} too small, old size is {current}\n"
                ));
                true
            } else {
                err(&format!(
                    "[EXPERIMENTAL] try to shrink unused space {blocks}, old size is {current}\n"
                ));
                match (run, imaxpct) {
                    (false, _) => false,
                    (true, None) => {
                        err(&format!(
                            "{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: Invalid argument\n"
                        ));
                        true
                    }
                    (true, Some(pct)) => took(
                        grow_data(u64::try_from(blocks).unwrap_or(0), pct),
                        &mut new_geo,
                    ),
                }
            }
        }
        DataStep::Unchanged { data, max_pct } => {
            if data {
                err("data size unchanged, skipping\n");
            }
            if max_pct {
                err("inode max pct unchanged, skipping\n");
            }
            false
        }
        DataStep::BadMaxPct => {
            return Err(AppletError::new(
                1,
                format!("{prog}: XFS_IOC_FSGROWFSDATA xfsctl failed: Invalid argument\n"),
            ));
        }
        DataStep::Grow { blocks, imaxpct } => took(grow_data(blocks, imaxpct), &mut new_geo),
    };

    // No realtime section (-r and friends were refused above): with no
    // flag the real tool finds its size unchanged and says nothing.

    if !error {
        match steps.log {
            LogStep::Nothing => {}
            LogStep::Unchanged => err("log size unchanged, skipping\n"),
            LogStep::Unsupported => {
                // The kernel does not resize or move an internal log (ENOSYS).
                err(&format!("{prog}: log growth not supported yet\n"));
                error = true;
            }
        }
    }

    if geo.dblocks != new_geo.dblocks {
        out(&format!(
            "data blocks changed from {} to {}\n",
            geo.dblocks, new_geo.dblocks
        ));
    }
    if geo.imax_pct != new_geo.imax_pct {
        out(&format!(
            "inode max percent changed from {} to {}\n",
            geo.imax_pct, new_geo.imax_pct
        ));
    }
    Ok(i32::from(error))
}

/// The data section's grow ioctl's outcome: the new geometry into `geo`,
/// or its lines printed. True on an error.
fn took(r: Result<xfs::Superblock, String>, geo: &mut xfs::Superblock) -> bool {
    match r {
        Ok(sb) => {
            *geo = sb;
            false
        }
        Err(lines) => {
            err(&lines);
            true
        }
    }
}

fn grow<D: BlockDevice>(fs: Xfs<D>, newblocks: u64, imaxpct: u8) -> xfs::Result<xfs::Superblock> {
    let plan = growfs::plan(
        &fs,
        &growfs::GrowRequest {
            newblocks,
            imaxpct: Some(imaxpct),
        },
    )?;
    let mut dev = fs.into_inner();
    growfs::apply(&mut dev, &plan)?;
    Ok(plan.new)
}
