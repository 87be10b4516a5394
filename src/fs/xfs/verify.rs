//! The kernel's read verifiers for the per-AG metadata: what Linux checks in
//! an AGF, AGI, AGFL and short-form btree block each time it reads one, so
//! that ebsim refuses to grow what the kernel refuses to mount or use.
//!
//! Every metadata block is checked in the kernel's order: its CRC32C first
//! (a mismatch is a "Metadata CRC error"), then the structure ("Metadata
//! corruption"):
//!
//! - AGF: uuid equal to the superblock's metadata uuid, LSN not ahead of the
//!   log head, magic `XAGF`, version 1; sequence number equal to the AG
//!   number and a length equal to the AG size, except in the last AG, which
//!   may hold 64 blocks up to the AG size (`xfs_validate_ag_length`); free
//!   list indexes `flfirst`, `fllast` below the AGFL's slot count and
//!   `flcount` at most that; `longest <= freeblks <= length`; the bno and
//!   cnt btree levels between 1 and the most a tree of this AG size can
//!   need; `btreeblks <= length`; with rmapbt, `rmap_blocks <= length` and
//!   its level likewise bounded; with reflink, the same for the refcount
//!   tree.
//! - AGI: the same uuid, LSN, magic (`XAGI`), version, sequence number and
//!   length checks; the inobt level (and the finobt level, when the feature
//!   is on) between 1 and the inode btree's maximum height; every unlinked
//!   bucket either null or an inode number that lies inside an AG, past its
//!   headers and before its last inode cluster.
//! - AGFL: magic `XAFL`, uuid, sequence number, every slot either null or a
//!   block number below the AG size, and the LSN.
//! - A btree block: magic, uuid, its own address (`bb_blkno`), its AG
//!   (`bb_owner`), a level below the tree's maximum height, no more records
//!   than a block holds, siblings null or inside the AG. An LSN ahead of the
//!   log counts as a CRC error here, as in the kernel.
//!
//! On a default mkfs.xfs 6.1 filesystem (finobt, reflink, inobtcount) a
//! mount reads the AGF and AGI of every AG while reserving per-AG metadata
//! space, and the AGI and inode btree root of the root directory's AG when
//! it looks up the root inode; it does not read the AGFL or the free-space
//! btrees. Those fail later, at the first allocation in the AG. A corrupt
//! header is refused either way: [`MountEffect`] says which.
//!
//! ebsim also insists that each AG's length is exactly what the superblock
//! gives (the kernel lets a last AG be any length from 64 blocks to the AG
//! size; xfs_repair and ebsim's grow arithmetic do not).

use super::agf::Agf;
use super::agfl::Agfl;
use super::agi::{Agi, NULLAGINO};
use super::btree::{BlockHeader, NULLAGBLOCK, XFS_BTREE_SBLOCK_CRC_LEN};
use super::error::Structure;
use super::superblock::{Superblock, features2, ro_compat, version};
use std::fmt;

/// What is wrong with a metadata block.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The stored CRC32C is not that of the contents.
    BadCrc { stored: u32, computed: u32 },
    /// The magic number is not the structure's.
    BadMagic { found: u32, expected: u32 },
    /// An unknown version number.
    BadVersion { found: u32 },
    /// The uuid is not the filesystem's metadata uuid.
    ForeignUuid { found: [u8; 16] },
    /// The LSN is ahead of the log's head.
    LsnAhead { lsn: u64, head: u64 },
    /// The sequence number is not the AG number.
    BadSeqno { found: u32 },
    /// A length the kernel refuses: a short AG that is not the last, or a
    /// last AG under 64 blocks or over the AG size.
    BadLength {
        found: u32,
        agblocks: u32,
        last: bool,
    },
    /// A length the kernel accepts but the superblock contradicts.
    LengthMismatch { found: u32, expected: u32 },
    /// A free list index past the AGFL.
    FreeListIndex {
        field: &'static str,
        value: u32,
        slots: u32,
    },
    /// Free space counters that contradict each other or the AG size.
    FreeCounts {
        freeblks: u32,
        longest: u32,
        length: u32,
    },
    /// A btree level out of range in an AG header.
    Level {
        tree: &'static str,
        level: u32,
        max: u32,
    },
    /// A block counter larger than the AG.
    BlockCount {
        field: &'static str,
        value: u32,
        length: u32,
    },
    /// An unlinked-list bucket pointing at no possible inode.
    UnlinkedInode { bucket: usize, value: u32 },
    /// A free list slot holding a block past the AG size.
    FreeListBlock {
        slot: usize,
        value: u32,
        agblocks: u32,
    },
    /// A btree block claiming another address.
    BlockAddress { found: u64 },
    /// A btree block claiming another AG.
    BlockOwner { found: u32 },
    /// A btree block level at or past the tree's maximum height.
    BlockLevel { level: u16, max: u32 },
    /// More records than a btree block holds.
    Records { numrecs: u16, max: u32 },
    /// A sibling pointer outside the AG (or to the block itself).
    Sibling { side: &'static str, value: u32 },
    /// A btree root pointer outside the AG.
    RootOutside { root: u32, length: u32 },
    /// Fewer bytes than the structure.
    TooShort { len: usize },
}

/// A metadata block that fails the kernel's verifier (or, for
/// [`Problem::LengthMismatch`] and [`Problem::RootOutside`], one that
/// ebsim cannot trust): which, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The structure.
    pub structure: Structure,
    /// Its allocation group.
    pub agno: u32,
    /// Its address in 512-byte sectors, as the kernel prints it, when
    /// known.
    pub daddr: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

/// What the kernel (Linux 6.18, measured on loop mounts) does with a
/// filesystem holding a [`Corruption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountEffect {
    /// A read-write mount(2) fails with EIO, which mount(8) reports as
    /// "can't read superblock on DEV."; the kernel logs "Error -117
    /// reserving per-AG metadata reserve pool." (a read-only mount reserves
    /// nothing and succeeds). The AGF is read there whenever finobt,
    /// reflink or rmapbt is on; the AGI when finobt is; the finobt root
    /// when finobt is on without inobtcount.
    ReservationFails,
    /// mount(2) fails with EUCLEAN ("Structure needs cleaning"); the kernel
    /// logs "Failed to read root inode 0xN, error 117" (the AGI and inode
    /// btree root of the root directory's AG).
    RootInodeUnreadable { rootino: u64 },
    /// The kernel mounts it; the first allocation in the AG that reads the
    /// block logs the verifier's report and fails (a data allocation with
    /// EUCLEAN, "Structure needs cleaning"; an inode allocation moves on to
    /// another AG), and the unmount logs "Uncorrected metadata errors
    /// detected; please run xfs_repair.".
    FirstUseFails,
    /// The kernel's verifiers pass it; xfs_repair and ebsim do not.
    VerifiersPass,
}

/// The kernel's text for a "Metadata corruption" or "Metadata CRC error"
/// report: the buffer's name and the functions that check it.
struct KernelNames {
    name: &'static str,
    read_verify: &'static str,
    verify: &'static str,
}

fn kernel_names(s: Structure) -> Option<KernelNames> {
    let n = |name, read_verify, verify| {
        Some(KernelNames {
            name,
            read_verify,
            verify,
        })
    };
    match s {
        Structure::Agf => n("xfs_agf", "xfs_agf_read_verify", "xfs_agf_verify"),
        Structure::Agi => n("xfs_agi", "xfs_agi_read_verify", "xfs_agi_verify"),
        Structure::Agfl => n("xfs_agfl", "xfs_agfl_read_verify", "xfs_agfl_verify"),
        Structure::Bnobt => n("xfs_bnobt", "xfs_allocbt_read_verify", "xfs_allocbt_verify"),
        Structure::Cntbt => n("xfs_cntbt", "xfs_allocbt_read_verify", "xfs_allocbt_verify"),
        Structure::Inobt => n("xfs_inobt", "xfs_inobt_read_verify", "xfs_inobt_verify"),
        Structure::Finobt => n("xfs_finobt", "xfs_inobt_read_verify", "xfs_inobt_verify"),
        Structure::Superblock | Structure::Log => None,
    }
}

fn is_btree(s: Structure) -> bool {
    matches!(
        s,
        Structure::Bnobt | Structure::Cntbt | Structure::Inobt | Structure::Finobt
    )
}

impl Corruption {
    pub(crate) fn new(structure: Structure, agno: u32, problem: Problem) -> Self {
        Corruption {
            structure,
            agno,
            daddr: None,
            problem,
        }
    }

    /// The same, located at sector `daddr`.
    pub fn at(mut self, daddr: u64) -> Self {
        self.daddr = Some(daddr);
        self
    }

    /// The kernel's report kind and the function it names: ("Metadata CRC
    /// error", "xfs_agf_read_verify") and the like. None when the kernel's
    /// verifiers let this through.
    pub fn kernel_check(&self) -> Option<(&'static str, &'static str)> {
        let k = kernel_names(self.structure)?;
        let crc = "Metadata CRC error";
        let corrupt = "Metadata corruption";
        let header = matches!(self.structure, Structure::Agf | Structure::Agi);
        Some(match &self.problem {
            Problem::BadCrc { .. } => (crc, k.read_verify),
            Problem::LsnAhead { .. } if is_btree(self.structure) => (crc, k.read_verify),
            Problem::BadSeqno { .. } | Problem::BadLength { .. } if header => {
                (corrupt, "xfs_validate_ag_length")
            }
            Problem::ForeignUuid { .. }
            | Problem::BlockAddress { .. }
            | Problem::BlockOwner { .. }
                if is_btree(self.structure) =>
            {
                (corrupt, "xfs_btree_agblock_v5hdr_verify")
            }
            Problem::Records { .. } => (corrupt, "xfs_btree_agblock_verify"),
            Problem::Sibling { .. } => (corrupt, "xfs_btree_check_agblock_siblings"),
            Problem::LengthMismatch { .. }
            | Problem::RootOutside { .. }
            | Problem::TooShort { .. } => return None,
            _ => (corrupt, k.verify),
        })
    }

    /// The line the kernel logs when it reads this block, without the
    /// code offsets: "Metadata CRC error detected at xfs_agf_read_verify,
    /// xfs_agf block 0x1". None when the kernel's verifiers pass it.
    pub fn kernel_message(&self) -> Option<String> {
        let (kind, func) = self.kernel_check()?;
        let name = kernel_names(self.structure)?.name;
        Some(match self.daddr {
            Some(d) => format!("{kind} detected at {func}, {name} block {d:#x}"),
            None => format!("{kind} detected at {func}, {name}"),
        })
    }

    /// What mounting a filesystem with this block does (see
    /// [`MountEffect`]).
    pub fn mount_effect(&self, sb: &Superblock) -> MountEffect {
        if self.kernel_check().is_none() {
            return MountEffect::VerifiersPass;
        }
        let finobt = sb.has_ro_compat(ro_compat::FINOBT);
        let reserves =
            finobt || sb.has_ro_compat(ro_compat::REFLINK) || sb.has_ro_compat(ro_compat::RMAPBT);
        let shift = u32::from(sb.agblklog) + u32::from(sb.inopblog);
        let root_ag = sb.rootino.checked_shr(shift).unwrap_or(0);
        let in_root_ag = u64::from(self.agno) == root_ag;
        match self.structure {
            Structure::Agi | Structure::Inobt if in_root_ag => MountEffect::RootInodeUnreadable {
                rootino: sb.rootino,
            },
            Structure::Agf if reserves => MountEffect::ReservationFails,
            Structure::Agi if finobt => MountEffect::ReservationFails,
            Structure::Finobt if finobt && !sb.has_ro_compat(ro_compat::INOBTCNT) => {
                MountEffect::ReservationFails
            }
            _ => MountEffect::FirstUseFails,
        }
    }
}

fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = self.kernel_message() {
            write!(f, "{k}: ")?;
        }
        let s = self.structure;
        let a = self.agno;
        match &self.problem {
            Problem::BadCrc { stored, computed } => write!(
                f,
                "bad CRC in {s} of AG {a} (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Problem::BadMagic { found, expected } => write!(
                f,
                "bad magic {found:#010x} in {s} of AG {a} (expected {expected:#010x})"
            ),
            Problem::BadVersion { found } => write!(f, "bad version {found} in {s} of AG {a}"),
            Problem::ForeignUuid { found } => write!(
                f,
                "{s} of AG {a} belongs to another filesystem (uuid {})",
                uuid_string(found)
            ),
            Problem::LsnAhead { lsn, head } => write!(
                f,
                "{s} of AG {a} has LSN ({}) ahead of the log's current LSN ({})",
                super::log::lsn_string(*lsn),
                super::log::lsn_string(*head)
            ),
            Problem::BadSeqno { found } => {
                write!(f, "bad sequence number {found} in {s} of AG {a}")
            }
            Problem::BadLength {
                found,
                agblocks,
                last: true,
            } => write!(
                f,
                "bad length {found} in {s} of AG {a} (the last AG holds 64 to {agblocks} blocks)"
            ),
            Problem::BadLength {
                found,
                agblocks,
                last: false,
            } => write!(
                f,
                "bad length {found} in {s} of AG {a} (only the last AG may differ from the AG \
                 size {agblocks})"
            ),
            Problem::LengthMismatch { found, expected } => write!(
                f,
                "{s} of AG {a} has length {found} where the superblock gives {expected}"
            ),
            Problem::FreeListIndex {
                field,
                value,
                slots,
            } => write!(
                f,
                "bad free list index {field} {value} in {s} of AG {a} (the AGFL has {slots} slots)"
            ),
            Problem::FreeCounts {
                freeblks,
                longest,
                length,
            } => write!(
                f,
                "bad free space counts in {s} of AG {a} (freeblks {freeblks}, longest {longest}, \
                 length {length})"
            ),
            Problem::Level { tree, level, max } => write!(
                f,
                "bad {tree} btree level {level} in {s} of AG {a} (1 to {max})"
            ),
            Problem::BlockCount {
                field,
                value,
                length,
            } => write!(
                f,
                "bad {field} {value} in {s} of AG {a} (more than its {length} blocks)"
            ),
            Problem::UnlinkedInode { bucket, value } => write!(
                f,
                "bad unlinked inode {value:#x} in bucket {bucket} of {s} of AG {a}"
            ),
            Problem::FreeListBlock {
                slot,
                value,
                agblocks,
            } => write!(
                f,
                "bad block {value} in slot {slot} of {s} of AG {a} (past the AG size {agblocks})"
            ),
            Problem::BlockAddress { found } => {
                write!(f, "{s} of AG {a} claims to be at sector {found:#x}")
            }
            Problem::BlockOwner { found } => write!(f, "{s} of AG {a} claims AG {found}"),
            Problem::BlockLevel { level, max } => write!(
                f,
                "bad level {level} in {s} of AG {a} (the tree has at most {max} levels)"
            ),
            Problem::Records { numrecs, max } => write!(
                f,
                "{s} of AG {a} holds {numrecs} records, more than the {max} that fit"
            ),
            Problem::Sibling { side, value } => {
                write!(f, "bad {side} sibling {value} in {s} of AG {a}")
            }
            Problem::RootOutside { root, length } => write!(
                f,
                "{s} root of AG {a} at block {root} is outside the AG's {length} blocks"
            ),
            Problem::TooShort { len } => write!(f, "{s} of AG {a} is only {len} bytes"),
        }
    }
}

/// The bounds the verifiers use, derived from the superblock as the kernel
/// derives them at mount (`xfs_agfl_size`, `xfs_alloc_compute_maxlevels`,
/// `xfs_ialloc_setup_geometry`, `xfs_rmapbt_compute_maxlevels`,
/// `xfs_refcountbt_compute_maxlevels`, `xfs_agino_range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// AGFL slots: (sector size − 36) / 4.
    pub agfl_size: u32,
    /// Height of the tallest possible bno/cnt btree.
    pub alloc_maxlevels: u32,
    /// Height of the tallest possible inode btree.
    pub inobt_maxlevels: u32,
    /// Height of the tallest possible rmap btree (0 without rmapbt).
    pub rmap_maxlevels: u32,
    /// Height of the tallest possible refcount btree (0 without reflink).
    pub refc_maxlevels: u32,
    /// Records per inode btree block: [leaf, node].
    pub inobt_maxrecs: [u32; 2],
    /// Records per free-space btree block: [leaf, node].
    pub alloc_maxrecs: [u32; 2],
    /// `XFS_AGFL_BLOCK + 1`: the first block a btree may use.
    pub min_agbno: u32,
    /// Blocks an inode cluster is aligned to (`cluster_align`).
    pub cluster_align: u32,
}

/// Records per block of a short-form CRC btree, [leaf, node], with
/// `rec`-byte records and `key`-byte keys (4-byte pointers).
fn maxrecs(blocksize: u32, rec: u32, key: u32) -> [u32; 2] {
    let len = blocksize.saturating_sub(XFS_BTREE_SBLOCK_CRC_LEN as u32);
    [len / rec, len / (key + 4)]
}

/// `xfs_btree_compute_maxlevels`: the height of a tree of `records`
/// records whose blocks are only half full.
pub(super) fn compute_maxlevels(minrecs: [u32; 2], records: u64) -> u32 {
    let leaf = u64::from(minrecs[0].max(1));
    let node = u64::from(minrecs[1].max(2));
    let mut blocks = records.div_ceil(leaf);
    let mut level = 1;
    while blocks > 1 {
        blocks = blocks.div_ceil(node);
        level += 1;
    }
    level
}

/// `xfs_btree_space_to_height`: the height of a tree that fills
/// `leaf_blocks` blocks, its first node level counted as `first_level`
/// blocks: 2 in the kernel's (a root holds at least two pointers), a
/// node's minimum in xfsprogs 6.1's, which mkfs uses.
pub(super) fn space_to_height(minrecs: [u32; 2], leaf_blocks: u64, first_level: u64) -> u32 {
    if leaf_blocks < 1 {
        return 0;
    }
    let node = u64::from(minrecs[1].max(2));
    let mut node_blocks = first_level;
    let mut left = leaf_blocks - 1;
    let mut height = 1;
    while node_blocks < left {
        left -= node_blocks;
        node_blocks = node_blocks.saturating_mul(node);
        height += 1;
    }
    height
}

impl Limits {
    /// The bounds for `sb` (which must have passed
    /// [`Superblock::validate`]).
    pub fn new(sb: &Superblock) -> Self {
        let bs = sb.blocksize.max(512);
        let half = |m: [u32; 2]| [m[0] / 2, m[1] / 2];
        let alloc = maxrecs(bs, 8, 8);
        let inobt = maxrecs(bs, 16, 4);
        let rmap = maxrecs(bs, 24, 2 * 20);
        let refc = maxrecs(bs, 12, 4);
        let agblocks = u64::from(sb.agblocks);
        let agino_log = (u32::from(sb.agblklog) + u32::from(sb.inopblog)).min(63);
        let rmap_maxlevels = if !sb.has_ro_compat(ro_compat::RMAPBT) {
            0
        } else if sb.has_ro_compat(ro_compat::REFLINK) {
            space_to_height(half(rmap), agblocks, 2)
        } else {
            compute_maxlevels(half(rmap), agblocks)
        };
        let refc_maxlevels = if sb.has_ro_compat(ro_compat::REFLINK) {
            compute_maxlevels(half(refc), agblocks)
        } else {
            0
        };
        // The inode cluster: 8 KiB scaled with the inode size when the
        // chunk alignment allows it, never less than a block.
        let blocklog = u32::from(sb.blocklog);
        let mut cluster = 8192u32;
        let scaled = cluster.saturating_mul(u32::from(sb.inodesize) / 256);
        if sb.inoalignmt >= scaled >> blocklog {
            cluster = scaled;
        }
        let blocks_per_cluster = if cluster > bs { cluster >> blocklog } else { 1 };
        let align = sb.versionnum & version::ALIGN != 0;
        let cluster_align = if align && sb.inoalignmt >= blocks_per_cluster {
            sb.inoalignmt.max(1)
        } else {
            1
        };
        Limits {
            agfl_size: super::agfl::agfl_size(usize::from(sb.sectsize)) as u32,
            alloc_maxlevels: compute_maxlevels(half(alloc), agblocks.div_ceil(2)),
            inobt_maxlevels: compute_maxlevels(half(inobt), (1u64 << agino_log) >> 6),
            rmap_maxlevels,
            refc_maxlevels,
            inobt_maxrecs: inobt,
            alloc_maxrecs: alloc,
            min_agbno: (3 * u32::from(sb.sectsize)) / bs + 1,
            cluster_align,
        }
    }

    /// `xfs_verify_ino` for a 32-bit value: inside an AG, past its headers
    /// and before its last whole inode cluster.
    fn valid_ino(&self, sb: &Superblock, ino: u32) -> bool {
        let agino_log = (u32::from(sb.agblklog) + u32::from(sb.inopblog)).min(31);
        let agno = ino.checked_shr(agino_log).unwrap_or(0);
        if agno >= sb.agcount {
            return false;
        }
        let agino = ino & ((1u32 << agino_log) - 1);
        let align = self.cluster_align.max(1);
        let inopblog = u32::from(sb.inopblog);
        let first = (self.min_agbno).div_ceil(align) * align;
        let eoag = sb.ag_length(agno);
        let last = (eoag / align) * align;
        let first_ino = u64::from(first) << inopblog;
        let end_ino = u64::from(last) << inopblog;
        let agino = u64::from(agino);
        agino >= first_ino && agino < end_ino
    }
}

/// `xfs_validate_ag_length` plus ebsim's exact-length check.
fn check_length(sb: &Superblock, agno: u32, seqno: u32, length: u32) -> Result<(), Problem> {
    if seqno != agno {
        return Err(Problem::BadSeqno { found: seqno });
    }
    let last = agno == sb.agcount.saturating_sub(1);
    if length != sb.agblocks && (!last || length < 64 || length > sb.agblocks) {
        return Err(Problem::BadLength {
            found: length,
            agblocks: sb.agblocks,
            last,
        });
    }
    let expected = sb.ag_length(agno);
    if length != expected {
        return Err(Problem::LengthMismatch {
            found: length,
            expected,
        });
    }
    Ok(())
}

fn level_ok(level: u32, max: u32) -> bool {
    (1..=max).contains(&level)
}

/// The structure checks of `xfs_agf_verify` (the CRC, magic, version and
/// sequence number were checked by [`Agf::from_bytes`]); `head` adds the
/// LSN check.
pub fn check_agf(
    sb: &Superblock,
    limits: &Limits,
    agno: u32,
    agf: &Agf,
    head: Option<&super::log::LogHead>,
) -> Result<(), Problem> {
    if agf.uuid != sb.metadata_uuid() {
        return Err(Problem::ForeignUuid { found: agf.uuid });
    }
    if let Some(h) = head {
        if !h.allows(agf.lsn) {
            return Err(Problem::LsnAhead {
                lsn: agf.lsn,
                head: h.lsn(),
            });
        }
    }
    check_length(sb, agno, agf.seqno, agf.length)?;
    let slots = limits.agfl_size;
    for (field, value) in [("flfirst", agf.flfirst), ("fllast", agf.fllast)] {
        if value >= slots {
            return Err(Problem::FreeListIndex {
                field,
                value,
                slots,
            });
        }
    }
    if agf.flcount > slots {
        return Err(Problem::FreeListIndex {
            field: "flcount",
            value: agf.flcount,
            slots,
        });
    }
    if agf.freeblks < agf.longest || agf.freeblks > agf.length {
        return Err(Problem::FreeCounts {
            freeblks: agf.freeblks,
            longest: agf.longest,
            length: agf.length,
        });
    }
    for (tree, level) in [("bno", agf.levels[0]), ("cnt", agf.levels[1])] {
        if !level_ok(level, limits.alloc_maxlevels) {
            return Err(Problem::Level {
                tree,
                level,
                max: limits.alloc_maxlevels,
            });
        }
    }
    let length = agf.length;
    if sb.features2 & features2::LAZYSBCOUNT != 0 && agf.btreeblks > length {
        return Err(Problem::BlockCount {
            field: "btreeblks",
            value: agf.btreeblks,
            length,
        });
    }
    if sb.has_ro_compat(ro_compat::RMAPBT) {
        if agf.rmap_blocks > length {
            return Err(Problem::BlockCount {
                field: "rmap_blocks",
                value: agf.rmap_blocks,
                length,
            });
        }
        if !level_ok(agf.levels[2], limits.rmap_maxlevels) {
            return Err(Problem::Level {
                tree: "rmap",
                level: agf.levels[2],
                max: limits.rmap_maxlevels,
            });
        }
    }
    if sb.has_ro_compat(ro_compat::REFLINK) {
        if agf.refcount_blocks > length {
            return Err(Problem::BlockCount {
                field: "refcount_blocks",
                value: agf.refcount_blocks,
                length,
            });
        }
        if !level_ok(agf.refcount_level, limits.refc_maxlevels) {
            return Err(Problem::Level {
                tree: "refcount",
                level: agf.refcount_level,
                max: limits.refc_maxlevels,
            });
        }
    }
    Ok(())
}

/// The structure checks of `xfs_agi_verify` (see [`check_agf`]).
pub fn check_agi(
    sb: &Superblock,
    limits: &Limits,
    agno: u32,
    agi: &Agi,
    head: Option<&super::log::LogHead>,
) -> Result<(), Problem> {
    if agi.uuid != sb.metadata_uuid() {
        return Err(Problem::ForeignUuid { found: agi.uuid });
    }
    if let Some(h) = head {
        if !h.allows(agi.lsn) {
            return Err(Problem::LsnAhead {
                lsn: agi.lsn,
                head: h.lsn(),
            });
        }
    }
    check_length(sb, agno, agi.seqno, agi.length)?;
    let max = limits.inobt_maxlevels;
    if !level_ok(agi.level, max) {
        return Err(Problem::Level {
            tree: "inode",
            level: agi.level,
            max,
        });
    }
    if sb.has_ro_compat(ro_compat::FINOBT) && !level_ok(agi.free_level, max) {
        return Err(Problem::Level {
            tree: "free inode",
            level: agi.free_level,
            max,
        });
    }
    for (bucket, &value) in agi.unlinked.iter().enumerate() {
        if value != NULLAGINO && !limits.valid_ino(sb, value) {
            return Err(Problem::UnlinkedInode { bucket, value });
        }
    }
    Ok(())
}

/// The structure checks of `xfs_agfl_verify` (see [`check_agf`]).
pub fn check_agfl(
    sb: &Superblock,
    limits: &Limits,
    agfl: &Agfl,
    head: Option<&super::log::LogHead>,
) -> Result<(), Problem> {
    if agfl.uuid != sb.metadata_uuid() {
        return Err(Problem::ForeignUuid { found: agfl.uuid });
    }
    let slots = limits.agfl_size as usize;
    for (slot, &value) in agfl.bno.iter().take(slots).enumerate() {
        if value != NULLAGBLOCK && value >= sb.agblocks {
            return Err(Problem::FreeListBlock {
                slot,
                value,
                agblocks: sb.agblocks,
            });
        }
    }
    if let Some(h) = head {
        if !h.allows(agfl.lsn) {
            return Err(Problem::LsnAhead {
                lsn: agfl.lsn,
                head: h.lsn(),
            });
        }
    }
    Ok(())
}

/// The checks of `xfs_inobt_verify` / `xfs_btree_agblock_verify` past the
/// header ones [`super::btree::parse_header`] makes: the level, the record
/// count and the siblings of an inode btree block at `agbno` of an AG
/// `length` blocks long. (The LSN is checked with the CRC, before the
/// header: see [`super::Xfs::verify_ags`].)
pub fn check_inobt_block(
    limits: &Limits,
    h: &BlockHeader,
    agbno: u32,
    length: u32,
) -> Result<(), Problem> {
    if u32::from(h.level) >= limits.inobt_maxlevels {
        return Err(Problem::BlockLevel {
            level: h.level,
            max: limits.inobt_maxlevels,
        });
    }
    let max = limits.inobt_maxrecs[usize::from(h.level != 0)];
    if u32::from(h.numrecs) > max {
        return Err(Problem::Records {
            numrecs: h.numrecs,
            max,
        });
    }
    for (side, sib) in [("left", h.leftsib), ("right", h.rightsib)] {
        if sib != NULLAGBLOCK && (sib == agbno || sib < limits.min_agbno || sib >= length) {
            return Err(Problem::Sibling { side, value: sib });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;
    use crate::fs::xfs::superblock::tests::sample;

    #[test]
    fn limits_of_a_default_1g_filesystem() {
        // 4 KiB blocks, 65536-block AGs, 512-byte inodes and sectors.
        let sb = sample();
        let l = Limits::new(&sb);
        assert_eq!(l.agfl_size, 119);
        assert_eq!(l.alloc_maxrecs, [505, 336]);
        assert_eq!(l.inobt_maxrecs, [252, 505]);
        assert_eq!(l.alloc_maxlevels, 2);
        assert_eq!(l.inobt_maxlevels, 2);
        assert_eq!(l.refc_maxlevels, 3);
        assert_eq!(l.rmap_maxlevels, 0);
        assert_eq!((l.min_agbno, l.cluster_align), (1, 8));
        // Inodes live from block 8 (agino 64) to the end of the AG.
        assert!(!l.valid_ino(&sb, 63));
        assert!(l.valid_ino(&sb, 64) && l.valid_ino(&sb, 128));
        assert!(l.valid_ino(&sb, (65536 << 3) - 1));
        // AG 1's first inode slots are its headers; AG 4 does not exist.
        assert!(!l.valid_ino(&sb, 1 << 19));
        assert!(l.valid_ino(&sb, (1 << 19) + 64));
        assert!(!l.valid_ino(&sb, (4 << 19) + 64));
        assert!(!l.valid_ino(&sb, u32::MAX - 1));
    }

    #[test]
    fn btree_heights() {
        assert_eq!(compute_maxlevels([252, 168], 1), 1);
        assert_eq!(compute_maxlevels([252, 168], 252), 1);
        assert_eq!(compute_maxlevels([252, 168], 253), 2);
        assert_eq!(compute_maxlevels([252, 168], 252 * 168 + 1), 3);
        assert_eq!(space_to_height([10, 10], 0, 2), 0);
        assert_eq!(space_to_height([10, 10], 3, 2), 1);
        assert_eq!(space_to_height([10, 10], 4, 2), 2);
    }

    #[test]
    fn inobt_block_checks() {
        let l = Limits::new(&sample());
        let h = BlockHeader {
            magic: crate::fs::xfs::btree::XFS_IBT_CRC_MAGIC,
            level: 0,
            numrecs: 1,
            leftsib: NULLAGBLOCK,
            rightsib: NULLAGBLOCK,
            blkno: 24,
            lsn: 0,
            uuid: [0x11; 16],
            owner: 0,
        };
        let check = |h: &BlockHeader| check_inobt_block(&l, h, 3, 65536);
        assert_eq!(check(&h), Ok(()));
        let node = BlockHeader {
            level: 1,
            numrecs: 505,
            ..h.clone()
        };
        assert_eq!(check(&node), Ok(()));
        assert_eq!(
            check(&BlockHeader {
                level: 2,
                ..h.clone()
            }),
            Err(Problem::BlockLevel { level: 2, max: 2 })
        );
        assert_eq!(
            check(&BlockHeader {
                numrecs: 253,
                ..h.clone()
            }),
            Err(Problem::Records {
                numrecs: 253,
                max: 252
            })
        );
        for (left, right) in [(3, NULLAGBLOCK), (0, NULLAGBLOCK), (NULLAGBLOCK, 65536)] {
            let bad = BlockHeader {
                leftsib: left,
                rightsib: right,
                ..h.clone()
            };
            assert!(
                matches!(check(&bad), Err(Problem::Sibling { .. })),
                "{left} {right}"
            );
        }
        assert_eq!(
            check(&BlockHeader {
                leftsib: 1,
                rightsib: 65535,
                ..h
            }),
            Ok(())
        );
    }

    #[test]
    fn kernel_wording() {
        let c = Corruption::new(
            Structure::Agf,
            0,
            Problem::BadCrc {
                stored: 1,
                computed: 2,
            },
        )
        .at(1);
        assert_eq!(
            c.kernel_message().unwrap(),
            "Metadata CRC error detected at xfs_agf_read_verify, xfs_agf block 0x1"
        );
        assert_eq!(
            c.to_string(),
            "Metadata CRC error detected at xfs_agf_read_verify, xfs_agf block 0x1: bad CRC in \
             AGF of AG 0 (stored 0x00000001, computed 0x00000002)"
        );
        let sb = sample();
        assert_eq!(c.mount_effect(&sb), MountEffect::ReservationFails);
        let s = Corruption::new(Structure::Agi, 3, Problem::BadSeqno { found: 0 }).at(0x180002);
        assert_eq!(
            s.kernel_message().unwrap(),
            "Metadata corruption detected at xfs_validate_ag_length, xfs_agi block 0x180002"
        );
        let r = Corruption::new(Structure::Agi, 0, Problem::BadSeqno { found: 1 });
        assert_eq!(
            r.mount_effect(&sb),
            MountEffect::RootInodeUnreadable { rootino: 128 }
        );
        let l = Corruption::new(Structure::Agfl, 2, Problem::BadSeqno { found: 1 });
        assert_eq!(
            l.kernel_check(),
            Some(("Metadata corruption", "xfs_agfl_verify"))
        );
        assert_eq!(l.mount_effect(&sb), MountEffect::FirstUseFails);
        let m = Corruption::new(
            Structure::Agf,
            3,
            Problem::LengthMismatch {
                found: 1,
                expected: 2,
            },
        );
        assert_eq!(m.kernel_message(), None);
        assert_eq!(m.mount_effect(&sb), MountEffect::VerifiersPass);
    }
}
