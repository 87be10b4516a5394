//! Path names inside one filesystem: walking `a/b/../c` to an inode over
//! the [`FileSystem`] trait, as `namei` does on a system where this
//! filesystem is the root (an absolute symlink target starts again at
//! this filesystem's root; `..` of the root is the root).
//!
//! This is the small walk the host-side image commands need; a guest's
//! VFS (a mount table, permissions, crossing mount points) is built above
//! it and may replace it. Names are bytes; `.` and `..` are resolved here
//! and never reach the filesystem. At most [`MAX_SYMLINKS`] symlinks are
//! followed in one walk (Linux's limit), then `ELOOP`.

use super::node::{Attr, ErrorKind, FileSystem, FileType, Ino, NodeError};
use std::collections::VecDeque;
use std::fmt;

/// Symlinks followed in one walk before `ELOOP` (Linux: 40).
pub const MAX_SYMLINKS: u32 = 40;

/// Why a path could not be walked.
#[derive(Debug)]
pub enum PathError {
    /// A lookup, a readlink or a getattr failed (`ENOENT` for a missing
    /// component, `ENOTDIR` when a component is not a directory, ...).
    Node(NodeError),
    /// More than [`MAX_SYMLINKS`] symlinks (`ELOOP`).
    Loop,
}

impl PathError {
    /// The errno the kernel would return.
    pub fn errno(&self) -> i32 {
        match self {
            PathError::Node(e) => e.errno(),
            PathError::Loop => nix::errno::Errno::ELOOP as i32,
        }
    }

    /// The kind, for a node error (`None` for `ELOOP`).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            PathError::Node(e) => Some(e.kind()),
            PathError::Loop => None,
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Node(e) => e.fmt(f),
            PathError::Loop => f.write_str("Too many levels of symbolic links"),
        }
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PathError::Node(e) => Some(e),
            PathError::Loop => None,
        }
    }
}

impl From<NodeError> for PathError {
    fn from(e: NodeError) -> Self {
        PathError::Node(e)
    }
}

impl From<ErrorKind> for PathError {
    fn from(k: ErrorKind) -> Self {
        PathError::Node(NodeError::new(k))
    }
}

/// Where the last component of a path lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The directory holding `name`; when `name` is `None`, the directory
    /// the whole path names (`/`, `.`, `a/..`).
    pub dir: Ino,
    /// The last component, or `None` when the path ends in `/` alone, `.`
    /// or `..`.
    pub name: Option<Vec<u8>>,
    /// The path ends with `/` (the last component must be a directory).
    pub trailing_slash: bool,
}

/// The components of `path`, empty ones dropped.
fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The walk's state: the chain of directories from the root (for `..`)
/// and what is left to walk.
struct Walk<'a, F: FileSystem + ?Sized> {
    fs: &'a F,
    chain: Vec<Ino>,
    todo: VecDeque<Vec<u8>>,
    links: u32,
}

impl<'a, F: FileSystem + ?Sized> Walk<'a, F> {
    fn new(fs: &'a F, path: &[u8]) -> Self {
        Walk {
            fs,
            chain: vec![fs.root()],
            todo: components(path),
            links: 0,
        }
    }

    fn cwd(&self) -> Ino {
        // OK to unwrap: the chain always holds the root.
        self.chain.last().copied().unwrap_or_else(|| self.fs.root())
    }

    /// Applies `.` and `..`; true when `c` was one of them.
    fn dots(&mut self, c: &[u8]) -> bool {
        match c {
            b"." => true,
            b".." => {
                if self.chain.len() > 1 {
                    self.chain.pop();
                }
                true
            }
            _ => false,
        }
    }

    /// Replaces the symlink `attr` by its target's components.
    fn follow(&mut self, attr: &Attr) -> Result<(), PathError> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(PathError::Loop);
        }
        let target = self.fs.readlink(attr.ino)?;
        if target.first() == Some(&b'/') {
            self.chain.truncate(1);
        }
        let mut t = components(&target);
        if target.last() == Some(&b'/') {
            // "dir/" must name a directory: keep that as a `.` after it.
            t.push_back(b".".to_vec());
        }
        while let Some(c) = t.pop_back() {
            self.todo.push_front(c);
        }
        Ok(())
    }

    /// Walks every component but the last, which it returns (dots of the
    /// last component are applied, giving `None`).
    fn walk_to_last(&mut self) -> Result<Option<Vec<u8>>, PathError> {
        loop {
            let Some(c) = self.todo.pop_front() else {
                return Ok(None);
            };
            if self.dots(&c) {
                if self.todo.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            if self.todo.is_empty() {
                return Ok(Some(c));
            }
            self.step(&c)?;
        }
    }

    /// Looks `c` up in the current directory and moves into it, following
    /// a symlink (an intermediate component must be a directory).
    fn step(&mut self, c: &[u8]) -> Result<(), PathError> {
        let a = self.fs.lookup(self.cwd(), c)?;
        match a.kind {
            FileType::Directory => {
                self.chain.push(a.ino);
                Ok(())
            }
            FileType::Symlink => self.follow(&a),
            _ => Err(ErrorKind::NotADirectory.into()),
        }
    }
}

/// Walks `path` (relative paths start at the root too) to the inode it
/// names. A symlink as the last component is followed when `follow` is
/// true (stat), else returned itself (lstat). A path ending in `/` must
/// name a directory (after following).
pub fn lookup<F: FileSystem + ?Sized>(
    fs: &F,
    path: &[u8],
    follow: bool,
) -> Result<Attr, PathError> {
    let trailing = path.last() == Some(&b'/');
    let mut w = Walk::new(fs, path);
    loop {
        match w.walk_to_last()? {
            None => return Ok(fs.getattr(w.cwd())?),
            Some(name) => {
                let a = fs.lookup(w.cwd(), &name)?;
                if a.kind == FileType::Symlink && (follow || trailing) {
                    w.follow(&a)?;
                    continue;
                }
                if trailing && a.kind != FileType::Directory {
                    return Err(ErrorKind::NotADirectory.into());
                }
                return Ok(a);
            }
        }
    }
}

/// Walks all of `path` but its last component: the directory that holds
/// it and its name, for the operations that create, remove or rename an
/// entry. A missing parent is `ENOENT`, a parent that is not a directory
/// `ENOTDIR`.
pub fn parent<F: FileSystem + ?Sized>(fs: &F, path: &[u8]) -> Result<Parent, PathError> {
    let trailing = path.last() == Some(&b'/');
    let mut w = Walk::new(fs, path);
    let name = w.walk_to_last()?;
    Ok(Parent {
        dir: w.cwd(),
        name,
        trailing_slash: trailing,
    })
}

/// Joins a directory path and a name with one `/`.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The last component of a path (`b` of `a/b/`), if any other than `.`,
/// `..` or `/`.
pub fn base_name(path: &[u8]) -> Option<&[u8]> {
    path.split(|&b| b == b'/')
        .rev()
        .find(|c| !c.is_empty())
        .filter(|c| *c != b"." && *c != b"..")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;
    use crate::fs::ext4::files::Ext4Files;
    use crate::fs::ext4::geometry::{GeometryRequest, SizeType};
    use crate::fs::ext4::mkfs;
    use crate::fs::node::{Cred, Ctx, Timespec};

    fn fs() -> Ext4Files<MemDevice> {
        let bytes = 8u64 << 20;
        let opts = mkfs::MkfsOptions {
            geometry: GeometryRequest {
                block_size: 1024,
                blocks: bytes / 1024,
                size_type: SizeType::Small,
                inodes: None,
                inode_ratio: None,
                reserved_ratio: 5.0,
                profile: crate::fs::ext4::geometry::Profile::EXT4,
            },
            uuid: [3; 16],
            hash_seed: [4; 16],
            label: [0; 16],
            now: 1_700_000_000,
            discard: true,
            tunables: Default::default(),
        };
        let mut dev = MemDevice::new(bytes as usize);
        let plan = mkfs::plan(bytes, &opts).unwrap();
        mkfs::apply(&mut dev, &plan).unwrap();
        Ext4Files::open(dev).unwrap()
    }

    const CTX: Ctx = Ctx {
        cred: Cred::ROOT,
        now: Timespec { sec: 1, nsec: 0 },
    };

    /// /a/b/f, /a/up -> .., /abs -> /a/b, /loop -> loop, /f -> a/b/f,
    /// /dirslash -> a/b/
    fn tree() -> (Ext4Files<MemDevice>, Ino, Ino, Ino) {
        let mut fs = fs();
        let r = fs.root();
        let a = fs.mkdir(CTX, r, b"a", 0o755).unwrap().ino;
        let b = fs.mkdir(CTX, a, b"b", 0o755).unwrap().ino;
        let f = fs
            .mknod(CTX, b, b"f", FileType::Regular, 0o644, 0)
            .unwrap()
            .ino;
        fs.symlink(CTX, a, b"up", b"..").unwrap();
        fs.symlink(CTX, r, b"abs", b"/a/b").unwrap();
        fs.symlink(CTX, r, b"loop", b"loop").unwrap();
        fs.symlink(CTX, r, b"f", b"a/b/f").unwrap();
        fs.symlink(CTX, r, b"dirslash", b"a/b/").unwrap();
        (fs, a, b, f)
    }

    #[test]
    fn walks_dots_and_symlinks() {
        let (fs, a, b, f) = tree();
        let r = fs.root();
        let ino = |p: &str, follow| lookup(&fs, p.as_bytes(), follow).map(|a| a.ino);
        assert_eq!(ino("/", true).unwrap(), r);
        assert_eq!(ino("", true).unwrap(), r);
        assert_eq!(ino("/..", true).unwrap(), r);
        assert_eq!(ino("/a/b/f", true).unwrap(), f);
        assert_eq!(ino("a//b/./f", true).unwrap(), f);
        assert_eq!(ino("/a/b/../b/f", true).unwrap(), f);
        assert_eq!(ino("/a/up/a/b", true).unwrap(), b);
        assert_eq!(ino("/abs/f", true).unwrap(), f);
        assert_eq!(ino("/abs/..", true).unwrap(), a, "`..` of the target");
        assert_eq!(ino("/f", true).unwrap(), f);
        assert_ne!(ino("/f", false).unwrap(), f, "lstat: the link itself");
        assert_eq!(ino("/abs/", false).unwrap(), b, "a trailing / follows");
        assert_eq!(ino("/dirslash", true).unwrap(), b);
        let e = |p: &str| lookup(&fs, p.as_bytes(), true).unwrap_err();
        assert_eq!(e("/nope").kind(), Some(ErrorKind::NotFound));
        assert_eq!(e("/a/b/f/x").kind(), Some(ErrorKind::NotADirectory));
        assert_eq!(e("/a/b/f/").kind(), Some(ErrorKind::NotADirectory));
        assert_eq!(e("/f/").kind(), Some(ErrorKind::NotADirectory));
        assert!(matches!(e("/loop"), PathError::Loop));
        assert_eq!(e("/loop").to_string(), "Too many levels of symbolic links");
        assert_eq!(e("/loop").errno(), nix::errno::Errno::ELOOP as i32);
        // lstat of the loop itself works.
        assert!(lookup(&fs, b"/loop", false).is_ok());
    }

    #[test]
    fn parents() {
        let (fs, a, b, _) = tree();
        let r = fs.root();
        let p = parent(&fs, b"/a/b/new").unwrap();
        assert_eq!((p.dir, p.name.as_deref()), (b, Some(&b"new"[..])));
        let p = parent(&fs, b"/abs/new/").unwrap();
        assert_eq!((p.dir, p.name.as_deref()), (b, Some(&b"new"[..])));
        assert!(p.trailing_slash);
        let p = parent(&fs, b"/").unwrap();
        assert_eq!((p.dir, p.name), (r, None));
        let p = parent(&fs, b"/a/b/..").unwrap();
        assert_eq!((p.dir, p.name), (a, None));
        assert_eq!(
            parent(&fs, b"/nope/x").unwrap_err().kind(),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            parent(&fs, b"/a/b/f/x").unwrap_err().kind(),
            Some(ErrorKind::NotADirectory)
        );
    }

    #[test]
    fn names() {
        assert_eq!(join(b"/a", b"b"), b"/a/b");
        assert_eq!(join(b"/", b"b"), b"/b");
        assert_eq!(base_name(b"/a/b/"), Some(&b"b"[..]));
        assert_eq!(base_name(b"/"), None);
        assert_eq!(base_name(b"a/.."), None);
    }
}
