//! Trees between the host and an image's filesystem, and the tree
//! operations of the image commands, with the semantics of coreutils'
//! cp, mkdir and rm:
//!
//! - [`copy_in`] / [`copy_out`]: `cp [-r] [-p] [-a] SRC... DEST`. A
//!   destination that is an existing directory receives each source under
//!   its own name; otherwise it is the new name (one source only).
//!   Without `recursive` a directory is omitted (an error). Recursive
//!   copies copy symlinks as symlinks (cp's `-P`), top-level sources of a
//!   plain copy are followed. FIFOs, sockets and device files are always
//!   recreated as such (cp would read a FIFO's contents). `preserve`
//!   keeps mode, owner and the access and modification times (`-p`);
//!   without it new files get the source's mode minus the umask and the
//!   caller's ownership. `links` keeps hard links (as `-a`). Files stay
//!   sparse both ways: only the data ranges are read (SEEK_DATA), and
//!   all-zero runs are left as holes.
//! - [`make_dir`]: `mkdir [-p] [-m MODE]`; [`remove`]: `rm [-r] [-f]`.
//!
//! Every operation stops at its first error. Into an image nothing is
//! written until the caller's `sync`, so a failed command leaves the image
//! as it was; a copy in may first be run with `dry_run`, which allocates
//! what each file's data will take (unwritten extents over the source's
//! data ranges) without staging any data, so a copy too big for the
//! filesystem is refused before the real one could have synced part of
//! it (the file layer syncs on its own past a bound of staged data).

use super::super::fs::node::{
    Attr, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, Ino, NodeError, SetAttr, Timespec,
};
use super::super::fs::path::{self, PathError};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes read or written at a time.
const CHUNK: usize = 1 << 20;

/// Why an operation failed underneath.
#[derive(Debug)]
pub enum Cause {
    /// The image's file layer.
    Node(NodeError),
    /// Walking a path in the image.
    Path(PathError),
    /// The host.
    Io(std::io::Error),
}

impl Cause {
    /// The errno behind it, if known.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Cause::Node(e) => Some(e.errno()),
            Cause::Path(e) => Some(e.errno()),
            Cause::Io(e) => e.raw_os_error(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Node(e) => e.fmt(f),
            Cause::Path(e) => e.fmt(f),
            // strerror's words, without Rust's "(os error N)".
            Cause::Io(e) => match e.raw_os_error() {
                Some(n) => f.write_str(nix::errno::Errno::from_raw(n).desc()),
                None => e.fmt(f),
            },
        }
    }
}

impl From<NodeError> for Cause {
    fn from(e: NodeError) -> Self {
        Cause::Node(e)
    }
}

impl From<PathError> for Cause {
    fn from(e: PathError) -> Self {
        Cause::Path(e)
    }
}

impl From<std::io::Error> for Cause {
    fn from(e: std::io::Error) -> Self {
        Cause::Io(e)
    }
}

impl From<ErrorKind> for Cause {
    fn from(k: ErrorKind) -> Self {
        Cause::Node(NodeError::new(k))
    }
}

/// What failed, on which path (`IMAGE:/path` or a host path), in cp's,
/// mkdir's and rm's words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// A source or destination could not be looked at.
    #[error("cannot stat '{path}': {cause}")]
    Stat {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A directory given without `recursive`.
    #[error("-r not specified; omitting directory '{0}'")]
    OmitDirectory(String),
    /// Several sources and a destination that is not a directory.
    #[error("target '{0}' is not a directory")]
    TargetNotDirectory(String),
    /// A non-directory would replace a directory.
    #[error("cannot overwrite directory '{0}' with non-directory")]
    OverwriteDirectory(String),
    /// A directory would replace a non-directory.
    #[error("cannot overwrite non-directory '{dest}' with directory '{src}'")]
    OverwriteNonDirectory {
        /// The destination.
        dest: String,
        /// The source.
        src: String,
    },
    /// The destination is a symlink to nothing.
    #[error("not writing through dangling symlink '{0}'")]
    DanglingSymlink(String),
    /// A regular file could not be created or opened.
    #[error("cannot create regular file '{path}': {cause}")]
    CreateFile {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A directory could not be created.
    #[error("cannot create directory '{path}': {cause}")]
    CreateDirectory {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A symlink could not be created.
    #[error("cannot create symbolic link '{path}': {cause}")]
    CreateSymlink {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A FIFO, socket or device file could not be created.
    #[error("cannot create special file '{path}': {cause}")]
    CreateSpecial {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A hard link could not be made.
    #[error("cannot create hard link '{path}' to '{target}': {cause}")]
    Link {
        /// The new name.
        path: String,
        /// What it links to.
        target: String,
        /// Why.
        cause: Cause,
    },
    /// Writing data failed (`No space left on device`).
    #[error("error writing '{path}': {cause}")]
    Write {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// Reading data failed.
    #[error("error reading '{path}': {cause}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// A directory could not be listed.
    #[error("cannot open directory '{path}': {cause}")]
    ReadDir {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// Mode, owner or times could not be set.
    #[error("failed to preserve attributes of '{path}': {cause}")]
    Preserve {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// Something could not be removed.
    #[error("cannot remove '{path}': {cause}")]
    Remove {
        /// The path.
        path: String,
        /// Why.
        cause: Cause,
    },
    /// `rm -r /`.
    #[error("it is dangerous to operate recursively on '{0}'")]
    RemoveRoot(String),
    /// `rm .` or `rm ..`.
    #[error("refusing to remove '.' or '..' directory: skipping '{0}'")]
    RemoveDots(String),
    /// A directory met twice in one walk: the filesystem is damaged.
    #[error("'{0}': directory loop (the filesystem is damaged)")]
    DirectoryLoop(String),
    /// A name with no room in the target (a `/` or NUL).
    #[error("'{0}': name not valid in the image")]
    BadName(String),
}

impl CopyError {
    /// The cause's errno, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CopyError::Stat { cause, .. }
            | CopyError::CreateFile { cause, .. }
            | CopyError::CreateDirectory { cause, .. }
            | CopyError::CreateSymlink { cause, .. }
            | CopyError::CreateSpecial { cause, .. }
            | CopyError::Link { cause, .. }
            | CopyError::Write { cause, .. }
            | CopyError::Read { cause, .. }
            | CopyError::ReadDir { cause, .. }
            | CopyError::Preserve { cause, .. }
            | CopyError::Remove { cause, .. } => cause.errno(),
            _ => None,
        }
    }

    /// True when it is "No space left on device".
    pub fn is_no_space(&self) -> bool {
        self.errno() == Some(nix::errno::Errno::ENOSPC as i32)
    }
}

/// How to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyOptions {
    /// Copy directories and their contents (`-r`).
    pub recursive: bool,
    /// Keep mode, owner and access/modification times (`-p`).
    pub preserve: bool,
    /// Keep hard links between copied files (`-a`).
    pub links: bool,
    /// The umask applied to new files' modes without `preserve`.
    pub umask: u16,
    /// Copy in: allocate each file's data instead of writing it.
    pub dry_run: bool,
}

/// What a copy made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// FIFOs, sockets, devices.
    pub special: u64,
    /// Hard links made to an already copied file.
    pub links: u64,
    /// Bytes of file data (sizes, holes included).
    pub bytes: u64,
}

/// An image's filesystem as the tree operations use it: the file layer,
/// who acts and when, and how messages name it (`IMAGE:` or `IMAGE@N:`).
pub struct ImageFs<'a> {
    /// The file layer.
    pub fs: &'a mut dyn FileSystem,
    /// Who acts, and the time stamped on changes.
    pub ctx: Ctx,
    /// The prefix of paths in messages (`disk.img@1:`).
    pub prefix: String,
}

impl ImageFs<'_> {
    fn show(&self, p: &[u8]) -> String {
        format!("{}{}", self.prefix, String::from_utf8_lossy(p))
    }

    /// The inode at `p` (symlinks followed or not), `None` when absent.
    fn find(&self, p: &[u8], follow: bool) -> Result<Option<Attr>, CopyError> {
        match path::lookup(&*self.fs, p, follow) {
            Ok(a) => Ok(Some(a)),
            Err(e) if e.kind() == Some(ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(CopyError::Stat {
                path: self.show(p),
                cause: e.into(),
            }),
        }
    }

    /// The directory and name where `p` is (to be) created.
    fn place(&self, p: &[u8]) -> Result<(Ino, Vec<u8>), Cause> {
        let at = path::parent(&*self.fs, p)?;
        match at.name {
            Some(n) => Ok((at.dir, n)),
            None => Err(ErrorKind::Exists.into()),
        }
    }
}

fn host_show(p: &Path) -> String {
    p.display().to_string()
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0).min(999_999_999),
    }
}

/// The data ranges of an open host file (SEEK_DATA / SEEK_HOLE).
fn host_ranges(f: &std::fs::File, size: u64) -> Vec<std::ops::Range<u64>> {
    use nix::unistd::{Whence, lseek};
    let Ok(end) = i64::try_from(size) else {
        return std::iter::once(0..size).collect();
    };
    let mut out = Vec::new();
    let mut pos = 0i64;
    while pos < end {
        let d = match lseek(f, pos, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break,
            // No SEEK_DATA here: all of it is data.
            Err(_) => return std::iter::once(0..size).collect(),
        };
        let h = lseek(f, d, Whence::SeekHole).unwrap_or(end).min(end);
        if h > d {
            out.push(d as u64..h as u64);
        }
        pos = h.max(d + 1);
    }
    out
}

fn kind_of(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_fifo() {
        FileType::Fifo
    } else if ft.is_char_device() {
        FileType::CharDevice
    } else if ft.is_block_device() {
        FileType::BlockDevice
    } else if ft.is_socket() {
        FileType::Socket
    } else {
        FileType::Regular
    }
}

/// The last component of a host path (`.`/`..`/`/` have none).
fn host_base(p: &Path) -> Option<Vec<u8>> {
    path::base_name(p.as_os_str().as_bytes()).map(<[u8]>::to_vec)
}

/// The state of one copy into an image.
struct In<'a, 'b> {
    img: &'a mut ImageFs<'b>,
    opts: CopyOptions,
    stats: Stats,
    /// Host (dev, ino) of a multiply linked file → its copy's inode.
    linked: HashMap<(u64, u64), Ino>,
    buf: Vec<u8>,
}

/// Copies host `sources` to `dest` in the image, as `cp` would (see the
/// module documentation).
pub fn copy_in(
    img: &mut ImageFs<'_>,
    sources: &[PathBuf],
    dest: &[u8],
    opts: CopyOptions,
) -> Result<Stats, CopyError> {
    let dest_attr = img.find(dest, true)?;
    let dest_is_dir = dest_attr
        .as_ref()
        .is_some_and(|a| a.kind == FileType::Directory);
    if sources.len() > 1 && !dest_is_dir {
        return Err(CopyError::TargetNotDirectory(img.show(dest)));
    }
    let mut st = In {
        img,
        opts,
        stats: Stats::default(),
        linked: HashMap::new(),
        buf: Vec::new(),
    };
    for src in sources {
        let meta = if opts.recursive {
            std::fs::symlink_metadata(src)
        } else {
            std::fs::metadata(src)
        }
        .map_err(|e| CopyError::Stat {
            path: host_show(src),
            cause: e.into(),
        })?;
        if meta.is_dir() && !opts.recursive {
            return Err(CopyError::OmitDirectory(host_show(src)));
        }
        if !dest_is_dir && !meta.is_dir() && dest.last() == Some(&b'/') {
            return Err(CopyError::CreateFile {
                path: st.img.show(dest),
                cause: ErrorKind::NotADirectory.into(),
            });
        }
        let target = if dest_is_dir {
            let Some(name) = host_base(src) else {
                return Err(CopyError::BadName(host_show(src)));
            };
            path::join(dest, &name)
        } else {
            dest.to_vec()
        };
        st.node(src, &meta, &target)?;
    }
    Ok(st.stats)
}

impl In<'_, '_> {
    fn perm(&self, mode: u32) -> u16 {
        let p = (mode & 0o7777) as u16;
        if self.opts.preserve {
            p
        } else {
            p & !self.opts.umask
        }
    }

    fn node(
        &mut self,
        src: &Path,
        meta: &std::fs::Metadata,
        target: &[u8],
    ) -> Result<(), CopyError> {
        let kind = kind_of(meta.file_type());
        let show = self.img.show(target);
        let existing = self.img.find(target, false)?;
        if kind != FileType::Directory && self.opts.links && meta.nlink() > 1 {
            if let Some(&ino) = self.linked.get(&(meta.dev(), meta.ino())) {
                return self.hard_link(ino, src, target, existing.as_ref());
            }
        }
        let ino = match kind {
            FileType::Directory => self.directory(src, meta, target, existing)?,
            FileType::Regular => self.file(src, meta, target, existing)?,
            FileType::Symlink => self.symlink(src, target, existing)?,
            _ => self.special(meta, kind, target, existing)?,
        };
        if kind != FileType::Directory && self.opts.links && meta.nlink() > 1 {
            self.linked.insert((meta.dev(), meta.ino()), ino);
        }
        if self.opts.preserve {
            let set = SetAttr {
                perm: (kind != FileType::Symlink).then_some((meta.mode() & 0o7777) as u16),
                uid: Some(meta.uid()),
                gid: Some(meta.gid()),
                size: None,
                atime: Some(ts(meta.atime(), meta.atime_nsec())),
                mtime: Some(ts(meta.mtime(), meta.mtime_nsec())),
            };
            let ctx = self.img.ctx;
            self.img
                .fs
                .setattr(ctx, ino, set)
                .map_err(|e| CopyError::Preserve {
                    path: show,
                    cause: e.into(),
                })?;
        }
        Ok(())
    }

    /// Removes a non-directory that a symlink or special file replaces.
    fn clear(&mut self, target: &[u8], existing: Option<&Attr>) -> Result<(), CopyError> {
        let Some(a) = existing else { return Ok(()) };
        let show = self.img.show(target);
        if a.kind == FileType::Directory {
            return Err(CopyError::OverwriteDirectory(show));
        }
        let ctx = self.img.ctx;
        let (dir, name) = self.img.place(target).map_err(|cause| CopyError::Remove {
            path: show.clone(),
            cause,
        })?;
        self.img
            .fs
            .unlink(ctx, dir, &name)
            .map_err(|e| CopyError::Remove {
                path: show,
                cause: e.into(),
            })
    }

    fn hard_link(
        &mut self,
        ino: Ino,
        src: &Path,
        target: &[u8],
        existing: Option<&Attr>,
    ) -> Result<(), CopyError> {
        if existing.is_some_and(|a| a.ino == ino) {
            return Ok(());
        }
        self.clear(target, existing)?;
        let show = self.img.show(target);
        let err = |cause: Cause| CopyError::Link {
            path: show.clone(),
            target: host_show(src),
            cause,
        };
        let (dir, name) = self.img.place(target).map_err(err)?;
        let ctx = self.img.ctx;
        self.img
            .fs
            .link(ctx, ino, dir, &name)
            .map_err(|e| err(e.into()))?;
        self.stats.links += 1;
        Ok(())
    }

    fn directory(
        &mut self,
        src: &Path,
        meta: &std::fs::Metadata,
        target: &[u8],
        existing: Option<Attr>,
    ) -> Result<Ino, CopyError> {
        let show = self.img.show(target);
        let ino = match existing {
            Some(a) if a.kind == FileType::Directory => a.ino,
            Some(a) if a.kind == FileType::Symlink => match self.img.find(target, true)? {
                Some(d) if d.kind == FileType::Directory => d.ino,
                _ => {
                    return Err(CopyError::OverwriteNonDirectory {
                        dest: show,
                        src: host_show(src),
                    });
                }
            },
            Some(_) => {
                return Err(CopyError::OverwriteNonDirectory {
                    dest: show,
                    src: host_show(src),
                });
            }
            None => {
                let err = |cause: Cause| CopyError::CreateDirectory {
                    path: show.clone(),
                    cause,
                };
                let (dir, name) = self.img.place(target).map_err(err)?;
                let ctx = self.img.ctx;
                let perm = self.perm(meta.mode());
                self.stats.dirs += 1;
                self.img
                    .fs
                    .mkdir(ctx, dir, &name, perm)
                    .map_err(|e| err(e.into()))?
                    .ino
            }
        };
        let mut entries: Vec<(OsString, PathBuf)> = std::fs::read_dir(src)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| (e.file_name(), e.path())))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| CopyError::ReadDir {
                path: host_show(src),
                cause: e.into(),
            })?;
        entries.sort();
        for (name, child) in entries {
            let m = std::fs::symlink_metadata(&child).map_err(|e| CopyError::Stat {
                path: host_show(&child),
                cause: e.into(),
            })?;
            let t = path::join(target, name.as_bytes());
            self.node(&child, &m, &t)?;
        }
        Ok(ino)
    }

    fn file(
        &mut self,
        src: &Path,
        meta: &std::fs::Metadata,
        target: &[u8],
        existing: Option<Attr>,
    ) -> Result<Ino, CopyError> {
        let show = self.img.show(target);
        let ctx = self.img.ctx;
        let create_err = |cause: Cause| CopyError::CreateFile {
            path: show.clone(),
            cause,
        };
        let host = std::fs::File::open(src).map_err(|e| CopyError::Read {
            path: host_show(src),
            cause: e.into(),
        })?;
        let size = host
            .metadata()
            .map_err(|e| CopyError::Stat {
                path: host_show(src),
                cause: e.into(),
            })?
            .len();
        let existing = match existing {
            Some(a) if a.kind == FileType::Symlink => match self.img.find(target, true)? {
                Some(t) => Some(t),
                None => return Err(CopyError::DanglingSymlink(show)),
            },
            e => e,
        };
        let ino = match existing {
            Some(a) if a.kind == FileType::Directory => {
                return Err(CopyError::OverwriteDirectory(show));
            }
            Some(a) if a.kind == FileType::Regular => {
                let zero = SetAttr {
                    size: Some(0),
                    ..SetAttr::default()
                };
                self.img
                    .fs
                    .setattr(ctx, a.ino, zero)
                    .map_err(|e| create_err(e.into()))?;
                a.ino
            }
            Some(_) => {
                // A FIFO or device: cp would open it; replace it instead.
                self.clear(target, existing.as_ref())?;
                self.new_file(target, meta, &create_err)?
            }
            None => self.new_file(target, meta, &create_err)?,
        };
        self.stats.files += 1;
        self.stats.bytes += size;
        let write_err = |cause: Cause| CopyError::Write {
            path: show.clone(),
            cause,
        };
        let ranges = host_ranges(&host, size);
        if self.opts.dry_run {
            for r in &ranges {
                self.img
                    .fs
                    .fallocate(
                        ctx,
                        ino,
                        r.start,
                        r.end - r.start,
                        FallocateMode::Allocate { keep_size: true },
                    )
                    .map_err(|e| write_err(e.into()))?;
            }
        } else {
            if self.buf.len() < CHUNK {
                self.buf = vec![0u8; CHUNK];
            }
            for r in &ranges {
                let mut off = r.start;
                while off < r.end {
                    let n = usize::try_from(r.end - off).unwrap_or(CHUNK).min(CHUNK);
                    let got =
                        read_full(&host, &mut self.buf[..n], off).map_err(|e| CopyError::Read {
                            path: host_show(src),
                            cause: e.into(),
                        })?;
                    if got == 0 {
                        break;
                    }
                    let chunk = &self.buf[..got];
                    if chunk.iter().any(|&b| b != 0) {
                        let mut done = 0;
                        while done < got {
                            let w = self
                                .img
                                .fs
                                .write(ctx, ino, off + done as u64, &chunk[done..])
                                .map_err(|e| write_err(e.into()))?;
                            if w == 0 {
                                return Err(write_err(ErrorKind::NoSpace.into()));
                            }
                            done += w;
                        }
                    }
                    off += got as u64;
                }
            }
        }
        let now = self.img.fs.getattr(ino).map_err(|e| write_err(e.into()))?;
        if now.size != size {
            let set = SetAttr {
                size: Some(size),
                ..SetAttr::default()
            };
            self.img
                .fs
                .setattr(ctx, ino, set)
                .map_err(|e| write_err(e.into()))?;
        }
        Ok(ino)
    }

    fn new_file(
        &mut self,
        target: &[u8],
        meta: &std::fs::Metadata,
        err: &dyn Fn(Cause) -> CopyError,
    ) -> Result<Ino, CopyError> {
        let (dir, name) = self.img.place(target).map_err(err)?;
        let ctx = self.img.ctx;
        let perm = self.perm(meta.mode());
        Ok(self
            .img
            .fs
            .mknod(ctx, dir, &name, FileType::Regular, perm, 0)
            .map_err(|e| err(e.into()))?
            .ino)
    }

    fn symlink(
        &mut self,
        src: &Path,
        target: &[u8],
        existing: Option<Attr>,
    ) -> Result<Ino, CopyError> {
        let show = self.img.show(target);
        let to = std::fs::read_link(src).map_err(|e| CopyError::Read {
            path: host_show(src),
            cause: e.into(),
        })?;
        self.clear(target, existing.as_ref())?;
        let err = |cause: Cause| CopyError::CreateSymlink {
            path: show.clone(),
            cause,
        };
        let (dir, name) = self.img.place(target).map_err(err)?;
        let ctx = self.img.ctx;
        self.stats.symlinks += 1;
        Ok(self
            .img
            .fs
            .symlink(ctx, dir, &name, to.as_os_str().as_bytes())
            .map_err(|e| err(e.into()))?
            .ino)
    }

    fn special(
        &mut self,
        meta: &std::fs::Metadata,
        kind: FileType,
        target: &[u8],
        existing: Option<Attr>,
    ) -> Result<Ino, CopyError> {
        let show = self.img.show(target);
        self.clear(target, existing.as_ref())?;
        let err = |cause: Cause| CopyError::CreateSpecial {
            path: show.clone(),
            cause,
        };
        let (dir, name) = self.img.place(target).map_err(err)?;
        let ctx = self.img.ctx;
        let perm = self.perm(meta.mode());
        let rdev =
            u32::try_from(meta.rdev()).map_err(|_| err(ErrorKind::InvalidArgument.into()))?;
        self.stats.special += 1;
        Ok(self
            .img
            .fs
            .mknod(ctx, dir, &name, kind, perm, rdev)
            .map_err(|e| err(e.into()))?
            .ino)
    }
}

/// Reads as much of `buf` as the file holds from `off`.
fn read_full(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The state of one copy out of an image.
struct Out<'a> {
    fs: &'a dyn FileSystem,
    prefix: &'a str,
    opts: CopyOptions,
    stats: Stats,
    linked: HashMap<Ino, PathBuf>,
    seen: HashSet<Ino>,
    buf: Vec<u8>,
}

/// Copies `sources` (paths in the image `fs`, named in messages with
/// `prefix`) to host `dest`, as `cp` would (see the module documentation).
/// Ownership is kept with `preserve` when the process may chown (root);
/// otherwise, as cp -p does, silently not.
pub fn copy_out(
    fs: &dyn FileSystem,
    prefix: &str,
    sources: &[Vec<u8>],
    dest: &Path,
    opts: CopyOptions,
) -> Result<Stats, CopyError> {
    let dest_is_dir = std::fs::metadata(dest).is_ok_and(|m| m.is_dir());
    if sources.len() > 1 && !dest_is_dir {
        return Err(CopyError::TargetNotDirectory(host_show(dest)));
    }
    let mut st = Out {
        fs,
        prefix,
        opts,
        stats: Stats::default(),
        linked: HashMap::new(),
        seen: HashSet::new(),
        buf: Vec::new(),
    };
    for src in sources {
        let a = path::lookup(fs, src, !opts.recursive).map_err(|e| CopyError::Stat {
            path: st.show(src),
            cause: e.into(),
        })?;
        if a.kind == FileType::Directory && !opts.recursive {
            return Err(CopyError::OmitDirectory(st.show(src)));
        }
        let target = if dest_is_dir {
            let Some(name) = path::base_name(src) else {
                return Err(CopyError::BadName(st.show(src)));
            };
            dest.join(OsStr::from_bytes(name))
        } else {
            dest.to_path_buf()
        };
        st.node(src, &a, &target)?;
    }
    Ok(st.stats)
}

impl Out<'_> {
    fn show(&self, p: &[u8]) -> String {
        format!("{}{}", self.prefix, String::from_utf8_lossy(p))
    }

    fn mode(&self, perm: u16) -> u32 {
        u32::from(if self.opts.preserve {
            perm
        } else {
            perm & !self.opts.umask
        })
    }

    fn node(&mut self, src: &[u8], a: &Attr, target: &Path) -> Result<(), CopyError> {
        let show = host_show(target);
        let existing = std::fs::symlink_metadata(target).ok();
        if a.kind != FileType::Directory && self.opts.links && a.nlink > 1 {
            if let Some(first) = self.linked.get(&a.ino).cloned() {
                if let Some(m) = &existing {
                    if m.is_dir() {
                        return Err(CopyError::OverwriteDirectory(show));
                    }
                    std::fs::remove_file(target).map_err(|e| CopyError::Remove {
                        path: show.clone(),
                        cause: e.into(),
                    })?;
                }
                std::fs::hard_link(&first, target).map_err(|e| CopyError::Link {
                    path: show,
                    target: host_show(&first),
                    cause: e.into(),
                })?;
                self.stats.links += 1;
                return Ok(());
            }
        }
        match a.kind {
            FileType::Directory => self.directory(src, a, target, existing)?,
            FileType::Regular => self.file(src, a, target, existing)?,
            FileType::Symlink => {
                self.clear(target, existing.as_ref())?;
                let to = self.fs.readlink(a.ino).map_err(|e| CopyError::Read {
                    path: self.show(src),
                    cause: e.into(),
                })?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&to), target).map_err(|e| {
                    CopyError::CreateSymlink {
                        path: show.clone(),
                        cause: e.into(),
                    }
                })?;
                self.stats.symlinks += 1;
            }
            kind => {
                self.clear(target, existing.as_ref())?;
                use nix::sys::stat::{Mode, SFlag, mknod};
                let t = match kind {
                    FileType::Fifo => SFlag::S_IFIFO,
                    FileType::CharDevice => SFlag::S_IFCHR,
                    FileType::BlockDevice => SFlag::S_IFBLK,
                    _ => SFlag::S_IFSOCK,
                };
                mknod(
                    target,
                    t,
                    Mode::from_bits_truncate(self.mode(a.perm)),
                    u64::from(a.rdev),
                )
                .map_err(|e| CopyError::CreateSpecial {
                    path: show.clone(),
                    cause: std::io::Error::from(e).into(),
                })?;
                self.stats.special += 1;
            }
        }
        if a.kind != FileType::Directory && self.opts.links && a.nlink > 1 {
            self.linked.insert(a.ino, target.to_path_buf());
        }
        if self.opts.preserve {
            self.preserve(a, target)
                .map_err(|cause| CopyError::Preserve { path: show, cause })?;
        }
        Ok(())
    }

    fn preserve(&self, a: &Attr, target: &Path) -> Result<(), Cause> {
        use nix::fcntl::{AT_FDCWD, AtFlags};
        use nix::sys::stat::{FchmodatFlags, Mode, UtimensatFlags, fchmodat, utimensat};
        use nix::sys::time::TimeSpec;
        use nix::unistd::{Gid, Uid, fchownat};
        let link = a.kind == FileType::Symlink;
        match fchownat(
            AT_FDCWD,
            target,
            Some(Uid::from_raw(a.uid)),
            Some(Gid::from_raw(a.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => {}
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
        if !link {
            fchmodat(
                AT_FDCWD,
                target,
                Mode::from_bits_truncate(u32::from(a.perm)),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(std::io::Error::from)?;
        }
        let t = |t: Timespec| TimeSpec::new(t.sec, i64::from(t.nsec));
        utimensat(
            AT_FDCWD,
            target,
            &t(a.atime),
            &t(a.mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(std::io::Error::from)?;
        Ok(())
    }

    fn clear(&self, target: &Path, existing: Option<&std::fs::Metadata>) -> Result<(), CopyError> {
        let Some(m) = existing else { return Ok(()) };
        if m.is_dir() {
            return Err(CopyError::OverwriteDirectory(host_show(target)));
        }
        std::fs::remove_file(target).map_err(|e| CopyError::Remove {
            path: host_show(target),
            cause: e.into(),
        })
    }

    fn directory(
        &mut self,
        src: &[u8],
        a: &Attr,
        target: &Path,
        existing: Option<std::fs::Metadata>,
    ) -> Result<(), CopyError> {
        if !self.seen.insert(a.ino) {
            return Err(CopyError::DirectoryLoop(self.show(src)));
        }
        match existing {
            Some(m) if m.is_dir() => {}
            Some(m) if m.file_type().is_symlink() && target.is_dir() => {}
            Some(_) => {
                return Err(CopyError::OverwriteNonDirectory {
                    dest: host_show(target),
                    src: self.show(src),
                });
            }
            None => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(self.mode(a.perm) | 0o700)
                    .create(target)
                    .map_err(|e| CopyError::CreateDirectory {
                        path: host_show(target),
                        cause: e.into(),
                    })?;
                if !self.opts.preserve && self.mode(a.perm) & 0o700 != 0o700 {
                    // Opened up to fill it; now as cp leaves it.
                    std::fs::set_permissions(
                        target,
                        std::os::unix::fs::PermissionsExt::from_mode(self.mode(a.perm)),
                    )
                    .map_err(|e| CopyError::Preserve {
                        path: host_show(target),
                        cause: e.into(),
                    })?;
                }
                self.stats.dirs += 1;
            }
        }
        let mut entries = self.fs.readdir(a.ino).map_err(|e| CopyError::ReadDir {
            path: self.show(src),
            cause: e.into(),
        })?;
        entries.sort_by(|x, y| x.name.cmp(&y.name));
        for e in entries {
            let child_src = path::join(src, &e.name);
            let attr = self.fs.getattr(e.ino).map_err(|x| CopyError::Stat {
                path: self.show(&child_src),
                cause: x.into(),
            })?;
            let child = target.join(OsStr::from_bytes(&e.name));
            self.node(&child_src, &attr, &child)?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        src: &[u8],
        a: &Attr,
        target: &Path,
        existing: Option<std::fs::Metadata>,
    ) -> Result<(), CopyError> {
        use std::os::unix::fs::OpenOptionsExt;
        let show = host_show(target);
        if let Some(m) = &existing {
            if m.is_dir() {
                return Err(CopyError::OverwriteDirectory(show));
            }
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(self.mode(a.perm))
            .open(target)
            .map_err(|e| CopyError::CreateFile {
                path: show.clone(),
                cause: e.into(),
            })?;
        let write_err = |e: std::io::Error| CopyError::Write {
            path: show.clone(),
            cause: e.into(),
        };
        let ranges = self.fs.data_ranges(a.ino).map_err(|e| CopyError::Read {
            path: self.show(src),
            cause: e.into(),
        })?;
        if self.buf.len() < CHUNK {
            self.buf = vec![0u8; CHUNK];
        }
        for r in ranges {
            let mut off = r.start;
            while off < r.end.min(a.size) {
                let n = usize::try_from(r.end - off).unwrap_or(CHUNK).min(CHUNK);
                let got =
                    self.fs
                        .read(a.ino, off, &mut self.buf[..n])
                        .map_err(|e| CopyError::Read {
                            path: self.show(src),
                            cause: e.into(),
                        })?;
                if got == 0 {
                    break;
                }
                let chunk = &self.buf[..got];
                if chunk.iter().any(|&b| b != 0) {
                    f.write_all_at(chunk, off).map_err(write_err)?;
                }
                off += got as u64;
            }
        }
        f.set_len(a.size).map_err(write_err)?;
        self.stats.files += 1;
        self.stats.bytes += a.size;
        Ok(())
    }
}

/// `mkdir [-p] PATH` in the image: `perm` for the directory made (its
/// exact bits); with `parents`, missing parents are made with
/// `parent_perm` and an existing directory is not an error.
pub fn make_dir(
    img: &mut ImageFs<'_>,
    p: &[u8],
    parents: bool,
    perm: u16,
    parent_perm: u16,
) -> Result<Stats, CopyError> {
    let mut stats = Stats::default();
    let ctx = img.ctx;
    let show = img.show(p);
    if parents {
        // Each prefix in turn, as mkdir -p does.
        let mut prefix: Vec<u8> = if p.first() == Some(&b'/') {
            b"/".to_vec()
        } else {
            Vec::new()
        };
        let comps: Vec<&[u8]> = p.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            prefix = if prefix.is_empty() {
                c.to_vec()
            } else {
                path::join(&prefix, c)
            };
            let last = i + 1 == comps.len();
            match img.find(&prefix, true)? {
                Some(a) if a.kind == FileType::Directory => continue,
                Some(_) => {
                    return Err(CopyError::CreateDirectory {
                        path: img.show(&prefix),
                        cause: if last {
                            ErrorKind::Exists.into()
                        } else {
                            ErrorKind::NotADirectory.into()
                        },
                    });
                }
                None => {}
            }
            let shown = img.show(&prefix);
            let err = |cause: Cause| CopyError::CreateDirectory {
                path: shown.clone(),
                cause,
            };
            let (dir, name) = img.place(&prefix).map_err(err)?;
            let bits = if last { perm } else { parent_perm };
            img.fs
                .mkdir(ctx, dir, &name, bits)
                .map_err(|e| err(e.into()))?;
            stats.dirs += 1;
        }
        return Ok(stats);
    }
    let err = |cause: Cause| CopyError::CreateDirectory {
        path: show.clone(),
        cause,
    };
    let (dir, name) = img.place(p).map_err(err)?;
    img.fs
        .mkdir(ctx, dir, &name, perm)
        .map_err(|e| err(e.into()))?;
    stats.dirs += 1;
    Ok(stats)
}

/// `rm [-r] [-f] PATH` in the image: a symlink is removed, not followed;
/// a directory needs `recursive`; with `force` a missing path is not an
/// error.
pub fn remove(
    img: &mut ImageFs<'_>,
    p: &[u8],
    recursive: bool,
    force: bool,
) -> Result<Stats, CopyError> {
    let show = img.show(p);
    let mut stats = Stats::default();
    let at = match path::parent(&*img.fs, p) {
        Ok(at) => at,
        Err(e) if force && e.kind() == Some(ErrorKind::NotFound) => return Ok(stats),
        Err(e) => {
            return Err(CopyError::Remove {
                path: show,
                cause: e.into(),
            });
        }
    };
    let Some(name) = at.name else {
        let last = p.split(|&b| b == b'/').rev().find(|c| !c.is_empty());
        return Err(match last {
            Some(b".") | Some(b"..") => CopyError::RemoveDots(show),
            _ => CopyError::RemoveRoot(show),
        });
    };
    let a = match img.fs.lookup(at.dir, &name) {
        Ok(a) => a,
        Err(e) if force && e.kind() == ErrorKind::NotFound => return Ok(stats),
        Err(e) => {
            return Err(CopyError::Remove {
                path: show,
                cause: e.into(),
            });
        }
    };
    let ctx = img.ctx;
    if a.kind == FileType::Directory {
        if !recursive {
            return Err(CopyError::Remove {
                path: show,
                cause: ErrorKind::IsADirectory.into(),
            });
        }
        let mut seen = HashSet::new();
        empty_dir(img, p, a.ino, &mut seen, &mut stats)?;
        img.fs
            .rmdir(ctx, at.dir, &name)
            .map_err(|e| CopyError::Remove {
                path: show,
                cause: e.into(),
            })?;
        stats.dirs += 1;
    } else {
        if at.trailing_slash {
            return Err(CopyError::Remove {
                path: show,
                cause: ErrorKind::NotADirectory.into(),
            });
        }
        img.fs
            .unlink(ctx, at.dir, &name)
            .map_err(|e| CopyError::Remove {
                path: show,
                cause: e.into(),
            })?;
        count(&mut stats, a.kind);
    }
    Ok(stats)
}

fn count(stats: &mut Stats, kind: FileType) {
    match kind {
        FileType::Regular => stats.files += 1,
        FileType::Directory => stats.dirs += 1,
        FileType::Symlink => stats.symlinks += 1,
        _ => stats.special += 1,
    }
}

/// Removes everything inside directory `dir` (at `p`).
fn empty_dir(
    img: &mut ImageFs<'_>,
    p: &[u8],
    dir: Ino,
    seen: &mut HashSet<Ino>,
    stats: &mut Stats,
) -> Result<(), CopyError> {
    if !seen.insert(dir) {
        return Err(CopyError::DirectoryLoop(img.show(p)));
    }
    let ctx = img.ctx;
    let entries = img.fs.readdir(dir).map_err(|e| CopyError::ReadDir {
        path: img.show(p),
        cause: e.into(),
    })?;
    for e in entries {
        let child = path::join(p, &e.name);
        let shown = img.show(&child);
        let rm_err = |e: NodeError| CopyError::Remove {
            path: shown.clone(),
            cause: e.into(),
        };
        if e.kind == FileType::Directory {
            empty_dir(img, &child, e.ino, seen, stats)?;
            img.fs.rmdir(ctx, dir, &e.name).map_err(rm_err)?;
            stats.dirs += 1;
        } else {
            img.fs.unlink(ctx, dir, &e.name).map_err(rm_err)?;
            count(stats, e.kind);
        }
    }
    Ok(())
}

/// The total size of the regular files under host `sources` (symlinks
/// not followed below the top), for deciding whether a dry run is worth
/// it. Unreadable entries count as nothing (the copy reports them).
pub fn host_bytes(sources: &[PathBuf], recursive: bool) -> u64 {
    let mut total = 0u64;
    let mut stack: Vec<(PathBuf, bool)> = sources.iter().map(|s| (s.clone(), true)).collect();
    let mut seen = HashSet::new();
    while let Some((p, top)) = stack.pop() {
        let m = if top && !recursive {
            std::fs::metadata(&p)
        } else {
            std::fs::symlink_metadata(&p)
        };
        let Ok(m) = m else { continue };
        if m.is_file() {
            total = total.saturating_add(m.len());
        } else if m.is_dir() && recursive && seen.insert((m.dev(), m.ino())) {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| (e.path(), false)));
            }
        }
    }
    total
}

/// Turns a host argument into a path (bytes kept).
pub fn host_path(arg: &OsStr) -> PathBuf {
    PathBuf::from(OsString::from_vec(arg.as_bytes().to_vec()))
}
