//! `xfs_info` (xfsprogs 6.1): the geometry printout of an XFS image file
//! (spec §6). On a file the real script runs `xfs_db -c info`, whose
//! messages are copied here. Inside the emulated instance it also takes a
//! mount point or a device name (see `info_guest`).

use super::getopt::{Error, getopt, strings};
use super::output::{err, out};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::fs::xfs::{self, superblock::Superblock};
use ebsim::guest::{Target, normalize_path};
use std::ffi::OsString;

const USAGE: &str = "Usage: xfs_info [-V] [-t mtab] [mountpoint|device|file]\n";

pub fn run(args: Vec<OsString>) -> i32 {
    // The real xfs_info is a shell script parsing with `getopts "t:V"`,
    // which stops at the first operand.
    let parsed = getopt(&strings(args.get(1..).unwrap_or(&[])), "+t:V");
    for o in &parsed.items {
        match o {
            Ok(o) if o.val == 'V' => {
                out(&format!(
                    "xfs_info version {}\n",
                    super::env::release().xfsprogs
                ));
                return 0;
            }
            Ok(_) => {}
            Err(Error::ShortMissing(c)) => {
                err(&format!("No arg for -{c} option\n{USAGE}"));
                return 2;
            }
            Err(e) => {
                err(&format!("Illegal option -{}\n{USAGE}", e.optopt()));
                return 2;
            }
        }
    }
    if parsed.operands.len() != 1 {
        err(USAGE);
        return 2;
    }
    let target = parsed.operands[0].clone();
    if let Some(code) = info_guest(&target) {
        return code;
    }
    info_file(&target)
}

/// xfs_info on the emulated instance: a device name, or a path that is a
/// mount point there. As the real script: an XFS mounted from (or on) the
/// argument is shown live (`xfs_spaceman`, named by its device); anything
/// else is read by `xfs_db`, which refuses a device with a mounted
/// filesystem. None: a file of this machine.
fn info_guest(target: &str) -> Option<i32> {
    let is_dev = Target::of(target, false) == Target::Device;
    let ctx = match super::env::target_context("xfs_info", target, false)? {
        Ok(c) => c,
        Err(code) => return Some(code),
    };
    let t = normalize_path(target);
    let r = if is_dev {
        match ctx.resolve(target) {
            Some(r) => r,
            None => {
                err(&format!(
                    "{target}: No such file or directory\n\nfatal error -- couldn't initialize XFS library\n"
                ));
                return Some(1);
            }
        }
    } else {
        if !ctx.is_mount_point(target) {
            return None;
        }
        match ctx.mount_on(target, "xfs") {
            Some(m) => match ctx.resolve(&m.source) {
                Some(r) => r,
                None => return Some(cannot_open_dir(target)),
            },
            // A mount point that is no XFS is a directory to xfs_db.
            None => return Some(cannot_open_dir(target)),
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
            err(&format!(
                "xfs_info: {target} contains a mounted filesystem\n\nfatal error -- couldn't initialize XFS library\n"
            ));
            return Some(1);
        }
        (None, true) => target.to_string(),
    };
    let dev = match r.open(Access::ReadOnly) {
        Ok(d) => d,
        Err(e) => {
            err(&format!("xfs_info: cannot open {target}: {e}\n"));
            return Some(1);
        }
    };
    Some(info_dev(&name, &dev))
}

fn cannot_open_dir(target: &str) -> i32 {
    err(&format!("xfs_info: cannot open {target}: Is a directory\n"));
    1
}

fn info_file(path: &str) -> i32 {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            err(&format!(
                "{path}: {}\n\nfatal error -- couldn't initialize XFS library\n",
                super::output::strerror(&e)
            ));
            return 1;
        }
    };
    if meta.is_dir() {
        err(&format!("xfs_info: cannot open {path}: Is a directory\n"));
        return 1;
    }
    let dev = match ImageFile::open(path, Access::ReadOnly) {
        Ok(d) => d,
        Err(e) => {
            err(&format!("xfs_info: cannot open {path}: {e}\n"));
            return 1;
        }
    };
    info_dev(path, &dev)
}

/// The geometry of the XFS on `dev`, named `path`, as `xfs_db -c info`
/// prints it (also the live printout's, the fields being the same).
fn info_dev<D: BlockDevice>(path: &str, dev: &D) -> i32 {
    let size = dev.size();
    if size < 512 {
        err(&format!(
            "xfs_info: error - read only {size} of 32768 bytes\n\
             xfs_info: {path} is invalid (cannot read first 512 bytes)\n"
        ));
        return 1;
    }
    let head = match dev.read_vec(0, 512) {
        Ok(h) => h,
        Err(e) => {
            err(&format!("xfs_info: {path}: {e}\n"));
            return 1;
        }
    };
    // Like xfs_db, only the magic decides; the geometry is shown even with
    // a bad CRC.
    let sb = match Superblock::from_bytes(&head, 0) {
        Ok(sb) => sb,
        Err(xfs::Error::NotXfs { magic }) => {
            err(&format!(
                "xfs_info: {path} is not a valid XFS filesystem (unexpected SB magic number \
                 {magic:#010x})\nUse -F to force a read attempt.\n"
            ));
            return 1;
        }
        Err(e) => {
            err(&format!("xfs_info: {path}: {e}\n"));
            return 1;
        }
    };
    let need = sb.dblocks.saturating_mul(u64::from(sb.blocksize));
    if need > size {
        err("xfs_info: data size check failed\n");
    }
    out(&xfs::report::render(&sb, path));
    0
}
