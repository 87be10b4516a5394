//! mkfs.xfs with default options (6.1's, or an older xfsprogs' features
//! and log size, [`super::geometry::MkfsDefaults`]): plan the whole new filesystem, then
//! commit it. Only metadata is written; everything else stays a hole. The
//! plan holds the superblock and geometry only: each AG's headers and btree
//! roots are built again when the device walks the writes, so memory does
//! not grow with the number of AGs. Old signatures are discarded after the
//! commit point (the device's post-commit discards), so they are never
//! saved in the undo log.

use super::ag::{self, AgContent};
use super::btree::{AllocRec, InobtRec};
use super::error::{Error, Result};
use super::geometry::{Geometry, GeometryError};
use super::inode::{self, MkfsTimes, XFS_INODES_PER_CHUNK};
use super::log;
use super::superblock::{self, NULLFSINO, Superblock, features2, incompat, ro_compat, version};
use super::verify::{compute_maxlevels, space_to_height};
use crate::blockdev::{BlockDevice, Sink, WritePlan};
use std::ops::Range;

/// "Whack" zone mkfs clears at both ends of the device (old signatures).
const WHACK: u64 = 128 * 1024;

/// What the user chose.
#[derive(Debug, Clone)]
pub struct MkfsOptions {
    /// `-m uuid=` or a random one.
    pub uuid: [u8; 16],
    /// `-L`, at most 12 bytes.
    pub label: Vec<u8>,
    /// `-d size=` in blocks; `None` = the whole device.
    pub dblocks: Option<u64>,
    /// Creation times of the root, rbm and rsum inodes.
    pub times: MkfsTimes,
    /// The features, or None for the xfsprogs version's defaults.
    pub features: Option<crate::fs::xfs::geometry::MkfsDefaults>,
    /// The AG cut, log and inode cap the command line asks for.
    pub ask: crate::fs::xfs::geometry::Ask,
}

/// A planned mkfs: the superblock to be, its geometry, and the writes.
#[derive(Debug, Clone)]
pub struct MkfsPlan {
    pub sb: Superblock,
    pub geometry: Geometry,
    pub writes: MkfsWrites,
}

/// The writes of a new XFS, as a [`WritePlan`]: every AG's headers and
/// btree roots (highest AG first), the clean log's first block, the root
/// inode chunk, AG 0 with the primary superblock last; then the discard of
/// the old signatures.
#[derive(Debug, Clone)]
pub struct MkfsWrites {
    sb: Superblock,
    geo: Geometry,
    times: MkfsTimes,
    stale: Vec<Range<u64>>,
}

impl MkfsWrites {
    /// AG `agno`'s length and contents.
    fn content(&self, agno: u32) -> (u32, AgContent) {
        let geo = &self.geo;
        let p = ag::AgLayout::new(&self.sb).prealloc;
        let len = geo.ag_length(agno);
        let mut content = AgContent::default();
        let first_free = if agno == geo.logagno {
            content.log = Some((geo.logagbno, geo.logblocks));
            geo.logagbno + geo.logblocks
        } else {
            p
        };
        let fill = agfl_fill(geo);
        content.agfl = (first_free..first_free + fill).collect();
        let after_agfl = first_free + fill;
        if agno == 0 {
            let chunk = root_chunk(geo);
            // A chunk smaller than a block (64 KiB blocks, 512-byte
            // inodes) still takes the whole block.
            let chunk_end = chunk + geo.sizes.chunk_blocks().max(1);
            if chunk > after_agfl {
                content.free.push(AllocRec {
                    startblock: after_agfl,
                    blockcount: chunk - after_agfl,
                });
            }
            content.free.push(AllocRec {
                startblock: chunk_end,
                blockcount: len.saturating_sub(chunk_end),
            });
            content.inodes = Some(InobtRec {
                startino: chunk << self.sb.inopblog,
                holemask: 0,
                count: 64,
                freecount: 61,
                free: !0b111u64,
            });
        } else {
            content.free.push(AllocRec {
                startblock: after_agfl,
                blockcount: len.saturating_sub(after_agfl),
            });
        }
        (len, content)
    }

    /// The superblock sector of AG `agno` (> 0) as mkfs leaves it: geometry
    /// with inprogress set, no counters, no inodes (except the copies the
    /// root inode is written back to).
    fn secondary(&self, agno: u32) -> Vec<u8> {
        let geo = &self.geo;
        let p = ag::AgLayout::new(&self.sb).prealloc;
        let f0 = geo.dblocks - u64::from(geo.agcount) * u64::from(p) - u64::from(geo.logblocks);
        let mut s = self.sb.clone();
        s.inprogress = 1;
        s.icount = 0;
        s.ifree = 0;
        s.fdblocks = f0;
        s.rbmino = NULLFSINO;
        s.rsumino = NULLFSINO;
        let last = geo.agcount - 1;
        let keeps_root = agno == last || (geo.agcount > 2 && agno == last / 2);
        s.rootino = if keeps_root {
            self.sb.rootino
        } else {
            NULLFSINO
        };
        s.to_bytes()
    }

    /// AG `agno` built (its free counts and the bytes of its header
    /// blocks).
    fn build(&self, agno: u32) -> ag::BuiltAg {
        let (len, content) = self.content(agno);
        if agno == 0 {
            ag::build(&self.sb, 0, len, &self.sb.to_bytes(), &content)
        } else {
            ag::build(&self.sb, agno, len, &self.secondary(agno), &content)
        }
    }
}

impl WritePlan for MkfsWrites {
    fn for_each_write(
        &self,
        sink: &mut Sink<'_>,
    ) -> std::result::Result<(), crate::blockdev::Error> {
        let sb = &self.sb;
        for agno in (1..self.geo.agcount).rev() {
            sink(sb.ag_byte(agno, 0), &self.build(agno).bytes)?;
        }
        let (logag, logbno) = sb.fsb_to_ag(sb.logstart);
        // The clean log record in whole blocks, so that a rollback can
        // punch it out again (a partial block would stay allocated).
        let clean = log::clean_log(&sb.uuid, log_record_sunit(sb));
        let mut log_block = vec![0u8; clean.len().next_multiple_of(sb.blocksize as usize)];
        log_block[..clean.len()].copy_from_slice(&clean);
        sink(sb.ag_byte(logag, logbno), &log_block)?;
        if let Some(rec) = self.content(0).1.inodes {
            let chunk_bno = rec.startino >> sb.inopblog;
            let chunk = inode::mkfs_chunk(
                u64::from(rec.startino),
                usize::from(sb.inodesize),
                &sb.metadata_uuid(),
                &self.times,
                sb.has_incompat(incompat::BIGTIME),
            );
            sink(sb.ag_byte(0, chunk_bno), &chunk)?;
        }
        // The primary superblock last: until it is written the device does
        // not look like a finished XFS.
        sink(0, &self.build(0).bytes)
    }

    fn discards(&self) -> Vec<Range<u64>> {
        self.stale.clone()
    }
}

impl From<GeometryError> for Error {
    fn from(e: GeometryError) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// The block of AG 0 where mkfs puts the first inode chunk (the root
/// directory's): after the fixed metadata, the log when AG 0 holds it and
/// the free-list blocks, rounded up to the chunk alignment.
fn root_chunk(geo: &Geometry) -> u32 {
    let first_free = if geo.logagno == 0 {
        geo.logagbno + geo.logblocks
    } else {
        geo.prealloc
    };
    let align = inoalign(geo).max(1);
    (first_free + agfl_fill(geo)).div_ceil(align) * align
}

/// Blocks mkfs puts on each AG's free list (`xfs_alloc_min_freelist`
/// with one-level trees): room for a split of the bno and cnt btrees, and
/// of the rmap btree when there is one — each tree's share capped at its
/// largest possible height, which is one only for small AGs of large
/// blocks (a 512 MiB AG of 64 KiB blocks holds every free extent in one
/// leaf). So 4, or 6 with rmapbt, in every 4 KiB-block filesystem.
fn agfl_fill(geo: &Geometry) -> u32 {
    // Short-form CRC btree blocks: a 56-byte header, then 8-byte free
    // space records (12 bytes of key and pointer in a node), or 24-byte
    // rmap records (44 bytes of low and high key and pointer); a block is
    // kept at least half full.
    let payload = geo.sizes.blocksize.saturating_sub(56);
    let ag = u64::from(geo.agblocks);
    let alloc_min = [payload / 8 / 2, payload / 12 / 2];
    let alloc_levels = compute_maxlevels(alloc_min, ag.div_ceil(2));
    let mut fill = 2 * alloc_levels.min(2);
    if geo.features.rmapbt {
        let rmap_min = [payload / 24 / 2, payload / 44 / 2];
        let rmap_levels = if geo.features.reflink {
            space_to_height(rmap_min, ag, u64::from(rmap_min[1].max(2)))
        } else {
            compute_maxlevels(rmap_min, ag)
        };
        fill += rmap_levels.min(2);
    }
    fill
}

/// `sb_inoalignmt`: a whole chunk with sparse inodes, else a cluster.
fn inoalign(geo: &Geometry) -> u32 {
    if geo.features.sparse {
        geo.sizes.chunk_blocks()
    } else {
        geo.sizes.cluster_blocks()
    }
}

/// The stripe unit mkfs passes when it writes the clean log record
/// (`libxfs_log_clear`): `sb_logsunit` in bytes, where 1 means the log
/// sector size (0 for 512-byte sectors).
fn log_record_sunit(sb: &Superblock) -> u32 {
    match sb.logsunit {
        1 => u32::from(sb.logsectsize),
        n => n,
    }
}

/// The superblock of a fresh default filesystem with `geo` and its
/// features (the primary, with the counters of a finished mkfs).
pub fn superblock(geo: &Geometry, opts: &MkfsOptions) -> Superblock {
    let mut fname = [0u8; 12];
    let n = opts.label.len().min(12);
    fname[..n].copy_from_slice(&opts.label[..n]);
    let f2 = features2::LAZYSBCOUNT | features2::ATTR2 | features2::PROJID32 | features2::CRC;
    let icount = XFS_INODES_PER_CHUNK;
    let f = geo.features;
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    let z = geo.sizes;
    let blocklog = z.blocklog();
    let sectlog = z.sectsize.max(1).ilog2();
    let inodelog = z.inodesize.max(1).ilog2();
    let inopblog = blocklog.saturating_sub(inodelog);
    // The inode number of a chunk's first inode: its block, shifted.
    let rootino = u64::from(root_chunk(geo)) << inopblog;
    // A sector over 512 bytes is recorded, with the internal log's.
    let big_sectors = z.sectsize > 512;
    Superblock {
        blocksize: z.blocksize,
        dblocks: geo.dblocks,
        rblocks: 0,
        rextents: 0,
        uuid: opts.uuid,
        logstart: geo.logstart(),
        rootino,
        rbmino: rootino + 1,
        rsumino: rootino + 2,
        // XFS_MIN_RTEXTSIZE (4 KiB) in blocks, at least one block.
        rextsize: (4096 >> blocklog).max(1),
        agblocks: geo.agblocks,
        agcount: geo.agcount,
        rbmblocks: 0,
        logblocks: geo.logblocks,
        versionnum: version::V5
            | version::NLINK
            | version::ALIGN
            | version::LOGV2
            | version::EXTFLG
            | version::DIRV2
            | version::MOREBITS
            | if big_sectors { version::SECTOR } else { 0 },
        sectsize: z.sectsize as u16,
        inodesize: z.inodesize as u16,
        inopblock: (z.blocksize / z.inodesize.max(1)) as u16,
        fname,
        blocklog: blocklog as u8,
        sectlog: sectlog as u8,
        inodelog: inodelog as u8,
        inopblog: inopblog as u8,
        agblklog: geo.agblklog,
        rextslog: 0,
        inprogress: 0,
        imax_pct: geo.imaxpct,
        icount,
        ifree: icount - 3,
        fdblocks: 0, // filled in by plan() from the AGs
        frextents: 0,
        uquotino: 0,
        gquotino: 0,
        qflags: 0,
        flags: 0,
        shared_vn: 0,
        inoalignmt: inoalign(geo),
        unit: 0,
        width: 0,
        dirblklog: z.dirblocksize.max(1).ilog2().saturating_sub(blocklog) as u8,
        logsectlog: if big_sectors { sectlog as u8 } else { 0 },
        logsectsize: if big_sectors { z.sectsize as u16 } else { 0 },
        // With log sectors over 512 bytes mkfs makes the log stripe unit
        // one block (bytes); 1 otherwise.
        logsunit: if big_sectors { z.blocksize } else { 1 },
        features2: f2,
        bad_features2: f2,
        features_compat: 0,
        features_ro_compat: bit(f.finobt, ro_compat::FINOBT)
            | bit(f.rmapbt, ro_compat::RMAPBT)
            | bit(f.reflink, ro_compat::REFLINK)
            | bit(f.inobtcount, ro_compat::INOBTCNT),
        features_incompat: incompat::FTYPE
            | bit(f.sparse, incompat::SPINODES)
            | bit(f.bigtime, incompat::BIGTIME)
            | bit(f.nrext64, incompat::NREXT64),
        features_log_incompat: 0,
        // With sparse inodes: the inode cluster (8 KiB scaled by
        // inodesize / 256) in blocks.
        spino_align: if f.sparse { z.cluster_blocks() } else { 0 },
        pquotino: 0,
        lsn: 0,
        meta_uuid: [0; 16],
    }
}

/// Plans mkfs on `dev`: checks the size, lays out every AG, and returns the
/// batch that writes it (nothing is written).
pub fn plan<D: BlockDevice + ?Sized>(dev: &D, opts: &MkfsOptions) -> Result<MkfsPlan> {
    plan_as(dev, opts, crate::ec2::release::Version::new(6, 1, 0))
}

/// As [`plan`], with the defaults of xfsprogs `version`.
pub fn plan_as<D: BlockDevice + ?Sized>(
    dev: &D,
    opts: &MkfsOptions,
    version: crate::ec2::release::Version,
) -> Result<MkfsPlan> {
    let dev_blocks = dev.size() >> opts.ask.sizes.blocklog();
    let want = opts.dblocks.unwrap_or(dev_blocks);
    if want > dev_blocks {
        return Err(Error::Invalid(format!(
            "size {want} blocks is larger than the device ({dev_blocks} blocks)"
        )));
    }
    let features = opts
        .features
        .unwrap_or_else(|| crate::fs::xfs::geometry::MkfsDefaults::of(version));
    let geo = Geometry::plan_ags(want, version, features, &opts.ask)?;
    let sb = superblock(&geo, opts);
    let stale = stale_ranges(dev, &geo)?;
    let mut writes = MkfsWrites {
        sb,
        geo: geo.clone(),
        times: opts.times,
        stale,
    };
    // The primary's free count is the sum of every AG's; AG 0's own
    // headers do not depend on it.
    let mut fdblocks = 0u64;
    for agno in 0..geo.agcount {
        let built = writes.build(agno);
        fdblocks += u64::from(built.agf.freeblks) + u64::from(built.agf.flcount);
    }
    writes.sb.fdblocks = fdblocks;
    Ok(MkfsPlan {
        sb: writes.sb.clone(),
        geometry: geo,
        writes,
    })
}

/// Ranges holding old data that a new filesystem must not show: the
/// first and last 128 KiB (old signatures), the log, and an old XFS's AG
/// headers. Only ranges that hold data are returned, so a fresh sparse
/// file needs no discard at all.
fn stale_ranges<D: BlockDevice + ?Sized>(dev: &D, geo: &Geometry) -> Result<Vec<Range<u64>>> {
    let size = dev.size();
    if dev.data_ranges(0..size)?.is_empty() {
        return Ok(Vec::new());
    }
    let bs = u64::from(geo.sizes.blocksize);
    let mut want = vec![0..WHACK.min(size), size.saturating_sub(WHACK)..size];
    let log_start =
        (u64::from(geo.logagno) * u64::from(geo.agblocks) + u64::from(geo.logagbno)) * bs;
    want.push(log_start..log_start + u64::from(geo.logblocks) * bs);
    // An old XFS: its secondary superblocks and AG headers would confuse
    // xfs_repair and blkid later.
    if let Ok(old) = read_old_sb(dev) {
        let hdr = u64::from(ag::AgLayout::new(&old).prealloc) << old.blocklog;
        for agno in 0..old.agcount {
            let at = old.ag_byte(agno, 0);
            if at >= size {
                break;
            }
            want.push(at..(at + hdr).min(size));
        }
    }
    let mut out = Vec::new();
    for r in want {
        out.extend(dev.data_ranges(r)?);
    }
    Ok(out)
}

fn read_old_sb<D: BlockDevice + ?Sized>(dev: &D) -> Result<Superblock> {
    let b = dev.read_vec(0, 512)?;
    let sb = Superblock::from_bytes(&b, 0)?;
    superblock::Superblock::verify_crc(&b, 0)?;
    sb.validate(0)?;
    Ok(sb)
}

/// Commits a planned mkfs.
pub fn apply<D: BlockDevice + ?Sized>(dev: &mut D, plan: &MkfsPlan) -> Result<()> {
    dev.commit(&plan.writes)?;
    Ok(())
}
