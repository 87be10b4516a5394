//! lsblk's aligned table: widths as libsmartcols computes them when stdout
//! is not a terminal, alignment, tree art in NAME and the continuation
//! lines of multi-valued cells.

use super::Options;
use super::columns::{Column, cell};
use super::tree::{Line, ancestors_art, art, name_prefix};

/// Display width (box-drawing characters are one column each).
fn width(s: &str) -> usize {
    s.chars().count()
}

pub(super) fn render_table(
    lines: &[Line],
    order: &[(usize, usize)],
    o: &Options,
    is_tree: bool,
) -> String {
    let ncol = o.columns.len();
    let tree_idx = if is_tree {
        o.columns.iter().position(|&c| c == Column::Name)
    } else {
        None
    };
    let a = art(o);
    // Cells of every row: (chunks per column, tree prefix).
    let rows: Vec<(Vec<Vec<String>>, String)> = order
        .iter()
        .map(|&(i, _)| {
            let l = &lines[i];
            let cells = o
                .columns
                .iter()
                .map(|&c| {
                    let s = cell(l.dev, l.parent_dev, c, o);
                    if c == Column::Mountpoints {
                        s.split('\n').map(str::to_string).collect()
                    } else {
                        vec![s]
                    }
                })
                .collect();
            let prefix = if tree_idx.is_some() {
                name_prefix(lines, i, &a)
            } else {
                String::new()
            };
            (cells, prefix)
        })
        .collect();
    let mut widths = vec![0usize; ncol];
    for (ci, &c) in o.columns.iter().enumerate() {
        let info = c.info();
        let hdr = width(info.header);
        let data = rows
            .iter()
            .map(|(cells, prefix)| {
                let extra = if Some(ci) == tree_idx {
                    width(prefix)
                } else {
                    0
                };
                cells[ci].iter().map(|s| width(s)).max().unwrap_or(0) + extra
            })
            .max()
            .unwrap_or(0);
        // libsmartcols count_column_width() when not on a terminal.
        widths[ci] = if data < hdr {
            hdr
        } else if info.hint >= 1.0 && (data as f64) < info.hint && (hdr as f64) < info.hint {
            info.hint as usize
        } else {
            data
        };
    }
    let mut out = String::new();
    let push_cell = |s: &mut String, ci: usize, text: &str| {
        let c = o.columns[ci];
        let w = widths[ci];
        let pad = w.saturating_sub(width(text));
        let last = ci + 1 == ncol;
        if c.info().right {
            if !text.is_empty() {
                s.push_str(&" ".repeat(pad));
                s.push_str(text);
            } else if !last {
                s.push_str(&" ".repeat(w));
            }
        } else {
            s.push_str(text);
            if !last {
                s.push_str(&" ".repeat(pad));
            }
        }
        if !last {
            s.push(' ');
        }
    };
    if !o.noheadings {
        let mut s = String::new();
        for (ci, c) in o.columns.iter().enumerate() {
            push_cell(&mut s, ci, c.info().header);
        }
        out.push_str(&s);
        out.push('\n');
    }
    for (ri, (cells, prefix)) in rows.iter().enumerate() {
        let nlines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for ln in 0..nlines {
            let mut s = String::new();
            for (ci, cell) in cells.iter().enumerate() {
                let chunk = cell.get(ln);
                if ln == 0 {
                    let v = chunk.map(String::as_str).unwrap_or("");
                    if Some(ci) == tree_idx {
                        push_cell(&mut s, ci, &format!("{prefix}{v}"));
                    } else {
                        push_cell(&mut s, ci, v);
                    }
                } else if let Some(v) = chunk {
                    push_cell(&mut s, ci, v);
                } else if Some(ci) == tree_idx {
                    // print_empty_cell(): the line's own tree art, and a
                    // vertical when it has children below.
                    let i = order[ri].0;
                    let mut t = ancestors_art(lines, i, &a);
                    if !lines[i].children.is_empty() {
                        t.push_str(a.vert);
                    }
                    push_cell(&mut s, ci, &t);
                } else {
                    push_cell(&mut s, ci, "");
                }
            }
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}
