//! Mounting inside an instance, as util-linux's mount and umount and the
//! guest's kernel decide it: which source and target a request names, when
//! the kernel refuses (no filesystem, wrong type, busy, a bad option), the
//! options /proc/mounts then shows, what `mount DIR` and `mount -a` take
//! from the image's fstab, and which mounts an unmount removes. A mount is
//! a record in the instance model (what lsblk, df, resize2fs and xfs_growfs
//! see); nothing is mounted on this machine, and mount points are not
//! directories of it.
//!
//! The wording of the failures belongs to the command line; the failures
//! are typed here ([`MountError`], [`UmountError`]).

use super::context::Context;
use super::instance::Resolved;
use super::normalize_path;
use crate::blockdev::image::Access;
use crate::ec2::model::Mount;
use crate::ec2::release::OsRelease;
use crate::fs::xfs::{self, MountEffect, Xfs};
use crate::fs::{FsInfo, FsKind};

/// The util-linux generations whose mount messages (and kernels) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 2.23 (CentOS 7, kernel 3.10): mount's own messages, no libmount
    /// excode; the kernel shows `data=ordered` and no XFS log defaults.
    V223,
    /// 2.30 to 2.37: `mount: TARGET: MESSAGE.`
    V230,
    /// 2.38 and later: the same plus the `dmesg(1)` hint.
    V238,
}

impl Generation {
    /// The generation of a release's util-linux.
    pub fn of(release: &OsRelease) -> Generation {
        match release.util_linux.minor {
            m if m < 30 => Generation::V223,
            m if m < 38 => Generation::V230,
            _ => Generation::V238,
        }
    }
}

/// Since util-linux 2.36, libmount retries a mount that the kernel refused
/// for its read-write state (EBUSY on a read-only superblock) read-only.
fn retries_read_only(release: &OsRelease) -> bool {
    release.util_linux.minor >= 36
}

/// A mount option the guest's kernel refuses (EINVAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad mount option {0}")]
pub struct BadOption(pub String);

/// Filesystem types a guest kernel knows (mounting another is ENODEV).
const KERNEL_TYPES: &[&str] = &[
    "ext2",
    "ext3",
    "ext4",
    "xfs",
    "btrfs",
    "vfat",
    "msdos",
    "fat",
    "exfat",
    "iso9660",
    "udf",
    "squashfs",
    "tmpfs",
    "ramfs",
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "overlay",
    "nfs",
    "nfs4",
    "cifs",
    "fuse",
    "efivarfs",
    "autofs",
    "mqueue",
    "hugetlbfs",
];

/// The type the guest's kernel mounts `fs` as, given `-t`'s list (empty:
/// libmount's probe, blkid's TYPE), or None when no listed type takes it.
/// The ext4 driver serves ext2, ext3 and ext4: any ext filesystem mounts
/// as ext4; one blkid calls ext3 (a journal, nothing ext4 added) also as
/// ext3 or ext2, and an ext2 as ext2; /proc/mounts shows the type used.
pub fn mount_type(fs: &FsInfo, wanted: &[&str]) -> Option<&'static str> {
    if fs.kind != FsKind::Ext4 {
        return (wanted.is_empty() || wanted.contains(&fs.kind.name())).then(|| fs.kind.name());
    }
    let takes: &[&'static str] = match fs.type_name {
        "ext2" => &["ext2", "ext4"],
        "ext3" => &["ext3", "ext2", "ext4"],
        _ => &["ext4"],
    };
    if wanted.is_empty() {
        return takes.first().copied();
    }
    wanted
        .iter()
        .find_map(|w| takes.iter().find(|t| *t == w).copied())
}

/// libmount's type pattern (`-t`): a comma list; a leading `no` on the
/// first item negates the whole list.
pub fn type_matches(pattern: &str, fstype: &str) -> bool {
    let neg = pattern.starts_with("no");
    let hit = pattern
        .split(',')
        .map(|t| {
            if neg {
                t.strip_prefix("no").unwrap_or(t)
            } else {
                t
            }
        })
        .any(|t| t == fstype);
    hit != neg
}

/// The options /proc/mounts shows for a mount of `kind` with the user's
/// `-o` options, on a guest of util-linux generation `ul` (its kernel: 3.10
/// on CentOS 7, 5.10 to 6.x elsewhere). Err: an option the kernel
/// refuses (EINVAL).
pub fn kernel_options(
    kind: FsKind,
    opts: &[String],
    generation: Generation,
) -> Result<String, BadOption> {
    let mut ro = false;
    let (mut nosuid, mut nodev, mut noexec) = (false, false, false);
    let (mut sync, mut dirsync, mut lazytime) = (false, false, false);
    #[derive(PartialEq)]
    enum Atime {
        Relatime,
        Noatime,
        Strict,
    }
    let mut atime = Atime::Relatime;
    let mut nodiratime = false;
    let mut fs_opts: Vec<String> = Vec::new();
    for o in opts
        .iter()
        .flat_map(|o| o.split(','))
        .filter(|o| !o.is_empty())
    {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "nosuid" => nosuid = true,
            "suid" => nosuid = false,
            "nodev" => nodev = true,
            "dev" => nodev = false,
            "noexec" => noexec = true,
            "exec" => noexec = false,
            "sync" => sync = true,
            "async" => sync = false,
            "dirsync" => dirsync = true,
            "lazytime" => lazytime = true,
            "nolazytime" => lazytime = false,
            "noatime" => atime = Atime::Noatime,
            "relatime" | "atime" => atime = Atime::Relatime,
            "strictatime" => atime = Atime::Strict,
            "norelatime" => atime = Atime::Strict,
            "nodiratime" => nodiratime = true,
            "diratime" => nodiratime = false,
            // Userspace options: fstab's and mount's own, never the kernel's.
            "defaults" | "auto" | "noauto" | "user" | "nouser" | "users" | "owner" | "group"
            | "nofail" | "_netdev" | "silent" | "loud" => {}
            _ if o.starts_with("x-") || o.starts_with("comment=") => {}
            other => fs_opts.push(other.to_string()),
        }
    }
    let mut out = vec![if ro { "ro" } else { "rw" }.to_string()];
    for (on, name) in [
        (sync, "sync"),
        (dirsync, "dirsync"),
        (lazytime, "lazytime"),
        (nosuid, "nosuid"),
        (nodev, "nodev"),
        (noexec, "noexec"),
        (atime == Atime::Noatime, "noatime"),
        (nodiratime, "nodiratime"),
        (atime == Atime::Relatime, "relatime"),
    ] {
        if on {
            out.push(name.to_string());
        }
    }
    match kind {
        FsKind::Ext4 => out.extend(ext4_options(&fs_opts, generation)?),
        FsKind::Xfs => out.extend(xfs_options(&fs_opts, generation)?),
        FsKind::Vfat => out.extend(vfat_options(&fs_opts)?),
        // Never mounted: `plan` refuses it as an unknown type first.
        FsKind::Swap => return Err(BadOption("swap".into())),
    }
    Ok(out.join(","))
}

/// ext4's part, in `_ext4_show_options` order: flags, then errors=,
/// commit=, data=. Defaults are not shown (data=ordered only by 3.10).
fn ext4_options(opts: &[String], generation: Generation) -> Result<Vec<String>, BadOption> {
    const FLAGS: &[&str] = &[
        "journal_checksum",
        "nobarrier",
        "noauto_da_alloc",
        "discard",
        "nodelalloc",
        "dioread_nolock",
        "noinit_itable",
    ];
    let mut flags: Vec<&str> = Vec::new();
    let (mut errors, mut commit, mut data) = (None, None, None);
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
        match (k, v) {
            (f, None) if FLAGS.contains(&f) => {
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            ("nodiscard", None) => flags.retain(|f| *f != "discard"),
            ("barrier", None) => flags.retain(|f| *f != "nobarrier"),
            ("delalloc", None) => flags.retain(|f| *f != "nodelalloc"),
            ("auto_da_alloc", None) => flags.retain(|f| *f != "noauto_da_alloc"),
            ("init_itable", _) => flags.retain(|f| *f != "noinit_itable"),
            ("user_xattr" | "acl" | "journal_async_commit", None) => {}
            ("errors", Some(e @ ("remount-ro" | "continue" | "panic"))) => errors = Some(e),
            ("commit", Some(n)) if n.parse::<u32>().is_ok() => commit = Some(n),
            ("data", Some(d @ ("ordered" | "journal" | "writeback"))) => data = Some(d),
            _ => return Err(BadOption(o.clone())),
        }
    }
    flags.sort_by_key(|f| FLAGS.iter().position(|x| x == f));
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    // errors=continue is the default of ebsim's mkfs (s_errors = 1).
    if let Some(e) = errors.filter(|e| *e != "continue") {
        out.push(format!("errors={e}"));
    }
    if let Some(c) = commit.filter(|c| *c != "5") {
        out.push(format!("commit={c}"));
    }
    match data {
        Some(d) if d != "ordered" => out.push(format!("data={d}")),
        _ if generation == Generation::V223 => out.push("data=ordered".into()),
        _ => {}
    }
    Ok(out)
}

/// XFS's part, in `xfs_showargs` order: flags, allocsize=, inode64,
/// logbufs=, logbsize=, quota. The guest kernels (3.10 to 6.x) show
/// `attr2`; 3.10 does not show the default log buffers.
/// vfat's part, in the kernel's `fat_show_options` order: uid=/gid= when
/// not 0, fmask, dmask, codepage, iocharset, shortname, errors. `umask=`
/// sets both masks (0022 by default).
fn vfat_options(opts: &[String]) -> Result<Vec<String>, BadOption> {
    let (mut uid, mut gid) = (0u32, 0u32);
    let (mut fmask, mut dmask) = (0o022u32, 0o022u32);
    let mut codepage = "437".to_string();
    let mut iocharset = "ascii".to_string();
    let mut shortname = "mixed".to_string();
    let mut errors = "remount-ro".to_string();
    let octal = |o: &String, v: &str| u32::from_str_radix(v, 8).map_err(|_| BadOption(o.clone()));
    let num = |o: &String, v: &str| v.parse::<u32>().map_err(|_| BadOption(o.clone()));
    for o in opts {
        let (k, v) = o.split_once('=').map_or((o.as_str(), ""), |(k, v)| (k, v));
        match k {
            "uid" => uid = num(o, v)?,
            "gid" => gid = num(o, v)?,
            "umask" => {
                fmask = octal(o, v)?;
                dmask = fmask;
            }
            "fmask" => fmask = octal(o, v)?,
            "dmask" => dmask = octal(o, v)?,
            "codepage" if !v.is_empty() => codepage = v.to_string(),
            "iocharset" if !v.is_empty() => iocharset = v.to_string(),
            "shortname" if matches!(v, "lower" | "win95" | "winnt" | "mixed") => {
                shortname = v.to_string();
            }
            "errors" if matches!(v, "continue" | "panic" | "remount-ro") => errors = v.to_string(),
            _ => return Err(BadOption(o.clone())),
        }
    }
    let mut out = Vec::new();
    if uid != 0 {
        out.push(format!("uid={uid}"));
    }
    if gid != 0 {
        out.push(format!("gid={gid}"));
    }
    out.push(format!("fmask={fmask:04o}"));
    out.push(format!("dmask={dmask:04o}"));
    out.push(format!("codepage={codepage}"));
    out.push(format!("iocharset={iocharset}"));
    out.push(format!("shortname={shortname}"));
    out.push(format!("errors={errors}"));
    Ok(out)
}

fn xfs_options(opts: &[String], generation: Generation) -> Result<Vec<String>, BadOption> {
    const FLAGS: &[&str] = &[
        "wsync",
        "noalign",
        "swalloc",
        "nouuid",
        "norecovery",
        "attr2",
        "filestreams",
        "grpid",
        "discard",
        "largeio",
    ];
    let mut flags: Vec<&str> = vec!["attr2"];
    let mut allocsize = None;
    let mut inode64 = true;
    let (mut logbufs, mut logbsize) = (None, None);
    let (mut uq, mut pq, mut gq) = (false, false, false);
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
        match (k, v) {
            (f, None) if FLAGS.contains(&f) => {
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            ("nodiscard", None) => flags.retain(|f| *f != "discard"),
            ("noattr2", None) => flags.retain(|f| *f != "attr2"),
            ("inode64", None) => inode64 = true,
            ("inode32", None) => inode64 = false,
            ("allocsize", Some(s)) => allocsize = Some(s.to_string()),
            ("logbufs", Some(n)) if matches!(n.parse::<u32>(), Ok(2..=8)) => logbufs = Some(n),
            ("logbsize", Some(s)) => logbsize = Some(s.to_string()),
            ("usrquota" | "uquota" | "quota" | "uqnoenforce" | "qnoenforce", None) => uq = true,
            ("prjquota" | "pquota" | "pqnoenforce", None) => pq = true,
            ("grpquota" | "gquota" | "gqnoenforce", None) => gq = true,
            ("noquota", None) => (uq, pq, gq) = (false, false, false),
            _ => return Err(BadOption(o.clone())),
        }
    }
    flags.sort_by_key(|f| FLAGS.iter().position(|x| x == f));
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    if let Some(a) = allocsize {
        out.push(format!("allocsize={a}"));
    }
    out.push(if inode64 { "inode64" } else { "inode32" }.into());
    match (logbufs, generation) {
        (Some(n), _) => out.push(format!("logbufs={n}")),
        (None, Generation::V223) => {}
        (None, _) => out.push("logbufs=8".into()),
    }
    match (logbsize, generation) {
        (Some(s), _) => out.push(format!("logbsize={s}")),
        (None, Generation::V223) => {}
        (None, _) => out.push("logbsize=32k".into()),
    }
    for (on, name) in [(uq, "usrquota"), (pq, "prjquota"), (gq, "grpquota")] {
        if on {
            out.push(name.into());
        }
    }
    if !(uq || pq || gq) {
        out.push("noquota".into());
    }
    Ok(out)
}

/// Why a mount failed (mount(8)'s cases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountError {
    /// EINVAL: no filesystem, wrong type, bad option.
    WrongFs {
        /// The device, as the kernel names it.
        dev: String,
    },
    /// ENOENT on the source.
    NoDevice {
        /// The source as given.
        dev: String,
    },
    /// ENOENT on the target.
    NoMountPoint,
    /// EBUSY: `src` is mounted (on `on`, first mount first) already.
    Busy {
        /// The device.
        src: String,
        /// Where it is mounted.
        on: Vec<String>,
    },
    /// ENODEV: a type the kernel does not know.
    UnknownType(String),
    /// `mount DIR`: nothing in fstab.
    NotInFstab,
    /// `UUID=`/`LABEL=` names nothing.
    CantFind(String),
    /// EIO: the kernel could not read what the mount needs (an XFS whose
    /// per-AG reservation meets a block its verifiers reject).
    Unreadable {
        /// The device, as the kernel names it.
        dev: String,
    },
    /// EUCLEAN ("Structure needs cleaning"): an XFS whose root inode the
    /// kernel cannot read.
    NeedsCleaning {
        /// The device, as the kernel names it.
        dev: String,
    },
}

impl MountError {
    /// Whether the mount system call failed (rather than mount's own
    /// lookup): util-linux 2.38 then adds its `dmesg(1)` hint.
    pub fn from_syscall(&self) -> bool {
        !matches!(self, MountError::NotInFstab | MountError::CantFind(_))
    }
}

/// A failed mount: the name mount reports it under (the target, or the
/// source given alone) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFailure {
    /// What the message names.
    pub spec: String,
    /// Why.
    pub error: MountError,
}

/// One mount to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The source: a device name, `UUID=`/`LABEL=`.
    pub source: String,
    /// The mount point (absolute paths are normalized).
    pub target: String,
    /// `-t`: a comma list of types, or None/`auto` to probe.
    pub types: Option<String>,
    /// `-o` lists, in order (later ones win).
    pub options: Vec<String>,
    /// Whether it comes from fstab.
    pub fstab: bool,
}

impl Request {
    /// A request for `source` on `target` (normalized when absolute).
    pub fn new(
        source: String,
        target: String,
        types: Option<String>,
        options: Vec<String>,
    ) -> Request {
        let target = if target.starts_with('/') {
            normalize_path(&target)
        } else {
            target
        };
        Request {
            source,
            target,
            types,
            options,
            fstab: false,
        }
    }

    /// What fstab's entry `e` asks for, with extra `-o` options after its own.
    pub fn from_fstab(e: &Mount, extra: &[String]) -> Request {
        let mut options = vec![e.options.clone()];
        options.extend(extra.iter().cloned());
        Request {
            source: e.source.clone(),
            target: e.target.clone(),
            types: Some(e.fstype.clone()),
            options,
            fstab: true,
        }
    }
}

/// A mount the kernel would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The record to add.
    pub mount: Mount,
    /// libmount fell back to read-only (util-linux warns "source
    /// write-protected, mounted read-only").
    pub read_only_fallback: bool,
}

/// Checks one mount in `ctx` as the kernel and libmount would; nothing is
/// recorded.
pub fn plan(ctx: &Context, req: &Request) -> Result<Planned, MountFailure> {
    let generation = Generation::of(&ctx.release);
    let fail = |error: MountError| {
        Err(MountFailure {
            spec: req.target.clone(),
            error,
        })
    };
    let is_tag = req.source.starts_with("UUID=") || req.source.starts_with("LABEL=");
    let Some(r) = ctx.resolve(&req.source) else {
        if is_tag {
            return fail(MountError::CantFind(req.source.clone()));
        }
        if !req.target.starts_with('/') {
            return fail(MountError::NoMountPoint);
        }
        return fail(MountError::NoDevice {
            dev: req.source.clone(),
        });
    };
    // A device name resolves to a device; a path would be a mount point.
    if !req.source.starts_with("/dev/") && !is_tag {
        return fail(MountError::NoDevice {
            dev: req.source.clone(),
        });
    }
    if !req.target.starts_with('/') {
        return fail(MountError::NoMountPoint);
    }
    let dev = r.dev_path();
    let mine = ctx.mounts_of(&r);
    let on: Vec<String> = mine.iter().map(|m| m.target.clone()).collect();
    // The kernel keeps one superblock per device: mounting it again on the
    // same (topmost) mount point, or as another type, is EBUSY.
    let top_here = ctx.mounts.iter().rev().find(|m| m.target == req.target);
    let same_top = top_here.is_some_and(|m| {
        m.volume_id == r.disk.view.volume_id && m.partition == r.part.as_ref().map(|p| p.number)
    });
    let info = r.probe();
    let wanted: Vec<&str> = match req.types.as_deref() {
        None | Some("auto") | Some("") => Vec::new(),
        Some(t) => t.split(',').filter(|t| !t.is_empty()).collect(),
    };
    if let Some(unknown) = wanted.iter().find(|t| !KERNEL_TYPES.contains(t)) {
        if wanted.len() == 1 {
            return fail(MountError::UnknownType((*unknown).to_string()));
        }
    }
    let type_ok = |i: &FsInfo| mount_type(i, &wanted).is_some();
    if !mine.is_empty() && (same_top || info.as_ref().is_some_and(|i| !type_ok(i))) {
        return fail(MountError::Busy { src: dev, on });
    }
    // libmount finds "swap" and the kernel knows no such filesystem.
    if wanted.is_empty() && info.as_ref().is_some_and(|i| i.kind == FsKind::Swap) {
        return fail(MountError::UnknownType("swap".into()));
    }
    let Some(info) = info.filter(|i| i.clean && type_ok(i)) else {
        return fail(MountError::WrongFs { dev });
    };
    let Ok(mut options) = kernel_options(info.kind, &req.options, generation) else {
        return fail(MountError::WrongFs { dev });
    };
    // A second mount shares the superblock, whose read-only state it may
    // not change (EBUSY). Since 2.36 libmount then tries read-only, which
    // works when the superblock is read-only.
    let is_ro = |o: &str| o.split(',').next() == Some("ro");
    let mut read_only_fallback = false;
    if let Some(first) = mine.first() {
        if is_ro(&first.options) != is_ro(&options) {
            if !is_ro(&first.options) || !retries_read_only(&ctx.release) {
                return fail(MountError::Busy { src: dev, on });
            }
            let mut o = req.options.clone();
            o.push("ro".into());
            let Ok(ro) = kernel_options(info.kind, &o, generation) else {
                return fail(MountError::WrongFs { dev });
            };
            options = ro;
            read_only_fallback = true;
        }
    }
    // A first mount makes the kernel read the filesystem's metadata; a
    // second one shares the superblock already read.
    if mine.is_empty() && info.kind == FsKind::Xfs {
        if let Some(error) = xfs_mount_failure(&r, is_ro(&options), &dev) {
            return fail(error);
        }
    }
    Ok(Planned {
        mount: Mount {
            volume_id: r.disk.view.volume_id.clone(),
            partition: r.part.as_ref().map(|p| p.number),
            source: dev,
            target: req.target.clone(),
            fstype: mount_type(&info, &wanted)
                .unwrap_or(info.kind.name())
                .to_string(),
            options,
            fstab: req.fstab,
        },
        read_only_fallback,
    })
}

/// Whether the guest's kernel would refuse to mount the XFS on `r`
/// (`read_only`: a read-only mount), from the first AG header or inode
/// btree root its verifiers reject ([`Xfs::verify_ags`]) and what a mount
/// does with it ([`xfs::Corruption::mount_effect`]): a root inode it cannot
/// read fails every mount with EUCLEAN; a block read while reserving per-AG
/// space fails a read-write mount with EIO (a read-only mount reserves
/// nothing and succeeds, as Linux 6.18 does on a loop device); the rest
/// mount, and fail later, on first use. When several blocks are damaged,
/// the first one found decides. What cannot be read or checked here (a
/// dirty log, a device shorter than the filesystem) is left to the probe's
/// verdict.
fn xfs_mount_failure(r: &Resolved, read_only: bool, dev: &str) -> Option<MountError> {
    let fs = Xfs::open(r.open(Access::ReadOnly).ok()?).ok()?;
    let head = fs.log_head().ok()?;
    let Err(xfs::Error::Metadata(c)) = fs.verify_ags(&head) else {
        return None;
    };
    let dev = dev.to_string();
    match c.mount_effect(fs.sb()) {
        MountEffect::RootInodeUnreadable { .. } => Some(MountError::NeedsCleaning { dev }),
        MountEffect::ReservationFails if !read_only => Some(MountError::Unreadable { dev }),
        _ => None,
    }
}

/// The mount table `mount` lists: the mounts of the `-t` types in mount
/// order, each with its filesystem's label when `labels` (`-l`) and it has
/// one. The label is found by mount point: a source such as Ubuntu's
/// `/dev/root` is not a device node.
pub fn table<'a>(
    ctx: &'a Context,
    types: Option<&str>,
    labels: bool,
) -> Vec<(&'a Mount, Option<String>)> {
    ctx.mounts
        .iter()
        .filter(|m| types.is_none_or(|t| type_matches(t, &m.fstype)))
        .map(|m| {
            let label = labels
                .then(|| ctx.resolve(&m.target).and_then(|r| r.probe()))
                .flatten()
                .map(|i| i.label)
                .filter(|l| !l.is_empty());
            (m, label)
        })
        .collect()
}

/// A mount's source as libmount-based tools (mount, findmnt) show it: the
/// kernel's `/dev/root` (the root filesystem the kernel mounted from its
/// command line, as `/proc/mounts` and df show it) becomes the device's own
/// name, as libmount's `kernel_fs_postparse` does since util-linux 2.23.
pub fn libmount_source(ctx: &Context, m: &Mount) -> String {
    if m.source == "/dev/root" {
        if let Some(r) = ctx.resolve(&m.target) {
            return r.dev_path();
        }
    }
    m.source.clone()
}

/// The fstab entry `spec` names: its mount point, or its device.
pub fn fstab_entry<'a>(ctx: &'a Context, spec: &str) -> Option<&'a Mount> {
    if spec.starts_with('/') && !spec.starts_with("/dev/") {
        let t = normalize_path(spec);
        return ctx.fstab.iter().find(|m| m.target == t);
    }
    let dev = ctx.resolve(spec)?.dev_path();
    ctx.fstab.iter().find(|m| m.source == dev)
}

/// `mount DIR` / `mount DEVICE`: the mount fstab asks for.
pub fn plan_fstab(ctx: &Context, spec: &str, extra: &[String]) -> Result<Planned, MountFailure> {
    let Some(e) = fstab_entry(ctx, spec) else {
        return Err(MountFailure {
            spec: spec.to_string(),
            error: MountError::NotInFstab,
        });
    };
    plan(ctx, &Request::from_fstab(e, extra))
}

/// What `mount -a` does with one fstab entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FstabStep {
    /// Not of the `-t` types: left alone.
    Excluded,
    /// Mounted already.
    AlreadyMounted,
    /// To mount now (or why not).
    Mount(Result<Planned, MountFailure>),
}

/// `mount -a` on the fstab entry `e` (of `ctx.fstab`), given the mounts so
/// far: a caller goes through the entries in order, recording each mount
/// in `ctx.mounts` before the next entry.
pub fn fstab_step(ctx: &Context, e: &Mount, types: Option<&str>, extra: &[String]) -> FstabStep {
    if types.is_some_and(|t| !type_matches(t, &e.fstype)) {
        return FstabStep::Excluded;
    }
    let mounted = ctx
        .mounts
        .iter()
        .any(|m| m.target == e.target && m.volume_id == e.volume_id && m.partition == e.partition);
    if mounted {
        return FstabStep::AlreadyMounted;
    }
    FstabStep::Mount(plan(ctx, &Request::from_fstab(e, extra)))
}

/// Why an unmount failed (umount(8)'s cases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UmountError {
    /// EINVAL: the path or device is not mounted.
    NotMounted,
    /// ENOENT: no such path or device.
    NoMountPoint,
    /// EBUSY (`/`, or mounts below it without `-l`/`-R`): named by the
    /// mount point.
    Busy(String),
    /// `-R` on something that is no mount point: `exists` tells umount's
    /// "not mounted" from "not found".
    NotAMountPoint {
        /// Whether the path or device exists.
        exists: bool,
    },
}

/// The index in `ctx.mounts` of the mount `spec` names: a mount point (the
/// topmost mount there), or a device (its most recent mount).
pub fn find_mount(ctx: &Context, spec: &str) -> Result<usize, UmountError> {
    let is_dev =
        spec.starts_with("/dev/") || spec.starts_with("UUID=") || spec.starts_with("LABEL=");
    if !is_dev {
        let t = if spec.starts_with('/') {
            normalize_path(spec)
        } else {
            spec.to_string()
        };
        return ctx
            .mounts
            .iter()
            .rposition(|m| m.target == t)
            .ok_or(UmountError::NotMounted);
    }
    let r = ctx.resolve(spec).ok_or(UmountError::NoMountPoint)?;
    let part = r.part.as_ref().map(|p| p.number);
    ctx.mounts
        .iter()
        .rposition(|m| m.volume_id == r.disk.view.volume_id && m.partition == part)
        .ok_or(UmountError::NotMounted)
}

/// Whether `child` lies below the mount point `parent`.
pub fn below(parent: &str, child: &str) -> bool {
    if parent == "/" {
        return child != "/";
    }
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The mounts `umount SPEC` removes, in the order to remove them: the ones
/// mounted later below it (or on top of it), deepest last-mounted first,
/// then itself. `lazy`/`recursive`: `-l`/`-R` (otherwise those mounts keep
/// it busy).
pub fn plan_umount(
    ctx: &Context,
    spec: &str,
    lazy: bool,
    recursive: bool,
) -> Result<Vec<Mount>, UmountError> {
    // -R looks the argument up among mount points only.
    if recursive {
        let t = if spec.starts_with('/') {
            normalize_path(spec)
        } else {
            spec.to_string()
        };
        if !ctx.mounts.iter().any(|m| m.target == t) {
            let exists = !spec.starts_with("/dev/") || ctx.resolve(spec).is_some();
            return Err(UmountError::NotAMountPoint { exists });
        }
    }
    let idx = find_mount(ctx, spec)?;
    let Some(m) = ctx.mounts.get(idx).cloned() else {
        return Err(UmountError::NotMounted);
    };
    // The emulated system runs from `/`.
    if m.target == "/" {
        return Err(UmountError::Busy(m.target));
    }
    let children: Vec<Mount> = ctx
        .mounts
        .iter()
        .skip(idx + 1)
        .filter(|x| below(&m.target, &x.target) || x.target == m.target)
        .cloned()
        .collect();
    if !children.is_empty() && !lazy && !recursive {
        return Err(UmountError::Busy(m.target));
    }
    let mut gone: Vec<Mount> = children.into_iter().rev().collect();
    gone.push(m);
    Ok(gone)
}

/// `umount -a`: the mounts to remove (of the `-t` types), last mounted
/// first. `/` stays (it is busy) and is reported by the caller.
pub fn umount_all_order(ctx: &Context, types: Option<&str>) -> Vec<Mount> {
    ctx.mounts
        .iter()
        .rev()
        .filter(|m| types.is_none_or(|t| type_matches(t, &m.fstype)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::release;

    fn generation(r: &OsRelease) -> Generation {
        Generation::of(r)
    }

    #[test]
    fn options_as_proc_mounts_shows_them() {
        let none: Vec<String> = Vec::new();
        let v230 = generation(&release::AMAZON_LINUX_2);
        let v223 = generation(&release::CENTOS_7);
        let v238 = generation(&release::DEBIAN_12);
        assert_eq!(
            kernel_options(FsKind::Xfs, &none, v230).as_deref(),
            Ok("rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
        assert_eq!(
            kernel_options(FsKind::Xfs, &none, v223).as_deref(),
            Ok("rw,relatime,attr2,inode64,noquota")
        );
        assert_eq!(
            kernel_options(FsKind::Ext4, &none, v238).as_deref(),
            Ok("rw,relatime")
        );
        let ubuntu = vec!["discard,errors=remount-ro".to_string()];
        assert_eq!(
            kernel_options(FsKind::Ext4, &ubuntu, v230).as_deref(),
            Ok("rw,relatime,discard,errors=remount-ro")
        );
        let al = vec!["defaults,noatime,nofail".to_string(), "ro".to_string()];
        assert_eq!(
            kernel_options(FsKind::Xfs, &al, v230).as_deref(),
            Ok("ro,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
        assert_eq!(
            kernel_options(FsKind::Ext4, &["bogus".to_string()], v238),
            Err(BadOption("bogus".into()))
        );
        // The catalog's fstab options read back unchanged.
        let amzn = vec!["rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota".to_string()];
        assert_eq!(
            kernel_options(FsKind::Xfs, &amzn, v230).as_deref(),
            Ok("rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota")
        );
    }

    #[test]
    fn type_patterns() {
        assert!(type_matches("xfs", "xfs"));
        assert!(!type_matches("xfs", "ext4"));
        assert!(type_matches("ext4,xfs", "xfs"));
        assert!(!type_matches("noext4", "ext4"));
        assert!(type_matches("noext4", "xfs"));
        assert!(type_matches("nosuchfs", "xfs"));
    }

    #[test]
    fn generations() {
        assert_eq!(generation(&release::CENTOS_7), Generation::V223);
        assert_eq!(generation(&release::AMAZON_LINUX_2), Generation::V230);
        assert_eq!(generation(&release::AMAZON_LINUX_2023), Generation::V230);
        assert_eq!(generation(&release::DEBIAN_12), Generation::V238);
        assert!(!retries_read_only(&release::AMAZON_LINUX_2));
        assert!(retries_read_only(&release::UBUNTU_22_04));
    }

    #[test]
    fn below_mount_points() {
        assert!(below("/var", "/var/lib"));
        assert!(!below("/var", "/var"));
        assert!(!below("/var", "/varx"));
        assert!(below("/", "/boot"));
    }
}
