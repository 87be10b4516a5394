//! What the instance sees: block devices with guest names and numbers, the
//! mount table, and lsblk/df rendering.

pub mod df;
pub mod human;
pub mod instance;
pub mod lsblk;
pub mod vfs;

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
