//! Path walking as Linux's `namei` does it, over the mount table.
//!
//! A walk keeps the chain of directories from the root to where it is
//! (each with its name), so `..` is the physical parent (the directory a
//! mount point is in, when leaving a mounted filesystem's root) and the
//! chain's names are the physical path that mount targets are matched
//! against. Before each component the current inode must be a directory
//! (`ENOTDIR`) the caller may search (`EACCES`). A symlink's target
//! replaces it in the walk (from the root when absolute), at most
//! [`MAX_SYMLINKS`] per walk (`ELOOP`); an empty target is `ENOENT`.

use super::perm::{Want, permitted};
use super::{Loc, VIRTUAL, Vfs, virtual_ino};
use crate::fs::node::{Attr, ErrorKind, FileType, NodeError, NodeResult};
use std::collections::VecDeque;

/// Symlinks followed in one walk before `ELOOP` (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// One step of a walked path: a name and the inode it led to.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The component's name (empty for the root).
    pub name: Vec<u8>,
    /// The inode.
    pub loc: Loc,
    /// Its attributes when it was walked.
    pub attr: Attr,
}

/// A path's last component, as `filename_parentat` classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// A name.
    Name(Vec<u8>),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The path is `/` (or only slashes, dots and dot-dots that end there).
    Root,
}

/// A walk up to the parent of the last component.
#[derive(Debug, Clone)]
pub struct Parent {
    /// The chain from the root to the parent directory (its last frame).
    pub frames: Vec<Frame>,
    /// The last component.
    pub last: Last,
    /// The path ended with `/`.
    pub trailing_slash: bool,
}

impl Parent {
    /// The parent directory.
    pub fn dir(&self) -> &Frame {
        // OK to unwrap: a chain always holds the root frame.
        #[allow(clippy::unwrap_used)]
        self.frames.last().unwrap()
    }
}

fn err(k: ErrorKind) -> NodeError {
    NodeError::new(k)
}

/// The non-empty components of `path`.
fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The physical path of a chain (`/`, `/var/lib`).
pub fn path_of(frames: &[Frame]) -> Vec<u8> {
    let mut p = Vec::new();
    for f in frames.iter().skip(1) {
        p.push(b'/');
        p.extend_from_slice(&f.name);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

/// `dir` joined with `name`.
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Vfs {
    /// The device mounted last on `path` (a physical path), if any.
    pub(crate) fn mount_on(&self, path: &[u8]) -> Option<usize> {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.target.as_bytes() == path)
            .map(|m| m.device)
    }

    /// True when something is mounted on `dir`/`name`.
    pub(crate) fn is_mount_point(&self, frames: &[Frame], name: &[u8]) -> bool {
        self.mount_on(&join(&path_of(frames), name)).is_some()
    }

    /// The frame of a device's root.
    fn root_of(&mut self, dev: usize, name: Vec<u8>) -> NodeResult<Frame> {
        let fs = self.fs(dev)?;
        let ino = fs.root();
        let attr = fs.getattr(ino)?;
        Ok(Frame {
            name,
            loc: Loc { dev, ino },
            attr,
        })
    }

    /// The chain holding only the root of the root mount.
    pub(crate) fn root_chain(&mut self) -> NodeResult<Vec<Frame>> {
        let dev = self
            .mount_on(b"/")
            .ok_or_else(|| NodeError::with(ErrorKind::NotFound, "nothing is mounted on /"))?;
        Ok(vec![self.root_of(dev, Vec::new())?])
    }

    /// Where a walk of `path` starts: the root, or the working directory.
    pub(crate) fn start(&mut self, path: &[u8]) -> NodeResult<Vec<Frame>> {
        let root = self.root_chain()?;
        if path.starts_with(b"/") {
            return Ok(root);
        }
        let cwd = self.cwd.clone();
        let mut frames = root;
        let mut q = components(&cwd);
        let mut links = 0;
        self.run(&mut frames, &mut q, &mut links, false, true)?;
        if frames
            .last()
            .is_some_and(|f| f.attr.kind != FileType::Directory)
        {
            return Err(err(ErrorKind::NotADirectory));
        }
        Ok(frames)
    }

    /// Looks `name` up in the directory at the end of `frames`, crossing
    /// into a filesystem mounted there. `Ok(None)`: no such entry.
    pub(crate) fn child(&mut self, frames: &[Frame], name: &[u8]) -> NodeResult<Option<Frame>> {
        let Some(dir) = frames.last() else {
            return Err(err(ErrorKind::NotFound));
        };
        let path = join(&path_of(frames), name);
        if let Some(dev) = self.mount_on(&path) {
            return self.root_of(dev, name.to_vec()).map(Some);
        }
        let loc = dir.loc;
        let found = if loc.dev == VIRTUAL {
            None
        } else {
            match self.fs(loc.dev)?.lookup(loc.ino, name) {
                Ok(attr) => Some(attr),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        };
        match found {
            Some(attr) => Ok(Some(Frame {
                name: name.to_vec(),
                loc: Loc {
                    dev: loc.dev,
                    ino: attr.ino,
                },
                attr,
            })),
            // A directory leading to a mount point that the filesystem
            // below does not have.
            None if !self.mount_children(&path).is_empty() => {
                let ino = virtual_ino(&path);
                Ok(Some(Frame {
                    name: name.to_vec(),
                    loc: Loc { dev: VIRTUAL, ino },
                    attr: self.virtual_attr(ino),
                }))
            }
            None => Ok(None),
        }
    }

    /// The current directory must be searchable for a lookup in it.
    fn may_lookup(&self, frames: &[Frame]) -> NodeResult<()> {
        let Some(dir) = frames.last() else {
            return Err(err(ErrorKind::NotFound));
        };
        if dir.attr.kind != FileType::Directory {
            return Err(err(ErrorKind::NotADirectory));
        }
        if !permitted(&self.creds, &dir.attr, Want::EXEC) {
            return Err(err(ErrorKind::PermissionDenied));
        }
        Ok(())
    }

    /// Replaces the symlink `link` by its target in the walk.
    pub(crate) fn follow(
        &mut self,
        frames: &mut Vec<Frame>,
        queue: &mut VecDeque<Vec<u8>>,
        link: &Frame,
        links: &mut u32,
    ) -> NodeResult<()> {
        *links += 1;
        if *links > MAX_SYMLINKS {
            return Err(err(ErrorKind::TooManySymlinks));
        }
        let target = self.fs(link.loc.dev)?.readlink(link.loc.ino)?;
        if target.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        if target.starts_with(b"/") {
            *frames = self.root_chain()?;
        }
        for c in components(&target).into_iter().rev() {
            queue.push_front(c);
        }
        Ok(())
    }

    /// Walks the queued components from `frames`. With `stop_before_last`
    /// the last component is returned unwalked (`None` when the queue ran
    /// out on a symlink's or `/`'s end); otherwise everything is walked,
    /// the last component's symlink followed when `follow_last`.
    fn run(
        &mut self,
        frames: &mut Vec<Frame>,
        queue: &mut VecDeque<Vec<u8>>,
        links: &mut u32,
        stop_before_last: bool,
        follow_last: bool,
    ) -> NodeResult<Option<Vec<u8>>> {
        while let Some(c) = queue.pop_front() {
            let last = queue.is_empty();
            self.may_lookup(frames)?;
            if last && stop_before_last {
                return Ok(Some(c));
            }
            match c.as_slice() {
                b"." => {}
                b".." => {
                    if frames.len() > 1 {
                        frames.pop();
                    }
                }
                name => {
                    let Some(f) = self.child(frames, name)? else {
                        return Err(err(ErrorKind::NotFound));
                    };
                    if f.attr.kind == FileType::Symlink && (!last || follow_last) {
                        self.follow(frames, queue, &f, links)?;
                    } else {
                        frames.push(f);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Walks `path` to its inode, following a final symlink when
    /// `follow`. A trailing slash follows it anyway and requires a
    /// directory. Returns the chain from the root.
    pub fn walk(&mut self, path: &[u8], follow: bool) -> NodeResult<Vec<Frame>> {
        if path.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        let slash = path.ends_with(b"/");
        let mut frames = self.start(path)?;
        let mut q = components(path);
        let mut links = 0;
        self.run(&mut frames, &mut q, &mut links, false, follow || slash)?;
        if slash
            && frames
                .last()
                .is_some_and(|f| f.attr.kind != FileType::Directory)
        {
            return Err(err(ErrorKind::NotADirectory));
        }
        Ok(frames)
    }

    /// Walks `path` up to its last component's directory.
    pub fn walk_parent(&mut self, path: &[u8]) -> NodeResult<Parent> {
        if path.is_empty() {
            return Err(err(ErrorKind::NotFound));
        }
        let frames = self.start(path)?;
        let mut links = 0;
        self.parent_from(frames, path, &mut links)
    }

    /// Walks `path` from `frames` up to its last component's directory.
    pub(crate) fn parent_from(
        &mut self,
        mut frames: Vec<Frame>,
        path: &[u8],
        links: &mut u32,
    ) -> NodeResult<Parent> {
        let slash = path.ends_with(b"/");
        if path.starts_with(b"/") {
            frames = self.root_chain()?;
        }
        let mut q = components(path);
        let last = self.run(&mut frames, &mut q, links, true, true)?;
        let last = match last.as_deref() {
            None => Last::Root,
            Some(b".") => Last::Dot,
            Some(b"..") => Last::DotDot,
            Some(n) => Last::Name(n.to_vec()),
        };
        Ok(Parent {
            frames,
            last,
            trailing_slash: slash,
        })
    }

    /// The physical path of `path` (`realpath`): every symlink resolved.
    pub fn realpath(&mut self, path: &[u8]) -> NodeResult<Vec<u8>> {
        let frames = self.walk(path, true)?;
        Ok(path_of(&frames))
    }
}
