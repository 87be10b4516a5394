//! df's table: the cells of each row, the `--total` row, and the layout
//! (minimum widths, text left and numbers right, no trailing blanks).

use super::fields::{Field, header};
use super::sizes::{Values, percent};
use super::{Options, Row};
use crate::guest::human;

fn cells(
    source: &str,
    fstype: &str,
    target: &str,
    file: &str,
    v: Option<&Values>,
    o: &Options,
) -> Vec<String> {
    use Field::*;
    o.fields
        .iter()
        .map(|f| match (f, v) {
            (Source, _) => source.to_string(),
            (Fstype, _) => fstype.to_string(),
            (File, _) => file.to_string(),
            (Target, _) => target.to_string(),
            (_, None) => "-".to_string(),
            (Itotal, Some(v)) => human::human_readable(v.files, o.human_opts, 1, 1),
            (Iused, Some(v)) => human::human_readable(v.iused, o.human_opts, 1, 1),
            (Iavail, Some(v)) => human::human_readable(v.ifree, o.human_opts, 1, 1),
            (Ipcent, Some(v)) => percent(u128::from(v.iused), u128::from(v.ifree)),
            (Size, Some(v)) => human::human_readable(v.blocks, o.human_opts, v.unit, o.block_size),
            (Used, Some(v)) => human::human_readable(v.bused, o.human_opts, v.unit, o.block_size),
            (Avail, Some(v)) => human::human_readable(v.bavail, o.human_opts, v.unit, o.block_size),
            (Pcent, Some(v)) => percent(u128::from(v.bused), u128::from(v.bavail)),
        })
        .collect()
}

/// Renders df's table for `rows`.
pub fn render(rows: &[Row], o: &Options) -> String {
    let mut table: Vec<Vec<String>> = vec![o.fields.iter().map(|&f| header(f, o)).collect()];
    // --total sums bytes (df.c add_to_grand_total) and prints them in
    // units of 1 byte.
    let (mut tb, mut tbfree, mut tbavail, mut tfiles, mut tffree) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in rows {
        let v = r.stat.map(|s| Values {
            unit: s.frsize,
            blocks: s.blocks,
            bused: s.blocks.saturating_sub(s.bfree),
            bavail: s.bavail,
            files: s.files,
            iused: s.files.saturating_sub(s.ffree),
            ifree: s.ffree,
        });
        if let Some(s) = r.stat {
            tb = tb.wrapping_add(s.frsize.wrapping_mul(s.blocks));
            tbfree = tbfree.wrapping_add(s.frsize.wrapping_mul(s.bfree));
            tbavail = tbavail.wrapping_add(s.frsize.wrapping_mul(s.bavail));
            tfiles = tfiles.wrapping_add(s.files);
            tffree = tffree.wrapping_add(s.ffree);
        }
        table.push(cells(
            &r.source,
            &r.fstype,
            &r.target,
            &r.file,
            v.as_ref(),
            o,
        ));
    }
    if o.total {
        let v = Values {
            unit: 1,
            blocks: tb,
            bused: tb.saturating_sub(tbfree),
            bavail: tbavail,
            files: tfiles,
            iused: tfiles.saturating_sub(tffree),
            ifree: tffree,
        };
        let target = if o.fields.contains(&Field::Source) {
            "-"
        } else {
            "total"
        };
        table.push(cells("total", "-", target, "-", Some(&v), o));
    }
    let widths: Vec<usize> = o
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(f.min_width())
        })
        .collect();
    let mut out = String::new();
    for r in &table {
        let mut line = String::new();
        for (i, f) in o.fields.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let pad = widths[i].saturating_sub(r[i].chars().count());
            let last = i + 1 == o.fields.len();
            if f.left() {
                line.push_str(&r[i]);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(&r[i]);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
