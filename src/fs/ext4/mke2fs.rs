//! What mke2fs 1.47.0 makes of its arguments before it plans a filesystem:
//! the block count and size from the device size or an explicit count, the
//! `-E` extended options, and the `-U` keywords. The command line only
//! parses; these are the rules a caller of the library needs too.

use super::geometry::SizeType;
use crate::compat::{uuid_parse, uuid_random};

/// The size mke2fs settles on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Block size in bytes.
    pub block_size: u64,
    /// Blocks.
    pub blocks: u64,
    /// mke2fs.conf's size type (it picks the block size and inode ratio).
    pub size_type: SizeType,
}

/// What a `[fs_types]` stanza of Debian's mke2fs.conf (e2fsprogs 1.47.0)
/// sets for a usage type; `None` leaves the value to earlier stanzas and
/// `[defaults]` (block size 4096, inode ratio 16384, inode size 256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UsageType {
    name: &'static str,
    /// `blocksize` (-1: the page size).
    block_size: Option<i32>,
    inode_ratio: Option<u64>,
    inode_size: Option<u32>,
    /// `warn_y2038_dates` (hurd turns the 128-byte inode warning off).
    warn_y2038: Option<bool>,
}

const fn usage_type(name: &'static str, block_size: Option<i32>, inode_ratio: u64) -> UsageType {
    UsageType {
        name,
        block_size,
        inode_ratio: Some(inode_ratio),
        inode_size: None,
        warn_y2038: None,
    }
}

/// The usage types of Debian's mke2fs.conf, in file order.
const USAGE_TYPES: [UsageType; 8] = [
    usage_type("small", Some(1024), 4096),
    usage_type("floppy", Some(1024), 8192),
    usage_type("big", None, 32768),
    usage_type("huge", None, 65536),
    usage_type("news", None, 4096),
    usage_type("largefile", Some(-1), 1_048_576),
    usage_type("largefile4", Some(-1), 4_194_304),
    UsageType {
        name: "hurd",
        block_size: Some(4096),
        inode_ratio: None,
        inode_size: Some(128),
        warn_y2038: Some(false),
    },
];

/// Whether `name` is one of mke2fs.conf's usage types.
pub fn is_usage_type(name: &str) -> bool {
    USAGE_TYPES.iter().any(|t| t.name == name)
}

/// What mke2fs reads from mke2fs.conf for the usage types of `-T` (or,
/// without it, of the size type), later types overriding earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The types found (mke2fs warns about the others and ignores them).
    pub types: Vec<&'static str>,
    /// The names not defined in mke2fs.conf, in order ("default" is
    /// skipped without a warning).
    pub unknown: Vec<String>,
    /// `blocksize` (a page, 4096, for -1).
    pub block_size: u64,
    /// `inode_ratio`.
    pub inode_ratio: u64,
    /// `inode_size`.
    pub inode_size: u32,
    /// `warn_y2038_dates`.
    pub warn_y2038: bool,
}

impl Usage {
    /// Resolves `-T`'s comma-separated list (empty names are skipped).
    pub fn of(list: &str) -> Usage {
        let mut u = Usage {
            types: Vec::new(),
            unknown: Vec::new(),
            block_size: 4096,
            inode_ratio: 16384,
            inode_size: 256,
            warn_y2038: true,
        };
        for name in list.split(',').filter(|n| !n.is_empty()) {
            let Some(t) = USAGE_TYPES.iter().find(|t| t.name == name) else {
                if name != "default" {
                    u.unknown.push(name.to_string());
                }
                continue;
            };
            u.types.push(t.name);
            if let Some(b) = t.block_size {
                // -1: the page size (4096 on the machines ebsim models).
                u.block_size = u64::try_from(b).unwrap_or(4096);
            }
            u.inode_ratio = t.inode_ratio.unwrap_or(u.inode_ratio);
            u.inode_size = t.inode_size.unwrap_or(u.inode_size);
            u.warn_y2038 = t.warn_y2038.unwrap_or(u.warn_y2038);
        }
        u
    }
}

/// Why mke2fs cannot size the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The device is empty and no count was given.
    #[error(
        "Device size reported to be zero.  Invalid partition specified, or\n\t\
         partition table wasn't reread after running fdisk, due to\n\t\
         a modified partition being busy and in use.  You may need to reboot\n\t\
         to re-read your partition table.\n"
    )]
    ZeroDevice,
    /// A block size ebsim does not make.
    #[error("ebsim makes ext4 with 1024, 2048 or 4096-byte blocks only (asked for {0})")]
    BlockSize(u64),
}

/// The block size and count for a device of `dev_size` bytes, with `-b`
/// `block_size` and an explicit count `explicit` (in `-b` units, 1 KiB
/// without `-b`). mke2fs counts in those units first, rounding a count
/// taken from the device down to a 4 KiB page; the size type, and from it
/// the default block size (1 KiB for "small" and "floppy"), follow.
///
/// `usage_block_size` is the block size `-T`'s usage types set (None
/// without `-T`: the size type's).
pub fn size(
    dev_size: u64,
    explicit: Option<u64>,
    block_size: Option<u64>,
    usage_block_size: Option<u64>,
) -> Result<Size, SizeError> {
    let unit = block_size.unwrap_or(1024).max(1);
    let count_units = match explicit {
        Some(n) => n,
        None => {
            if dev_size == 0 {
                return Err(SizeError::ZeroDevice);
            }
            let n = dev_size / unit;
            if 4096 > unit {
                n & !((4096 / unit) - 1)
            } else {
                n
            }
        }
    };
    let size_type = SizeType::for_bytes(count_units.saturating_mul(unit));
    let block_size = block_size
        .or(usage_block_size)
        .unwrap_or(u64::from(size_type.block_size()));
    if !matches!(block_size, 1024 | 2048 | 4096) {
        return Err(SizeError::BlockSize(block_size));
    }
    Ok(Size {
        block_size,
        blocks: count_units.saturating_mul(unit) / block_size,
        size_type,
    })
}

/// The `-E` options ebsim honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extended {
    /// `hash_seed=UUID`.
    pub hash_seed: Option<[u8; 16]>,
    /// `discard` (the default) or `nodiscard`.
    pub discard: bool,
    /// `resize=BLOCKS`: the reserved GDT blocks that room for growth to
    /// that many blocks takes (None: the default 1024× room).
    pub reserved_gdt: Option<u64>,
    /// `stride=` (`s_raid_stride`).
    pub stride: u32,
    /// `stripe_width=` or `stripe-width=` (`s_raid_stripe_width`).
    pub stripe_width: u32,
    /// `root_owner[=UID:GID]`: the root directory's owner (without a value,
    /// the caller's; 0:0 leaves the root inode as it is).
    pub root_owner: Option<(u32, u32)>,
    /// `test_fs`: `EXT2_FLAGS_TEST_FILESYS` in `s_flags`.
    pub test_fs: bool,
    /// `encoding=utf8` (or `utf8-12.1`): turns `casefold` on.
    pub encoding: bool,
    /// `encoding_flags=` as given (checked once the features are known).
    pub encoding_flags: Option<String>,
}

/// What `-E` is parsed against: the new filesystem's size in blocks, its
/// block size and descriptors per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedContext {
    /// Requested size in blocks.
    pub blocks: u64,
    /// Block size in bytes.
    pub block_size: u64,
    /// Group descriptors per block (block size / 32 or 64).
    pub descs_per_block: u64,
    /// Blocks per group (`-g`, else 8 × the block size).
    pub blocks_per_group: u64,
    /// Whether to discard before `-E` says (false after `-K`).
    pub discard: bool,
}

/// `strtoul(arg, &end, 0)` with nothing left over: decimal, 0x hex or 0
/// octal (as a C `unsigned long` truncated to the 32-bit field).
fn strtoul_all(arg: &str) -> Option<u32> {
    crate::compat::strtoull_all(arg, 0).map(|v| v as u32)
}

/// Why `-E` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendedError {
    /// An option mke2fs knows that ebsim does not implement (after the
    /// complaints about the options before it).
    Unsupported {
        /// The option's name.
        name: String,
        /// mke2fs's lines about bad values before it ("Invalid hash seed:
        /// x"), in order.
        complaints: Vec<String>,
    },
    /// Options mke2fs refuses: its "Bad option(s) specified" (the last
    /// unknown or valueless name), after a line for each bad value.
    Bad {
        /// The last unknown option's name (empty when only values were
        /// bad).
        name: String,
        /// mke2fs's lines about bad values, in order.
        complaints: Vec<String>,
    },
}

/// `root_owner=UID:GID` as mke2fs reads it: two `strtoul`s (any base),
/// the first ended by a colon, the second by the end of the value; C's
/// `uid_t`/`gid_t` keep the low 32 bits.
fn root_owner(v: &str) -> Option<(u32, u32)> {
    let uid = crate::compat::strtoull(v, 0);
    let rest = v.get(uid.end..)?.strip_prefix(':')?;
    let gid = crate::compat::strtoull(rest, 0);
    if gid.end != rest.len() {
        return None;
    }
    // C's unsigned long, stored in 32-bit ids: the low bits.
    Some((uid.value as u32, gid.value as u32))
}

/// mke2fs's `parse_extended_opts` over the comma-separated tokens.
pub fn extended(tokens: &[String], cx: &ExtendedContext) -> Result<Extended, ExtendedError> {
    let mut e = Extended {
        hash_seed: None,
        discard: cx.discard,
        reserved_gdt: None,
        stride: 0,
        stripe_width: 0,
        root_owner: None,
        test_fs: false,
        encoding: false,
        encoding_flags: None,
    };
    let mut bad: Option<String> = None;
    let mut bad_seeds = Vec::new();
    let log_block_size = (cx.block_size / 1024).trailing_zeros() as i32;
    for tok in tokens.iter().filter(|t| !t.is_empty()) {
        let (k, v) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok.as_str(), None),
        };
        match (k, v) {
            ("hash_seed", Some(v)) => match uuid_parse(v) {
                Some(u) => e.hash_seed = Some(u),
                None => bad_seeds.push(format!("Invalid hash seed: {v}\n")),
            },
            ("stride" | "stripe-width" | "stripe_width" | "resize", None) => {
                bad = Some(k.to_string());
            }
            ("stride", Some(v)) => match strtoul_all(v) {
                Some(n) => e.stride = n,
                None => bad_seeds.push(format!("Invalid stride parameter: {v}\n")),
            },
            ("stripe-width" | "stripe_width", Some(v)) => match strtoul_all(v) {
                Some(n) => e.stripe_width = n,
                None => bad_seeds.push(format!("Invalid stripe-width parameter: {v}\n")),
            },
            ("resize", Some(v)) => {
                let resize = crate::compat::parse_num_blocks2(v, log_block_size);
                if resize == 0 {
                    bad_seeds.push(format!("Invalid resize parameter: {v}\n"));
                } else if resize <= cx.blocks {
                    bad_seeds.push(
                        "The resize maximum must be greater than the filesystem size.\n"
                            .to_string(),
                    );
                } else {
                    // Descriptor blocks for the groups `resize` blocks
                    // make, less today's (groups counted from block 0),
                    // capped at one block of pointers.
                    let bpg = cx.blocks_per_group.max(1);
                    let dpb = cx.descs_per_block.max(1);
                    let desc_blocks = cx.blocks.div_ceil(bpg).div_ceil(dpb);
                    let rsv = resize
                        .div_ceil(bpg)
                        .div_ceil(dpb)
                        .saturating_sub(desc_blocks);
                    let rsv = rsv.min(cx.block_size / 4);
                    if rsv > 0 {
                        e.reserved_gdt = Some(rsv);
                    }
                }
            }
            ("root_owner", Some(v)) => match root_owner(v) {
                Some(o) => e.root_owner = Some(o),
                None => bad_seeds.push(format!("Invalid root_owner: '{v}'\n")),
            },
            ("root_owner", None) => {
                let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
                e.root_owner = Some((uid.as_raw(), gid.as_raw()));
            }
            ("test_fs", _) => e.test_fs = true,
            ("orphan_file_size", None) => bad = Some(k.to_string()),
            // Only the size of an orphan file, which ebsim does not make
            // (`-O orphan_file` is refused): checked as mke2fs checks it.
            ("orphan_file_size", Some(v)) => {
                if crate::compat::parse_num_blocks2(v, log_block_size) == 0 {
                    bad_seeds.push(format!("Invalid size of orphan file {v}\n"));
                }
            }
            // Without a value mke2fs counts a usage error naming no option.
            ("encoding" | "encoding_flags", None) => {
                bad.get_or_insert_with(String::new);
            }
            ("encoding", Some(v)) => {
                if v == "utf8" || v == "utf8-12.1" {
                    e.encoding = true;
                } else {
                    // mke2fs ends this line without a newline.
                    bad_seeds.push(format!("Invalid encoding: {v}"));
                }
            }
            ("encoding_flags", Some(v)) => e.encoding_flags = Some(v.to_string()),
            ("discard", _) => e.discard = true,
            ("nodiscard", _) => e.discard = false,
            // With the discard the inode tables and journal read as zeros
            // either way; without it ebsim zeroes what mke2fs zeroes.
            ("lazy_itable_init" | "lazy_journal_init", _) => {}
            (
                "mmp_update_interval"
                | "num_backup_sb"
                | "offset"
                | "packed_meta_blocks"
                | "quotatype"
                | "assume_storage_prezeroed"
                | "desc_size"
                | "desc-size",
                _,
            ) => {
                return Err(ExtendedError::Unsupported {
                    name: k.to_string(),
                    complaints: bad_seeds,
                });
            }
            _ => bad = Some(k.to_string()),
        }
    }
    if bad.is_some() || !bad_seeds.is_empty() {
        return Err(ExtendedError::Bad {
            name: bad.unwrap_or_default(),
            complaints: bad_seeds,
        });
    }
    Ok(e)
}

/// `encoding_flags=` for UTF-8 12.1, as e2p reads it: names separated
/// by `-`, each `strict` (`EXT4_ENC_STRICT_MODE_FL`, 1) or `nostrict`;
/// None for anything else.
pub fn encoding_flags(arg: &str) -> Option<u16> {
    let mut flags = 0u16;
    for f in arg.split('-').filter(|f| !f.is_empty()) {
        let (neg, name) = match f.strip_prefix("no") {
            Some(rest) => (true, rest),
            None => (false, f),
        };
        if name != "strict" {
            return None;
        }
        if neg {
            flags &= !1;
        } else {
            flags |= 1;
        }
    }
    Some(flags)
}

/// The UUID `-U` asks for: `null`/`clear` (all zeros), `random`/`time`
/// (a new one), or a UUID; None when it is none of these.
pub fn uuid_arg(arg: Option<&str>) -> Option<[u8; 16]> {
    match arg {
        None => Some(uuid_random()),
        Some(u) if u.eq_ignore_ascii_case("null") || u.eq_ignore_ascii_case("clear") => {
            Some([0u8; 16])
        }
        Some(u) if u.eq_ignore_ascii_case("random") || u.eq_ignore_ascii_case("time") => {
            Some(uuid_random())
        }
        Some(u) => uuid_parse(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_mke2fs_picks_them() {
        // 1 GiB: 4 KiB blocks; 100 MiB ("small"): 1 KiB blocks.
        let s = size(1 << 30, None, None, None);
        assert_eq!(s.map(|s| (s.block_size, s.blocks)), Ok((4096, 262_144)));
        let s = size(100 << 20, None, None, None);
        assert_eq!(s.map(|s| (s.block_size, s.blocks)), Ok((1024, 102_400)));
        // A device size not a multiple of 4 KiB is rounded down to a page.
        let s = size((1 << 30) + 3072, None, None, None);
        assert_eq!(s.map(|s| s.blocks), Ok(262_144));
        // An explicit count is in -b units (1 KiB without -b).
        let s = size(0, Some(2048), Some(2048), None);
        assert_eq!(s.map(|s| (s.block_size, s.blocks)), Ok((2048, 2048)));
        assert_eq!(size(0, None, None, None), Err(SizeError::ZeroDevice));
        assert_eq!(
            size(1 << 30, None, Some(8192), None),
            Err(SizeError::BlockSize(8192))
        );
    }

    #[test]
    fn usage_types_as_mke2fs_conf_sets_them() {
        let u = Usage::of("news");
        assert_eq!(
            (u.block_size, u.inode_ratio, u.inode_size),
            (4096, 4096, 256)
        );
        // Later types override earlier ones; unknown ones are reported,
        // "default" silently skipped.
        let u = Usage::of("small,largefile,,default,bogus");
        assert_eq!(u.types, ["small", "largefile"]);
        assert_eq!(u.unknown, ["bogus"]);
        assert_eq!((u.block_size, u.inode_ratio), (4096, 1_048_576));
        let u = Usage::of("hurd");
        assert_eq!((u.inode_size, u.warn_y2038), (128, false));
    }

    #[test]
    fn extended_options() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // 8 GiB of 4 KiB blocks, 64-byte descriptors.
        let cx = ExtendedContext {
            blocks: 2_097_152,
            block_size: 4096,
            descs_per_block: 64,
            blocks_per_group: 32768,
            discard: true,
        };
        let base = Extended {
            hash_seed: None,
            discard: false,
            reserved_gdt: None,
            stride: 0,
            stripe_width: 0,
            root_owner: None,
            test_fs: false,
            encoding: false,
            encoding_flags: None,
        };
        assert_eq!(
            extended(&t(&["nodiscard", "lazy_itable_init=1"]), &cx),
            Ok(base.clone())
        );
        // Room to grow to 2 TiB: 16384 groups, 256 descriptor blocks, one
        // of them in use.
        assert_eq!(
            extended(
                &t(&[
                    "nodiscard",
                    "resize=536870912",
                    "stride=16",
                    "stripe_width=0x40"
                ]),
                &cx
            ),
            Ok(Extended {
                reserved_gdt: Some(255),
                stride: 16,
                stripe_width: 64,
                ..base.clone()
            })
        );
        assert_eq!(
            extended(&t(&["nodiscard", "root_owner=1000:0x64", "test_fs"]), &cx),
            Ok(Extended {
                root_owner: Some((1000, 100)),
                test_fs: true,
                ..base
            })
        );
        assert_eq!(
            extended(&t(&["root_owner=1000", "root_owner=1:2x"]), &cx),
            Err(ExtendedError::Bad {
                name: String::new(),
                complaints: vec![
                    "Invalid root_owner: '1000'\n".into(),
                    "Invalid root_owner: '1:2x'\n".into()
                ]
            })
        );
        assert_eq!(
            extended(&t(&["offset=4"]), &cx),
            Err(ExtendedError::Unsupported {
                name: "offset".into(),
                complaints: Vec::new()
            })
        );
        assert_eq!(
            extended(
                &t(&["hash_seed=x", "resize=1000", "stride=z", "foo", "resize"]),
                &cx
            ),
            Err(ExtendedError::Bad {
                name: "resize".into(),
                complaints: vec![
                    "Invalid hash seed: x\n".into(),
                    "The resize maximum must be greater than the filesystem size.\n".into(),
                    "Invalid stride parameter: z\n".into(),
                ]
            })
        );
        assert_eq!(uuid_arg(Some("clear")), Some([0; 16]));
        assert_eq!(uuid_arg(Some("bogus")), None);
    }
}
