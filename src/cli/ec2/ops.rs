//! The operations: their CLI names and parameters. Running one hands its
//! arguments, named as the API's members, to the library's operation
//! (`ebsim::api::ops`, which the endpoint runs too).

use super::args::{ArgError, Args, CliInput, P, Ty, V2_PARAM_ERROR, as_str, p, req};
use ebsim::api::ops::CallError;
use ebsim::api::params::{ParamError, Params, Want};
use ebsim::ec2::wire::json::J;
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

impl From<ParamError> for Fail {
    /// A value of the wrong type, in the words of the CLI's validator.
    fn from(e: ParamError) -> Fail {
        let want = match e.want {
            Want::Str => "<class 'str'>",
            Want::Int => "<class 'int'>",
            Want::Bool => "<class 'bool'>",
        };
        match (&e.value, e.want) {
            (Value::String(s), Want::Int) => Fail::Arg(ArgError::Bad(format!(
                "invalid literal for int() with base 10: '{s}'"
            ))),
            (v, _) => Fail::Arg(super::args::type_error(&e.name, v, want)),
        }
    }
}

impl From<CallError> for Fail {
    fn from(e: CallError) -> Fail {
        match e {
            CallError::Param(p) => p.into(),
            CallError::Ec2(e) => e.into(),
            e @ CallError::UnknownAction(_) => {
                Fail::Api(ApiError::new("InvalidAction", e.to_string()))
            }
        }
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
}

const DRY: P = p("dry-run", Ty::Bool);
const FILTERS: P = p("filters", Ty::StructList);
// Paging: the CLI pages through every result itself; given by hand, these
// ask for one page (and its NextToken).
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
    },
    Op {
        name: "copy-snapshot",
        api: "CopySnapshot",
        params: &[
            req("source-region", Ty::Str),
            req("source-snapshot-id", Ty::Str),
            p("description", Ty::Str),
            p("destination-region", Ty::Str),
            p("encrypted", Ty::Bool),
            p("kms-key-id", Ty::Str),
            p("presigned-url", Ty::Str),
            p("tag-specifications", Ty::StructList),
            DRY,
        ],
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
    },
    Op {
        name: "create-tags",
        api: "CreateTags",
        params: &[
            req("resources", Ty::StrList),
            req("tags", Ty::StructList),
            DRY,
        ],
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
    },
    Op {
        name: "delete-snapshot",
        api: "DeleteSnapshot",
        params: &[req("snapshot-id", Ty::Str), DRY],
    },
    Op {
        name: "delete-tags",
        api: "DeleteTags",
        params: &[
            req("resources", Ty::StrList),
            p("tags", Ty::StructList),
            DRY,
        ],
    },
    Op {
        name: "delete-volume",
        api: "DeleteVolume",
        params: &[req("volume-id", Ty::Str), DRY],
    },
    Op {
        name: "deregister-image",
        api: "DeregisterImage",
        params: &[
            req("image-id", Ty::Str),
            p("delete-associated-snapshots", Ty::Bool),
            DRY,
        ],
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
    },
    Op {
        name: "describe-instance-attribute",
        api: "DescribeInstanceAttribute",
        params: &[req("attribute", Ty::Str), req("instance-id", Ty::Str), DRY],
    },
    Op {
        name: "describe-instance-status",
        api: "DescribeInstanceStatus",
        params: &[
            FILTERS,
            p("instance-ids", Ty::StrList),
            MAX_RESULTS,
            NEXT_TOKEN,
            DRY,
            p("include-all-instances", Ty::Bool),
        ],
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
    },
    Op {
        name: "describe-tags",
        api: "DescribeTags",
        params: &[FILTERS, MAX_RESULTS, NEXT_TOKEN, DRY],
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
            p("disable-api-termination", Ty::Struct),
            p("user-data", Ty::Struct),
            DRY,
        ],
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
    },
    Op {
        name: "reboot-instances",
        api: "RebootInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
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
            p("disable-api-termination", Ty::Bool),
            p("client-token", Ty::Str),
            DRY,
        ],
    },
    Op {
        name: "start-instances",
        api: "StartInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
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
    },
    Op {
        name: "terminate-instances",
        api: "TerminateInstances",
        params: &[req("instance-ids", Ty::StrList), DRY],
    },
];

/// The operation named `name`.
pub fn find(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

impl Op {
    /// Runs the operation: the arguments as the API's members, then the
    /// library's operation (the one the endpoint runs too).
    pub fn run(&self, ec2: &Ec2, a: &Args) -> Out {
        self.run_with(ec2, a, &[])
    }

    /// Runs the operation with `extra` members set (the paginator's
    /// `MaxResults` and `NextToken`).
    pub fn run_with(&self, ec2: &Ec2, a: &Args, extra: &[(&str, Value)]) -> Out {
        let mut params = match &a.globals.cli_input {
            None => to_params(a)?,
            Some(CliInput::Json(raw)) => {
                let mut m = to_members(a)?;
                merge_input(self.api, raw, &mut m)?;
                Params::from_members(m)
            }
            Some(CliInput::Yaml(raw)) => {
                let mut m = to_members(a)?;
                merge_yaml(self.api, raw, &mut m).map_err(v2_worded)?;
                Params::from_members(m)
            }
        };
        for (k, v) in extra {
            let v = v.clone();
            params = params.set_member(k, v);
        }
        if self.api == "RunInstances" {
            // botocore base64-encodes RunInstances' UserData before sending
            // (and only there: ModifyInstanceAttribute takes it encoded).
            params = params.map_member("UserData", |v| match v {
                Value::String(s) => Value::String(super::paginate::b64_encode(s.as_bytes())),
                other => other,
            });
        }
        let res = ebsim::api::ops::call(ec2, self.api, &params).map_err(Fail::from);
        match (&a.globals.cli_input, res) {
            (Some(CliInput::Yaml(_)), Err(Fail::Arg(e))) => Err(Fail::Arg(v2_worded(e))),
            (_, res) => res,
        }
    }
}

/// A refusal of a YAML document's members, worded as the AWS CLI v2 (the
/// one with `--cli-input-yaml`) prints it.
fn v2_worded(e: ArgError) -> ArgError {
    match e {
        ArgError::Bad(m) => ArgError::Bad(format!("{V2_PARAM_ERROR}{m}")),
        other => other,
    }
}

/// `--cli-input-yaml`: the document read as the AWS CLI v2 reads it
/// (ruamel.yaml's safe loader, YAML 1.2: `true`/`false`, `~`/`null`,
/// decimal, `0x` and `0o` integers, floats; comments, such as those of
/// `--generate-cli-skeleton yaml-input`, are ignored), then merged and
/// validated as a JSON document. A document that is not YAML (or holds
/// more than one document) is "Invalid YAML received."; one that is not a
/// mapping names the Python type it loaded as.
fn merge_yaml(
    api: &str,
    raw: &str,
    m: &mut serde_json::Map<String, Value>,
) -> Result<(), ArgError> {
    let invalid =
        || ArgError::Bad("Error parsing parameter 'cli-input-yaml': Invalid YAML received.".into());
    let docs = yaml_rust2::YamlLoader::load_from_str(raw).map_err(|_| invalid())?;
    if docs.len() > 1 {
        return Err(invalid());
    }
    let doc = match docs.into_iter().next() {
        Some(d) => yaml_value(d).ok_or_else(invalid)?,
        None => Value::Null,
    };
    let Value::Object(doc) = doc else {
        let ty = match doc {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "int",
            Value::String(_) => "str",
            _ => "list",
        };
        return Err(ArgError::Bad(format!(
            "Error parsing parameter '--cli-input-yaml': Invalid type: expecting map, received <class '{ty}'>"
        )));
    };
    for (k, v) in doc {
        m.entry(k).or_insert(v);
    }
    super::cli_input::validate(api, m).map_err(ArgError::Bad)
}

/// A YAML node as the JSON value the members are read from; None for what
/// the loader could not resolve. A mapping key that is not a string is
/// used as its text (the member check then names it).
fn yaml_value(y: yaml_rust2::Yaml) -> Option<Value> {
    use yaml_rust2::Yaml;
    Some(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(r) => {
            let f = yaml_rust2::Yaml::Real(r).as_f64()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(a.into_iter().map(yaml_value).collect::<Option<_>>()?),
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let k = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => if b { "True" } else { "False" }.to_string(),
                    Yaml::Real(r) => r,
                    Yaml::Null => "None".to_string(),
                    _ => return None,
                };
                m.insert(k, yaml_value(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => return None,
    })
}

/// `--kebab-case` to the member's name (`volume-ids` → `VolumeIds`).
fn member_name(flag: &str) -> String {
    flag.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// `--cli-input-json`: its members where the command line gave none, then
/// botocore's validation of the whole.
fn merge_input(
    api: &str,
    raw: &str,
    m: &mut serde_json::Map<String, Value>,
) -> Result<(), ArgError> {
    let doc: Value = serde_json::from_str(raw).map_err(|e| {
        ArgError::Bad(format!(
            "Error parsing parameter 'cli-input-json': Invalid JSON: {e}\nJSON received: {raw}"
        ))
    })?;
    let Value::Object(doc) = doc else {
        return Err(ArgError::Bad(format!(
            "Error parsing parameter 'cli-input-json': the JSON must be an object of the operation's members\nJSON received: {raw}"
        )));
    };
    for (k, v) in doc {
        m.entry(k).or_insert(v);
    }
    super::cli_input::validate(api, m).map_err(ArgError::Bad)
}

/// The arguments as the API's members. `--count N` or `--count MIN:MAX`
/// (the CLI's own option) becomes `MinCount`/`MaxCount`.
fn to_params(a: &Args) -> Result<Params, ArgError> {
    to_members(a).map(Params::from_members)
}

fn to_members(a: &Args) -> Result<serde_json::Map<String, Value>, ArgError> {
    let mut m = serde_json::Map::new();
    for (k, v) in &a.vals {
        if *k == "count" {
            let c = as_str("count", v)?;
            let (lo, hi) = c.split_once(':').unwrap_or((&c, &c));
            let int = |s: &str| {
                s.trim().parse::<u64>().map_err(|_| {
                    ArgError::Bad(format!("invalid literal for int() with base 10: '{s}'"))
                })
            };
            m.insert("MinCount".into(), Value::from(int(lo)?));
            m.insert("MaxCount".into(), Value::from(int(hi)?));
            continue;
        }
        m.insert(member_name(k), v.clone());
    }
    Ok(m)
}
