//! What an instance's guest sees and does: its block devices with guest
//! names and numbers, its mount table and the rules of mounting, the
//! classification of a command's target (a file here or a name there), and
//! lsblk/df rendering.

pub mod blkid;
pub mod context;
pub mod df;
pub mod fstab;
pub mod human;
pub mod instance;
pub mod lsblk;
pub mod mount;
pub mod pseudo;
pub mod target;
pub mod vfs;

pub use context::Context;
pub use instance::{Basis, GuestError, Resolved};
pub use target::Target;

/// Everything lsblk and df need to know about an instance at one moment:
/// its block devices (disks with their partitions), its mounts in mount
/// order, and the util-linux version of its image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Disks, each with its partitions as children.
    pub devices: Vec<lsblk::Device>,
    /// Mounted filesystems, in mount order (oldest first).
    pub mounts: Vec<df::Mount>,
    /// The util-linux of the instance's image.
    pub util_linux: lsblk::UtilLinux,
}

impl Snapshot {
    /// Nothing: no devices, no mounts (for help and version output).
    pub fn empty(util_linux: lsblk::UtilLinux) -> Snapshot {
        Snapshot {
            devices: Vec::new(),
            mounts: Vec::new(),
            util_linux,
        }
    }

    /// The device a path names, as `stat()` would find it: `/dev/NAME` or a
    /// udev link under /dev/disk/by-{uuid,label,partuuid,partlabel}. Returns
    /// the device and, for a partition, its disk.
    pub fn device(&self, path: &str) -> Option<(&lsblk::Device, Option<&lsblk::Device>)> {
        let path = normalize_path(path);
        let rest = path.strip_prefix("/dev/")?;
        let mut all = self.devices.iter().map(|d| (d, None)).chain(
            self.devices
                .iter()
                .flat_map(|d| d.children.iter().map(move |c| (c, Some(d)))),
        );
        match rest.split_once('/') {
            None => all.find(|(d, _)| d.name == rest),
            Some(("disk", link)) => {
                let (kind, value) = link.split_once('/')?;
                all.find(|(d, _)| {
                    let field = match kind {
                        "by-uuid" => &d.uuid,
                        "by-label" => &d.label,
                        "by-partuuid" => &d.partuuid,
                        "by-partlabel" => &d.partlabel,
                        _ => return false,
                    };
                    field.as_deref() == Some(value)
                })
            }
            Some(_) => None,
        }
    }
}

/// Lexically normalizes a path as realpath would for one without links
/// (`/var//lib/./x/` → `/var/lib/x`, `..` drops a component); a relative
/// path is taken from `/` (a guest command has no working directory there).
/// Mount points of the model are not directories of this machine, so this
/// is how every guest command compares paths.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether normalized `path` is `dir` or lies under it: the test a mount
/// point passes for the paths on its filesystem (`/data` holds `/data/x`,
/// not `/database`).
pub fn path_within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths() {
        assert_eq!(super::normalize_path("/var//lib/./x/"), "/var/lib/x");
        assert_eq!(super::normalize_path("/mnt/./x"), "/mnt/x");
        assert_eq!(super::normalize_path("/a/../b"), "/b");
        assert_eq!(super::normalize_path("/"), "/");
        assert_eq!(super::normalize_path(""), "/");
    }
}
