//! The AWS CLI's argument syntax for one operation: `--kebab-name VALUE`,
//! `--flag` / `--no-flag` for booleans, lists as several words,
//! structures as shorthand or JSON, `file://` for any value, and the
//! global options (`--query`, `--output`, `--region`, ...) anywhere.
//!
//! Hand-parsed rather than with clap: the CLI's list arguments take words
//! up to the next `--option`, `--no-X` pairs, shorthand and paramfiles, and
//! its error texts cannot be produced by clap.

use super::shorthand;
use serde_json::Value;
use std::collections::BTreeMap;

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// One string.
    Str,
    /// One integer.
    Int,
    /// `--x` / `--no-x`.
    Bool,
    /// Several strings.
    StrList,
    /// One structure (shorthand or JSON).
    Struct,
    /// Several structures (shorthand each, or one JSON list).
    StructList,
}

/// One parameter of an operation.
#[derive(Debug, Clone, Copy)]
pub struct P {
    /// The flag without `--`.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Required.
    pub required: bool,
}

/// A parameter.
pub const fn p(name: &'static str, ty: Ty) -> P {
    P {
        name,
        ty,
        required: false,
    }
}

/// A required parameter.
pub const fn req(name: &'static str, ty: Ty) -> P {
    P {
        name,
        ty,
        required: true,
    }
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// JSON (default).
    Json,
    /// Tab-separated text.
    Text,
    /// The boxed table (`table.rs`).
    Table,
    /// One YAML document (`yaml.rs`).
    Yaml,
    /// A YAML list item per page (`yaml.rs`).
    YamlStream,
}

impl Output {
    /// `--output NAME` (or the setting of AWS_DEFAULT_OUTPUT or a
    /// profile).
    pub fn parse(v: &str) -> Result<Output, ArgError> {
        match v {
            "json" => Ok(Output::Json),
            "text" => Ok(Output::Text),
            "table" => Ok(Output::Table),
            "yaml" => Ok(Output::Yaml),
            "yaml-stream" => Ok(Output::YamlStream),
            other => Err(ArgError::Bad(format!(
                "aws: error: argument --output: Invalid choice, valid choices are:\n\njson | text | table | yaml | yaml-stream\n\n(ebsim does not print '{other}')"
            ))),
        }
    }
}

/// The global options.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--query`.
    pub query: Option<String>,
    /// `--output`.
    pub output: Output,
    /// `--region`.
    pub region: Option<String>,
    /// `--output` was given (else AWS_DEFAULT_OUTPUT or the profile's).
    pub output_given: bool,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--color on|off|auto` (table output).
    pub color: Option<String>,
    /// `--generate-cli-skeleton [input|output|yaml-input]`.
    pub skeleton: Option<String>,
    /// `--cli-input-json` or `--cli-input-yaml`: the document (a
    /// `file://` value already read).
    pub cli_input: Option<CliInput>,
    /// `--no-paginate`.
    pub no_paginate: bool,
    /// `--page-size`, `--max-items`, `--starting-token` (paginated
    /// operations only).
    pub paging: super::paginate::Paging,
}

/// The document of `--cli-input-json` or `--cli-input-yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliInput {
    /// `--cli-input-json`.
    Json(String),
    /// `--cli-input-yaml` (the AWS CLI v2's; its refusals are worded as
    /// v2 words them, see [`V2_PARAM_ERROR`]).
    Yaml(String),
}

/// What the AWS CLI v2 puts before a refusal of its parameters (v1 prints
/// the bare message). Only v2 has `--cli-input-yaml`, so ebsim words the
/// refusals of a YAML document as v2 does.
pub const V2_PARAM_ERROR: &str = "aws: [ERROR]: An error occurred (ParamValidation): ";

/// A parse failure, as the CLI reports it (exit 252).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// `the following arguments are required: --a, --b`.
    Required(Vec<String>),
    /// `Unknown options: --foo, 1`.
    Unknown(Vec<String>),
    /// A value that cannot be read; the text is complete.
    Bad(String),
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgError::Required(names) => write!(
                f,
                "aws: error: the following arguments are required: {}",
                names.join(", ")
            ),
            ArgError::Unknown(words) => write!(f, "Unknown options: {}", words.join(", ")),
            ArgError::Bad(msg) => f.write_str(msg),
        }
    }
}

/// Parsed arguments.
#[derive(Debug, Clone)]
pub struct Args {
    /// Values by parameter name.
    pub vals: BTreeMap<&'static str, Value>,
    /// Global options.
    pub globals: Globals,
}

const GLOBAL_VALUE: &[&str] = &[
    "query",
    "output",
    "region",
    "profile",
    "endpoint-url",
    "color",
    "cli-read-timeout",
    "cli-connect-timeout",
    "cli-binary-format",
    "ca-bundle",
];
/// The CLI's paging options of a paginated operation.
const PAGING: &[&str] = &["page-size", "max-items", "starting-token"];

const GLOBAL_FLAGS: &[&str] = &[
    "no-cli-pager",
    "cli-auto-prompt",
    "no-cli-auto-prompt",
    "debug",
    "no-verify-ssl",
    "no-paginate",
    "no-sign-request",
];

/// The most a `file://` parameter may hold. The AWS CLI reads a paramfile
/// whole, without a limit (`file:///dev/zero` reads until memory runs out);
/// ebsim stops past this, far above any EC2 parameter (user data, the
/// largest, is limited to 16 KiB), and reports it as the CLI reports a file
/// it cannot read.
pub const PARAMFILE_MAX: u64 = 4 << 20;

/// Reads a `file://` / `fileb://` value, as the AWS CLI does (its
/// `paramfile.get_file`): a failed read is "Unable to load paramfile URI:
/// [Errno N] STRERROR: 'PATH'", text that is not UTF-8 is refused with the
/// CLI's own advice, and both are usage errors (exit 252).
fn paramfile(flag: &str, v: &str) -> Result<String, ArgError> {
    for prefix in ["file://", "fileb://"] {
        if let Some(path) = v.strip_prefix(prefix) {
            let os_error = |errno: i32| {
                let text = match errno {
                    nix::libc::ENOENT => "No such file or directory".to_string(),
                    n => nix::errno::Errno::from_raw(n).desc().to_string(),
                };
                ArgError::Bad(format!(
                    "Error parsing parameter '--{flag}': Unable to load paramfile {v}: [Errno {errno}] {text}: '{path}'"
                ))
            };
            let mut data = Vec::new();
            let read = std::fs::File::open(path).and_then(|f| {
                use std::io::Read;
                f.take(PARAMFILE_MAX + 1).read_to_end(&mut data)
            });
            if let Err(e) = read {
                return Err(os_error(e.raw_os_error().unwrap_or(nix::libc::EIO)));
            }
            if data.len() as u64 > PARAMFILE_MAX {
                return Err(os_error(nix::libc::EFBIG));
            }
            if prefix == "fileb://" {
                return Ok(String::from_utf8_lossy(&data).into_owned());
            }
            return String::from_utf8(data).map_err(|_| {
                ArgError::Bad(format!(
                    "Error parsing parameter '--{flag}': Unable to load paramfile ({path}), text contents could not be decoded.  If this is a binary file, please use the fileb:// prefix instead of the file:// prefix."
                ))
            });
        }
    }
    Ok(v.to_string())
}

fn structure(flag: &str, raw: &str) -> Result<Value, ArgError> {
    let t = raw.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        serde_json::from_str(t).map_err(|e| {
            ArgError::Bad(format!(
                "Error parsing parameter '--{flag}': Invalid JSON: {e}\nJSON received: {raw}"
            ))
        })
    } else {
        shorthand::parse(raw)
            .map_err(|e| ArgError::Bad(format!("Error parsing parameter '--{flag}': {e}")))
    }
}

fn convert(p: &P, words: &[String]) -> Result<Value, ArgError> {
    let flag = p.name;
    let first = || -> Result<String, ArgError> {
        let w = words.first().cloned().unwrap_or_default();
        paramfile(flag, &w)
    };
    match p.ty {
        Ty::Bool => Ok(Value::Bool(true)),
        Ty::Str => Ok(Value::String(first()?)),
        Ty::Int => {
            let w = first()?;
            w.trim().parse::<i64>().map(Value::from).map_err(|_| {
                ArgError::Bad(format!("invalid literal for int() with base 10: '{w}'"))
            })
        }
        Ty::StrList => {
            let mut out = Vec::new();
            for w in words {
                let w = paramfile(flag, w)?;
                if w.trim_start().starts_with('[') {
                    match serde_json::from_str::<Value>(&w) {
                        Ok(Value::Array(a)) => out.extend(a),
                        _ => out.push(Value::String(w)),
                    }
                } else {
                    out.push(Value::String(w));
                }
            }
            Ok(Value::Array(out))
        }
        Ty::Struct => structure(flag, &first()?),
        Ty::StructList => {
            let mut out = Vec::new();
            for w in words {
                let w = paramfile(flag, w)?;
                match structure(flag, &w)? {
                    Value::Array(a) => out.extend(a),
                    v => out.push(v),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// Parses the words after the operation name.
pub fn parse(params: &[P], words: &[String]) -> Result<Args, ArgError> {
    let mut vals: BTreeMap<&'static str, Value> = BTreeMap::new();
    let mut globals = Globals {
        query: None,
        output: Output::Json,
        region: None,
        output_given: false,
        profile: None,
        color: None,
        skeleton: None,
        cli_input: None,
        no_paginate: false,
        paging: super::paginate::Paging::default(),
    };
    // The paging options the CLI adds to an operation with a paginator
    // (the ones with `--next-token`).
    let paginated = params.iter().any(|p| p.name == "next-token");
    let mut unknown: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let Some(opt) = w.strip_prefix("--") else {
            unknown.push(w.clone());
            continue;
        };
        let (name, inline) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (opt, None),
        };
        // The words of a value: the inline one, or the next word(s).
        let mut take = |many: bool| -> Vec<String> {
            if let Some(v) = &inline {
                return vec![v.clone()];
            }
            let mut out = Vec::new();
            while i < words.len() && !words[i].starts_with("--") {
                out.push(words[i].clone());
                i += 1;
                if !many {
                    break;
                }
            }
            out
        };
        if GLOBAL_VALUE.contains(&name) {
            let v = take(false);
            let Some(v) = v.into_iter().next() else {
                return Err(ArgError::Bad(format!(
                    "aws: error: argument --{name}: expected one argument"
                )));
            };
            match name {
                "query" => globals.query = Some(v),
                "region" => globals.region = Some(v),
                "profile" => globals.profile = Some(v),
                "color" => {
                    if !matches!(v.as_str(), "on" | "off" | "auto") {
                        return Err(ArgError::Bad(format!(
                            "aws: error: argument --color: invalid choice: '{v}' (choose from 'on', 'off', 'auto')"
                        )));
                    }
                    globals.color = Some(v);
                }
                "output" => {
                    globals.output = Output::parse(&v)?;
                    globals.output_given = true;
                }
                _ => {}
            }
            continue;
        }
        if name == "generate-cli-skeleton" {
            // An optional value: the next word unless it is an option.
            let v = match &inline {
                Some(v) => v.clone(),
                None if i < words.len() && !words[i].starts_with("--") => {
                    i += 1;
                    words[i - 1].clone()
                }
                None => "input".to_string(),
            };
            if !matches!(v.as_str(), "input" | "output" | "yaml-input") {
                return Err(ArgError::Bad(format!(
                    "aws: error: argument --generate-cli-skeleton: Invalid choice, valid choices are:\n\ninput | output | yaml-input\n\n(ebsim does not print '{v}' skeletons)"
                )));
            }
            globals.skeleton = Some(v);
            continue;
        }
        if name == "cli-input-json" || name == "cli-input-yaml" {
            let Some(v) = take(false).into_iter().next() else {
                return Err(ArgError::Bad(format!(
                    "aws: error: argument --{name}: expected one argument"
                )));
            };
            if globals.cli_input.is_some() {
                return Err(ArgError::Bad(format!(
                    "{V2_PARAM_ERROR}Only one --cli-input- parameter may be specified."
                )));
            }
            globals.cli_input = Some(if name == "cli-input-yaml" {
                CliInput::Yaml(paramfile(name, &v).map_err(|e| match e {
                    ArgError::Bad(m) => ArgError::Bad(format!("{V2_PARAM_ERROR}{m}")),
                    other => other,
                })?)
            } else {
                CliInput::Json(paramfile(name, &v)?)
            });
            continue;
        }
        if GLOBAL_FLAGS.contains(&name) {
            if name == "no-paginate" {
                globals.no_paginate = true;
            }
            continue;
        }
        if paginated && PAGING.contains(&name) {
            let Some(v) = take(false).into_iter().next() else {
                return Err(ArgError::Bad(format!(
                    "aws: error: argument --{name}: expected one argument"
                )));
            };
            if name == "starting-token" {
                globals.paging.starting_token = Some(v);
                continue;
            }
            let n = py_int(&v).ok_or_else(|| {
                ArgError::Bad(format!(
                    "aws: error: argument --{name}: invalid int value: '{v}'"
                ))
            })?;
            if name == "page-size" {
                globals.paging.page_size = Some(n);
            } else {
                globals.paging.max_items = Some(n);
            }
            continue;
        }
        if let Some(p) = params.iter().find(|p| p.name == name) {
            let many = matches!(p.ty, Ty::StrList | Ty::StructList);
            if p.ty == Ty::Bool {
                vals.insert(p.name, Value::Bool(true));
                continue;
            }
            let ws = take(many);
            if ws.is_empty() {
                return Err(ArgError::Bad(format!(
                    "aws: error: argument --{name}: expected one argument"
                )));
            }
            vals.insert(p.name, convert(p, &ws)?);
            continue;
        }
        // `--no-x` for a boolean `x`, and `--x` for a boolean `no-x`.
        let negated = name
            .strip_prefix("no-")
            .and_then(|base| params.iter().find(|p| p.name == base && p.ty == Ty::Bool))
            .or_else(|| {
                params
                    .iter()
                    .find(|p| p.ty == Ty::Bool && p.name.strip_prefix("no-") == Some(name))
            });
        if let Some(p) = negated {
            vals.insert(p.name, Value::Bool(false));
            continue;
        }
        unknown.push(w.clone());
        while i < words.len() && !words[i].starts_with("--") {
            unknown.push(words[i].clone());
            i += 1;
        }
    }
    // With a skeleton or an input document, the required members are
    // checked after the document is merged (botocore's validation).
    let overridden = globals.skeleton.is_some() || globals.cli_input.is_some();
    let missing: Vec<String> = params
        .iter()
        .filter(|p| p.required && !overridden && !vals.contains_key(p.name))
        .map(|p| format!("--{}", p.name))
        .collect();
    if !missing.is_empty() {
        return Err(ArgError::Required(missing));
    }
    if !unknown.is_empty() {
        return Err(ArgError::Unknown(unknown));
    }
    Ok(Args { vals, globals })
}

/// An integer as Python's `int()` reads one (argparse's `type=int`):
/// white space around it, a sign, `_` between digits.
fn py_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// A value of the wrong type, as botocore's validator words it (`want`:
/// `<class 'int'>`).
pub fn type_error(name: &str, v: &Value, want: &str) -> ArgError {
    invalid(name, v, want)
}

/// A value that must be read as some type; the message names the
/// parameter as botocore's validator does.
fn invalid(name: &str, v: &Value, want: &str) -> ArgError {
    ArgError::Bad(format!(
        "Parameter validation failed:\nInvalid type for parameter {name}, value: {v}, type: {}, valid types: {want}",
        match v {
            Value::String(_) => "<class 'str'>",
            Value::Number(_) => "<class 'int'>",
            Value::Bool(_) => "<class 'bool'>",
            Value::Array(_) => "<class 'list'>",
            Value::Object(_) => "<class 'dict'>",
            Value::Null => "<class 'NoneType'>",
        }
    ))
}

/// Reads a string.
pub fn as_str(name: &str, v: &Value) -> Result<String, ArgError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(invalid(name, other, "<class 'str'>")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    const PS: &[P] = &[
        req("volume-id", Ty::Str),
        p("size", Ty::Int),
        p("encrypted", Ty::Bool),
        p("no-reboot", Ty::Bool),
        p("volume-ids", Ty::StrList),
        p("filters", Ty::StructList),
    ];

    #[test]
    fn parses_the_cli_forms() {
        let a = parse(PS, &w("--volume-id v --size 8 --no-encrypted --reboot --volume-ids a b --filters Name=x,Values=y Name=z,Values=1,2 --query Size --output text")).unwrap();
        assert_eq!(a.vals["volume-id"], Value::from("v"));
        assert_eq!(a.vals["size"], Value::from(8));
        assert_eq!(a.vals["encrypted"], Value::from(false));
        assert_eq!(a.vals["no-reboot"], Value::from(false));
        assert_eq!(a.vals["volume-ids"], serde_json::json!(["a", "b"]));
        assert_eq!(a.vals["filters"].as_array().unwrap().len(), 2);
        assert_eq!(a.globals.query.as_deref(), Some("Size"));
        assert_eq!(a.globals.output, Output::Text);
        assert_eq!(
            parse(PS, &w("--size 8")).unwrap_err(),
            ArgError::Required(vec!["--volume-id".into()])
        );
        assert_eq!(
            parse(PS, &w("--volume-id v --foo 1")).unwrap_err(),
            ArgError::Unknown(vec!["--foo".into(), "1".into()])
        );
        assert!(matches!(
            parse(PS, &w("--volume-id v --size abc")),
            Err(ArgError::Bad(_))
        ));
        let a = parse(PS, &w("--volume-id=v --size=9")).unwrap();
        assert_eq!(a.vals["size"], Value::from(9));
    }
}
