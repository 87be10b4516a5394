//! Labs: a scenario file (TOML) that sets up a world — instances from
//! AMIs, volumes, their tables, filesystems and fill levels, pre-applied
//! states — as a list of commands run in the instance, and states
//! objectives a grader checks against the state, the layers, the files
//! and the instance's command log. Each lab ships a scripted correct
//! solution and a scripted typical mistake (the tests run both).
//!
//! ```toml
//! name = "resize-before-growpart"
//! title = "..."
//! task = "..."            # what the student is asked to do
//! [[setup]]               # commands, as typed in the instance
//! run = "aws ec2 run-instances ... --output text"
//! capture = "INSTANCE"    # keep the first word of stdout as ${INSTANCE}
//! [[goal]]
//! kind = "filesystem-fills"
//! mount = "/"
//! why = "..."             # what an unmet goal usually means
//! [[solution]]
//! run = "sudo growpart /dev/xvda 1"
//! [mistake]
//! names = "resize2fs ran before growpart"   # the report of the mistake says this
//! [[mistake.steps]]
//! run = "sudo resize2fs /dev/xvda1"
//! ```
//!
//! Goal kinds: `disk-size` (device, size), `partition-fills` (device: the
//! partition reaches the end of its disk, or 2 TiB on MBR),
//! `filesystem-fills` (mount: the filesystem fills its partition or disk),
//! `data-intact` (path, sha256), `swap-file` (path: the guest file holds
//! a swap area), `snapshot-before-modify` (volume),
//! `order` (first, then: every run of `then` came after a run of
//! `first`), `volume-state` (volume, state: available, in-use, deleted),
//! `instance-state` (instance, state), `instance-status` (instance,
//! status: its instance status check, `ok` or `impaired` after a boot that
//! stopped in emergency mode), `fstab-nofail` (mount: the guest's own
//! `/etc/fstab` entry for that mount point has `nofail`).
//!
//! Pre-applied states are setup commands like any other: a fill level is
//! `fallocate` or `dd`, a table `sfdisk`, an fstab line `sudo tee -a
//! /etc/fstab` with the line as its `stdin` (written into the guest's
//! root filesystem through the file layer).

use super::layers::{self, Layers, MBR_LIMIT, human};
use crate::ec2::Ec2;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;

/// Errors of labs.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A lab file that does not parse.
    #[error("lab {name}: {reason}")]
    Format {
        /// The lab.
        name: String,
        /// Why.
        reason: String,
    },
    /// No lab of that name.
    #[error("no lab named {0:?} (see `ebsim lab list`)")]
    NotFound(String),
    /// No lab started in this home.
    #[error("no lab started here (ebsim lab start NAME)")]
    NotStarted,
    /// The cloud refused.
    #[error("{0}")]
    Ec2(#[from] crate::ec2::Error),
    /// The layers could not be read.
    #[error("{0}")]
    Layers(#[from] layers::LayersError),
    /// A file of the lab's state.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One command of a setup, solution or mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The command line, as typed in the instance (words split on blanks;
    /// `${VAR}` substituted).
    pub run: String,
    /// Keep the first word of its stdout as this variable.
    #[serde(default)]
    pub capture: Option<String>,
    /// Its standard input.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// What a goal checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Check {
    /// The disk's size.
    DiskSize {
        /// `/dev/xvda`.
        device: String,
        /// `16G` (GiB), `3T` (TiB), or bytes.
        size: String,
    },
    /// The partition reaches the end of its disk (2 TiB on MBR).
    PartitionFills {
        /// `/dev/xvda1`.
        device: String,
    },
    /// The filesystem mounted there fills its partition or disk.
    FilesystemFills {
        /// The mount point.
        mount: String,
    },
    /// A file still holds what it held.
    DataIntact {
        /// Its guest path.
        path: String,
        /// Its SHA-256 (hex).
        sha256: String,
    },
    /// A file of the instance holds a swap area (`mkswap` on it).
    SwapFile {
        /// Its guest path.
        path: String,
    },
    /// A snapshot of the volume was started before its first modification.
    SnapshotBeforeModify {
        /// The volume.
        volume: String,
    },
    /// Every run of `then` came after a run of `first` (applet names).
    Order {
        /// The tool that must come first.
        first: String,
        /// The tool that must come after it.
        then: String,
    },
    /// A volume's state (`available`, `in-use`, `deleted`).
    VolumeState {
        /// The volume.
        volume: String,
        /// The state wanted.
        state: String,
    },
    /// An instance's state.
    InstanceState {
        /// The instance.
        instance: String,
        /// The state wanted.
        state: String,
    },
    /// An instance's instance status check.
    InstanceStatus {
        /// The instance.
        instance: String,
        /// `ok` or `impaired`.
        status: String,
    },
    /// The guest's `/etc/fstab` entry for a mount point has `nofail`.
    FstabNofail {
        /// The mount point.
        mount: String,
    },
}

/// A goal: a check and what an unmet one usually means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// The check.
    #[serde(flatten)]
    pub check: Check,
    /// The usual mistake behind an unmet goal.
    #[serde(default)]
    pub why: Option<String>,
}

/// The scripted typical mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mistake {
    /// Words the failing report must contain (the mistake, named).
    pub names: String,
    /// The commands.
    pub steps: Vec<Step>,
}

/// A lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// Its name (`ebsim lab start NAME`).
    pub name: String,
    /// One line.
    pub title: String,
    /// What the student is asked to do.
    pub task: String,
    /// The world.
    pub setup: Vec<Step>,
    /// The objectives.
    pub goal: Vec<Goal>,
    /// A correct solution.
    pub solution: Vec<Step>,
    /// A typical mistake.
    pub mistake: Mistake,
}

/// The built-in labs' files.
const BUILTIN: &[(&str, &str)] = &[
    ("seed-xen", include_str!("labs/seed-xen.toml")),
    ("seed-nitro", include_str!("labs/seed-nitro.toml")),
    ("xfs-data-full", include_str!("labs/xfs-data-full.toml")),
    (
        "resize-before-growpart",
        include_str!("labs/resize-before-growpart.toml"),
    ),
    ("swap-after-root", include_str!("labs/swap-after-root.toml")),
    ("mbr-2tib", include_str!("labs/mbr-2tib.toml")),
    ("rate-limit", include_str!("labs/rate-limit.toml")),
    (
        "root-from-snapshot",
        include_str!("labs/root-from-snapshot.toml"),
    ),
    (
        "delete-on-termination",
        include_str!("labs/delete-on-termination.toml"),
    ),
    ("fstab-nofail", include_str!("labs/fstab-nofail.toml")),
];

/// Parses a lab file.
pub fn parse(name: &str, text: &str) -> Result<Lab, LabError> {
    toml::from_str(text).map_err(|e| LabError::Format {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// The built-in labs' names.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A built-in lab, or a lab file (a path ending in `.toml`).
pub fn find(name: &str) -> Result<Lab, LabError> {
    if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return parse(n, text);
    }
    if name.ends_with(".toml") {
        let text = std::fs::read_to_string(name).map_err(|e| LabError::Io {
            path: name.to_string(),
            reason: e.to_string(),
        })?;
        return parse(name, &text);
    }
    Err(LabError::NotFound(name.to_string()))
}

/// Replaces `${VAR}` by its value.
pub fn subst(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

/// A started lab: which, and the variables its setup captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Started {
    /// The lab's name (or file).
    pub name: String,
    /// The captured variables.
    pub vars: BTreeMap<String, String>,
}

fn started_path(home: &Path) -> std::path::PathBuf {
    home.join("teach").join("lab.json")
}

/// Records the started lab (temp file, fsync, rename).
pub fn save_started(home: &Path, s: &Started) -> Result<(), LabError> {
    let p = started_path(home);
    let io = |e: std::io::Error| LabError::Io {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(io)?;
    }
    let tmp = p.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(s).map_err(|e| io(std::io::Error::other(e)))?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &p).map_err(io)
}

/// The started lab.
pub fn load_started(home: &Path) -> Result<Started, LabError> {
    let p = started_path(home);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| LabError::Io {
            path: p.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LabError::NotStarted),
        Err(e) => Err(LabError::Io {
            path: p.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What the goal asks.
    pub goal: String,
    /// Met.
    pub met: bool,
    /// What was found (and, unmet, why).
    pub detail: String,
}

/// A grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The lab.
    pub lab: String,
    /// One item per goal.
    pub items: Vec<Item>,
}

impl Report {
    /// Every goal met.
    pub fn passed(&self) -> bool {
        self.items.iter().all(|i| i.met)
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let met = self.items.iter().filter(|i| i.met).count();
        let mut o = format!(
            "lab {}: {met} of {} objectives met{}\n",
            self.lab,
            self.items.len(),
            if self.passed() { " - passed" } else { "" }
        );
        for i in &self.items {
            o.push_str(&format!(
                "  [{}] {}\n      {}\n",
                if i.met { "x" } else { " " },
                i.goal,
                i.detail
            ));
        }
        o
    }
}

/// A size in a lab file: `16G`, `3T`, `512M`, or bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'G') => (&s[..i], 1u64 << 30),
        (i, 'T') => (&s[..i], 1 << 40),
        (i, 'M') => (&s[..i], 1 << 20),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// The facts a grade is made from, read once.
pub struct Facts {
    /// The instance's layers (none once it is terminated).
    pub layers: Option<Layers>,
    /// The state document.
    pub state: crate::ec2::model::State,
    /// The command log.
    pub log: Vec<super::log::Entry>,
}

/// Reads the facts for `instance`.
pub fn facts(ec2: &Ec2, home: &Path, instance: &str) -> Result<Facts, LabError> {
    let state = ec2.transact(|txn| Ok(txn.state().clone()))?;
    let running = state
        .instances
        .get(instance)
        .is_some_and(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down"));
    let layers = if running {
        Some(layers::of_instance(ec2, Some(instance))?)
    } else {
        None
    };
    let log = super::log::read(home, instance).unwrap_or_default();
    Ok(Facts { layers, state, log })
}

fn tool_of(e: &super::log::Entry) -> &str {
    e.argv.first().map_or("", String::as_str)
}

/// The first `n` bytes of a guest file and its size.
fn head_of(
    ec2: &Ec2,
    f: &Facts,
    instance: &str,
    path: &str,
    n: u64,
) -> Result<(Vec<u8>, u64), String> {
    let mut head = Vec::new();
    let size = read_file(ec2, f, instance, path, &mut |b, off| {
        if off < n {
            let take = usize::try_from(n - off).unwrap_or(usize::MAX).min(b.len());
            head.extend_from_slice(b.get(..take).unwrap_or_default());
        }
        off + (b.len() as u64) < n
    })?;
    Ok((head, size))
}

fn sha256_of(ec2: &Ec2, f: &Facts, instance: &str, path: &str) -> Result<String, String> {
    let mut h = sha2::Sha256::new();
    read_file(ec2, f, instance, path, &mut |b, _| {
        h.update(b);
        true
    })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a guest file through the file layer of the filesystem mounted
/// above it, in 1 MiB pieces handed to `each` (with their offset) while
/// it returns true; returns the file's size.
fn read_file(
    ec2: &Ec2,
    f: &Facts,
    instance: &str,
    path: &str,
    each: &mut dyn FnMut(&[u8], u64) -> bool,
) -> Result<u64, String> {
    let inst = f
        .state
        .instances
        .get(instance)
        .ok_or_else(|| format!("instance {instance} is gone"))?;
    let m = inst
        .mounts
        .iter()
        .rev()
        .filter(|m| {
            path == m.target || m.target == "/" || path.starts_with(&format!("{}/", m.target))
        })
        .max_by_key(|m| m.target.len())
        .ok_or_else(|| format!("nothing is mounted above {path}"))?;
    let rel = if m.target == "/" {
        path.to_string()
    } else {
        path.strip_prefix(&m.target).unwrap_or(path).to_string()
    };
    let image = ec2.home().volume_image(&m.volume_id);
    let o = crate::imgio::open(&image, m.partition, false).map_err(|e| e.to_string())?;
    let attr = crate::fs::path::lookup(o.fs.as_ref(), rel.as_bytes(), true)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < attr.size {
        let n =
            o.fs.read(attr.ino, off, &mut buf)
                .map_err(|e| format!("{path}: {e}"))?;
        if n == 0 || !each(buf.get(..n).unwrap_or_default(), off) {
            break;
        }
        off += n as u64;
    }
    Ok(attr.size)
}

/// The guest's own `/etc/fstab` (read from its root filesystem).
fn guest_fstab(ec2: &Ec2, f: &Facts, instance: &str) -> Result<String, String> {
    let inst = f
        .state
        .instances
        .get(instance)
        .ok_or_else(|| format!("instance {instance} is gone"))?;
    let root = inst
        .mounts
        .iter()
        .find(|m| m.target == "/")
        .ok_or_else(|| format!("instance {instance} has no root filesystem mounted"))?;
    let image = ec2.home().volume_image(&root.volume_id);
    let b = crate::ec2::boot::read_file(&image, root.partition, b"/etc/fstab")
        .map_err(|e| format!("/etc/fstab: {e}"))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

fn disk_and_part<'a>(
    l: &'a Layers,
    device: &str,
) -> Option<(&'a layers::DiskLayers, Option<&'a layers::PartLayer>)> {
    for d in &l.disks {
        if d.path == device {
            return Some((d, None));
        }
        if let Some(p) = d
            .partitions
            .iter()
            .find(|p| format!("/dev/{}", p.name) == device)
        {
            return Some((d, Some(p)));
        }
    }
    None
}

/// Grades `lab` (its goals with the variables substituted).
pub fn grade(ec2: &Ec2, lab: &Lab, vars: &BTreeMap<String, String>, f: &Facts) -> Report {
    let instance = vars.get("INSTANCE").cloned().unwrap_or_default();
    let mut items = Vec::new();
    for g in &lab.goal {
        let s = |x: &str| subst(x, vars);
        let (goal, met, mut detail) = check(ec2, &g.check, &s, f, &instance);
        if !met {
            if let Some(w) = &g.why {
                detail.push_str(&format!("\n      why: {}", s(w)));
            }
        }
        items.push(Item { goal, met, detail });
    }
    Report {
        lab: lab.name.clone(),
        items,
    }
}

fn no_layers() -> (bool, String) {
    (
        false,
        "the instance is not running: its disks cannot be seen".into(),
    )
}

fn check(
    ec2: &Ec2,
    c: &Check,
    s: &dyn Fn(&str) -> String,
    f: &Facts,
    instance: &str,
) -> (String, bool, String) {
    match c {
        Check::DiskSize { device, size } => {
            let (device, want) = (s(device), parse_size(&s(size)).unwrap_or(0));
            let goal = format!("disk {device} is {}", human(want));
            let Some(l) = &f.layers else {
                let (m, d) = no_layers();
                return (goal, m, d);
            };
            match disk_and_part(l, &device) {
                Some((d, _)) => {
                    let mut detail = format!("{device} is {}", human(d.size));
                    let failed: Vec<usize> = f
                        .log
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| {
                            e.argv.iter().any(|a| a == "modify-volume") && e.status != 0
                        })
                        .map(|(i, _)| i + 1)
                        .collect();
                    if !failed.is_empty() && d.size != want {
                        detail.push_str(&format!(
                            "; aws ec2 modify-volume failed at command {failed:?} of the log"
                        ));
                    }
                    if let Some(m) = &d.modification {
                        detail.push_str(&format!(
                            "; a modification to {} is {} ({}%)",
                            human(m.target_size),
                            m.state,
                            m.progress
                        ));
                    }
                    (goal, d.size == want, detail)
                }
                None => (goal, false, format!("the instance has no disk {device}")),
            }
        }
        Check::PartitionFills { device } => {
            let device = s(device);
            let goal = format!("partition {device} reaches the end of its disk");
            let Some(l) = &f.layers else {
                let (m, d) = no_layers();
                return (goal, m, d);
            };
            match disk_and_part(l, &device) {
                Some((d, Some(p))) => {
                    let end = if d.table.as_deref() == Some("dos") {
                        d.size.min(MBR_LIMIT)
                    } else {
                        d.size
                    };
                    // GPT keeps its backup in the last 33 sectors; growpart
                    // leaves less than 1 MiB (its fudge) behind.
                    let met = p.end.saturating_add(2 << 20) >= end
                        && d.limit.layer != "partition"
                        && d.limit.layer != "partition-not-last";
                    let detail = if met {
                        format!("it ends at {} of {}", human(p.end), human(d.size))
                    } else {
                        format!(
                            "it ends at {} of {}: {}",
                            human(p.end),
                            human(d.size),
                            d.limit.sentence
                        )
                    };
                    (goal, met, detail)
                }
                _ => (goal, false, format!("no partition {device}")),
            }
        }
        Check::FilesystemFills { mount } => {
            let mount = s(mount);
            let goal = format!("the filesystem on {mount} fills its device");
            let Some(l) = &f.layers else {
                let (m, d) = no_layers();
                return (goal, m, d);
            };
            for d in &l.disks {
                let whole = d.filesystem.as_ref().map(|f| (f, d.size));
                let parts = d
                    .partitions
                    .iter()
                    .filter_map(|p| p.filesystem.as_ref().map(|f| (f, p.size)));
                for (fsl, container) in whole.into_iter().chain(parts) {
                    if fsl.mountpoints.contains(&mount) {
                        let met = container.saturating_sub(fsl.size) < (1 << 20);
                        let mut detail = format!(
                            "{} {} in a {} device",
                            fsl.kind,
                            human(fsl.size),
                            human(container)
                        );
                        if !met || d.limit.layer != "none" {
                            detail.push_str(&format!(": {}", d.limit.sentence));
                        }
                        return (goal, met, detail);
                    }
                }
            }
            (goal, false, format!("nothing is mounted on {mount}"))
        }
        Check::SwapFile { path } => {
            let path = s(path);
            let goal = format!("{path} is a swap area");
            match head_of(ec2, f, instance, &path, crate::fs::swap::PROBE_BYTES) {
                Ok((head, size)) => {
                    let dev = crate::blockdev::MemDevice::from_bytes(head);
                    match crate::fs::swap::info(&dev) {
                        Some(i) => (
                            goal,
                            true,
                            format!(
                                "swap version {}, {} in {}",
                                i.version,
                                human(u64::from(i.last_page) * u64::from(i.pagesize)),
                                human(size)
                            ),
                        ),
                        None => (
                            goal,
                            false,
                            "it has no swap signature: run mkswap on it".into(),
                        ),
                    }
                }
                Err(e) => (goal, false, e),
            }
        }
        Check::DataIntact { path, sha256 } => {
            let (path, want) = (s(path), s(sha256));
            let goal = format!("{path} is intact");
            match sha256_of(ec2, f, instance, &path) {
                Ok(h) if h == want => (goal, true, "same SHA-256 as at the start".into()),
                Ok(h) => (goal, false, format!("its SHA-256 is {h}, it was {want}")),
                Err(e) => (goal, false, e),
            }
        }
        Check::SnapshotBeforeModify { volume } => {
            let volume = s(volume);
            let goal = format!("a snapshot of {volume} was taken before it was modified");
            let first_mod = f
                .state
                .modifications
                .iter()
                .filter(|m| m.volume_id == volume)
                .map(|m| m.start_time)
                .min();
            let snaps: Vec<_> = f
                .state
                .snapshots
                .values()
                .filter(|x| x.volume_id == volume)
                .map(|x| x.start_time)
                .collect();
            match first_mod {
                None => (goal, false, format!("{volume} was never modified")),
                Some(m) => {
                    if snaps.iter().any(|t| *t <= m) {
                        (goal, true, "the snapshot came first".into())
                    } else if snaps.is_empty() {
                        (goal, false, format!("no snapshot of {volume} was taken"))
                    } else {
                        (
                            goal,
                            false,
                            "the only snapshots were taken after the modification".into(),
                        )
                    }
                }
            }
        }
        Check::Order { first, then } => {
            let (first, then) = (s(first), s(then));
            let goal = format!("{first} ran before {then}");
            let firsts: Vec<usize> = f
                .log
                .iter()
                .enumerate()
                .filter(|(_, e)| tool_of(e) == first)
                .map(|(i, _)| i)
                .collect();
            let thens: Vec<usize> = f
                .log
                .iter()
                .enumerate()
                .filter(|(_, e)| tool_of(e) == then)
                .map(|(i, _)| i)
                .collect();
            let Some(&t0) = thens.first() else {
                return (goal, false, format!("{then} never ran"));
            };
            match firsts.first() {
                Some(&f0) if f0 < t0 => (
                    goal,
                    true,
                    format!("{first} at command {}, {then} at {}", f0 + 1, t0 + 1),
                ),
                Some(&f0) => (
                    goal,
                    false,
                    format!(
                        "{then} ran before {first} (commands {} and {} of the log)",
                        t0 + 1,
                        f0 + 1
                    ),
                ),
                None => (goal, false, format!("{then} ran but {first} never did")),
            }
        }
        Check::VolumeState { volume, state } => {
            let (volume, want) = (s(volume), s(state));
            let goal = format!("volume {volume} is {want}");
            let got = f
                .state
                .volumes
                .get(&volume)
                .map_or("deleted".to_string(), |v| v.state.as_str().to_string());
            (goal, got == want, format!("it is {got}"))
        }
        Check::InstanceState { instance, state } => {
            let (instance, want) = (s(instance), s(state));
            let goal = format!("instance {instance} is {want}");
            let got = f
                .state
                .instances
                .get(&instance)
                .map_or("gone".to_string(), |i| i.state.as_str().to_string());
            (goal, got == want, format!("it is {got}"))
        }
        Check::InstanceStatus { instance, status } => {
            let (instance, want) = (s(instance), s(status));
            let goal = format!("instance {instance}'s status check is {want}");
            let Some(i) = f.state.instances.get(&instance) else {
                return (goal, false, format!("instance {instance} is gone"));
            };
            let (got, detail) = match (i.state.as_str(), &i.boot_failure) {
                ("running", Some(why)) => ("impaired", format!("it is impaired: {why}")),
                ("running", None) => ("ok", "it is ok: the last boot got through".to_string()),
                (st, _) => (
                    "not-applicable",
                    format!("it is not-applicable: the instance is {st}"),
                ),
            };
            (goal, got == want, detail)
        }
        Check::FstabNofail { mount } => {
            let mount = s(mount);
            let goal = format!("the fstab entry for {mount} has nofail");
            let text = match guest_fstab(ec2, f, instance) {
                Ok(t) => t,
                Err(e) => return (goal, false, e),
            };
            let entries: Vec<_> = crate::guest::fstab::parse(&text)
                .into_iter()
                .filter(|e| crate::guest::normalize_path(&e.file) == mount)
                .collect();
            match entries.as_slice() {
                [] => (goal, false, format!("/etc/fstab has no entry for {mount}")),
                es if es.iter().all(|e| e.has("nofail")) => (
                    goal,
                    true,
                    format!("{} {mount} {} {}", es[0].spec, es[0].vfstype, es[0].options),
                ),
                es => {
                    let e = es.iter().find(|e| !e.has("nofail")).unwrap_or(&es[0]);
                    (
                        goal,
                        false,
                        format!(
                            "{} {mount} {} {} is without nofail",
                            e.spec, e.vfstype, e.options
                        ),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_lab_parses() {
        assert!(BUILTIN.len() >= 8);
        for (n, text) in BUILTIN {
            let l = parse(n, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&l.name, n);
            assert!(!l.goal.is_empty() && !l.solution.is_empty() && !l.mistake.steps.is_empty());
        }
    }

    #[test]
    fn sizes_and_variables() {
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("3T"), Some(3 << 40));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        let v = BTreeMap::from([("ROOT".to_string(), "vol-1".to_string())]);
        assert_eq!(
            subst("--volume-id ${ROOT} ${X}", &v),
            "--volume-id vol-1 ${X}"
        );
    }
}
