//! The kernel side of a FUSE mount, without libfuse or fusermount: open
//! `/dev/fuse`, `mount(2)` it at a directory with the descriptor in the
//! options, unmount, and find ebsim's mounts in `/proc/self/mountinfo`.
//!
//! Mounts are of type `fuse.ebsim`: a FUSE mount's type is `fuse` or
//! `fuse.SUBTYPE` (never a kernel type name such as `ext4`), and naming the
//! server rather than the filesystem says who owns it: `findmnt -t
//! fuse.ebsim` lists every image ebsim serves, and ebsim's tools recognise
//! their own mounts by it. The source is the image path, as fuse2fs shows
//! the device.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The mount type of ebsim's FUSE mounts.
pub const FS_TYPE: &str = "fuse.ebsim";

/// Why a mount failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// No `/dev/fuse` (no FUSE in the kernel, or not in this container).
    #[error(
        "/dev/fuse does not exist: the kernel has no FUSE support here (load it with \
         'modprobe fuse', or give the container the device)"
    )]
    NoDevice,
    /// `/dev/fuse` exists but cannot be opened.
    #[error(
        "/dev/fuse: permission denied (it is mode {mode:o}; FUSE needs it readable and \
         writable by this user, as distributions ship it: chmod 0666 /dev/fuse)"
    )]
    DeviceDenied {
        /// Its permission bits.
        mode: u32,
    },
    /// `mount(2)` refused.
    #[error("mount {target}: {errno} ({why})")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The errno.
        errno: nix::errno::Errno,
        /// What that means here.
        why: &'static str,
    },
    /// Any other failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// How to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFlags {
    /// `ro`.
    pub read_only: bool,
    /// Let every user in (the kernel still checks permissions): `allow_other`.
    pub allow_other: bool,
    /// `nosuid` (default on, as fusermount does).
    pub nosuid: bool,
    /// `nodev` (default on).
    pub nodev: bool,
    /// `noexec`.
    pub noexec: bool,
    /// `noatime`.
    pub noatime: bool,
    /// The source shown in the mount table.
    pub fsname: String,
    /// The root directory's mode (type and permission bits).
    pub root_mode: u32,
}

/// Opens `/dev/fuse` and mounts it at `target`; returns the descriptor the
/// server then reads requests from.
pub fn mount(target: &Path, f: &MountFlags) -> Result<OwnedFd, MountError> {
    let dev = match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(MountError::NoDevice),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata("/dev/fuse")
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0);
            return Err(MountError::DeviceDenied { mode });
        }
        Err(source) => {
            return Err(MountError::Io {
                what: "open /dev/fuse".into(),
                source,
            });
        }
    };
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={},default_permissions",
        dev.as_raw_fd(),
        f.root_mode,
        nix::unistd::geteuid(),
        nix::unistd::getegid()
    );
    if f.allow_other {
        data.push_str(",allow_other");
    }
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    for (on, flag) in [
        (f.read_only, MsFlags::MS_RDONLY),
        (f.nosuid, MsFlags::MS_NOSUID),
        (f.nodev, MsFlags::MS_NODEV),
        (f.noexec, MsFlags::MS_NOEXEC),
        (f.noatime, MsFlags::MS_NOATIME),
    ] {
        if on {
            flags |= flag;
        }
    }
    let fsname = if f.fsname.is_empty() {
        "ebsim"
    } else {
        &f.fsname
    };
    nix::mount::mount(
        Some(fsname),
        target,
        Some(FS_TYPE),
        flags,
        Some(data.as_str()),
    )
    .map_err(|errno| MountError::Mount {
        target: target.to_path_buf(),
        errno,
        why: match errno {
            nix::errno::Errno::EPERM => {
                "mounting needs root, or a user and mount namespace of one's own"
            }
            nix::errno::Errno::ENOENT => "no such directory",
            nix::errno::Errno::ENOTDIR => "not a directory",
            nix::errno::Errno::ENODEV => "the kernel has no FUSE filesystem type",
            _ => "the kernel refused the mount",
        },
    })?;
    Ok(OwnedFd::from(dev))
}

/// Unmounts `target` (`lazy`: detach now, finish when no longer busy).
pub fn unmount(target: &Path, lazy: bool) -> nix::Result<()> {
    let flags = if lazy {
        nix::mount::MntFlags::MNT_DETACH
    } else {
        nix::mount::MntFlags::empty()
    };
    nix::mount::umount2(target, flags)
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub target: PathBuf,
    /// `fuse.ebsim`, `ext4`, ...
    pub fs_type: String,
    /// The source (for ebsim's mounts, the image).
    pub source: String,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |c: u8| u32::from(c - b'0');
            let v = d(b[i + 1]) * 64 + d(b[i + 2]) * 8 + d(b[i + 3]);
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(target) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(t), Some(src)) = (r.next(), r.next()) else {
            continue;
        };
        v.push(MountEntry {
            target: PathBuf::from(unescape(target)),
            fs_type: t.to_string(),
            source: unescape(src),
        });
    }
    v
}

/// This process's mounts.
pub fn mounts() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// The ebsim mount at `dir` (the last one mounted there), if any.
pub fn ebsim_mount_at(dir: &Path) -> Option<MountEntry> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    mounts()
        .ok()?
        .into_iter()
        .rev()
        .find(|m| m.target == dir)
        .filter(|m| m.fs_type == FS_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_with_escapes() {
        let text = "45 27 0:40 / /tmp/my\\040dir rw,nosuid,nodev,relatime - fuse.ebsim /tmp/a\\134b.img rw,user_id=0\n\
                    22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    garbage line\n";
        let v = parse_mountinfo(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].target, PathBuf::from("/tmp/my dir"));
        assert_eq!(v[0].fs_type, FS_TYPE);
        assert_eq!(v[0].source, "/tmp/a\\b.img");
        assert_eq!(v[1].target, PathBuf::from("/"));
        assert_eq!(v[1].fs_type, "ext4");
    }
}
