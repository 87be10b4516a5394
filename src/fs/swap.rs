//! Linux swap areas, version 1, as util-linux 2.38's `mkswap` writes them
//! and blkid reads them.
//!
//! The header is the first page of the area (the page size is the
//! machine's, 4096 here, or `mkswap -p`). Its first 1024 bytes are left
//! for boot code; from byte 1024, little-endian on x86: `version` (u32,
//! 1), `last_page` (u32, pages − 1), `nr_badpages` (u32), 13 reserved
//! words, so the 16-byte UUID sits at 1036 and the 16-byte label (NUL
//! padded, cut at 15 bytes) at 1052; the bad-page list follows from 1536;
//! the 10-byte magic `SWAPSPACE2` ends the page (at page size − 10).
//!
//! What `mkswap` changes, measured on 2.38.1: the bytes 1024..page size
//! always (the whole rest of the first page, zeros included). The first
//! 1024 bytes are zeroed too, unless blkid finds a partition table there
//! and `-f` was not given (a whole disk: the table's first sector stays,
//! and the header page still overwrites what lies at 1024..page size,
//! GPT's entries included). After zeroing them it wipes every other
//! signature blkid finds, saying "wiping old TYPE signature"; for the
//! types ebsim writes (ext4, XFS, FAT, swap) every magic lies inside the
//! first page, so nothing past it changes. Nothing else of the device is
//! written: the rest keeps its bytes (and holes).

use crate::blockdev::{self, BlockDevice, WriteBatch};

/// The v1 magic, at page size − 10.
pub const MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Where the v1 header starts.
pub const HEADER_OFFSET: u64 = 1024;
/// The fewest pages mkswap accepts (`MIN_GOODPAGES`).
pub const MIN_PAGES: u64 = 10;
/// `sizeof(struct swap_header_v1_2)`: the boot bytes, three words, UUID,
/// label, 117 padding words and one bad-page slot.
const HEADER_MIN: u32 = 1024 + 12 + 32 + 117 * 4 + 4;
/// The label's room in the header (15 bytes and a NUL).
pub const LABEL_LEN: usize = 16;

/// What blkid reports of a swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapInfo {
    /// Its page size (where the magic was found).
    pub pagesize: u32,
    /// The header's version word (1).
    pub version: u32,
    /// The header's last usable page.
    pub last_page: u32,
    /// The header's UUID.
    pub uuid: [u8; 16],
    /// The label, up to its first NUL.
    pub label: String,
}

/// The page sizes blkid looks for the magic at.
const PAGE_SIZES: &[u32] = &[4096, 8192, 16384, 32768, 65536];

/// Reads the swap header of `dev`, if it has one (blkid's `swap` probe:
/// the magic at the end of a 4, 8, 16, 32 or 64 KiB page). An old-style
/// `SWAP-SPACE` (v0) area is not reported.
pub fn info<D: BlockDevice + ?Sized>(dev: &D) -> Option<SwapInfo> {
    for &ps in PAGE_SIZES {
        let end = u64::from(ps);
        if dev.size() < end {
            break;
        }
        let Ok(magic) = dev.read_vec(end - 10, 10) else {
            continue;
        };
        if magic != MAGIC {
            continue;
        }
        let h = dev.read_vec(HEADER_OFFSET, 44).ok()?;
        let le32 = |o: usize| {
            h.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(h.get(12..28)?);
        let raw = h.get(28..44)?;
        let label_end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        return Some(SwapInfo {
            pagesize: ps,
            version: le32(0)?,
            last_page: le32(4)?,
            uuid,
            label: String::from_utf8_lossy(&raw[..label_end]).into_owned(),
        });
    }
    None
}

/// True when `dev` holds a v1 swap area.
pub fn probe<D: BlockDevice + ?Sized>(dev: &D) -> bool {
    info(dev).is_some()
}

/// What `mkswap` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOptions {
    /// The page size (`-p`, else the machine's 4096).
    pub pagesize: u32,
    /// The area's size in pages, when the user gave a block count (in KiB
    /// blocks, divided by the page size in KiB); else the whole device.
    pub pages: Option<u64>,
    /// `-f`: a size past the device, and zeroing the first 1024 bytes even
    /// over a partition table.
    pub force: bool,
    /// The UUID to write.
    pub uuid: [u8; 16],
    /// The label (`-L`), if any, as given.
    pub label: Option<Vec<u8>>,
    /// Pages found unreadable by `-c`, in order.
    pub bad_pages: Vec<u32>,
}

/// Why `mkswap` refuses, in the words of its messages.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The page size is not a power of two or too small for the header.
    #[error("Bad user-specified page size {0}")]
    BadPageSize(u32),
    /// A block count past the device without `-f`.
    #[error("error: size {want_kib} KiB is larger than device size {have_kib} KiB")]
    LargerThanDevice {
        /// Asked for, in KiB.
        want_kib: u64,
        /// The device's whole pages, in KiB.
        have_kib: u64,
    },
    /// Fewer than ten pages.
    #[error("error: swap area needs to be at least {min_kib} KiB")]
    TooSmall {
        /// Ten pages, in KiB.
        min_kib: u64,
    },
    /// More bad pages than the header has room for.
    #[error("too many bad pages: {0}")]
    TooManyBadPages(u64),
    /// Fewer than ten good pages.
    #[error("Unable to set up swap-space: unreadable")]
    Unreadable,
    /// Reading the device failed.
    #[error("{0}")]
    Device(#[from] blockdev::Error),
}

/// A planned `mkswap`: what it prints and what it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapPlan {
    /// The page size.
    pub pagesize: u32,
    /// Pages in the area (`last_page` + 1).
    pub pages: u64,
    /// The usable bytes mkswap reports: (pages − bad − 1) × page size.
    pub usable_bytes: u64,
    /// `pages` was cut to 2^32 − 1 (a device over 16 TiB).
    pub truncated: bool,
    /// The partition table found in the first sectors (then the first
    /// 1024 bytes are kept), when not forced.
    pub kept_table: Option<&'static str>,
    /// The signatures wiped (blkid's TYPE words), in probe order.
    pub wiped: Vec<&'static str>,
    /// The label was longer than 15 bytes and cut.
    pub label_truncated: bool,
    /// The writes.
    pub batch: WriteBatch,
}

/// The largest area mkswap makes (pages).
const MAX_PAGES: u64 = u32::MAX as u64;

/// The bad-page list's room: what is left of the page after the 1024
/// boot bytes, the 129 header words and the magic.
fn max_bad_pages(pagesize: u32) -> u64 {
    (u64::from(pagesize) - 1024 - 128 * 4 - 10) / 4
}

/// Plans `mkswap` on `dev` (pure: reads only).
pub fn plan<D: BlockDevice + ?Sized>(dev: &D, o: &SwapOptions) -> Result<SwapPlan, SwapError> {
    plan_sized(dev, dev.size(), o)
}

/// How much of a swap file [`plan_sized`] needs to see: every signature it
/// looks for lies in the first 64 KiB.
pub const PROBE_BYTES: u64 = 64 * 1024;

/// [`plan`] for an area of `size` bytes of which `head` holds at least the
/// first [`PROBE_BYTES`] (a swap file inside a filesystem, read through
/// its file layer).
pub fn plan_sized<D: BlockDevice + ?Sized>(
    head: &D,
    size: u64,
    o: &SwapOptions,
) -> Result<SwapPlan, SwapError> {
    let dev = head;
    let ps = o.pagesize;
    if !ps.is_power_of_two() || ps < HEADER_MIN + 10 {
        return Err(SwapError::BadPageSize(ps));
    }
    let ps64 = u64::from(ps);
    let have = size / ps64;
    let mut pages = match o.pages {
        Some(p) if p > 0 => {
            if p > have && !o.force {
                return Err(SwapError::LargerThanDevice {
                    want_kib: p * (ps64 / 1024),
                    have_kib: have * (ps64 / 1024),
                });
            }
            p
        }
        _ => have,
    };
    if pages < MIN_PAGES {
        return Err(SwapError::TooSmall {
            min_kib: MIN_PAGES * ps64 / 1024,
        });
    }
    let truncated = pages > MAX_PAGES;
    if truncated {
        pages = MAX_PAGES;
    }
    let nbad = o.bad_pages.len() as u64;
    if nbad > max_bad_pages(ps) {
        return Err(SwapError::TooManyBadPages(max_bad_pages(ps)));
    }
    if pages - MIN_PAGES < nbad {
        return Err(SwapError::Unreadable);
    }

    // What blkid sees first: a partition table keeps the boot sectors.
    let kept_table = if o.force { None } else { partition_table(dev) };
    let mut wiped = Vec::new();
    if kept_table.is_none() {
        if let Some(t) = old_signature(dev) {
            wiped.push(t);
        }
    }

    let mut page = vec![0u8; ps as usize];
    let h = HEADER_OFFSET as usize;
    page[h..h + 4].copy_from_slice(&1u32.to_le_bytes());
    // OK to truncate: pages ≤ 2^32 − 1 here, so pages − 1 fits.
    page[h + 4..h + 8].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
    page[h + 8..h + 12].copy_from_slice(&(nbad as u32).to_le_bytes());
    page[h + 12..h + 28].copy_from_slice(&o.uuid);
    let mut label_truncated = false;
    if let Some(label) = &o.label {
        // xstrncpy: at most 15 bytes and the NUL, stopping at a NUL.
        let cut: Vec<u8> = label
            .iter()
            .take_while(|&&b| b != 0)
            .take(LABEL_LEN - 1)
            .copied()
            .collect();
        label_truncated = label.iter().take_while(|&&b| b != 0).count() > cut.len();
        page[h + 28..h + 28 + cut.len()].copy_from_slice(&cut);
    }
    for (i, b) in o.bad_pages.iter().enumerate() {
        let at = 1536 + 4 * i;
        page[at..at + 4].copy_from_slice(&b.to_le_bytes());
    }
    page[ps as usize - 10..].copy_from_slice(MAGIC);

    let mut batch = WriteBatch::new();
    if o.force || kept_table.is_none() {
        batch.write(0, page);
    } else {
        batch.write(HEADER_OFFSET, page[h..].to_vec());
    }
    Ok(SwapPlan {
        pagesize: ps,
        pages,
        usable_bytes: (pages - nbad - 1) * ps64,
        truncated,
        kept_table,
        wiped,
        label_truncated,
        batch,
    })
}

/// The partition table blkid's partition probe finds at the start of
/// `dev`: GPT by its header at LBA 1, DOS by the boot signature with every
/// boot indicator 0 or 0x80 (an empty table counts) on a sector that is
/// no FAT boot sector.
fn partition_table<D: BlockDevice + ?Sized>(dev: &D) -> Option<&'static str> {
    let head = dev.read_vec(0, 520).ok()?;
    if head.get(512..520) == Some(b"EFI PART") {
        return Some("gpt");
    }
    if head.get(510..512) != Some(&[0x55, 0xaa]) {
        return None;
    }
    let flags_ok = (0..4).all(|i| matches!(head.get(446 + 16 * i), Some(0 | 0x80)));
    if flags_ok && !super::vfat::probe(&dev).unwrap_or(false) {
        return Some("dos");
    }
    None
}

/// The filesystem signature blkid would find (and mkswap wipe), by the
/// TYPE name blkid gives it.
fn old_signature<D: BlockDevice + ?Sized>(dev: &D) -> Option<&'static str> {
    if let Some(super::signature::Signature::Filesystem(t)) = super::signature::probe(&dev) {
        return Some(t);
    }
    if super::vfat::probe(&dev).unwrap_or(false) {
        return Some("vfat");
    }
    None
}

/// Writes the plan through the device's commit.
pub fn apply<D: BlockDevice + ?Sized>(dev: &mut D, plan: &SwapPlan) -> Result<(), blockdev::Error> {
    dev.commit(&plan.batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;

    fn opts() -> SwapOptions {
        SwapOptions {
            pagesize: 4096,
            pages: None,
            force: false,
            uuid: [0x11; 16],
            label: Some(b"swap-label-longer".to_vec()),
            bad_pages: Vec::new(),
        }
    }

    #[test]
    fn header_fields_and_readback() {
        let mut d = MemDevice::from_bytes(vec![0xaa; 64 * 4096]);
        let p = plan(&d, &opts()).unwrap();
        assert_eq!(p.pages, 64);
        assert_eq!(p.usable_bytes, 63 * 4096);
        assert!(p.label_truncated);
        apply(&mut d, &p).unwrap();
        let i = info(&d).unwrap();
        assert_eq!((i.version, i.last_page, i.pagesize), (1, 63, 4096));
        assert_eq!(i.label, "swap-label-long");
        assert_eq!(i.uuid, [0x11; 16]);
        // Boot bytes zeroed, the second page untouched.
        assert_eq!(d.read_vec(0, 1024).unwrap(), vec![0; 1024]);
        assert_eq!(d.read_vec(4096, 1).unwrap(), vec![0xaa]);
    }

    #[test]
    fn refusals() {
        let msg = |d: &MemDevice, o: &SwapOptions| plan(d, o).err().map(|e| e.to_string());
        let d = MemDevice::from_bytes(vec![0; 9 * 4096 + 4095]);
        assert_eq!(
            msg(&d, &opts()).as_deref(),
            Some("error: swap area needs to be at least 40 KiB")
        );
        let d = MemDevice::from_bytes(vec![0; 20 * 4096]);
        let mut o = opts();
        o.pages = Some(21);
        assert_eq!(
            msg(&d, &o).as_deref(),
            Some("error: size 84 KiB is larger than device size 80 KiB")
        );
        o.force = true;
        assert_eq!(plan(&d, &o).map(|p| p.pages).ok(), Some(21));
        o.pagesize = 3000;
        assert_eq!(
            msg(&d, &o).as_deref(),
            Some("Bad user-specified page size 3000")
        );
    }

    #[test]
    fn a_partition_table_keeps_the_boot_sectors() {
        let mut b = vec![0u8; 64 * 4096];
        b[512..520].copy_from_slice(b"EFI PART");
        let d = MemDevice::from_bytes(b);
        let p = plan(&d, &opts()).unwrap();
        assert_eq!(p.kept_table, Some("gpt"));
        let mut o = opts();
        o.force = true;
        assert_eq!(plan(&d, &o).unwrap().kept_table, None);
    }
}
