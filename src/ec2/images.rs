//! AMIs: the built-in catalog, built on first use into a
//! snapshot in the chunk store, and images made by CreateImage from an
//! instance's volumes.

use super::Txn;
use super::catalog::{self, CatalogImage};
use super::error::{ApiError, Error, Result};
use super::filter::{self, Filter};
use super::model::{Image, ImageBdm, InstanceState, OWNER_ID, SnapState, Snapshot, Tag, region_of};
use super::time::Millis;

/// Filters of DescribeImages.
pub const IMAGE_FILTERS: &[&str] = &[
    "name",
    "image-id",
    "owner-id",
    "owner-alias",
    "architecture",
    "state",
    "root-device-name",
    "root-device-type",
    "is-public",
    "image-type",
    "virtualization-type",
    "block-device-mapping.snapshot-id",
    "block-device-mapping.volume-size",
    "block-device-mapping.volume-type",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.encrypted",
    "creation-date",
    "description",
    "ena-support",
    "free-tier-eligible",
    "hypervisor",
    "image-allowed",
    "kernel-id",
    "manifest-location",
    "platform",
    "platform-details",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "source-image-id",
    "source-image-region",
    "source-instance-id",
    "state-reason-code",
    "state-reason-message",
    "sriov-net-support",
    "usage-operation",
];

/// The image record of a catalog entry, in `region`.
pub fn catalog_image(c: &CatalogImage, region: &str) -> Image {
    Image {
        id: c.image_id.to_string(),
        name: c.name.to_string(),
        description: Some(c.description.to_string()),
        owner_id: c.owner_id.to_string(),
        owner_alias: c.owner_alias.map(str::to_string),
        public: true,
        architecture: c.architecture.to_string(),
        root_device_name: c.root_device_name.to_string(),
        bdm: vec![ImageBdm {
            device: c.root_device_name.to_string(),
            snapshot_id: c.snapshot_id.to_string(),
            volume_size: c.root_size,
            volume_type: c.root_type,
            iops: (c.root_type == super::types::VolumeType::Gp3).then_some(3000),
            throughput: (c.root_type == super::types::VolumeType::Gp3).then_some(125),
            delete_on_termination: true,
            encrypted: false,
        }],
        state: "available".to_string(),
        available_at: Millis(0),
        creation_date: Millis::parse(c.creation_date).unwrap_or_default(),
        source_instance_id: None,
        region: region.to_string(),
        flavour: Some(c.key.to_string()),
        tags: Vec::new(),
    }
}

impl Txn<'_> {
    /// An image id as RunInstances takes it: an id, or
    /// `resolve:ssm:PARAMETER` naming one of the public parameters that
    /// point at a catalog AMI (a `:VERSION` or `:LABEL` suffix picks the
    /// current value, the only one ebsim has).
    pub fn resolve_image_id(&self, id: &str) -> Result<String> {
        let Some(param) = id.strip_prefix("resolve:ssm:") else {
            return Ok(id.to_string());
        };
        let name = param.split(':').next().unwrap_or(param);
        match catalog::by_ssm_parameter(name) {
            Some(c) => Ok(c.image_id.to_string()),
            None => Err(ApiError::invalid_value(format!(
                "Unable to resolve the SSM parameter {param}: the parameter does not exist or its value is not an AMI id."
            ))
            .into()),
        }
    }

    /// An image of this region (a catalog one, or a registered one).
    pub fn image(&self, id: &str) -> Result<Image> {
        super::volumes::check_id(id, "ami", "InvalidAMIID.Malformed")?;
        if let Some(c) = catalog::by_image_id(id) {
            return Ok(catalog_image(c, self.region()));
        }
        match self.state().images.get(id) {
            Some(i) if i.region == self.region() => Ok(i.clone()),
            _ => Err(ApiError::image_not_found(id).into()),
        }
    }

    /// Builds a catalog image's root snapshot the first time it is needed:
    /// the builder writes the disk, which goes into the chunk store as the
    /// snapshot the catalog names.
    pub(crate) fn ensure_catalog_snapshot(&mut self, snap_id: &str) -> Result<()> {
        let Some(c) = catalog::by_snapshot_id(snap_id) else {
            return Ok(());
        };
        // Built already, by this version of the builder: done. A snapshot
        // from an older builder is rebuilt (volumes made from it keep their
        // data; its chunks no longer named are swept with the next delete).
        if self
            .state()
            .snapshots
            .get(snap_id)
            .is_some_and(|s| s.catalog_build == Some(catalog::BUILD_VERSION))
        {
            return Ok(());
        }
        // Built in the staging directory (a crash leaves nothing behind),
        // snapshotted into it, and removed; the snapshot's files are
        // published with the state.
        let stage = self.stage()?;
        let path = stage.scratch(&format!("{}.img", c.image_id));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
        }
        self.ec2()
            .builder
            .build(c, &path)
            .map_err(|reason| Error::Build {
                image: c.image_id.to_string(),
                reason,
            })?;
        let taken = super::snapshots::take(self.home(), &stage, snap_id, &path);
        let _ = std::fs::remove_file(&path);
        let taken = taken?;
        let created = Millis::parse(c.creation_date).unwrap_or_default();
        let az = format!("{}a", self.region());
        let snap = Snapshot {
            id: snap_id.to_string(),
            volume_id: "vol-ffffffff".to_string(),
            volume_size: c.root_size,
            description: String::new(),
            state: SnapState::Completed,
            start_time: created,
            complete_at: created,
            owner_id: c.owner_id.to_string(),
            owner_alias: c.owner_alias.map(str::to_string),
            encrypted: false,
            tags: Vec::new(),
            az,
            data_bytes: taken.data_bytes,
            new_bytes: taken.new_bytes,
            flavour: Some(c.key.to_string()),
            catalog_build: Some(catalog::BUILD_VERSION),
            kms_key_id: None,
        };
        self.state_mut().snapshots.insert(snap_id.to_string(), snap);
        Ok(())
    }

    /// DescribeImages: the catalog and the account's images.
    pub fn describe_images(
        &self,
        ids: &[String],
        owners: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Image>> {
        filter::check_names(filters, IMAGE_FILTERS)?;
        let mut all: Vec<Image> = Vec::new();
        if ids.is_empty() {
            all.extend(
                catalog::CATALOG
                    .iter()
                    .map(|c| catalog_image(c, self.region())),
            );
            all.extend(
                self.state()
                    .images
                    .values()
                    .filter(|i| i.region == self.region())
                    .cloned(),
            );
        } else {
            for id in ids {
                all.push(self.image(id)?);
            }
        }
        let mut out = Vec::new();
        for img in all {
            let owner_ok = owners.is_empty()
                || owners.iter().any(|o| {
                    o == &img.owner_id
                        || (o == "self" && img.owner_id == OWNER_ID)
                        || img.owner_alias.as_deref() == Some(o.as_str())
                });
            if !owner_ok {
                continue;
            }
            let ok = filter::matches(filters, |name| {
                let one = |v: String| Some(vec![v]);
                let bdm = |f: &dyn Fn(&ImageBdm) -> String| {
                    Some(img.bdm.iter().map(f).collect::<Vec<_>>())
                };
                match name {
                    "name" => one(img.name.clone()),
                    "image-id" => one(img.id.clone()),
                    "owner-id" => one(img.owner_id.clone()),
                    "owner-alias" => Some(img.owner_alias.clone().into_iter().collect()),
                    "architecture" => one(img.architecture.clone()),
                    "state" => one(img.state.clone()),
                    "root-device-name" => one(img.root_device_name.clone()),
                    "root-device-type" => one("ebs".to_string()),
                    "is-public" => one(img.public.to_string()),
                    "image-type" => one("machine".to_string()),
                    "virtualization-type" => one("hvm".to_string()),
                    "block-device-mapping.snapshot-id" => bdm(&|b| b.snapshot_id.clone()),
                    "block-device-mapping.volume-size" => bdm(&|b| b.volume_size.to_string()),
                    "block-device-mapping.volume-type" => bdm(&|b| b.volume_type.to_string()),
                    "block-device-mapping.delete-on-termination" => {
                        bdm(&|b| b.delete_on_termination.to_string())
                    }
                    "block-device-mapping.device-name" => bdm(&|b| b.device.clone()),
                    "block-device-mapping.encrypted" => bdm(&|b| b.encrypted.to_string()),
                    "creation-date" => one(img.creation_date.to_wire()),
                    "description" => Some(img.description.clone().into_iter().collect()),
                    "ena-support" | "image-allowed" => one("true".to_string()),
                    "free-tier-eligible" => one(img.public.to_string()),
                    "hypervisor" => one("xen".to_string()),
                    "manifest-location" => one(match &img.owner_alias {
                        Some(a) => format!("{a}/{}", img.name),
                        None => format!("{}/{}", img.owner_id, img.name),
                    }),
                    "platform-details" => one("Linux/UNIX".to_string()),
                    "usage-operation" => one("RunInstances".to_string()),
                    "sriov-net-support" => one("simple".to_string()),
                    "source-instance-id" => {
                        Some(img.source_instance_id.clone().into_iter().collect())
                    }
                    "kernel-id"
                    | "platform"
                    | "product-code"
                    | "product-code.type"
                    | "ramdisk-id"
                    | "source-image-id"
                    | "source-image-region"
                    | "state-reason-code"
                    | "state-reason-message" => Some(Vec::new()),
                    n => filter::tag_values(n, &img.tags),
                }
            })?;
            if ok {
                out.push(img);
            }
        }
        Ok(out)
    }

    /// DeregisterImage: the account's image goes now (instances launched
    /// from it keep running). With `delete_snapshots`, its mapping's
    /// snapshots are deleted too, each answered `success` or the code of
    /// its failure. Returns those results.
    pub fn deregister_image(
        &mut self,
        id: &str,
        delete_snapshots: bool,
        dry_run: bool,
    ) -> Result<Vec<(String, String)>> {
        let img = self.image(id)?;
        if img.owner_id != OWNER_ID {
            return Err(
                ApiError::new("AuthFailure", format!("Not authorized for image:{id}")).into(),
            );
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        self.state_mut().images.remove(id);
        let mut results = Vec::new();
        if delete_snapshots {
            for b in &img.bdm {
                let code = match self.delete_snapshot(&b.snapshot_id, false) {
                    Ok(()) => "success".to_string(),
                    Err(Error::Api(e)) => e.code,
                    Err(e) => return Err(e),
                };
                results.push((b.snapshot_id.clone(), code));
            }
        }
        Ok(results)
    }

    /// CreateImage: snapshots every volume of the instance (the root and
    /// the attached ones) and registers an image over them, `pending` until
    /// its snapshots complete. Reboots the instance unless `no_reboot`.
    pub fn create_image(
        &mut self,
        instance_id: &str,
        name: &str,
        description: Option<&str>,
        no_reboot: bool,
        tags: Vec<Tag>,
        dry_run: bool,
    ) -> Result<String> {
        super::tags::check_new(&tags)?;
        let inst = self.instance(instance_id)?.clone();
        if matches!(
            inst.state,
            InstanceState::ShuttingDown | InstanceState::Terminated | InstanceState::Pending
        ) {
            return Err(ApiError::new(
                "IncorrectInstanceState",
                format!("The instance '{instance_id}' is not in a state from which an image can be created."),
            )
            .into());
        }
        if name.len() < 3 || name.len() > 128 {
            return Err(ApiError::invalid_value(format!(
                "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_': {name}"
            ))
            .into());
        }
        if let Some(dup) = self
            .state()
            .images
            .values()
            .find(|i| i.name == name && i.region == self.region())
        {
            return Err(ApiError::new(
                "InvalidAMIName.Duplicate",
                format!("AMI name {name} is already in use by AMI {}", dup.id),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let image_id = self.new_id("ami");
        let attached: Vec<(String, String, bool)> = self
            .state()
            .attached_to(instance_id)
            .iter()
            .map(|(v, a)| (v.id.clone(), a.device.clone(), a.delete_on_termination))
            .collect();
        let mut bdm = Vec::new();
        let mut done_at = self.now();
        for (vid, device, dot) in attached {
            let desc = format!("Created by CreateImage({instance_id}) for {image_id}");
            let snap = self.create_snapshot(&vid, Some(&desc), Vec::new(), false)?;
            done_at = done_at.max(snap.complete_at);
            let v = self.volume(&vid)?.clone();
            bdm.push(ImageBdm {
                device,
                snapshot_id: snap.id,
                volume_size: v.size,
                volume_type: v.volume_type,
                iops: v.iops,
                throughput: v.throughput,
                delete_on_termination: dot,
                encrypted: v.encrypted,
            });
        }
        if !no_reboot && inst.state == InstanceState::Running {
            if let Some(i) = self.state_mut().instances.get_mut(instance_id) {
                i.mounts.retain(|m| m.fstab);
            }
        }
        let now = self.now();
        let img = Image {
            id: image_id.clone(),
            name: name.to_string(),
            description: description.map(str::to_string),
            owner_id: OWNER_ID.to_string(),
            owner_alias: None,
            public: false,
            architecture: inst.architecture.clone(),
            root_device_name: inst.root_device_name.clone(),
            bdm,
            state: "pending".to_string(),
            available_at: done_at.plus(self.timing().image_pending),
            creation_date: now,
            source_instance_id: Some(instance_id.to_string()),
            region: region_of(&inst.az).to_string(),
            flavour: inst.flavour.clone(),
            tags,
        };
        self.state_mut().images.insert(image_id.clone(), img);
        Ok(image_id)
    }
}
