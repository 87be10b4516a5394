//! An instance's block devices as its kernel sees them: each attached
//! volume's disk (name and MAJ:MIN from the EC2 model), the partitions its
//! table holds (read from the image, named as the kernel names them), the
//! filesystems on them, and what is mounted where. Device names given on a
//! command line resolve here.

use super::Snapshot;
use super::df::Mount as DfMount;
use super::lsblk::{Device, FsUsage, UtilLinux};
use crate::blockdev::image::Access;
use crate::blockdev::{ImageFile, Slice};
use crate::ec2::Txn;
use crate::ec2::guest::{DiskView, Hypervisor};
use crate::ec2::model::Mount;
use crate::fs::{self, FsInfo};
use crate::partition::{self, Label, SECTOR};
use std::path::Path;

/// Errors of the guest layer.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The EC2 model refused (no instance, ...).
    #[error("{0}")]
    Ec2(#[from] crate::ec2::Error),
    /// An image could not be read.
    #[error("{0}")]
    Device(#[from] crate::blockdev::Error),
}

impl From<GuestError> for crate::ec2::Error {
    /// Inside a transaction, a guest failure is the transaction's error: the
    /// model's own errors pass through, an unreadable image is reported as
    /// `GuestError`.
    fn from(e: GuestError) -> Self {
        match e {
            GuestError::Ec2(e) => e,
            other => crate::ec2::ApiError::new("GuestError", other.to_string()).into(),
        }
    }
}

/// One partition the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPart {
    /// Partition number.
    pub number: u32,
    /// Kernel name (`xvda1`, `nvme0n1p1`).
    pub name: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// PARTUUID.
    pub partuuid: String,
    /// PARTLABEL (GPT name).
    pub partlabel: Option<String>,
    /// PARTTYPE.
    pub parttype: String,
}

/// One disk the guest sees, with its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestDisk {
    /// The disk as the EC2 model has it.
    pub view: DiskView,
    /// Size the guest sees (the image's size).
    pub size: u64,
    /// `gpt` / `dos`.
    pub pttype: Option<String>,
    /// PTUUID.
    pub ptuuid: Option<String>,
    /// Partitions in number order.
    pub parts: Vec<GuestPart>,
}

fn lower(s: impl std::fmt::Display) -> String {
    s.to_string().to_ascii_lowercase()
}

/// The disks of `instance_id`, reading each image's partition table. New
/// partitions take their 259:N minors here, in number order, as the kernel
/// does when it scans a disk.
pub fn disks(txn: &mut Txn<'_>, instance_id: &str) -> Result<Vec<GuestDisk>, GuestError> {
    let inst = txn.instance(instance_id)?.clone();
    let nitro = crate::ec2::guest::hypervisor(&inst.instance_type) == Hypervisor::Nitro;
    let mut out = Vec::new();
    for view in txn.instance_disks(instance_id) {
        let img = crate::ec2::store::open_volume_image(&view.image, Access::ReadOnly)?;
        let size = crate::blockdev::BlockDevice::size(&img);
        let label = partition::probe(&img).ok().and_then(|p| p.label);
        let mut parts = Vec::new();
        let (pttype, ptuuid) = match &label {
            Some(Label::Gpt(g)) => (Some("gpt".to_string()), Some(lower(g.primary.disk_guid))),
            Some(Label::Dos(d)) => (Some("dos".to_string()), Some(format!("{:08x}", d.disk_id))),
            None => (None, None),
        };
        let table = part_table(&label);
        for (number, start, sectors, partuuid, partlabel, parttype) in table {
            let name = crate::ec2::guest::partition_name(&view.name, number);
            let (major, minor) = match (
                nitro,
                crate::ec2::guest::xen_partition_dev(view.minor / 16, number),
            ) {
                (false, Some(dev)) => dev,
                _ => (259, txn.partition_minor(instance_id, &name)?),
            };
            // The kernel ignores a partition that does not fit the disk.
            let (Some(start), Some(len)) = (start.checked_mul(SECTOR), sectors.checked_mul(SECTOR))
            else {
                continue;
            };
            if start.saturating_add(len) > size {
                continue;
            }
            parts.push(GuestPart {
                number,
                name,
                major,
                minor,
                start,
                len,
                partuuid,
                partlabel,
                parttype,
            });
        }
        out.push(GuestDisk {
            view,
            size,
            pttype,
            ptuuid,
            parts,
        });
    }
    Ok(out)
}

/// A partition as the table has it: number, first sector, sectors,
/// PARTUUID, PARTLABEL, PARTTYPE.
type PartRow = (u32, u64, u64, String, Option<String>, String);

/// The rows of a partition table, in number order.
fn part_table(label: &Option<Label>) -> Vec<PartRow> {
    let mut table: Vec<PartRow> = Vec::new();
    match label {
        Some(Label::Gpt(g)) => {
            for (n, e) in g.partitions() {
                let name = e.name_string();
                table.push((
                    n,
                    e.first_lba,
                    e.size(),
                    lower(e.unique_guid),
                    (!name.is_empty()).then_some(name),
                    lower(e.type_guid),
                ));
            }
        }
        Some(Label::Dos(d)) => {
            for p in &d.partitions {
                table.push((
                    p.number,
                    p.start,
                    p.size,
                    format!("{:08x}-{:02x}", d.disk_id, p.number),
                    None,
                    format!("0x{:x}", p.sys),
                ));
            }
        }
        None => {}
    }
    table.sort_by_key(|t| t.0);
    table
}

/// A device named on a guest command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The disk.
    pub disk: GuestDisk,
    /// The partition, when the name is one.
    pub part: Option<GuestPart>,
    /// What is mounted from it (the most recent mount), if anything.
    pub mount: Option<Mount>,
    /// The state this was resolved from, checked again by a read-write
    /// [`Resolved::open`] (None: nothing to check, as for a bare list of
    /// disks).
    pub basis: Option<Basis>,
}

/// What a command's checks on a device were made on: the instance in the
/// state document, read in a transaction that ended before the image was
/// opened (an image is opened read-write only outside the state lock, so
/// the check and the open cannot be one transaction). Another process may
/// detach the volume, mount it, change its size or its partition table in
/// between; a read-write [`Resolved::open`] therefore checks again, holding
/// the image's lock, and refuses if anything differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis {
    /// The state directory.
    pub home: std::path::PathBuf,
    /// The instance.
    pub instance_id: String,
    /// Every mount of the volume in the instance, oldest first.
    pub mounts: Vec<Mount>,
}

impl Resolved {
    /// `/dev/NAME` of the disk or partition.
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.kernel_name())
    }

    /// The kernel name.
    pub fn kernel_name(&self) -> &str {
        self.part.as_ref().map_or(&self.disk.view.name, |p| &p.name)
    }

    /// The volume's image file.
    pub fn image(&self) -> &Path {
        &self.disk.view.image
    }

    /// Byte range on the image.
    pub fn range(&self) -> (u64, u64) {
        match &self.part {
            Some(p) => (p.start, p.len),
            None => (0, self.disk.size),
        }
    }

    /// Opens the device: the volume's image, windowed to the partition.
    /// Read-write, it holds the image's lock and then checks that the
    /// instance still has the disk as it was resolved ([`Basis`]): the
    /// volume attached under the same name and size, its mounts unchanged,
    /// the partition at the same place; otherwise it fails with
    /// [`crate::blockdev::Error::DeviceChanged`] before anything is
    /// written. A change made after this check waits for the lock if it
    /// writes the image (a grow, another tool) and otherwise is the
    /// kernel's case of a device changing under an open file.
    pub fn open(&self, access: Access) -> Result<Slice<ImageFile>, crate::blockdev::Error> {
        let img = crate::ec2::store::open_volume_image(self.image(), access)?;
        if access == Access::ReadWrite {
            if let Some(b) = &self.basis {
                if let Some(detail) = self.changed(b, &img) {
                    return Err(crate::blockdev::Error::DeviceChanged {
                        device: self.dev_path(),
                        detail,
                    });
                }
            }
        }
        let (off, len) = self.range();
        Slice::new(img, off, len)
    }

    /// What differs between `b` and the state and image now (the image
    /// opened read-write, so its lock is held), if anything. The document
    /// is read without the state lock: it is only ever replaced whole (a
    /// rename), so a read sees one committed version, and taking the state
    /// lock while holding an image's would invert the lock order.
    fn changed(&self, b: &Basis, img: &ImageFile) -> Option<String> {
        let home = crate::ec2::Home::at(&b.home);
        let state = match crate::ec2::store::read_state(&home) {
            Ok(Some(s)) => s,
            Ok(None) => return Some("the state document is gone".to_string()),
            Err(e) => return Some(format!("the state cannot be read again ({e})")),
        };
        let vol = &self.disk.view.volume_id;
        let views = crate::ec2::guest::disks(&state, &home, &b.instance_id);
        match views.iter().find(|v| &v.volume_id == vol) {
            None => return Some(format!("{vol} is no longer attached to {}", b.instance_id)),
            Some(v) if v != &self.disk.view => {
                return Some(format!("{vol}'s attachment or size changed"));
            }
            Some(_) => {}
        }
        let mounts: Vec<Mount> = state
            .instances
            .get(&b.instance_id)
            .map(|i| {
                i.mounts
                    .iter()
                    .filter(|m| &m.volume_id == vol)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if mounts != b.mounts {
            return Some(format!("what is mounted from {vol} changed"));
        }
        if crate::blockdev::BlockDevice::size(img) != self.disk.size {
            return Some(format!("{vol}'s image changed size"));
        }
        if let Some(p) = &self.part {
            let label = partition::probe(img).ok().and_then(|p| p.label);
            let now = part_table(&label)
                .into_iter()
                .find(|t| t.0 == p.number)
                .and_then(|t| Some((t.1.checked_mul(SECTOR)?, t.2.checked_mul(SECTOR)?)));
            if now != Some((p.start, p.len)) {
                return Some(format!("partition {} of {vol} moved or is gone", p.number));
            }
        }
        None
    }

    /// The filesystem on the device, if ebsim knows it (as blkid probes).
    pub fn probe(&self) -> Option<FsInfo> {
        let dev = self.open(Access::ReadOnly).ok()?;
        fs::probe(dev).ok().flatten()
    }
}

/// Mounts of `volume_id` (and partition), most recent first.
fn mounts_of<'a>(mounts: &'a [Mount], volume: &str, part: Option<u32>) -> Vec<&'a Mount> {
    mounts
        .iter()
        .rev()
        .filter(|m| m.volume_id == volume && m.partition == part)
        .collect()
}

/// The links to block devices the image's udev rules make under `/dev`,
/// as (link path, kernel name): the one list of them (the guest's `/dev`
/// is built from it). Amazon Linux 2 and 2023 ship Amazon's ec2-utils:
/// on Xen its rule links every `xvd*` disk and partition under the `sd`
/// name (`/dev/sdf` → `xvdf`, `/dev/sda1` → `xvda1`); on Nitro it links
/// each EBS NVMe disk under its block-device-mapping name without
/// `/dev/` (`/dev/sdf` or `/dev/xvda` → `nvme1n1`) and each partition
/// under that name and its number (`/dev/xvda1` → `nvme0n1p1`). Ubuntu
/// and CentOS 7 have no such rules: only the kernel's names exist there,
/// so `mkfs.xfs /dev/sdf` finds no such file.
pub fn device_links(flavour: Option<&str>, disks: &[GuestDisk]) -> Vec<(String, String)> {
    let amazon = flavour.is_some_and(|f| f.starts_with("amzn2") || f.starts_with("al2023"));
    if !amazon {
        return Vec::new();
    }
    let mut out = Vec::new();
    for d in disks {
        let name = &d.view.name;
        if let Some(rest) = name.strip_prefix("xvd") {
            out.push((format!("/dev/sd{rest}"), name.clone()));
            for p in &d.parts {
                if let Some(prest) = p.name.strip_prefix("xvd") {
                    out.push((format!("/dev/sd{prest}"), p.name.clone()));
                }
            }
        } else if name.starts_with("nvme") {
            let map = d.view.device.trim_start_matches("/dev/");
            if map.is_empty() {
                continue;
            }
            out.push((format!("/dev/{map}"), name.clone()));
            for p in &d.parts {
                out.push((format!("/dev/{map}{}", p.number), p.name.clone()));
            }
        }
    }
    out
}

/// Resolves `spec`: `/dev/xvda`, `/dev/xvda1`, `/dev/nvme0n1p1`, a link
/// of the image's udev rules (`links`, from [`device_links`]: `/dev/sdf`
/// on Amazon Linux), a mount point, `UUID=`/`LABEL=`, or
/// `/dev/disk/by-uuid|by-label/`.
pub fn resolve(
    disks: &[GuestDisk],
    mounts: &[Mount],
    links: &[(String, String)],
    spec: &str,
) -> Option<Resolved> {
    let make = |d: &GuestDisk, p: Option<&GuestPart>| {
        let volume = &d.view.volume_id;
        Resolved {
            disk: d.clone(),
            part: p.cloned(),
            mount: mounts_of(mounts, volume, p.map(|p| p.number))
                .first()
                .map(|m| (*m).clone()),
            basis: None,
        }
    };
    let by_fs = |pred: &dyn Fn(&FsInfo) -> bool| -> Option<Resolved> {
        for d in disks {
            let img = crate::ec2::store::open_volume_image(&d.view.image, Access::ReadOnly).ok()?;
            let whole = std::iter::once(None).chain(d.parts.iter().map(Some));
            for p in whole {
                let (off, len) = p.map_or((0, d.size), |p| (p.start, p.len));
                let Ok(slice) = Slice::new(&img, off, len) else {
                    continue;
                };
                if let Ok(Some(info)) = fs::probe(slice) {
                    if pred(&info) {
                        return Some(make(d, p));
                    }
                }
            }
        }
        None
    };
    if let Some(u) = spec
        .strip_prefix("UUID=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"))
    {
        let u = u.trim_matches('"').to_ascii_lowercase();
        return by_fs(&|i| i.uuid == u);
    }
    if let Some(l) = spec
        .strip_prefix("LABEL=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-label/"))
    {
        let l = l.trim_matches('"').to_string();
        return by_fs(&|i| i.label == l);
    }
    if let Some(name) = spec.strip_prefix("/dev/") {
        for d in disks {
            if d.view.name == name {
                return Some(make(d, None));
            }
            if let Some(p) = d.parts.iter().find(|p| p.name == name) {
                return Some(make(d, Some(p)));
            }
        }
        // A udev link to a disk or partition.
        let (_, target) = links.iter().find(|(l, _)| l == spec)?;
        for d in disks {
            if &d.view.name == target {
                return Some(make(d, None));
            }
            if let Some(p) = d.parts.iter().find(|p| &p.name == target) {
                return Some(make(d, Some(p)));
            }
        }
        return None;
    }
    // A mount point (the most recent mount on it).
    let target = super::normalize_path(spec);
    let m = mounts.iter().rev().find(|m| m.target == target)?;
    let d = disks.iter().find(|d| d.view.volume_id == m.volume_id)?;
    let p = m
        .partition
        .and_then(|n| d.parts.iter().find(|p| p.number == n));
    Some(Resolved {
        disk: d.clone(),
        part: p.cloned(),
        mount: Some(m.clone()),
        basis: None,
    })
}

fn fs_of(img: &ImageFile, off: u64, len: u64) -> Option<FsInfo> {
    let slice = Slice::new(img, off, len).ok()?;
    fs::probe(slice).ok().flatten()
}

fn usage(img: &ImageFile, off: u64, len: u64, info: &FsInfo, m: &Mount) -> Option<fs::StatFs> {
    let slice = Slice::new(img, off, len).ok()?;
    let ro = m.options.split(',').any(|o| o == "ro");
    fs::statfs(slice, info.kind, ro).ok()
}

/// What lsblk and df show for `instance_id`, now.
pub fn snapshot(txn: &mut Txn<'_>, instance_id: &str) -> Result<Snapshot, GuestError> {
    let disks = disks(txn, instance_id)?;
    let inst = txn.instance(instance_id)?.clone();
    // The image's snap loop devices (lsblk sorts them before the disks).
    let mut devices = super::pseudo::snap_loops(inst.flavour.as_deref());
    let mut df_mounts = Vec::new();
    for d in &disks {
        let img = crate::ec2::store::open_volume_image(&d.view.image, Access::ReadOnly)?;
        let mut dev = device_for(&img, d, None, &inst.mounts, &mut df_mounts);
        for p in &d.parts {
            dev.children
                .push(device_for(&img, d, Some(p), &inst.mounts, &mut df_mounts));
        }
        devices.push(dev);
    }
    // df lists mounts in mount order.
    let order = |m: &DfMount| {
        inst.mounts
            .iter()
            .position(|x| x.target == m.target && x.source == m.source)
            .unwrap_or(usize::MAX)
    };
    df_mounts.sort_by_key(order);
    // The memory-backed mounts of the boot, in their places.
    let order = super::pseudo::boot_order(inst.flavour.as_deref(), &inst.instance_type);
    let df_mounts = super::pseudo::merge(&order, df_mounts);
    Ok(Snapshot {
        devices,
        mounts: df_mounts,
        util_linux: UtilLinux::of(
            crate::ec2::release::OsRelease::of_util_linux(&inst.util_linux).util_linux,
        ),
    })
}

fn device_for(
    img: &ImageFile,
    d: &GuestDisk,
    p: Option<&GuestPart>,
    mounts: &[Mount],
    df_mounts: &mut Vec<DfMount>,
) -> Device {
    let (off, len) = p.map_or((0, d.size), |p| (p.start, p.len));
    let info = fs_of(img, off, len);
    let mine = mounts_of(mounts, &d.view.volume_id, p.map(|p| p.number));
    let stat = match (mine.first(), &info) {
        (Some(m), Some(i)) => usage(img, off, len, i, m),
        _ => None,
    };
    if let (Some(_), Some(s)) = (&info, stat) {
        for m in &mine {
            df_mounts.push(DfMount {
                source: m.source.clone(),
                // The type it is mounted as (ext3 may be mounted as ext4).
                fstype: m.fstype.clone(),
                target: m.target.clone(),
                stat: s,
            });
        }
    }
    Device {
        name: p.map_or(d.view.name.clone(), |p| p.name.clone()),
        major: p.map_or(d.view.major, |p| p.major),
        minor: p.map_or(d.view.minor, |p| p.minor),
        removable: false,
        read_only: false,
        size: len,
        kind: if p.is_some() { "part" } else { "disk" }.into(),
        mountpoints: mine.iter().map(|m| m.target.clone()).collect(),
        // blkid's TYPE (ext2, ext3 within the ext family).
        fstype: info.as_ref().map(|i| i.type_name.to_string()),
        fsver: info.as_ref().and_then(|i| i.version.clone()),
        label: info
            .as_ref()
            .map(|i| i.label.clone())
            .filter(|l| !l.is_empty()),
        uuid: info.as_ref().map(|i| i.uuid.clone()),
        partuuid: p.map(|p| p.partuuid.clone()),
        partlabel: p.and_then(|p| p.partlabel.clone()),
        parttype: p.map(|p| p.parttype.clone()),
        ptuuid: d.ptuuid.clone(),
        pttype: d.pttype.clone(),
        serial: if p.is_none() {
            d.view.serial.clone()
        } else {
            None
        },
        model: None,
        fs: stat.map(|s| FsUsage {
            frsize: s.frsize,
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
        }),
        children: Vec::new(),
    }
}

/// What blkid sees in `instance_id`: each disk with its partitions (from
/// [`super::blkid::probe_disk`], named as the guest names them), Ubuntu's
/// snap loops, and the util-linux of the image.
pub fn blkid_disks(
    txn: &mut Txn<'_>,
    instance_id: &str,
) -> Result<(Vec<super::blkid::Disk>, UtilLinux), GuestError> {
    let disks = disks(txn, instance_id)?;
    let inst = txn.instance(instance_id)?.clone();
    let v =
        UtilLinux::of(crate::ec2::release::OsRelease::of_util_linux(&inst.util_linux).util_linux);
    let mut out = Vec::new();
    for l in super::pseudo::snap_loops(inst.flavour.as_deref()) {
        let tags = super::blkid::squashfs_tags(false);
        let low = super::blkid::squashfs_tags(true);
        out.push(vec![(
            l.name.clone(),
            super::blkid::Probed {
                path: format!("/dev/{}", l.name),
                tags,
                low,
                mountpoint: l.mountpoints.first().cloned(),
            },
        )]);
    }
    for d in &disks {
        let img = crate::ec2::store::open_volume_image(&d.view.image, Access::ReadOnly)?;
        let mounted = |name: &str| {
            let part = if name == d.view.name {
                None
            } else {
                d.parts.iter().find(|p| p.name == name).map(|p| p.number)
            };
            mounts_of(&inst.mounts, &d.view.volume_id, part)
                .first()
                .map(|m| m.target.clone())
        };
        let mut devs = super::blkid::probe_disk(
            &img,
            &d.view.name,
            (d.view.major, d.view.minor),
            v,
            &mounted,
        );
        // Only the partitions the guest's kernel shows.
        devs.retain(|(n, _)| *n == d.view.name || d.parts.iter().any(|p| p.name == *n));
        out.push(devs);
    }
    Ok((out, v))
}
