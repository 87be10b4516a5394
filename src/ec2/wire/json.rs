//! An ordered JSON value, and the AWS CLI's JSON output of it.
//!
//! The AWS CLI prints a response's keys in the order botocore parsed them,
//! which is the order of the members in the service model (for EC2,
//! `Iops, Tags, VolumeType, ..., VolumeId, Size, ...`), not alphabetical:
//! so objects here keep their insertion order, unlike `serde_json::Map`.

use std::fmt::Write;

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// null
    Null,
    /// true / false
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integral number (from a --query result).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<J>),
    /// An object, keys in order.
    Obj(Vec<(String, J)>),
}

/// Builds an object from pairs, skipping `None` values.
#[derive(Debug, Default)]
pub struct Obj(Vec<(String, J)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(Vec::new())
    }

    /// Adds a key.
    pub fn put(mut self, k: &str, v: impl Into<J>) -> Obj {
        self.0.push((k.to_string(), v.into()));
        self
    }

    /// Adds a key when the value is present.
    pub fn opt<T: Into<J>>(self, k: &str, v: Option<T>) -> Obj {
        match v {
            Some(v) => self.put(k, v),
            None => self,
        }
    }

    /// The value.
    pub fn done(self) -> J {
        J::Obj(self.0)
    }
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::Str(s.to_string())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::Str(s)
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::Str(s.clone())
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<u64> for J {
    fn from(n: u64) -> J {
        J::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<u32> for J {
    fn from(n: u32) -> J {
        J::Int(i64::from(n))
    }
}
impl From<i64> for J {
    fn from(n: i64) -> J {
        J::Int(n)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::Arr(v)
    }
}
impl From<Obj> for J {
    fn from(o: Obj) -> J {
        o.done()
    }
}

impl J {
    /// Converts from serde_json (keys in serde_json's order).
    pub fn from_serde(v: &serde_json::Value) -> J {
        use serde_json::Value as V;
        match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Number(n) => match n.as_i64() {
                Some(i) => J::Int(i),
                None => J::Float(n.as_f64().unwrap_or(0.0)),
            },
            V::String(s) => J::Str(s.clone()),
            V::Array(a) => J::Arr(a.iter().map(J::from_serde).collect()),
            V::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// As Python's `json.dumps(v, indent=4, ensure_ascii=False)`.
    pub fn to_pretty(&self) -> String {
        let mut s = String::new();
        self.write_pretty(&mut s, 0);
        s
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            for _ in 0..d {
                out.push_str("    ");
            }
        };
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => {
                let _ = write!(out, "{n}");
            }
            J::Float(f) => out.push_str(&py_float(*f)),
            J::Str(s) => write_str(out, s),
            J::Arr(a) if a.is_empty() => out.push_str("[]"),
            J::Obj(kv) if kv.is_empty() => out.push_str("{}"),
            J::Arr(a) => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    pad(out, depth + 1);
                    v.write_pretty(out, depth + 1);
                    if i + 1 < a.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                pad(out, depth);
                out.push(']');
            }
            J::Obj(kv) => {
                out.push_str("{\n");
                for (i, (k, v)) in kv.iter().enumerate() {
                    pad(out, depth + 1);
                    write_str(out, k);
                    out.push_str(": ");
                    v.write_pretty(out, depth + 1);
                    if i + 1 < kv.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }

    /// Whether it is a scalar (neither an array nor an object).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, J::Arr(_) | J::Obj(_))
    }
}

/// Python's `repr()` of a float (`80.0`, `0.5`).
pub fn py_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs of plain characters at once; escape the rest.
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume() -> J {
        Obj::new()
            .put("Iops", 240u64)
            .put(
                "Tags",
                vec![Obj::new().put("Key", "a").put("Value", "b").done()],
            )
            .put("VolumeType", "gp2")
            .put("MultiAttachEnabled", false)
            .put("VolumeId", "vol-1234567890abcdef0")
            .put("Size", 80u64)
            .put("SnapshotId", "")
            .put("AvailabilityZone", "us-east-1a")
            .put("State", "creating")
            .put("CreateTime", "2016-08-29T18:52:32.724Z")
            .put("Encrypted", false)
            .done()
    }

    /// As the real aws-cli 1.45 printed the same response (fed to it from
    /// a local endpoint).
    #[test]
    fn matches_the_real_cli() {
        let v = volume();
        assert_eq!(
            v.to_pretty(),
            r#"{
    "Iops": 240,
    "Tags": [
        {
            "Key": "a",
            "Value": "b"
        }
    ],
    "VolumeType": "gp2",
    "MultiAttachEnabled": false,
    "VolumeId": "vol-1234567890abcdef0",
    "Size": 80,
    "SnapshotId": "",
    "AvailabilityZone": "us-east-1a",
    "State": "creating",
    "CreateTime": "2016-08-29T18:52:32.724Z",
    "Encrypted": false
}"#
        );
        assert_eq!(J::Arr(vec![]).to_pretty(), "[]");
        assert_eq!(J::Str("x\"y".into()).to_pretty(), r#""x\"y""#);
        assert_eq!(
            J::Str("a\u{1}b\tc\\é".into()).to_pretty(),
            r#""a\u0001b\tc\\é""#
        );
    }
}
