//! lsblk's `-r` (raw) and `-P` (KEY="value" pairs) output.

use super::Options;
use super::columns::cell;
use super::tree::Line;

/// libsmartcols' raw output (lsblk's and findmnt's `-r`) escapes blanks,
/// backslashes and unprintable bytes as `\xNN` (`fputs_nonblank`); bytes
/// above 0x7f count as unprintable.
pub fn raw_escape(s: &str) -> String {
    let mut o = String::new();
    for &b in s.as_bytes() {
        if b == b' ' || b == b'\t' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o
}

/// `-P` quotes values and escapes `"`, `\`, `` ` ``, `$` and unprintable
/// bytes as `\xNN` (`fputs_quoted`).
fn pairs_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for &b in s.as_bytes() {
        if matches!(b, b'"' | b'\\' | b'`' | b'$') || !(0x20..0x7f).contains(&b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o.push('"');
    o
}

pub(super) fn render_raw(lines: &[Line], order: &[(usize, usize)], o: &Options) -> String {
    let mut out = String::new();
    if !o.noheadings {
        let h: Vec<String> = o
            .columns
            .iter()
            .map(|c| raw_escape(c.info().header))
            .collect();
        out.push_str(&h.join(" "));
        out.push('\n');
    }
    for &(i, _) in order {
        let l = &lines[i];
        let v: Vec<String> = o
            .columns
            .iter()
            .map(|&c| raw_escape(&cell(l.dev, l.parent_dev, c, o)))
            .collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}

pub(super) fn render_pairs(lines: &[Line], order: &[(usize, usize)], o: &Options) -> String {
    let mut out = String::new();
    for &(i, _) in order {
        let l = &lines[i];
        let v: Vec<String> = o
            .columns
            .iter()
            .map(|&c| {
                format!(
                    "{}={}",
                    c.info().header,
                    pairs_quote(&cell(l.dev, l.parent_dev, c, o))
                )
            })
            .collect();
        out.push_str(&v.join(" "));
        out.push('\n');
    }
    out
}
