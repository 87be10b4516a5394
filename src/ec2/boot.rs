//! What an instance's own boot does to its root disk: cloud-init's
//! `growpart` and `resizefs` modules, which the four catalog AMIs run at
//! every boot (both modules are `frequency always` in cloud-init 19.3 to
//! 23.4, and each image's `cloud.cfg` lists them). At launch, start and
//! reboot the root partition is grown to the end of the disk and its
//! filesystem to the partition, through the same planners the typed
//! `growpart`, `resize2fs` and `xfs_growfs` use, and the modules' own log
//! lines are appended to the guest's `/var/log/cloud-init.log`.
//!
//! User data given at launch (`#cloud-config`) turns either off as
//! cloud-init reads it: a `growpart` entry whose `mode` is false-ish
//! (`off`, `false`, `no`, `0`, quoted or not) skips the partition, a
//! `resize_rootfs` that is not true-ish (`true`, `yes`, `on`, `1`) nor
//! `noblock` skips the filesystem. Amazon Linux 2 and 2023 set
//! `resize_rootfs: noblock` in their `cloud.cfg`: the resize is forked and
//! logged as such (ebsim finishes it before the next command looks).
//!
//! The work runs after the transaction that booted the instance (never
//! inside one: an image is opened read-write only outside the state lock).
//!
//! Every boot then mounts the guest's own `/etc/fstab` as systemd does
//! ([`fstab_failure`]): an entry without `nofail` is a mount that
//! `local-fs.target` requires, so a device that never shows up (a volume
//! detached, or attached under another name) or holds no filesystem
//! fails the mount once its device timeout (90 s) is over, `local-fs.target`
//! fails, and its `OnFailure=` starts `emergency.target`. sshd never
//! starts: the instance runs but cannot be reached, and EC2's instance
//! status check (an ARP reachability probe of the guest) fails while the
//! system check passes. With `nofail` the mount is only wanted and the
//! boot goes on. ebsim records why (the instance's `boot_failure`), its
//! instance check turns `impaired` and `ebsim shell` times out as ssh
//! does; the next boot that gets through clears it. Swap entries are left
//! out: `swap.target` has no `OnFailure=`, so a missing swap device only
//! delays the boot.

use super::time::Millis;
use crate::blockdev::image::Access;
use crate::blockdev::{BlockDevice, ImageFile, Slice, Staged};
use crate::fs::node::{Cred, Ctx, FileType, Timespec};
use crate::partition::{self, Label, grow};
use std::path::{Path, PathBuf};

/// A YAML scalar as PyYAML loads it (YAML 1.1): booleans, or text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scalar {
    Bool(bool),
    Text(String),
}

impl Scalar {
    /// PyYAML's reading of a plain or quoted scalar.
    fn parse(raw: &str) -> Scalar {
        let t = raw.trim();
        for q in ['\'', '"'] {
            if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
                return Scalar::Text(t[1..t.len() - 1].to_string());
            }
        }
        match t {
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
                Scalar::Bool(true)
            }
            "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
                Scalar::Bool(false)
            }
            _ => Scalar::Text(t.to_string()),
        }
    }

    /// Python's `str()` of the value.
    fn py_str(&self) -> String {
        match self {
            Scalar::Bool(true) => "True".into(),
            Scalar::Bool(false) => "False".into(),
            Scalar::Text(s) => s.clone(),
        }
    }

    /// cloud-init's `util.is_false`.
    fn is_false(&self) -> bool {
        match self {
            Scalar::Bool(b) => !b,
            Scalar::Text(s) => {
                matches!(
                    s.trim().to_lowercase().as_str(),
                    "off" | "0" | "no" | "false"
                )
            }
        }
    }
}

/// How the resizefs module is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeRootfs {
    /// Resize and wait (`val=` the value's text, `True` by default).
    Block(String),
    /// `noblock`: resize in a forked child.
    NoBlock,
    /// Not true-ish: skipped.
    Off,
}

/// The part of an instance's cloud configuration these modules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// `growpart: {mode: ...}` when the user data has a `growpart` entry
    /// (None: the default, `auto`); the mode as Python prints it.
    growpart_mode: Option<Scalar>,
    /// The `growpart` entry is present but not a mapping.
    growpart_not_dict: bool,
    /// resizefs.
    pub resize: ResizeRootfs,
}

impl CloudConfig {
    /// Whether growpart is off.
    pub fn growpart_off(&self) -> bool {
        self.growpart_not_dict || self.growpart_mode.as_ref().is_some_and(Scalar::is_false)
    }
}

/// The cloud configuration of an image (`distro_noblock`: its `cloud.cfg`
/// sets `resize_rootfs: noblock`, as Amazon Linux's do) merged with the
/// user data. User data that is not `#cloud-config` (a script, or nothing)
/// changes neither module. Only the two keys are read, in the block or
/// flow forms a user writes (`growpart: {mode: off}`, or `growpart:` then
/// an indented `mode: off`).
pub fn cloud_config(user_data: Option<&str>, distro_noblock: bool) -> CloudConfig {
    let mut growpart_mode = None;
    let mut growpart_not_dict = false;
    let mut resize_val: Option<Scalar> = None;
    let text = user_data.unwrap_or("");
    let is_cloud_config = text
        .lines()
        .next()
        .is_some_and(|l| l.trim_end().starts_with("#cloud-config"));
    if is_cloud_config {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = strip_comment(lines[i]);
            i += 1;
            if line.starts_with([' ', '\t']) || line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "growpart" => {
                    if value.is_empty() {
                        // Block mapping: the indented lines below.
                        let mut found = None;
                        let mut any = false;
                        while i < lines.len() {
                            let l = strip_comment(lines[i]);
                            if !(l.starts_with([' ', '\t']) || l.trim().is_empty()) {
                                break;
                            }
                            i += 1;
                            if let Some((k, v)) = l.trim().split_once(':') {
                                any = true;
                                if k.trim() == "mode" {
                                    found = Some(Scalar::parse(v));
                                }
                            }
                        }
                        growpart_not_dict = !any;
                        growpart_mode = Some(found.unwrap_or(Scalar::Text("auto".into())));
                    } else if let Some(inner) =
                        value.strip_prefix('{').and_then(|v| v.strip_suffix('}'))
                    {
                        let mut mode = Scalar::Text("auto".into());
                        for item in inner.split(',') {
                            if let Some((k, v)) = item.split_once(':') {
                                if k.trim() == "mode" {
                                    mode = Scalar::parse(v);
                                }
                            }
                        }
                        growpart_mode = Some(mode);
                    } else {
                        growpart_not_dict = true;
                        growpart_mode = None;
                    }
                }
                "resize_rootfs" => resize_val = Some(Scalar::parse(value)),
                _ => {}
            }
        }
    }
    let resize_val = resize_val.unwrap_or(if distro_noblock {
        Scalar::Text("noblock".into())
    } else {
        Scalar::Bool(true)
    });
    // get_cfg_option_str, then translate_bool with the noblock addon.
    let s = resize_val.py_str();
    let resize = match s.trim().to_lowercase().as_str() {
        "noblock" => ResizeRootfs::NoBlock,
        "true" | "1" | "on" | "yes" => ResizeRootfs::Block(s),
        _ => ResizeRootfs::Off,
    };
    CloudConfig {
        growpart_mode,
        growpart_not_dict,
        resize,
    }
}

/// A line without its YAML comment (a `#` at the start or after a space).
fn strip_comment(l: &str) -> &str {
    let b = l.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'#' && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return &l[..i];
        }
    }
    l
}

/// The standard base64 alphabet's decoding of `s` (whitespace ignored,
/// padding optional); None when it is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut pad = false;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad = true;
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        if pad {
            return None;
        }
        acc = ((acc << 6) | u32::from(v)) & 0x00ff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One boot's work on one instance, read from the state.
#[derive(Debug, Clone)]
pub struct BootJob {
    /// The instance.
    pub instance_id: String,
    /// The root volume's image file.
    pub image: PathBuf,
    /// The root disk's kernel name (`xvda`, `nvme0n1`).
    pub disk: String,
    /// The root partition's number.
    pub partition: u32,
    /// The device the root's mount names (`/dev/root` on Ubuntu).
    pub mount_source: String,
    /// The root filesystem's type (`ext4`, `xfs`).
    pub fstype: String,
    /// The image's flavour (catalog key).
    pub flavour: String,
    /// The instance's user data, decoded.
    pub user_data: Option<String>,
    /// The boot's time.
    pub now: Millis,
}

/// Whether the image of `flavour` runs cloud-init's growpart and resizefs
/// at boot (every catalog image does), and whether its `cloud.cfg` sets
/// `resize_rootfs: noblock` (Amazon Linux 2 and 2023).
pub fn runs_cloud_init(flavour: &str) -> Option<bool> {
    if flavour.starts_with("amzn2") || flavour.starts_with("al2023") {
        Some(true)
    } else if flavour.starts_with("ubuntu") || flavour.starts_with("centos") {
        Some(false)
    } else {
        None
    }
}

/// The entries of the guest's `/etc/fstab` that stop its boot in
/// emergency mode (see the module documentation), as one sentence, or
/// None when the boot gets through (or the fstab cannot be read: ebsim
/// then keeps the instance reachable).
pub fn fstab_failure(ec2: &super::Ec2, instance: &str) -> Option<String> {
    let ctx = crate::guest::Context::load(ec2, Some(instance)).ok()?;
    let root = ctx.mounts.iter().find(|m| m.target == "/")?;
    let image = ec2.home().volume_image(&root.volume_id);
    let text = read_file(&image, root.partition, b"/etc/fstab").ok()?;
    let text = String::from_utf8_lossy(&text);
    let (_, skipped) = crate::guest::fstab::mounts(&text, &ctx.disks, &ctx.links);
    let failed: Vec<String> = skipped
        .iter()
        .filter(|(e, why)| {
            !e.has("nofail")
                && matches!(
                    *why,
                    crate::guest::fstab::NO_DEVICE | crate::guest::fstab::NO_FILESYSTEM
                )
        })
        .map(|(e, why)| {
            format!(
                "/etc/fstab mounts {} on {} without nofail, and {why}: the mount timed out, local-fs.target failed and the boot stopped in emergency mode (sshd never started)",
                e.spec, e.file
            )
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// A file of a filesystem in an image (read-only, through the file layer).
pub fn read_file(image: &Path, partition: Option<u32>, path: &[u8]) -> Result<Vec<u8>, String> {
    let o = crate::imgio::open(image, partition, false).map_err(|e| e.to_string())?;
    let attr = crate::fs::path::lookup(o.fs.as_ref(), path, true).map_err(|e| e.to_string())?;
    let len = usize::try_from(attr.size).map_err(|e| e.to_string())?;
    if len > 16 << 20 {
        return Err(format!("{} bytes: too large", attr.size));
    }
    let mut buf = vec![0u8; len];
    let mut off = 0usize;
    while off < len {
        let n =
            o.fs.read(attr.ino, off as u64, buf.get_mut(off..).unwrap_or_default())
                .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        off += n;
    }
    buf.truncate(off);
    Ok(buf)
}

/// A log line as cloud-init's file handler writes it.
fn log_line(now: Millis, module: &str, level: &str, msg: &str) -> String {
    let (y, mo, d, h, mi, s, ms) = now.civil();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{ms:03} - {module}[{level}]: {msg}\n")
}

/// Why a boot step failed (written to the log as cloud-init's warning).
fn io_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Runs the two modules on the job's root and appends their lines to the
/// guest's `/var/log/cloud-init.log`. Returns the lines written.
///
/// The three steps (partition, filesystem, log) are staged in memory over
/// the image and reach it in one commit, through its undo log: a boot cut
/// short anywhere leaves the root as it was before the boot or as a whole
/// boot leaves it, never a grown partition under an ungrown filesystem.
pub fn run(job: &BootJob) -> Result<String, String> {
    let noblock = runs_cloud_init(&job.flavour).ok_or("no cloud-init in this image")?;
    let img = super::store::open_volume_image(&job.image, Access::ReadWrite)
        .map_err(|e| io_err("open", e))?;
    let dev = Staged::new(img);
    // What the steps staged reaches the image even when the log could not
    // be written (the growth stands, as on a real instance).
    let log = run_staged(job, noblock, &dev);
    dev.finish().map_err(|e| io_err("write", e))?;
    log
}

/// [`run`]'s steps on the staged device.
fn run_staged(job: &BootJob, noblock: bool, staged: &Staged<ImageFile>) -> Result<String, String> {
    let cfg = cloud_config(job.user_data.as_deref(), noblock);
    let mut log = String::new();
    let now = job.now;
    let gp = |level: &str, m: &str| log_line(now, "cc_growpart.py", level, m);
    let rf = |m: &str| log_line(now, "cc_resizefs.py", "DEBUG", m);
    let disk_dev = format!("/dev/{}", job.disk);

    // growpart
    match &cfg.growpart_mode {
        None if !cfg.growpart_not_dict => log.push_str(&gp(
            "DEBUG",
            "No 'growpart' entry in cfg.  Using default: {'mode': 'auto', 'devices': ['/'], 'ignore_growroot_disabled': False}",
        )),
        _ => {}
    }
    if cfg.growpart_not_dict {
        log.push_str(&gp("WARNING", "'growpart' in config was not a dict"));
    } else if let Some(mode) = cfg.growpart_mode.as_ref().filter(|m| m.is_false()) {
        log.push_str(&gp(
            "DEBUG",
            &format!("growpart disabled: mode={}", mode.py_str()),
        ));
    } else {
        let compat = super::catalog::release_of(Some(&job.flavour)).growpart;
        match grow_partition(staged, &job.disk, job.partition, compat) {
            Ok(Some((old, new))) => log.push_str(&gp(
                "INFO",
                &format!(
                    "'/' resized: changed ({disk_dev}, {}) from {old} to {new}",
                    job.partition
                ),
            )),
            Ok(None) => log.push_str(&gp(
                "DEBUG",
                &format!(
                    "'/' NOCHANGE: no change necessary ({disk_dev}, {})",
                    job.partition
                ),
            )),
            Err(e) => log.push_str(&gp(
                "DEBUG",
                &format!(
                    "'/' FAILED: failed to resize: disk={disk_dev}, ptnum={}: {e}",
                    job.partition
                ),
            )),
        }
    }

    // resizefs
    let range = partition_range(staged, job.partition);
    match &cfg.resize {
        ResizeRootfs::Off => {
            log.push_str(&rf("Skipping module named resizefs, resizing disabled"));
        }
        mode => {
            log.push_str(&rf(&format!(
                "resize_info: dev={} mnt_point=/ path=/",
                job.mount_source
            )));
            let mut dev = job.mount_source.clone();
            if dev == "/dev/root" {
                // Ubuntu's kernel command line names the root by PARTUUID.
                let partuuid = range
                    .as_ref()
                    .ok()
                    .and_then(|r| r.2.clone())
                    .unwrap_or_default();
                dev = format!("/dev/disk/by-partuuid/{partuuid}");
                log.push_str(&rf(&format!(
                    "Converted /dev/root to '{dev}' per kernel cmdline"
                )));
            }
            let cmd = if job.fstype == "xfs" {
                "xfs_growfs /".to_string()
            } else {
                format!("resize2fs {dev}")
            };
            log.push_str(&rf(&format!("Resizing / ({}) using {cmd}", job.fstype)));
            let grown = range
                .clone()
                .and_then(|(off, len, _)| grow_filesystem(staged, off, len, &job.fstype, now));
            let val = match mode {
                ResizeRootfs::Block(v) => v.clone(),
                _ => "noblock".to_string(),
            };
            match (&grown, mode) {
                (Err(e), ResizeRootfs::Block(_)) => {
                    log.push_str(&log_line(
                        now,
                        "util.py",
                        "WARNING",
                        &format!(
                            "Failed to resize filesystem (cmd=('{}'))",
                            cmd.replace(' ', "', '")
                        ),
                    ));
                    log.push_str(&rf(&format!("failed: {e}")));
                }
                (_, ResizeRootfs::NoBlock) => log.push_str(&rf(&format!(
                    "Resizing (via forking) root filesystem (type={}, val={val})",
                    job.fstype
                ))),
                _ => log.push_str(&rf(&format!(
                    "Resized root filesystem (type={}, val={val})",
                    job.fstype
                ))),
            }
        }
    }
    if let Ok((off, len, _)) = range {
        append_log(staged, off, len, &job.flavour, now, &log)?;
    }
    Ok(log)
}

/// The partition's (offset, length) in bytes and its GPT unique GUID in
/// lower case (None on MBR).
fn partition_range(
    img: &Staged<ImageFile>,
    part: u32,
) -> Result<(u64, u64, Option<String>), String> {
    let probe = partition::probe(img).map_err(|e| io_err("partition table", e))?;
    let label = probe.label.ok_or("no partition table")?;
    let (_, first, sectors) = label
        .partitions()
        .into_iter()
        .find(|(n, _, _)| *n == part)
        .ok_or_else(|| format!("no partition {part}"))?;
    let guid = match &label {
        Label::Gpt(g) => g
            .entries
            .get(part.saturating_sub(1) as usize)
            .map(|e| e.unique_guid.to_string().to_lowercase()),
        Label::Dos(_) => None,
    };
    Ok((
        first.saturating_mul(partition::SECTOR),
        sectors.saturating_mul(partition::SECTOR),
        guid,
    ))
}

/// growpart DISK PART (the image's version of it) through the library's
/// planner: Some((old bytes, new bytes)) when it grew, None for NOCHANGE.
fn grow_partition(
    img: &Staged<ImageFile>,
    disk: &str,
    part: u32,
    compat: grow::Compat,
) -> Result<Option<(u64, u64)>, String> {
    let probe = partition::probe(img).map_err(|e| io_err("partition table", e))?;
    let label = probe.label.ok_or("no partition table")?;
    let sector0 = img
        .read_vec(0, partition::SECTOR as usize)
        .map_err(|e| io_err("read", e))?;
    let name = format!("/dev/{disk}");
    let view = grow::DiskView {
        name: &name,
        size_bytes: img.size(),
        sector0: &sector0,
        label: &label,
    };
    let opts = grow::GrowOptions {
        compat,
        ..grow::GrowOptions::default()
    };
    let outcome = grow::plan_grow(&view, &part.to_string(), &opts).map_err(|f| f.message)?;
    match outcome {
        grow::Outcome::NoChange(_) => Ok(None),
        grow::Outcome::Grow(p) => {
            let batch = p.writes.as_ref().map_err(|r| r.messages.join("; "))?;
            let mut img = img.clone();
            grow::apply(&mut img, batch).map_err(|e| io_err("write", e))?;
            Ok(Some((
                p.old_size.saturating_mul(partition::SECTOR),
                p.new_size.saturating_mul(partition::SECTOR),
            )))
        }
    }
}

/// resize2fs DEVICE (online) or xfs_growfs / on the partition's bytes,
/// through the library's planners, to the partition's size.
fn grow_filesystem(
    img: &Staged<ImageFile>,
    off: u64,
    len: u64,
    fstype: &str,
    now: Millis,
) -> Result<(), String> {
    let dev = Slice::new(img.clone(), off, len).map_err(|e| io_err("partition", e))?;
    if fstype == "xfs" {
        use crate::fs::xfs::growfs_options::{DataStep, GrowOptions};
        use crate::fs::xfs::{Xfs, growfs};
        let fs = Xfs::open(dev).map_err(|e| io_err("xfs", e))?;
        let steps = GrowOptions::default().steps(fs.sb(), len);
        if let DataStep::Grow { blocks, imaxpct } = steps.data {
            let plan = growfs::plan(
                &fs,
                &growfs::GrowRequest {
                    newblocks: blocks,
                    imaxpct: Some(imaxpct),
                },
            )
            .map_err(|e| io_err("xfs_growfs", e))?;
            let mut dev = fs.into_inner();
            growfs::apply(&mut dev, &plan).map_err(|e| io_err("xfs_growfs", e))?;
        }
        Ok(())
    } else {
        use crate::fs::ext4::{fs::Ext4, grow as egrow};
        let mut fs = Ext4::open(dev).map_err(|e| io_err("resize2fs", e))?;
        let req = egrow::GrowRequest {
            size: None,
            force: false,
            online: true,
            image_file: false,
            now: u64::try_from(now.0 / 1000).unwrap_or(0),
            ..Default::default()
        };
        match egrow::plan(&fs, &req).map_err(|e| io_err("resize2fs", e))? {
            egrow::GrowOutcome::Grow(p) => {
                egrow::apply(fs.device_mut(), &p.batch).map_err(|e| io_err("resize2fs", e))
            }
            egrow::GrowOutcome::NothingToDo { .. } => Ok(()),
        }
    }
}

/// Appends `text` to `/var/log/cloud-init.log` of the root filesystem in
/// the partition (made at the first boot as cloud-init makes it: 0640
/// root:adm on Ubuntu, whose `syslog_fix_perms` sets that, 0644 root:root
/// on the others).
fn append_log(
    img: &Staged<ImageFile>,
    off: u64,
    len: u64,
    flavour: &str,
    now: Millis,
    text: &str,
) -> Result<(), String> {
    let dev = Slice::new(img.clone(), off, len).map_err(|e| io_err("partition", e))?;
    let (_, mut fs) = crate::fs::open_files(dev, true).map_err(|e| io_err("root filesystem", e))?;
    let ctx = Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: now.0.div_euclid(1000),
            nsec: u32::try_from(now.0.rem_euclid(1000) * 1_000_000).unwrap_or(0),
        },
    };
    let path = b"/var/log/cloud-init.log";
    let at = crate::fs::path::parent(fs.as_ref(), path).map_err(|e| io_err("/var/log", e))?;
    let name = at.name.ok_or("/var/log/cloud-init.log: not a file name")?;
    let attr = match fs.lookup(at.dir, &name) {
        Ok(a) => a,
        Err(_) => {
            let (perm, gid) = if flavour.starts_with("ubuntu") {
                (0o640, 4)
            } else {
                (0o644, 0)
            };
            let a = fs
                .mknod(ctx, at.dir, &name, FileType::Regular, perm, 0)
                .map_err(|e| io_err("/var/log/cloud-init.log", e))?;
            if gid != 0 {
                let set = crate::fs::node::SetAttr {
                    gid: Some(gid),
                    ..Default::default()
                };
                fs.setattr(ctx, a.ino, set)
                    .map_err(|e| io_err("/var/log/cloud-init.log", e))?;
            }
            a
        }
    };
    let mut off = 0usize;
    let bytes = text.as_bytes();
    while off < bytes.len() {
        let n = fs
            .write(ctx, attr.ino, attr.size + off as u64, &bytes[off..])
            .map_err(|e| io_err("/var/log/cloud-init.log", e))?;
        if n == 0 {
            return Err("/var/log/cloud-init.log: short write".into());
        }
        off += n;
    }
    fs.sync().map_err(|e| io_err("sync", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_data_turns_the_modules_off_as_cloud_init_reads_it() {
        let d = cloud_config(None, false);
        assert!(!d.growpart_off());
        assert_eq!(d.resize, ResizeRootfs::Block("True".into()));
        assert_eq!(cloud_config(None, true).resize, ResizeRootfs::NoBlock);
        for off in [
            "#cloud-config\ngrowpart: {mode: off}\nresize_rootfs: false\n",
            "#cloud-config\ngrowpart:\n  mode: 'off'\nresize_rootfs: False\n",
            "#cloud-config\n# comment\ngrowpart:\n    mode: false # no\nresize_rootfs: \"no\"\n",
            "#cloud-config\ngrowpart: {mode: \"0\", devices: ['/']}\nresize_rootfs: off\n",
        ] {
            let c = cloud_config(Some(off), true);
            assert!(c.growpart_off(), "{off}");
            assert_eq!(c.resize, ResizeRootfs::Off, "{off}");
        }
        // Not cloud-config: a script changes nothing.
        let s = cloud_config(Some("#!/bin/sh\ngrowpart: {mode: off}\n"), false);
        assert!(!s.growpart_off());
        let c = cloud_config(Some("#cloud-config\nresize_rootfs: noblock\n"), false);
        assert_eq!(c.resize, ResizeRootfs::NoBlock);
        let c = cloud_config(
            Some("#cloud-config\nresize_rootfs: yes\ngrowpart: {mode: auto}\n"),
            true,
        );
        assert_eq!(c.resize, ResizeRootfs::Block("True".into()));
        assert!(!c.growpart_off());
    }

    #[test]
    fn base64_round_trips() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "#cloud-config\ngrowpart: {mode: off}\n",
        ] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("not base64!"), None);
    }
}
