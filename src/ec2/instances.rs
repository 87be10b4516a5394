//! Instances: launch from an AMI with its block device
//! mappings, the state machine (pending → running → stopping → stopped,
//! shutting-down → terminated), DeleteOnTermination, type changes, and the
//! guest's view set up at launch (disk names, mounts from the image's
//! fstab).

use super::Txn;
use super::catalog;
use super::error::{ApiError, Result};
use super::filter::{self, Filter};
use super::guest::{self, Hypervisor};
use super::model::{
    AttachState, Instance, InstanceState, Mount, Tag, Volume, VolumeState, region_of,
};
use super::network;
use super::time::Millis;
use super::types::{self, VolumeType};

/// The `Ebs` part of a launch block device mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EbsSpec {
    /// Size in GiB.
    pub volume_size: Option<u64>,
    /// Type name.
    pub volume_type: Option<String>,
    /// IOPS.
    pub iops: Option<u64>,
    /// Throughput.
    pub throughput: Option<u64>,
    /// DeleteOnTermination.
    pub delete_on_termination: Option<bool>,
    /// Source snapshot.
    pub snapshot_id: Option<String>,
    /// Encrypted.
    pub encrypted: Option<bool>,
}

/// One launch block device mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BdmSpec {
    /// API device name.
    pub device: String,
    /// EBS settings.
    pub ebs: Option<EbsSpec>,
    /// Suppress the AMI's mapping of this device.
    pub no_device: bool,
}

/// A RunInstances request.
#[derive(Debug, Clone, Default)]
pub struct RunInstances {
    /// AMI.
    pub image_id: String,
    /// Type (default m1.small, as the API).
    pub instance_type: Option<String>,
    /// How many.
    pub count: u32,
    /// Placement AZ.
    pub availability_zone: Option<String>,
    /// Block device mappings.
    pub bdm: Vec<BdmSpec>,
    /// Key pair.
    pub key_name: Option<String>,
    /// User data (base64, as the API carries it).
    pub user_data: Option<String>,
    /// Termination protection.
    pub disable_api_termination: bool,
    /// Subnet (only a default subnet exists: it names the zone).
    pub subnet_id: Option<String>,
    /// Idempotency token: a second request with it answers the
    /// reservation the first made.
    pub client_token: Option<String>,
    /// Instance tags.
    pub instance_tags: Vec<Tag>,
    /// Volume tags.
    pub volume_tags: Vec<Tag>,
    /// Check only.
    pub dry_run: bool,
}

/// One change of ModifyInstanceAttribute's block device mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BdmChange {
    /// API device name.
    pub device: String,
    /// New DeleteOnTermination.
    pub delete_on_termination: Option<bool>,
    /// The volume, when given (must match).
    pub volume_id: Option<String>,
}

/// ModifyInstanceAttribute's request: the instance type (as
/// `--instance-type`, or `--attribute instanceType --value T`) and/or
/// DeleteOnTermination changes of the block device mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyInstanceAttribute {
    /// The instance.
    pub instance_id: String,
    /// `--instance-type`.
    pub instance_type: Option<String>,
    /// `--attribute` (only `instanceType` goes with `--value`).
    pub attribute: Option<String>,
    /// `--value`.
    pub value: Option<String>,
    /// `--block-device-mappings`.
    pub block_device_mappings: Vec<BdmChange>,
    /// `DisableApiTermination.Value` (or `--attribute disableApiTermination`).
    pub disable_api_termination: Option<bool>,
    /// `UserData.Value`, base64 (or `--attribute userData`).
    pub user_data: Option<String>,
    /// DryRun.
    pub dry_run: bool,
}

/// Filters of DescribeInstances.
pub const INSTANCE_FILTERS: &[&str] = &[
    "instance-state-name",
    "instance-state-code",
    "instance-id",
    "instance-type",
    "availability-zone",
    "image-id",
    "reservation-id",
    "architecture",
    "root-device-name",
    "root-device-type",
    "block-device-mapping.volume-id",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.delete-on-termination",
    "key-name",
    "private-ip-address",
    "private-dns-name",
    "vpc-id",
    "subnet-id",
    "network-interface.network-interface-id",
    "network-interface.vpc-id",
    "network-interface.subnet-id",
    "network-interface.addresses.private-ip-address",
    "network-interface.private-dns-name",
    "network-interface.mac-address",
    "instance.group-id",
    "instance.group-name",
    "block-device-mapping.attach-time",
    "launch-time",
    "launch-index",
    "owner-id",
    "tenancy",
    "virtualization-type",
    "hypervisor",
    "dns-name",
    "ip-address",
    "monitoring-state",
    "platform-details",
    "usage-operation",
    "product-code",
    "reason",
    "state-reason-code",
    "state-reason-message",
    "placement-group-name",
    "network-interface.status",
];

/// A volume to create at launch.
struct PlannedVolume {
    device: String,
    size: u64,
    perf: types::Perf,
    snapshot_id: Option<String>,
    dot: bool,
    encrypted: bool,
    root: bool,
}

fn bdm_error(msg: impl Into<String>) -> ApiError {
    ApiError::new("InvalidBlockDeviceMapping", msg)
}

impl Txn<'_> {
    /// An instance of this region, or `InvalidInstanceID.NotFound`.
    pub fn instance(&self, id: &str) -> Result<&Instance> {
        super::volumes::check_id(id, "i", "InvalidInstanceID.Malformed")?;
        match self.state().instances.get(id) {
            Some(i) if region_of(&i.az) == self.region() => Ok(i),
            _ => Err(ApiError::instance_not_found(id).into()),
        }
    }

    /// The zone of a default subnet of this region
    /// (`InvalidSubnetID.NotFound` for any other id).
    pub fn zone_of_subnet(&self, subnet: &str) -> Result<String> {
        let zones = super::zones::describe_availability_zones(self.region(), &[])?;
        zones
            .into_iter()
            .map(|z| z.name)
            .find(|z| network::subnet_id(z) == subnet)
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{subnet}' does not exist"),
                )
                .into()
            })
    }

    /// RunInstances. Returns the reservation id and the new instances' ids.
    pub fn run_instances(&mut self, req: &RunInstances) -> Result<(String, Vec<String>)> {
        if let Some(token) = req.client_token.as_deref().filter(|t| !t.is_empty()) {
            let region = self.region().to_string();
            let mine: Vec<&Instance> = self
                .state()
                .instances
                .values()
                .filter(|i| i.client_token.as_deref() == Some(token) && region_of(&i.az) == region)
                .collect();
            if let Some(first) = mine.first() {
                // The same launch again: the reservation it made, as it is
                // now (EC2 keeps the token's answer for at least a while).
                let rid = first.reservation_id.clone();
                let mut ids: Vec<(u32, String)> = mine
                    .iter()
                    .map(|i| (i.launch_index, i.id.clone()))
                    .collect();
                ids.sort();
                if req.dry_run {
                    return Err(ApiError::dry_run_ok().into());
                }
                return Ok((rid, ids.into_iter().map(|(_, id)| id).collect()));
            }
        }
        super::tags::check_new(&req.instance_tags)?;
        super::tags::check_new(&req.volume_tags)?;
        let image_id = self.resolve_image_id(&req.image_id)?;
        let image = self.image(&image_id)?;
        let itype = req
            .instance_type
            .clone()
            .unwrap_or_else(|| "m1.small".to_string());
        guest::check_instance_type(&itype)?;
        let arch = guest::architecture(&itype);
        if arch != image.architecture {
            return Err(ApiError::invalid_value(format!(
                "The architecture '{arch}' of the specified instance type does not match the architecture '{}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.",
                image.architecture
            ))
            .into());
        }
        let subnet_zone = match &req.subnet_id {
            Some(sn) => Some(self.zone_of_subnet(sn)?),
            None => None,
        };
        let az = match subnet_zone.as_ref().or(req.availability_zone.as_ref()) {
            Some(az) => {
                if super::volumes::check_zone(self.region(), az).is_err() {
                    return Err(ApiError::invalid_value(format!(
                        "Invalid availability zone: [{az}]"
                    ))
                    .into());
                }
                az.clone()
            }
            None => format!("{}a", self.region()),
        };
        if image.state != "available" {
            return Err(ApiError::new(
                "InvalidAMIID.Unavailable",
                format!(
                    "Image {} is not available. Current state: {}",
                    image.id, image.state
                ),
            )
            .into());
        }
        let planned = self.plan_volumes(&image, &req.bdm)?;
        if req.count == 0 {
            return Err(ApiError::invalid_value(
                "The minimum number of instances to launch must be at least 1.",
            )
            .into());
        }
        if req.dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        for p in &planned {
            if let Some(s) = &p.snapshot_id {
                self.ensure_catalog_snapshot(s)?;
            }
        }
        let reservation = self.new_id("r");
        let mut ids = Vec::new();
        for n in 0..req.count {
            let id = self.launch_one(req, &image, &itype, &az, &reservation, n, &planned)?;
            ids.push(id);
        }
        Ok((reservation, ids))
    }

    /// Merges the AMI's mappings with the request's and checks each.
    fn plan_volumes(
        &self,
        image: &super::model::Image,
        req: &[BdmSpec],
    ) -> Result<Vec<PlannedVolume>> {
        let mut out: Vec<PlannedVolume> = image
            .bdm
            .iter()
            .map(|b| PlannedVolume {
                device: b.device.clone(),
                size: b.volume_size,
                perf: types::Perf {
                    size: b.volume_size,
                    volume_type: b.volume_type,
                    iops: b.iops,
                    throughput: b.throughput,
                },
                snapshot_id: Some(b.snapshot_id.clone()),
                dot: b.delete_on_termination,
                encrypted: b.encrypted,
                root: b.device == image.root_device_name,
            })
            .collect();
        for mapping in req {
            if !guest::valid_device_name(&mapping.device) {
                return Err(bdm_error(format!("Invalid device name {}", mapping.device)).into());
            }
            let existing = out.iter().position(|p| p.device == mapping.device);
            if mapping.no_device {
                match existing {
                    Some(i) if out[i].root => {
                        return Err(bdm_error(format!(
                            "The device '{}' is the root device and cannot be suppressed.",
                            mapping.device
                        ))
                        .into());
                    }
                    Some(i) => {
                        out.remove(i);
                    }
                    None => {}
                }
                continue;
            }
            let Some(ebs) = &mapping.ebs else { continue };
            let root = mapping.device == image.root_device_name;
            let base = existing.map(|i| &out[i]);
            let snapshot_id = ebs
                .snapshot_id
                .clone()
                .or_else(|| base.and_then(|b| b.snapshot_id.clone()));
            let snap_size = match &snapshot_id {
                Some(sid) => Some(self.snapshot_size(sid)?),
                None => None,
            };
            let size = match (ebs.volume_size, snap_size, base) {
                (Some(s), Some(ss), _) if s < ss => {
                    return Err(bdm_error(format!(
                        "Volume of size {s}GB is smaller than snapshot '{}', expect size >= {ss}GB",
                        snapshot_id.clone().unwrap_or_default()
                    ))
                    .into());
                }
                (Some(s), _, _) => s,
                (None, Some(ss), _) => ss,
                (None, None, Some(b)) => b.size,
                (None, None, None) => {
                    return Err(bdm_error(format!(
                        "Either snapshot ID or volume size must be provided for: {}",
                        mapping.device
                    ))
                    .into());
                }
            };
            let vtype = match &ebs.volume_type {
                Some(t) => types::parse_type(t)?,
                None => base.map(|b| b.perf.volume_type).unwrap_or(VolumeType::Gp2),
            };
            if root && !vtype.limits().bootable {
                return Err(
                    bdm_error("This volume type is not compatible with root volumes.").into(),
                );
            }
            let keep_perf = base.filter(|b| b.perf.volume_type == vtype);
            let iops = ebs.iops.or_else(|| keep_perf.and_then(|b| b.perf.iops));
            let throughput = ebs
                .throughput
                .or_else(|| keep_perf.and_then(|b| b.perf.throughput));
            let perf = types::create_perf(size, vtype, iops, throughput)?;
            let planned = PlannedVolume {
                device: mapping.device.clone(),
                size,
                perf,
                snapshot_id,
                dot: ebs
                    .delete_on_termination
                    .unwrap_or_else(|| base.map(|b| b.dot).unwrap_or(false)),
                encrypted: ebs.encrypted.unwrap_or(false) || base.is_some_and(|b| b.encrypted),
                root,
            };
            match existing {
                Some(i) => out[i] = planned,
                None => out.push(planned),
            }
        }
        // The root first, then the rest in mapping order.
        out.sort_by_key(|p| !p.root);
        Ok(out)
    }

    fn snapshot_size(&self, sid: &str) -> Result<u64> {
        if let Some(c) = catalog::by_snapshot_id(sid) {
            return Ok(c.root_size);
        }
        Ok(self.snapshot(sid)?.volume_size)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_one(
        &mut self,
        req: &RunInstances,
        image: &super::model::Image,
        itype: &str,
        az: &str,
        reservation: &str,
        index: u32,
        planned: &[PlannedVolume],
    ) -> Result<String> {
        let id = self.new_id("i");
        let now = self.now();
        let pending = self.timing().instance_pending;
        let r = uuid::Uuid::new_v4();
        let b = r.as_bytes();
        let inst = Instance {
            id: id.clone(),
            reservation_id: reservation.to_string(),
            image_id: image.id.clone(),
            instance_type: itype.to_string(),
            az: az.to_string(),
            state: InstanceState::Pending,
            until: now.plus(pending),
            ever_running: false,
            launch_time: now,
            state_changed: now,
            root_device_name: image.root_device_name.clone(),
            architecture: image.architecture.clone(),
            launch_index: index,
            key_name: req.key_name.clone(),
            private_ip: format!("172.31.{}.{}", b[0] % 64, 1 + b[1] % 254),
            tags: req.instance_tags.clone(),
            flavour: image.flavour.clone(),
            util_linux: catalog::release_of(image.flavour.as_deref())
                .util_linux
                .to_string(),
            mounts: Vec::new(),
            blkext_minors: Default::default(),
            user_data: req.user_data.clone(),
            boot_due: false,
            boot_failure: None,
            disable_api_termination: req.disable_api_termination,
            client_token: req.client_token.clone().filter(|t| !t.is_empty()),
        };
        self.state_mut().instances.insert(id.clone(), inst);
        for p in planned {
            let vid = self.new_id("vol");
            let flavour = p
                .snapshot_id
                .as_ref()
                .and_then(|s| self.state().snapshots.get(s))
                .and_then(|s| s.flavour.clone());
            let vol = Volume {
                id: vid.clone(),
                size: p.perf.size,
                volume_type: p.perf.volume_type,
                iops: p.perf.iops,
                throughput: p.perf.throughput,
                az: az.to_string(),
                encrypted: p.encrypted,
                kms_key_id: None,
                snapshot_id: p.snapshot_id.clone(),
                state: VolumeState::InUse,
                ready_at: now,
                create_time: now,
                tags: req.volume_tags.clone(),
                multi_attach: false,
                client_token: None,
                attachments: Vec::new(),
                boot: p.root,
                flavour: flavour.clone(),
            };
            let _ = p.size;
            self.materialise_volume(&vol, p.snapshot_id.as_deref())?;
            self.state_mut().volumes.insert(vid.clone(), vol);
            let att =
                self.attach_now(&vid, &id, &p.device, p.dot, now, now, AttachState::Attached)?;
            if p.root {
                self.setup_root_guest(&id, &vid, &att.guest.name, flavour.as_deref());
            }
        }
        Ok(id)
    }

    /// A boot (launch, start, reboot): the root device's filesystems are
    /// mounted from its fstab when they are not (a root volume swapped
    /// while stopped), and the boot-time work is due.
    pub(crate) fn boot(&mut self, instance_id: &str) {
        let Some(inst) = self.state().instances.get(instance_id) else {
            return;
        };
        let root_dev = inst.root_device_name.clone();
        let has_root = inst.mounts.iter().any(|m| m.target == "/");
        let root = self
            .state()
            .attached_to(instance_id)
            .iter()
            .find(|(_, a)| a.device == root_dev)
            .map(|(v, a)| (v.id.clone(), a.guest.name.clone(), v.flavour.clone()));
        if let Some((vid, disk, flavour)) = root {
            if !has_root {
                self.setup_root_guest(instance_id, &vid, &disk, flavour.as_deref());
            }
        }
        if let Some(i) = self.state_mut().instances.get_mut(instance_id) {
            i.boot_due = true;
        }
    }

    /// The boots due (see [`Txn::boot`]), claimed: each instance's flag is
    /// cleared and its cloud-init job returned, to run once the state is
    /// written, with the ids of every instance booted (whose fstab the
    /// boot then mounts, [`super::boot::fstab_failure`]).
    pub(crate) fn claim_boots(&mut self) -> (Vec<super::boot::BootJob>, Vec<String>) {
        let now = self.now();
        let due: Vec<String> = self
            .state()
            .instances
            .values()
            .filter(|i| i.boot_due)
            .map(|i| i.id.clone())
            .collect();
        let mut jobs = Vec::new();
        for id in &due {
            if let Some(i) = self.state_mut().instances.get_mut(id) {
                i.boot_due = false;
            }
            let Some(inst) = self.state().instances.get(id) else {
                continue;
            };
            let Some(flavour) = inst.flavour.clone() else {
                continue;
            };
            if super::boot::runs_cloud_init(&flavour).is_none() {
                continue;
            }
            let Some(root) = inst.mounts.iter().find(|m| m.target == "/").cloned() else {
                continue;
            };
            let Some(part) = root.partition else {
                continue;
            };
            let Some(disk) = self
                .state()
                .attached_to(id)
                .iter()
                .find(|(v, _)| v.id == root.volume_id)
                .map(|(_, a)| a.guest.name.clone())
            else {
                continue;
            };
            let user_data = inst
                .user_data
                .as_deref()
                .and_then(super::boot::base64_decode)
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            jobs.push(super::boot::BootJob {
                instance_id: id.clone(),
                image: self.home().volume_image(&root.volume_id),
                disk,
                partition: part,
                mount_source: root.source.clone(),
                fstype: root.fstype.clone(),
                flavour,
                user_data,
                now,
            });
        }
        (jobs, due)
    }

    /// Records how an instance's boot went: `failure` is why it stopped
    /// in emergency mode, None when it got through.
    pub(crate) fn set_boot_failure(&mut self, id: &str, failure: Option<String>) {
        if let Some(i) = self.state_mut().instances.get_mut(id) {
            i.boot_failure = failure;
        }
    }

    /// Registers the root disk's partitions in the order the kernel would
    /// (for their 259:N minors) and mounts what the image's fstab mounts.
    fn setup_root_guest(
        &mut self,
        instance_id: &str,
        volume_id: &str,
        disk: &str,
        flavour: Option<&str>,
    ) {
        let Some(c) = flavour.and_then(catalog::by_key) else {
            return;
        };
        let nitro = self
            .state()
            .instances
            .get(instance_id)
            .is_some_and(|i| guest::hypervisor(&i.instance_type) == Hypervisor::Nitro);
        let mut parts: Vec<&catalog::PartitionSpec> = c.layout.partitions.iter().collect();
        parts.sort_by_key(|p| p.number);
        let Some(inst) = self.state_mut().instances.get_mut(instance_id) else {
            return;
        };
        for p in &parts {
            let name = guest::partition_name(disk, p.number);
            if nitro || p.number > 15 {
                inst.alloc_blkext_minor(&name);
            }
        }
        // `/` first, then the rest (`/boot/efi`), as systemd mounts them.
        let mut mounted: Vec<&&catalog::PartitionSpec> = parts
            .iter()
            .filter(|p| p.fs.and_then(|f| f.mount_point).is_some())
            .collect();
        mounted.sort_by_key(|p| p.fs.and_then(|f| f.mount_point).map(str::len));
        for p in mounted {
            let Some(fs) = p.fs else { continue };
            // Ubuntu's initramfs mounts the root from the kernel command
            // line, so /proc/mounts (and df) name it /dev/root.
            let root = fs.mount_point == Some("/");
            let source = if root && c.key.starts_with("ubuntu") {
                "/dev/root".to_string()
            } else {
                format!("/dev/{}", guest::partition_name(disk, p.number))
            };
            inst.mounts.push(Mount {
                volume_id: volume_id.to_string(),
                partition: Some(p.number),
                source,
                target: fs.mount_point.unwrap_or("/").to_string(),
                fstype: fs.kind.name().to_string(),
                options: fs.options.to_string(),
                fstab: true,
            });
        }
    }

    /// DescribeInstances: instances grouped by reservation, in launch order.
    pub fn describe_instances(&self, ids: &[String], filters: &[Filter]) -> Result<Vec<Instance>> {
        filter::check_names(filters, INSTANCE_FILTERS)?;
        let mut picked: Vec<&Instance> = Vec::new();
        if ids.is_empty() {
            picked.extend(
                self.state()
                    .instances
                    .values()
                    .filter(|i| region_of(&i.az) == self.region()),
            );
        } else {
            for id in ids {
                picked.push(self.instance(id)?);
            }
        }
        let mut out = Vec::new();
        for i in picked {
            let att = self.state().attached_to(&i.id);
            let ok = filter::matches(filters, |name| {
                let one = |v: String| Some(vec![v]);
                let bdm = |f: &dyn Fn(&Volume, &super::model::Attachment) -> String| {
                    Some(att.iter().map(|(v, a)| f(v, a)).collect::<Vec<_>>())
                };
                match name {
                    "instance-state-name" => one(i.state.as_str().to_string()),
                    "instance-state-code" => one(i.state.code().to_string()),
                    "instance-id" => one(i.id.clone()),
                    "instance-type" => one(i.instance_type.clone()),
                    "availability-zone" => one(i.az.clone()),
                    "image-id" => one(i.image_id.clone()),
                    "reservation-id" => one(i.reservation_id.clone()),
                    "architecture" => one(i.architecture.clone()),
                    "root-device-name" => one(i.root_device_name.clone()),
                    "root-device-type" => one("ebs".to_string()),
                    "key-name" => Some(i.key_name.clone().into_iter().collect()),
                    "private-ip-address" | "network-interface.addresses.private-ip-address" => {
                        one(i.private_ip.clone())
                    }
                    "private-dns-name" | "network-interface.private-dns-name" => {
                        one(network::instance_dns_name(i))
                    }
                    "vpc-id" | "network-interface.vpc-id" => one(network::vpc_id(self.region())),
                    "subnet-id" | "network-interface.subnet-id" => one(network::subnet_id(&i.az)),
                    "network-interface.network-interface-id" => one(network::eni_id(&i.id)),
                    "network-interface.mac-address" => one(network::mac_address(&i.id)),
                    "network-interface.status" => one("in-use".to_string()),
                    "instance.group-id" => one(network::security_group_id(self.region())),
                    "instance.group-name" => one(network::SECURITY_GROUP_NAME.to_string()),
                    "block-device-mapping.attach-time" => {
                        bdm(&|_, a| a.attach_time.whole_seconds().to_wire())
                    }
                    "launch-time" => one(i.launch_time.whole_seconds().to_wire()),
                    "launch-index" => one(i.launch_index.to_string()),
                    "owner-id" => one(super::model::OWNER_ID.to_string()),
                    "tenancy" => one("default".to_string()),
                    "virtualization-type" => one("hvm".to_string()),
                    "hypervisor" => one("xen".to_string()),
                    "dns-name" | "ip-address" | "placement-group-name" | "product-code" => {
                        Some(Vec::new())
                    }
                    "monitoring-state" => one("disabled".to_string()),
                    "platform-details" => one("Linux/UNIX".to_string()),
                    "usage-operation" => one("RunInstances".to_string()),
                    "reason" => one(super::wire::state_transition_reason(i)),
                    "state-reason-code" => Some(
                        super::wire::state_reason(i)
                            .map(|(c, _)| c.to_string())
                            .into_iter()
                            .collect(),
                    ),
                    "state-reason-message" => Some(
                        super::wire::state_reason(i)
                            .map(|(_, m)| m.to_string())
                            .into_iter()
                            .collect(),
                    ),
                    "block-device-mapping.volume-id" => bdm(&|v, _| v.id.clone()),
                    "block-device-mapping.device-name" => bdm(&|_, a| a.device.clone()),
                    "block-device-mapping.status" => bdm(&|_, a| a.state.as_str().to_string()),
                    "block-device-mapping.delete-on-termination" => {
                        bdm(&|_, a| a.delete_on_termination.to_string())
                    }
                    n => filter::tag_values(n, &i.tags),
                }
            })?;
            if ok {
                out.push(i.clone());
            }
        }
        out.sort_by(|a, b| {
            (a.launch_time, &a.reservation_id, a.launch_index).cmp(&(
                b.launch_time,
                &b.reservation_id,
                b.launch_index,
            ))
        });
        Ok(out)
    }

    fn instances_for(&self, ids: &[String]) -> Result<Vec<Instance>> {
        if ids.is_empty() {
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain the parameter InstanceId",
            )
            .into());
        }
        ids.iter().map(|id| self.instance(id).cloned()).collect()
    }

    /// StartInstances.
    pub fn start_instances(
        &mut self,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<(String, InstanceState, InstanceState)>> {
        let insts = self.instances_for(ids)?;
        for i in &insts {
            if matches!(
                i.state,
                InstanceState::Stopping | InstanceState::ShuttingDown | InstanceState::Terminated
            ) {
                return Err(ApiError::new(
                    "IncorrectInstanceState",
                    format!(
                        "The instance '{}' is not in a state from which it can be started.",
                        i.id
                    ),
                )
                .into());
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let pending = self.timing().instance_pending;
        Ok(self.transition(
            insts,
            |st| st == InstanceState::Stopped,
            InstanceState::Pending,
            pending,
            true,
        ))
    }

    /// Moves each of `insts` whose state `from` accepts to `to` for
    /// `duration` (a start also resets the launch time); returns (id,
    /// current, previous) for every instance, as Start/Stop/Terminate
    /// report them.
    fn transition(
        &mut self,
        insts: Vec<Instance>,
        from: impl Fn(InstanceState) -> bool,
        to: InstanceState,
        duration: i64,
        relaunch: bool,
    ) -> Vec<(String, InstanceState, InstanceState)> {
        let now = self.now();
        let mut out = Vec::new();
        for i in insts {
            let prev = i.state;
            if from(prev) {
                if let Some(m) = self.state_mut().instances.get_mut(&i.id) {
                    m.state = to;
                    m.until = now.plus(duration);
                    m.state_changed = now;
                    if relaunch {
                        m.launch_time = now;
                    }
                }
            }
            let cur = self
                .state()
                .instances
                .get(&i.id)
                .map(|m| m.state)
                .unwrap_or(prev);
            out.push((i.id, cur, prev));
        }
        out
    }

    /// StopInstances.
    pub fn stop_instances(
        &mut self,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<(String, InstanceState, InstanceState)>> {
        let insts = self.instances_for(ids)?;
        for i in &insts {
            match i.state {
                InstanceState::Pending if !i.ever_running => {
                    return Err(ApiError::new(
                        "IncorrectInstanceState",
                        format!("Instance '{}' cannot be stopped as it has never reached the 'running' state.", i.id),
                    )
                    .into());
                }
                InstanceState::Pending
                | InstanceState::ShuttingDown
                | InstanceState::Terminated => {
                    return Err(ApiError::new(
                        "IncorrectInstanceState",
                        format!(
                            "This instance '{}' is not in a state from which it can be stopped.",
                            i.id
                        ),
                    )
                    .into());
                }
                _ => {}
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let t = self.timing().instance_stopping;
        Ok(self.transition(
            insts,
            |st| st == InstanceState::Running,
            InstanceState::Stopping,
            t,
            false,
        ))
    }

    /// TerminateInstances: shutting-down now; at terminated the volumes
    /// are detached and those marked DeleteOnTermination deleted.
    pub fn terminate_instances(
        &mut self,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<(String, InstanceState, InstanceState)>> {
        let insts = self.instances_for(ids)?;
        if let Some(i) = insts.iter().find(|i| i.disable_api_termination) {
            return Err(ApiError::new(
                "OperationNotPermitted",
                format!(
                    "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                    i.id
                ),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let t = self.timing().instance_shutting_down;
        let live = |st| !matches!(st, InstanceState::ShuttingDown | InstanceState::Terminated);
        Ok(self.transition(insts, live, InstanceState::ShuttingDown, t, false))
    }

    /// RebootInstances: the guest loses the mounts not in its fstab.
    pub fn reboot_instances(&mut self, ids: &[String], dry_run: bool) -> Result<()> {
        let insts = self.instances_for(ids)?;
        for i in &insts {
            if !matches!(i.state, InstanceState::Running | InstanceState::Pending) {
                return Err(ApiError::new(
                    "IncorrectInstanceState",
                    format!(
                        "The instance '{}' is not in a state from which it can be rebooted.",
                        i.id
                    ),
                )
                .into());
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        for i in insts {
            if let Some(m) = self.state_mut().instances.get_mut(&i.id) {
                m.mounts.retain(|m| m.fstab);
            }
            if i.state == InstanceState::Running {
                self.boot(&i.id);
            }
        }
        Ok(())
    }

    /// ModifyInstanceAttribute: the attribute named, or the type and the
    /// mapping changes given (`InvalidParameterCombination` when none).
    pub fn modify_instance_attribute(&mut self, r: &ModifyInstanceAttribute) -> Result<()> {
        let mut new_type = r.instance_type.clone();
        let mut protect = r.disable_api_termination;
        let mut user_data = r.user_data.clone();
        match r.attribute.as_deref() {
            None => {}
            Some("instanceType") => new_type = r.value.clone(),
            Some("disableApiTermination") => {
                let v = r.value.as_deref().unwrap_or("");
                protect = Some(match v {
                    v if v.eq_ignore_ascii_case("true") => true,
                    v if v.eq_ignore_ascii_case("false") => false,
                    _ => {
                        return Err(ApiError::invalid_value(format!(
                            "Value ({v}) for parameter value is invalid. Expected 'true' or 'false'."
                        ))
                        .into());
                    }
                });
            }
            Some("userData") => user_data = Some(r.value.clone().unwrap_or_default()),
            Some(other) if INSTANCE_ATTRIBUTES.contains(&other) => {
                return Err(ApiError::new(
                    "InvalidParameterValue",
                    format!(
                        "Value ({other}) for parameter attribute is invalid. ebsim changes instanceType, userData, disableApiTermination and blockDeviceMapping."
                    ),
                )
                .into());
            }
            Some(other) => {
                return Err(ApiError::invalid_value(format!(
                    "Value ({other}) for parameter attribute is invalid. Unknown attribute."
                ))
                .into());
            }
        }
        let given = usize::from(new_type.is_some())
            + usize::from(protect.is_some())
            + usize::from(user_data.is_some())
            + usize::from(!r.block_device_mappings.is_empty());
        if given == 0 {
            return Err(
                ApiError::new("InvalidParameterCombination", "No attributes specified.").into(),
            );
        }
        if let Some(ty) = &new_type {
            self.modify_instance_type(&r.instance_id, ty, r.dry_run)?;
        }
        if let Some(on) = protect {
            self.set_termination_protection(&r.instance_id, on, r.dry_run)?;
        }
        if let Some(d) = &user_data {
            self.set_user_data(&r.instance_id, d, r.dry_run)?;
        }
        if !r.block_device_mappings.is_empty() {
            self.modify_instance_bdm(&r.instance_id, &r.block_device_mappings, r.dry_run)?;
        }
        Ok(())
    }

    /// ModifyInstanceAttribute --instance-type: only when stopped.
    pub fn modify_instance_type(&mut self, id: &str, new_type: &str, dry_run: bool) -> Result<()> {
        let inst = self.instance(id)?.clone();
        guest::check_instance_type(new_type)?;
        if inst.state != InstanceState::Stopped {
            return Err(ApiError::new(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in the 'stopped' state."),
            )
            .into());
        }
        if guest::architecture(new_type) != inst.architecture {
            return Err(ApiError::new(
                "InvalidInstanceAttributeValue",
                format!(
                    "Modifying the instance type from {} to {new_type} is not allowed.",
                    inst.instance_type
                ),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let old_hv = guest::hypervisor(&inst.instance_type);
        let new_hv = guest::hypervisor(new_type);
        if let Some(m) = self.state_mut().instances.get_mut(id) {
            m.instance_type = new_type.to_string();
        }
        if old_hv != new_hv {
            self.rename_guest_disks(id);
        }
        Ok(())
    }

    /// After a Xen ↔ Nitro type change the disks come back under their
    /// new kind of name at the next start (root first, then attach order).
    fn rename_guest_disks(&mut self, id: &str) {
        let order: Vec<(String, String, u64)> = self
            .state()
            .attached_to(id)
            .iter()
            .map(|(v, a)| (v.id.clone(), a.device.clone(), a.seq))
            .collect();
        let root = self
            .state()
            .instances
            .get(id)
            .map(|i| i.root_device_name.clone())
            .unwrap_or_default();
        let mut order = order;
        order.sort_by_key(|(_, d, seq)| (d != &root, *seq));
        let flavour = order
            .iter()
            .find(|(_, d, _)| d == &root)
            .and_then(|(v, _, _)| self.state().volumes.get(v))
            .and_then(|v| v.flavour.clone());
        if let Some(i) = self.state_mut().instances.get_mut(id) {
            i.blkext_minors.clear();
            i.mounts.clear();
        }
        for (vid, device, _) in &order {
            let (detached_dot, seq) = {
                let Some(v) = self.state_mut().volumes.get_mut(vid) else {
                    continue;
                };
                let Some(pos) = v.attachments.iter().position(|a| a.instance_id == id) else {
                    continue;
                };
                let a = v.attachments.remove(pos);
                (a.delete_on_termination, a.seq)
            };
            let at = self.now();
            if let Ok(att) =
                self.attach_now(vid, id, device, detached_dot, at, at, AttachState::Attached)
            {
                let _ = seq;
                if device == &root {
                    self.setup_root_guest(id, vid, &att.guest.name, flavour.as_deref());
                }
            }
        }
    }

    /// ModifyInstanceAttribute --block-device-mappings: changes
    /// DeleteOnTermination of attached volumes (no stop needed).
    pub fn modify_instance_bdm(
        &mut self,
        id: &str,
        changes: &[BdmChange],
        dry_run: bool,
    ) -> Result<()> {
        self.instance(id)?;
        let att = self.state().attached_to(id);
        let mut plan: Vec<(String, bool)> = Vec::new();
        for c in changes {
            let Some((v, _)) = att.iter().find(|(_, a)| a.device == c.device) else {
                return Err(ApiError::new(
                    "InvalidInstanceAttributeValue",
                    format!("No device is currently mapped at {}", c.device),
                )
                .into());
            };
            if let Some(want) = &c.volume_id {
                if want != &v.id {
                    return Err(ApiError::new(
                        "InvalidInstanceAttributeValue",
                        format!("The volume '{want}' is not mapped at {}", c.device),
                    )
                    .into());
                }
            }
            if let Some(d) = c.delete_on_termination {
                plan.push((v.id.clone(), d));
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        for (vid, dot) in plan {
            if let Some(v) = self.state_mut().volumes.get_mut(&vid) {
                for a in v.attachments.iter_mut().filter(|a| a.instance_id == id) {
                    a.delete_on_termination = dot;
                }
            }
        }
        self.mark_dirty();
        Ok(())
    }

    /// When the instance entered its current state.
    pub fn state_since(&self, id: &str) -> Option<Millis> {
        self.state().instances.get(id).map(|i| i.state_changed)
    }
}

/// Filters of DescribeInstanceStatus.
pub const INSTANCE_STATUS_FILTERS: &[&str] = &[
    "availability-zone",
    "instance-state-code",
    "instance-state-name",
    "instance-status.reachability",
    "instance-status.status",
    "system-status.reachability",
    "system-status.status",
    "attached-ebs-status.status",
    "attached-ebs-status.reachability",
];

/// One status check's summary (`ok`, `initializing`, `not-applicable`)
/// and its reachability detail (`passed`, `initializing`, none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckStatus {
    /// The summary status.
    pub status: &'static str,
    /// The `reachability` detail, when the instance is running.
    pub reachability: Option<&'static str>,
}

/// An instance with its status checks at the time of the call.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    /// The instance.
    pub instance: Instance,
    /// The system check and the attached EBS check: ebsim has no impaired
    /// hardware, so they pass together.
    pub check: CheckStatus,
    /// The instance check: as `check`, but `impaired` (reachability
    /// `failed`) once the initialization is over when the last boot
    /// stopped in emergency mode.
    pub instance_check: CheckStatus,
}

/// The instance attributes DescribeInstanceAttribute knows.
pub const INSTANCE_ATTRIBUTES: &[&str] = &[
    "instanceType",
    "kernel",
    "ramdisk",
    "userData",
    "disableApiTermination",
    "instanceInitiatedShutdownBehavior",
    "rootDeviceName",
    "blockDeviceMapping",
    "productCodes",
    "sourceDestCheck",
    "groupSet",
    "ebsOptimized",
    "sriovNetSupport",
    "enaSupport",
    "enclaveOptions",
    "disableApiStop",
];

impl Txn<'_> {
    /// The status checks of a running instance: `initializing` for
    /// [`super::Timing::status_initializing`] after it reached `running`,
    /// then `ok`; `not-applicable` in every other state.
    pub fn check_status(&self, i: &Instance) -> CheckStatus {
        if i.state != InstanceState::Running {
            return CheckStatus {
                status: "not-applicable",
                reachability: None,
            };
        }
        let ready = i.state_changed.plus(self.timing().status_initializing);
        if self.now() < ready {
            CheckStatus {
                status: "initializing",
                reachability: Some("initializing"),
            }
        } else {
            CheckStatus {
                status: "ok",
                reachability: Some("passed"),
            }
        }
    }

    /// The instance status check: the system's, but `impaired` with
    /// reachability `failed` when the last boot stopped in emergency mode
    /// (the guest never answers the check's ARP probes once it would have
    /// been ready).
    pub fn instance_check_status(&self, i: &Instance) -> CheckStatus {
        let c = self.check_status(i);
        if c.status == "ok" && i.boot_failure.is_some() {
            CheckStatus {
                status: "impaired",
                reachability: Some("failed"),
            }
        } else {
            c
        }
    }

    /// DescribeInstanceStatus: running instances only unless
    /// `include_all` (an instance named by id that is not running is left
    /// out, not an error); an unknown id is `InvalidInstanceID.NotFound`.
    pub fn describe_instance_status(
        &self,
        ids: &[String],
        include_all: bool,
        filters: &[Filter],
    ) -> Result<Vec<InstanceStatus>> {
        filter::check_names(filters, INSTANCE_STATUS_FILTERS)?;
        let insts = self.describe_instances(ids, &[])?;
        let mut out = Vec::new();
        for i in insts {
            if !include_all && i.state != InstanceState::Running {
                continue;
            }
            let check = self.check_status(&i);
            let instance_check = self.instance_check_status(&i);
            let ok = filter::matches(filters, |name| {
                let one = |v: &str| Some(vec![v.to_string()]);
                match name {
                    "availability-zone" => one(&i.az),
                    "instance-state-code" => Some(vec![i.state.code().to_string()]),
                    "instance-state-name" => one(i.state.as_str()),
                    "instance-status.status" => one(instance_check.status),
                    "system-status.status" | "attached-ebs-status.status" => one(check.status),
                    "instance-status.reachability" => Some(
                        instance_check
                            .reachability
                            .map(str::to_string)
                            .into_iter()
                            .collect(),
                    ),
                    "system-status.reachability" | "attached-ebs-status.reachability" => {
                        Some(check.reachability.map(str::to_string).into_iter().collect())
                    }
                    _ => None,
                }
            })?;
            if ok {
                out.push(InstanceStatus {
                    instance: i,
                    check,
                    instance_check,
                });
            }
        }
        Ok(out)
    }

    /// DescribeInstanceAttribute: checks the instance and the attribute's
    /// name (`InvalidParameterValue` for one EC2 does not have).
    pub fn describe_instance_attribute(
        &self,
        id: &str,
        attribute: &str,
        dry_run: bool,
    ) -> Result<Instance> {
        let i = self.instance(id)?.clone();
        if !INSTANCE_ATTRIBUTES.contains(&attribute) {
            return Err(ApiError::invalid_value(format!(
                "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
            ))
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(i)
    }

    /// ModifyInstanceAttribute `disableApiTermination`.
    pub fn set_termination_protection(&mut self, id: &str, on: bool, dry_run: bool) -> Result<()> {
        self.instance(id)?;
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        if let Some(i) = self.state_mut().instances.get_mut(id) {
            i.disable_api_termination = on;
        }
        Ok(())
    }

    /// ModifyInstanceAttribute `userData` (base64): only when stopped.
    pub fn set_user_data(&mut self, id: &str, data: &str, dry_run: bool) -> Result<()> {
        let i = self.instance(id)?;
        if i.state != InstanceState::Stopped {
            return Err(ApiError::new(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in the 'stopped' state."),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        if let Some(i) = self.state_mut().instances.get_mut(id) {
            i.user_data = (!data.is_empty()).then(|| data.to_string());
        }
        Ok(())
    }
}
