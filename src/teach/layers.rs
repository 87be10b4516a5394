//! The layers of a disk, side by side: the disk's size, its partition
//! table and each partition's extent, the unallocated space after them,
//! each filesystem's own size against its container with its usage and
//! mount point, and one sentence naming the layer that limits growth now
//! with the command that grows it.
//!
//! Every number is one the guest's tools show for the same state: a
//! disk's and a partition's size are `lsblk -b`'s SIZE (the guest layer's
//! snapshot, the same one lsblk renders), a mounted filesystem's size,
//! used and available bytes are `df -B1`'s (`f_blocks`, `f_blocks -
//! f_bfree` and `f_bavail` times `f_frsize`), and an unmounted one's are
//! what statfs would report once it is mounted read-write. The
//! filesystem's own size (what resize2fs and xfs_growfs grow) is its
//! superblock's block count times its block size, which df does not show
//! (ext4's `f_blocks` leaves the metadata out).
//!
//! Whether the partition can grow is asked of growpart's own planner (the
//! same arithmetic `growpart` runs), so the sentence says "grow the
//! partition" exactly when growpart would print CHANGED.

use crate::blockdev::image::Access;
use crate::blockdev::{BlockDevice, ImageFile, Slice};
use crate::ec2::Ec2;
use crate::ec2::model::{ModState, Mount};
use crate::fs::{self, FsKind};
use crate::guest::instance::{self, GuestDisk};
use crate::guest::lsblk::Device;
use crate::partition::grow::{DiskView, GrowOptions, Outcome, plan_grow};
use crate::partition::{self, Label};
use serde::Serialize;
use std::path::Path;

/// 2 TiB: the most an MBR (32-bit sector numbers of 512 bytes) addresses.
pub const MBR_LIMIT: u64 = 1 << 41;

/// Errors of the layers view.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// The cloud model refused (no such instance, no state).
    #[error("{0}")]
    Ec2(#[from] crate::ec2::Error),
    /// The guest layer could not read a disk.
    #[error("{0}")]
    Guest(#[from] crate::guest::GuestError),
    /// An image file could not be read.
    #[error("{path}: {source}")]
    Image {
        /// The image.
        path: String,
        /// Why.
        source: crate::blockdev::Error,
    },
}

/// The layers of every disk of an instance or of one image file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Layers {
    /// The instance id, or the image file's path.
    pub source: String,
    /// `instance` or `image`.
    pub kind: String,
    /// The disks, in the order lsblk lists them.
    pub disks: Vec<DiskLayers>,
}

/// One disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DiskLayers {
    /// Kernel name (`xvda`, `nvme0n1`) or the image's path.
    pub name: String,
    /// The path a tool is given for it (`/dev/xvda`, or the image's path).
    pub path: String,
    /// The EBS volume, for an instance's disk.
    pub volume_id: Option<String>,
    /// Size in bytes (`lsblk -b` SIZE).
    pub size: u64,
    /// `gpt`, `dos`, or none.
    pub table: Option<String>,
    /// Partitions in number order.
    pub partitions: Vec<PartLayer>,
    /// Bytes after the end of the last partition (the whole disk when it
    /// has no partitions and no filesystem).
    pub unallocated: u64,
    /// A filesystem on the whole disk (no partition table).
    pub filesystem: Option<FsLayer>,
    /// The volume's latest modification, while it is not completed.
    pub modification: Option<ModLayer>,
    /// The layer that limits growth now.
    pub limit: Limit,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PartLayer {
    /// Partition number.
    pub number: u32,
    /// Kernel name (`xvda1`) or `IMAGE@N`.
    pub name: String,
    /// First byte on the disk.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Size in bytes (`lsblk -b` SIZE).
    pub size: u64,
    /// What the partition type says, when it says swap, BIOS boot or EFI.
    pub role: Option<String>,
    /// Its filesystem, if ebsim knows it.
    pub filesystem: Option<FsLayer>,
}

/// A filesystem against its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FsLayer {
    /// `ext4` or `xfs`.
    pub kind: String,
    /// Its own size in bytes (block count × block size).
    pub size: u64,
    /// Where it is mounted (most recent first), if anywhere.
    pub mountpoints: Vec<String>,
    /// `df -B1` Size.
    pub df_size: u64,
    /// `df -B1` Used.
    pub df_used: u64,
    /// `df -B1` Avail.
    pub df_avail: u64,
}

/// A modification in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModLayer {
    /// `modifying`, `optimizing`.
    pub state: String,
    /// Percent, as DescribeVolumesModifications reports it.
    pub progress: u64,
    /// Size before, bytes.
    pub original_size: u64,
    /// Size asked for, bytes.
    pub target_size: u64,
}

/// Which layer limits growth, and the sentence that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Limit {
    /// `volume-modifying`, `partition`, `partition-not-last`, `mbr-2tib`,
    /// `filesystem`, `none`.
    pub layer: String,
    /// The command that grows it, when one does.
    pub command: Option<String>,
    /// One sentence.
    pub sentence: String,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const TIB: u64 = 1 << 40;

/// A size as a teacher says it: `16 GiB`, `7.9 GiB`, `106 MiB`, `2 TiB`.
pub fn human(bytes: u64) -> String {
    let (unit, name) = if bytes >= TIB {
        (TIB, "TiB")
    } else if bytes >= GIB {
        (GIB, "GiB")
    } else if bytes >= MIB {
        (MIB, "MiB")
    } else if bytes >= 1024 {
        (1024, "KiB")
    } else {
        return format!("{bytes} B");
    };
    if bytes % unit == 0 {
        format!("{} {name}", bytes / unit)
    } else {
        // Lossy on purpose: one decimal for reading.
        #[allow(clippy::cast_precision_loss)]
        let v = bytes as f64 / unit as f64;
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").map_or(s.clone(), str::to_string);
        format!("{s} {name}")
    }
}

fn role_of(parttype: &str) -> Option<String> {
    let t = parttype.to_ascii_lowercase();
    match t.as_str() {
        "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f" | "0x82" => Some("swap".into()),
        "21686148-6449-6e6f-744e-656564454649" => Some("bios-boot".into()),
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" | "0xef" => Some("efi".into()),
        _ => None,
    }
}

/// A filesystem's own size, from its superblock.
fn fs_size<D: BlockDevice>(dev: D, kind: FsKind) -> Option<u64> {
    match kind {
        FsKind::Ext4 => {
            let i = fs::ext4::fs::info(dev).ok()?;
            i.blocks.checked_mul(u64::from(i.block_size))
        }
        FsKind::Xfs => Some(fs::xfs::Xfs::open(dev).ok()?.info().size_bytes),
        FsKind::Vfat => {
            let g = fs::vfat::geometry(&dev).ok()??;
            g.total_sectors.checked_mul(g.sector)
        }
        FsKind::Swap => {
            let i = fs::swap::info(&dev)?;
            (u64::from(i.last_page) + 1).checked_mul(u64::from(i.pagesize))
        }
    }
}

/// What one byte range holds: the filesystem and its numbers.
fn fs_layer(
    img: &ImageFile,
    off: u64,
    len: u64,
    lsblk: Option<&Device>,
    read_only: bool,
) -> Option<FsLayer> {
    let slice = |_: ()| Slice::new(img, off, len).ok();
    let info = fs::probe(slice(())?).ok().flatten()?;
    let size = fs_size(slice(())?, info.kind)?;
    // Mounted: df's numbers are lsblk's snapshot (the same statfs); else
    // what a read-write mount would report.
    let usage = match lsblk.and_then(|d| d.fs) {
        Some(u) => (u.frsize, u.blocks, u.bfree, u.bavail),
        None => {
            let s = fs::statfs(slice(())?, info.kind, read_only).ok()?;
            (s.frsize, s.blocks, s.bfree, s.bavail)
        }
    };
    let (fr, blocks, bfree, bavail) = usage;
    Some(FsLayer {
        kind: info.kind.name().to_string(),
        size,
        mountpoints: lsblk.map(|d| d.mountpoints.clone()).unwrap_or_default(),
        df_size: blocks.saturating_mul(fr),
        df_used: blocks.saturating_sub(bfree).saturating_mul(fr),
        df_avail: bavail.saturating_mul(fr),
    })
}

/// How tools name things on this disk: guest device paths, or image files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    Guest,
    Image,
}

struct Reader<'a> {
    img: &'a ImageFile,
    path: String,
    naming: Naming,
}

impl Reader<'_> {
    fn sector0(&self) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        if self.img.read_at(0, &mut s).is_err() {
            s.clear();
        }
        s
    }

    fn part_path(&self, name: &str, number: u32) -> String {
        match self.naming {
            Naming::Guest => format!("/dev/{name}"),
            Naming::Image => format!("{}@{number}", self.path),
        }
    }
}

/// Why growth stops on a disk (pure: the numbers are already read).
fn limit(r: &Reader<'_>, d: &DiskLayers, label: Option<&Label>, mount_hint: Option<&str>) -> Limit {
    let mk = |layer: &str, command: Option<String>, sentence: String| Limit {
        layer: layer.into(),
        command,
        sentence,
    };
    if let Some(m) = &d.modification {
        if m.state == "modifying" {
            return mk(
                "volume-modifying",
                None,
                format!(
                    "volume {} is modifying from {} to {}: the disk still shows {} until the modification reaches optimizing; wait for it, then grow the partition",
                    d.volume_id.as_deref().unwrap_or(&d.name),
                    human(m.original_size),
                    human(m.target_size),
                    human(d.size)
                ),
            );
        }
    }
    let optimizing = d
        .modification
        .as_ref()
        .is_some_and(|m| m.state == "optimizing");
    let note = if optimizing {
        " (the modification is still optimizing: growing now is fine)"
    } else {
        ""
    };
    // The partition that matters: the last one holding a filesystem (a
    // swap area is not grown), else the last one.
    let candidate = d
        .partitions
        .iter()
        .filter(|p| p.filesystem.as_ref().is_some_and(|f| f.kind != "swap"))
        .max_by_key(|p| p.end)
        .or_else(|| d.partitions.iter().max_by_key(|p| p.end));
    if let (Some(p), Some(label)) = (candidate, label) {
        let sector0 = r.sector0();
        let view = DiskView {
            name: &r.path,
            size_bytes: d.size,
            sector0: &sector0,
            label,
        };
        let outcome = plan_grow(&view, &p.number.to_string(), &GrowOptions::default());
        let growpart = format!("growpart {} {}", r.path, p.number);
        match outcome {
            Ok(Outcome::Grow(plan)) if plan.writes.is_ok() => {
                return mk(
                    "partition",
                    Some(growpart.clone()),
                    format!(
                        "disk {}, partition {} ends at {}: grow the partition with {growpart}{note}",
                        human(d.size),
                        p.number,
                        human(p.end)
                    ),
                );
            }
            Ok(Outcome::Grow(plan)) => {
                let why = plan
                    .writes
                    .err()
                    .and_then(|r| {
                        r.messages
                            .iter()
                            .find(|m| m.contains("No free sectors"))
                            .or(r.messages.first())
                            .cloned()
                    })
                    .unwrap_or_default();
                if d.table.as_deref() == Some("dos") && d.size > MBR_LIMIT {
                    let start = p.start / partition::SECTOR;
                    let max = (MBR_LIMIT / partition::SECTOR).saturating_sub(start);
                    return mk(
                        "mbr-2tib",
                        None,
                        format!(
                            "disk {} has an MBR (dos) partition table, which cannot describe more than 2 TiB: {growpart} fails on it (sfdisk: {why}); grow partition {} to the 2 TiB limit by hand (sfdisk with start={start}, size={max}) or convert the table to GPT (sgdisk --mbrtogpt {}, offline) to use all {}",
                            human(d.size),
                            p.number,
                            r.path,
                            human(d.size)
                        ),
                    );
                }
                return mk(
                    "partition-table",
                    None,
                    format!(
                        "disk {}, partition {} ends at {}, but {growpart} would fail: sfdisk says {why}",
                        human(d.size),
                        p.number,
                        human(p.end)
                    ),
                );
            }
            Ok(Outcome::NoChange(_)) | Err(_) => {
                let last_end = d.partitions.iter().map(|q| q.end).max().unwrap_or(0);
                if d.table.as_deref() == Some("dos")
                    && d.size > MBR_LIMIT
                    && p.end >= MBR_LIMIT - 2 * MIB
                {
                    return mk(
                        "mbr-2tib",
                        Some(format!("sgdisk --mbrtogpt {}", r.path)),
                        format!(
                            "disk {} has an MBR (dos) partition table, which addresses at most 2 TiB: partition {} already ends at {} and growpart cannot take it further; convert the table to GPT (sgdisk --mbrtogpt {}, with room for the GPT at both ends), then grow the partition with {growpart}",
                            human(d.size),
                            p.number,
                            human(p.end),
                            r.path
                        ),
                    );
                }
                if let Some(next) = d
                    .partitions
                    .iter()
                    .filter(|q| q.start >= p.end)
                    .min_by_key(|q| q.start)
                {
                    if d.size.saturating_sub(last_end) > MIB {
                        let what = next.role.as_deref().unwrap_or("another partition");
                        return mk(
                            "partition-not-last",
                            None,
                            format!(
                                "partition {} ends at {} but partition {} ({what}) follows it, and the {} of free space is after partition {}: growpart grows a partition only into the space right after it; move or remove partition {} first (for swap: swapoff, delete it, {growpart}, then make the swap again at the end)",
                                p.number,
                                human(p.end),
                                next.number,
                                human(d.size - last_end),
                                next.number,
                                next.number
                            ),
                        );
                    }
                }
            }
        }
    }
    // The filesystem against its container.
    let (fsl, container, dev, what) = match candidate {
        Some(p) => (
            p.filesystem.as_ref(),
            p.size,
            r.part_path(&p.name, p.number),
            format!("partition {} is {}", p.number, human(p.size)),
        ),
        None => (
            d.filesystem.as_ref(),
            d.size,
            r.path.clone(),
            format!("disk {}", human(d.size)),
        ),
    };
    let Some(f) = fsl else {
        return mk(
            "none",
            None,
            format!("{what} and holds no filesystem ebsim knows: make one (mkfs -t xfs {dev})"),
        );
    };
    let growable = match f.kind.as_str() {
        // resize2fs grows to the device's size in whole blocks.
        "ext4" => container / 4096 > f.size / 4096 && container - f.size >= 4096,
        // xfs_growfs drops a last AG under 64 blocks.
        _ => container.saturating_sub(f.size) >= 64 * 4096,
    };
    if growable {
        let cmd = match (f.kind.as_str(), f.mountpoints.first(), r.naming) {
            ("ext4", _, _) => format!("resize2fs {dev}"),
            (_, Some(mp), _) => format!("xfs_growfs -d {mp}"),
            (_, None, Naming::Image) => format!("xfs_growfs {dev}"),
            (_, None, Naming::Guest) => {
                let mp = mount_hint.unwrap_or("/mnt");
                format!("mount {dev} {mp} && xfs_growfs -d {mp}")
            }
        };
        let why = if f.kind == "xfs" {
            " (xfs_growfs takes the mount point, resize2fs the device)"
        } else {
            ""
        };
        return mk(
            "filesystem",
            Some(cmd.clone()),
            format!(
                "{what}, its {} filesystem {}: grow the filesystem with {cmd}{why}{note}",
                f.kind,
                human(f.size)
            ),
        );
    }
    let grow = match &d.volume_id {
        Some(v) => format!("aws ec2 modify-volume --volume-id {v} --size N"),
        None => format!("truncate -s SIZE {}", r.path),
    };
    mk(
        "none",
        None,
        format!(
            "every layer fills the one below ({}, {} {}): for more space, grow the disk first ({grow})",
            human(d.size),
            f.kind,
            human(f.size)
        ),
    )
}

fn table_of(label: Option<&Label>) -> Option<String> {
    label.map(|l| match l {
        Label::Gpt(_) => "gpt".to_string(),
        Label::Dos(_) => "dos".to_string(),
    })
}

/// The layers of an instance's disks (None: the only running instance).
pub fn of_instance(ec2: &Ec2, instance: Option<&str>) -> Result<Layers, LayersError> {
    let (id, disks, snap, mods, mounts) = ec2.transact(|txn| {
        let id = txn.resolve_instance(instance)?;
        let disks = instance::disks(txn, &id)?;
        let snap = instance::snapshot(txn, &id)?;
        let now = txn.now();
        let mounts: Vec<Mount> = txn.instance(&id)?.mounts.clone();
        let mut mods = Vec::new();
        for d in &disks {
            let latest = txn
                .state()
                .modifications
                .iter()
                .rev()
                .find(|m| m.volume_id == d.view.volume_id);
            mods.push(latest.and_then(|m| {
                matches!(m.state, ModState::Modifying | ModState::Optimizing).then(|| ModLayer {
                    state: m.state.as_str().to_string(),
                    progress: m.progress(now),
                    original_size: m.original_size.saturating_mul(GIB),
                    target_size: m.target_size.saturating_mul(GIB),
                })
            }));
        }
        Ok((id, disks, snap, mods, mounts))
    })?;
    let mut out = Vec::new();
    for (d, modification) in disks.iter().zip(mods) {
        let lsblk = snap.devices.iter().find(|x| x.name == d.view.name);
        out.push(disk_of_guest(d, lsblk, modification, &mounts)?);
    }
    Ok(Layers {
        source: id,
        kind: "instance".into(),
        disks: out,
    })
}

fn disk_of_guest(
    d: &GuestDisk,
    lsblk: Option<&Device>,
    modification: Option<ModLayer>,
    mounts: &[Mount],
) -> Result<DiskLayers, LayersError> {
    let path = format!("/dev/{}", d.view.name);
    let img = crate::ec2::store::open_volume_image(&d.view.image, Access::ReadOnly).map_err(
        |source| LayersError::Image {
            path: d.view.image.display().to_string(),
            source,
        },
    )?;
    let label = partition::probe(&img).ok().and_then(|p| p.label);
    let ro = |volume: &str, part: Option<u32>| {
        mounts.iter().rev().any(|m| {
            m.volume_id == volume && m.partition == part && m.options.split(',').any(|o| o == "ro")
        })
    };
    let mut parts = Vec::new();
    for p in &d.parts {
        let dev = lsblk.and_then(|x| x.children.iter().find(|c| c.name == p.name));
        parts.push(PartLayer {
            number: p.number,
            name: p.name.clone(),
            start: p.start,
            end: p.start.saturating_add(p.len),
            size: dev.map_or(p.len, |c| c.size),
            role: role_of(&p.parttype),
            filesystem: fs_layer(
                &img,
                p.start,
                p.len,
                dev,
                ro(&d.view.volume_id, Some(p.number)),
            ),
        });
    }
    let size = lsblk.map_or(d.size, |x| x.size);
    let whole = if parts.is_empty() {
        fs_layer(&img, 0, d.size, lsblk, ro(&d.view.volume_id, None))
    } else {
        None
    };
    let mount_hint = fstab_hint(mounts, &d.view.volume_id);
    let r = Reader {
        img: &img,
        path: path.clone(),
        naming: Naming::Guest,
    };
    finish(
        &r,
        d.view.name.clone(),
        Some(d.view.volume_id.clone()),
        size,
        label.as_ref(),
        parts,
        whole,
        modification,
        mount_hint.as_deref(),
    )
}

fn fstab_hint(mounts: &[Mount], volume: &str) -> Option<String> {
    mounts
        .iter()
        .find(|m| m.volume_id == volume)
        .map(|m| m.target.clone())
}

#[allow(clippy::too_many_arguments)]
fn finish(
    r: &Reader<'_>,
    name: String,
    volume_id: Option<String>,
    size: u64,
    label: Option<&Label>,
    partitions: Vec<PartLayer>,
    filesystem: Option<FsLayer>,
    modification: Option<ModLayer>,
    mount_hint: Option<&str>,
) -> Result<DiskLayers, LayersError> {
    let last_end = partitions.iter().map(|p| p.end).max();
    let unallocated = match (last_end, &filesystem) {
        (Some(e), _) => size.saturating_sub(e),
        (None, Some(f)) => size.saturating_sub(f.size),
        (None, None) => size,
    };
    let mut d = DiskLayers {
        name,
        path: r.path.clone(),
        volume_id,
        size,
        table: table_of(label),
        partitions,
        unallocated,
        filesystem,
        modification,
        limit: Limit {
            layer: String::new(),
            command: None,
            sentence: String::new(),
        },
    };
    d.limit = limit(r, &d, label, mount_hint);
    Ok(d)
}

/// The layers of an image file (a disk with a table, or a filesystem).
pub fn of_image(path: &Path) -> Result<Layers, LayersError> {
    let shown = path.display().to_string();
    let img = ImageFile::open(path, Access::ReadOnly).map_err(|source| LayersError::Image {
        path: shown.clone(),
        source,
    })?;
    let size = img.size();
    let label = partition::probe(&img).ok().and_then(|p| p.label);
    let mut parts = Vec::new();
    if let Some(l) = &label {
        for (number, start, sectors) in l.partitions() {
            let (Some(start), Some(len)) = (
                start.checked_mul(partition::SECTOR),
                sectors.checked_mul(partition::SECTOR),
            ) else {
                continue;
            };
            if start.saturating_add(len) > size {
                continue;
            }
            let parttype = match l {
                Label::Gpt(g) => g
                    .partitions()
                    .into_iter()
                    .find(|(n, _)| *n == number)
                    .map(|(_, e)| e.type_guid.to_string())
                    .unwrap_or_default(),
                Label::Dos(d) => d
                    .partitions
                    .iter()
                    .find(|p| p.number == number)
                    .map(|p| format!("0x{:x}", p.sys))
                    .unwrap_or_default(),
            };
            parts.push(PartLayer {
                number,
                name: format!("{shown}@{number}"),
                start,
                end: start + len,
                size: len,
                role: role_of(&parttype),
                filesystem: fs_layer(&img, start, len, None, false),
            });
        }
        parts.sort_by_key(|p| p.number);
    }
    let whole = if label.is_none() {
        fs_layer(&img, 0, size, None, false)
    } else {
        None
    };
    let r = Reader {
        img: &img,
        path: shown.clone(),
        naming: Naming::Image,
    };
    let d = finish(
        &r,
        shown.clone(),
        None,
        size,
        label.as_ref(),
        parts,
        whole,
        None,
        None,
    )?;
    Ok(Layers {
        source: shown,
        kind: "image".into(),
        disks: vec![d],
    })
}

impl Layers {
    /// The disk a tool's argument names: `/dev/xvda`, `/dev/xvda1`, a
    /// mount point, or an image path (with `@N`).
    pub fn disk_for(&self, arg: &str) -> Option<&DiskLayers> {
        let arg = arg.split('@').next().unwrap_or(arg);
        self.disks.iter().find(|d| {
            d.path == arg
                || d.partitions
                    .iter()
                    .any(|p| format!("/dev/{}", p.name) == arg)
                || d.filesystem
                    .iter()
                    .chain(d.partitions.iter().filter_map(|p| p.filesystem.as_ref()))
                    .any(|f| f.mountpoints.iter().any(|m| m == arg))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_teacher_says_them() {
        assert_eq!(human(16 * GIB), "16 GiB");
        assert_eq!(human(8 * GIB - 110 * MIB), "7.9 GiB");
        assert_eq!(human(106 * MIB), "106 MiB");
        assert_eq!(human(2 * TIB), "2 TiB");
        assert_eq!(human(512), "512 B");
        assert_eq!(human(GIB + GIB / 2), "1.5 GiB");
    }

    #[test]
    fn partition_types_name_their_role() {
        assert_eq!(
            role_of("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F").as_deref(),
            Some("swap")
        );
        assert_eq!(role_of("0x82").as_deref(), Some("swap"));
        assert_eq!(role_of("0x83"), None);
    }
}
