//! lsblk's lines (one per device per place it is shown), their print
//! order, and libsmartcols' tree art.

use super::{Device, Options};

/// One output line (libsmartcols' `libscols_line`).
pub(super) struct Line<'a> {
    pub(super) dev: &'a Device,
    /// The device whose data PKNAME shows (the disk of a partition, also
    /// when the partition is shown on its own).
    pub(super) parent_dev: Option<&'a Device>,
    /// Index of the parent line, in tree output.
    pub(super) parent: Option<usize>,
    pub(super) children: Vec<usize>,
}

/// Adds `dev`'s line and, unless `-d`, its partitions' lines. In a flat
/// list (`-l`), a device already shown is not shown again.
pub(super) fn add_line<'a>(
    lines: &mut Vec<Line<'a>>,
    printed: &mut Vec<u64>,
    dev: &'a Device,
    parent_dev: Option<&'a Device>,
    parent: Option<usize>,
    o: &Options,
) -> Option<usize> {
    if !o.tree && !o.tree_order() && printed.contains(&dev.devno()) {
        return None;
    }
    printed.push(dev.devno());
    let idx = lines.len();
    lines.push(Line {
        dev,
        parent_dev,
        parent,
        children: Vec::new(),
    });
    if let Some(p) = parent {
        lines[p].children.push(idx);
    }
    if !o.nodeps {
        for c in &dev.children {
            add_line(lines, printed, c, Some(dev), Some(idx), o);
        }
    }
    Some(idx)
}

/// Pre-order walk with each line's children sorted by MAJ:MIN.
pub(super) fn walk(lines: &[Line], i: usize, depth: usize, out: &mut Vec<(usize, usize)>) {
    out.push((i, depth));
    let mut kids = lines[i].children.clone();
    kids.sort_by_key(|k| lines[*k].dev.devno());
    for k in kids {
        walk(lines, k, depth + 1, out);
    }
}

pub(super) fn sorted_children(lines: &[Line], i: usize) -> Vec<usize> {
    let mut kids = lines[i].children.clone();
    kids.sort_by_key(|k| lines[*k].dev.devno());
    kids
}

fn is_last_child(lines: &[Line], i: usize) -> bool {
    match lines[i].parent {
        None => false,
        Some(p) => sorted_children(lines, p).last() == Some(&i),
    }
}

pub(super) struct Art {
    pub(super) vert: &'static str,
    branch: &'static str,
    right: &'static str,
}

pub(super) fn art(o: &Options) -> Art {
    if o.ascii {
        Art {
            vert: "| ",
            branch: "|-",
            right: "`-",
        }
    } else {
        Art {
            vert: "\u{2502} ",
            branch: "\u{251c}\u{2500}",
            right: "\u{2514}\u{2500}",
        }
    }
}

/// libsmartcols' `tree_ascii_art_to_buffer(ln)`: for each ancestor-or-self
/// below the root, two blanks if it is a last child, else the vertical.
pub(super) fn ancestors_art(lines: &[Line], i: usize, a: &Art) -> String {
    match lines[i].parent {
        None => String::new(),
        Some(p) => {
            let mut s = ancestors_art(lines, p, a);
            s.push_str(if is_last_child(lines, i) {
                "  "
            } else {
                a.vert
            });
            s
        }
    }
}

/// The tree prefix of a line's NAME cell.
pub(super) fn name_prefix(lines: &[Line], i: usize, a: &Art) -> String {
    match lines[i].parent {
        None => String::new(),
        Some(p) => {
            let mut s = ancestors_art(lines, p, a);
            s.push_str(if is_last_child(lines, i) {
                a.right
            } else {
                a.branch
            });
            s
        }
    }
}
