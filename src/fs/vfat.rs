//! FAT (vfat): the EFI system partitions of the catalog images.
//!
//! Two halves:
//! - reading, ebsim's own: the boot sector's geometry, what blkid reports
//!   (`TYPE vfat`, `VERSION` FAT12/FAT16/FAT32 by the boot sector's layout
//!   and cluster count, the volume id as `UUID` `XXXX-XXXX`, the label from
//!   the root directory's volume-label entry) and what the kernel's statfs
//!   gives for a mount: `f_bsize` = `f_frsize` = the cluster size,
//!   `f_blocks` = the data clusters (capped by what the FAT can address),
//!   `f_bfree` = `f_bavail` = the FAT entries that are 0, counted in the
//!   FAT itself (the kernel counts them on the first statfs and does not
//!   trust FAT32's FSInfo hint), and no inode counts;
//! - writing, through the `fatfs` crate: [`build`] formats and fills a FAT
//!   in memory, then hands back one [`WriteBatch`] for the device's commit
//!   (the only write path): a discard of the whole device and the blocks
//!   that are not all zeros, so the formatted FAT's empty tables and every
//!   file of zeros stay holes.

use crate::blockdev::{BlockDevice, WriteBatch};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};

/// Errors of the FAT layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device could not be read.
    #[error("{0}")]
    Device(#[from] crate::blockdev::Error),
    /// The boot sector or FAT is not one ebsim can read.
    #[error("{device}: FAT: {problem}")]
    Corrupt {
        /// The device.
        device: String,
        /// What is wrong.
        problem: String,
    },
    /// Formatting or filling a new FAT failed (the `fatfs` crate's error).
    #[error("making the FAT filesystem: {0}")]
    Build(String),
}

/// The geometry a boot sector describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per sector.
    pub sector: u64,
    /// Bytes per cluster.
    pub cluster: u64,
    /// Sectors before the first FAT.
    pub reserved: u64,
    /// Number of FATs.
    pub fats: u64,
    /// Sectors per FAT.
    pub fat_sectors: u64,
    /// Root directory entries (FAT12/16; 0 on FAT32).
    pub root_entries: u64,
    /// Total sectors.
    pub total_sectors: u64,
    /// FAT32's root directory cluster.
    pub root_cluster: u32,
    /// 12, 16 or 32: the width of a FAT entry.
    pub fat_bits: u32,
    /// The boot sector is FAT32's (a 32-bit FAT size, FSInfo, root cluster).
    pub fat32_bpb: bool,
    /// The volume serial number.
    pub volume_id: u32,
}

impl Geometry {
    /// First sector of the data area.
    pub fn data_start(&self) -> u64 {
        let root_sectors = (self.root_entries * 32).div_ceil(self.sector);
        self.reserved + self.fats * self.fat_sectors + root_sectors
    }

    /// Data clusters, as the kernel counts them (capped by the entries the
    /// FAT holds).
    pub fn clusters(&self) -> u64 {
        let spc = self.cluster / self.sector;
        let by_area = self.total_sectors.saturating_sub(self.data_start()) / spc.max(1);
        let fat_entries = self.fat_sectors * self.sector * 8 / u64::from(self.fat_bits);
        by_area.min(fat_entries.saturating_sub(2))
    }

    /// Byte offset of cluster `n` (from 2).
    pub fn cluster_offset(&self, n: u64) -> u64 {
        self.data_start() * self.sector + n.saturating_sub(2) * self.cluster
    }
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the boot sector of `dev`: None when it is not a FAT boot sector.
pub fn geometry<D: BlockDevice>(dev: &D) -> Result<Option<Geometry>, Error> {
    if dev.size() < 512 {
        return Ok(None);
    }
    let b = dev.read_vec(0, 512)?;
    if b[510] != 0x55 || b[511] != 0xAA || !(b[0] == 0xEB || b[0] == 0xE9) {
        return Ok(None);
    }
    let sector = le16(&b, 11);
    let spc = u64::from(b[13]);
    let reserved = le16(&b, 14);
    let fats = u64::from(b[16]);
    let root_entries = le16(&b, 17);
    let total16 = le16(&b, 19);
    let media = b[21];
    let fat16_len = le16(&b, 22);
    let total32 = u64::from(le32(&b, 32));
    if !matches!(sector, 512 | 1024 | 2048 | 4096)
        || !spc.is_power_of_two()
        || reserved == 0
        || fats == 0
        || !(media == 0xF0 || media >= 0xF8)
    {
        return Ok(None);
    }
    let fat32_bpb = fat16_len == 0;
    let (fat_sectors, magic_at, id_at) = if fat32_bpb {
        (u64::from(le32(&b, 36)), 82, 67)
    } else {
        (fat16_len, 54, 39)
    };
    if fat_sectors == 0 || &b[magic_at..magic_at + 3] != b"FAT" {
        return Ok(None);
    }
    let total_sectors = if total16 != 0 { total16 } else { total32 };
    let mut g = Geometry {
        sector,
        cluster: sector * spc,
        reserved,
        fats,
        fat_sectors,
        root_entries,
        total_sectors,
        root_cluster: if fat32_bpb { le32(&b, 44) } else { 0 },
        fat_bits: 32,
        fat32_bpb,
        volume_id: le32(&b, id_at),
    };
    if !fat32_bpb {
        // FAT12 or FAT16 by the cluster count, as the kernel decides.
        g.fat_bits = 16;
        let spc = g.cluster / g.sector;
        let clusters = g.total_sectors.saturating_sub(g.data_start()) / spc;
        if clusters < 4085 {
            g.fat_bits = 12;
        }
    }
    if total_sectors.saturating_mul(sector) > dev.size() || g.data_start() >= total_sectors {
        return Err(Error::Corrupt {
            device: dev.name(),
            problem: format!(
                "the boot sector describes {total_sectors} sectors of {sector} bytes (data from sector {}), more than the device's {} bytes",
                g.data_start(),
                dev.size()
            ),
        });
    }
    Ok(Some(g))
}

/// What blkid reports about a FAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The geometry.
    pub geometry: Geometry,
    /// `XXXX-XXXX`, as blkid prints the serial.
    pub uuid: String,
    /// The root directory's volume label, trailing spaces cut (may be empty).
    pub label: String,
    /// `FAT12`, `FAT16` or `FAT32`.
    pub version: &'static str,
    /// The boot sector's label field when its extended boot signature is
    /// 0x29 and it is not `NO NAME`, trailing spaces cut (blkid's
    /// LABEL_FATBOOT).
    pub boot_label: Option<String>,
}

/// True when `dev` holds a FAT boot sector.
pub fn probe<D: BlockDevice>(dev: &D) -> Result<bool, Error> {
    Ok(geometry(dev)?.is_some())
}

/// blkid's view of the FAT on `dev`.
pub fn info<D: BlockDevice>(dev: &D) -> Result<Info, Error> {
    let g = geometry(dev)?.ok_or_else(|| Error::Corrupt {
        device: dev.name(),
        problem: "no FAT boot sector".into(),
    })?;
    let id = g.volume_id.to_le_bytes();
    // The extended boot signature and the label follow the BPB: at 38 and
    // 43 after a 16-bit one, at 66 and 71 after FAT32's.
    let (sig_at, label_at) = if g.fat32_bpb { (66, 71) } else { (38, 43) };
    let boot = dev.read_vec(0, 512)?;
    let boot_label = match (boot.get(sig_at), boot.get(label_at..label_at + 11)) {
        (Some(0x29), Some(l)) if l != b"NO NAME    " => {
            let text: String = l.iter().map(|&c| char::from(c)).collect();
            Some(text.trim_end_matches(' ').to_string())
        }
        _ => None,
    };
    Ok(Info {
        geometry: g,
        uuid: format!("{:02X}{:02X}-{:02X}{:02X}", id[3], id[2], id[1], id[0]),
        label: root_label(dev, &g)?,
        version: match g.fat_bits {
            12 => "FAT12",
            16 => "FAT16",
            _ => "FAT32",
        },
        boot_label,
    })
}

/// The volume-label entry of the root directory (attribute 0x08, not a
/// long-name slot), as blkid reads it: the first one in the root's first
/// 64 KiB.
fn root_label<D: BlockDevice>(dev: &D, g: &Geometry) -> Result<String, Error> {
    let (off, len) = if g.fat32_bpb {
        (
            g.cluster_offset(u64::from(g.root_cluster)),
            g.cluster.min(65536),
        )
    } else {
        (
            (g.reserved + g.fats * g.fat_sectors) * g.sector,
            (g.root_entries * 32).min(65536),
        )
    };
    if off.saturating_add(len) > dev.size() {
        return Ok(String::new());
    }
    let dir = dev.read_vec(off, usize::try_from(len).unwrap_or(0))?;
    for e in dir.chunks_exact(32) {
        if e[0] == 0 {
            break;
        }
        if e[0] == 0xE5 || e[11] & 0x0F == 0x0F || e[11] & 0x08 == 0 {
            continue;
        }
        let text: String = e[..11].iter().map(|&c| char::from(c)).collect();
        return Ok(text.trim_end_matches(' ').to_string());
    }
    Ok(String::new())
}

/// statfs of a mounted FAT, as the kernel's `fat_statfs` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Cluster size (f_bsize = f_frsize).
    pub cluster: u64,
    /// Data clusters.
    pub blocks: u64,
    /// Free clusters (= f_bavail).
    pub free: u64,
}

/// Counts the free clusters in the first FAT.
pub fn statfs<D: BlockDevice>(dev: &D) -> Result<StatFs, Error> {
    let g = geometry(dev)?.ok_or_else(|| Error::Corrupt {
        device: dev.name(),
        problem: "no FAT boot sector".into(),
    })?;
    let clusters = g.clusters();
    let fat_off = g.reserved * g.sector;
    // Entries 2 ..= clusters + 1, read in pieces.
    let last = clusters + 2;
    let bytes_for = |entries: u64| (entries * u64::from(g.fat_bits)).div_ceil(8);
    let fat_len = bytes_for(last).min(g.fat_sectors * g.sector);
    let mut free = 0u64;
    const PIECE: u64 = 1 << 20;
    let mut buf = Vec::new();
    let mut start = 0u64;
    // Keep a whole number of 12-bit pairs (3 bytes) in each piece.
    let piece = PIECE - PIECE % 3;
    while start < fat_len {
        let n = piece.min(fat_len - start);
        buf.resize(usize::try_from(n).unwrap_or(0), 0);
        dev.read_at(fat_off + start, &mut buf)?;
        let first_entry = start * 8 / u64::from(g.fat_bits);
        match g.fat_bits {
            32 => {
                for (i, c) in buf.chunks_exact(4).enumerate() {
                    let e = first_entry + i as u64;
                    if (2..last).contains(&e) && le32(c, 0) & 0x0FFF_FFFF == 0 {
                        free += 1;
                    }
                }
            }
            16 => {
                for (i, c) in buf.chunks_exact(2).enumerate() {
                    let e = first_entry + i as u64;
                    if (2..last).contains(&e) && le16(c, 0) == 0 {
                        free += 1;
                    }
                }
            }
            _ => {
                for (i, c) in buf.chunks(3).enumerate() {
                    let e = first_entry + 2 * i as u64;
                    let b0 = u16::from(c[0]);
                    let b1 = u16::from(c.get(1).copied().unwrap_or(0));
                    let b2 = u16::from(c.get(2).copied().unwrap_or(0));
                    let lo = b0 | ((b1 & 0x0F) << 8);
                    let hi = (b1 >> 4) | (b2 << 4);
                    if (2..last).contains(&e) && lo == 0 {
                        free += 1;
                    }
                    if (2..last).contains(&(e + 1)) && c.len() == 3 && hi == 0 {
                        free += 1;
                    }
                }
            }
        }
        start += n;
    }
    Ok(StatFs {
        cluster: g.cluster,
        blocks: clusters,
        free,
    })
}

/// The FAT variant to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit FAT (small partitions).
    Fat12,
    /// 16-bit FAT (`mkfs.vfat -F 16`).
    Fat16,
    /// 32-bit FAT (`mkfs.vfat -F 32`).
    Fat32,
}

/// What a file of a new FAT holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This many bytes of zeros (a placeholder for a binary: its clusters
    /// are allocated, its blocks stay holes).
    Zeros(u64),
}

/// A FAT to make.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// FAT16 or FAT32.
    pub fat_type: FatType,
    /// Cluster size in bytes.
    pub cluster: u32,
    /// The volume serial (`UUID` `XXXX-XXXX` is its hex, high half first).
    pub volume_id: u32,
    /// The label, in the boot sector and the root directory; None: none.
    pub label: Option<String>,
    /// Directories to make (parents first), `/`-separated from the root.
    pub dirs: Vec<String>,
    /// Files to make, in order: path and content.
    pub files: Vec<(String, Content)>,
    /// The time stamped on everything, as (year, month, day, hour, min, sec)
    /// in the local time FAT stores (UTC on the images).
    pub time: (u16, u16, u16, u16, u16, u16),
}

/// The clock every entry of one build is stamped with.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// A device of `len` bytes in memory, kept as the 4 KiB blocks written.
struct SparseStream {
    len: u64,
    pos: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
}

const BLOCK: u64 = 4096;

impl Read for SparseStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let b = self.pos / BLOCK;
        let within = self.pos % BLOCK;
        let n = (BLOCK - within)
            .min(buf.len() as u64)
            .min(self.len - self.pos);
        let n_us = usize::try_from(n).unwrap_or(0);
        let w = usize::try_from(within).unwrap_or(0);
        match self.blocks.get(&b) {
            Some(data) => buf[..n_us].copy_from_slice(&data[w..w + n_us]),
            None => buf[..n_us].fill(0),
        }
        self.pos += n;
        Ok(n_us)
    }
}

impl Write for SparseStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let b = self.pos / BLOCK;
        let within = self.pos % BLOCK;
        let n = (BLOCK - within)
            .min(buf.len() as u64)
            .min(self.len - self.pos);
        let n_us = usize::try_from(n).unwrap_or(0);
        let w = usize::try_from(within).unwrap_or(0);
        let data = self
            .blocks
            .entry(b)
            .or_insert_with(|| vec![0u8; BLOCK as usize]);
        data[w..w + n_us].copy_from_slice(&buf[..n_us]);
        self.pos += n;
        Ok(n_us)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SparseStream {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = seek_target(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// Where a `seek(to)` from `pos` in a stream of `len` bytes lands (the
/// streams `fatfs` works on; past the end is allowed, before the start is
/// not).
pub(crate) fn seek_target(pos: u64, len: u64, to: SeekFrom) -> std::io::Result<u64> {
    let new = match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    new.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
    })
}

impl BlockDevice for SparseStream {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), crate::blockdev::Error> {
        crate::blockdev::check_range(offset, buf.len() as u64, self.len)?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (b, within) = (at / BLOCK, at % BLOCK);
            let w = usize::try_from(within).unwrap_or(0);
            let n = (BLOCK as usize - w).min(buf.len() - done);
            match self.blocks.get(&b) {
                Some(data) => buf[done..done + n].copy_from_slice(&data[w..w + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn commit(&mut self, _: &dyn crate::blockdev::WritePlan) -> Result<(), crate::blockdev::Error> {
        Err(crate::blockdev::Error::OutOfRange {
            offset: 0,
            len: 0,
            size: self.len,
        })
    }
    fn data_ranges(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<std::ops::Range<u64>>, crate::blockdev::Error> {
        Ok(vec![range])
    }
    fn name(&self) -> String {
        "memory".into()
    }
}

/// The clusters of the chain starting at `first` (at most `limit`).
pub(crate) fn chain<D: BlockDevice + ?Sized>(
    dev: &D,
    g: &Geometry,
    first: u32,
    limit: usize,
) -> Result<Vec<u32>, Error> {
    let mut out = Vec::new();
    let mut c = first;
    let fat = g.reserved * g.sector;
    while c >= 2 && u64::from(c) < g.clusters() + 2 && out.len() < limit {
        out.push(c);
        let next = match g.fat_bits {
            32 => le32(&dev.read_vec(fat + u64::from(c) * 4, 4)?, 0) & 0x0FFF_FFFF,
            16 => u32::try_from(le16(&dev.read_vec(fat + u64::from(c) * 2, 2)?, 0)).unwrap_or(0),
            _ => {
                let at = u64::from(c) * 3 / 2;
                let v = le16(&dev.read_vec(fat + at, 2)?, 0);
                u32::try_from(if c % 2 == 0 { v & 0xFFF } else { v >> 4 }).unwrap_or(0)
            }
        };
        let end = match g.fat_bits {
            32 => 0x0FFF_FFF8,
            16 => 0xFFF8,
            _ => 0xFF8,
        };
        if next >= end {
            break;
        }
        c = next;
    }
    Ok(out)
}

/// A device whose bytes can be patched in place (a FAT being built or
/// changed in memory before its commit).
pub(crate) trait Patch: BlockDevice {
    /// Overwrites `data.len()` bytes at `offset`.
    fn patch(&mut self, offset: u64, data: &[u8]) -> Result<(), Error>;
}

impl Patch for SparseStream {
    fn patch(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.pos = offset;
        self.write_all(data)
            .map_err(|e| Error::Build(e.to_string()))
    }
}

/// `fatfs` 0.3 writes a long-name slot before each new directory's `.`
/// and `..` entries, which `fsck.vfat` reports as bad entries, and it
/// neither points `..` of a directory in the root at cluster 0 nor moves
/// `..` when a directory moves. This drops those slots from every
/// directory below the root (depth first), moving the later entries up,
/// so each directory starts with `.` and `..`, and points each `..` at
/// the parent's first cluster (0 for the root). A directory already right
/// is not written.
pub(crate) fn fix_dot_entries<S: Patch>(s: &mut S) -> Result<(), Error> {
    let Some(g) = geometry(&*s)? else {
        return Err(Error::Build("the FAT has no boot sector".into()));
    };
    let dir_ranges = |s: &S, first: Option<u32>| -> Result<Vec<(u64, u64)>, Error> {
        Ok(match first {
            None if !g.fat32_bpb => vec![(
                (g.reserved + g.fats * g.fat_sectors) * g.sector,
                g.root_entries * 32,
            )],
            None => chain(s, &g, g.root_cluster, 1 << 16)?
                .into_iter()
                .map(|c| (g.cluster_offset(u64::from(c)), g.cluster))
                .collect(),
            Some(c) => chain(s, &g, c, 1 << 16)?
                .into_iter()
                .map(|c| (g.cluster_offset(u64::from(c)), g.cluster))
                .collect(),
        })
    };
    // (directory's first cluster or None for the root, the cluster its
    // `..` names)
    let mut todo: Vec<(Option<u32>, u32)> = vec![(None, 0)];
    let mut seen = 0usize;
    while let Some((dir, parent)) = todo.pop() {
        seen += 1;
        if seen > 1 << 20 {
            return Err(Error::Corrupt {
                device: s.name(),
                problem: "the directory tree loops".into(),
            });
        }
        let ranges = dir_ranges(s, dir)?;
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let mut before: Vec<u8> = Vec::new();
        for &(off, len) in &ranges {
            let data = s.read_vec(off, usize::try_from(len).unwrap_or(0))?;
            entries.extend(data.chunks_exact(32).map(<[u8]>::to_vec));
            before.extend_from_slice(&data);
        }
        let end = entries
            .iter()
            .position(|e| e[0] == 0)
            .unwrap_or(entries.len());
        entries.truncate(end);
        let dot = |e: &[u8]| &e[..11] == b".          " || &e[..11] == b"..         ";
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut run: Vec<Vec<u8>> = Vec::new();
        for e in entries {
            if e[0] != 0xE5 && e[11] & 0x3F == 0x0F {
                run.push(e);
                continue;
            }
            if !dot(&e) {
                kept.append(&mut run);
            }
            run.clear();
            if e[0] != 0xE5 && e[11] & 0x10 != 0 && !dot(&e) {
                let c = (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
                    | u32::from(u16::from_le_bytes([e[26], e[27]]));
                // Its `..` names this directory (0 for the root).
                todo.push((Some(c), dir.unwrap_or(0)));
            }
            let mut e = e;
            if dir.is_some() && &e[..11] == b"..         " {
                e[20..22].copy_from_slice(&((parent >> 16) as u16).to_le_bytes());
                e[26..28].copy_from_slice(&((parent & 0xFFFF) as u16).to_le_bytes());
            }
            kept.push(e);
        }
        kept.append(&mut run);
        let mut bytes: Vec<u8> = kept.concat();
        bytes.resize(before.len(), 0);
        if bytes == before {
            continue;
        }
        let mut at = 0usize;
        for &(off, len) in &ranges {
            let n = usize::try_from(len).unwrap_or(0);
            if bytes[at..at + n] != before[at..at + n] {
                s.patch(off, &bytes[at..at + n])?;
            }
            at += n;
        }
    }
    Ok(())
}

/// Writes FAT32's FSInfo free-cluster count as `mkfs.vfat` and the
/// kernel keep it (`fatfs` leaves it unknown, which `fsck.vfat` reports).
fn set_free_count(s: &mut SparseStream) -> Result<(), Error> {
    let Some(g) = geometry(&*s)? else {
        return Err(Error::Build("the new FAT has no boot sector".into()));
    };
    if !g.fat32_bpb {
        return Ok(());
    }
    let info_sector = le16(&s.read_vec(0, 512)?, 48);
    let free = statfs(&*s)?.free;
    s.pos = info_sector * g.sector + 488;
    s.write_all(&u32::try_from(free).unwrap_or(u32::MAX).to_le_bytes())
        .map_err(|e| Error::Build(e.to_string()))
}

/// Plans a new FAT of `size` bytes: formatted by `fatfs` with `opts`'
/// geometry, serial and label, then filled with its directories and
/// files. The plan discards the whole device and writes only the blocks
/// that hold something other than zeros.
pub fn build(size: u64, opts: &BuildOptions) -> Result<WriteBatch, Error> {
    let err = |e: std::io::Error| Error::Build(e.to_string());
    let mut stream = SparseStream {
        len: size,
        pos: 0,
        blocks: BTreeMap::new(),
    };
    let mut fmt = fatfs::FormatVolumeOptions::new()
        .fat_type(match opts.fat_type {
            FatType::Fat12 => fatfs::FatType::Fat12,
            FatType::Fat16 => fatfs::FatType::Fat16,
            FatType::Fat32 => fatfs::FatType::Fat32,
        })
        .bytes_per_cluster(opts.cluster)
        .volume_id(opts.volume_id);
    if let Some(l) = &opts.label {
        let mut label = [b' '; 11];
        for (d, s) in label.iter_mut().zip(l.bytes()) {
            *d = s.to_ascii_uppercase();
        }
        fmt = fmt.volume_label(label);
    }
    fatfs::format_volume(&mut stream, fmt).map_err(err)?;
    stream.pos = 0;
    let (y, mo, d, h, mi, s) = opts.time;
    // fatfs takes its clock as a `&'static`: one small stamp per build
    // (a catalog image is built once) is leaked for it.
    let clock: &'static FixedTime = Box::leak(Box::new(FixedTime(fatfs::DateTime {
        date: fatfs::Date {
            year: y,
            month: mo,
            day: d,
        },
        time: fatfs::Time {
            hour: h,
            min: mi,
            sec: s,
            millis: 0,
        },
    })));
    {
        let fs = fatfs::FileSystem::new(
            &mut stream,
            fatfs::FsOptions::new()
                .update_accessed_date(false)
                .time_provider(clock),
        )
        .map_err(err)?;
        {
            let root = fs.root_dir();
            for dir in &opts.dirs {
                root.create_dir(dir).map_err(err)?;
            }
            let zeros = vec![0u8; 64 * 1024];
            for (path, content) in &opts.files {
                let mut f = root.create_file(path).map_err(err)?;
                match content {
                    Content::Bytes(b) => f.write_all(b).map_err(err)?,
                    Content::Zeros(n) => {
                        let mut left = *n;
                        while left > 0 {
                            let k = left.min(zeros.len() as u64);
                            f.write_all(&zeros[..usize::try_from(k).unwrap_or(0)])
                                .map_err(err)?;
                            left -= k;
                        }
                    }
                }
                f.flush().map_err(err)?;
            }
        }
        fs.unmount().map_err(err)?;
    }
    fix_dot_entries(&mut stream)?;
    set_free_count(&mut stream)?;
    let mut batch = WriteBatch::new();
    batch.discard(0..size);
    for (b, data) in stream.blocks {
        if data.iter().any(|&x| x != 0) {
            let off = b * BLOCK;
            let n = usize::try_from(BLOCK.min(size - off)).unwrap_or(0);
            batch.write(off, data[..n].to_vec());
        }
    }
    Ok(batch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;

    fn opts(t: FatType, cluster: u32, label: Option<&str>) -> BuildOptions {
        BuildOptions {
            fat_type: t,
            cluster,
            volume_id: 0x1234_ABCD,
            label: label.map(str::to_string),
            dirs: vec!["EFI".into(), "EFI/BOOT".into()],
            files: vec![
                ("EFI/BOOT/BOOTX64.EFI".into(), Content::Zeros(100_000)),
                ("EFI/BOOT/grub.cfg".into(), Content::Bytes(b"x\n".to_vec())),
            ],
            time: (2024, 3, 1, 12, 0, 0),
        }
    }

    #[test]
    fn fat32_round_trip() {
        let size = 106 << 20;
        let batch = build(size, &opts(FatType::Fat32, 512, Some("UEFI"))).unwrap();
        // Sparse: the FATs' zeros and the placeholder's zeros are not written.
        assert!(batch.data_bytes() < 64 * 1024, "{}", batch.data_bytes());
        let mut dev = MemDevice::new(size as usize);
        dev.commit(&batch).unwrap();
        let i = info(&dev).unwrap();
        assert_eq!(i.version, "FAT32");
        assert_eq!(i.uuid, "1234-ABCD");
        assert_eq!(i.label, "UEFI");
        let s = statfs(&dev).unwrap();
        assert_eq!(s.cluster, 512);
        assert_eq!(s.blocks, i.geometry.clusters());
        // root dir, EFI, BOOT: one cluster each; the placeholder 196; grub.cfg 1.
        assert_eq!(s.blocks - s.free, 3 + 100_000u64.div_ceil(512) + 1);
    }

    #[test]
    fn fat16_round_trip() {
        let size = 10 << 20;
        let batch = build(size, &opts(FatType::Fat16, 2048, None)).unwrap();
        let mut dev = MemDevice::new(size as usize);
        dev.commit(&batch).unwrap();
        let i = info(&dev).unwrap();
        assert_eq!(i.version, "FAT16");
        assert_eq!(i.label, "");
        let s = statfs(&dev).unwrap();
        assert_eq!(s.cluster, 2048);
        // EFI, BOOT, the placeholder's 49 clusters, grub.cfg.
        assert_eq!(s.blocks - s.free, 2 + 100_000u64.div_ceil(2048) + 1);
    }

    #[test]
    fn not_fat() {
        let dev = MemDevice::new(1 << 20);
        assert!(geometry(&dev).unwrap().is_none());
    }
}
