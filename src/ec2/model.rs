//! The state document: every volume, modification, snapshot, instance and
//! image, as kept in `state.json`. Plain data; the rules
//! live in the operation modules.

use super::clock::ClockState;
use super::time::Millis;
use super::types::{Perf, VolumeType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the state document this build writes. Version 1 kept
/// each volume's image path (`image`); version 2 derives it from the
/// volume id, and a version 1 document is read by dropping that field.
pub const STATE_VERSION: u64 = 2;
/// The oldest version this build reads.
pub const STATE_VERSION_OLDEST: u64 = 1;
/// The `format` field of the state document.
pub const STATE_FORMAT: &str = "ebsim-state";
/// The account that owns everything ebsim creates.
pub const OWNER_ID: &str = "123456789012";

/// The whole state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// [`STATE_VERSION`] when written by this build.
    pub version: u64,
    /// The virtual clock's anchor.
    pub clock: ClockState,
    /// A counter that makes every write distinguishable (for tests and for
    /// spotting lost updates).
    #[serde(default)]
    pub generation: u64,
    /// Counter for attachment order.
    #[serde(default)]
    pub next_attach_seq: u64,
    /// Volumes by id.
    #[serde(default)]
    pub volumes: BTreeMap<String, Volume>,
    /// Modifications, oldest first (the rate rule needs the recent history).
    #[serde(default)]
    pub modifications: Vec<Modification>,
    /// Snapshots by id.
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
    /// Instances by id.
    #[serde(default)]
    pub instances: BTreeMap<String, Instance>,
    /// Registered images (create-image, and catalog images once built).
    #[serde(default)]
    pub images: BTreeMap<String, Image>,
    /// The staging directory (`staging/<id>`) whose files this state
    /// references: written by the transaction that committed this document
    /// and moved into place right after it; a crash in between leaves it
    /// for the next transaction to move (see `sweep.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// Read from an older version (not kept): the first writable
    /// transaction sweeps every chunk no manifest names (older versions
    /// could leak them) and writes the document in this version.
    #[serde(skip)]
    pub upgraded: bool,
}

impl State {
    /// An empty state whose clock starts at real time `real_ms`.
    pub fn new(real_ms: i64) -> State {
        State {
            format: STATE_FORMAT.to_string(),
            version: STATE_VERSION,
            clock: ClockState::starting_at(real_ms),
            generation: 0,
            next_attach_seq: 0,
            volumes: BTreeMap::new(),
            modifications: Vec::new(),
            snapshots: BTreeMap::new(),
            instances: BTreeMap::new(),
            images: BTreeMap::new(),
            publish: None,
            upgraded: false,
        }
    }

    /// Moves every timestamp of the account's resources by `ms` (the clock
    /// reset): pending transitions keep the time they have left, and the
    /// history its order and spacing. Amazon's catalog snapshots keep the
    /// dates AWS gives them. The clock's anchor is the caller's to move.
    pub fn shift_times(&mut self, ms: i64) {
        let sh = |t: &mut Millis| *t = t.plus(ms);
        for v in self.volumes.values_mut() {
            sh(&mut v.ready_at);
            sh(&mut v.create_time);
            for a in &mut v.attachments {
                sh(&mut a.until);
                sh(&mut a.attach_time);
            }
        }
        for m in &mut self.modifications {
            sh(&mut m.start_time);
            sh(&mut m.optimizing_at);
            sh(&mut m.completed_at);
            if let Some(t) = &mut m.end_time {
                sh(t);
            }
        }
        for s in self.snapshots.values_mut() {
            if s.catalog_build.is_none() {
                sh(&mut s.start_time);
                sh(&mut s.complete_at);
            }
        }
        for i in self.instances.values_mut() {
            sh(&mut i.until);
            sh(&mut i.launch_time);
            sh(&mut i.state_changed);
        }
        for i in self.images.values_mut() {
            sh(&mut i.available_at);
            sh(&mut i.creation_date);
        }
    }

    /// The most recent modification of a volume.
    pub fn latest_modification(&self, volume_id: &str) -> Option<&Modification> {
        self.modifications
            .iter()
            .rev()
            .find(|m| m.volume_id == volume_id)
    }

    /// The volumes attached to an instance (in any attachment state), in
    /// attach order.
    pub fn attached_to<'a>(&'a self, instance_id: &str) -> Vec<(&'a Volume, &'a Attachment)> {
        let mut v: Vec<(&Volume, &Attachment)> = self
            .volumes
            .values()
            .flat_map(|vol| {
                vol.attachments
                    .iter()
                    .filter(|a| a.instance_id == instance_id)
                    .map(move |a| (vol, a))
            })
            .collect();
        v.sort_by_key(|(_, a)| a.seq);
        v
    }
}

/// Volume states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    /// Being created; available at `Volume::ready_at`.
    Creating,
    /// Not attached.
    Available,
    /// Attached (in any attachment state).
    InUse,
    /// Being deleted.
    Deleting,
    /// Unusable.
    Error,
}

impl VolumeState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeState::Creating => "creating",
            VolumeState::Available => "available",
            VolumeState::InUse => "in-use",
            VolumeState::Deleting => "deleting",
            VolumeState::Error => "error",
        }
    }
}

/// A key/value tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// An EBS volume, backed by a sparse image file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// `vol-` + 17 hex digits.
    pub id: String,
    /// Size in GiB (the target size once a modification is optimizing).
    pub size: u64,
    /// Type.
    pub volume_type: VolumeType,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u64>,
    /// Provisioned throughput (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u64>,
    /// Availability zone.
    pub az: String,
    /// Encrypted at rest.
    #[serde(default)]
    pub encrypted: bool,
    /// The KMS key of an encrypted volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The snapshot it was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// State.
    pub state: VolumeState,
    /// When `creating` ends.
    pub ready_at: Millis,
    /// Creation time.
    pub create_time: Millis,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Multi-Attach (io1/io2).
    #[serde(default)]
    pub multi_attach: bool,
    /// Attachments (at most one unless Multi-Attach).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Has been an instance's root volume: it can never become st1/sc1.
    #[serde(default)]
    pub boot: bool,
    /// The disk layout the volume was created with, when known (a catalog
    /// image or a snapshot of one): the guest view uses it to register
    /// partitions in the order the kernel would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
    /// The `ClientToken` of the CreateVolume that made it (idempotency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl Volume {
    /// Size, type, IOPS and throughput.
    pub fn perf(&self) -> Perf {
        Perf {
            size: self.size,
            volume_type: self.volume_type,
            iops: self.iops,
            throughput: self.throughput,
        }
    }

    /// The IOPS describe-volumes shows (gp2: its baseline).
    pub fn shown_iops(&self) -> Option<u64> {
        match self.volume_type {
            VolumeType::Gp2 => Some(super::types::gp2_iops(self.size)),
            t if t.reports_iops() => self.iops,
            _ => None,
        }
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size.saturating_mul(1 << 30)
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// Attachment states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachState {
    /// Being attached; attached at `Attachment::until`.
    Attaching,
    /// Attached.
    Attached,
    /// Being detached; gone at `Attachment::until`.
    Detaching,
    /// Stuck detaching because the guest still has it mounted.
    Busy,
}

impl AttachState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachState::Attaching => "attaching",
            AttachState::Attached => "attached",
            AttachState::Detaching => "detaching",
            AttachState::Busy => "busy",
        }
    }
}

/// How the guest sees an attached volume: a Xen instance names its disks
/// `xvd*` (202:16·index), a Nitro one `nvme<N>n1` (259:minor, minors
/// handed out in the order the kernel finds disks and partitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestDisk {
    /// Kernel name: `xvda`, `xvdf`, `nvme0n1`, `nvme1n1`, ...
    pub name: String,
    /// Major number: 202 (Xen `xvd*`) or 259 (NVMe, blkext).
    pub major: u32,
    /// Minor number: 16 × disk index on Xen; dynamic on NVMe.
    pub minor: u32,
    /// The NVMe controller index (`nvme<N>n1`), on Nitro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme_index: Option<u32>,
    /// The NVMe serial (volume id without its dash), on Nitro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// A volume's attachment to an instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The instance.
    pub instance_id: String,
    /// The API device name (`/dev/sdf`, `/dev/xvda`).
    pub device: String,
    /// State.
    pub state: AttachState,
    /// When the current transitional state ends.
    pub until: Millis,
    /// When it was attached.
    pub attach_time: Millis,
    /// Deleted with the instance.
    pub delete_on_termination: bool,
    /// Attach order on the instance.
    pub seq: u64,
    /// The guest's view of the disk.
    pub guest: GuestDisk,
}

/// Modification states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModState {
    /// Started; nothing visible yet.
    Modifying,
    /// New size visible to the guest; performance converging.
    Optimizing,
    /// Done.
    Completed,
    /// Failed (never produced by ebsim's clock, kept for the shape).
    Failed,
}

impl ModState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModState::Modifying => "modifying",
            ModState::Optimizing => "optimizing",
            ModState::Completed => "completed",
            ModState::Failed => "failed",
        }
    }

    /// The name in `IncorrectModificationState` messages.
    pub fn upper(self) -> &'static str {
        match self {
            ModState::Modifying => "MODIFYING",
            ModState::Optimizing => "OPTIMIZING",
            ModState::Completed => "COMPLETED",
            ModState::Failed => "FAILED",
        }
    }
}

/// One ModifyVolume request and its progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modification {
    /// The volume.
    pub volume_id: String,
    /// State.
    pub state: ModState,
    /// Before.
    pub original_size: u64,
    /// Before.
    pub original_type: VolumeType,
    /// Before (shown IOPS, gp2 baseline included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_iops: Option<u64>,
    /// Before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_throughput: Option<u64>,
    /// Before.
    #[serde(default)]
    pub original_multi_attach: bool,
    /// After.
    pub target_size: u64,
    /// After.
    pub target_type: VolumeType,
    /// After (provisioned; the shown IOPS for gp2 is derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_iops: Option<u64>,
    /// After.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_throughput: Option<u64>,
    /// After.
    #[serde(default)]
    pub target_multi_attach: bool,
    /// Request time.
    pub start_time: Millis,
    /// When `optimizing` starts.
    pub optimizing_at: Millis,
    /// When `completed` is reached.
    pub completed_at: Millis,
    /// Set once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Millis>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl Modification {
    /// Progress 0–100 at `now` (0 while modifying, rising while optimizing).
    pub fn progress(&self, now: Millis) -> u64 {
        match self.state {
            ModState::Modifying => 0,
            ModState::Completed => 100,
            ModState::Failed => 0,
            ModState::Optimizing => {
                let total = self.completed_at.since(self.optimizing_at).max(1);
                let done = now.since(self.optimizing_at).clamp(0, total);
                // 0..=99 while optimizing: 100 means completed.
                u64::try_from(done.saturating_mul(100) / total)
                    .unwrap_or(0)
                    .min(99)
            }
        }
    }

    /// The IOPS shown as the target (gp2: baseline of the target size).
    pub fn shown_target_iops(&self) -> Option<u64> {
        match self.target_type {
            VolumeType::Gp2 => Some(super::types::gp2_iops(self.target_size)),
            t if t.reports_iops() => self.target_iops,
            _ => None,
        }
    }
}

/// Snapshot states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapState {
    /// Being copied; completed at `Snapshot::complete_at`.
    Pending,
    /// Usable.
    Completed,
    /// Failed.
    Error,
}

impl SnapState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapState::Pending => "pending",
            SnapState::Completed => "completed",
            SnapState::Error => "error",
        }
    }
}

/// A point-in-time copy of a volume, as a manifest of chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// `snap-` + 17 hex digits.
    pub id: String,
    /// The source volume (kept after the volume is deleted).
    pub volume_id: String,
    /// Source size in GiB at snapshot time.
    pub volume_size: u64,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// State.
    pub state: SnapState,
    /// Request time.
    pub start_time: Millis,
    /// When `pending` ends.
    pub complete_at: Millis,
    /// Owner account.
    pub owner_id: String,
    /// Owner alias (`amazon` for catalog snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_alias: Option<String>,
    /// Encrypted.
    #[serde(default)]
    pub encrypted: bool,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The AZ of the source volume (for the region).
    pub az: String,
    /// Bytes of chunk data that are not zero (the snapshot's logical size).
    pub data_bytes: u64,
    /// Bytes this snapshot added to the chunk store when taken.
    pub new_bytes: u64,
    /// The disk layout of the source, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
    /// For a catalog image's snapshot: the builder version that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_build: Option<u32>,
    /// The KMS key of an encrypted snapshot (its volume's, or the one a
    /// copy was encrypted with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// Instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Booting.
    Pending,
    /// Up.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating.
    ShuttingDown,
    /// Gone (visible for a while).
    Terminated,
}

impl InstanceState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// The state code EC2 reports with the name (`State.Code`).
    pub fn code(self) -> u32 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }
}

/// A filesystem mounted inside an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The volume holding it.
    pub volume_id: String,
    /// Partition number, or None for a whole-disk filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The source as `mount` was given it / as /proc/mounts shows it
    /// (`/dev/xvda1`, `/dev/nvme1n1`).
    pub source: String,
    /// Mount point.
    pub target: String,
    /// Filesystem type (`ext4`, `xfs`, `vfat`).
    pub fstype: String,
    /// Mount options.
    #[serde(default)]
    pub options: String,
    /// Listed in the instance's fstab: comes back after a stop/start or
    /// reboot (the mounts made at launch are).
    #[serde(default)]
    pub fstab: bool,
}

/// An EC2 instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// `i-` + 17 hex digits.
    pub id: String,
    /// `r-` + 17 hex digits.
    pub reservation_id: String,
    /// The AMI.
    pub image_id: String,
    /// `t3.micro`, ...
    pub instance_type: String,
    /// Availability zone.
    pub az: String,
    /// State.
    pub state: InstanceState,
    /// When the current transitional state ends.
    pub until: Millis,
    /// Has reached `running` at least once.
    #[serde(default)]
    pub ever_running: bool,
    /// Launch time (updated by each start).
    pub launch_time: Millis,
    /// When the state last changed (for StateTransitionReason).
    #[serde(default)]
    pub state_changed: Millis,
    /// The root device's API name.
    pub root_device_name: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Position in its reservation.
    #[serde(default)]
    pub launch_index: u32,
    /// Key pair name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Private IPv4 address.
    pub private_ip: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The image flavour (catalog key such as `al2023`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
    /// The util-linux version of the guest (lsblk's headers depend on it).
    pub util_linux: String,
    /// What the guest has mounted.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// blkext (259:N) minors in use: minor → kernel name. Disks and
    /// partitions both take one (NVMe disks, and Xen partitions above 15).
    #[serde(default)]
    pub blkext_minors: BTreeMap<u32, String>,
    /// User data, base64 as the API carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Termination protection (`disableApiTermination`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_api_termination: bool,
    /// The `ClientToken` of the RunInstances that launched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Booted (launch, start, reboot) and its boot-time work (cloud-init's
    /// growpart and resizefs) not yet done: done right after the
    /// transaction that booted it ([`super::boot`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub boot_due: bool,
    /// Why its last boot stopped in emergency mode (an fstab entry
    /// without `nofail` that could not be mounted, [`super::boot::fstab_failure`]):
    /// the instance runs but cannot be reached and its instance status
    /// check fails. None after a boot that got through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_failure: Option<String>,
}

impl Instance {
    /// Takes the lowest free 259:N minor for `name`.
    pub fn alloc_blkext_minor(&mut self, name: &str) -> u32 {
        if let Some((m, _)) = self.blkext_minors.iter().find(|(_, n)| n.as_str() == name) {
            return *m;
        }
        let mut m = 0u32;
        while self.blkext_minors.contains_key(&m) {
            m = m.saturating_add(1);
        }
        self.blkext_minors.insert(m, name.to_string());
        m
    }

    /// Frees the minors of a disk and its partitions (`nvme1n1`,
    /// `nvme1n1p1`, ...; `xvda128`, ...).
    pub fn free_blkext_minors(&mut self, disk: &str) {
        self.blkext_minors.retain(|_, n| {
            let rest = n.strip_prefix(disk);
            !matches!(rest, Some(r) if r.is_empty() || r.trim_start_matches('p').chars().all(|c| c.is_ascii_digit()))
        });
    }
}

/// One entry of an image's block device mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageBdm {
    /// The API device name.
    pub device: String,
    /// The snapshot new volumes are made from.
    pub snapshot_id: String,
    /// Size in GiB.
    pub volume_size: u64,
    /// Type.
    pub volume_type: VolumeType,
    /// IOPS (gp3/io1/io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u64>,
    /// Throughput (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u64>,
    /// Deleted with the instance.
    pub delete_on_termination: bool,
    /// Encrypted.
    #[serde(default)]
    pub encrypted: bool,
}

/// An AMI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// `ami-` + 17 hex digits.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owner account.
    pub owner_id: String,
    /// `amazon` for Amazon's images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_alias: Option<String>,
    /// Public.
    #[serde(default)]
    pub public: bool,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Root device's API name.
    pub root_device_name: String,
    /// Block device mapping.
    pub bdm: Vec<ImageBdm>,
    /// `pending` / `available`.
    pub state: String,
    /// When `pending` ends.
    pub available_at: Millis,
    /// Creation time.
    pub creation_date: Millis,
    /// The instance it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_instance_id: Option<String>,
    /// The region it lives in.
    pub region: String,
    /// Guest flavour (catalog key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// The region of an availability zone (`us-east-1a` → `us-east-1`).
pub fn region_of(az: &str) -> &str {
    az.trim_end_matches(|c: char| c.is_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every timestamp of every resource moves with the clock reset: each
    /// is given a distinct value from T on, and none is left there.
    #[test]
    fn shift_times_moves_every_timestamp() {
        const T: i64 = 1_600_000_000_000;
        let doc = serde_json::json!({
            "format": "ebsim-state", "version": 2,
            "clock": {"virtual_ms": 0, "real_ms": 0},
            "volumes": {"vol-0123456789abcdef0": {
                "id": "vol-0123456789abcdef0", "size": 1, "volume_type": "gp2",
                "az": "us-east-1a", "state": "in-use", "ready_at": T, "create_time": T + 1,
                "attachments": [{"instance_id": "i-0123456789abcdef0", "device": "/dev/sdf",
                    "state": "attached", "until": T + 2, "attach_time": T + 3,
                    "delete_on_termination": false, "seq": 0,
                    "guest": {"name": "xvdf", "major": 202, "minor": 80}}]}},
            "modifications": [{"volume_id": "vol-0123456789abcdef0", "state": "completed",
                "original_size": 1, "original_type": "gp2", "target_size": 2,
                "target_type": "gp2", "start_time": T + 4, "optimizing_at": T + 5,
                "completed_at": T + 6, "end_time": T + 7}],
            "snapshots": {"snap-0123456789abcdef0": {"id": "snap-0123456789abcdef0",
                "volume_id": "vol-0123456789abcdef0", "volume_size": 1, "state": "completed",
                "start_time": T + 8, "complete_at": T + 9, "owner_id": OWNER_ID,
                "az": "us-east-1a", "data_bytes": 0, "new_bytes": 0}},
            "instances": {"i-0123456789abcdef0": {"id": "i-0123456789abcdef0",
                "reservation_id": "r-0123456789abcdef0", "image_id": "ami-0123456789abcdef0",
                "instance_type": "t2.micro", "az": "us-east-1a", "state": "running",
                "until": T + 10, "launch_time": T + 11, "state_changed": T + 12,
                "root_device_name": "/dev/xvda", "architecture": "x86_64",
                "private_ip": "172.31.0.1", "util_linux": "2.37.2"}},
            "images": {"ami-0123456789abcdef0": {"id": "ami-0123456789abcdef0", "name": "x",
                "owner_id": OWNER_ID, "architecture": "x86_64", "root_device_name": "/dev/xvda",
                "bdm": [], "state": "available", "available_at": T + 13,
                "creation_date": T + 14, "region": "us-east-1"}}
        });
        let mut s: State = serde_json::from_value(doc).unwrap();
        s.shift_times(-1_000_000);
        let out = serde_json::to_value(&s).unwrap();
        fn numbers(v: &serde_json::Value, out: &mut Vec<i64>) {
            match v {
                serde_json::Value::Number(n) => out.extend(n.as_i64()),
                serde_json::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
                serde_json::Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
                _ => {}
            }
        }
        let mut ns = Vec::new();
        numbers(&out, &mut ns);
        let moved = ns
            .iter()
            .filter(|&&n| (T - 1_000_000..T - 999_000).contains(&n))
            .count();
        assert!(!ns.iter().any(|n| (T..T + 1000).contains(n)), "{out}");
        assert_eq!(moved, 15);
    }
}
