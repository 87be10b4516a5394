//! What an instance sees of its volumes (spec ebs.md §4.3, views.md §1.11):
//! Xen families name a disk after its API device (`/dev/sdf` → `xvdf`,
//! 202:16·index); Nitro families see NVMe namespaces `nvme0n1`,
//! `nvme1n1`... in attach order (259:N, N handed out dynamically), whose
//! serial is the volume id without its dash.
//!
//! This module also answers the guest layer's questions: which disks an
//! instance has, their image files, and which instance a command is for.

use super::Txn;
use super::error::{ApiError, Result};
use super::model::{AttachState, InstanceState, State};
use std::path::PathBuf;

/// Instance families of the Xen hypervisor (everything else is Nitro).
const XEN_FAMILIES: &[&str] = &[
    "t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "x1", "x1e", "i2", "i3",
    "p2", "p3", "g2", "g3", "g3s", "d2", "h1", "f1", "cc2", "cr1", "hs1",
];

/// Nitro families (the 2023 user guide list plus later generations).
const NITRO_FAMILIES: &[&str] = &[
    "a1", "t3", "t3a", "t4g", "m5", "m5a", "m5ad", "m5d", "m5dn", "m5n", "m5zn", "m6a", "m6g",
    "m6gd", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g", "m7gd", "m7i", "m7i-flex", "m8g", "m8i",
    "c5", "c5a", "c5ad", "c5d", "c5n", "c6a", "c6g", "c6gd", "c6gn", "c6i", "c6id", "c6in", "c7a",
    "c7g", "c7gd", "c7gn", "c7i", "c7i-flex", "c8g", "r5", "r5a", "r5ad", "r5b", "r5d", "r5dn",
    "r5n", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in", "r7a", "r7g", "r7gd", "r7i",
    "r7iz", "r8g", "x2gd", "x2idn", "x2iedn", "x2iezn", "z1d", "d3", "d3en", "i3en", "i4g", "i4i",
    "i7ie", "im4gn", "is4gen", "g4ad", "g4dn", "g5", "g5g", "g6", "g6e", "inf1", "inf2", "p3dn",
    "p4d", "p4de", "p5", "trn1", "trn1n", "vt1", "dl1", "hpc6a", "hpc7g", "mac1", "mac2",
];

/// Graviton (arm64) families.
const ARM_FAMILIES: &[&str] = &[
    "a1", "t4g", "m6g", "m6gd", "m7g", "m7gd", "m8g", "c6g", "c6gd", "c6gn", "c7g", "c7gd", "c7gn",
    "c8g", "r6g", "r6gd", "r7g", "r7gd", "r8g", "x2gd", "i4g", "im4gn", "is4gen", "g5g", "hpc7g",
];

const SIZES: &[&str] = &[
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "3xlarge",
    "4xlarge",
    "6xlarge",
    "8xlarge",
    "9xlarge",
    "10xlarge",
    "12xlarge",
    "16xlarge",
    "18xlarge",
    "24xlarge",
    "32xlarge",
    "48xlarge",
    "56xlarge",
    "112xlarge",
    "metal",
];

/// The hypervisor an instance type runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// Xen: `xvd*` disks.
    Xen,
    /// Nitro: NVMe disks.
    Nitro,
}

/// The family and size of a known instance type, or None.
fn split_type(t: &str) -> Option<(&str, &str)> {
    let (fam, size) = t.split_once('.')?;
    let known = XEN_FAMILIES.contains(&fam) || NITRO_FAMILIES.contains(&fam);
    let size_ok = SIZES.contains(&size) || size.starts_with("metal-");
    (known && size_ok).then_some((fam, size))
}

/// Whether `t` is an instance type ebsim knows.
pub fn valid_instance_type(t: &str) -> bool {
    split_type(t).is_some()
}

/// The hypervisor of an instance type (metal sizes are Nitro).
pub fn hypervisor(t: &str) -> Hypervisor {
    match split_type(t) {
        Some((fam, size)) if XEN_FAMILIES.contains(&fam) && !size.starts_with("metal") => {
            Hypervisor::Xen
        }
        Some(_) => Hypervisor::Nitro,
        None => Hypervisor::Xen,
    }
}

/// `x86_64` or `arm64`.
pub fn architecture(t: &str) -> &'static str {
    match split_type(t) {
        Some((fam, _)) if ARM_FAMILIES.contains(&fam) => "arm64",
        _ => "x86_64",
    }
}

/// `InvalidParameterValue: Invalid value 't3.nano' for InstanceType.` [V
/// moto#1695, quoting AWS].
pub fn check_instance_type(t: &str) -> std::result::Result<(), ApiError> {
    if valid_instance_type(t) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Invalid value '{t}' for InstanceType."
        )))
    }
}

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

/// The environment variable naming the instance guest commands act on.
pub const INSTANCE_ENV: &str = "EBSIM_INSTANCE";

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

    /// The instance a guest command acts on: `explicit`, else
    /// `EBSIM_INSTANCE`, else the only running instance.
    pub fn resolve_instance(&self, explicit: Option<&str>) -> Result<String> {
        let wanted = explicit
            .map(str::to_string)
            .or_else(|| std::env::var(INSTANCE_ENV).ok().filter(|v| !v.is_empty()));
        if let Some(id) = wanted {
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
    fn families() {
        assert_eq!(hypervisor("t2.micro"), Hypervisor::Xen);
        assert_eq!(hypervisor("m4.large"), Hypervisor::Xen);
        assert_eq!(hypervisor("t3.micro"), Hypervisor::Nitro);
        assert_eq!(hypervisor("i3.metal"), Hypervisor::Nitro);
        assert_eq!(architecture("t4g.small"), "arm64");
        assert_eq!(architecture("m5.large"), "x86_64");
        assert!(!valid_instance_type("t3.nano2"));
        assert!(!valid_instance_type("q9.large"));
    }

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
