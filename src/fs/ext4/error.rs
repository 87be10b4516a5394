//! Errors of the ext4 layer. Each names what is wrong and where (group,
//! block, byte offset), so the command line can print a useful message.

use crate::blockdev;

/// Why ext4 code refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the device failed.
    #[error(transparent)]
    Io(#[from] blockdev::Error),
    /// The device cannot hold a superblock at all.
    #[error("device of {size} bytes is too small to hold an ext4 superblock")]
    DeviceTooSmall {
        /// Device size in bytes.
        size: u64,
    },
    /// No ext2/3/4 magic at byte 1080.
    #[error("bad magic number in super-block (found {found:#06x} at byte 1080, expected 0xef53)")]
    BadMagic {
        /// The value found.
        found: u16,
    },
    /// The superblock's `s_checksum` does not match its contents.
    #[error(
        "superblock checksum does not match superblock (stored {stored:#010x}, computed {computed:#010x})"
    )]
    SuperblockChecksum {
        /// Stored at 0x3FC.
        stored: u32,
        /// Computed over bytes 0..0x3FC.
        computed: u32,
    },
    /// A superblock field has a value no valid filesystem has.
    #[error("corrupt superblock: {field} = {value} ({why})")]
    BadSuperblock {
        /// The kernel's name of the field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A group descriptor's checksum does not match.
    #[error(
        "group descriptor {group} checksum is invalid (stored {stored:#06x}, computed {computed:#06x})"
    )]
    DescriptorChecksum {
        /// Group number.
        group: u32,
        /// Stored `bg_checksum`.
        stored: u16,
        /// Computed value.
        computed: u16,
    },
    /// A group descriptor points outside the filesystem or at the wrong
    /// place.
    #[error(
        "group descriptor {group}: {what} at block {block} is outside the filesystem ({blocks} blocks)"
    )]
    BadDescriptor {
        /// Group number.
        group: u32,
        /// "block bitmap", "inode bitmap" or "inode table".
        what: &'static str,
        /// The block it names.
        block: u64,
        /// Blocks in the filesystem.
        blocks: u64,
    },
    /// A bitmap's checksum (in its group descriptor) does not match.
    #[error("{what} checksum of group {group} does not match bitmap at block {block}")]
    BitmapChecksum {
        /// "block bitmap" or "inode bitmap".
        what: &'static str,
        /// Group number.
        group: u32,
        /// Where the bitmap is.
        block: u64,
    },
    /// An inode's checksum does not match.
    #[error("inode {ino} checksum does not match inode")]
    InodeChecksum {
        /// Inode number.
        ino: u32,
    },
    /// An inode's contents make no sense for what it should be.
    #[error("inode {ino} is corrupt: {why}")]
    BadInode {
        /// Inode number.
        ino: u32,
        /// What is wrong.
        why: String,
    },
    /// The filesystem uses a feature this operation does not handle.
    #[error("the filesystem {state} feature {feature}, which ebsim's {operation} does not support")]
    UnsupportedFeature {
        /// "has the" or "lacks the".
        state: &'static str,
        /// e2fsprogs' name of the feature.
        feature: String,
        /// "resize2fs", "statfs", ...
        operation: &'static str,
    },
    /// A geometry the operation cannot produce or handle.
    #[error("{0}")]
    Unsupported(String),
    /// mkfs: the requested filesystem cannot be made.
    #[error("{0}")]
    Mkfs(MkfsError),
    /// resize2fs refuses to act (the message is the real tool's wording
    /// where it has one).
    #[error("{0}")]
    Grow(GrowError),
}

impl Error {
    /// True when a failed write may have left the filesystem half changed
    /// with nothing to undo it (see
    /// [`blockdev::Error::may_leave_partial_change`]); refusals and failures
    /// before writing never do.
    pub fn may_leave_partial_change(&self) -> bool {
        match self {
            Error::Io(e) => e.may_leave_partial_change(),
            _ => false,
        }
    }
}

/// mkfs refusals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MkfsError {
    /// `-J size=` outside what a journal may have (mke2fs's wording).
    #[error(
        "\nThe total requested journal size is {0} blocks; it must be\nbetween 1024 and 10240000 blocks.  Aborting.\n"
    )]
    JournalSizeRange(u64),
    /// `-J size=` more than half the new filesystem's free blocks.
    #[error("\nTotal journal size too big for filesystem.\n")]
    JournalTooBig,
    /// Too few blocks for one group's metadata.
    #[error("Filesystem too small to hold ext4 metadata ({blocks} blocks)")]
    TooSmall {
        /// Requested blocks.
        blocks: u64,
    },
    /// A block size other than 1024, 2048 or 4096.
    #[error("ebsim makes ext4 with 1024, 2048 or 4096-byte blocks only (asked for {0})")]
    BlockSize(u64),
    /// Inode count cannot fit.
    #[error("too many inodes ({0}), specify < 2^32 inodes")]
    TooManyInodes(u64),
    /// Inode tables would not fit in the groups.
    #[error(
        "inode_size ({inode_size}) * inodes_count ({inodes}) too big for a\n\tfilesystem with {blocks} blocks, specify higher inode_ratio (-i)\n\tor lower inode count (-N)."
    )]
    InodesTooBig {
        /// Inode size.
        inode_size: u32,
        /// Requested inodes.
        inodes: u64,
        /// Blocks.
        blocks: u64,
    },
    /// More than 2^32 - 1 blocks without `64bit`.
    #[error(
        "Size of device ({blocks:#x} blocks) too big to be expressed\n\tin 32 bits using a blocksize of {block_size}."
    )]
    TooBigFor32Bit {
        /// Requested blocks.
        blocks: u64,
        /// Block size.
        block_size: u32,
    },
    /// More than 2^48 blocks (the group count would overflow).
    #[error(
        "Size of device ({blocks:#x} blocks) too big to create\n\ta filesystem using a blocksize of {block_size}."
    )]
    TooBig {
        /// Requested blocks.
        blocks: u64,
        /// Block size.
        block_size: u32,
    },
}

/// resize2fs refusals and preconditions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrowError {
    /// The filesystem must be checked first (real resize2fs's refusal).
    #[error("filesystem needs checking first: {0}")]
    NeedsCheck(&'static str),
    /// A smaller size than the current one, online: the kernel cannot
    /// shrink a mounted ext4.
    #[error("On-line shrinking not supported")]
    Shrink {
        /// Current blocks.
        current: u64,
        /// Requested blocks.
        requested: u64,
    },
    /// A shrink of a filesystem whose inode numbers must not change.
    #[error("Cannot shrink this filesystem because it has the stable_inodes feature flag.")]
    StableInodes,
    /// A size below resize2fs's estimate of the minimum, without -f.
    #[error("New size smaller than minimum ({minimum})")]
    BelowMinimum {
        /// The estimate (`resize2fs -P`).
        minimum: u64,
    },
    /// `-S` of at least the blocks per group.
    #[error("Invalid stride length")]
    InvalidStride,
    /// No free block left for what has to move out of the way of the
    /// bigger descriptor table (resize2fs's ENOSPC).
    #[error("No space left on device")]
    NoSpace,
    /// The resize inode's double indirect block had to move past the old
    /// end of the filesystem: resize2fs 1.47.0 then fails walking that
    /// inode with the old size's bounds (after it started writing; ebsim
    /// refuses before).
    #[error("Illegal doubly indirect block found")]
    BadDindBlock,
    /// A size of more than 2^32 blocks for a filesystem without `64bit`
    /// (exactly 2^32 is taken down to 2^32 - 1).
    #[error("New size too large to be expressed in 32 bits")]
    TooLargeFor32Bit,
    /// More group descriptors than fit in one group (resize2fs's limit).
    #[error("New size results in too many block group descriptors.")]
    TooManyDescriptors,
    /// The device is smaller than the requested size (resize2fs without -f).
    #[error(
        "The containing partition (or device) is only {device_blocks} ({block_kib}k) blocks.\nYou requested a new size of {requested} blocks."
    )]
    DeviceTooSmall {
        /// Device size in filesystem blocks.
        device_blocks: u64,
        /// Block size in KiB.
        block_kib: u64,
        /// Requested blocks.
        requested: u64,
    },
    /// Inode count would overflow 32 bits.
    #[error("inodes ({inodes}) must be less than {max}")]
    TooManyInodes {
        /// Resulting inodes.
        inodes: u64,
        /// Limit.
        max: u64,
    },
}
