//! The AWS CLI v2's `--output yaml` and `yaml-stream`: the response
//! dumped by ruamel.yaml's safe dumper in block style (what awscli v2's
//! YAML dumper sets up), over the v2 CLI's values (timestamps already ISO
//! strings).
//!
//! The emitter's rules, as ruamel.yaml 0.17 applies them with YAML 1.2:
//! - mapping keys sorted (the safe representer sorts plain dicts);
//!   sequences in a mapping are not indented (`Volumes:` then `- ...`),
//!   a mapping in a sequence starts on the `- ` line; empty lists and
//!   mappings are `[]` and `{}`; null, booleans and numbers as YAML 1.2
//!   writes them (`null`, `true`, `3000`, `1.5`).
//! - a string is written plain unless a plain scalar would read back as
//!   something else (a YAML 1.2 bool, int, float, null, timestamp, `<<`,
//!   `=`) or its characters forbid it (leading or trailing space, line
//!   breaks, indicators such as `: `, ` #`, a leading `-  `, `[`, `&`,
//!   `*`, `!`, `'`, `"`, `%`, `@`, `` ` ``, non-printable characters);
//!   then single-quoted (`'` doubled), or double-quoted with escapes when
//!   it holds `'` or a line break, or non-printable characters.
//! - long plain and quoted scalars are folded at a single space once the
//!   line is past 80 columns, continuing two columns deeper than their
//!   container (double-quoted ones with a trailing `\`).
//! - a plain scalar at the document's root is followed by `...`.

use ebsim::ec2::wire::json::{J, py_float};

const BEST_WIDTH: usize = 80;

/// Characters after which a plain scalar sees whitespace.
fn is_ws(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    )
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Printable for the emitter (with unicode allowed).
fn printable(c: char) -> bool {
    c == '\n'
        || ('\x20'..='\x7e').contains(&c)
        || ((c == '\u{85}'
            || ('\u{a0}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || ('\u{10000}'..='\u{10ffff}').contains(&c))
            && c != '\u{feff}')
}

#[derive(Debug, Clone, Copy)]
struct Analysis {
    empty: bool,
    multiline: bool,
    block_plain: bool,
    single_quoted: bool,
}

fn analyze(s: &str) -> Analysis {
    let ch: Vec<char> = s.chars().collect();
    if ch.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            block_plain: true,
            single_quoted: true,
        };
    }
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut lead_space, mut lead_break, mut trail_space, mut trail_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let mut preceded_ws = true;
    let mut followed_ws = ch.len() == 1 || is_ws(ch.get(1).copied());
    let (mut prev_space, mut prev_break) = (false, false);
    let n = ch.len();
    for (i, &c) in ch.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_ind = true;
            }
            if (c == '?' || c == ':') && followed_ws {
                block_ind = true;
            }
            if c == '-' && followed_ws {
                block_ind = true;
            }
        } else {
            if c == ':' && followed_ws {
                block_ind = true;
            }
            if c == '#' && preceded_ws {
                block_ind = true;
            }
        }
        if is_break(c) {
            line_breaks = true;
        }
        if !printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                lead_space = true;
            }
            if i == n - 1 {
                trail_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                lead_break = true;
            }
            if i == n - 1 {
                trail_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_ws(Some(c));
        followed_ws = i + 2 >= n || is_ws(ch.get(i + 2).copied());
    }
    let mut block_plain = true;
    let mut single_quoted = true;
    if lead_space || lead_break || trail_space || trail_break {
        block_plain = false;
    }
    if break_space || special || space_break {
        block_plain = false;
        single_quoted = false;
    }
    if line_breaks || block_ind {
        block_plain = false;
    }
    Analysis {
        empty: false,
        multiline: line_breaks,
        block_plain,
        single_quoted,
    }
}

fn all(s: &[char], f: impl Fn(char) -> bool) -> bool {
    s.iter().all(|&c| f(c))
}

fn digits(s: &[char]) -> bool {
    !s.is_empty() && all(s, |c| c.is_ascii_digit())
}

fn sign(s: &[char]) -> &[char] {
    match s.first() {
        Some('-' | '+') => &s[1..],
        _ => s,
    }
}

/// `[0-9][0-9_]*`, the rest.
fn int_part(s: &[char]) -> Option<&[char]> {
    if !s.first()?.is_ascii_digit() {
        return None;
    }
    let n = s
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == '_')
        .count();
    Some(&s[n..])
}

/// `[eE][-+]?[0-9]+` exactly (`need_sign`: the sign is required).
fn exponent(s: &[char], need_sign: bool) -> bool {
    match s.first() {
        Some('e' | 'E') => {
            let r = &s[1..];
            let r = match r.first() {
                Some('-' | '+') => &r[1..],
                _ if need_sign => return false,
                _ => r,
            };
            digits(r)
        }
        _ => false,
    }
}

fn is_float(s: &[char]) -> bool {
    let t = sign(s);
    if let Some(r) = int_part(t) {
        if let Some(r) = r.strip_prefix(&['.']) {
            let n = r
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == '_')
                .count();
            let r = &r[n..];
            return r.is_empty() || exponent(r, false);
        }
        return exponent(r, false);
    }
    if let Some(r) = t.strip_prefix(&['.']) {
        let word: String = r.iter().collect();
        if matches!(word.as_str(), "inf" | "Inf" | "INF") {
            return true;
        }
        let n = r
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == '_')
            .count();
        if n > 0 {
            let rest = &r[n..];
            return rest.is_empty() || exponent(rest, true);
        }
    }
    let word: String = s.iter().collect();
    matches!(word.as_str(), ".nan" | ".NaN" | ".NAN")
}

fn is_int(s: &[char]) -> bool {
    let t = sign(s);
    let rest = |p: &[char], f: &dyn Fn(char) -> bool| -> bool {
        t.starts_with(p) && t.len() > p.len() && all(&t[p.len()..], f)
    };
    rest(&['0', 'b'], &|c| c == '0' || c == '1' || c == '_')
        || rest(&['0', 'o'], &|c| ('0'..='7').contains(&c) || c == '_')
        || rest(&['0'], &|c| ('0'..='7').contains(&c) || c == '_')
        || (!t.is_empty() && all(t, |c| c.is_ascii_digit() || c == '_'))
        || rest(&['0', 'x'], &|c| c.is_ascii_hexdigit() || c == '_')
}

fn is_timestamp(s: &[char]) -> bool {
    let d = |c: Option<&char>| c.is_some_and(char::is_ascii_digit);
    // YYYY-
    if !(s.len() >= 5 && s[..4].iter().all(char::is_ascii_digit) && s[4] == '-') {
        return false;
    }
    if s.len() == 10 && d(s.get(5)) && d(s.get(6)) && s[7] == '-' && d(s.get(8)) && d(s.get(9)) {
        return true;
    }
    let mut i = 5;
    let take_digits = |i: &mut usize, min: usize, max: usize| -> bool {
        let start = *i;
        while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start >= min
    };
    if !take_digits(&mut i, 1, 2) || s.get(i) != Some(&'-') {
        return false;
    }
    i += 1;
    if !take_digits(&mut i, 1, 2) {
        return false;
    }
    match s.get(i) {
        Some('T' | 't') => i += 1,
        Some(' ' | '\t') => {
            while matches!(s.get(i), Some(' ' | '\t')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if !take_digits(&mut i, 1, 2) || s.get(i) != Some(&':') {
        return false;
    }
    i += 1;
    if !take_digits(&mut i, 2, 2) || s.get(i) != Some(&':') {
        return false;
    }
    i += 1;
    if !take_digits(&mut i, 2, 2) {
        return false;
    }
    if s.get(i) == Some(&'.') {
        i += 1;
        while d(s.get(i)) {
            i += 1;
        }
    }
    if i == s.len() {
        return true;
    }
    while matches!(s.get(i), Some(' ' | '\t')) {
        i += 1;
    }
    match s.get(i) {
        Some('Z') => i + 1 == s.len(),
        Some('-' | '+') => {
            i += 1;
            if !take_digits(&mut i, 1, 2) {
                return false;
            }
            if i == s.len() {
                return true;
            }
            if s.get(i) != Some(&':') {
                return false;
            }
            i += 1;
            take_digits(&mut i, 2, 2) && i == s.len()
        }
        _ => false,
    }
}

/// Whether a plain scalar `s` would read back as a string (YAML 1.2's
/// implicit types as ruamel.yaml resolves them, by first character).
fn resolves_to_str(s: &str) -> bool {
    let c: Vec<char> = s.chars().collect();
    let first = c.first().copied().unwrap_or('\0');
    if c.is_empty() || matches!(s, "~" | "null" | "Null" | "NULL") {
        return false;
    }
    if "tTfF".contains(first) && matches!(s, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
    {
        return false;
    }
    if "-+0123456789.".contains(first) && is_float(&c) {
        return false;
    }
    if "-+0123456789".contains(first) && is_int(&c) {
        return false;
    }
    if first.is_ascii_digit() && is_timestamp(&c) {
        return false;
    }
    !(s == "<<" || s == "=")
}

/// The document being written: the text and the current column.
struct Out {
    s: String,
    column: usize,
    open_ended: bool,
}

impl Out {
    fn write(&mut self, t: &str) {
        self.s.push_str(t);
        match t.rfind('\n') {
            Some(i) => self.column = t[i + 1..].chars().count(),
            None => self.column += t.chars().count(),
        }
    }

    fn indent(&mut self, n: usize) {
        self.write("\n");
        self.write(&" ".repeat(n));
    }

    fn plain(&mut self, text: &str, cont: usize, split: bool) {
        let ch: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0usize, 0usize);
        let mut spaces = false;
        while end <= ch.len() {
            let c = ch.get(end).copied();
            if spaces {
                if c != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.indent(cont);
                    } else {
                        self.write(&ch[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if c.is_none_or(|c| c == ' ' || is_break(c)) {
                self.write(&ch[start..end].iter().collect::<String>());
                start = end;
            }
            if let Some(c) = c {
                spaces = c == ' ';
            }
            end += 1;
        }
    }

    fn single_quoted(&mut self, text: &str, cont: usize, split: bool) {
        self.write("'");
        let ch: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0usize, 0usize);
        let mut spaces = false;
        while end <= ch.len() {
            let c = ch.get(end).copied();
            if spaces {
                if c != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != ch.len()
                    {
                        self.indent(cont);
                    } else {
                        self.write(&ch[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if c.is_none_or(|c| c == ' ' || c == '\'') && start < end {
                self.write(&ch[start..end].iter().collect::<String>());
                start = end;
            }
            if c == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = c {
                spaces = c == ' ';
            }
            end += 1;
        }
        self.write("'");
    }

    fn double_quoted(&mut self, text: &str, cont: usize, split: bool) {
        self.write("\"");
        let ch: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0usize, 0usize);
        while end <= ch.len() {
            let c = ch.get(end).copied();
            let plain_ok = |c: char| {
                ('\x20'..='\x7e').contains(&c)
                    || ('\u{a0}'..='\u{d7ff}').contains(&c)
                    || ('\u{e000}'..='\u{fffd}').contains(&c)
            };
            let escape = match c {
                None => true,
                Some(c) => "\"\\\u{85}\u{2028}\u{2029}\u{feff}".contains(c) || !plain_ok(c),
            };
            if escape {
                if start < end {
                    self.write(&ch[start..end].iter().collect::<String>());
                    start = end;
                }
                if let Some(c) = c {
                    let e = match c {
                        '\0' => "\\0".to_string(),
                        '\x07' => "\\a".to_string(),
                        '\x08' => "\\b".to_string(),
                        '\t' => "\\t".to_string(),
                        '\n' => "\\n".to_string(),
                        '\x0b' => "\\v".to_string(),
                        '\x0c' => "\\f".to_string(),
                        '\r' => "\\r".to_string(),
                        '\x1b' => "\\e".to_string(),
                        '"' => "\\\"".to_string(),
                        '\\' => "\\\\".to_string(),
                        '\u{85}' => "\\N".to_string(),
                        '\u{a0}' => "\\_".to_string(),
                        '\u{2028}' => "\\L".to_string(),
                        '\u{2029}' => "\\P".to_string(),
                        c if u32::from(c) <= 0xff => format!("\\x{:02X}", u32::from(c)),
                        c if u32::from(c) <= 0xffff => format!("\\u{:04X}", u32::from(c)),
                        c => format!("\\U{:08X}", u32::from(c)),
                    };
                    self.write(&e);
                    start = end + 1;
                }
            }
            if end > 0
                && end + 1 < ch.len()
                && (c == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
                && split
            {
                let mut data: String = ch[start.min(end)..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.indent(cont);
                if ch.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
            end += 1;
        }
        self.write("\"");
    }

    /// A scalar; `cont`: the indent of continuation lines; `key`: a
    /// mapping key (never folded, never plain when empty or multiline).
    fn scalar(&mut self, j: &J, cont: usize, key: bool, root: bool) {
        let text = match j {
            J::Null => "null".to_string(),
            J::Bool(b) => b.to_string(),
            J::Int(n) => n.to_string(),
            J::Float(f) => float(*f),
            J::Str(s) => s.clone(),
            J::Arr(_) | J::Obj(_) => String::new(),
        };
        let J::Str(_) = j else {
            self.plain(&text, cont, !key);
            self.open_ended = root;
            return;
        };
        let a = analyze(&text);
        let split = !key;
        if resolves_to_str(&text) && !(key && (a.empty || a.multiline)) && a.block_plain {
            self.plain(&text, cont, split);
            self.open_ended = root;
        } else if text.contains('\'') || text.contains('\n') {
            self.double_quoted(&text, cont, split);
        } else if a.single_quoted && !(key && a.multiline) {
            self.single_quoted(&text, cont, split);
        } else {
            self.double_quoted(&text, cont, split);
        }
    }

    /// A value after `key:` or `-`: on the same line when a scalar or
    /// empty, else below.
    fn mapping(&mut self, kv: &[(String, J)], indent: usize, first_inline: bool) {
        let mut keys: Vec<&(String, J)> = kv.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        for (i, (k, v)) in keys.into_iter().enumerate() {
            if i > 0 || !first_inline {
                self.write(&" ".repeat(indent));
            }
            self.scalar(&J::Str(k.clone()), indent + 2, true, false);
            self.write(":");
            match v {
                J::Obj(o) if !o.is_empty() => {
                    self.write("\n");
                    self.mapping(o, indent + 2, false);
                }
                J::Arr(a) if !a.is_empty() => {
                    self.write("\n");
                    self.sequence(a, indent);
                }
                other => {
                    self.write(" ");
                    self.leaf(other, indent + 2, false);
                    self.write("\n");
                }
            }
        }
    }

    fn sequence(&mut self, items: &[J], indent: usize) {
        for item in items {
            self.write(&" ".repeat(indent));
            self.write("- ");
            match item {
                J::Obj(o) if !o.is_empty() => self.mapping(o, indent + 2, true),
                J::Arr(a) if !a.is_empty() => self.sequence_inline(a, indent + 2),
                other => {
                    self.leaf(other, indent + 2, false);
                    self.write("\n");
                }
            }
        }
    }

    /// A sequence whose first item follows a `- ` already written.
    fn sequence_inline(&mut self, items: &[J], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write(&" ".repeat(indent));
            }
            self.write("- ");
            match item {
                J::Obj(o) if !o.is_empty() => self.mapping(o, indent + 2, true),
                J::Arr(a) if !a.is_empty() => self.sequence_inline(a, indent + 2),
                other => {
                    self.leaf(other, indent + 2, false);
                    self.write("\n");
                }
            }
        }
    }

    /// A scalar or an empty collection.
    fn leaf(&mut self, j: &J, cont: usize, root: bool) {
        match j {
            J::Arr(_) => self.write("[]"),
            J::Obj(_) => self.write("{}"),
            other => self.scalar(other, cont, false, root),
        }
    }
}

/// ruamel.yaml's float: Python's repr, lower case, with `.0` before an
/// exponent that lacks a point; infinities and NaN as YAML writes them.
fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let v = py_float(f).to_lowercase();
    if !v.contains('.') && v.contains('e') {
        v.replacen('e', ".0e", 1)
    } else {
        v
    }
}

/// One YAML document of `doc`.
pub fn to_yaml(doc: &J) -> String {
    let mut o = Out {
        s: String::new(),
        column: 0,
        open_ended: false,
    };
    match doc {
        J::Obj(kv) if !kv.is_empty() => o.mapping(kv, 0, false),
        J::Arr(a) if !a.is_empty() => o.sequence(a, 0),
        other => {
            o.leaf(other, 2, true);
            o.write("\n");
        }
    }
    if o.open_ended {
        o.write("...\n");
    }
    o.s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebsim::ec2::wire::json::Obj;

    #[test]
    fn scalars_and_nesting() {
        let doc = Obj::new()
            .put(
                "Volumes",
                J::Arr(vec![
                    Obj::new()
                        .put("Size", 8u64)
                        .put("CreateTime", "2024-05-01T10:00:00+00:00")
                        .put("Tags", J::Arr(Vec::new()))
                        .put(
                            "Attachments",
                            J::Arr(vec![
                                Obj::new()
                                    .put("Device", "/dev/sdf")
                                    .put("DeleteOnTermination", false)
                                    .done(),
                            ]),
                        )
                        .put("n", "123")
                        .put("e", "")
                        .put("q", "it's")
                        .put("c", "a: b")
                        .done(),
                ]),
            )
            .done();
        assert_eq!(
            to_yaml(&doc),
            "Volumes:\n- Attachments:\n  - DeleteOnTermination: false\n    Device: /dev/sdf\n  CreateTime: '2024-05-01T10:00:00+00:00'\n  Size: 8\n  Tags: []\n  c: 'a: b'\n  e: ''\n  n: '123'\n  q: it's\n"
        );
        assert_eq!(to_yaml(&J::Str("vol-1".into())), "vol-1\n...\n");
        assert_eq!(to_yaml(&J::Null), "null\n...\n");
        assert_eq!(to_yaml(&J::Arr(Vec::new())), "[]\n");
        assert_eq!(
            to_yaml(&J::Arr(vec![
                J::Arr(vec![J::Int(1), J::Int(2)]),
                J::Arr(vec![J::Int(3)])
            ])),
            "- - 1\n  - 2\n- - 3\n"
        );
        assert!(!resolves_to_str("1.5e3"));
        assert!(!resolves_to_str("0o17"));
        assert!(!resolves_to_str("2024-05-01"));
        assert!(resolves_to_str("yes"));
        assert!(resolves_to_str("1.2.3"));
    }
}
