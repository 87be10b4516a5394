//! The AWS CLI's `--output text` (awscli/text.py): scalars of an object on
//! one tab-separated line in key order, lists and nested objects below it
//! under their upper-cased key.

use ebsim::ec2::wire::json::{J, py_float};
use std::fmt::Write;

/// The AWS CLI's `--output text` of a response.
pub fn to_text(j: &J) -> String {
    let mut out = String::new();
    text_item(j, &mut out, None, None);
    out
}

/// Python's `str()` of a value, as the text format prints scalars.
pub(super) fn py_str(j: &J) -> String {
    match j {
        J::Null => "None".to_string(),
        J::Bool(true) => "True".to_string(),
        J::Bool(false) => "False".to_string(),
        J::Int(n) => n.to_string(),
        J::Float(f) => py_float(*f),
        J::Str(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` (only reached for nested values printed as text).
fn py_repr(j: &J) -> String {
    match j {
        J::Str(s) => py_str_repr(s),
        J::Arr(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        J::Obj(kv) => format!(
            "{{{}}}",
            kv.iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => py_str(other),
    }
}

/// Python's `repr()` of a string: single quotes, or double quotes when
/// it holds a `'` and no `"`; backslashes, the quote, and control
/// characters escaped.
fn py_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn text_item(item: &J, out: &mut String, ident: Option<&str>, scalar_keys: Option<&[String]>) {
    match item {
        J::Obj(kv) => text_dict(kv, out, ident, scalar_keys),
        J::Arr(a) => text_list(a, out, ident),
        other => {
            out.push_str(&py_str(other));
            out.push('\n');
        }
    }
}

fn text_list(items: &[J], out: &mut String, ident: Option<&str>) {
    if items.is_empty() {
        return;
    }
    if items.iter().any(|e| matches!(e, J::Obj(_))) {
        let keys = all_scalar_keys(items);
        for e in items {
            text_item(e, out, ident, Some(&keys));
        }
    } else if items.iter().any(|e| matches!(e, J::Arr(_))) {
        let scalars: Vec<&J> = items.iter().filter(|e| e.is_scalar()).collect();
        if !scalars.is_empty() {
            text_scalar_list(&scalars, out, ident);
        }
        for e in items.iter().filter(|e| !e.is_scalar()) {
            text_item(e, out, ident, None);
        }
    } else {
        let all: Vec<&J> = items.iter().collect();
        text_scalar_list(&all, out, ident);
    }
}

fn text_scalar_list(items: &[&J], out: &mut String, ident: Option<&str>) {
    match ident {
        Some(id) => {
            for i in items {
                let _ = writeln!(out, "{}\t{}", id.to_uppercase(), py_str(i));
            }
        }
        None => {
            let v: Vec<String> = items.iter().map(|i| py_str(i)).collect();
            out.push_str(&v.join("\t"));
            out.push('\n');
        }
    }
}

fn all_scalar_keys(items: &[J]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for e in items {
        if let J::Obj(kv) = e {
            for (k, v) in kv {
                if v.is_scalar() && !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    keys.sort();
    keys
}

fn text_dict(
    kv: &[(String, J)],
    out: &mut String,
    ident: Option<&str>,
    scalar_keys: Option<&[String]>,
) {
    let mut scalars: Vec<String> = Vec::new();
    let mut non_scalars: Vec<(&str, &J)> = Vec::new();
    match scalar_keys {
        None => {
            let mut sorted: Vec<&(String, J)> = kv.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in sorted {
                if v.is_scalar() {
                    scalars.push(py_str(v));
                } else {
                    non_scalars.push((k, v));
                }
            }
        }
        Some(keys) => {
            for k in keys {
                let v = kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| py_str(v));
                scalars.push(v.unwrap_or_default());
            }
            let mut rest: Vec<&(String, J)> =
                kv.iter().filter(|(k, _)| !keys.contains(k)).collect();
            rest.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in rest {
                non_scalars.push((k, v));
            }
        }
    }
    if !scalars.is_empty() {
        if let Some(id) = ident {
            scalars.insert(0, id.to_uppercase());
        }
        out.push_str(&scalars.join("\t"));
        out.push('\n');
    }
    for (k, v) in non_scalars {
        text_item(v, out, Some(k), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebsim::ec2::wire::json::Obj;

    /// As the real aws-cli 1.45 printed the same response (fed to it from a
    /// local endpoint).
    #[test]
    fn matches_the_real_cli() {
        let v = Obj::new()
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
            .done();
        assert_eq!(
            to_text(&v),
            "us-east-1a\t2016-08-29T18:52:32.724Z\tFalse\t240\tFalse\t80\t\tcreating\tvol-1234567890abcdef0\tgp2\nTAGS\ta\tb\n"
        );
        let q = Obj::new()
            .put("S", 80u64)
            .put("A", "us-east-1a")
            .put(
                "T",
                vec![Obj::new().put("Key", "a").put("Value", "b").done()],
            )
            .done();
        assert_eq!(to_text(&q), "us-east-1a\t80\nT\ta\tb\n");
        assert_eq!(to_text(&J::Null), "None\n");
    }
}
