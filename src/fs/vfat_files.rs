//! Files inside a FAT (the EFI system partition at `/boot/efi`), served as
//! the kernel's vfat driver shows them.
//!
//! Reading is ebsim's own: directories are walked cluster by cluster, long
//! names assembled from their slots (a short name alone is shown with the
//! case its NT bits ask for), file data read along its cluster chain.
//! Writing goes through the `fatfs` crate, by path, over an in-memory
//! overlay of the device: every changed 4 KiB block is kept until
//! [`FileSystem::sync`], which commits them as one batch through the
//! device's commit path (unchanged blocks are dropped, all-zero blocks
//! become discards). After each directory change the tree's `.`/`..`
//! entries are put right as `fsck.vfat` wants them
//! ([`super::vfat::fix_dot_entries`]).
//!
//! What `stat` shows follows the kernel's vfat driver with the mount's
//! `uid=`, `gid=`, `fmask=`/`dmask=` (`umask=` sets both; 0022 by
//! default):
//! - mode: `0777 & !dmask` for directories, `0777 & !fmask` for files,
//!   less the write bits for a file with the read-only attribute;
//! - size: a file's recorded size; a directory's is its cluster chain's
//!   length (FAT12/16's fixed root: its entries × 32); blocks: the size
//!   rounded up to whole clusters, in 512-byte units; `st_blksize`: the
//!   cluster size;
//! - links: 1 for a file; a directory's subdirectory entries, `.` and `..`
//!   included (the root, which has neither, counts 2 more);
//! - times: FAT stores local time and the guests run in UTC; mtime (2 s
//!   steps) is also ctime, atime is the access date at midnight, birth is
//!   the creation stamp with its hundredths; the root has no entry, so all
//!   its times are the epoch.
//!
//! Inode numbers are handed out as names are first seen (the kernel's are
//! arbitrary too: FAT has no inodes); the root is 1. Not supported, as on
//! the kernel's vfat: symlinks, hard links, device nodes, FIFOs and
//! sockets (`EPERM`), ownership and mode changes other than to the values
//! shown (`EPERM`), `fallocate` (`EOPNOTSUPP`). Access dates are not
//! updated by reads.

use super::node::{
    Attr, Ctx, DirEntry, ErrorKind, FallocateMode, FileSystem, FileType, Ino, NodeError,
    NodeResult, RenameFlags, SetAttr, Timespec,
};
use super::vfat::{self, Geometry, Patch};
use crate::blockdev::{self, BlockDevice, WriteBatch};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, MutexGuard};

/// The ownership and permission options of a vfat mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatOptions {
    /// `uid=`: the owner of every file.
    pub uid: u32,
    /// `gid=`: the group of every file.
    pub gid: u32,
    /// `fmask=` (or `umask=`): bits cleared from files' 0777.
    pub fmask: u16,
    /// `dmask=` (or `umask=`): bits cleared from directories' 0777.
    pub dmask: u16,
}

impl Default for FatOptions {
    fn default() -> Self {
        FatOptions {
            uid: 0,
            gid: 0,
            fmask: 0o022,
            dmask: 0o022,
        }
    }
}

impl FatOptions {
    /// The options of a mount option string (`umask=0077,uid=0,...`);
    /// others are ignored, as are values that do not parse.
    pub fn from_mount_options(options: &str) -> Self {
        let mut o = FatOptions::default();
        for opt in options.split(',') {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let octal = || u16::from_str_radix(v, 8).ok().map(|m| m & 0o777);
            match k {
                "uid" => o.uid = v.parse().unwrap_or(o.uid),
                "gid" => o.gid = v.parse().unwrap_or(o.gid),
                "umask" => {
                    if let Some(m) = octal() {
                        o.fmask = m;
                        o.dmask = m;
                    }
                }
                "fmask" => o.fmask = octal().unwrap_or(o.fmask),
                "dmask" => o.dmask = octal().unwrap_or(o.dmask),
                _ => {}
            }
        }
        o
    }
}

const BLOCK: u64 = 4096;
const ROOT: Ino = 1;

/// The device with the blocks changed since the last commit laid over it.
struct Overlay<D> {
    dev: D,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl<D: BlockDevice> Overlay<D> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), blockdev::Error> {
        blockdev::check_range(offset, data.len() as u64, self.dev.size())?;
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let (b, within) = (at / BLOCK, (at % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(data.len() - done);
            if !self.blocks.contains_key(&b) {
                let start = b * BLOCK;
                let len = BLOCK.min(self.dev.size() - start) as usize;
                let mut block = self.dev.read_vec(start, len)?;
                block.resize(BLOCK as usize, 0);
                self.blocks.insert(b, block);
            }
            if let Some(block) = self.blocks.get_mut(&b) {
                block[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        Ok(())
    }

    /// The changed blocks as one batch: blocks equal to the device's are
    /// left out, all-zero blocks are discarded.
    fn plan(&self) -> Result<WriteBatch, blockdev::Error> {
        let mut batch = WriteBatch::new();
        let size = self.dev.size();
        for (&b, data) in &self.blocks {
            let start = b * BLOCK;
            let len = BLOCK.min(size - start);
            let data = &data[..len as usize];
            if self.dev.read_vec(start, len as usize)? == data {
                continue;
            }
            if len == BLOCK && data.iter().all(|&x| x == 0) {
                batch.discard(start..start + len);
            } else {
                batch.write(start, data.to_vec());
            }
        }
        Ok(batch)
    }
}

impl<D: BlockDevice> BlockDevice for Overlay<D> {
    fn size(&self) -> u64 {
        self.dev.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), blockdev::Error> {
        blockdev::check_range(offset, buf.len() as u64, self.dev.size())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (b, within) = (at / BLOCK, (at % BLOCK) as usize);
            // Runs of unchanged blocks are read from the device at once.
            match self.blocks.get(&b) {
                Some(block) => {
                    let n = (BLOCK as usize - within).min(buf.len() - done);
                    buf[done..done + n].copy_from_slice(&block[within..within + n]);
                    done += n;
                }
                None => {
                    let next = self
                        .blocks
                        .range(b..)
                        .next()
                        .map_or(u64::MAX, |(&k, _)| k * BLOCK);
                    let n = ((next - at) as usize).min(buf.len() - done);
                    self.dev.read_at(at, &mut buf[done..done + n])?;
                    done += n;
                }
            }
        }
        Ok(())
    }
    fn commit(&mut self, _: &dyn blockdev::WritePlan) -> Result<(), blockdev::Error> {
        Err(blockdev::Error::OutOfRange {
            offset: 0,
            len: 0,
            size: self.dev.size(),
        })
    }
    fn data_ranges(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<std::ops::Range<u64>>, blockdev::Error> {
        Ok(vec![range])
    }
    fn name(&self) -> String {
        self.dev.name()
    }
}

impl<D: BlockDevice> Patch for Overlay<D> {
    fn patch(&mut self, offset: u64, data: &[u8]) -> Result<(), vfat::Error> {
        Ok(self.write_at(offset, data)?)
    }
}

/// The overlay as the stream `fatfs` reads and writes.
struct Stream<'a, D> {
    ov: &'a mut Overlay<D>,
    pos: u64,
}

fn io_err(e: blockdev::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl<D: BlockDevice> Read for Stream<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.ov.size();
        if self.pos >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - self.pos) as usize;
        self.ov.read_at(self.pos, &mut buf[..n]).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: BlockDevice> Write for Stream<'_, D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let size = self.ov.size();
        if self.pos >= size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let n = (buf.len() as u64).min(size - self.pos) as usize;
        self.ov.write_at(self.pos, &buf[..n]).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<D: BlockDevice> Seek for Stream<'_, D> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = vfat::seek_target(self.pos, self.ov.size(), to)?;
        Ok(self.pos)
    }
}

thread_local! {
    /// The time stamped on what the current change touches (the caller's
    /// clock, from its [`Ctx`]).
    static NOW: Cell<i64> = const { Cell::new(0) };
}

/// `fatfs`'s clock: the current change's time, in UTC.
#[derive(Debug)]
struct CtxClock;

static CLOCK: CtxClock = CtxClock;

fn fat_datetime(sec: i64) -> fatfs::DateTime {
    let tm = crate::compat::date::gmtime(sec.max(315_532_800));
    let small = |v: u32| u16::try_from(v).unwrap_or(0);
    fatfs::DateTime {
        date: fatfs::Date {
            year: u16::try_from(tm.year.clamp(1980, 2107)).unwrap_or(1980),
            month: small(tm.month),
            day: small(tm.day),
        },
        time: fatfs::Time {
            hour: small(tm.hour),
            min: small(tm.min),
            sec: small(tm.sec),
            millis: 0,
        },
    }
}

impl fatfs::TimeProvider for CtxClock {
    fn get_current_date(&self) -> fatfs::Date {
        fat_datetime(NOW.with(Cell::get)).date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fat_datetime(NOW.with(Cell::get))
    }
}

/// One directory entry as stored (long name assembled).
#[derive(Debug, Clone)]
struct Raw {
    name: String,
    attr: u8,
    cluster: u32,
    size: u32,
    cdate: u16,
    ctime: u16,
    ctime_cs: u8,
    adate: u16,
    mdate: u16,
    mtime: u16,
}

impl Raw {
    fn is_dir(&self) -> bool {
        self.attr & 0x10 != 0
    }
}

const ATTR_RO: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;

/// Seconds since the epoch of a FAT date and time (UTC), as the kernel
/// reads them (a month or day of 0 counts as 1).
fn fat_time(date: u16, time: u16) -> i64 {
    let year = 1980 + i64::from(date >> 9);
    let month = u32::from((date >> 5) & 0x0F).max(1);
    let day = u32::from(date & 0x1F).max(1);
    let days = crate::compat::days_from_civil(year, month, day);
    days * 86_400
        + i64::from(time >> 11) * 3600
        + i64::from((time >> 5) & 0x3F) * 60
        + i64::from(time & 0x1F) * 2
}

fn ts(sec: i64) -> Timespec {
    Timespec { sec, nsec: 0 }
}

/// The short name as the kernel shows it: base and extension, each in
/// lower case when its NT case bit says so.
fn short_name(e: &[u8]) -> String {
    let lower_base = e[12] & 0x08 != 0;
    let lower_ext = e[12] & 0x10 != 0;
    let mut base: Vec<u8> = e[..8].to_vec();
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let conv = |b: &[u8], lower: bool| -> String {
        let t: String = b.iter().map(|&c| char::from(c)).collect();
        let t = t.trim_end_matches(' ').to_string();
        if lower { t.to_ascii_lowercase() } else { t }
    };
    let base = conv(&base, lower_base);
    let ext = conv(&e[8..11], lower_ext);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

fn sfn_checksum(e: &[u8]) -> u8 {
    e[..11]
        .iter()
        .fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c))
}

/// Parses a directory's raw bytes: every live entry (`.` and `..`
/// included, volume labels left out).
fn parse_dir(bytes: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    // Long-name slots seen so far: (ordinal, checksum, 13 UTF-16 units).
    let mut slots: Vec<(u8, u8, [u16; 13])> = Vec::new();
    for e in bytes.chunks_exact(32) {
        if e[0] == 0 {
            break;
        }
        if e[0] == 0xE5 {
            slots.clear();
            continue;
        }
        if e[11] & 0x3F == ATTR_LFN {
            if e[0] & 0x40 != 0 {
                slots.clear();
            }
            let mut units = [0u16; 13];
            let at = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            for (u, &i) in units.iter_mut().zip(at.iter()) {
                *u = u16::from_le_bytes([e[i], e[i + 1]]);
            }
            slots.push((e[0] & 0x1F, e[13], units));
            continue;
        }
        if e[11] & ATTR_VOLUME != 0 {
            slots.clear();
            continue;
        }
        let sum = sfn_checksum(e);
        let n = slots.len();
        let long_ok = n > 0
            && slots
                .iter()
                .enumerate()
                .all(|(i, (ord, cs, _))| usize::from(*ord) == n - i && *cs == sum);
        let name = if long_ok {
            let units: Vec<u16> = slots
                .iter()
                .rev()
                .flat_map(|(_, _, u)| u.iter().copied())
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            short_name(e)
        };
        slots.clear();
        let le16 = |i: usize| u16::from_le_bytes([e[i], e[i + 1]]);
        out.push(Raw {
            name,
            attr: e[11],
            cluster: (u32::from(le16(20)) << 16) | u32::from(le16(26)),
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            ctime_cs: e[13],
            ctime: le16(14),
            cdate: le16(16),
            adate: le16(18),
            mtime: le16(22),
            mdate: le16(24),
        });
    }
    out
}

fn eq_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// The inode numbers handed out, by path.
#[derive(Debug, Default)]
struct Inodes {
    path_of: HashMap<Ino, Vec<String>>,
    by_key: HashMap<String, Ino>,
    next: Ino,
}

fn key(path: &[String]) -> String {
    path.join("/").to_lowercase()
}

impl Inodes {
    fn ino(&mut self, path: &[String]) -> Ino {
        let k = key(path);
        if let Some(&i) = self.by_key.get(&k) {
            // The name as stored now (a case change by rename).
            self.path_of.insert(i, path.to_vec());
            return i;
        }
        self.next = self.next.max(ROOT) + 1;
        let i = self.next;
        self.by_key.insert(k, i);
        self.path_of.insert(i, path.to_vec());
        i
    }

    fn path(&self, ino: Ino) -> NodeResult<Vec<String>> {
        if ino == ROOT {
            return Ok(Vec::new());
        }
        self.path_of
            .get(&ino)
            .cloned()
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))
    }

    fn forget(&mut self, path: &[String]) {
        if let Some(i) = self.by_key.remove(&key(path)) {
            self.path_of.remove(&i);
        }
    }

    /// A rename: `from` and everything under it now live at `to`.
    fn moved(&mut self, from: &[String], to: &[String]) {
        let old = key(from);
        let prefix = format!("{old}/");
        let hit: Vec<(String, Ino)> = self
            .by_key
            .iter()
            .filter(|(k, _)| **k == old || k.starts_with(&prefix))
            .map(|(k, &i)| (k.clone(), i))
            .collect();
        for (k, i) in hit {
            self.by_key.remove(&k);
            let Some(p) = self.path_of.get(&i).cloned() else {
                continue;
            };
            let mut np = to.to_vec();
            np.extend_from_slice(p.get(from.len()..).unwrap_or(&[]));
            self.by_key.insert(key(&np), i);
            self.path_of.insert(i, np);
        }
    }
}

struct Inner<D> {
    ov: Overlay<D>,
    inodes: Inodes,
}

/// A FAT's files, served as the kernel's vfat driver shows them.
pub struct FatFiles<D> {
    inner: Mutex<Inner<D>>,
    g: Geometry,
    opts: FatOptions,
    read_only: bool,
}

impl<D> std::fmt::Debug for FatFiles<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFiles")
            .field("geometry", &self.g)
            .field("opts", &self.opts)
            .finish()
    }
}

fn corrupt(what: impl Into<String>) -> NodeError {
    NodeError::with(ErrorKind::Corrupt, what.into())
}

fn dev_err(e: blockdev::Error) -> NodeError {
    NodeError::with(ErrorKind::Io, e)
}

fn fat_err(e: vfat::Error) -> NodeError {
    match e {
        vfat::Error::Device(d) => dev_err(d),
        other => NodeError::with(ErrorKind::Corrupt, other),
    }
}

/// The kind of a `fatfs` failure.
fn fatfs_err(e: std::io::Error) -> NodeError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => ErrorKind::Exists,
        std::io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
        _ if e.to_string().contains("No space") => ErrorKind::NoSpace,
        _ => ErrorKind::Io,
    };
    NodeError::with(kind, format!("FAT: {e}"))
}

/// A name `fatfs` may create: UTF-8, at most 255 characters, none of the
/// characters long names forbid.
fn check_name(name: &[u8]) -> NodeResult<&str> {
    let s = std::str::from_utf8(name).map_err(|_| NodeError::new(ErrorKind::InvalidArgument))?;
    if s.encode_utf16().count() > 255 {
        return Err(ErrorKind::NameTooLong.into());
    }
    if s.is_empty()
        || s == "."
        || s == ".."
        || s.chars()
            .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c))
    {
        return Err(ErrorKind::InvalidArgument.into());
    }
    Ok(s)
}

impl<D: BlockDevice> FatFiles<D> {
    /// Opens the FAT on `dev`; `read_only` refuses every change.
    pub fn open(dev: D, read_only: bool, opts: FatOptions) -> NodeResult<Self> {
        let g = vfat::geometry(&dev)
            .map_err(fat_err)?
            .ok_or_else(|| corrupt(format!("{}: no FAT boot sector", dev.name())))?;
        Ok(FatFiles {
            inner: Mutex::new(Inner {
                ov: Overlay {
                    dev,
                    blocks: BTreeMap::new(),
                },
                inodes: Inodes::default(),
            }),
            g,
            opts,
            read_only,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<D>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The clusters of the chain from `first`.
    fn chain(&self, ov: &Overlay<D>, first: u32) -> NodeResult<Vec<u32>> {
        if first < 2 {
            return Ok(Vec::new());
        }
        let limit = usize::try_from(self.g.clusters()).unwrap_or(usize::MAX);
        vfat::chain(ov, &self.g, first, limit).map_err(fat_err)
    }

    /// The raw bytes of a directory (None: the root).
    fn dir_bytes(&self, ov: &Overlay<D>, first: Option<u32>) -> NodeResult<Vec<u8>> {
        let g = &self.g;
        let ranges: Vec<(u64, u64)> = match first {
            None if !g.fat32_bpb => vec![(
                (g.reserved + g.fats * g.fat_sectors) * g.sector,
                g.root_entries * 32,
            )],
            None => self
                .chain(ov, g.root_cluster)?
                .into_iter()
                .map(|c| (g.cluster_offset(u64::from(c)), g.cluster))
                .collect(),
            Some(c) => self
                .chain(ov, c)?
                .into_iter()
                .map(|c| (g.cluster_offset(u64::from(c)), g.cluster))
                .collect(),
        };
        let mut out = Vec::new();
        for (off, len) in ranges {
            out.extend(
                ov.read_vec(off, usize::try_from(len).unwrap_or(0))
                    .map_err(dev_err)?,
            );
        }
        Ok(out)
    }

    /// The entries of a directory other than `.` and `..`.
    fn entries(&self, ov: &Overlay<D>, first: Option<u32>) -> NodeResult<Vec<Raw>> {
        Ok(parse_dir(&self.dir_bytes(ov, first)?)
            .into_iter()
            .filter(|r| r.name != "." && r.name != "..")
            .collect())
    }

    /// The entry at `path` (None: the root).
    fn resolve(&self, ov: &Overlay<D>, path: &[String]) -> NodeResult<Option<Raw>> {
        let mut cur: Option<Raw> = None;
        for name in path {
            let first = match &cur {
                None => None,
                Some(r) if r.is_dir() => Some(r.cluster),
                Some(_) => return Err(ErrorKind::NotADirectory.into()),
            };
            let found = self
                .entries(ov, first)?
                .into_iter()
                .find(|r| eq_name(&r.name, name))
                .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
            cur = Some(found);
        }
        Ok(cur)
    }

    fn attr_of(&self, ov: &Overlay<D>, ino: Ino, raw: Option<&Raw>) -> NodeResult<Attr> {
        let g = &self.g;
        let round = |n: u64| n.div_ceil(g.cluster) * g.cluster;
        let mut a = Attr {
            ino,
            kind: FileType::Directory,
            perm: 0o777 & !self.opts.dmask,
            nlink: 1,
            uid: self.opts.uid,
            gid: self.opts.gid,
            size: 0,
            blocks: 0,
            atime: ts(0),
            mtime: ts(0),
            ctime: ts(0),
            crtime: ts(0),
            rdev: 0,
            blksize: u32::try_from(g.cluster).unwrap_or(u32::MAX),
        };
        let Some(r) = raw else {
            let all = parse_dir(&self.dir_bytes(ov, None)?);
            a.nlink = 2 + all.iter().filter(|r| r.is_dir()).count() as u32;
            a.size = if g.fat32_bpb {
                self.chain(ov, g.root_cluster)?.len() as u64 * g.cluster
            } else {
                g.root_entries * 32
            };
            a.blocks = round(a.size) / 512;
            return Ok(a);
        };
        if r.is_dir() {
            let all = parse_dir(&self.dir_bytes(ov, Some(r.cluster))?);
            a.nlink = all.iter().filter(|r| r.is_dir()).count() as u32;
            a.size = self.chain(ov, r.cluster)?.len() as u64 * g.cluster;
        } else {
            a.kind = FileType::Regular;
            a.perm = 0o777 & !self.opts.fmask;
            if r.attr & ATTR_RO != 0 {
                a.perm &= !0o222;
            }
            a.size = u64::from(r.size);
        }
        a.blocks = round(a.size) / 512;
        a.mtime = ts(fat_time(r.mdate, r.mtime));
        a.ctime = a.mtime;
        a.atime = ts(fat_time(r.adate, 0));
        let cs = u32::from(r.ctime_cs.min(199));
        a.crtime = Timespec {
            sec: fat_time(r.cdate, r.ctime) + i64::from(cs / 100),
            nsec: (cs % 100) * 10_000_000,
        };
        Ok(a)
    }

    /// The path of `name` in directory `dir` (checked to be a directory).
    fn child(&self, inner: &Inner<D>, dir: Ino, name: &[u8]) -> NodeResult<Vec<String>> {
        let mut p = inner.inodes.path(dir)?;
        if let Some(r) = self.resolve(&inner.ov, &p)? {
            if !r.is_dir() {
                return Err(ErrorKind::NotADirectory.into());
            }
        }
        let name = std::str::from_utf8(name).map_err(|_| NodeError::new(ErrorKind::NotFound))?;
        p.push(name.to_string());
        Ok(p)
    }

    /// Looks `path` up and returns its attributes, with the names as
    /// stored.
    fn lookup_path(&self, inner: &mut Inner<D>, path: &[String]) -> NodeResult<Attr> {
        let raw = self.resolve(&inner.ov, path)?;
        let mut stored = path.to_vec();
        if let (Some(r), Some(last)) = (&raw, stored.last_mut()) {
            last.clone_from(&r.name);
        }
        let ino = if stored.is_empty() {
            ROOT
        } else {
            inner.inodes.ino(&stored)
        };
        self.attr_of(&inner.ov, ino, raw.as_ref())
    }

    /// EROFS on a read-only mount (every change checks this first).
    fn writable(&self) -> NodeResult<()> {
        if self.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        Ok(())
    }

    /// Runs a change through `fatfs` at `ctx.now`, then puts the `.` and
    /// `..` entries right when `dirs` says directories changed.
    fn change<R>(
        &self,
        inner: &mut Inner<D>,
        ctx: Ctx,
        dirs: bool,
        f: impl FnOnce(&fatfs::FileSystem<Stream<'_, D>>) -> std::io::Result<R>,
    ) -> NodeResult<R> {
        self.writable()?;
        NOW.with(|n| n.set(ctx.now.sec));
        let r = {
            let stream = Stream {
                ov: &mut inner.ov,
                pos: 0,
            };
            let fs = fatfs::FileSystem::new(
                stream,
                fatfs::FsOptions::new()
                    .update_accessed_date(false)
                    .time_provider(&CLOCK),
            )
            .map_err(fatfs_err)?;
            let r = f(&fs).map_err(fatfs_err);
            let u = fs.unmount().map_err(fatfs_err);
            let r = r?;
            u?;
            r
        };
        if dirs {
            vfat::fix_dot_entries(&mut inner.ov).map_err(fat_err)?;
        }
        Ok(r)
    }

    fn free_clusters(&self, ov: &Overlay<D>) -> NodeResult<u64> {
        Ok(vfat::statfs(ov).map_err(fat_err)?.free)
    }
}

/// Sets a file's modification time and access date. `fatfs` marks these
/// setters deprecated in favour of its clock, but a given time (`touch
/// -d`) can only be set through them.
#[allow(deprecated)]
fn stamp<T: fatfs::ReadWriteSeek>(
    f: &mut fatfs::File<'_, T>,
    mtime: Option<i64>,
    atime: Option<i64>,
) {
    if let Some(t) = mtime {
        f.set_modified(fat_datetime(t));
    }
    if let Some(t) = atime {
        f.set_accessed(fat_datetime(t).date);
    }
}

fn join(p: &[String]) -> String {
    p.join("/")
}

impl<D: BlockDevice + Send> FileSystem for FatFiles<D> {
    fn root(&self) -> Ino {
        ROOT
    }

    fn statfs(&self) -> NodeResult<super::StatFs> {
        let inner = self.lock();
        let s = vfat::statfs(&inner.ov).map_err(fat_err)?;
        Ok(super::StatFs {
            frsize: s.cluster,
            blocks: s.blocks,
            bfree: s.free,
            bavail: s.free,
            files: 0,
            ffree: 0,
        })
    }

    fn getattr(&self, ino: Ino) -> NodeResult<Attr> {
        let inner = self.lock();
        let path = inner.inodes.path(ino)?;
        let raw = self.resolve(&inner.ov, &path)?;
        self.attr_of(&inner.ov, ino, raw.as_ref())
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> NodeResult<Attr> {
        let mut inner = self.lock();
        let p = self.child(&inner, dir, name)?;
        self.lookup_path(&mut inner, &p)
    }

    fn readdir(&self, dir: Ino) -> NodeResult<Vec<DirEntry>> {
        let mut inner = self.lock();
        let path = inner.inodes.path(dir)?;
        let first = match self.resolve(&inner.ov, &path)? {
            None => None,
            Some(r) if r.is_dir() => Some(r.cluster),
            Some(_) => return Err(ErrorKind::NotADirectory.into()),
        };
        let entries = self.entries(&inner.ov, first)?;
        Ok(entries
            .into_iter()
            .map(|r| {
                let mut p = path.clone();
                p.push(r.name.clone());
                DirEntry {
                    ino: inner.inodes.ino(&p),
                    name: r.name.into_bytes(),
                    kind: if r.attr & 0x10 != 0 {
                        FileType::Directory
                    } else {
                        FileType::Regular
                    },
                }
            })
            .collect())
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> NodeResult<usize> {
        let inner = self.lock();
        let path = inner.inodes.path(ino)?;
        let Some(r) = self.resolve(&inner.ov, &path)? else {
            return Err(ErrorKind::IsADirectory.into());
        };
        if r.is_dir() {
            return Err(ErrorKind::IsADirectory.into());
        }
        let size = u64::from(r.size);
        if offset >= size {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(size - offset) as usize;
        let chain = self.chain(&inner.ov, r.cluster)?;
        let cl = self.g.cluster;
        let mut done = 0usize;
        while done < want {
            let at = offset + done as u64;
            let idx = usize::try_from(at / cl).unwrap_or(usize::MAX);
            let Some(&c) = chain.get(idx) else {
                return Err(corrupt(format!(
                    "{}: the cluster chain ends before the file's {size} bytes",
                    join(&path)
                )));
            };
            let within = at % cl;
            let n = ((cl - within) as usize).min(want - done);
            inner
                .ov
                .read_at(
                    self.g.cluster_offset(u64::from(c)) + within,
                    &mut buf[done..done + n],
                )
                .map_err(dev_err)?;
            done += n;
        }
        Ok(want)
    }

    fn readlink(&self, _ino: Ino) -> NodeResult<Vec<u8>> {
        Err(ErrorKind::InvalidArgument.into())
    }

    fn mknod(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        kind: FileType,
        _perm: u16,
        _rdev: u32,
    ) -> NodeResult<Attr> {
        self.writable()?;
        if kind != FileType::Regular {
            return Err(ErrorKind::NotPermitted.into());
        }
        let name = check_name(name)?;
        let mut inner = self.lock();
        let p = self.child(&inner, dir, name.as_bytes())?;
        if self.resolve(&inner.ov, &p).is_ok() {
            return Err(ErrorKind::Exists.into());
        }
        let path = join(&p);
        self.change(&mut inner, ctx, false, |fs| {
            fs.root_dir().create_file(&path).map(drop)
        })?;
        self.lookup_path(&mut inner, &p)
    }

    fn mkdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8], _perm: u16) -> NodeResult<Attr> {
        self.writable()?;
        let name = check_name(name)?;
        let mut inner = self.lock();
        let p = self.child(&inner, dir, name.as_bytes())?;
        if self.resolve(&inner.ov, &p).is_ok() {
            return Err(ErrorKind::Exists.into());
        }
        if self.free_clusters(&inner.ov)? == 0 {
            return Err(ErrorKind::NoSpace.into());
        }
        let path = join(&p);
        self.change(&mut inner, ctx, true, |fs| {
            fs.root_dir().create_dir(&path).map(drop)
        })?;
        self.lookup_path(&mut inner, &p)
    }

    fn symlink(&mut self, _: Ctx, _: Ino, _: &[u8], _: &[u8]) -> NodeResult<Attr> {
        Err(ErrorKind::NotPermitted.into())
    }

    fn link(&mut self, _: Ctx, _: Ino, _: Ino, _: &[u8]) -> NodeResult<Attr> {
        Err(ErrorKind::NotPermitted.into())
    }

    fn unlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        self.writable()?;
        let mut inner = self.lock();
        let p = self.child(&inner, dir, name)?;
        let r = self
            .resolve(&inner.ov, &p)?
            .ok_or_else(|| NodeError::new(ErrorKind::IsADirectory))?;
        if r.is_dir() {
            return Err(ErrorKind::IsADirectory.into());
        }
        let path = join(&p);
        self.change(&mut inner, ctx, false, |fs| fs.root_dir().remove(&path))?;
        inner.inodes.forget(&p);
        Ok(())
    }

    fn rmdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()> {
        self.writable()?;
        let mut inner = self.lock();
        let p = self.child(&inner, dir, name)?;
        let r = self
            .resolve(&inner.ov, &p)?
            .ok_or_else(|| NodeError::new(ErrorKind::Busy))?;
        if !r.is_dir() {
            return Err(ErrorKind::NotADirectory.into());
        }
        if !self.entries(&inner.ov, Some(r.cluster))?.is_empty() {
            return Err(ErrorKind::DirectoryNotEmpty.into());
        }
        let path = join(&p);
        self.change(&mut inner, ctx, false, |fs| fs.root_dir().remove(&path))?;
        inner.inodes.forget(&p);
        Ok(())
    }

    fn rename(
        &mut self,
        ctx: Ctx,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()> {
        self.writable()?;
        if flags.exchange {
            return Err(NodeError::with(
                ErrorKind::InvalidArgument,
                "FAT: RENAME_EXCHANGE",
            ));
        }
        let newname = check_name(newname)?;
        let mut inner = self.lock();
        let from = self.child(&inner, olddir, oldname)?;
        let to = self.child(&inner, newdir, newname.as_bytes())?;
        let src = self
            .resolve(&inner.ov, &from)?
            .ok_or_else(|| NodeError::new(ErrorKind::Busy))?;
        if src.is_dir() && to.len() > from.len() && key(&to[..from.len()]) == key(&from) {
            return Err(ErrorKind::InvalidArgument.into());
        }
        let same_entry = key(&from) == key(&to);
        if same_entry && from.last() == to.last() {
            return Ok(());
        }
        let target = if same_entry {
            None
        } else {
            match self.resolve(&inner.ov, &to) {
                Ok(t) => t,
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        };
        if let Some(t) = &target {
            if flags.noreplace {
                return Err(ErrorKind::Exists.into());
            }
            match (src.is_dir(), t.is_dir()) {
                (true, false) => return Err(ErrorKind::NotADirectory.into()),
                (false, true) => return Err(ErrorKind::IsADirectory.into()),
                (true, true) if !self.entries(&inner.ov, Some(t.cluster))?.is_empty() => {
                    return Err(ErrorKind::DirectoryNotEmpty.into());
                }
                _ => {}
            }
        }
        let src_dir = join(&from[..from.len() - 1]);
        let src_name = from[from.len() - 1].clone();
        let dst_dir = join(&to[..to.len() - 1]);
        let dst_path = join(&to);
        let dst_name = newname.to_string();
        let replace = target.is_some();
        // A change of case only goes through a temporary name (`fatfs`
        // takes the two names for the same entry).
        let tmp = format!("~ebsim-rename-{}", std::process::id());
        self.change(&mut inner, ctx, src.is_dir(), |fs| {
            let root = fs.root_dir();
            let open = |p: &str| {
                if p.is_empty() {
                    Ok(fs.root_dir())
                } else {
                    root.open_dir(p)
                }
            };
            let sd = open(&src_dir)?;
            let dd = open(&dst_dir)?;
            if replace {
                root.remove(&dst_path)?;
            }
            if same_entry {
                sd.rename(&src_name, &sd, &tmp)?;
                sd.rename(&tmp, &dd, &dst_name)
            } else {
                sd.rename(&src_name, &dd, &dst_name)
            }
        })?;
        if replace {
            inner.inodes.forget(&to);
        }
        inner.inodes.moved(&from, &to);
        Ok(())
    }

    fn write(&mut self, ctx: Ctx, ino: Ino, offset: u64, data: &[u8]) -> NodeResult<usize> {
        self.writable()?;
        let mut inner = self.lock();
        let p = inner.inodes.path(ino)?;
        let r = self
            .resolve(&inner.ov, &p)?
            .ok_or_else(|| NodeError::new(ErrorKind::IsADirectory))?;
        if r.is_dir() {
            return Err(ErrorKind::IsADirectory.into());
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > u64::from(u32::MAX) {
            return Err(ErrorKind::FileTooBig.into());
        }
        let size = u64::from(r.size);
        let cl = self.g.cluster;
        let need = end.div_ceil(cl).saturating_sub(size.div_ceil(cl));
        if need > self.free_clusters(&inner.ov)? {
            return Err(ErrorKind::NoSpace.into());
        }
        let path = join(&p);
        self.change(&mut inner, ctx, false, |fs| {
            let mut f = fs.root_dir().open_file(&path)?;
            if offset > size {
                f.seek(SeekFrom::Start(size))?;
                let zeros = vec![0u8; 64 * 1024];
                let mut left = offset - size;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    f.write_all(&zeros[..k])?;
                    left -= k as u64;
                }
            }
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(data)?;
            f.flush()
        })?;
        Ok(data.len())
    }

    fn fallocate(&mut self, _: Ctx, _: Ino, _: u64, _: u64, _: FallocateMode) -> NodeResult<()> {
        Err(NodeError::with(ErrorKind::Unsupported, "FAT: fallocate"))
    }

    fn setattr(&mut self, ctx: Ctx, ino: Ino, attr: SetAttr) -> NodeResult<Attr> {
        let mut inner = self.lock();
        let p = inner.inodes.path(ino)?;
        let raw = self.resolve(&inner.ov, &p)?;
        let cur = self.attr_of(&inner.ov, ino, raw.as_ref())?;
        if attr.uid.is_some_and(|u| u != cur.uid)
            || attr.gid.is_some_and(|g| g != cur.gid)
            || attr.perm.is_some_and(|m| m & 0o7777 != cur.perm)
        {
            return Err(ErrorKind::NotPermitted.into());
        }
        if attr.size.is_none() && attr.atime.is_none() && attr.mtime.is_none() {
            return Ok(cur);
        }
        let Some(r) = raw else {
            // The root has no entry to keep times in.
            return Ok(cur);
        };
        self.writable()?;
        if r.is_dir() {
            if attr.size.is_some() {
                return Err(ErrorKind::IsADirectory.into());
            }
            // `fatfs` changes the times of files only.
            return Ok(cur);
        }
        let size = u64::from(r.size);
        if let Some(n) = attr.size {
            if n > u64::from(u32::MAX) {
                return Err(ErrorKind::FileTooBig.into());
            }
            let cl = self.g.cluster;
            if n.div_ceil(cl).saturating_sub(size.div_ceil(cl)) > self.free_clusters(&inner.ov)? {
                return Err(ErrorKind::NoSpace.into());
            }
        }
        let path = join(&p);
        self.change(&mut inner, ctx, false, |fs| {
            let mut f = fs.root_dir().open_file(&path)?;
            if let Some(n) = attr.size {
                if n < size {
                    f.seek(SeekFrom::Start(n))?;
                    f.truncate()?;
                } else if n > size {
                    f.seek(SeekFrom::Start(size))?;
                    let zeros = vec![0u8; 64 * 1024];
                    let mut left = n - size;
                    while left > 0 {
                        let k = left.min(zeros.len() as u64) as usize;
                        f.write_all(&zeros[..k])?;
                        left -= k as u64;
                    }
                }
            }
            let mtime = match attr.mtime {
                Some(t) => Some(t.sec),
                None => attr.size.map(|_| ctx.now.sec),
            };
            stamp(&mut f, mtime, attr.atime.map(|t| t.sec));
            f.flush()
        })?;
        let raw = self.resolve(&inner.ov, &p)?;
        self.attr_of(&inner.ov, ino, raw.as_ref())
    }

    fn sync(&mut self) -> NodeResult<()> {
        let mut inner = self.lock();
        if inner.ov.blocks.is_empty() {
            return Ok(());
        }
        let batch = inner.ov.plan().map_err(dev_err)?;
        if !batch.ops.is_empty() {
            inner.ov.dev.commit(&batch).map_err(dev_err)?;
        }
        inner.ov.blocks.clear();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;
    use crate::fs::vfat::{BuildOptions, Content, FatType, build};

    fn esp(t: FatType, cluster: u32, size: u64) -> MemDevice {
        let opts = BuildOptions {
            fat_type: t,
            cluster,
            volume_id: 0x1234_ABCD,
            label: Some("UEFI".into()),
            dirs: vec!["EFI".into(), "EFI/BOOT".into()],
            files: vec![
                ("EFI/BOOT/BOOTX64.EFI".into(), Content::Zeros(100_000)),
                (
                    "EFI/BOOT/grub.cfg".into(),
                    Content::Bytes(b"set x=1\n".to_vec()),
                ),
            ],
            time: (2024, 3, 1, 12, 0, 4),
        };
        let batch = build(size, &opts).unwrap();
        let mut dev = MemDevice::new(size as usize);
        dev.commit(&batch).unwrap();
        dev
    }

    fn ctx(sec: i64) -> Ctx {
        Ctx {
            cred: crate::fs::node::Cred::ROOT,
            now: Timespec { sec, nsec: 0 },
        }
    }

    #[test]
    fn options_parse_like_the_kernel() {
        let o = FatOptions::from_mount_options("defaults,noatime,uid=0,gid=0,umask=0077");
        assert_eq!((o.uid, o.gid, o.fmask, o.dmask), (0, 0, 0o077, 0o077));
        let o = FatOptions::from_mount_options("fmask=0133,dmask=022,uid=1000");
        assert_eq!((o.uid, o.fmask, o.dmask), (1000, 0o133, 0o022));
    }

    #[test]
    fn reads_what_the_build_wrote() {
        for (t, cl, size) in [
            (FatType::Fat32, 512, 106u64 << 20),
            (FatType::Fat16, 2048, 10 << 20),
        ] {
            let fs = FatFiles::open(
                esp(t, cl, size),
                true,
                FatOptions::from_mount_options("umask=0077"),
            )
            .unwrap();
            let root = fs.getattr(ROOT).unwrap();
            assert_eq!(root.perm, 0o700);
            assert_eq!(root.nlink, 3);
            assert_eq!(root.mtime, ts(0));
            let names: Vec<_> = fs
                .readdir(ROOT)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(names, vec![b"EFI".to_vec()]);
            let efi = fs.lookup(ROOT, b"efi").unwrap();
            assert_eq!(efi.kind, FileType::Directory);
            assert_eq!(efi.nlink, 3);
            assert_eq!(efi.size, u64::from(cl));
            let boot = fs.lookup(efi.ino, b"BOOT").unwrap();
            let cfg = fs.lookup(boot.ino, b"grub.cfg").unwrap();
            assert_eq!((cfg.perm, cfg.size, cfg.nlink), (0o700, 8, 1));
            assert_eq!(cfg.blocks, u64::from(cl) / 512);
            assert_eq!(cfg.mtime.sec, 1_709_294_404);
            assert_eq!(cfg.atime.sec, 1_709_251_200);
            let mut buf = [0u8; 64];
            assert_eq!(fs.read(cfg.ino, 0, &mut buf).unwrap(), 8);
            assert_eq!(&buf[..8], b"set x=1\n");
            let big = fs.lookup(boot.ino, b"BOOTX64.EFI").unwrap();
            assert_eq!(big.size, 100_000);
            assert_eq!(fs.read(big.ino, 99_990, &mut buf).unwrap(), 10);
            let s = fs.statfs().unwrap();
            assert_eq!(s.frsize, u64::from(cl));
        }
    }

    #[test]
    fn writes_commit_and_read_back() {
        let size = 10u64 << 20;
        let mut fs = FatFiles::open(
            esp(FatType::Fat16, 2048, size),
            false,
            FatOptions::default(),
        )
        .unwrap();
        let before = fs.statfs().unwrap().bfree;
        let efi = fs.lookup(ROOT, b"EFI").unwrap().ino;
        let d = fs.mkdir(ctx(1_800_000_000), efi, b"test", 0o755).unwrap();
        let f = fs
            .mknod(
                ctx(1_800_000_000),
                d.ino,
                b"hello.txt",
                FileType::Regular,
                0o644,
                0,
            )
            .unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        fs.write(ctx(1_800_000_002), f.ino, 0, &data).unwrap();
        fs.sync().unwrap();
        let a = fs.getattr(f.ino).unwrap();
        assert_eq!(a.size, 5000);
        assert_eq!(a.mtime.sec, 1_800_000_002);
        let mut buf = vec![0u8; 6000];
        assert_eq!(fs.read(f.ino, 0, &mut buf).unwrap(), 5000);
        assert_eq!(&buf[..5000], &data[..]);
        assert_eq!(fs.statfs().unwrap().bfree, before - 1 - 3);
        fs.rename(
            ctx(1),
            d.ino,
            b"hello.txt",
            ROOT,
            b"Moved.TXT",
            RenameFlags::default(),
        )
        .unwrap();
        assert_eq!(fs.getattr(f.ino).unwrap().size, 5000);
        assert!(fs.lookup(ROOT, b"moved.txt").is_ok());
        fs.setattr(
            ctx(2),
            f.ino,
            SetAttr {
                size: Some(10),
                ..SetAttr::default()
            },
        )
        .unwrap();
        assert_eq!(fs.getattr(f.ino).unwrap().size, 10);
        fs.unlink(ctx(3), ROOT, b"MOVED.txt").unwrap();
        fs.rmdir(ctx(3), efi, b"test").unwrap();
        fs.sync().unwrap();
        assert_eq!(fs.statfs().unwrap().bfree, before);
        assert_eq!(
            fs.symlink(ctx(3), ROOT, b"l", b"x").unwrap_err().kind(),
            ErrorKind::NotPermitted
        );
    }
}
