//! The EC2 operations over [`Params`]: each reads its members into a
//! library request, runs it in one transaction, and answers the response
//! document (keyed as botocore parses it; `None` for the operations that
//! answer only `<return>true</return>`). The AWS CLI emulation and the
//! Query endpoint both call [`call`], so they share every rule.

use super::params::{ParamError, Params, as_bool, as_str, as_str_list, as_u64, field};
use crate::ec2::filter::Filter;
use crate::ec2::instances::{BdmChange, BdmSpec, EbsSpec, ModifyInstanceAttribute, RunInstances};
use crate::ec2::model::{InstanceState, Tag};
use crate::ec2::volumes::{CreateVolume, ModifyVolume};
use crate::ec2::wire as render;
use crate::ec2::wire::json::{J, Obj};
use crate::ec2::{ApiError, Ec2};
use serde_json::Value;

/// Why an operation gave no response document.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A parameter of the wrong type.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The model refused (an AWS error) or failed on this machine.
    #[error(transparent)]
    Ec2(#[from] crate::ec2::Error),
    /// No such operation.
    #[error("The action {0} is not valid for this web service.")]
    UnknownAction(String),
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> CallError {
        CallError::Ec2(e.into())
    }
}

impl CallError {
    /// The AWS error this is, if it is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            CallError::Ec2(e) => e.api(),
            _ => None,
        }
    }
}

/// A response document, or `None` for an operation without output.
pub type Reply = Result<Option<J>, CallError>;

type Run = fn(&Ec2, &Params) -> Reply;

/// Every operation, by its API name.
pub const OPERATIONS: &[(&str, Run)] = &[
    ("AttachVolume", attach_volume),
    ("CopySnapshot", copy_snapshot),
    ("CreateImage", create_image),
    ("CreateSnapshot", create_snapshot),
    ("CreateTags", create_tags),
    ("CreateVolume", create_volume),
    ("DeleteSnapshot", delete_snapshot),
    ("DeleteTags", delete_tags),
    ("DeleteVolume", delete_volume),
    ("DeregisterImage", deregister_image),
    ("DescribeAvailabilityZones", describe_azs),
    ("DescribeImages", describe_images),
    ("DescribeInstanceAttribute", describe_instance_attribute),
    ("DescribeInstanceStatus", describe_instance_status),
    ("DescribeInstanceTypes", describe_instance_types),
    ("DescribeInstances", describe_instances),
    ("DescribeSnapshots", describe_snapshots),
    ("DescribeTags", describe_tags),
    ("DescribeVolumes", describe_volumes),
    (
        "DescribeVolumesModifications",
        describe_volumes_modifications,
    ),
    ("DetachVolume", detach_volume),
    ("ModifyInstanceAttribute", modify_instance_attribute),
    ("ModifyVolume", modify_volume),
    ("RebootInstances", reboot_instances),
    ("RunInstances", run_instances),
    ("StartInstances", start_instances),
    ("StopInstances", stop_instances),
    ("TerminateInstances", terminate_instances),
];

/// Runs operation `action` (its API name, `DescribeVolumes`).
pub fn call(ec2: &Ec2, action: &str, p: &Params) -> Reply {
    match OPERATIONS.iter().find(|(n, _)| *n == action) {
        Some((_, run)) => run(ec2, p),
        None => Err(CallError::UnknownAction(action.to_string())),
    }
}

/// `Filters` as filters.
pub fn filters(p: &Params) -> Result<Vec<Filter>, ParamError> {
    let mut out = Vec::new();
    for f in p.structs("Filters") {
        let name = match field(&f, "Name") {
            Some(n) => as_str("Filters.Name", n)?,
            None => String::new(),
        };
        let values = match field(&f, "Values") {
            Some(v) => as_str_list("Filters.Values", v)?,
            None => Vec::new(),
        };
        out.push(Filter { name, values });
    }
    Ok(out)
}

fn tag_list(v: &Value) -> Result<Vec<Tag>, ParamError> {
    let items = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for t in items {
        let key = field(&t, "Key")
            .map(|k| as_str("Tags.Key", k))
            .transpose()?
            .unwrap_or_default();
        let value = field(&t, "Value")
            .map(|k| as_str("Tags.Value", k))
            .transpose()?
            .unwrap_or_default();
        out.push(Tag { key, value });
    }
    Ok(out)
}

/// The tags of `TagSpecifications` for each resource type.
fn tag_specs(p: &Params, allowed: &[&str]) -> Result<Vec<(String, Vec<Tag>)>, CallError> {
    let mut out = Vec::new();
    for ts in p.structs("TagSpecifications") {
        let rt = field(&ts, "ResourceType")
            .map(|v| as_str("ResourceType", v))
            .transpose()?
            .unwrap_or_default();
        if !allowed.contains(&rt.as_str()) {
            return Err(ApiError::invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            ))
            .into());
        }
        let tags = match field(&ts, "Tags") {
            Some(t) => tag_list(t)?,
            None => Vec::new(),
        };
        out.push((rt, tags));
    }
    Ok(out)
}

fn tags_for(specs: &[(String, Vec<Tag>)], rt: &str) -> Vec<Tag> {
    specs
        .iter()
        .filter(|(r, _)| r == rt)
        .flat_map(|(_, t)| t.clone())
        .collect()
}

/// One page of a Describe call's results.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// The most items one page holds, whatever `MaxResults` says (the AWS CLI
/// asks for 1000 on its own).
const PAGE_LIMIT: u64 = 1000;

fn token_for(key: &str) -> String {
    let mut s = String::from("ebsim1.");
    for b in key.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn key_of_token(token: &str) -> Result<String, ApiError> {
    // EC2 answers a token it did not make with InvalidParameterValue.
    let bad = || ApiError::invalid_value(format!("The token '{token}' is invalid."));
    let hex = token.strip_prefix("ebsim1.").ok_or_else(bad)?;
    if hex.len() % 2 != 0 || hex.len() > 1024 {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)
}

/// Pages `items` by `MaxResults` and `NextToken`: sorted by `key` (a
/// stable order, so a token stays meaningful while resources come and
/// go), then the items after the token's key, at most `MaxResults` (1000
/// at most: the AWS CLI asks for 1000 on its own); the token names the last key
/// returned when more remain. Without either parameter, everything in the
/// model's order. `ids_given`: MaxResults with an id list is refused.
fn page<T>(
    p: &Params,
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    ids_given: bool,
    id_param: &str,
) -> Result<Page<T>, CallError> {
    let max = p.u64("MaxResults")?;
    let token = p.str("NextToken")?.filter(|t| !t.is_empty());
    if max.is_none() && token.is_none() {
        return Ok(Page { items, next: None });
    }
    if ids_given && max.is_some() {
        return Err(ApiError::invalid_combination(format!(
            "The parameter {id_param} cannot be used with the parameter maxResults"
        ))
        .into());
    }
    let limit = usize::try_from(max.unwrap_or(PAGE_LIMIT).clamp(1, PAGE_LIMIT)).unwrap_or(1000);
    items.sort_by_cached_key(|t| key(t));
    if let Some(t) = token {
        let after = key_of_token(&t)?;
        items.retain(|x| key(x) > after);
    }
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|x| token_for(&key(x)))
    } else {
        None
    };
    Ok(Page { items, next })
}

fn with_token(doc: Obj, next: Option<String>) -> Option<J> {
    Some(doc.opt("NextToken", next).done())
}

fn create_volume(ec2: &Ec2, p: &Params) -> Reply {
    let specs = tag_specs(p, &["volume"])?;
    let r = CreateVolume {
        size: p.u64("Size")?,
        volume_type: p.str("VolumeType")?,
        iops: p.u64("Iops")?,
        throughput: p.u64("Throughput")?,
        availability_zone: p.str("AvailabilityZone")?,
        encrypted: p.bool("Encrypted")?,
        kms_key_id: p.str("KmsKeyId")?,
        snapshot_id: p.str("SnapshotId")?,
        multi_attach: p.flag("MultiAttachEnabled")?,
        tags: tags_for(&specs, "volume"),
        client_token: p.str("ClientToken")?,
        dry_run: p.flag("DryRun")?,
    };
    let v = ec2.transact(|t| t.create_volume(&r))?;
    Ok(Some(render::volume(&v, false)))
}

fn describe_volumes(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("VolumeIds")?;
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let vols = ec2.transact(|t| t.describe_volumes(&ids, &fs, dry))?;
    let pg = page(p, vols, |v| v.id.clone(), !ids.is_empty(), "volumeIds")?;
    Ok(with_token(
        Obj::new().put(
            "Volumes",
            J::Arr(pg.items.iter().map(|v| render::volume(v, true)).collect()),
        ),
        pg.next,
    ))
}

fn delete_volume(ec2: &Ec2, p: &Params) -> Reply {
    let id = p.str("VolumeId")?.unwrap_or_default();
    let dry = p.flag("DryRun")?;
    ec2.transact(|t| t.delete_volume(&id, dry))?;
    Ok(None)
}

fn attach_volume(ec2: &Ec2, p: &Params) -> Reply {
    let vid = p.str("VolumeId")?.unwrap_or_default();
    let iid = p.str("InstanceId")?.unwrap_or_default();
    let dev = p.str("Device")?.unwrap_or_default();
    let dry = p.flag("DryRun")?;
    let att = ec2.transact(|t| t.attach_volume(&vid, &iid, &dev, dry))?;
    Ok(Some(render::attachment(&vid, &att, false)))
}

fn detach_volume(ec2: &Ec2, p: &Params) -> Reply {
    let vid = p.str("VolumeId")?.unwrap_or_default();
    let iid = p.str("InstanceId")?;
    let dev = p.str("Device")?;
    let force = p.flag("Force")?;
    let dry = p.flag("DryRun")?;
    let att =
        ec2.transact(|t| t.detach_volume(&vid, iid.as_deref(), dev.as_deref(), force, dry))?;
    Ok(Some(render::attachment(&vid, &att, false)))
}

fn modify_volume(ec2: &Ec2, p: &Params) -> Reply {
    let r = ModifyVolume {
        volume_id: p.str("VolumeId")?.unwrap_or_default(),
        size: p.u64("Size")?,
        volume_type: p.str("VolumeType")?,
        iops: p.u64("Iops")?,
        throughput: p.u64("Throughput")?,
        multi_attach: p.bool("MultiAttachEnabled")?,
        dry_run: p.flag("DryRun")?,
    };
    let (m, now) = ec2.transact(|t| Ok((t.modify_volume(&r)?, t.now())))?;
    Ok(Some(
        Obj::new()
            .put("VolumeModification", render::modification(&m, now))
            .done(),
    ))
}

fn describe_volumes_modifications(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("VolumeIds")?;
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let (mods, now) = ec2.transact(|t| {
        let m = t.describe_volumes_modifications(&ids, &fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok((m, t.now()))
    })?;
    let pg = page(p, mods, |m| m.volume_id.clone(), false, "volumeIds")?;
    Ok(with_token(
        Obj::new().put(
            "VolumesModifications",
            J::Arr(
                pg.items
                    .iter()
                    .map(|m| render::modification(m, now))
                    .collect(),
            ),
        ),
        pg.next,
    ))
}

fn create_snapshot(ec2: &Ec2, p: &Params) -> Reply {
    let specs = tag_specs(p, &["snapshot"])?;
    let vid = p.str("VolumeId")?.unwrap_or_default();
    let desc = p.str("Description")?;
    let dry = p.flag("DryRun")?;
    let s = ec2.transact(|t| {
        t.create_snapshot(&vid, desc.as_deref(), tags_for(&specs, "snapshot"), dry)
    })?;
    Ok(Some(render::snapshot_created(&s)))
}

fn describe_snapshots(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("SnapshotIds")?;
    let owners = p.list("OwnerIds")?;
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let snaps = ec2.transact(|t| {
        let s = t.describe_snapshots(&ids, &owners, &fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(s.iter()
            .map(|s| (s.id.clone(), render::snapshot(s, t.snapshot_progress(s))))
            .collect::<Vec<(String, J)>>())
    })?;
    let pg = page(
        p,
        snaps,
        |(id, _)| id.clone(),
        !ids.is_empty(),
        "snapshotIds",
    )?;
    Ok(with_token(
        Obj::new().put(
            "Snapshots",
            J::Arr(pg.items.into_iter().map(|(_, j)| j).collect()),
        ),
        pg.next,
    ))
}

fn delete_snapshot(ec2: &Ec2, p: &Params) -> Reply {
    let id = p.str("SnapshotId")?.unwrap_or_default();
    let dry = p.flag("DryRun")?;
    ec2.transact(|t| t.delete_snapshot(&id, dry))?;
    Ok(None)
}

fn create_tags(ec2: &Ec2, p: &Params) -> Reply {
    let resources = p.list("Resources")?;
    let mut tags = Vec::new();
    for t in p.structs("Tags") {
        tags.extend(tag_list(&t)?);
    }
    let dry = p.flag("DryRun")?;
    ec2.transact(|t| t.create_tags(&resources, &tags, dry))?;
    Ok(None)
}

fn parse_bdm(v: &Value) -> Result<BdmSpec, ParamError> {
    let device = field(v, "DeviceName")
        .map(|d| as_str("DeviceName", d))
        .transpose()?
        .unwrap_or_default();
    let no_device = field(v, "NoDevice").is_some();
    let ebs = match field(v, "Ebs") {
        None => None,
        Some(e) => {
            let u = |k: &str| field(e, k).map(|x| as_u64(k, x)).transpose();
            let s = |k: &str| field(e, k).map(|x| as_str(k, x)).transpose();
            let b = |k: &str| field(e, k).map(|x| as_bool(k, x)).transpose();
            Some(EbsSpec {
                volume_size: u("VolumeSize")?,
                volume_type: s("VolumeType")?,
                iops: u("Iops")?,
                throughput: u("Throughput")?,
                delete_on_termination: b("DeleteOnTermination")?,
                snapshot_id: s("SnapshotId")?,
                encrypted: b("Encrypted")?,
            })
        }
    };
    Ok(BdmSpec {
        device,
        ebs,
        no_device,
    })
}

fn run_instances(ec2: &Ec2, p: &Params) -> Reply {
    let Some(image_id) = p.str("ImageId")? else {
        return Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter ImageId",
        )
        .into());
    };
    // EC2 launches MaxCount when it can (ebsim always can), and at least
    // MinCount.
    let min = p.u64("MinCount")?;
    let max = p.u64("MaxCount")?;
    let count = max.or(min).unwrap_or(1);
    if count == 0 || min.zip(max).is_some_and(|(lo, hi)| lo > hi) {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{count}' for instance count (MinCount {}, MaxCount {}).",
            min.unwrap_or(1),
            max.unwrap_or(1)
        ))
        .into());
    }
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let az = match p.get("Placement") {
        Some(pl) => field(pl, "AvailabilityZone")
            .map(|v| as_str("AvailabilityZone", v))
            .transpose()?,
        None => None,
    };
    let bdm = p
        .structs("BlockDeviceMappings")
        .iter()
        .map(parse_bdm)
        .collect::<Result<Vec<_>, _>>()?;
    let specs = tag_specs(p, &["instance", "volume", "network-interface"])?;
    let r = RunInstances {
        image_id,
        user_data: p.str("UserData")?,
        disable_api_termination: p.flag("DisableApiTermination")?,
        subnet_id: p.str("SubnetId")?,
        client_token: p.str("ClientToken")?,
        instance_type: p.str("InstanceType")?,
        count,
        availability_zone: az,
        bdm,
        key_name: p.str("KeyName")?,
        instance_tags: tags_for(&specs, "instance"),
        volume_tags: tags_for(&specs, "volume"),
        dry_run: p.flag("DryRun")?,
    };
    let out = ec2.transact(|t| {
        let (rid, ids) = t.run_instances(&r)?;
        let st = t.state();
        let insts: Vec<J> = ids
            .iter()
            .filter_map(|id| st.instances.get(id))
            .map(|i| render::instance(st, i, true))
            .collect();
        Ok(render::reservation(&rid, insts))
    })?;
    Ok(Some(out))
}

fn describe_instances(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let (insts, next) = ec2
        .transact(|t| {
            let insts = t.describe_instances(&ids, &fs)?;
            if dry {
                return Err(ApiError::dry_run_ok().into());
            }
            let st = t.state();
            let rendered: Vec<(String, String, J)> = insts
                .iter()
                .map(|i| {
                    (
                        format!(
                            "{:020}.{}.{:010}",
                            i.launch_time.0.max(0),
                            i.reservation_id,
                            i.launch_index
                        ),
                        i.reservation_id.clone(),
                        render::instance(st, i, false),
                    )
                })
                .collect();
            Ok(rendered)
        })
        .map_err(CallError::from)
        .and_then(|r| {
            let pg = page(p, r, |(k, _, _)| k.clone(), !ids.is_empty(), "instanceIds")?;
            Ok((pg.items, pg.next))
        })?;
    let mut groups: Vec<(String, Vec<J>)> = Vec::new();
    for (_, rid, j) in insts {
        match groups.iter_mut().find(|(r, _)| r == &rid) {
            Some((_, v)) => v.push(j),
            None => groups.push((rid, vec![j])),
        }
    }
    let res: Vec<J> = groups
        .into_iter()
        .map(|(r, insts)| render::reservation(&r, insts))
        .collect();
    Ok(with_token(
        Obj::new().put("Reservations", J::Arr(res)),
        next,
    ))
}

type Changes = Vec<(String, InstanceState, InstanceState)>;

fn state_changes(key: &str, changes: Changes) -> Reply {
    Ok(Some(
        Obj::new()
            .put(
                key,
                J::Arr(
                    changes
                        .iter()
                        .map(|(id, c, p)| render::state_change(id, *c, *p))
                        .collect(),
                ),
            )
            .done(),
    ))
}

fn start_instances(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let dry = p.flag("DryRun")?;
    state_changes(
        "StartingInstances",
        ec2.transact(|t| t.start_instances(&ids, dry))?,
    )
}

fn stop_instances(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let dry = p.flag("DryRun")?;
    state_changes(
        "StoppingInstances",
        ec2.transact(|t| t.stop_instances(&ids, dry))?,
    )
}

fn terminate_instances(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let dry = p.flag("DryRun")?;
    state_changes(
        "TerminatingInstances",
        ec2.transact(|t| t.terminate_instances(&ids, dry))?,
    )
}

fn reboot_instances(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let dry = p.flag("DryRun")?;
    ec2.transact(|t| t.reboot_instances(&ids, dry))?;
    Ok(None)
}

fn modify_instance_attribute(ec2: &Ec2, p: &Params) -> Reply {
    // `InstanceType={"Value": ..}` (the structure form) or a bare string.
    let instance_type = match p.get("InstanceType") {
        Some(v) => Some(match field(v, "Value") {
            Some(x) => as_str("InstanceType.Value", x)?,
            None => as_str("InstanceType", v)?,
        }),
        None => None,
    };
    let mut block_device_mappings = Vec::new();
    for m in p.structs("BlockDeviceMappings") {
        let ebs = field(&m, "Ebs");
        let opt_str = |v: Option<&Value>, name: &str| v.map(|x| as_str(name, x)).transpose();
        block_device_mappings.push(BdmChange {
            device: opt_str(field(&m, "DeviceName"), "DeviceName")?.unwrap_or_default(),
            delete_on_termination: ebs
                .and_then(|e| field(e, "DeleteOnTermination"))
                .map(|v| as_bool("DeleteOnTermination", v))
                .transpose()?,
            volume_id: opt_str(ebs.and_then(|e| field(e, "VolumeId")), "VolumeId")?,
        });
    }
    let r = ModifyInstanceAttribute {
        instance_id: p.str("InstanceId")?.unwrap_or_default(),
        instance_type,
        attribute: p.str("Attribute")?,
        value: p.str("Value")?,
        block_device_mappings,
        disable_api_termination: value_member(p, "DisableApiTermination")?
            .map(|v| as_bool("DisableApiTermination.Value", &v))
            .transpose()?,
        user_data: value_member(p, "UserData")?
            .map(|v| as_str("UserData.Value", &v))
            .transpose()?,
        dry_run: p.flag("DryRun")?,
    };
    ec2.transact(|t| t.modify_instance_attribute(&r))?;
    Ok(None)
}

/// A member of the `AttributeValue` / `AttributeBooleanValue` shapes
/// (`{"Value": x}`, `X.Value=x` on the wire), or a bare value.
fn value_member(p: &Params, name: &str) -> Result<Option<Value>, ParamError> {
    Ok(p.get(name).map(|v| field(v, "Value").unwrap_or(v).clone()))
}

fn describe_images(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("ImageIds")?;
    let owners = p.list("Owners")?;
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let imgs = ec2.transact(|t| {
        let i = t.describe_images(&ids, &owners, &fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(i)
    })?;
    let pg = page(p, imgs, |i| i.id.clone(), !ids.is_empty(), "imageIds")?;
    Ok(with_token(
        Obj::new().put(
            "Images",
            J::Arr(pg.items.iter().map(render::image).collect()),
        ),
        pg.next,
    ))
}

fn create_image(ec2: &Ec2, p: &Params) -> Reply {
    let specs = tag_specs(p, &["image", "snapshot"])?;
    let iid = p.str("InstanceId")?.unwrap_or_default();
    let name = p.str("Name")?.unwrap_or_default();
    let desc = p.str("Description")?;
    let no_reboot = p.flag("NoReboot")?;
    let dry = p.flag("DryRun")?;
    let id = ec2.transact(|t| {
        t.create_image(
            &iid,
            &name,
            desc.as_deref(),
            no_reboot,
            tags_for(&specs, "image"),
            dry,
        )
    })?;
    Ok(Some(Obj::new().put("ImageId", id).done()))
}

/// DescribeInstanceTypes: every type ebsim accepts (or the named ones),
/// filtered, in pages of at most 100 (EC2's own page when `MaxResults` is
/// absent; `MaxResults` must be 5 to 100).
fn describe_instance_types(_ec2: &Ec2, p: &Params) -> Reply {
    let names = p.list("InstanceTypes")?;
    let fs = filters(p)?;
    let types = crate::ec2::instance_types::describe_instance_types(&names, &fs)?;
    if p.flag("DryRun")? {
        return Err(ApiError::dry_run_ok().into());
    }
    let max = p.u64("MaxResults")?;
    if let Some(m) = max
        && !(5..=100).contains(&m)
    {
        return Err(ApiError::invalid_value(format!(
            "{m} is not a valid value for MaxResults. It must be between 5 and 100."
        ))
        .into());
    }
    if max.is_some() && !names.is_empty() {
        return Err(ApiError::invalid_combination(
            "The parameter instanceTypes cannot be used with the parameter maxResults".to_string(),
        )
        .into());
    }
    // Pages in the list's own order: the key is the position.
    let indexed: Vec<(usize, _)> = types.into_iter().enumerate().collect();
    let limit = usize::try_from(max.unwrap_or(100)).unwrap_or(100);
    let start = match p.str("NextToken")?.filter(|t| !t.is_empty()) {
        Some(t) => {
            let k = key_of_token(&t)?;
            k.parse::<usize>()
                .map_err(|_| ApiError::invalid_value(format!("The token '{t}' is invalid.")))?
                + 1
        }
        None => 0,
    };
    let rest: Vec<_> = indexed.into_iter().skip(start).collect();
    let next = (rest.len() > limit)
        .then(|| rest.get(limit - 1).map(|(i, _)| token_for(&i.to_string())))
        .flatten();
    Ok(with_token(
        Obj::new().put(
            "InstanceTypes",
            J::Arr(
                rest.iter()
                    .take(limit)
                    .map(|(_, t)| render::instance_type(t))
                    .collect(),
            ),
        ),
        next,
    ))
}

fn describe_azs(ec2: &Ec2, p: &Params) -> Reply {
    let zones =
        crate::ec2::zones::describe_availability_zones(ec2.region(), &p.list("ZoneNames")?)?;
    if p.flag("DryRun")? {
        return Err(ApiError::dry_run_ok().into());
    }
    Ok(Some(
        Obj::new()
            .put(
                "AvailabilityZones",
                J::Arr(zones.iter().map(render::availability_zone).collect()),
            )
            .done(),
    ))
}

fn copy_snapshot(ec2: &Ec2, p: &Params) -> Reply {
    let specs = tag_specs(p, &["snapshot"])?;
    let Some(source) = p.str("SourceSnapshotId")? else {
        return Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter SourceSnapshotId",
        )
        .into());
    };
    let source_region = match p.str("SourceRegion")? {
        Some(r) => r,
        None => ec2.region().to_string(),
    };
    let desc = p.str("Description")?;
    let encrypted = p.flag("Encrypted")?;
    let kms = p.str("KmsKeyId")?;
    let dry = p.flag("DryRun")?;
    let s = ec2.transact(|t| {
        t.copy_snapshot(
            &source_region,
            &source,
            desc.as_deref(),
            encrypted,
            kms.as_deref(),
            tags_for(&specs, "snapshot"),
            dry,
        )
    })?;
    Ok(Some(
        Obj::new()
            .opt("Tags", (!s.tags.is_empty()).then(|| render::tags(&s.tags)))
            .put("SnapshotId", &s.id)
            .done(),
    ))
}

fn deregister_image(ec2: &Ec2, p: &Params) -> Reply {
    let id = p.str("ImageId")?.unwrap_or_default();
    let del = p.flag("DeleteAssociatedSnapshots")?;
    let dry = p.flag("DryRun")?;
    let results = ec2.transact(|t| t.deregister_image(&id, del, dry))?;
    Ok(Some(
        Obj::new()
            .put("Return", true)
            .opt(
                "DeleteSnapshotResults",
                del.then(|| {
                    J::Arr(
                        results
                            .iter()
                            .map(|(s, code)| {
                                Obj::new()
                                    .put("SnapshotId", s)
                                    .put("ReturnCode", code)
                                    .done()
                            })
                            .collect(),
                    )
                }),
            )
            .done(),
    ))
}

/// DeleteTags' `Tags`: keys, each with its value when one is given.
fn tag_keys(p: &Params) -> Result<Vec<(String, Option<String>)>, ParamError> {
    let mut out = Vec::new();
    for t in p.structs("Tags") {
        let items = match t {
            Value::Array(a) => a,
            other => vec![other],
        };
        for t in items {
            let key = field(&t, "Key")
                .map(|k| as_str("Tags.Key", k))
                .transpose()?
                .unwrap_or_default();
            let value = field(&t, "Value")
                .map(|v| as_str("Tags.Value", v))
                .transpose()?;
            out.push((key, value));
        }
    }
    Ok(out)
}

fn delete_tags(ec2: &Ec2, p: &Params) -> Reply {
    let resources = p.list("Resources")?;
    let tags = tag_keys(p)?;
    let dry = p.flag("DryRun")?;
    ec2.transact(|t| t.delete_tags(&resources, &tags, dry))?;
    Ok(None)
}

fn describe_tags(ec2: &Ec2, p: &Params) -> Reply {
    let fs = filters(p)?;
    let dry = p.flag("DryRun")?;
    let tags = ec2.transact(|t| {
        let d = t.describe_tags(&fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(d)
    })?;
    let pg = page(
        p,
        tags,
        |t| format!("{}\u{0}{}", t.resource_id, t.key),
        false,
        "",
    )?;
    Ok(with_token(
        Obj::new().put(
            "Tags",
            J::Arr(
                pg.items
                    .iter()
                    .map(|t| {
                        Obj::new()
                            .put("Key", &t.key)
                            .put("ResourceId", &t.resource_id)
                            .put("ResourceType", t.resource_type)
                            .put("Value", &t.value)
                            .done()
                    })
                    .collect(),
            ),
        ),
        pg.next,
    ))
}

fn describe_instance_status(ec2: &Ec2, p: &Params) -> Reply {
    let ids = p.list("InstanceIds")?;
    let fs = filters(p)?;
    let all = p.flag("IncludeAllInstances")?;
    let dry = p.flag("DryRun")?;
    let rows = ec2.transact(|t| {
        let r = t.describe_instance_status(&ids, all, &fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(r)
    })?;
    let pg = page(
        p,
        rows,
        |r| r.instance.id.clone(),
        !ids.is_empty(),
        "instanceIds",
    )?;
    Ok(with_token(
        Obj::new().put(
            "InstanceStatuses",
            J::Arr(pg.items.iter().map(render::instance_status).collect()),
        ),
        pg.next,
    ))
}

fn describe_instance_attribute(ec2: &Ec2, p: &Params) -> Reply {
    let id = p.str("InstanceId")?.unwrap_or_default();
    let Some(attr) = p.str("Attribute")? else {
        return Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter Attribute",
        )
        .into());
    };
    let dry = p.flag("DryRun")?;
    let doc = ec2.transact(|t| {
        let i = t.describe_instance_attribute(&id, &attr, dry)?;
        Ok(render::instance_attribute(t.state(), &i, &attr))
    })?;
    Ok(Some(doc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let t = token_for("vol-0abc");
        assert_eq!(key_of_token(&t).unwrap(), "vol-0abc");
        for bad in ["", "x", "ebsim1.0", "ebsim1.zz", "ebsim1.ff"] {
            assert_eq!(key_of_token(bad).unwrap_err().code, "InvalidParameterValue");
        }
    }

    #[test]
    fn pages_after_the_token() {
        let p = |m: &str, t: Option<&str>| {
            let mut pairs = vec![("MaxResults".to_string(), m.to_string())];
            if let Some(t) = t {
                pairs.push(("NextToken".to_string(), t.to_string()));
            }
            Params::from_query("DescribeVolumes", &pairs)
        };
        let items: Vec<String> = ["c", "a", "b", "d"].iter().map(|s| s.to_string()).collect();
        let pg = page(&p("2", None), items.clone(), |s| s.clone(), false, "x").unwrap();
        assert_eq!(pg.items, vec!["a", "b"]);
        let tok = pg.next.unwrap();
        // "b" went away meanwhile: the next page still starts after it.
        let rest: Vec<String> = items.into_iter().filter(|s| s != "b").collect();
        let pg = page(&p("2", Some(&tok)), rest, |s| s.clone(), false, "x").unwrap();
        assert_eq!(pg.items, vec!["c", "d"]);
        assert!(pg.next.is_none());
    }
}
