//! The operations: each reads its arguments into a library request, runs
//! it in one transaction, and renders the response.

use super::args::{ArgError, Args, P, Ty, as_bool, as_str, as_str_list, as_u64, p, req};
use ebsim::ec2::filter::Filter;
use ebsim::ec2::instances::{BdmChange, BdmSpec, EbsSpec, ModifyInstanceAttribute, RunInstances};
use ebsim::ec2::model::{InstanceState, Tag};
use ebsim::ec2::volumes::{CreateVolume, ModifyVolume};
use ebsim::ec2::wire as render;
use ebsim::ec2::wire::json::{J, Obj};
use ebsim::ec2::{ApiError, Ec2};
use serde_json::Value;

/// Why an operation did not print a response.
#[derive(Debug)]
pub enum Fail {
    /// AWS's answer (exit 254).
    Api(ApiError),
    /// The arguments (exit 252).
    Arg(ArgError),
    /// The model failed on this machine: the state, an image (exit 255).
    Local(ebsim::ec2::Error),
    /// A waiter gave up, or met a failure state (exit 255).
    Waiter {
        /// The API operation it polled (`DescribeVolumes`).
        api: &'static str,
        /// Why.
        reason: String,
    },
    /// A JMESPath expression that does not compile or apply (exit 255).
    Query(String),
}

impl std::fmt::Display for Fail {
    /// The text the AWS CLI prints between blank lines (API and argument
    /// errors have their own framing, see `cli::ec2`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Api(e) => write!(f, "{e}"),
            Fail::Arg(e) => write!(f, "{e}"),
            Fail::Local(e) => write!(f, "{e}"),
            Fail::Waiter { api, reason } => write!(f, "Waiter {api} failed: {reason}"),
            Fail::Query(q) => f.write_str(q),
        }
    }
}

impl From<ArgError> for Fail {
    fn from(e: ArgError) -> Fail {
        Fail::Arg(e)
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail::Api(e)
    }
}

impl From<ebsim::ec2::Error> for Fail {
    fn from(e: ebsim::ec2::Error) -> Fail {
        match e {
            ebsim::ec2::Error::Api(a) => Fail::Api(a),
            other => Fail::Local(other),
        }
    }
}

/// A response (None: the operation prints nothing, like DeleteVolume).
pub type Out = Result<Option<J>, Fail>;

/// One operation.
pub struct Op {
    /// CLI name (`describe-volumes`).
    pub name: &'static str,
    /// API name (`DescribeVolumes`), for error messages.
    pub api: &'static str,
    /// Parameters.
    pub params: &'static [P],
    /// Runs it.
    pub run: fn(&Ec2, &Args) -> Out,
}

const DRY: P = p("dry-run", Ty::Bool);
const FILTERS: P = p("filters", Ty::StructList);
// Paging: the CLI pages through every result itself; ebsim answers in one
// page, so these are accepted and have no effect.
const MAX_RESULTS: P = p("max-results", Ty::Int);
const NEXT_TOKEN: P = p("next-token", Ty::Str);

/// Every operation, in the order `aws ec2 help` lists them.
pub const OPS: &[Op] = &[
    Op {
        name: "attach-volume",
        api: "AttachVolume",
        params: &[
            req("device", Ty::Str),
            req("instance-id", Ty::Str),
            req("volume-id", Ty::Str),
            DRY,
        ],
        run: attach_volume,
    },
    Op {
        name: "create-image",
        api: "CreateImage",
        params: &[
            req("instance-id", Ty::Str),
            req("name", Ty::Str),
            p("description", Ty::Str),
            p("no-reboot", Ty::Bool),
            p("block-device-mappings", Ty::StructList),
            p("tag-specifications", Ty::StructList),
            DRY,
        ],
        run: create_image,
    },
    Op {
        name: "create-snapshot",
        api: "CreateSnapshot",
        params: &[
            req("volume-id", Ty::Str),
            p("description", Ty::Str),
            p("tag-specifications", Ty::StructList),
            p("outpost-arn", Ty::Str),
            DRY,
        ],
        run: create_snapshot,
    },
    Op {
        name: "create-tags",
        api: "CreateTags",
        params: &[
            req("resources", Ty::StrList),
            req("tags", Ty::StructList),
            DRY,
        ],
        run: create_tags,
    },
    Op {
        name: "create-volume",
        api: "CreateVolume",
        params: &[
            p("availability-zone", Ty::Str),
            p("encrypted", Ty::Bool),
            p("iops", Ty::Int),
            p("kms-key-id", Ty::Str),
            p("outpost-arn", Ty::Str),
            p("size", Ty::Int),
            p("snapshot-id", Ty::Str),
            p("volume-type", Ty::Str),
            p("tag-specifications", Ty::StructList),
            p("multi-attach-enabled", Ty::Bool),
            p("throughput", Ty::Int),
            p("client-token", Ty::Str),
            DRY,
        ],
        run: create_volume,
    },
    Op {
        name: "delete-snapshot",
        api: "DeleteSnapshot",
        params: &[req("snapshot-id", Ty::Str), DRY],
        run: delete_snapshot,
    },
    Op {
        name: "delete-volume",
        api: "DeleteVolume",
        params: &[req("volume-id", Ty::Str), DRY],
        run: delete_volume,
    },
    Op {
        name: "describe-availability-zones",
        api: "DescribeAvailabilityZones",
        params: &[
            p("zone-names", Ty::StrList),
            p("all-availability-zones", Ty::Bool),
            FILTERS,
            DRY,
        ],
        run: describe_azs,
    },
    Op {
        name: "describe-images",
        api: "DescribeImages",
        params: &[
            p("image-ids", Ty::StrList),
            p("owners", Ty::StrList),
            p("executable-users", Ty::StrList),
            FILTERS,
            p("include-deprecated", Ty::Bool),
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_images,
    },
    Op {
        name: "describe-instance-types",
        api: "DescribeInstanceTypes",
        params: &[
            p("instance-types", Ty::StrList),
            FILTERS,
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_instance_types,
    },
    Op {
        name: "describe-instances",
        api: "DescribeInstances",
        params: &[
            p("instance-ids", Ty::StrList),
            FILTERS,
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_instances,
    },
    Op {
        name: "describe-snapshots",
        api: "DescribeSnapshots",
        params: &[
            p("snapshot-ids", Ty::StrList),
            p("owner-ids", Ty::StrList),
            p("restorable-by-user-ids", Ty::StrList),
            FILTERS,
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_snapshots,
    },
    Op {
        name: "describe-volumes",
        api: "DescribeVolumes",
        params: &[
            p("volume-ids", Ty::StrList),
            FILTERS,
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_volumes,
    },
    Op {
        name: "describe-volumes-modifications",
        api: "DescribeVolumesModifications",
        params: &[
            p("volume-ids", Ty::StrList),
            FILTERS,
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
        ],
        run: describe_volumes_modifications,
    },
    Op {
        name: "detach-volume",
        api: "DetachVolume",
        params: &[
            req("volume-id", Ty::Str),
            p("instance-id", Ty::Str),
            p("device", Ty::Str),
            p("force", Ty::Bool),
            DRY,
        ],
        run: detach_volume,
    },
    Op {
        name: "modify-instance-attribute",
        api: "ModifyInstanceAttribute",
        params: &[
            req("instance-id", Ty::Str),
            p("attribute", Ty::Str),
            p("value", Ty::Str),
            p("instance-type", Ty::Struct),
            p("block-device-mappings", Ty::StructList),
            DRY,
        ],
        run: modify_instance_attribute,
    },
    Op {
        name: "modify-volume",
        api: "ModifyVolume",
        params: &[
            req("volume-id", Ty::Str),
            p("size", Ty::Int),
            p("volume-type", Ty::Str),
            p("iops", Ty::Int),
            p("throughput", Ty::Int),
            p("multi-attach-enabled", Ty::Bool),
            DRY,
        ],
        run: modify_volume,
    },
    Op {
        name: "reboot-instances",
        api: "RebootInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
        run: reboot_instances,
    },
    Op {
        name: "run-instances",
        api: "RunInstances",
        params: &[
            p("image-id", Ty::Str),
            p("instance-type", Ty::Str),
            p("count", Ty::Str),
            p("placement", Ty::Struct),
            p("block-device-mappings", Ty::StructList),
            p("key-name", Ty::Str),
            p("tag-specifications", Ty::StructList),
            p("subnet-id", Ty::Str),
            p("security-group-ids", Ty::StrList),
            p("security-groups", Ty::StrList),
            p("user-data", Ty::Str),
            p("associate-public-ip-address", Ty::Bool),
            p("ebs-optimized", Ty::Bool),
            p("client-token", Ty::Str),
            DRY,
        ],
        run: run_instances,
    },
    Op {
        name: "start-instances",
        api: "StartInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
        run: start_instances,
    },
    Op {
        name: "stop-instances",
        api: "StopInstances",
        params: &[
            req("instance-ids", Ty::StrList),
            p("force", Ty::Bool),
            p("hibernate", Ty::Bool),
            DRY,
        ],
        run: stop_instances,
    },
    Op {
        name: "terminate-instances",
        api: "TerminateInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
        run: terminate_instances,
    },
];

/// The operation named `name`.
pub fn find(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key))
}

/// `--filters` as filters.
pub fn filters(a: &Args) -> Result<Vec<Filter>, ArgError> {
    let mut out = Vec::new();
    for f in a.structs("filters") {
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

fn tag_list(v: &Value) -> Result<Vec<Tag>, ArgError> {
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

/// The tags of `--tag-specifications` for each resource type.
fn tag_specs(a: &Args, allowed: &[&str]) -> Result<Vec<(String, Vec<Tag>)>, Fail> {
    let mut out = Vec::new();
    for spec in a.structs("tag-specifications") {
        let rt = field(&spec, "ResourceType")
            .map(|v| as_str("ResourceType", v))
            .transpose()?
            .unwrap_or_default();
        if !allowed.contains(&rt.as_str()) {
            return Err(ApiError::invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            ))
            .into());
        }
        let tags = match field(&spec, "Tags") {
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

fn create_volume(ec2: &Ec2, a: &Args) -> Out {
    let specs = tag_specs(a, &["volume"])?;
    let r = CreateVolume {
        size: a.u64("size")?,
        volume_type: a.str("volume-type")?,
        iops: a.u64("iops")?,
        throughput: a.u64("throughput")?,
        availability_zone: a.str("availability-zone")?,
        encrypted: a.bool("encrypted"),
        kms_key_id: a.str("kms-key-id")?,
        snapshot_id: a.str("snapshot-id")?,
        multi_attach: a.flag("multi-attach-enabled"),
        tags: tags_for(&specs, "volume"),
        dry_run: a.flag("dry-run"),
    };
    let v = ec2.transact(|t| t.create_volume(&r))?;
    Ok(Some(render::volume(&v, false)))
}

fn describe_volumes(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("volume-ids")?;
    let fs = filters(a)?;
    let dry = a.flag("dry-run");
    let vols = ec2.transact(|t| {
        let v = t.describe_volumes(&ids, &fs)?;
        if dry {
            return Err(ApiError::dry_run_ok().into());
        }
        Ok(v)
    })?;
    Ok(Some(
        Obj::new()
            .put(
                "Volumes",
                J::Arr(vols.iter().map(|v| render::volume(v, true)).collect()),
            )
            .done(),
    ))
}

fn delete_volume(ec2: &Ec2, a: &Args) -> Out {
    let id = a.str("volume-id")?.unwrap_or_default();
    let dry = a.flag("dry-run");
    ec2.transact(|t| t.delete_volume(&id, dry))?;
    Ok(None)
}

fn attach_volume(ec2: &Ec2, a: &Args) -> Out {
    let vid = a.str("volume-id")?.unwrap_or_default();
    let iid = a.str("instance-id")?.unwrap_or_default();
    let dev = a.str("device")?.unwrap_or_default();
    let dry = a.flag("dry-run");
    let att = ec2.transact(|t| t.attach_volume(&vid, &iid, &dev, dry))?;
    Ok(Some(render::attachment(&vid, &att, false)))
}

fn detach_volume(ec2: &Ec2, a: &Args) -> Out {
    let vid = a.str("volume-id")?.unwrap_or_default();
    let iid = a.str("instance-id")?;
    let dev = a.str("device")?;
    let force = a.flag("force");
    let dry = a.flag("dry-run");
    let att =
        ec2.transact(|t| t.detach_volume(&vid, iid.as_deref(), dev.as_deref(), force, dry))?;
    Ok(Some(render::attachment(&vid, &att, false)))
}

fn modify_volume(ec2: &Ec2, a: &Args) -> Out {
    let r = ModifyVolume {
        volume_id: a.str("volume-id")?.unwrap_or_default(),
        size: a.u64("size")?,
        volume_type: a.str("volume-type")?,
        iops: a.u64("iops")?,
        throughput: a.u64("throughput")?,
        multi_attach: a.bool("multi-attach-enabled"),
        dry_run: a.flag("dry-run"),
    };
    let (m, now) = ec2.transact(|t| Ok((t.modify_volume(&r)?, t.now())))?;
    Ok(Some(
        Obj::new()
            .put("VolumeModification", render::modification(&m, now))
            .done(),
    ))
}

fn describe_volumes_modifications(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("volume-ids")?;
    let fs = filters(a)?;
    let (mods, now) =
        ec2.transact(|t| Ok((t.describe_volumes_modifications(&ids, &fs)?, t.now())))?;
    Ok(Some(
        Obj::new()
            .put(
                "VolumesModifications",
                J::Arr(mods.iter().map(|m| render::modification(m, now)).collect()),
            )
            .done(),
    ))
}

fn create_snapshot(ec2: &Ec2, a: &Args) -> Out {
    let specs = tag_specs(a, &["snapshot"])?;
    let vid = a.str("volume-id")?.unwrap_or_default();
    let desc = a.str("description")?;
    let dry = a.flag("dry-run");
    let s = ec2.transact(|t| {
        t.create_snapshot(&vid, desc.as_deref(), tags_for(&specs, "snapshot"), dry)
    })?;
    Ok(Some(render::snapshot_created(&s)))
}

fn describe_snapshots(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("snapshot-ids")?;
    let owners = a.list("owner-ids")?;
    let fs = filters(a)?;
    let snaps = ec2.transact(|t| {
        let s = t.describe_snapshots(&ids, &owners, &fs)?;
        Ok(s.iter()
            .map(|s| render::snapshot(s, t.snapshot_progress(s)))
            .collect::<Vec<J>>())
    })?;
    Ok(Some(Obj::new().put("Snapshots", J::Arr(snaps)).done()))
}

fn delete_snapshot(ec2: &Ec2, a: &Args) -> Out {
    let id = a.str("snapshot-id")?.unwrap_or_default();
    let dry = a.flag("dry-run");
    ec2.transact(|t| t.delete_snapshot(&id, dry))?;
    Ok(None)
}

fn create_tags(ec2: &Ec2, a: &Args) -> Out {
    let resources = a.list("resources")?;
    let mut tags = Vec::new();
    for t in a.structs("tags") {
        tags.extend(tag_list(&t)?);
    }
    let dry = a.flag("dry-run");
    ec2.transact(|t| t.create_tags(&resources, &tags, dry))?;
    Ok(None)
}

fn parse_bdm(v: &Value) -> Result<BdmSpec, ArgError> {
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

fn run_instances(ec2: &Ec2, a: &Args) -> Out {
    let Some(image_id) = a.str("image-id")? else {
        return Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter ImageId",
        )
        .into());
    };
    let count = match a.str("count")? {
        None => 1,
        Some(c) => {
            let first = c.split(':').next().unwrap_or("1");
            first.trim().parse::<u32>().map_err(|_| {
                ArgError::Bad(format!("invalid literal for int() with base 10: '{first}'"))
            })?
        }
    };
    let az = match a.structure("placement") {
        Some(pl) => field(pl, "AvailabilityZone")
            .map(|v| as_str("AvailabilityZone", v))
            .transpose()?,
        None => None,
    };
    let bdm = a
        .structs("block-device-mappings")
        .iter()
        .map(parse_bdm)
        .collect::<Result<Vec<_>, _>>()?;
    let specs = tag_specs(a, &["instance", "volume", "network-interface"])?;
    let r = RunInstances {
        image_id,
        instance_type: a.str("instance-type")?,
        count,
        availability_zone: az,
        bdm,
        key_name: a.str("key-name")?,
        instance_tags: tags_for(&specs, "instance"),
        volume_tags: tags_for(&specs, "volume"),
        dry_run: a.flag("dry-run"),
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

fn describe_instances(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("instance-ids")?;
    let fs = filters(a)?;
    let out = ec2.transact(|t| {
        let insts = t.describe_instances(&ids, &fs)?;
        let st = t.state();
        let mut groups: Vec<(String, Vec<J>)> = Vec::new();
        for i in &insts {
            let j = render::instance(st, i, false);
            match groups.iter_mut().find(|(r, _)| r == &i.reservation_id) {
                Some((_, v)) => v.push(j),
                None => groups.push((i.reservation_id.clone(), vec![j])),
            }
        }
        Ok(groups)
    })?;
    let res: Vec<J> = out
        .into_iter()
        .map(|(r, insts)| render::reservation(&r, insts))
        .collect();
    Ok(Some(Obj::new().put("Reservations", J::Arr(res)).done()))
}

type Changes = Vec<(String, InstanceState, InstanceState)>;

fn state_changes(key: &str, changes: Changes) -> Out {
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

fn start_instances(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("instance-ids")?;
    let dry = a.flag("dry-run");
    state_changes(
        "StartingInstances",
        ec2.transact(|t| t.start_instances(&ids, dry))?,
    )
}

fn stop_instances(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("instance-ids")?;
    let dry = a.flag("dry-run");
    state_changes(
        "StoppingInstances",
        ec2.transact(|t| t.stop_instances(&ids, dry))?,
    )
}

fn terminate_instances(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("instance-ids")?;
    let dry = a.flag("dry-run");
    state_changes(
        "TerminatingInstances",
        ec2.transact(|t| t.terminate_instances(&ids, dry))?,
    )
}

fn reboot_instances(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("instance-ids")?;
    let dry = a.flag("dry-run");
    ec2.transact(|t| t.reboot_instances(&ids, dry))?;
    Ok(None)
}

fn modify_instance_attribute(ec2: &Ec2, a: &Args) -> Out {
    let instance_type = match a.structure("instance-type") {
        Some(v) => Some(match field(v, "Value") {
            Some(x) => as_str("InstanceType.Value", x)?,
            None => as_str("InstanceType", v)?,
        }),
        None => None,
    };
    let mut block_device_mappings = Vec::new();
    for m in a.structs("block-device-mappings") {
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
        instance_id: a.str("instance-id")?.unwrap_or_default(),
        instance_type,
        attribute: a.str("attribute")?,
        value: a.str("value")?,
        block_device_mappings,
        dry_run: a.flag("dry-run"),
    };
    ec2.transact(|t| t.modify_instance_attribute(&r))?;
    Ok(None)
}

fn describe_images(ec2: &Ec2, a: &Args) -> Out {
    let ids = a.list("image-ids")?;
    let owners = a.list("owners")?;
    let fs = filters(a)?;
    let imgs = ec2.transact(|t| t.describe_images(&ids, &owners, &fs))?;
    Ok(Some(
        Obj::new()
            .put("Images", J::Arr(imgs.iter().map(render::image).collect()))
            .done(),
    ))
}

fn create_image(ec2: &Ec2, a: &Args) -> Out {
    let specs = tag_specs(a, &["image", "snapshot"])?;
    let iid = a.str("instance-id")?.unwrap_or_default();
    let name = a.str("name")?.unwrap_or_default();
    let desc = a.str("description")?;
    let no_reboot = a.flag("no-reboot");
    let dry = a.flag("dry-run");
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

fn describe_instance_types(_ec2: &Ec2, a: &Args) -> Out {
    let types = ebsim::ec2::instance_types::describe_instance_types(&a.list("instance-types")?)?;
    Ok(Some(
        Obj::new()
            .put(
                "InstanceTypes",
                J::Arr(types.iter().map(render::instance_type).collect()),
            )
            .done(),
    ))
}

fn describe_azs(ec2: &Ec2, a: &Args) -> Out {
    let zones =
        ebsim::ec2::zones::describe_availability_zones(ec2.region(), &a.list("zone-names")?)?;
    Ok(Some(
        Obj::new()
            .put(
                "AvailabilityZones",
                J::Arr(zones.iter().map(render::availability_zone).collect()),
            )
            .done(),
    ))
}
