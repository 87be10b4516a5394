//! `--cli-input-json` and `--generate-cli-skeleton`, as the AWS CLI does
//! them:
//! - `--generate-cli-skeleton [input]` prints the operation's input shape
//!   with placeholder values (`""`, `0`, `true`, one list element,
//!   members in the model's order) and calls nothing; `output` answers
//!   with the output shape filled with the member names (`--query` and
//!   `--output` apply), also without calling anything.
//! - `--cli-input-json JSON|file://PATH` gives members by their API names;
//!   a member also given on the command line keeps the command line's
//!   value. Then botocore's validation: every required member present,
//!   every member one of the operation's ("Unknown parameter in input:
//!   ..., must be one of: ..."); either is a usage error.
//!
//! The shapes come from `skeletons.rs`, generated from the AWS CLI's own
//! botocore models.

use super::skeletons::{SHAPES, Shapes};
use ebsim::ec2::wire::json::J;
use serde_json::{Map, Value};

/// The shapes of an API operation.
pub fn shapes(api: &str) -> Option<&'static Shapes> {
    SHAPES.iter().find(|s| s.api == api)
}

/// Reads the generated (minified, ordered) JSON of a skeleton.
pub fn parse(text: &str) -> Option<J> {
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let v = value(&b, &mut i)?;
    (i == b.len()).then_some(v)
}

fn value(b: &[char], i: &mut usize) -> Option<J> {
    match b.get(*i)? {
        '{' => {
            *i += 1;
            let mut kv = Vec::new();
            if b.get(*i) == Some(&'}') {
                *i += 1;
                return Some(J::Obj(kv));
            }
            loop {
                let J::Str(k) = value(b, i)? else { return None };
                if b.get(*i) != Some(&':') {
                    return None;
                }
                *i += 1;
                kv.push((k, value(b, i)?));
                match b.get(*i)? {
                    ',' => *i += 1,
                    '}' => {
                        *i += 1;
                        return Some(J::Obj(kv));
                    }
                    _ => return None,
                }
            }
        }
        '[' => {
            *i += 1;
            let mut a = Vec::new();
            if b.get(*i) == Some(&']') {
                *i += 1;
                return Some(J::Arr(a));
            }
            loop {
                a.push(value(b, i)?);
                match b.get(*i)? {
                    ',' => *i += 1,
                    ']' => {
                        *i += 1;
                        return Some(J::Arr(a));
                    }
                    _ => return None,
                }
            }
        }
        '"' => {
            *i += 1;
            let mut s = String::new();
            loop {
                match b.get(*i)? {
                    '"' => {
                        *i += 1;
                        return Some(J::Str(s));
                    }
                    '\\' => {
                        s.push(*b.get(*i + 1)?);
                        *i += 2;
                    }
                    c => {
                        s.push(*c);
                        *i += 1;
                    }
                }
            }
        }
        _ => {
            let start = *i;
            while *i < b.len() && !matches!(b[*i], ',' | '}' | ']') {
                *i += 1;
            }
            let w: String = b[start..*i].iter().collect();
            match w.as_str() {
                "true" => Some(J::Bool(true)),
                "false" => Some(J::Bool(false)),
                "null" => Some(J::Null),
                n => n
                    .parse::<i64>()
                    .ok()
                    .map(J::Int)
                    .or_else(|| n.parse::<f64>().ok().map(J::Float)),
            }
        }
    }
}

/// botocore's validation of the merged members: the missing required
/// ones, then the unknown ones, each a line after "Parameter validation
/// failed:".
pub fn validate(api: &str, members: &Map<String, Value>) -> Result<(), String> {
    let Some(s) = shapes(api) else { return Ok(()) };
    let mut errors = Vec::new();
    for r in s.required {
        if !members.contains_key(*r) {
            errors.push(format!("Missing required parameter in input: \"{r}\""));
        }
    }
    for k in members.keys() {
        if !s.members.contains(&k.as_str()) {
            errors.push(format!(
                "Unknown parameter in input: \"{k}\", must be one of: {}",
                s.members.join(", ")
            ));
        }
    }
    // Then each known member's type, by its placeholder in the input
    // skeleton (`""` a string or timestamp, `0` an integer, `true`, a list,
    // a structure or map); a document can give any type.
    if let Some(J::Obj(skeleton)) = parse(s.input) {
        for (k, v) in members {
            let Some((_, placeholder)) = skeleton.iter().find(|(n, _)| n == k) else {
                continue;
            };
            let valid = match placeholder {
                J::Str(_) => v.is_string(),
                J::Int(_) => v.is_i64() || v.is_u64() || v.is_boolean(),
                J::Bool(_) => v.is_boolean(),
                J::Arr(_) => v.is_array(),
                J::Obj(_) => v.is_object(),
                _ => true,
            };
            if !valid {
                let want = match placeholder {
                    J::Str(_) => "<class 'str'>",
                    J::Int(_) => "<class 'int'>",
                    J::Bool(_) => "<class 'bool'>",
                    J::Arr(_) => "<class 'list'>, <class 'tuple'>",
                    _ => "<class 'dict'>",
                };
                errors.push(format!(
                    "Invalid type for parameter {k}, value: {}, type: <class '{}'>, valid types: {want}",
                    py_str(v),
                    py_type(v)
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Parameter validation failed:\n{}",
            errors.join("\n")
        ))
    }
}

/// Python's type name of a loaded JSON/YAML value.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of a loaded value (`repr()` inside containers).
fn py_str(v: &Value) -> String {
    fn repr(v: &Value) -> String {
        match v {
            Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            other => py_str(other),
        }
    }
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_skeleton_reads_and_prints_as_python() {
        for s in SHAPES {
            let i = parse(s.input).unwrap_or_else(|| panic!("{} input", s.api));
            let o = parse(s.output).unwrap_or_else(|| panic!("{} output", s.api));
            assert!(matches!(i, J::Obj(_)), "{}", s.api);
            assert!(matches!(o, J::Obj(_)), "{}", s.api);
        }
        let d = parse(shapes("DeleteVolume").unwrap().input).unwrap();
        assert_eq!(
            d.to_pretty(),
            "{\n    \"VolumeId\": \"\",\n    \"DryRun\": true\n}"
        );
        let mut m = Map::new();
        m.insert("Foo".into(), Value::from(1));
        assert_eq!(
            validate("DeleteVolume", &m).unwrap_err(),
            "Parameter validation failed:\nMissing required parameter in input: \"VolumeId\"\nUnknown parameter in input: \"Foo\", must be one of: VolumeId, DryRun"
        );
        let mut m = Map::new();
        m.insert("VolumeId".into(), Value::from(5));
        m.insert("DryRun".into(), serde_json::json!(["a", 1, null]));
        assert_eq!(
            validate("DeleteVolume", &m).unwrap_err(),
            "Parameter validation failed:\nInvalid type for parameter DryRun, value: ['a', 1, None], type: <class 'list'>, valid types: <class 'bool'>\nInvalid type for parameter VolumeId, value: 5, type: <class 'int'>, valid types: <class 'str'>"
        );
    }
}
