//! `xfs_info` (xfsprogs 6.1): the geometry printout of an XFS image file
//! On a file the real script runs `xfs_db -c info`, whose
//! messages are copied here. Inside the emulated instance it also takes a
//! mount point or a device name (see `info_guest`).

use super::error::{AppletError, finish};
use super::getopt::{Error, after_argv0, getopt};
use super::output::{err, out};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::fs::xfs::{self, superblock::Superblock};
use ebsim::guest::{Target, normalize_path};
use std::ffi::OsString;

const USAGE: &str = "Usage: xfs_info [-V] [-t mtab] [mountpoint|device|file]\n";

pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(&args), || USAGE.to_string())
}

fn main(args: &[OsString]) -> Result<i32, AppletError> {
    // The real xfs_info is a shell script parsing with `getopts "t:V"`,
    // which stops at the first operand.
    let parsed = getopt(&after_argv0(args), "+t:V");
    for o in &parsed.items {
        match o {
            Ok(o) if o.val == 'V' => {
                out(&format!(
                    "xfs_info version {}\n",
                    super::env::release().xfsprogs
                ));
                return Ok(0);
            }
            Ok(_) => {}
            Err(Error::ShortMissing(c)) => {
                return Err(AppletError::new(2, format!("No arg for -{c} option\n")).with_usage());
            }
            Err(e) => {
                return Err(
                    AppletError::new(2, format!("Illegal option -{}\n", e.optopt())).with_usage(),
                );
            }
        }
    }
    if parsed.operands.len() != 1 {
        return Err(AppletError::usage_only(2));
    }
    let target = parsed.operands[0].clone();
    if let Some(done) = info_guest(&target) {
        return done;
    }
    info_file(&target)
}

/// xfs_info on the emulated instance: a device name, or a path that is a
/// mount point there. As the real script: an XFS mounted from (or on) the
/// argument is shown live (`xfs_spaceman`, named by its device); anything
/// else is read by `xfs_db`, which refuses a device with a mounted
/// filesystem. None: a file of this machine.
fn info_guest(target: &str) -> Option<Result<i32, AppletError>> {
    let is_dev = super::env::target(target, false) == Target::Device;
    let ctx = match super::env::target_context("xfs_info", target, false)? {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let t = normalize_path(target);
    let r = if is_dev {
        match ctx.resolve(target) {
            Some(r) => r,
            None => {
                return Some(Err(AppletError::new(
                    1,
                    format!(
                        "{target}: No such file or directory\n\nfatal error -- couldn't initialize XFS library\n"
                    ),
                )));
            }
        }
    } else {
        if !ctx.is_mount_point(target) {
            return None;
        }
        match ctx.mount_on(target, "xfs") {
            Some(m) => match ctx.resolve(&m.source) {
                Some(r) => r,
                None => return Some(Err(cannot_open_dir(target))),
            },
            // A mount point that is no XFS is a directory to xfs_db.
            None => return Some(Err(cannot_open_dir(target))),
        }
    };
    let mounts = ctx.mounts_of(&r);
    let live = if is_dev {
        mounts.iter().find(|m| m.fstype == "xfs")
    } else {
        mounts.iter().find(|m| m.fstype == "xfs" && m.target == t)
    };
    let name = match (live, mounts.is_empty()) {
        (Some(m), _) => m.source.clone(),
        (None, false) => {
            return Some(Err(AppletError::new(
                1,
                format!(
                    "xfs_info: {target} contains a mounted filesystem\n\nfatal error -- couldn't initialize XFS library\n"
                ),
            )));
        }
        (None, true) => target.to_string(),
    };
    let dev = match r.open(Access::ReadOnly) {
        Ok(d) => d,
        Err(e) => {
            return Some(Err(AppletError::new(
                1,
                format!("xfs_info: cannot open {target}: {e}\n"),
            )));
        }
    };
    Some(info_dev(&name, &dev))
}

fn cannot_open_dir(target: &str) -> AppletError {
    AppletError::prog("xfs_info", &format!("cannot open {target}: Is a directory"))
}

fn info_file(path: &str) -> Result<i32, AppletError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Err(AppletError::new(
                1,
                format!(
                    "{path}: {}\n\nfatal error -- couldn't initialize XFS library\n",
                    super::output::strerror(&e)
                ),
            ));
        }
    };
    if meta.is_dir() && !ebsim::blockdev::segmented::is_segmented(std::path::Path::new(path)) {
        return Err(AppletError::new(
            1,
            format!("xfs_info: cannot open {path}: Is a directory\n"),
        ));
    }
    let dev = match ImageFile::open(path, Access::ReadOnly) {
        Ok(d) => d,
        Err(e) => {
            return Err(AppletError::new(
                1,
                format!("xfs_info: cannot open {path}: {e}\n"),
            ));
        }
    };
    info_dev(path, &dev)
}

/// The geometry of the XFS on `dev`, named `path`, as `xfs_db -c info`
/// prints it (also the live printout's, the fields being the same).
fn info_dev<D: BlockDevice>(path: &str, dev: &D) -> Result<i32, AppletError> {
    let size = dev.size();
    if size < 512 {
        return Err(AppletError::new(
            1,
            format!(
                "xfs_info: error - read only {size} of 32768 bytes\n\
             xfs_info: {path} is invalid (cannot read first 512 bytes)\n"
            ),
        ));
    }
    let head = match dev.read_vec(0, 512) {
        Ok(h) => h,
        Err(e) => {
            return Err(AppletError::new(1, format!("xfs_info: {path}: {e}\n")));
        }
    };
    // Like xfs_db, only the magic decides; the geometry is shown even with
    // a bad CRC.
    let sb = match Superblock::from_bytes(&head, 0) {
        Ok(sb) => sb,
        Err(xfs::Error::NotXfs { magic }) => {
            return Err(AppletError::new(
                1,
                format!(
                    "xfs_info: {path} is not a valid XFS filesystem (unexpected SB magic number \
                 {magic:#010x})\nUse -F to force a read attempt.\n"
                ),
            ));
        }
        Err(e) => {
            return Err(AppletError::new(1, format!("xfs_info: {path}: {e}\n")));
        }
    };
    let need = sb.dblocks.saturating_mul(u64::from(sb.blocksize));
    if need > size {
        err("xfs_info: data size check failed\n");
    }
    out(&xfs::report::render_as(
        &sb,
        path,
        super::env::release().xfs_report,
        xfs::report::Printer::Growfs,
    ));
    Ok(0)
}
