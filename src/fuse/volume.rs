//! What a FUSE server serves: a filesystem's file layer over an image file
//! or one partition of it, with the image held the way a mounted block
//! device is held (exclusively while read-write), and the online grow
//! that only the owner of the mounted filesystem may run.

use crate::blockdev::image::Access;
use crate::blockdev::{self, BlockDevice, ImageFile, Slice};
use crate::fs::ext4::files::Ext4Files;
use crate::fs::node::{ErrorKind, FileSystem, NodeError, NodeResult};
use crate::fs::vfat_files::{FatFiles, FatOptions};
use crate::fs::xfs::XfsFiles;
use crate::fs::{FsKind, ext4, xfs};
use nix::fcntl::Flock;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The device a served filesystem lives on: a byte range of an image file
/// (the whole file, or a partition).
pub type Dev = Slice<Disk>;

/// An image file held by a server, shared by the filesystems of its
/// partitions that this process serves (one handle, one lock, one undo
/// log, as the kernel holds one block device under all its partitions).
/// Commits of the partitions' file layers are serialised on it.
#[derive(Clone, Debug)]
pub struct Disk {
    inner: Arc<DiskInner>,
}

#[derive(Debug)]
struct DiskInner {
    img: Mutex<ImageFile>,
    /// The real path (the registry's key).
    real: PathBuf,
    read_only: bool,
    /// The partitions (None: the whole image) served from it now.
    parts: Mutex<Vec<Option<u32>>>,
    /// Read-only disks hold a shared lock on the image, so no read-write
    /// opener (which takes an exclusive one) changes it under them.
    _shared: Option<Flock<File>>,
}

/// The disks this process holds, by real path.
static DISKS: Mutex<Vec<(PathBuf, Weak<DiskInner>)>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Disk {
    /// The image at `path`, held by this process: the handle it already
    /// holds (another partition of it is served), or a new one (an
    /// exclusive lock when read-write, waiting for it; a shared one when
    /// read-only).
    pub fn open(path: &Path, read_only: bool) -> Result<Disk, VolumeError> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut disks = lock(&DISKS);
        disks.retain(|(_, w)| w.strong_count() > 0);
        if let Some(inner) = disks
            .iter()
            .find(|(p, _)| *p == real)
            .and_then(|(_, w)| w.upgrade())
        {
            if inner.read_only && !read_only {
                return Err(VolumeError::Busy {
                    image: path.to_path_buf(),
                    why: "this process serves it read-only".into(),
                });
            }
            return Ok(Disk { inner });
        }
        let access = if read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        let img = ImageFile::open(path, access)?;
        let shared = if read_only {
            let f = File::open(path).map_err(|e| blockdev::Error::io(path, "open", e))?;
            Some(blockdev::lock::lock(f, path, blockdev::lock::Kind::Shared)?)
        } else {
            None
        };
        let inner = Arc::new(DiskInner {
            img: Mutex::new(img),
            real: real.clone(),
            read_only,
            parts: Mutex::new(Vec::new()),
            _shared: shared,
        });
        disks.push((real, Arc::downgrade(&inner)));
        Ok(Disk { inner })
    }

    /// The image file, locked for this caller.
    pub fn image(&self) -> MutexGuard<'_, ImageFile> {
        lock(&self.inner.img)
    }

    /// The partitions (None: the whole image) served from this disk now.
    pub fn served_parts(&self) -> Vec<Option<u32>> {
        lock(&self.inner.parts).clone()
    }

    /// Claims `part` for a server; refused when it (or the whole image,
    /// or any partition when `part` is the whole image) is served already.
    fn claim(&self, part: Option<u32>, image: &Path) -> Result<(), VolumeError> {
        let mut parts = lock(&self.inner.parts);
        let clash = parts
            .iter()
            .any(|p| p.is_none() || part.is_none() || *p == part);
        if clash {
            return Err(VolumeError::Busy {
                image: image.to_path_buf(),
                why: match part {
                    Some(n) => format!("partition {n} (or the whole image) is served already"),
                    None => "a partition of it is served already".into(),
                },
            });
        }
        parts.push(part);
        Ok(())
    }

    fn release(&self, part: Option<u32>) {
        let mut parts = lock(&self.inner.parts);
        if let Some(i) = parts.iter().position(|p| *p == part) {
            parts.remove(i);
        }
    }

    /// The real path of the image.
    pub fn real_path(&self) -> &Path {
        &self.inner.real
    }
}

impl BlockDevice for Disk {
    fn size(&self) -> u64 {
        self.image().size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), blockdev::Error> {
        self.image().read_at(offset, buf)
    }
    fn commit(&mut self, plan: &dyn blockdev::WritePlan) -> Result<(), blockdev::Error> {
        self.image().commit(plan)
    }
    fn data_ranges(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<std::ops::Range<u64>>, blockdev::Error> {
        self.image().data_ranges(range)
    }
    fn name(&self) -> String {
        self.image().name()
    }
}

/// What to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The image file.
    pub image: PathBuf,
    /// Partition number inside it (GPT or MBR), or the whole image.
    pub part: Option<u32>,
    /// Serve read-only (nothing is ever written to the image).
    pub read_only: bool,
}

/// Why a volume could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The image could not be opened or read.
    #[error("{0}")]
    Device(#[from] blockdev::Error),
    /// The partition table could not be read, or has no such partition.
    #[error("{image}: {why}")]
    Partition {
        /// The image.
        image: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The image is held by this process in a way that excludes this use
    /// (the same partition served twice, a read-write mount of an image
    /// served read-only).
    #[error("{image}: busy: {why}")]
    Busy {
        /// The image.
        image: PathBuf,
        /// Why.
        why: String,
    },
    /// Neither ext4 nor XFS is there.
    #[error("{0}: no ext4 or XFS filesystem found")]
    NoFilesystem(String),
    /// The filesystem is there but its file layer refuses it (dirty
    /// journal, a feature ebsim does not write, damage).
    #[error("{what}: {err}")]
    Refused {
        /// The device.
        what: String,
        /// The file layer's refusal.
        err: NodeError,
    },
}

/// The byte range of partition `part` of `img`.
pub fn partition_range(img: &dyn BlockDevice, part: u32) -> Result<(u64, u64), VolumeError> {
    let image = PathBuf::from(img.name());
    let probe = crate::partition::probe(img).map_err(|e| VolumeError::Partition {
        image: image.clone(),
        why: e.to_string(),
    })?;
    let Some(label) = probe.label else {
        return Err(VolumeError::Partition {
            image,
            why: "no partition table".into(),
        });
    };
    let Some((_, first, sectors)) = label.partitions().into_iter().find(|p| p.0 == part) else {
        return Err(VolumeError::Partition {
            image,
            why: format!("no partition {part}"),
        });
    };
    let sector = crate::partition::SECTOR;
    match (first.checked_mul(sector), sectors.checked_mul(sector)) {
        (Some(off), Some(len)) => Ok((off, len)),
        _ => Err(VolumeError::Partition {
            image,
            why: format!("partition {part} lies beyond any device"),
        }),
    }
}

enum Files {
    Ext4(Box<Ext4Files<Dev>>),
    Xfs(Box<XfsFiles<Dev>>),
    /// FAT (an EFI system partition), with its device's offset and length.
    Fat(Box<FatFiles<Dev>>, (u64, u64)),
    /// A grow failed after the device was handed over and the file layer
    /// could not be opened again.
    Gone(String),
}

/// A served filesystem: its file layer and where it lives.
pub struct Volume {
    spec: VolumeSpec,
    kind: FsKind,
    files: Files,
    /// The image, shared with the other partitions this process serves.
    disk: Disk,
}

impl Drop for Volume {
    fn drop(&mut self) {
        self.disk.release(self.spec.part);
    }
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("spec", &self.spec)
            .field("kind", &self.kind)
            .finish()
    }
}

/// What an online grow did, for the tools to render.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GrowReport {
    /// ext4 (resize2fs's online lines).
    Ext4 {
        /// Block size in bytes.
        block_size: u64,
        /// Blocks before.
        old_blocks: u64,
        /// Blocks after (equal: nothing to do).
        new_blocks: u64,
        /// Descriptor blocks before.
        old_desc_blocks: u64,
        /// Descriptor blocks after.
        new_desc_blocks: u64,
    },
    /// XFS (xfs_growfs's lines).
    Xfs {
        /// Data blocks before.
        old_dblocks: u64,
        /// Data blocks after.
        new_dblocks: u64,
        /// `imax_pct` before.
        old_imaxpct: u8,
        /// `imax_pct` after.
        new_imaxpct: u8,
    },
}

/// What an online grow is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct GrowArgs {
    /// New size in filesystem blocks; None: as large as the device.
    pub blocks: Option<u64>,
    /// resize2fs `-f`.
    pub force: bool,
    /// XFS: new `imax_pct`.
    pub imaxpct: Option<u8>,
    /// ext4: the time written into `s_wtime` and the resize inode, in
    /// seconds (the client's clock, or `E2FSPROGS_FAKE_TIME`, as the tool
    /// sees it); 0: the server's clock.
    #[serde(default)]
    pub now: u64,
}

fn refused(what: &str) -> impl FnOnce(NodeError) -> VolumeError + '_ {
    move |err| VolumeError::Refused {
        what: what.to_string(),
        err,
    }
}

impl Volume {
    /// Opens the image (waiting for its exclusive lock when read-write,
    /// rolling back a half-done change), finds the partition and the
    /// filesystem, and opens its file layer.
    ///
    /// When this process already serves another partition of the image,
    /// the volume joins it: one image handle, one lock, one undo log
    /// (see [`Disk`]).
    pub fn open(spec: VolumeSpec) -> Result<Volume, VolumeError> {
        Volume::open_with(spec, FatOptions::default())
    }

    /// [`Volume::open`], with the ownership and permission options a FAT
    /// found there is shown with (a vfat mount's `uid=`, `gid=`,
    /// `umask=`).
    pub fn open_with(spec: VolumeSpec, fat: FatOptions) -> Result<Volume, VolumeError> {
        let disk = Disk::open(&spec.image, spec.read_only)?;
        disk.claim(spec.part, &spec.image)?;
        // From here on a failure releases the claim.
        let opened = (|| {
            let (off, len) = match spec.part {
                Some(n) => partition_range(&disk, n)?,
                None => (0, disk.size()),
            };
            let dev = Slice::new(disk.clone(), off, len)?;
            open_files(dev, spec.read_only, &describe(&spec), fat)
        })();
        match opened {
            Ok((kind, files)) => Ok(Volume {
                spec,
                kind,
                files,
                disk,
            }),
            Err(e) => {
                disk.release(spec.part);
                Err(e)
            }
        }
    }

    /// The image this volume lives on (shared with the other partitions
    /// this process serves).
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// What was opened.
    pub fn spec(&self) -> &VolumeSpec {
        &self.spec
    }

    /// The filesystem type.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// The file layer.
    pub fn fs(&self) -> NodeResult<&dyn FileSystem> {
        match &self.files {
            Files::Ext4(f) => Ok(f.as_ref()),
            Files::Xfs(f) => Ok(f.as_ref()),
            Files::Fat(f, _) => Ok(f.as_ref()),
            Files::Gone(why) => Err(NodeError::with(ErrorKind::Io, why.clone())),
        }
    }

    /// The file layer, to change it.
    pub fn fs_mut(&mut self) -> NodeResult<&mut dyn FileSystem> {
        match &mut self.files {
            Files::Ext4(f) => Ok(f.as_mut()),
            Files::Xfs(f) => Ok(f.as_mut()),
            Files::Fat(f, _) => Ok(f.as_mut()),
            Files::Gone(why) => Err(NodeError::with(ErrorKind::Io, why.clone())),
        }
    }

    /// The device: (offset in the image, length).
    pub fn range(&self) -> (u64, u64) {
        match &self.files {
            Files::Ext4(f) => (f.device().offset(), f.device().size()),
            Files::Xfs(f) => (f.dev().offset(), f.dev().size()),
            Files::Fat(_, r) => *r,
            Files::Gone(_) => (0, 0),
        }
    }

    /// Bytes the filesystem could grow to now: the image file's current
    /// length, or the partition's current extent in the table (either may
    /// have grown since the mount); the served range when neither can be
    /// read.
    pub fn current_size(&self) -> u64 {
        let (off, len) = self.range();
        if matches!(self.files, Files::Gone(_)) {
            return len;
        }
        let img = &self.disk;
        let file_len = crate::blockdev::image::image_len(&self.spec.image).unwrap_or(0);
        match self.spec.part {
            None => file_len.max(len),
            Some(n) => match partition_range(img, n) {
                Ok((o, l)) if o == off && o.saturating_add(l) <= file_len => l.max(len),
                _ => len,
            },
        }
    }

    /// The primary superblock as it is on the device now (after a sync it
    /// is the filesystem's state): 1024 bytes at 1024 for ext4, the first
    /// sector for XFS.
    pub fn superblock_bytes(&self) -> NodeResult<Vec<u8>> {
        let r = match &self.files {
            Files::Ext4(f) => f.device().read_vec(1024, 1024),
            Files::Xfs(f) => f.dev().read_vec(0, 512),
            Files::Fat(..) => self.disk.read_vec(self.range().0, 512),
            Files::Gone(why) => return Err(NodeError::with(ErrorKind::Io, why.clone())),
        };
        r.map_err(|e| NodeError::with(ErrorKind::Io, e))
    }

    /// Grows the filesystem as the kernel's online resize does, to
    /// `args.blocks` or to the end of the device (the image file's current
    /// length, or the partition's current extent in the table: a table or
    /// file grown since the mount is read again first). Staged changes are
    /// committed first; the file layer is opened again afterwards, so inode
    /// numbers stay valid. Nothing is written when the grow is refused.
    pub fn grow(&mut self, args: GrowArgs) -> NodeResult<GrowReport> {
        if self.spec.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        self.fs_mut()?.sync()?;
        let files = std::mem::replace(&mut self.files, Files::Gone("grow in progress".into()));
        let (dev, kind) = match files {
            Files::Ext4(f) => (f.into_device(), FsKind::Ext4),
            Files::Xfs(f) => (f.into_inner(), FsKind::Xfs),
            Files::Fat(f, r) => {
                self.files = Files::Fat(f, r);
                return Err(NodeError::with(
                    ErrorKind::Unsupported,
                    "a FAT filesystem cannot be grown",
                ));
            }
            Files::Gone(why) => {
                self.files = Files::Gone(why.clone());
                return Err(NodeError::with(ErrorKind::Io, why));
            }
        };
        // The device as it is now: a file grown by truncate, a partition
        // grown by growpart.
        let (dev, refreshed) = self.refresh_device(dev);
        let Some(mut dev) = dev else {
            self.files = Files::Gone("the image shrank below the filesystem while mounted".into());
            return Err(NodeError::with(
                ErrorKind::Io,
                "the image shrank below the filesystem while mounted",
            ));
        };
        let result = refreshed.and_then(|()| match kind {
            FsKind::Ext4 => grow_ext4(&mut dev, args),
            FsKind::Xfs => grow_xfs(&mut dev, args),
            FsKind::Vfat => Err(NodeError::with(
                ErrorKind::Unsupported,
                "a FAT filesystem cannot be grown",
            )),
            FsKind::Swap => Err(NodeError::with(
                ErrorKind::Unsupported,
                "a swap area cannot be grown",
            )),
        });
        let what = describe(&self.spec);
        self.files = match open_files(dev, false, &what, FatOptions::default()) {
            Ok((_, f)) => f,
            Err(e) => Files::Gone(format!("reopening after the grow failed: {e}")),
        };
        result
    }

    /// Writes a partition table change (byte ranges of the disk, none of
    /// them inside the served partition) to the disk this partition lives
    /// on, through the one write path: what `growpart` asks of a disk whose
    /// partition is mounted, which the kernel takes as it is (BLKPG).
    /// Staged changes are committed first; the partition's extent is read
    /// again at the next grow.
    pub fn write_table(&mut self, writes: &[(u64, Vec<u8>)]) -> NodeResult<()> {
        if self.spec.read_only {
            return Err(ErrorKind::ReadOnly.into());
        }
        if self.spec.part.is_none() {
            return Err(NodeError::with(
                ErrorKind::InvalidArgument,
                "the served filesystem is the whole disk: it has no partition table",
            ));
        }
        // No write may land inside a partition this process serves (this
        // one, or another of the same disk), as the table says now.
        let mut ranges = vec![(self.spec.part, self.range())];
        for p in self.disk.served_parts() {
            if let (Some(n), true) = (p, p != self.spec.part) {
                if let Ok(r) = partition_range(&self.disk, n) {
                    ranges.push((p, r));
                }
            }
        }
        for (at, bytes) in writes {
            let end = at.saturating_add(bytes.len() as u64);
            for (p, (off, len)) in &ranges {
                if *at < off.saturating_add(*len) && end > *off {
                    let n = p.unwrap_or(0);
                    return Err(NodeError::with(
                        ErrorKind::InvalidArgument,
                        format!(
                            "bytes {at}..{end} of the table change lie inside the mounted partition {n}"
                        ),
                    ));
                }
            }
        }
        self.fs_mut()?.sync()?;
        let mut batch = blockdev::WriteBatch::new();
        for (at, bytes) in writes {
            batch.ops.push(blockdev::WriteOp::Data {
                offset: *at,
                bytes: bytes.clone(),
            });
        }
        let mut img = self.disk.image();
        // The disk may have grown since the mount (ModifyVolume): the
        // backup GPT goes to its new end.
        img.reread_size()
            .map_err(|e| NodeError::with(ErrorKind::Io, e.to_string()))?;
        img.commit(&batch)
            .map_err(|e| NodeError::with(ErrorKind::Io, e.to_string()))
    }

    /// The device with its current extent (the file's length, the
    /// partition's entry), or as it was with the reason it was kept.
    fn refresh_device(&self, dev: Dev) -> (Option<Dev>, NodeResult<()>) {
        let off = dev.offset();
        let len = dev.size();
        drop(dev);
        let disk = &self.disk;
        let keep = |e: NodeError| (rebuild(disk, off, len), Err(e));
        let size = match disk.image().reread_size() {
            Ok(s) => s,
            Err(e) => return keep(NodeError::with(ErrorKind::Io, e)),
        };
        let (noff, nlen) = match self.spec.part {
            None => (0, size),
            Some(n) => match partition_range(disk, n) {
                Ok((o, l)) if o == off && l >= len && o.saturating_add(l) <= size => (o, l),
                Ok(_) => {
                    let e = format!("partition {n} moved or shrank while mounted");
                    return keep(NodeError::with(ErrorKind::InvalidArgument, e));
                }
                Err(e) => {
                    return keep(NodeError::with(ErrorKind::InvalidArgument, e.to_string()));
                }
            },
        };
        if nlen < len {
            let e = "the image shrank while mounted";
            return keep(NodeError::with(ErrorKind::InvalidArgument, e));
        }
        (rebuild(disk, noff, nlen), Ok(()))
    }
}

/// The slice `off..off+len` of `disk`, clamped to the file (None only if
/// even the clamped range is refused, which cannot happen).
fn rebuild(disk: &Disk, off: u64, len: u64) -> Option<Dev> {
    let size = disk.size();
    let off = off.min(size);
    let len = len.min(size - off);
    Slice::new(disk.clone(), off, len).ok()
}

fn describe(spec: &VolumeSpec) -> String {
    match spec.part {
        Some(n) => format!("{} partition {n}", spec.image.display()),
        None => spec.image.display().to_string(),
    }
}

/// Probes `dev` and opens the file layer of what it holds.
fn open_files(
    dev: Dev,
    read_only: bool,
    what: &str,
    fat: FatOptions,
) -> Result<(FsKind, Files), VolumeError> {
    if xfs::probe(&dev).unwrap_or(false) {
        let f = if read_only {
            XfsFiles::open_read_only(dev)
        } else {
            XfsFiles::open(dev)
        }
        .map_err(refused(what))?;
        return Ok((FsKind::Xfs, Files::Xfs(Box::new(f))));
    }
    if ext4::probe(&dev).unwrap_or(false) {
        let f = Ext4Files::open(dev).map_err(refused(what))?;
        return Ok((FsKind::Ext4, Files::Ext4(Box::new(f))));
    }
    if crate::fs::vfat::probe(&dev).unwrap_or(false) {
        let range = (dev.offset(), dev.size());
        let f = FatFiles::open(dev, read_only, fat).map_err(refused(what))?;
        return Ok((FsKind::Vfat, Files::Fat(Box::new(f), range)));
    }
    Err(VolumeError::NoFilesystem(what.to_string()))
}

fn node_err(kind: ErrorKind) -> impl FnOnce(String) -> NodeError {
    move |s| NodeError::with(kind, s)
}

fn grow_ext4(dev: &mut Dev, args: GrowArgs) -> NodeResult<GrowReport> {
    use crate::fs::ext4::grow::{self, GrowOutcome, GrowRequest};
    let fs =
        ext4::Ext4::open(&mut *dev).map_err(|e| node_err(ErrorKind::Corrupt)(e.to_string()))?;
    let block_size = u64::from(fs.superblock().block_size());
    let old_blocks = fs.superblock().s_blocks_count;
    let req = GrowRequest {
        size: args.blocks,
        force: args.force,
        online: true,
        image_file: false,
        now: if args.now != 0 {
            args.now
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        },
        ..Default::default()
    };
    let inval = |e: ext4::Error| node_err(ErrorKind::InvalidArgument)(e.to_string());
    match grow::plan(&fs, &req).map_err(inval)? {
        GrowOutcome::NothingToDo { blocks, batch, .. } => {
            let mut fs = fs;
            grow::apply(fs.device_mut(), &batch)
                .map_err(|e| node_err(ErrorKind::Io)(e.to_string()))?;
            Ok(GrowReport::Ext4 {
                block_size,
                old_blocks,
                new_blocks: blocks,
                old_desc_blocks: 0,
                new_desc_blocks: 0,
            })
        }
        GrowOutcome::Grow(plan) => {
            let mut fs = fs;
            grow::apply(fs.device_mut(), &plan.batch)
                .map_err(|e| node_err(ErrorKind::Io)(e.to_string()))?;
            Ok(GrowReport::Ext4 {
                block_size,
                old_blocks: plan.old_blocks,
                new_blocks: plan.new_blocks,
                old_desc_blocks: plan.old_desc_blocks,
                new_desc_blocks: plan.new_desc_blocks,
            })
        }
    }
}

fn grow_xfs(dev: &mut Dev, args: GrowArgs) -> NodeResult<GrowReport> {
    use crate::fs::xfs::growfs;
    let fs = xfs::Xfs::open(&mut *dev).map_err(|e| node_err(ErrorKind::Corrupt)(e.to_string()))?;
    let sb = fs.sb().clone();
    let bs = u64::from(sb.blocksize.max(1));
    let dev_blocks = fs.dev().size() / bs;
    let newblocks = args.blocks.unwrap_or(dev_blocks);
    if newblocks > dev_blocks {
        return Err(NodeError::with(
            ErrorKind::InvalidArgument,
            format!("data size {newblocks} too large, maximum is {dev_blocks}"),
        ));
    }
    let imaxpct = args.imaxpct.unwrap_or(sb.imax_pct);
    if newblocks == sb.dblocks && imaxpct == sb.imax_pct {
        return Ok(GrowReport::Xfs {
            old_dblocks: sb.dblocks,
            new_dblocks: sb.dblocks,
            old_imaxpct: sb.imax_pct,
            new_imaxpct: sb.imax_pct,
        });
    }
    let kind_of = |e: &xfs::Error| match e {
        xfs::Error::Metadata(_) => ErrorKind::Corrupt,
        xfs::Error::Io(_) => ErrorKind::Io,
        xfs::Error::NoSpace(_) => ErrorKind::NoSpace,
        _ => ErrorKind::InvalidArgument,
    };
    let plan = growfs::plan(
        &fs,
        &growfs::GrowRequest {
            newblocks,
            imaxpct: Some(imaxpct),
        },
    )
    .map_err(|e| NodeError::with(kind_of(&e), e))?;
    let d = fs.into_inner();
    growfs::apply(d, &plan).map_err(|e| NodeError::with(kind_of(&e), e))?;
    Ok(GrowReport::Xfs {
        old_dblocks: sb.dblocks,
        new_dblocks: plan.new.dblocks,
        old_imaxpct: sb.imax_pct,
        new_imaxpct: plan.new.imax_pct,
    })
}
