//! Reading directory blocks: the v3 data block (`XDD3`), the single-block
//! directory (`XDB3`, data with its leaf array and tail at the end), and
//! the directory as a whole from its data space. Leaf, node and free-index
//! blocks only speed up lookups and are not needed to list the entries.

use super::{DIR3_HDR, DirError, DirGeo, Entry};
use crate::bytes::{read_u16be, read_u32be, read_u64be};
use crate::fs::xfs::crc;

/// `XFS_DIR3_BLOCK_MAGIC`, "XDB3": a single-block directory.
pub const XFS_DIR3_BLOCK_MAGIC: u32 = 0x5844_4233;
/// `XFS_DIR3_DATA_MAGIC`, "XDD3": a data block of a larger directory.
pub const XFS_DIR3_DATA_MAGIC: u32 = 0x5844_4433;
/// `XFS_DIR3_FREE_MAGIC`, "XDF3": a free-index block.
pub const XFS_DIR3_FREE_MAGIC: u32 = 0x5844_4633;
/// `XFS_DIR3_LEAF1_MAGIC`: the one leaf block of a leaf directory.
pub const XFS_DIR3_LEAF1_MAGIC: u16 = 0x3df1;
/// `XFS_DIR3_LEAFN_MAGIC`: a leaf block of a node directory.
pub const XFS_DIR3_LEAFN_MAGIC: u16 = 0x3dff;
/// `XFS_DA3_NODE_MAGIC`: an interior da-btree block.
pub const XFS_DA3_NODE_MAGIC: u16 = 0x3ebe;
/// Offset of the CRC in data, block and free blocks (`xfs_dir3_blk_hdr`).
pub const DATA_CRC_OFF: usize = 4;
/// Offset of the CRC in leaf and node blocks (`xfs_da3_blkinfo`).
pub const DA_CRC_OFF: usize = 12;
/// `XFS_DIR2_DATA_FREE_TAG`: marks an unused region.
pub const FREE_TAG: u16 = 0xffff;

/// The entries of one data block, with the parent found in `..`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DataBlock {
    /// Entries other than `.` and `..`, in block order.
    pub entries: Vec<Entry>,
    /// The inode `..` names, if this block holds it.
    pub parent: Option<u64>,
}

/// Parses a data block (`XDD3`) or a single-block directory (`XDB3`).
/// `owner` is the directory's inode; `dablk` is used in messages.
pub fn parse_data(b: &[u8], geo: &DirGeo, owner: u64, dablk: u64) -> Result<DataBlock, DirError> {
    let bad = |detail: String| DirError::Block { dablk, detail };
    if b.len() != geo.blksize || b.len() < DIR3_HDR + 16 {
        return Err(bad(format!("{} bytes", b.len())));
    }
    let magic = read_u32be(b, 0);
    let end = match magic {
        XFS_DIR3_DATA_MAGIC => b.len(),
        XFS_DIR3_BLOCK_MAGIC => {
            let count = read_u32be(b, b.len() - 8) as usize;
            let leaf_bytes = count
                .checked_mul(8)
                .and_then(|n| n.checked_add(8))
                .filter(|&n| n <= b.len() - DIR3_HDR)
                .ok_or_else(|| bad(format!("leaf count {count} does not fit")))?;
            b.len() - leaf_bytes
        }
        m => return Err(bad(format!("bad magic {m:#010x}"))),
    };
    let (stored, computed) = crc::check(b, DATA_CRC_OFF);
    if stored != computed {
        return Err(bad(format!(
            "bad CRC: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    let hdr_owner = read_u64be(b, 40);
    if hdr_owner != owner {
        return Err(bad(format!("owned by inode {hdr_owner}")));
    }
    let mut out = DataBlock::default();
    let mut pos = DIR3_HDR;
    while pos < end {
        if pos + 8 > end {
            return Err(bad(format!("entry at {pos} runs past the data area")));
        }
        if read_u16be(b, pos) == FREE_TAG {
            let len = usize::from(read_u16be(b, pos + 2));
            if len < 8 || len % 8 != 0 || pos + len > end {
                return Err(bad(format!("unused region at {pos} of length {len}")));
            }
            if usize::from(read_u16be(b, pos + len - 2)) != pos {
                return Err(bad(format!("unused region at {pos} has a wrong tag")));
            }
            pos += len;
            continue;
        }
        let ino = read_u64be(b, pos);
        let namelen = usize::from(b[pos + 8]);
        if namelen == 0 {
            return Err(bad(format!("entry at {pos} has an empty name")));
        }
        let size = geo.entsize(namelen);
        if pos + size > end {
            return Err(bad(format!("entry at {pos} runs past the data area")));
        }
        let name = b[pos + 9..pos + 9 + namelen].to_vec();
        let ftype = if geo.has_ftype {
            b[pos + 9 + namelen]
        } else {
            super::ftype::UNKNOWN
        };
        if usize::from(read_u16be(b, pos + size - 2)) != pos {
            return Err(bad(format!("entry at {pos} has a wrong tag")));
        }
        match name.as_slice() {
            b"." => {}
            b".." => out.parent = Some(ino),
            _ => {
                if ftype >= super::ftype::MAX {
                    return Err(bad(format!("entry at {pos} has file type {ftype}")));
                }
                out.entries.push(Entry { name, ino, ftype })
            }
        }
        pos += size;
    }
    Ok(out)
}

/// Reads a block- leaf- or node-format directory from its data space.
/// `data_blocks` are the mapped directory blocks below the leaf space, in
/// order; `read(dablk)` returns one directory block's bytes.
pub fn read_dir(
    data_blocks: &[u64],
    geo: &DirGeo,
    owner: u64,
    mut read: impl FnMut(u64) -> Result<Vec<u8>, DirError>,
) -> Result<(u64, Vec<Entry>), DirError> {
    let mut parent = None;
    let mut entries = Vec::new();
    for &dablk in data_blocks {
        let b = read(dablk)?;
        let blk = parse_data(&b, geo, owner, dablk)?;
        if let Some(p) = blk.parent {
            parent = Some(p);
        }
        entries.extend(blk.entries);
    }
    let parent = parent.ok_or_else(|| DirError::Block {
        dablk: 0,
        detail: "no `..` entry".into(),
    })?;
    Ok((parent, entries))
}
