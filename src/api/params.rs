//! A request's parameters, named as the EC2 API's members are (`VolumeIds`,
//! `Filters[].Values`, `TagSpecifications[].Tags[].Key`,
//! `BlockDeviceMappings[].Ebs.VolumeSize`), whichever front end they came
//! from: the AWS CLI's `--kebab-case` options (`from_members`), or the
//! Query protocol's flattened form fields (`from_query`).
//!
//! The Query protocol (what the AWS CLI and the SDKs send to an endpoint)
//! flattens a request into `Name=value` pairs: a structure's members are
//! `Parent.Child`, a list's elements `Prefix.1`, `Prefix.2` (1-based, no
//! `.member`), and a list's wire name is the member's singular `queryName`
//! (`VolumeId.1` for `VolumeIds`, `Filter.1.Value.2` for
//! `Filters[0].Values[1]`, `Owner.1` for DescribeImages' `Owners` and
//! DescribeSnapshots' `OwnerIds`). Every scalar arrives as text; the
//! readers here accept text for numbers and booleans as well as typed JSON.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a parameter should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A string.
    Str,
    /// A non-negative integer.
    Int,
    /// `true` or `false`.
    Bool,
}

/// A parameter whose value is not of the type the operation reads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Value ({}) for parameter {name} is invalid. Expected {}.", shown(.value), want_text(*.want))]
pub struct ParamError {
    /// The member's name (`Size`, `Ebs.VolumeSize`).
    pub name: String,
    /// The value given.
    pub value: Value,
    /// What was expected.
    pub want: Want,
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn want_text(w: Want) -> &'static str {
    match w {
        Want::Str => "a string",
        Want::Int => "an integer",
        Want::Bool => "'true' or 'false'",
    }
}

fn bad(name: &str, v: &Value, want: Want) -> ParamError {
    ParamError {
        name: name.to_string(),
        value: v.clone(),
        want,
    }
}

/// Reads a string (a number is its decimal text).
pub fn as_str(name: &str, v: &Value) -> Result<String, ParamError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(bad(name, other, Want::Str)),
    }
}

/// Reads a non-negative integer (decimal text too).
pub fn as_u64(name: &str, v: &Value) -> Result<u64, ParamError> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| bad(name, v, Want::Int)),
        Value::String(s) => s.trim().parse().map_err(|_| bad(name, v, Want::Int)),
        other => Err(bad(name, other, Want::Int)),
    }
}

/// Reads a boolean (`true`/`false` in any case as text too).
pub fn as_bool(name: &str, v: &Value) -> Result<bool, ParamError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(bad(name, other, Want::Bool)),
    }
}

/// Reads a list of strings (a lone string is a list of one).
pub fn as_str_list(name: &str, v: &Value) -> Result<Vec<String>, ParamError> {
    match v {
        Value::Array(a) => a.iter().map(|x| as_str(name, x)).collect(),
        other => Ok(vec![as_str(name, other)?]),
    }
}

/// The member `key` of a structure value.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key))
}

/// The parameters of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    members: Map<String, Value>,
}

/// A node of the flattened-name tree while it is built.
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

impl Node {
    fn insert(&mut self, path: &[&str], value: String) {
        let Some((first, rest)) = path.split_first() else {
            *self = Node::Leaf(value);
            return;
        };
        if let Node::Leaf(_) = self {
            // `A=1` then `A.1=2`: the structured form wins.
            *self = Node::Branch(BTreeMap::new());
        }
        if let Node::Branch(m) = self {
            m.entry((*first).to_string())
                .or_insert_with(|| Node::Branch(BTreeMap::new()))
                .insert(rest, value);
        }
    }

    /// A branch whose keys are all positive integers is a list, in index
    /// order; any other branch a structure.
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Branch(m) => {
                let all_indexes = !m.is_empty()
                    && m.keys()
                        .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
                if all_indexes {
                    let mut items: Vec<(u128, Value)> = m
                        .into_iter()
                        .map(|(k, v)| (k.parse::<u128>().unwrap_or(u128::MAX), v.into_value()))
                        .collect();
                    items.sort_by_key(|(i, _)| *i);
                    Value::Array(items.into_iter().map(|(_, v)| v).collect())
                } else {
                    Value::Object(m.into_iter().map(|(k, v)| (k, v.into_value())).collect())
                }
            }
        }
    }
}

/// The member name of a list whose wire name is `wire`, in `action`.
fn list_member(action: &str, wire: &str) -> String {
    match (action, wire) {
        ("DescribeSnapshots", "Owner") => "OwnerIds".to_string(),
        (_, "ResourceId") => "Resources".to_string(),
        (_, "GroupId") => "Groups".to_string(),
        (_, "RestorableBy") => "RestorableByUserIds".to_string(),
        (_, "ExecutableBy") => "ExecutableUsers".to_string(),
        (_, w) => format!("{w}s"),
    }
}

/// Renames the lists of a decoded tree to their member names (a list's
/// wire name is singular: `Filter` → `Filters`, `Value` → `Values`).
fn rename_lists(action: &str, v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let is_list = v.is_array();
                    let v = rename_lists(action, v);
                    if is_list {
                        (list_member(action, &k), v)
                    } else {
                        (k, v)
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| rename_lists(action, x)).collect()),
        other => other,
    }
}

impl Params {
    /// Parameters from members already named as the API names them.
    pub fn from_members(members: Map<String, Value>) -> Params {
        Params { members }
    }

    /// The Query protocol's form fields of `action` (already
    /// percent-decoded; `Action` and `Version` are skipped). Keys may come
    /// in any order; list indexes need not be contiguous.
    pub fn from_query(action: &str, pairs: &[(String, String)]) -> Params {
        let mut root = Node::Branch(BTreeMap::new());
        for (k, v) in pairs {
            if k == "Action" || k == "Version" || k.is_empty() {
                continue;
            }
            let path: Vec<&str> = k.split('.').collect();
            root.insert(&path, v.clone());
        }
        match rename_lists(action, root.into_value()) {
            Value::Object(members) => Params { members },
            _ => Params::default(),
        }
    }

    /// The parameters with member `name` (when present) replaced by
    /// `f` of its value.
    pub fn map_member(mut self, name: &str, f: impl FnOnce(Value) -> Value) -> Params {
        if let Some(v) = self.members.remove(name) {
            self.members.insert(name.to_string(), f(v));
        }
        self
    }

    /// The parameters with member `name` set to `v`.
    pub fn set_member(mut self, name: &str, v: Value) -> Params {
        self.members.insert(name.to_string(), v);
        self
    }

    /// The raw value of a member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// A string member.
    pub fn str(&self, name: &str) -> Result<Option<String>, ParamError> {
        self.get(name).map(|v| as_str(name, v)).transpose()
    }

    /// An integer member.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ParamError> {
        self.get(name).map(|v| as_u64(name, v)).transpose()
    }

    /// A boolean member (None when absent).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ParamError> {
        self.get(name).map(|v| as_bool(name, v)).transpose()
    }

    /// A boolean member, false when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ParamError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// A list of strings (empty when absent).
    pub fn list(&self, name: &str) -> Result<Vec<String>, ParamError> {
        match self.get(name) {
            Some(v) => as_str_list(name, v),
            None => Ok(Vec::new()),
        }
    }

    /// A list of structures (empty when absent; a lone structure is a list
    /// of one).
    pub fn structs(&self, name: &str) -> Vec<Value> {
        match self.get(name) {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(action: &str, body: &str) -> Params {
        let pairs = crate::api::http::form_pairs(body.as_bytes());
        Params::from_query(action, &pairs)
    }

    #[test]
    fn decodes_captured_bodies() {
        // The AWS CLI's create-volume, as captured.
        let p = q(
            "CreateVolume",
            "Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a&Size=8&VolumeType=gp3&TagSpecification.1.ResourceType=volume&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=data&TagSpecification.1.Tag.2.Key=team&TagSpecification.1.Tag.2.Value=a+b%2Fc%3Ad&ClientToken=a0ae",
        );
        assert_eq!(p.u64("Size").unwrap(), Some(8));
        assert_eq!(
            p.get("TagSpecifications").unwrap(),
            &json!([{"ResourceType": "volume", "Tags": [
                {"Key": "Name", "Value": "data"}, {"Key": "team", "Value": "a b/c:d"}]}])
        );
        assert!(p.get("Action").is_none());
        let p = q(
            "DescribeVolumes",
            "Filter.2.Name=status&Filter.2.Value.2=in-use&Filter.2.Value.1=available&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-0123456789abcdef0&VolumeId.10=b&VolumeId.9=a",
        );
        assert_eq!(
            p.get("Filters").unwrap(),
            &json!([{"Name": "attachment.instance-id", "Values": ["i-0123456789abcdef0"]},
                    {"Name": "status", "Values": ["available", "in-use"]}])
        );
        assert_eq!(p.list("VolumeIds").unwrap(), vec!["a", "b"]);
        let p = q(
            "RunInstances",
            "BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda&BlockDeviceMapping.1.Ebs.VolumeSize=16&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true&BlockDeviceMapping.3.DeviceName=%2Fdev%2Fsdg&BlockDeviceMapping.3.NoDevice=&Placement.AvailabilityZone=us-east-1a&MaxCount=1&MinCount=1",
        );
        assert_eq!(
            p.get("BlockDeviceMappings").unwrap(),
            &json!([{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": "16", "DeleteOnTermination": "true"}},
                    {"DeviceName": "/dev/sdg", "NoDevice": ""}])
        );
        assert_eq!(
            p.get("Placement").unwrap(),
            &json!({"AvailabilityZone": "us-east-1a"})
        );
        let p = q("DescribeSnapshots", "Owner.1=self&MaxResults=1000");
        assert_eq!(p.list("OwnerIds").unwrap(), vec!["self"]);
        let p = q(
            "CreateTags",
            "ResourceId.1=vol-1&ResourceId.2=i-1&Tag.1.Key=k&Tag.1.Value=",
        );
        assert_eq!(p.list("Resources").unwrap(), vec!["vol-1", "i-1"]);
        assert_eq!(p.get("Tags").unwrap(), &json!([{"Key": "k", "Value": ""}]));
        let p = q("DescribeImages", "Owner.1=self");
        assert_eq!(p.list("Owners").unwrap(), vec!["self"]);
        let p = q(
            "ModifyInstanceAttribute",
            "InstanceId=i-1&InstanceType.Value=t3.large",
        );
        assert_eq!(
            p.get("InstanceType").unwrap(),
            &json!({"Value": "t3.large"})
        );
    }

    #[test]
    fn bad_values_are_typed() {
        let p = q("CreateVolume", "Size=abc&Encrypted=maybe");
        assert_eq!(
            p.u64("Size").unwrap_err().to_string(),
            "Value (abc) for parameter Size is invalid. Expected an integer."
        );
        assert_eq!(p.bool("Encrypted").unwrap_err().want, Want::Bool);
        // Mixed scalar and structured forms never panic.
        let p = q("X", "A=1&A.1=2&A.x.1=3&.=&..=4&B.=5");
        let _ = p.list("As");
    }
}
