//! What an instance sees of its volumes: Xen families name a disk after
//! its API device (`/dev/sdf` → `xvdf`, 202:16·index, partitions
//! 202:16·index+N up to 15); Nitro families see NVMe namespaces `nvme0n1`,
//! `nvme1n1`... in attach order (259:N, N handed out dynamically, as the
//! kernel's blkext numbers), whose serial is the volume id without its
//! dash. Which family runs on which hypervisor is
//! [`instance_types`](super::instance_types)'.
//!
//! This module also answers the guest layer's questions: which disks an
//! instance has, their image files, and which instance a command is for.

use super::Txn;
use super::error::{ApiError, Result};
use super::model::{AttachState, InstanceState, State};
use std::path::PathBuf;

pub use super::instance_types::{
    Hypervisor, architecture, check_instance_type, hypervisor, valid_instance_type,
};

/// Whether `dev` is a device name EBS accepts: `/dev/sd[a-z]`,
/// `/dev/xvd[a-z]`, `/dev/xvd[b-c][a-z]`, and `/dev/sda1` (root only;
/// `/dev/sdi1` and `/dev/xvdeo` are refused [V]).
pub fn valid_device_name(dev: &str) -> bool {
    let Some(rest) = dev.strip_prefix("/dev/") else {
        return false;
    };
    if rest == "sda1" {
        return true;
    }
    let lower = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase());
    if let Some(l) = rest.strip_prefix("xvd") {
        return match l.len() {
            1 => lower(l),
            2 => lower(l) && matches!(l.as_bytes()[0], b'b' | b'c'),
            _ => false,
        };
    }
    if let Some(l) = rest.strip_prefix("sd") {
        return l.len() == 1 && lower(l);
    }
    false
}

/// The index of a disk letter sequence (`a` → 0, `f` → 5, `ba` → 52).
fn letters_index(l: &str) -> Option<u32> {
    let mut idx: u32 = 0;
    for (i, c) in l.chars().enumerate() {
        let d = u32::from(c).checked_sub(u32::from('a'))?;
        if d >= 26 {
            return None;
        }
        idx = if i == 0 { d } else { (idx + 1) * 26 + d };
    }
    Some(idx)
}

/// The Xen guest name and disk index of an API device name:
/// `/dev/sda1` → (`xvda`, 0), `/dev/sdf` → (`xvdf`, 5), `/dev/xvdba` →
/// (`xvdba`, 52).
pub fn xen_disk(dev: &str) -> Option<(String, u32)> {
    let rest = dev.strip_prefix("/dev/")?;
    let letters = if let Some(l) = rest.strip_prefix("xvd") {
        l.trim_end_matches(|c: char| c.is_ascii_digit())
    } else if let Some(l) = rest.strip_prefix("sd") {
        l.trim_end_matches(|c: char| c.is_ascii_digit())
    } else {
        return None;
    };
    let idx = letters_index(letters)?;
    Some((format!("xvd{letters}"), idx))
}

/// MAJ:MIN of a Xen partition: 202:(16·index + part) for parts 1–15; None
/// above 15 (those take a dynamic 259:N, see
/// [`super::model::Instance::alloc_blkext_minor`]).
pub fn xen_partition_dev(disk_index: u32, part: u32) -> Option<(u32, u32)> {
    (1..=15)
        .contains(&part)
        .then(|| (202, disk_index.saturating_mul(16).saturating_add(part)))
}

/// The kernel name of partition `part` of a disk (`xvda1`, `nvme0n1p1`).
pub fn partition_name(disk: &str, part: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{part}")
    } else {
        format!("{disk}{part}")
    }
}

/// One disk as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskView {
    /// The volume.
    pub volume_id: String,
    /// The API device name (`/dev/sdf`).
    pub device: String,
    /// The kernel name (`xvdf`, `nvme1n1`).
    pub name: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// NVMe serial (Nitro).
    pub serial: Option<String>,
    /// The image file.
    pub image: PathBuf,
    /// The size the guest sees, in bytes (the volume's size; it changes
    /// when a modification reaches `optimizing`).
    pub size_bytes: u64,
    /// Whether this is the instance's root volume.
    pub root: bool,
    /// The image flavour of the volume, when known.
    pub flavour: Option<String>,
}

/// The disks an instance sees (attached, or detaching), in attach order.
pub fn disks(state: &State, home: &super::Home, instance_id: &str) -> Vec<DiskView> {
    let root = state
        .instances
        .get(instance_id)
        .map(|i| i.root_device_name.clone())
        .unwrap_or_default();
    state
        .attached_to(instance_id)
        .into_iter()
        .filter(|(_, a)| a.state != AttachState::Attaching)
        .map(|(v, a)| DiskView {
            volume_id: v.id.clone(),
            device: a.device.clone(),
            name: a.guest.name.clone(),
            major: a.guest.major,
            minor: a.guest.minor,
            serial: a.guest.serial.clone(),
            image: home.volume_image(&v.id),
            size_bytes: v.size_bytes(),
            root: a.device == root,
            flavour: v.flavour.clone(),
        })
        .collect()
}

impl Txn<'_> {
    /// The disks of an instance.
    pub fn instance_disks(&self, instance_id: &str) -> Vec<DiskView> {
        disks(self.state(), self.home(), instance_id)
    }

    /// Records a mount inside an instance (the guest layer's `mount`).
    pub fn add_mount(&mut self, instance_id: &str, m: super::model::Mount) -> Result<()> {
        self.instance(instance_id)?;
        if let Some(i) = self.state_mut().instances.get_mut(instance_id) {
            i.mounts.push(m);
        }
        Ok(())
    }

    /// Removes the mount at `target` (the guest layer's `umount`); returns
    /// it, or None when nothing is mounted there.
    pub fn remove_mount(
        &mut self,
        instance_id: &str,
        target: &str,
    ) -> Result<Option<super::model::Mount>> {
        self.instance(instance_id)?;
        let Some(i) = self.state_mut().instances.get_mut(instance_id) else {
            return Ok(None);
        };
        // The last mount on a target is the visible one.
        Ok(i.mounts
            .iter()
            .rposition(|m| m.target == target)
            .map(|p| i.mounts.remove(p)))
    }

    /// The 259:N minor of a partition the guest sees (taken on first use,
    /// as the kernel hands them out when it scans a disk).
    pub fn partition_minor(&mut self, instance_id: &str, name: &str) -> Result<u32> {
        self.instance(instance_id)?;
        match self.state_mut().instances.get_mut(instance_id) {
            Some(i) => Ok(i.alloc_blkext_minor(name)),
            None => Err(ApiError::instance_not_found(instance_id).into()),
        }
    }

    /// The instance a guest command acts on: `explicit`, else the only
    /// running instance.
    pub fn resolve_instance(&self, explicit: Option<&str>) -> Result<String> {
        if let Some(id) = explicit.map(str::to_string) {
            return match self.state().instances.get(&id) {
                Some(_) => Ok(id),
                None => Err(ApiError::instance_not_found(&id).into()),
            };
        }
        let running: Vec<&String> = self
            .state()
            .instances
            .values()
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| &i.id)
            .collect();
        match running.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::new(
                "NoInstance",
                "no running instance; launch one with `aws ec2 run-instances` or set EBSIM_INSTANCE",
            )
            .into()),
            _ => Err(ApiError::new(
                "AmbiguousInstance",
                "several instances are running; set EBSIM_INSTANCE to one of them",
            )
            .into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        for ok in [
            "/dev/sdf",
            "/dev/sda1",
            "/dev/xvda",
            "/dev/xvdf",
            "/dev/xvdba",
            "/dev/xvdcz",
        ] {
            assert!(valid_device_name(ok), "{ok}");
        }
        for bad in [
            "/dev/sdi1",
            "/dev/xvdeo",
            "sdf",
            "/dev/xvda1",
            "/dev/nvme1n1",
            "/dev/sd",
        ] {
            assert!(!valid_device_name(bad), "{bad}");
        }
        assert_eq!(xen_disk("/dev/sda1"), Some(("xvda".into(), 0)));
        assert_eq!(xen_disk("/dev/sdf"), Some(("xvdf".into(), 5)));
        assert_eq!(xen_disk("/dev/xvdba"), Some(("xvdba".into(), 52)));
        assert_eq!(xen_partition_dev(5, 0), None);
        assert_eq!(xen_partition_dev(0, 1), Some((202, 1)));
        assert_eq!(xen_partition_dev(5, 1), Some((202, 81)));
        assert_eq!(xen_partition_dev(0, 128), None);
        assert_eq!(partition_name("nvme0n1", 1), "nvme0n1p1");
        assert_eq!(partition_name("xvda", 1), "xvda1");
    }
}
