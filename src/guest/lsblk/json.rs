//! lsblk's `-J` output: the 2.37+ layout (one key per line, typed
//! values, MOUNTPOINTS arrays) and the older one-object-per-line layouts.

use super::columns::{Column, JsonType, cell};
use super::tree::{Line, sorted_children};
use super::{Options, UtilLinux};

/// JSON string escaping of util-linux's jsonwrt (`"`, `\`, and controls).
fn json_escape(s: &str) -> String {
    let mut o = String::new();
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{8}' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\u{c}' => o.push_str("\\f"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn json_string(s: &str) -> String {
    if s.is_empty() {
        "null".into()
    } else {
        format!("\"{}\"", json_escape(s))
    }
}

/// The value of one JSON key (2.37+ layout); `indent` is the key's.
fn json_value(l: &Line, c: Column, o: &Options, indent: usize) -> String {
    let text = cell(l.dev, l.parent_dev, c, o);
    match c.info().json {
        JsonType::Bool => (!(text.is_empty() || text.starts_with('0'))).to_string(),
        JsonType::Size if o.bytes => {
            if text.is_empty() {
                "null".into()
            } else {
                text
            }
        }
        JsonType::Array => {
            let pad = " ".repeat(indent + 4);
            let inner = if text.is_empty() {
                "null".to_string()
            } else {
                text.split('\n')
                    .map(json_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("[\n{pad}{inner}\n{}]", " ".repeat(indent))
        }
        _ => json_string(&text),
    }
}

pub(super) fn render_json(lines: &[Line], tops: &[usize], o: &Options, is_tree: bool) -> String {
    let mut out = String::from("{\n   \"blockdevices\": [\n");
    if o.version >= UtilLinux::V2_37 {
        json_new(lines, tops, o, 2, is_tree, &mut out);
    } else {
        json_old(lines, tops, o, 2, is_tree, &mut out);
    }
    out.push_str("   ]\n}\n");
    out
}

fn json_new(
    lines: &[Line],
    ids: &[usize],
    o: &Options,
    level: usize,
    is_tree: bool,
    out: &mut String,
) {
    let ind = |n: usize| " ".repeat(3 * n);
    for (n, &i) in ids.iter().enumerate() {
        if n == 0 {
            out.push_str(&ind(level));
            out.push_str("{\n");
        }
        let kids: Vec<usize> = if is_tree {
            sorted_children(lines, i)
        } else {
            Vec::new()
        };
        let ncol = o.columns.len();
        for (k, &c) in o.columns.iter().enumerate() {
            let key = c.info().header.to_ascii_lowercase();
            let val = json_value(&lines[i], c, o, 3 * (level + 1));
            let comma = if k + 1 < ncol || !kids.is_empty() {
                ","
            } else {
                ""
            };
            out.push_str(&format!(
                "{}\"{}\": {}{}\n",
                ind(level + 1),
                json_escape(&key),
                val,
                comma
            ));
        }
        if !kids.is_empty() {
            out.push_str(&format!("{}\"children\": [\n", ind(level + 1)));
            json_new(lines, &kids, o, level + 2, is_tree, out);
            out.push_str(&format!("{}]\n", ind(level + 1)));
        }
        out.push_str(&ind(level));
        if n + 1 < ids.len() {
            out.push_str("},{\n");
        } else {
            out.push_str("}\n");
        }
    }
}

/// util-linux 2.30–2.36: one object per line (2.33+: typed values without a
/// space after the colon; before: every value a string). (read from the source; not run)
fn json_old(
    lines: &[Line],
    ids: &[usize],
    o: &Options,
    level: usize,
    is_tree: bool,
    out: &mut String,
) {
    let v = o.version;
    let ind = " ".repeat(3 * level);
    for (n, &i) in ids.iter().enumerate() {
        let l = &lines[i];
        let kids: Vec<usize> = if is_tree {
            sorted_children(lines, i)
        } else {
            Vec::new()
        };
        let mut parts = Vec::new();
        for &c in &o.columns {
            let key = c.info().header.to_ascii_lowercase();
            let raw = match c {
                Column::MajMin => format!("{}:{}", l.dev.major, l.dev.minor),
                _ => cell(l.dev, l.parent_dev, c, o),
            };
            let val = if raw.is_empty() {
                "null".to_string()
            } else {
                match (v, c.info().json) {
                    (UtilLinux::V2_34, JsonType::Bool) => (raw != "0").to_string(),
                    (UtilLinux::V2_34, JsonType::Size) if o.bytes => raw,
                    _ => format!("\"{}\"", json_escape(&raw)),
                }
            };
            parts.push(if v == UtilLinux::V2_34 {
                format!("\"{key}\":{val}")
            } else {
                format!("\"{key}\": {val}")
            });
        }
        out.push_str(&ind);
        out.push('{');
        out.push_str(&parts.join(", "));
        if kids.is_empty() {
            out.push('}');
        } else {
            out.push_str(",\n");
            out.push_str(&format!("{ind}   \"children\": [\n"));
            json_old(lines, &kids, o, level + 2, is_tree, out);
            out.push_str(&format!("{ind}   ]\n{ind}}}"));
        }
        out.push_str(if n + 1 < ids.len() { ",\n" } else { "\n" });
    }
}
