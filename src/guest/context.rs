//! One instance as its guest commands see it, read in one transaction: its
//! disks, its mount table, its OS release and the fstab of its image; and
//! the changes guest commands make to it (mounts recorded and removed).
//!
//! Lock order: a transaction on the state is finished before any image is
//! opened read-write (the clock may grow an image inside a transaction), so
//! a [`Context`] is a copy, and [`Resolved::open`] comes after it; a
//! device it resolves carries the [`Basis`] that open checks again under
//! the image's lock.

use super::instance::{self, Basis, GuestDisk, GuestError, Resolved};
use super::{Snapshot, normalize_path};
use crate::ec2::Ec2;
use crate::ec2::catalog;
use crate::ec2::model::Mount;
use crate::ec2::release::OsRelease;

/// Everything a guest command needs to know about the instance, read in
/// one transaction.
#[derive(Debug, Clone)]
pub struct Context {
    /// The instance.
    pub instance_id: String,
    /// Its disks with their partitions.
    pub disks: Vec<GuestDisk>,
    /// Its mounts, oldest first.
    pub mounts: Vec<Mount>,
    /// Its image's OS release.
    pub release: OsRelease,
    /// The image's fstab entries that ebsim can mount (root volume only).
    pub fstab: Vec<Mount>,
    /// The `/dev` links of the image's udev rules ([`instance::device_links`]).
    pub links: Vec<(String, String)>,
    /// The state directory it was read from.
    pub home: std::path::PathBuf,
}

impl Context {
    /// The context of `instance` (None: the only running one).
    pub fn load(ec2: &Ec2, instance: Option<&str>) -> Result<Context, GuestError> {
        Ok(ec2.transact(|txn| {
            let id = txn.resolve_instance(instance)?;
            let disks = instance::disks(txn, &id)?;
            let inst = txn.instance(&id)?;
            let fstab = fstab_of(inst.flavour.as_deref(), &disks);
            let links = instance::device_links(inst.flavour.as_deref(), &disks);
            Ok(Context {
                home: ec2.home().root().to_path_buf(),
                links,
                instance_id: id.clone(),
                mounts: inst.mounts.clone(),
                release: OsRelease::of_util_linux(&inst.util_linux),
                disks,
                fstab,
            })
        })?)
    }

    /// Resolves a device name, mount point or `UUID=`/`LABEL=` here.
    pub fn resolve(&self, spec: &str) -> Option<Resolved> {
        let mut r = instance::resolve(&self.disks, &self.mounts, &self.links, spec)?;
        let vol = &r.disk.view.volume_id;
        r.basis = Some(Basis {
            home: self.home.clone(),
            instance_id: self.instance_id.clone(),
            mounts: self
                .mounts
                .iter()
                .filter(|m| &m.volume_id == vol)
                .cloned()
                .collect(),
        });
        Some(r)
    }

    /// The mounts of a device (volume and partition), oldest first.
    pub fn mounts_of(&self, r: &Resolved) -> Vec<&Mount> {
        let part = r.part.as_ref().map(|p| p.number);
        self.mounts
            .iter()
            .filter(|m| m.volume_id == r.disk.view.volume_id && m.partition == part)
            .collect()
    }

    /// True when a partition of the disk `r` names (a whole disk) is
    /// mounted: the kernel then refuses an exclusive open of the disk.
    pub fn disk_busy(&self, r: &Resolved) -> bool {
        r.part.is_none()
            && self
                .mounts
                .iter()
                .any(|m| m.volume_id == r.disk.view.volume_id && m.partition.is_some())
    }

    /// Whether something is mounted on `path` (lexically normalized).
    pub fn is_mount_point(&self, path: &str) -> bool {
        let t = normalize_path(path);
        self.mounts.iter().any(|m| m.target == t)
    }

    /// The first mount on `path` (lexically normalized) of type `fstype`.
    pub fn mount_on(&self, path: &str, fstype: &str) -> Option<&Mount> {
        let t = normalize_path(path);
        self.mounts
            .iter()
            .find(|m| m.target == t && m.fstype == fstype)
    }

    /// The first mount of the device `r` of type `fstype` (a tool that
    /// looks a device up in the mount table, after realpath).
    pub fn device_mount(&self, r: &Resolved, fstype: &str) -> Option<&Mount> {
        self.mounts_of(r).into_iter().find(|m| m.fstype == fstype)
    }
}

/// The fstab of a catalog image, as mounts of the root disk's partitions.
fn fstab_of(flavour: Option<&str>, disks: &[GuestDisk]) -> Vec<Mount> {
    let (Some(c), Some(root)) = (
        flavour.and_then(catalog::by_key),
        disks.iter().find(|d| d.view.root),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in c.layout.partitions {
        let Some(fs) = p.fs else { continue };
        let Some(target) = fs.mount_point else {
            continue;
        };
        out.push(Mount {
            volume_id: root.view.volume_id.clone(),
            partition: Some(p.number),
            source: format!(
                "/dev/{}",
                crate::ec2::guest::partition_name(&root.view.name, p.number)
            ),
            target: target.to_string(),
            fstype: fs.kind.name().to_string(),
            options: fs.options.to_string(),
            fstab: true,
        });
    }
    out
}

/// What `instance` (None: the only running one) shows lsblk and df now.
pub fn snapshot(ec2: &Ec2, instance: Option<&str>) -> Result<Snapshot, GuestError> {
    Ok(ec2.transact(|txn| {
        let id = txn.resolve_instance(instance)?;
        Ok(instance::snapshot(txn, &id)?)
    })?)
}

/// What blkid sees in `instance` (one transaction): each disk with its
/// partitions, and the image's util-linux.
pub fn blkid_disks(
    ec2: &Ec2,
    instance: Option<&str>,
) -> Result<(Vec<super::blkid::Disk>, super::lsblk::UtilLinux), GuestError> {
    Ok(ec2.transact(|txn| {
        let id = txn.resolve_instance(instance)?;
        Ok(instance::blkid_disks(txn, &id)?)
    })?)
}

/// The OS release of `instance`'s image (None: the only running one).
pub fn release(ec2: &Ec2, instance: Option<&str>) -> Result<OsRelease, GuestError> {
    Ok(ec2.transact(|txn| {
        let id = txn.resolve_instance(instance)?;
        Ok(OsRelease::of_util_linux(&txn.instance(&id)?.util_linux))
    })?)
}

/// Records mounts in `instance` (one transaction).
pub fn add_mounts(ec2: &Ec2, instance: &str, ms: Vec<Mount>) -> Result<(), GuestError> {
    Ok(ec2.transact(|txn| {
        for m in ms {
            txn.add_mount(instance, m)?;
        }
        Ok(())
    })?)
}

/// Removes `m`, the topmost mount on its target, from `instance`. False
/// (and nothing removed) when the topmost mount there is not `m` any more:
/// someone else changed the mounts meanwhile.
pub fn remove_mount(ec2: &Ec2, instance: &str, m: &Mount) -> Result<bool, GuestError> {
    Ok(ec2.transact(|txn| {
        let top = txn
            .instance(instance)?
            .mounts
            .iter()
            .rev()
            .find(|x| x.target == m.target);
        if top != Some(m) {
            return Ok(false);
        }
        Ok(txn.remove_mount(instance, &m.target)?.is_some())
    })?)
}
