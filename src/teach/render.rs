//! The layers drawn to scale: in the terminal (ANSI colour when asked,
//! plain otherwise) and as SVG for slides. JSON is serde's rendering of
//! [`Layers`].

use super::layers::{DiskLayers, Layers, human};
use std::fmt::Write as _;

/// Width of a bar in terminal columns.
pub const BAR: usize = 50;

fn span(start: u64, end: u64, size: u64, width: usize) -> (usize, usize) {
    if size == 0 {
        return (0, 0);
    }
    let scale = |b: u64| -> usize {
        let v = u128::from(b.min(size)) * width as u128 / u128::from(size);
        usize::try_from(v).unwrap_or(width)
    };
    let (a, mut b) = (scale(start), scale(end));
    if end > start && b == a && a < width {
        b = a + 1; // a layer is never invisible
    }
    (a, b)
}

fn bar(start: u64, end: u64, size: u64, fill: char) -> String {
    let (a, b) = span(start, end, size, BAR);
    let mut s = String::with_capacity(BAR + 2);
    s.push('[');
    for i in 0..BAR {
        s.push(if i >= a && i < b { fill } else { ' ' });
    }
    s.push(']');
    s
}

/// ANSI colours of the layers.
const DISK: &str = "\x1b[34m";
const PART: &str = "\x1b[33m";
const FS: &str = "\x1b[32m";
const FREE: &str = "\x1b[2m";
const LIMIT: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

/// The terminal drawing (`colour`: ANSI escapes; `bytes`: exact byte
/// counts instead of GiB).
pub fn text(l: &Layers, colour: bool, bytes: bool) -> String {
    let c = |code: &'static str| if colour { code } else { "" };
    let sz = |b: u64| if bytes { format!("{b}") } else { human(b) };
    let mut o = String::new();
    for d in &l.disks {
        let _ = write!(o, "{}{}{}", c("\x1b[1m"), d.name, c(RESET));
        if let Some(v) = &d.volume_id {
            let _ = write!(o, " ({v})");
        }
        let _ = write!(o, "  {}", sz(d.size));
        if let Some(t) = &d.table {
            let _ = write!(o, ", {t} table");
        }
        if let Some(m) = &d.modification {
            let _ = write!(
                o,
                ", modification {} {}% ({} -> {})",
                m.state,
                m.progress,
                human(m.original_size),
                human(m.target_size)
            );
        }
        o.push('\n');
        let _ = writeln!(
            o,
            "  {:<8}{}{}{}  {}",
            "disk",
            c(DISK),
            bar(0, d.size, d.size, '='),
            c(RESET),
            sz(d.size)
        );
        let mut parts: Vec<_> = d.partitions.iter().collect();
        parts.sort_by_key(|p| p.start);
        for p in parts {
            let role = p
                .role
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {:<8}{}{}{}  {} .. {} ({}){role}",
                format!("part {}", p.number),
                c(PART),
                bar(p.start, p.end, d.size, '#'),
                c(RESET),
                sz(p.start),
                sz(p.end),
                sz(p.size)
            );
            if let Some(f) = &p.filesystem {
                fs_line(&mut o, f, p.start, d.size, colour, bytes);
            }
        }
        if let Some(f) = &d.filesystem {
            fs_line(&mut o, f, 0, d.size, colour, bytes);
        }
        if d.unallocated > 0 {
            let _ = writeln!(
                o,
                "  {:<8}{}{}{}  {} unallocated",
                "free",
                c(FREE),
                bar(d.size - d.unallocated, d.size, d.size, '.'),
                c(RESET),
                sz(d.unallocated)
            );
        }
        let _ = writeln!(o, "  {}=> {}{}", c(LIMIT), d.limit.sentence, c(RESET));
    }
    o
}

fn fs_line(
    o: &mut String,
    f: &super::layers::FsLayer,
    start: u64,
    disk: u64,
    colour: bool,
    bytes: bool,
) {
    let c = |code: &'static str| if colour { code } else { "" };
    let sz = |b: u64| if bytes { format!("{b}") } else { human(b) };
    let at = f
        .mountpoints
        .first()
        .map_or("not mounted".to_string(), |m| format!("on {m}"));
    let _ = writeln!(
        o,
        "  {:<8}{}{}{}  {} {at}, df: size {} used {} avail {}",
        f.kind,
        c(FS),
        bar(start, start.saturating_add(f.size), disk, '%'),
        c(RESET),
        sz(f.size),
        sz(f.df_size),
        sz(f.df_used),
        sz(f.df_avail)
    );
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(ch),
        }
    }
    o
}

/// Width of the SVG drawing area of a bar, in pixels.
const SVG_BAR: usize = 600;
const ROW: usize = 26;
const LEFT: usize = 90;

fn rect(o: &mut String, y: usize, start: u64, end: u64, size: u64, class: &str) {
    let (a, b) = span(start, end, size, SVG_BAR);
    let _ = writeln!(
        o,
        r#"<rect class="{class}" x="{}" y="{y}" width="{}" height="{}"/>"#,
        LEFT + a,
        b - a,
        ROW - 6
    );
}

fn label(o: &mut String, y: usize, left: &str, right: &str) {
    let _ = writeln!(
        o,
        r#"<text x="8" y="{}">{}</text><text x="{}" y="{}">{}</text>"#,
        y + 15,
        esc(left),
        LEFT + SVG_BAR + 10,
        y + 15,
        esc(right)
    );
}

fn svg_disk(o: &mut String, d: &DiskLayers, y: &mut usize) {
    let mut title = format!("{}  {}", d.name, human(d.size));
    if let Some(v) = &d.volume_id {
        title.push_str(&format!("  ({v})"));
    }
    if let Some(t) = &d.table {
        title.push_str(&format!("  {t}"));
    }
    if let Some(m) = &d.modification {
        title.push_str(&format!("  modification {} {}%", m.state, m.progress));
    }
    let _ = writeln!(
        o,
        r#"<text class="title" x="8" y="{}">{}</text>"#,
        *y + 16,
        esc(&title)
    );
    *y += ROW;
    rect(o, *y, 0, d.size, d.size, "disk");
    label(o, *y, "disk", &human(d.size));
    *y += ROW;
    let fs_row = |o: &mut String, y: &mut usize, f: &super::layers::FsLayer, start: u64| {
        rect(o, *y, start, start.saturating_add(f.size), d.size, "fs");
        let used = f.df_used.min(f.size);
        rect(o, *y, start, start.saturating_add(used), d.size, "used");
        let at = f.mountpoints.first().map_or("-".to_string(), Clone::clone);
        label(
            o,
            *y,
            &f.kind,
            &format!("{} {at} used {}", human(f.size), human(f.df_used)),
        );
        *y += ROW;
    };
    let mut parts: Vec<_> = d.partitions.iter().collect();
    parts.sort_by_key(|p| p.start);
    for p in parts {
        rect(o, *y, p.start, p.end, d.size, "part");
        label(
            o,
            *y,
            &format!("part {}", p.number),
            &format!("{} .. {}", human(p.start), human(p.end)),
        );
        *y += ROW;
        if let Some(f) = &p.filesystem {
            fs_row(o, y, f, p.start);
        }
    }
    if let Some(f) = &d.filesystem {
        fs_row(o, y, f, 0);
    }
    if d.unallocated > 0 {
        rect(o, *y, d.size - d.unallocated, d.size, d.size, "free");
        label(o, *y, "free", &human(d.unallocated));
        *y += ROW;
    }
    let _ = writeln!(
        o,
        r#"<text class="limit" x="8" y="{}">{}</text>"#,
        *y + 15,
        esc(&d.limit.sentence)
    );
    *y += ROW + 10;
}

/// The SVG drawing: one block per disk, bars to scale, the limiting
/// sentence under each.
pub fn svg(l: &Layers) -> String {
    let mut body = String::new();
    let mut y = 10;
    for d in &l.disks {
        svg_disk(&mut body, d, &mut y);
    }
    let width = LEFT + SVG_BAR + 260;
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}">
<style>
text {{ font-family: monospace; font-size: 13px; fill: #222; }}
.title {{ font-weight: bold; }}
.limit {{ fill: #b00020; }}
.disk {{ fill: #9ec5fe; }}
.part {{ fill: #ffd166; }}
.fs {{ fill: #95d5b2; }}
.used {{ fill: #2d6a4f; }}
.free {{ fill: #e9ecef; stroke: #adb5bd; }}
</style>
<rect x="0" y="0" width="{width}" height="{y}" fill="#ffffff"/>
{body}</svg>
"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_scale_and_never_vanish() {
        assert_eq!(span(0, 100, 100, 50), (0, 50));
        assert_eq!(span(50, 100, 100, 50), (25, 50));
        assert_eq!(span(0, 1, 1 << 40, 50), (0, 1));
        assert_eq!(span(0, 10, 0, 50), (0, 0));
        assert_eq!(span(0, u64::MAX, 10, 50), (0, 50));
    }
}
