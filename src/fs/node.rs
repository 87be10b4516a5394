//! Files inside a filesystem: the operations both ext4 and XFS implement,
//! addressed by inode number the way the kernel's VFS (and FUSE) address
//! them. Path walking, permission checks and symlink following live above
//! this layer; here a directory and a name are always given explicitly.
//!
//! A [`FileSystem`] stages every change in memory and writes nothing until
//! [`FileSystem::sync`], which commits all staged changes as one crash-safe
//! batch through the blockdev write path: after a crash the image holds
//! either everything up to the previous `sync` or everything up to this one.
//! Implementations may also sync on their own when staged data grows past a
//! bound (like the kernel's writeback), never in the middle of one operation.
//!
//! Every operation checks what the kernel checks (names, types, emptiness,
//! space) before it changes anything, so an error means nothing changed.

use std::fmt;

/// An inode number as the filesystem numbers it (ext4: 1-based index; XFS:
/// the segmented AG/block/slot number).
pub type Ino = u64;

/// The type of a file, from the type bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `S_IFREG`.
    Regular,
    /// `S_IFDIR`.
    Directory,
    /// `S_IFLNK`.
    Symlink,
    /// `S_IFCHR`.
    CharDevice,
    /// `S_IFBLK`.
    BlockDevice,
    /// `S_IFIFO`.
    Fifo,
    /// `S_IFSOCK`.
    Socket,
}

impl FileType {
    /// The `S_IFMT` bits of a mode of this type.
    pub fn mode_bits(self) -> u16 {
        match self {
            FileType::Fifo => 0o010000,
            FileType::CharDevice => 0o020000,
            FileType::Directory => 0o040000,
            FileType::BlockDevice => 0o060000,
            FileType::Regular => 0o100000,
            FileType::Symlink => 0o120000,
            FileType::Socket => 0o140000,
        }
    }

    /// The type named by a mode's `S_IFMT` bits, if any.
    pub fn from_mode(mode: u16) -> Option<Self> {
        Some(match mode & 0o170000 {
            0o010000 => FileType::Fifo,
            0o020000 => FileType::CharDevice,
            0o040000 => FileType::Directory,
            0o060000 => FileType::BlockDevice,
            0o100000 => FileType::Regular,
            0o120000 => FileType::Symlink,
            0o140000 => FileType::Socket,
            _ => return None,
        })
    }
}

/// A point in time: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timespec {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub sec: i64,
    /// Nanoseconds, 0..1_000_000_000.
    pub nsec: u32,
}

/// What `stat` shows of an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File type.
    pub kind: FileType,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Storage used, in 512-byte units (`st_blocks`), metadata included as
    /// the kernel counts it.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last data change.
    pub mtime: Timespec,
    /// Last inode change.
    pub ctime: Timespec,
    /// Creation (birth) time.
    pub crtime: Timespec,
    /// Device number of a device file (`st_rdev`), else 0.
    pub rdev: u32,
    /// Preferred I/O size (`st_blksize`): the filesystem block size.
    pub blksize: u32,
}

/// The major and minor numbers of a device number as [`Attr::rdev`] keeps
/// it (the kernel's `new_encode_dev`: minor's low 8 bits, then 12 bits of
/// major, then minor's upper bits), as glibc's `major`/`minor` give them.
pub fn split_rdev(rdev: u32) -> (u32, u32) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    (major, minor)
}

/// One directory entry (never `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name's bytes (no `/`, no NUL, 1..=255 bytes).
    pub name: Vec<u8>,
    /// The inode it names.
    pub ino: Ino,
    /// The type recorded with the entry.
    pub kind: FileType,
}

/// Who asks: decides ext4's root-reserved blocks and XFS's reserve, and
/// the owner of new files. Permission checks are the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cred {
    /// Effective user id (0 is root).
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl Cred {
    /// root:root.
    pub const ROOT: Cred = Cred { uid: 0, gid: 0 };
}

/// Who does a change and when: every changing operation takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// The caller's credentials.
    pub cred: Cred,
    /// The time to stamp on what the operation changes (the caller owns
    /// the clock).
    pub now: Timespec,
}

/// The attributes `setattr` changes; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    /// New permission bits (`mode & 0o7777`).
    pub perm: Option<u16>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend with a hole).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<Timespec>,
    /// New modification time.
    pub mtime: Option<Timespec>,
}

/// What `fallocate(2)` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallocateMode {
    /// Mode 0 (or `FALLOC_FL_KEEP_SIZE` when `keep_size`): allocate
    /// unwritten extents that read as zeros and cost no data writes.
    Allocate {
        /// Leave `i_size` unchanged.
        keep_size: bool,
    },
    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`: free the blocks.
    PunchHole,
}

/// `renameat2` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenameFlags {
    /// `RENAME_NOREPLACE`: fail with `EEXIST` if the target exists.
    pub noreplace: bool,
    /// `RENAME_EXCHANGE`: swap the two entries.
    pub exchange: bool,
}

/// The errno-like kind of a [`NodeError`], for callers that must answer as
/// the kernel would (FUSE replies, coreutils-style messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `ENOENT`.
    NotFound,
    /// `EEXIST`.
    Exists,
    /// `ENOTDIR`.
    NotADirectory,
    /// `EISDIR`.
    IsADirectory,
    /// `ENOTEMPTY`.
    DirectoryNotEmpty,
    /// `ENOSPC`.
    NoSpace,
    /// `ENAMETOOLONG`.
    NameTooLong,
    /// `EMLINK`.
    TooManyLinks,
    /// `EFBIG`.
    FileTooBig,
    /// `EINVAL`.
    InvalidArgument,
    /// `EROFS`.
    ReadOnly,
    /// `EOPNOTSUPP`: a feature ebsim reads but does not write (yet).
    Unsupported,
    /// `EPERM`: not allowed whoever asks (a hard link to a directory).
    NotPermitted,
    /// `EUCLEAN` (the kernel's `EFSCORRUPTED`): the metadata is damaged.
    Corrupt,
    /// `EIO`: the device failed.
    Io,
    /// `EACCES`: the permission bits refuse the caller (path walking and
    /// permission checks above this layer return it).
    PermissionDenied,
    /// `ELOOP`: too many symbolic links followed in one path walk, or a
    /// link where none may be followed.
    TooManySymlinks,
    /// `EXDEV`: a rename or link across two filesystems.
    CrossDevice,
    /// `EBUSY`: a mount point (or a root) cannot be removed or renamed.
    Busy,
}

impl ErrorKind {
    /// The errno the kernel returns for this kind.
    pub fn errno(self) -> i32 {
        use nix::errno::Errno;
        (match self {
            ErrorKind::NotFound => Errno::ENOENT,
            ErrorKind::Exists => Errno::EEXIST,
            ErrorKind::NotADirectory => Errno::ENOTDIR,
            ErrorKind::IsADirectory => Errno::EISDIR,
            ErrorKind::DirectoryNotEmpty => Errno::ENOTEMPTY,
            ErrorKind::NoSpace => Errno::ENOSPC,
            ErrorKind::NameTooLong => Errno::ENAMETOOLONG,
            ErrorKind::TooManyLinks => Errno::EMLINK,
            ErrorKind::FileTooBig => Errno::EFBIG,
            ErrorKind::InvalidArgument => Errno::EINVAL,
            ErrorKind::ReadOnly => Errno::EROFS,
            ErrorKind::Unsupported => Errno::EOPNOTSUPP,
            ErrorKind::NotPermitted => Errno::EPERM,
            ErrorKind::Corrupt => Errno::EUCLEAN,
            ErrorKind::Io => Errno::EIO,
            ErrorKind::PermissionDenied => Errno::EACCES,
            ErrorKind::TooManySymlinks => Errno::ELOOP,
            ErrorKind::CrossDevice => Errno::EXDEV,
            ErrorKind::Busy => Errno::EBUSY,
        }) as i32
    }

    /// The C library's message for the errno ("No space left on device").
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "No such file or directory",
            ErrorKind::Exists => "File exists",
            ErrorKind::NotADirectory => "Not a directory",
            ErrorKind::IsADirectory => "Is a directory",
            ErrorKind::DirectoryNotEmpty => "Directory not empty",
            ErrorKind::NoSpace => "No space left on device",
            ErrorKind::NameTooLong => "File name too long",
            ErrorKind::TooManyLinks => "Too many links",
            ErrorKind::FileTooBig => "File too large",
            ErrorKind::InvalidArgument => "Invalid argument",
            ErrorKind::ReadOnly => "Read-only file system",
            ErrorKind::Unsupported => "Operation not supported",
            ErrorKind::NotPermitted => "Operation not permitted",
            ErrorKind::Corrupt => "Structure needs cleaning",
            ErrorKind::Io => "Input/output error",
            ErrorKind::PermissionDenied => "Permission denied",
            ErrorKind::TooManySymlinks => "Too many levels of symbolic links",
            ErrorKind::CrossDevice => "Invalid cross-device link",
            ErrorKind::Busy => "Device or resource busy",
        }
    }
}

/// Why a file operation failed: its kind, and (for `Unsupported`,
/// `Corrupt` and `Io`) what exactly, in words that name the feature or the
/// structure and where it is.
#[derive(Debug)]
pub struct NodeError {
    kind: ErrorKind,
    detail: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl NodeError {
    /// An error of this kind with nothing more to say.
    pub fn new(kind: ErrorKind) -> Self {
        NodeError { kind, detail: None }
    }

    /// An error of this kind caused by `source` (a corruption, an I/O
    /// failure, the name of an unsupported feature).
    pub fn with(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        NodeError {
            kind,
            detail: Some(source.into()),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno the kernel would return.
    pub fn errno(&self) -> i32 {
        self.kind.errno()
    }
}

impl From<ErrorKind> for NodeError {
    fn from(kind: ErrorKind) -> Self {
        NodeError::new(kind)
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {d}", self.kind.message()),
            None => f.write_str(self.kind.message()),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.detail
            .as_deref()
            .map(|d| d as &(dyn std::error::Error + 'static))
    }
}

/// Result of a file operation.
pub type NodeResult<T> = Result<T, NodeError>;

/// The file operations of a mounted filesystem, by inode number.
///
/// Names are raw bytes of at most 255, without `/` or NUL, never `.` or
/// `..` (callers resolve those); a bad name is `InvalidArgument` (or
/// `NameTooLong`). Changing operations take a [`Ctx`]: who asks and when.
pub trait FileSystem {
    /// The root directory's inode.
    fn root(&self) -> Ino;

    /// What statfs(2) reports now, staged changes included.
    fn statfs(&self) -> NodeResult<super::StatFs>;

    /// The attributes of an inode.
    fn getattr(&self, ino: Ino) -> NodeResult<Attr>;

    /// The entry `name` in directory `dir`.
    fn lookup(&self, dir: Ino, name: &[u8]) -> NodeResult<Attr>;

    /// Every entry of directory `dir` except `.` and `..`, in the order the
    /// kernel's readdir returns them (ext4: by name hash for indexed and
    /// one-block directories, else on-disk order; XFS: on-disk order).
    fn readdir(&self, dir: Ino) -> NodeResult<Vec<DirEntry>>;

    /// Reads from `offset` into `buf`; returns the bytes read (short only at
    /// end of file). Holes and unwritten extents read as zeros.
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> NodeResult<usize>;

    /// A symlink's target.
    fn readlink(&self, ino: Ino) -> NodeResult<Vec<u8>>;

    /// Creates a file that is not a directory or symlink (regular, FIFO,
    /// socket, device with `rdev`) owned by the caller.
    fn mknod(
        &mut self,
        ctx: Ctx,
        dir: Ino,
        name: &[u8],
        kind: FileType,
        perm: u16,
        rdev: u32,
    ) -> NodeResult<Attr>;

    /// Creates a directory owned by the caller.
    fn mkdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8], perm: u16) -> NodeResult<Attr>;

    /// Creates a symlink to `target` (1..=4095 bytes) owned by the caller.
    fn symlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8], target: &[u8]) -> NodeResult<Attr>;

    /// Adds a hard link `newdir/newname` to `ino` (a directory:
    /// `NotPermitted`, as link(2)).
    fn link(&mut self, ctx: Ctx, ino: Ino, newdir: Ino, newname: &[u8]) -> NodeResult<Attr>;

    /// Removes a non-directory entry; the inode is freed with its last link.
    fn unlink(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()>;

    /// Removes an empty directory.
    fn rmdir(&mut self, ctx: Ctx, dir: Ino, name: &[u8]) -> NodeResult<()>;

    /// Renames as `renameat2(2)` does (replacing a target of a compatible
    /// type unless `flags` say otherwise).
    fn rename(
        &mut self,
        ctx: Ctx,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> NodeResult<()>;

    /// Writes `data` at `offset` (extending the file as needed); all-zero
    /// blocks over a hole stay a hole. Returns the bytes written.
    fn write(&mut self, ctx: Ctx, ino: Ino, offset: u64, data: &[u8]) -> NodeResult<usize>;

    /// Preallocates or punches, as `fallocate(2)` with `mode`.
    fn fallocate(
        &mut self,
        ctx: Ctx,
        ino: Ino,
        offset: u64,
        len: u64,
        mode: FallocateMode,
    ) -> NodeResult<()>;

    /// Changes attributes (a size change truncates or extends); stamps
    /// ctime.
    fn setattr(&mut self, ctx: Ctx, ino: Ino, attr: SetAttr) -> NodeResult<Attr>;

    /// Commits every staged change in one crash-safe batch.
    fn sync(&mut self) -> NodeResult<()>;

    /// The byte ranges of a regular file that hold data, as `SEEK_DATA` /
    /// `SEEK_HOLE` report them (holes and unwritten extents excluded),
    /// clipped to its size, in order. Copies use it to stay sparse and to
    /// skip reading gigabytes of zeros. The default claims the whole file
    /// is data (correct, only slower).
    fn data_ranges(&self, ino: Ino) -> NodeResult<Vec<std::ops::Range<u64>>> {
        let size = self.getattr(ino)?.size;
        Ok(std::iter::once(0..size).filter(|r| !r.is_empty()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_bits_round_trip() {
        for t in [
            FileType::Regular,
            FileType::Directory,
            FileType::Symlink,
            FileType::CharDevice,
            FileType::BlockDevice,
            FileType::Fifo,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(t.mode_bits() | 0o644), Some(t));
        }
        assert_eq!(FileType::from_mode(0o644), None);
    }

    #[test]
    fn errors_read_like_strerror() {
        let e = NodeError::with(ErrorKind::Unsupported, "XFS node directories");
        assert_eq!(
            e.to_string(),
            "Operation not supported: XFS node directories"
        );
        assert_eq!(e.errno(), nix::errno::Errno::EOPNOTSUPP as i32);
        assert_eq!(
            NodeError::from(ErrorKind::NoSpace).to_string(),
            "No space left on device"
        );
    }
}
