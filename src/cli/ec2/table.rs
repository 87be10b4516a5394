//! The AWS CLI's `--output table` (awscli's `TableFormatter` over its
//! `MultiTable`): the response walked into titled sections, then drawn
//! with `-`, `+` and `|` to the width of the widest section.
//!
//! - The walk: an object's scalar members become one row under sorted
//!   headers (a single scalar member a `key | value` row without headers);
//!   its lists and objects become nested sections titled with their key,
//!   one level deeper, in sorted order. A list of objects is one section
//!   with the union of their scalar keys as headers (a missing one is an
//!   empty cell), repeated per element when the elements have nested
//!   members. A list of scalars is a one-column section; lists of scalars
//!   inside a list are rows. Empty values (`[]`, `{}`, `""`, `0`, false,
//!   null) are left out. Cells are Python's `str()` of the value.
//! - The drawing: each section is as wide as its columns (content + 4) and
//!   borders, or its title; the table is as wide as the widest section and
//!   each section's columns are scaled to fill it (Python's `round`, ties
//!   to even, then adjusted one column at a time). Nested sections are
//!   framed by one `|` per level on both sides. When the table is wider
//!   than the terminal (80 columns when stdout is not one), sections of a
//!   single row are turned into `header | value` rows first.
//! - Width is counted in columns: characters Python calls Wide, Fullwidth
//!   or Ambiguous count two (`eaw.rs`).
//! - Colour (`--color on`, or `auto` on a terminal): cells bright blue,
//!   the frame's `|` dim yellow, and every write followed by a reset, as
//!   colorama's auto-reset stream does.

use super::eaw::width;
use super::text::py_str;
use ebsim::ec2::wire::json::J;

const RESET: &str = "\x1b[0m";

/// One section: a title, optional headers, rows.
#[derive(Debug, Default)]
struct Section {
    /// None: a section opened without a title (drawn without one, but
    /// measured as Python measures `str(None)`).
    title: Option<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    indent: usize,
    num_cols: Option<usize>,
    max_widths: Vec<usize>,
}

impl Section {
    fn update_max_widths(&mut self, row: &[String]) -> Result<(), String> {
        if self.max_widths.is_empty() {
            self.max_widths = row.iter().map(|s| width(s)).collect();
            return Ok(());
        }
        for (i, el) in row.iter().enumerate() {
            let w = self
                .max_widths
                .get_mut(i)
                .ok_or_else(|| "list index out of range".to_string())?;
            *w = (*w).max(width(el));
        }
        Ok(())
    }

    fn add_header(&mut self, headers: Vec<String>) -> Result<(), String> {
        self.update_max_widths(&headers)?;
        if self.num_cols.is_none() {
            self.num_cols = Some(headers.len());
        }
        self.headers = headers;
        Ok(())
    }

    fn add_row(&mut self, row: Vec<String>) -> Result<(), String> {
        let n = *self.num_cols.get_or_insert(row.len());
        if row.len() != n {
            return Err(format!(
                "Row should have {n} elements, instead it has {}",
                row.len()
            ));
        }
        self.update_max_widths(&row)?;
        self.rows.push(row);
        Ok(())
    }

    fn title_width(&self) -> usize {
        self.title.as_deref().map_or(4, width)
    }

    /// The columns' widths with `padding` each, scaled to sum to `max`.
    fn column_widths(&self, padding: usize, max: Option<usize>) -> Vec<usize> {
        let unscaled: Vec<usize> = self.max_widths.iter().map(|w| w + padding).collect();
        let Some(max) = max else { return unscaled };
        let sum: usize = unscaled.iter().sum();
        if unscaled.is_empty() || sum == 0 {
            return unscaled;
        }
        let factor = max as f64 / sum as f64;
        let mut scaled: Vec<i64> = unscaled
            .iter()
            .map(|&w| (factor * w as f64).round_ties_even() as i64)
            .collect();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut off_by: i64 = scaled.iter().sum::<i64>() - max;
        while off_by != 0 {
            let n = scaled.len();
            for k in 0..n {
                let i = if off_by < 0 { n - 1 - k } else { k };
                if off_by > 0 {
                    scaled[i] -= 1;
                    off_by -= 1;
                } else {
                    scaled[i] += 1;
                    off_by += 1;
                }
                if off_by == 0 {
                    break;
                }
            }
        }
        scaled
            .into_iter()
            .map(|w| usize::try_from(w).unwrap_or(0))
            .collect()
    }

    fn total_width(&self) -> usize {
        let cols: usize = self.column_widths(0, None).iter().map(|w| w + 4).sum();
        let total = cols + 2 + 2 * self.indent;
        (self.title_width() + 2 + 2 * self.indent).max(total)
    }
}

/// The sections of one response, and how to draw them.
struct MultiTable {
    sections: Vec<Section>,
}

impl MultiTable {
    fn current(&mut self) -> Result<&mut Section, String> {
        self.sections
            .last_mut()
            .ok_or_else(|| "'NoneType' object has no attribute 'add_row'".to_string())
    }

    fn new_section(&mut self, title: Option<&str>, indent: usize) {
        self.sections.push(Section {
            title: title.map(str::to_string),
            indent,
            ..Section::default()
        });
    }
}

fn is_scalar(j: &J) -> bool {
    !matches!(j, J::Arr(_) | J::Obj(_))
}

fn is_empty(j: &J) -> bool {
    match j {
        J::Null => true,
        J::Bool(b) => !b,
        J::Int(n) => *n == 0,
        J::Float(f) => *f == 0.0,
        J::Str(s) => s.is_empty(),
        J::Arr(a) => a.is_empty(),
        J::Obj(o) => o.is_empty(),
    }
}

/// An object's scalar keys and the others, each sorted.
fn group_keys(o: &[(String, J)]) -> (Vec<String>, Vec<String>) {
    let mut headers = Vec::new();
    let mut more = Vec::new();
    for (k, v) in o {
        if is_scalar(v) {
            headers.push(k.clone());
        } else {
            more.push(k.clone());
        }
    }
    headers.sort();
    more.sort();
    (headers, more)
}

fn get<'a>(o: &'a [(String, J)], k: &str) -> Option<&'a J> {
    o.iter().rev().find(|(kk, _)| kk == k).map(|(_, v)| v)
}

fn not_a_dict(j: &J) -> String {
    match j {
        J::Str(_) => "string indices must be integers".to_string(),
        J::Arr(_) => "list indices must be integers or slices, not str".to_string(),
        _ => "argument of type is not iterable".to_string(),
    }
}

/// Builds the sections of `current`; false when it is empty (nothing
/// drawn).
fn build(
    t: &mut MultiTable,
    title: Option<&str>,
    current: &J,
    indent: usize,
) -> Result<bool, String> {
    if is_empty(current) {
        return Ok(false);
    }
    if title.is_some() {
        t.new_section(title, indent);
    }
    match current {
        J::Arr(items) => {
            if let Some(J::Obj(_)) = items.first() {
                sub_table_from_list(t, items, indent, title)?;
            } else {
                for item in items {
                    if is_scalar(item) {
                        t.current()?.add_row(vec![py_str(item)])?;
                    } else {
                        match item {
                            J::Obj(o) => {
                                let keys = o.iter().map(|(k, _)| k.clone()).collect();
                                t.current()?.add_row(keys)?;
                            }
                            J::Arr(a) if a.iter().all(is_scalar) => {
                                t.current()?.add_row(a.iter().map(py_str).collect())?;
                            }
                            other => {
                                build(t, None, other, 0)?;
                            }
                        }
                    }
                }
            }
        }
        J::Obj(o) => sub_table_from_dict(t, o, indent)?,
        _ => {}
    }
    Ok(true)
}

fn sub_table_from_dict(t: &mut MultiTable, o: &[(String, J)], indent: usize) -> Result<(), String> {
    let (headers, more) = group_keys(o);
    if headers.len() == 1 {
        let v = get(o, &headers[0]).map(py_str).unwrap_or_default();
        t.current()?.add_row(vec![headers[0].clone(), v])?;
    } else if !headers.is_empty() {
        let row = headers
            .iter()
            .map(|k| get(o, k).map(py_str).unwrap_or_default())
            .collect();
        let s = t.current()?;
        s.add_header(headers)?;
        s.add_row(row)?;
    }
    for k in &more {
        if let Some(v) = get(o, k) {
            build(t, Some(k), v, indent + 1)?;
        }
    }
    Ok(())
}

fn sub_table_from_list(
    t: &mut MultiTable,
    items: &[J],
    indent: usize,
    title: Option<&str>,
) -> Result<(), String> {
    let mut headers: Vec<String> = Vec::new();
    let mut more: Vec<String> = Vec::new();
    for item in items {
        let J::Obj(o) = item else {
            return Err(not_a_dict(item));
        };
        let (h, m) = group_keys(o);
        headers.extend(h);
        more.extend(m);
    }
    headers.sort();
    headers.dedup();
    more.sort();
    more.dedup();
    t.current()?.add_header(headers.clone())?;
    for (n, item) in items.iter().enumerate() {
        let J::Obj(o) = item else {
            return Err(not_a_dict(item));
        };
        if n > 0 && !more.is_empty() {
            t.new_section(title, indent);
            t.current()?.add_header(headers.clone())?;
        }
        let row = headers
            .iter()
            .map(|h| get(o, h).map(py_str).unwrap_or_default())
            .collect();
        t.current()?.add_row(row)?;
        for k in &more {
            if let Some(v) = get(o, k) {
                build(t, Some(k), v, indent + 1)?;
            }
        }
    }
    Ok(())
}

/// The output stream: with colour, every write is followed by a reset.
struct Stream {
    out: String,
    color: bool,
}

impl Stream {
    fn write(&mut self, s: &str) {
        self.out.push_str(s);
        if self.color {
            self.out.push_str(RESET);
        }
    }

    /// A line of a section `indent` levels deep: the frame on both sides.
    fn line(&mut self, indent: usize, text: &str) {
        let bar = if self.color {
            format!("\x1b[2m\x1b[33m|{RESET}")
        } else {
            "|".to_string()
        };
        let frame = bar.repeat(indent);
        self.write(&frame);
        self.write(text);
        self.write(&frame);
        self.write("\n");
    }
}

fn spaces(n: i64) -> String {
    " ".repeat(usize::try_from(n).unwrap_or(0))
}

fn center(text: &str, text_len: usize, length: usize, left: &str, right: &str) -> String {
    let (length, tl) = (length as i64, text_len as i64);
    let start = length / 2 - tl / 2 - 1;
    let so_far = width(left) as i64 + start + tl;
    let right_spaces = length - width(right) as i64 - so_far;
    format!(
        "{left}{}{text}{}{right}",
        spaces(start),
        spaces(right_spaces)
    )
}

fn align_left(text: &str, text_len: usize, length: usize, left: &str, right: &str) -> String {
    let (length, tl) = (length as i64, text_len as i64);
    let computed = tl + 2 + width(left) as i64 + width(right) as i64;
    let padding = if length - computed >= 0 { 2 } else { 0 };
    let so_far = left.chars().count() as i64 + padding + tl;
    let fill = length - so_far - right.chars().count() as i64;
    format!("{left}{}{text}{}{right}", spaces(padding), spaces(fill))
}

fn line_break(widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            s.push_str(&format!("+{}+", "-".repeat(w.saturating_sub(2))));
        } else {
            s.push_str(&format!("{}+", "-".repeat(w.saturating_sub(1))));
        }
    }
    s
}

fn render_section(s: &Section, max_width: usize, st: &mut Stream) {
    let w = max_width.saturating_sub(s.indent * 2);
    if let Some(title) = s.title.as_deref().filter(|t| !t.is_empty()) {
        st.line(s.indent, &center(title, width(title), w, "|", "|"));
        if s.headers.is_empty() && s.rows.is_empty() {
            st.line(s.indent, &format!("+{}+", "-".repeat(w.saturating_sub(2))));
        }
    }
    if !s.headers.is_empty() {
        let widths = s.column_widths(4, Some(w));
        let mut cur = String::new();
        for (i, (cw, h)) in widths.iter().zip(&s.headers).enumerate() {
            cur.push_str(&center(
                h,
                width(h),
                *cw,
                if i == 0 { "|" } else { "" },
                "|",
            ));
        }
        st.line(s.indent, &line_break(&widths));
        st.line(s.indent, &cur);
    }
    if s.rows.is_empty() {
        return;
    }
    let widths = s.column_widths(4, Some(w));
    if widths.is_empty() {
        return;
    }
    st.line(s.indent, &line_break(&widths));
    for row in &s.rows {
        let mut cur = String::new();
        for (i, (cw, el)) in widths.iter().zip(row).enumerate() {
            let styled = if st.color {
                format!("\x1b[1m\x1b[34m{el}{RESET}")
            } else {
                el.clone()
            };
            cur.push_str(&align_left(
                &styled,
                width(el),
                *cw,
                if i == 0 { "|" } else { "" },
                "|",
            ));
        }
        st.line(s.indent, &cur);
    }
    st.line(s.indent, &line_break(&widths));
}

/// Sections of one row with headers become `header | value` rows.
fn to_vertical(sections: &mut [Section]) -> Result<(), String> {
    for s in sections.iter_mut() {
        if s.rows.len() == 1 && !s.headers.is_empty() {
            let mut n = Section {
                title: s.title.take(),
                indent: s.indent,
                ..Section::default()
            };
            for (h, e) in s.headers.iter().zip(&s.rows[0]) {
                n.add_row(vec![h.clone(), e.clone()])?;
            }
            *s = n;
        }
    }
    Ok(())
}

/// `--output table` of `doc` for the operation `title`
/// (`DescribeVolumes`), for a terminal `term_width` columns wide.
/// Nothing (empty string) for an empty result; an error in the words of
/// the Python exception the CLI would print.
pub fn to_table(title: &str, doc: &J, term_width: usize, color: bool) -> Result<String, String> {
    let mut t = MultiTable {
        sections: Vec::new(),
    };
    if !build(&mut t, Some(title), doc, 0)? {
        return Ok(String::new());
    }
    let max = |s: &[Section]| s.iter().map(Section::total_width).max().unwrap_or(0);
    let mut max_width = max(&t.sections);
    if max_width > term_width {
        to_vertical(&mut t.sections)?;
        max_width = max(&t.sections);
    }
    let mut st = Stream {
        out: String::new(),
        color,
    };
    st.write(&format!("{}\n", "-".repeat(max_width)));
    for s in &t.sections {
        render_section(s, max_width, &mut st);
    }
    Ok(st.out)
}

/// The terminal's width in columns when stdout is one, else 80 (what the
/// CLI assumes).
pub fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .map(|w| usize::from(w.ws_col))
        .unwrap_or(80)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ebsim::ec2::wire::json::Obj;

    #[test]
    fn a_small_table() {
        let doc = Obj::new()
            .put(
                "Volumes",
                J::Arr(vec![
                    Obj::new().put("Size", 8u64).put("State", "in-use").done(),
                ]),
            )
            .done();
        let t = to_table("DescribeVolumes", &doc, 80, false).unwrap();
        assert_eq!(
            t,
            "----------------------\n\
             |   DescribeVolumes  |\n\
             +--------------------+\n\
             ||      Volumes     ||\n\
             |+-------+----------+|\n\
             || Size  |  State   ||\n\
             |+-------+----------+|\n\
             ||  8    |  in-use  ||\n\
             |+-------+----------+|\n"
        );
        assert_eq!(to_table("X", &J::Arr(Vec::new()), 80, false).unwrap(), "");
    }
}
