//! The command line's side of the instance model: which instance a guest
//! command runs in, and device names resolved to a volume's image (or a
//! partition's byte range of it).
//!
//! Lock order: a transaction on the state is finished before any image is
//! opened read-write (the clock may grow an image inside a transaction).

use ebsim::blockdev::image::Access;
use ebsim::blockdev::{ImageFile, Slice};
use ebsim::ec2::model::Mount;
use ebsim::ec2::{DEFAULT_REGION, Ec2};
use ebsim::guest::Snapshot;
pub use ebsim::guest::instance::Resolved;
use ebsim::guest::instance::{self, GuestDisk};

/// The instance environment variable (also set by `ebsim shell`).
pub const INSTANCE_ENV: &str = ebsim::ec2::guest::INSTANCE_ENV;

/// Why a guest command cannot run.
#[derive(Debug)]
pub struct NoGuest(pub String);

fn cloud() -> Result<Ec2, NoGuest> {
    Ec2::from_env(DEFAULT_REGION).map_err(|e| NoGuest(e.to_string()))
}

/// True when a guest context exists: `EBSIM_INSTANCE` is set (inside
/// `ebsim shell`/`exec`). Applets use it to pick the guest's tool versions.
pub fn in_instance() -> bool {
    std::env::var_os(INSTANCE_ENV).is_some_and(|v| !v.is_empty())
}

/// True when `arg` names a guest device rather than a host file.
pub fn is_device_name(arg: &str) -> bool {
    arg.starts_with("/dev/") || arg.starts_with("UUID=") || arg.starts_with("LABEL=")
}

/// What the current instance's guest sees now.
pub fn snapshot() -> Result<Snapshot, NoGuest> {
    let ec2 = cloud()?;
    ec2.transact(|txn| {
        let id = txn.resolve_instance(None)?;
        Ok(instance::snapshot(txn, &id)?)
    })
    .map_err(|e| NoGuest(plain(&e.to_string())))
}

/// For tools that take a device or a mount point (xfs_growfs, xfs_info):
/// `None` when `target` is the host's business (a relative path or a file
/// of this machine, or a path while no instance runs); otherwise the
/// instance's context, or the exit code after printing why a device name
/// cannot be used (`{prog}: no running instance...`).
pub fn target_context(prog: &str, target: &str) -> Option<Result<Context, i32>> {
    let is_dev = target.starts_with("/dev/");
    let host_file =
        !target.starts_with('/') || std::fs::metadata(target).is_ok_and(|m| m.is_file());
    if !is_dev && host_file {
        return None;
    }
    match context() {
        Ok(c) => Some(Ok(c)),
        Err(_) if !is_dev => None,
        Err(NoGuest(why)) => {
            super::output::err(&format!("{prog}: {why}\n"));
            Some(Err(1))
        }
    }
}

/// Resolves a device name, mount point or `UUID=`/`LABEL=` in the current
/// instance. `Ok(None)`: no such device there.
pub fn resolve(spec: &str) -> Result<Option<Resolved>, NoGuest> {
    Ok(context()?.resolve(spec))
}

/// Removes the mount at `target`; returns it (None: nothing there).
pub fn remove_mount(target: &str) -> Result<Option<Mount>, NoGuest> {
    let ec2 = cloud()?;
    ec2.transact(|txn| {
        let id = txn.resolve_instance(None)?;
        txn.remove_mount(&id, target)
    })
    .map_err(|e| NoGuest(plain(&e.to_string())))
}

/// Opens a resolved device: the volume's image, windowed to the partition.
pub fn open(r: &Resolved, access: Access) -> Result<Slice<ImageFile>, ebsim::blockdev::Error> {
    let img = ebsim::ec2::store::open_volume_image(r.image(), access)?;
    let (off, len) = r.range();
    Slice::new(img, off, len)
}

/// The model's error text without the AWS CLI framing.
fn plain(s: &str) -> String {
    s.trim().to_string()
}

/// The tool versions of the instance's image, for banners that follow the
/// guest (e2fsprogs' `resize2fs 1.46.5 (30-Dec-2021)`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTools {
    /// e2fsprogs version and date.
    pub e2fsprogs: (&'static str, &'static str),
    /// xfsprogs version.
    pub xfsprogs: &'static str,
}

/// The guest's tool versions, by the instance's util-linux (which names
/// the distribution: 2.23 CentOS 7, 2.30 AL2, 2.37.2 Ubuntu 22.04, 2.37.4
/// AL2023); the host's (Debian 12) when no instance is set.
pub fn guest_tools() -> GuestTools {
    let host = GuestTools {
        e2fsprogs: ("1.47.0", "5-Feb-2023"),
        xfsprogs: "6.1.0",
    };
    if !in_instance() {
        return host;
    }
    let Ok(ec2) = cloud() else { return host };
    let ul = ec2
        .transact(|txn| {
            let id = txn.resolve_instance(None)?;
            Ok(txn.instance(&id)?.util_linux.clone())
        })
        .unwrap_or_default();
    tools_of(&ul)
}

/// Everything a filesystem applet needs to know about the instance, read
/// in one transaction: its disks, its mounts (in mount order), its
/// util-linux version and the fstab of its image.
#[derive(Debug, Clone)]
pub struct Context {
    /// Its disks with their partitions.
    pub disks: Vec<GuestDisk>,
    /// Its mounts, oldest first.
    pub mounts: Vec<Mount>,
    /// The util-linux version of its image (`2.37.2`, ...).
    pub util_linux: String,
    /// The image's fstab entries that ebsim can mount (root volume only).
    pub fstab: Vec<Mount>,
}

impl Context {
    /// Resolves a device name, mount point or `UUID=`/`LABEL=` here.
    pub fn resolve(&self, spec: &str) -> Option<Resolved> {
        instance::resolve(&self.disks, &self.mounts, spec)
    }

    /// The guest's tool versions.
    pub fn tools(&self) -> GuestTools {
        tools_of(&self.util_linux)
    }

    /// The mounts of a device (volume and partition), oldest first.
    pub fn mounts_of(&self, r: &Resolved) -> Vec<&Mount> {
        let part = r.part.as_ref().map(|p| p.number);
        self.mounts
            .iter()
            .filter(|m| m.volume_id == r.disk.view.volume_id && m.partition == part)
            .collect()
    }

    /// True when a partition of the disk `r` names (a whole disk) is
    /// mounted: the kernel then refuses an exclusive open of the disk.
    pub fn disk_busy(&self, r: &Resolved) -> bool {
        r.part.is_none()
            && self
                .mounts
                .iter()
                .any(|m| m.volume_id == r.disk.view.volume_id && m.partition.is_some())
    }
}

/// The instance's context (one transaction).
pub fn context() -> Result<Context, NoGuest> {
    let ec2 = cloud()?;
    ec2.transact(|txn| {
        let id = txn.resolve_instance(None)?;
        let disks = instance::disks(txn, &id)?;
        let inst = txn.instance(&id)?;
        let fstab = fstab_of(inst.flavour.as_deref(), &disks);
        Ok(Context {
            mounts: inst.mounts.clone(),
            util_linux: inst.util_linux.clone(),
            disks,
            fstab,
        })
    })
    .map_err(|e| NoGuest(plain(&e.to_string())))
}

/// The fstab of a catalog image, as mounts of the root disk's partitions.
/// EFI system partitions are left out: ebsim leaves them unformatted.
fn fstab_of(flavour: Option<&str>, disks: &[GuestDisk]) -> Vec<Mount> {
    use ebsim::ec2::catalog;
    let (Some(c), Some(root)) = (
        flavour.and_then(catalog::by_key),
        disks.iter().find(|d| d.view.root),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in c.layout.partitions {
        let Some(fs) = p.fs else { continue };
        let Some(target) = fs.mount_point else {
            continue;
        };
        if fs.kind == catalog::FsKind::Vfat {
            continue;
        }
        out.push(Mount {
            volume_id: root.view.volume_id.clone(),
            partition: Some(p.number),
            source: format!(
                "/dev/{}",
                ebsim::ec2::guest::partition_name(&root.view.name, p.number)
            ),
            target: target.to_string(),
            fstype: fs.kind.name().to_string(),
            options: fs.options.to_string(),
            fstab: true,
        });
    }
    out
}

/// Records mounts in the current instance (one transaction).
pub fn add_mounts(ms: Vec<Mount>) -> Result<(), NoGuest> {
    let ec2 = cloud()?;
    ec2.transact(|txn| {
        let id = txn.resolve_instance(None)?;
        for m in ms {
            txn.add_mount(&id, m)?;
        }
        Ok(())
    })
    .map_err(|e| NoGuest(plain(&e.to_string())))
}

/// The tool versions that go with a util-linux version (see
/// [`guest_tools`]), for a guest whose instance is known.
pub fn tools_of(util_linux: &str) -> GuestTools {
    match util_linux {
        "2.23.2" | "2.30.2" => GuestTools {
            e2fsprogs: ("1.42.9", "28-Dec-2013"),
            xfsprogs: "4.5.0",
        },
        "2.37.2" => GuestTools {
            e2fsprogs: ("1.46.5", "30-Dec-2021"),
            xfsprogs: "5.13.0",
        },
        "2.37.4" => GuestTools {
            e2fsprogs: ("1.46.5", "30-Dec-2021"),
            xfsprogs: "5.18.0",
        },
        _ => GuestTools {
            e2fsprogs: ("1.47.0", "5-Feb-2023"),
            xfsprogs: "6.1.0",
        },
    }
}

/// `/var//lib/./x/` → `/var/lib/x` (what realpath gives for a path with
/// no links; mount points of the model are not host directories).
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The instance's context when there is a cloud state to read, for paths
/// that may or may not be the instance's (a mount point there, or a file
/// here): None without a state (nothing is created then) or an instance.
pub fn maybe_context() -> Option<Context> {
    let home = ebsim::ec2::store::Home::from_env().ok()?;
    if !home.state_path().exists() {
        return None;
    }
    context().ok()
}
