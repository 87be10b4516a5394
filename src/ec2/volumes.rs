//! Volumes: create, describe, delete, attach, detach, modify, and the
//! modifications' history. Each operation checks
//! everything first, in AWS's order, and changes the state only once the
//! request is known to succeed.

use super::error::{ApiError, Error, Result};
use super::filter::{self, Filter};
use super::guest::{self, Hypervisor};
use super::ids;
use super::model::{
    AttachState, Attachment, GuestDisk, InstanceState, ModState, Modification, OWNER_ID, Tag,
    Volume, VolumeState, region_of,
};
use super::time::{DAY, HOUR, Millis};
use super::types::{self, VolumeType};
use super::{RatePolicy, Txn};
use crate::blockdev::image::ImageFile;

/// A CreateVolume request.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// Size in GiB.
    pub size: Option<u64>,
    /// Type name (default gp2).
    pub volume_type: Option<String>,
    /// IOPS.
    pub iops: Option<u64>,
    /// Throughput MiB/s.
    pub throughput: Option<u64>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Encrypted.
    pub encrypted: Option<bool>,
    /// KMS key.
    pub kms_key_id: Option<String>,
    /// Source snapshot.
    pub snapshot_id: Option<String>,
    /// Multi-Attach.
    pub multi_attach: bool,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Idempotency token: a second request with it answers the volume the
    /// first made.
    pub client_token: Option<String>,
    /// Check only.
    pub dry_run: bool,
}

/// A ModifyVolume request.
#[derive(Debug, Clone, Default)]
pub struct ModifyVolume {
    /// The volume.
    pub volume_id: String,
    /// New size.
    pub size: Option<u64>,
    /// New type.
    pub volume_type: Option<String>,
    /// New IOPS.
    pub iops: Option<u64>,
    /// New throughput.
    pub throughput: Option<u64>,
    /// New Multi-Attach.
    pub multi_attach: Option<bool>,
    /// Check only.
    pub dry_run: bool,
}

/// The availability zones of a region: `a` to `f`.
pub fn check_zone(region: &str, az: &str) -> std::result::Result<(), ApiError> {
    let ok = region_of(az) == region
        && az.len() == region.len() + 1
        && az.ends_with(|c: char| ('a'..='f').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidZone.NotFound",
            format!("The zone '{az}' does not exist."),
        ))
    }
}

/// Checks an id's shape, with AWS's `…ID.Malformed` error [U].
pub(crate) fn check_id(id: &str, prefix: &str, code: &str) -> std::result::Result<(), ApiError> {
    if ids::well_formed(id, prefix) {
        Ok(())
    } else {
        Err(ApiError::malformed(code, id, prefix))
    }
}

impl Txn<'_> {
    /// A volume of this region, or `InvalidVolume.NotFound`.
    pub fn volume(&self, id: &str) -> Result<&Volume> {
        check_id(id, "vol", "InvalidVolumeID.Malformed")?;
        match self.state().volumes.get(id) {
            Some(v) if region_of(&v.az) == self.region() => Ok(v),
            _ => Err(ApiError::volume_not_found(id).into()),
        }
    }

    /// CreateVolume.
    pub fn create_volume(&mut self, req: &CreateVolume) -> Result<Volume> {
        super::tags::check_new(&req.tags)?;
        if let Some(token) = req.client_token.as_deref().filter(|t| !t.is_empty()) {
            if token.len() > 64 {
                return Err(ApiError::invalid_value(format!(
                    "Value ({token}) for parameter clientToken is invalid. ClientToken is longer than 64 characters."
                ))
                .into());
            }
            let region = self.region().to_string();
            if let Some(v) = self.state().volumes.values().find(|v| {
                v.client_token.as_deref() == Some(token) && super::model::region_of(&v.az) == region
            }) {
                // The same request again: the volume it made, as it is
                // now. Different parameters with the token are refused.
                let same = req.size.is_none_or(|s| s == v.size)
                    && req.availability_zone.as_deref().is_none_or(|a| a == v.az)
                    && req
                        .volume_type
                        .as_deref()
                        .is_none_or(|t| t == v.volume_type.as_str())
                    && req
                        .snapshot_id
                        .as_deref()
                        .is_none_or(|s| Some(s) == v.snapshot_id.as_deref());
                if !same {
                    return Err(ApiError::new(
                        "IdempotentParameterMismatch",
                        format!(
                            "The client token you have provided is associated with a resource that is already deleted or has different parameters: {token}"
                        ),
                    )
                    .into());
                }
                if req.dry_run {
                    return Err(ApiError::dry_run_ok().into());
                }
                return Ok(v.clone());
            }
        }
        let Some(az) = req.availability_zone.clone() else {
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain the parameter AvailabilityZone",
            )
            .into());
        };
        if req.size.is_none() && req.snapshot_id.is_none() {
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain the parameter size/snapshot",
            )
            .into());
        }
        check_zone(self.region(), &az)?;
        let vtype = match &req.volume_type {
            Some(t) => types::parse_type(t)?,
            None => VolumeType::Gp2,
        };
        let snap = match &req.snapshot_id {
            Some(sid) => Some(self.usable_snapshot(sid)?),
            None => None,
        };
        let size = match (req.size, &snap) {
            (Some(s), Some(sn)) if s < sn.volume_size => {
                return Err(ApiError::invalid_value(format!(
                    "Volume of size {s}GB is smaller than snapshot '{}', expect size >= {}GB",
                    sn.id, sn.volume_size
                ))
                .into());
            }
            (Some(s), _) => s,
            (None, Some(sn)) => sn.volume_size,
            (None, None) => 0,
        };
        let perf = types::create_perf(size, vtype, req.iops, req.throughput)?;
        if req.multi_attach && !vtype.limits().multi_attach {
            return Err(ApiError::invalid_combination(format!(
                "The parameter MultiAttachEnabled is not supported for {vtype} volumes."
            ))
            .into());
        }
        if req.dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let encrypted =
            req.encrypted.unwrap_or(false) || snap.as_ref().is_some_and(|s| s.encrypted);
        let id = self.new_id("vol");
        let now = self.now();
        let data_gib = snap.as_ref().map(|s| s.data_bytes >> 30).unwrap_or(0);
        let ready_at = now.plus(
            self.timing().volume_create
                + self.timing().volume_create_per_gib * i64::try_from(data_gib).unwrap_or(0),
        );
        let vol = Volume {
            id: id.clone(),
            size: perf.size,
            volume_type: perf.volume_type,
            iops: perf.iops,
            throughput: perf.throughput,
            az,
            encrypted,
            kms_key_id: if encrypted {
                Some(req.kms_key_id.clone().unwrap_or_else(|| {
                    format!(
                        "arn:aws:kms:{}:{OWNER_ID}:key/{}",
                        self.region(),
                        uuid::Uuid::new_v4()
                    )
                }))
            } else {
                None
            },
            snapshot_id: snap.as_ref().map(|s| s.id.clone()),
            state: VolumeState::Creating,
            ready_at,
            create_time: now,
            tags: req.tags.clone(),
            multi_attach: req.multi_attach,
            client_token: req.client_token.clone().filter(|t| !t.is_empty()),
            attachments: Vec::new(),
            boot: false,
            flavour: snap.as_ref().and_then(|s| s.flavour.clone()),
        };
        self.materialise_volume(&vol, snap.as_ref().map(|s| s.id.as_str()))?;
        self.state_mut().volumes.insert(id, vol.clone());
        Ok(vol)
    }

    /// Creates a volume's image file. An empty one is made in place and
    /// not synced (see [`Txn::create_empty_image`]: the state's commit is
    /// what makes it durable); one restored from a snapshot (or an empty
    /// one too long for a single file, made segmented) in the
    /// transaction's staging directory, published when the state commits.
    /// Either goes with the transaction if anything fails.
    pub(crate) fn materialise_volume(
        &mut self,
        vol: &Volume,
        snapshot: Option<&str>,
    ) -> Result<()> {
        if snapshot.is_none() && self.create_empty_image(&vol.id, vol.size_bytes())? {
            return Ok(());
        }
        let stage = self.stage()?;
        let path = stage.volume_image(&vol.id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
        }
        match snapshot {
            None => {
                ImageFile::create(&path, vol.size_bytes())?;
            }
            Some(sid) => {
                super::snapshots::restore(self.home(), &stage, sid, &path, vol.size_bytes())?;
            }
        }
        Ok(())
    }

    /// DescribeVolumes. DryRun is answered after the filter names and the
    /// volume ids are checked, so a dry run naming a missing volume still
    /// fails with `InvalidVolume.NotFound`.
    pub fn describe_volumes(
        &self,
        ids: &[String],
        filters: &[Filter],
        dry_run: bool,
    ) -> Result<Vec<Volume>> {
        filter::check_names(filters, VOLUME_FILTERS)?;
        let mut out = Vec::new();
        if ids.is_empty() {
            for v in self.state().volumes.values() {
                if region_of(&v.az) == self.region() && self.volume_matches(v, filters)? {
                    out.push(v.clone());
                }
            }
        } else {
            for id in ids {
                let v = self.volume(id)?;
                if self.volume_matches(v, filters)? && !out.iter().any(|o: &Volume| o.id == v.id) {
                    out.push(v.clone());
                }
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(out)
    }

    fn volume_matches(&self, v: &Volume, filters: &[Filter]) -> Result<bool> {
        let r = filter::matches(filters, |name| {
            let one = |s: String| Some(vec![s]);
            let att = |f: &dyn Fn(&Attachment) -> String| {
                Some(v.attachments.iter().map(f).collect::<Vec<String>>())
            };
            match name {
                "status" => one(v.state.as_str().to_string()),
                "volume-type" => one(v.volume_type.to_string()),
                "availability-zone" => one(v.az.clone()),
                "volume-id" => one(v.id.clone()),
                "size" => one(v.size.to_string()),
                "snapshot-id" => one(v.snapshot_id.clone().unwrap_or_default()),
                "encrypted" => one(v.encrypted.to_string()),
                "multi-attach-enabled" => one(v.multi_attach.to_string()),
                "create-time" => one(v.create_time.to_wire()),
                "attachment.instance-id" => att(&|a| a.instance_id.clone()),
                "attachment.device" => att(&|a| a.device.clone()),
                "attachment.status" => att(&|a| a.state.as_str().to_string()),
                "attachment.delete-on-termination" => att(&|a| a.delete_on_termination.to_string()),
                "attachment.attach-time" => att(&|a| a.attach_time.whole_seconds().to_wire()),
                "availability-zone-id" => Some(
                    super::zones::describe_availability_zones(
                        super::model::region_of(&v.az),
                        std::slice::from_ref(&v.az),
                    )
                    .map(|z| z.into_iter().map(|z| z.id).collect())
                    .unwrap_or_default(),
                ),
                "fast-restored" | "operator.managed" => one("false".to_string()),
                "operator.principal" => Some(Vec::new()),
                n => filter::tag_values(n, &v.tags),
            }
        })?;
        Ok(r)
    }

    /// DeleteVolume.
    pub fn delete_volume(&mut self, id: &str, dry_run: bool) -> Result<()> {
        let v = self.volume(id)?;
        if let Some(a) = v.attachments.first() {
            return Err(ApiError::new(
                "VolumeInUse",
                format!("Volume {id} is currently attached to {}", a.instance_id),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        // What is at the image path is looked at before the state changes:
        // the image (or a link, a FIFO: the name is removed, nothing is
        // followed) goes after the commit, but a directory is not ebsim's
        // to remove, so the deletion is refused while it is there.
        let image = self.home().volume_image(id);
        match std::fs::symlink_metadata(&image) {
            Ok(m) if m.is_dir() && !crate::blockdev::segmented::is_segmented(&image) => {
                return Err(Error::NotAnImage {
                    path: image,
                    reason: format!(
                        "is a directory, not volume {id}'s image; ebsim does not remove it, so {id} was not deleted (move the directory away and delete the volume again)"
                    ),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&image, "stat", e)),
        }
        self.state_mut().volumes.remove(id);
        self.remove_image_after_commit(id.to_string());
        Ok(())
    }

    /// AttachVolume. Returns the new attachment.
    pub fn attach_volume(
        &mut self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        dry_run: bool,
    ) -> Result<Attachment> {
        let v = self.volume(volume_id)?.clone();
        let inst = self.instance(instance_id)?.clone();
        if let Some(m) = self.state().latest_modification(volume_id) {
            if m.state == ModState::Modifying {
                return Err(ApiError::new(
                    "OperationNotPermitted",
                    format!(
                        "Cannot attach volume {volume_id} when it is in modification state: MODIFYING"
                    ),
                )
                .into());
            }
        }
        if !v.attachments.is_empty() && !v.multi_attach {
            return Err(ApiError::new(
                "VolumeInUse",
                format!("{volume_id} is already attached to an instance"),
            )
            .into());
        }
        if v.attachments.iter().any(|a| a.instance_id == instance_id) {
            return Err(ApiError::new(
                "VolumeInUse",
                format!("{volume_id} is already attached to an instance"),
            )
            .into());
        }
        if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
            return Err(ApiError::new(
                "IncorrectState",
                format!("{volume_id} is not 'available'."),
            )
            .into());
        }
        if v.az != inst.az {
            return Err(ApiError::new(
                "InvalidVolume.ZoneMismatch",
                format!(
                    "The volume '{volume_id}' is not in the same availability zone as instance '{instance_id}'"
                ),
            )
            .into());
        }
        if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
            return Err(ApiError::new(
                "IncorrectState",
                format!("Instance '{instance_id}' is not 'running'."),
            )
            .into());
        }
        if !guest::valid_device_name(device) {
            return Err(ApiError::invalid_value(format!(
                "Value ({device}) for parameter device is invalid. {device} is not a valid EBS device name."
            ))
            .into());
        }
        let taken = self.device_taken(instance_id, device);
        if taken {
            return Err(ApiError::invalid_value(format!(
                "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
            ))
            .into());
        }
        if device == inst.root_device_name && !v.volume_type.limits().bootable {
            return Err(ApiError::invalid_value(
                "This volume type is not compatible with root volumes.",
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let now = self.now();
        let until = now.plus(self.timing().attach);
        let att = self.attach_now(
            volume_id,
            instance_id,
            device,
            false,
            now,
            until,
            AttachState::Attaching,
        )?;
        Ok(att)
    }

    /// Whether a device name (or the guest disk it maps to on Xen) is used
    /// on the instance.
    pub(crate) fn device_taken(&self, instance_id: &str, device: &str) -> bool {
        let xen = self
            .state()
            .instances
            .get(instance_id)
            .is_some_and(|i| guest::hypervisor(&i.instance_type) == Hypervisor::Xen);
        let want = guest::xen_disk(device).map(|(n, _)| n);
        self.state().attached_to(instance_id).iter().any(|(_, a)| {
            a.device == device
                || (xen && want.is_some() && guest::xen_disk(&a.device).map(|(n, _)| n) == want)
        })
    }

    /// Records an attachment and names the disk for the guest.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attach_now(
        &mut self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        delete_on_termination: bool,
        attach_time: Millis,
        until: Millis,
        state: AttachState,
    ) -> Result<Attachment> {
        let hv = self
            .state()
            .instances
            .get(instance_id)
            .map(|i| guest::hypervisor(&i.instance_type))
            .unwrap_or(Hypervisor::Xen);
        let guest = match hv {
            Hypervisor::Xen => {
                let (name, idx) = guest::xen_disk(device).ok_or_else(|| {
                    Error::Api(ApiError::invalid_value(format!(
                        "Value ({device}) for parameter device is invalid. {device} is not a valid EBS device name."
                    )))
                })?;
                GuestDisk {
                    name,
                    major: 202,
                    minor: idx.saturating_mul(16),
                    nvme_index: None,
                    serial: None,
                }
            }
            Hypervisor::Nitro => {
                let used: Vec<u32> = self
                    .state()
                    .attached_to(instance_id)
                    .iter()
                    .filter_map(|(_, a)| a.guest.nvme_index)
                    .collect();
                let mut idx = 0u32;
                while used.contains(&idx) {
                    idx += 1;
                }
                let name = format!("nvme{idx}n1");
                let minor = match self.state_mut().instances.get_mut(instance_id) {
                    Some(i) => i.alloc_blkext_minor(&name),
                    None => 0,
                };
                GuestDisk {
                    name,
                    major: 259,
                    minor,
                    nvme_index: Some(idx),
                    serial: Some(volume_id.replace('-', "")),
                }
            }
        };
        let seq = self.state().next_attach_seq;
        let att = Attachment {
            instance_id: instance_id.to_string(),
            device: device.to_string(),
            state,
            until,
            attach_time,
            delete_on_termination,
            seq,
            guest,
        };
        let root = self
            .state()
            .instances
            .get(instance_id)
            .is_some_and(|i| i.root_device_name == device);
        let st = self.state_mut();
        st.next_attach_seq = seq + 1;
        if let Some(v) = st.volumes.get_mut(volume_id) {
            v.attachments.push(att.clone());
            if v.state == VolumeState::Available {
                v.state = VolumeState::InUse;
            }
            if root {
                v.boot = true;
            }
        }
        Ok(att)
    }

    /// DetachVolume. Returns the attachment as it now stands.
    pub fn detach_volume(
        &mut self,
        volume_id: &str,
        instance_id: Option<&str>,
        device: Option<&str>,
        force: bool,
        dry_run: bool,
    ) -> Result<Attachment> {
        let v = self.volume(volume_id)?.clone();
        if let Some(iid) = instance_id {
            self.instance(iid)?;
        }
        if v.attachments.is_empty() {
            return Err(ApiError::new(
                "IncorrectState",
                format!(
                    "Volume '{volume_id}'is in the '{}' state.",
                    v.state.as_str()
                ),
            )
            .into());
        }
        let pos = v.attachments.iter().position(|a| {
            instance_id.is_none_or(|i| a.instance_id == i) && device.is_none_or(|d| a.device == d)
        });
        let Some(pos) = pos else {
            let iid = instance_id.unwrap_or(&v.attachments[0].instance_id);
            let dev = device.unwrap_or(&v.attachments[0].device);
            return Err(ApiError::new(
                "InvalidAttachment.NotFound",
                format!("The volume {volume_id} is not attached to instance {iid} as device {dev}"),
            )
            .into());
        };
        let a = v.attachments[pos].clone();
        let inst = self.instance(&a.instance_id)?.clone();
        if matches!(a.state, AttachState::Detaching | AttachState::Busy) && !force {
            return Err(ApiError::new(
                "IncorrectState",
                format!("Volume '{volume_id}'is in the 'detaching' state."),
            )
            .into());
        }
        if a.device == inst.root_device_name && inst.state != InstanceState::Stopped && !force {
            return Err(ApiError::new(
                "IncorrectState",
                format!(
                    "Unable to detach root volume '{volume_id}' from instance '{}'",
                    a.instance_id
                ),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let now = self.now();
        let until = now.plus(self.timing().detach);
        let mounted = inst.mounts.iter().any(|m| m.volume_id == volume_id);
        let new_state = if mounted && !force && inst.state == InstanceState::Running {
            AttachState::Busy
        } else {
            AttachState::Detaching
        };
        let st = self.state_mut();
        if force {
            if let Some(i) = st.instances.get_mut(&a.instance_id) {
                i.mounts.retain(|m| m.volume_id != volume_id);
            }
        }
        let mut out = a.clone();
        if let Some(vol) = st.volumes.get_mut(volume_id) {
            if let Some(att) = vol.attachments.get_mut(pos) {
                att.state = new_state;
                att.until = until;
                out = att.clone();
            }
        }
        // The response says `detaching` even when the guest holds it busy.
        out.state = AttachState::Detaching;
        Ok(out)
    }

    /// ModifyVolume, checked in AWS's order: the volume exists, DryRun,
    /// the volume `available` or `in-use`, the previous modification
    /// finished, the rate rule, no shrinking, then the new type's limits
    /// and ratios.
    pub fn modify_volume(&mut self, req: &ModifyVolume) -> Result<Modification> {
        let v = self.volume(&req.volume_id)?.clone();
        let id = v.id.clone();
        if req.size.is_none()
            && req.volume_type.is_none()
            && req.iops.is_none()
            && req.throughput.is_none()
            && req.multi_attach.is_none()
        {
            return Err(ApiError::invalid_value(
                "Invalid input: Must specify at least one of size, type, iops, throughput, multi_attach_enabled",
            )
            .into());
        }
        if req.dry_run {
            // DryRun is checked right after the volume exists.
            return Err(ApiError::dry_run_ok().into());
        }
        if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
            return Err(ApiError::new(
                "IncorrectState",
                format!("The volume '{id}' is not in the 'available' or 'in-use' state."),
            )
            .into());
        }
        let now = self.now();
        if let Some(m) = self.state().latest_modification(&id) {
            if matches!(m.state, ModState::Modifying | ModState::Optimizing) {
                return Err(ApiError::new(
                    "IncorrectModificationState",
                    format!(
                        "Volume {id} cannot be modified in modification state {}",
                        m.state.upper()
                    ),
                )
                .into());
            }
        }
        self.check_rate(&id, now)?;
        if let Some(size) = req.size {
            if size < v.size {
                return Err(ApiError::invalid_value(
                    "New size cannot be smaller than existing size",
                )
                .into());
            }
        }
        let target_type = match &req.volume_type {
            Some(t) => Some(types::parse_type(t)?),
            None => None,
        };
        if let Some(t) = target_type {
            if v.boot && !t.limits().bootable {
                return Err(ApiError::invalid_value(
                    "This volume type is not compatible with root volumes.",
                )
                .into());
            }
            if v.multi_attach && t != v.volume_type {
                return Err(ApiError::new(
                    "InvalidParameterCombination",
                    format!("The type of Multi-Attach enabled volume {id} cannot be changed."),
                )
                .into());
            }
        }
        if v.multi_attach
            && v.volume_type == VolumeType::Io1
            && (req.size.is_some() || req.iops.is_some())
        {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                format!(
                    "The size and iops of Multi-Attach enabled io1 volume {id} cannot be changed."
                ),
            )
            .into());
        }
        let target =
            types::modify_perf(&v.perf(), req.size, target_type, req.iops, req.throughput)?;
        let target_multi = req.multi_attach.unwrap_or(v.multi_attach);
        if target_multi && !target.volume_type.limits().multi_attach {
            return Err(ApiError::invalid_combination(format!(
                "The parameter MultiAttachEnabled is not supported for {} volumes.",
                target.volume_type
            ))
            .into());
        }
        // The image must be one ebsim can grow: a link or a FIFO in its
        // place is refused now, not found (or waited on) when the clock
        // reaches `optimizing`.
        let allocated = super::store::open_volume_image(
            &self.home().volume_image(&id),
            crate::blockdev::image::Access::ReadOnly,
        )
        .and_then(|f| f.allocated_bytes());
        let allocated = match allocated {
            Ok(a) => a,
            Err(crate::blockdev::Error::NotFound(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        let t = *self.timing();
        let optimizing_at = now.plus(t.modifying);
        let gib = i64::try_from(allocated >> 30).unwrap_or(i64::MAX);
        let completed_at = optimizing_at.plus(
            t.optimizing_min
                .max(gib.saturating_mul(t.optimizing_per_gib)),
        );
        let m = Modification {
            volume_id: id.clone(),
            state: ModState::Modifying,
            original_size: v.size,
            original_type: v.volume_type,
            original_iops: v.shown_iops(),
            original_throughput: v.throughput,
            original_multi_attach: v.multi_attach,
            target_size: target.size,
            target_type: target.volume_type,
            target_iops: target.iops,
            target_throughput: target.throughput,
            target_multi_attach: target_multi,
            start_time: now,
            optimizing_at,
            completed_at,
            end_time: None,
            status_message: None,
        };
        self.state_mut().modifications.push(m.clone());
        Ok(m)
    }

    fn check_rate(&self, id: &str, now: Millis) -> Result<()> {
        let mods: Vec<&Modification> = self
            .state()
            .modifications
            .iter()
            .filter(|m| m.volume_id == id)
            .collect();
        match self.ec2().policy {
            RatePolicy::Cooldown6h => {
                if let Some(last) = mods.last() {
                    if now < last.start_time.plus(6 * HOUR) {
                        return Err(ApiError::new(
                            "VolumeModificationRateExceeded",
                            "You've reached the maximum modification rate per volume limit. Wait at least 6 hours between modifications per EBS volume.",
                        )
                        .into());
                    }
                }
            }
            RatePolicy::FourPer24h => {
                let window: Vec<&&Modification> = mods
                    .iter()
                    .filter(|m| m.start_time > now.plus(-DAY))
                    .collect();
                if window.len() >= 4 {
                    let oldest = window.iter().map(|m| m.start_time).min().unwrap_or(now);
                    let until = oldest.plus(DAY);
                    return Err(ApiError::new(
                        "VolumeModificationRateExceeded",
                        format!(
                            "You've reached the maximum modification rate per volume limit. Wait until {} before you can issue the next modification request for this volume.",
                            until.to_wire()
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// DescribeVolumesModifications: the latest modification of each
    /// volume.
    pub fn describe_volumes_modifications(
        &self,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Modification>> {
        filter::check_names(filters, MODIFICATION_FILTERS)?;
        let mut picked: Vec<&Modification> = Vec::new();
        if ids.is_empty() {
            let mut seen = std::collections::HashSet::new();
            for m in self.state().modifications.iter().rev() {
                let in_region = self
                    .state()
                    .volumes
                    .get(&m.volume_id)
                    .is_some_and(|v| region_of(&v.az) == self.region());
                if in_region && seen.insert(m.volume_id.clone()) {
                    picked.push(m);
                }
            }
            picked.reverse();
        } else {
            for id in ids {
                self.volume(id)?;
                match self.state().latest_modification(id) {
                    Some(m) => picked.push(m),
                    None => {
                        return Err(ApiError::new(
                            "InvalidVolumeModification.NotFound",
                            format!("Modification for volume '{id}' does not exist."),
                        )
                        .into());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for m in picked {
            let ok = filter::matches(filters, |name| {
                let one = |s: String| Some(vec![s]);
                let opt = |o: Option<u64>| Some(o.map(|x| vec![x.to_string()]).unwrap_or_default());
                match name {
                    "modification-state" => one(m.state.as_str().to_string()),
                    "volume-id" => one(m.volume_id.clone()),
                    "original-size" => one(m.original_size.to_string()),
                    "original-volume-type" => one(m.original_type.to_string()),
                    "original-iops" => opt(m.original_iops),
                    "original-throughput" => opt(m.original_throughput),
                    "target-size" => one(m.target_size.to_string()),
                    "target-volume-type" => one(m.target_type.to_string()),
                    "target-iops" => opt(m.shown_target_iops()),
                    "target-throughput" => opt(m.target_throughput),
                    "start-time" => one(m.start_time.whole_seconds().to_wire()),
                    "original-multi-attach-enabled" => one(m.original_multi_attach.to_string()),
                    "target-multi-attach-enabled" => one(m.target_multi_attach.to_string()),
                    _ => None,
                }
            })?;
            if ok {
                out.push(m.clone());
            }
        }
        Ok(out)
    }
}

/// Filters of DescribeVolumes.
pub const VOLUME_FILTERS: &[&str] = &[
    "status",
    "volume-type",
    "availability-zone",
    "volume-id",
    "size",
    "snapshot-id",
    "encrypted",
    "multi-attach-enabled",
    "create-time",
    "attachment.instance-id",
    "attachment.device",
    "attachment.status",
    "attachment.delete-on-termination",
    "attachment.attach-time",
    "availability-zone-id",
    "fast-restored",
    "operator.managed",
    "operator.principal",
];

/// Filters of DescribeVolumesModifications.
pub const MODIFICATION_FILTERS: &[&str] = &[
    "modification-state",
    "volume-id",
    "original-size",
    "original-volume-type",
    "original-iops",
    "original-throughput",
    "target-size",
    "target-volume-type",
    "target-iops",
    "target-throughput",
    "start-time",
    "original-multi-attach-enabled",
    "target-multi-attach-enabled",
];
