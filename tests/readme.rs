//! The README's examples, run verbatim (issue 13 item 8): each indented
//! block named below is taken from README.md as written and run line by
//! line by bash in a fresh directory, with `ebsim` on PATH and a private
//! state directory; every line must succeed.

#![allow(clippy::unwrap_used)]

mod common;

use common::{stderr, stdout};
use std::process::Command;

/// The README's indented blocks, each with the paragraph line before it.
fn blocks() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut intro = String::new();
    let mut cur: Option<Vec<String>> = None;
    for line in text.lines() {
        if let Some(code) = line.strip_prefix("    ") {
            let b = cur.get_or_insert_with(Vec::new);
            match b.last_mut() {
                Some(prev) if prev.ends_with('\\') => {
                    prev.pop();
                    prev.push_str(code.trim_start());
                }
                _ => b.push(code.to_string()),
            }
        } else {
            if let Some(b) = cur.take() {
                out.push((intro.clone(), b));
            }
            if !line.trim().is_empty() {
                intro = line.to_string();
            }
        }
    }
    if let Some(b) = cur.take() {
        out.push((intro, b));
    }
    out
}

/// The block whose introducing line ends with `intro_end`.
fn block(intro_end: &str) -> Vec<String> {
    blocks()
        .into_iter()
        .find(|(i, _)| i.trim_end().ends_with(intro_end))
        .unwrap_or_else(|| panic!("no README block after a line ending {intro_end:?}"))
        .1
}

fn run_lines(lines: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(common::ebsim_bin(), bin.join("ebsim")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in lines {
        let o = common::run(
            Command::new("bash")
                .arg("-c")
                .arg(line)
                .current_dir(&work)
                .env("PATH", &path)
                .env("EBSIM_HOME", dir.path().join("home"))
                .env("EBSIM_CLOCK", "manual")
                .env_remove("EBSIM_INSTANCE"),
        );
        assert!(
            o.status.success(),
            "README line failed ({:?}): {line}\n{}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
    }
}

/// The plain image files block: sgdisk, growpart, mkfs and the grows.
#[test]
fn the_image_file_examples_run_as_written() {
    if !common::require_tools(&["sgdisk", "truncate", "bash"]) {
        return;
    }
    let b = block("The same tools work on plain image files:");
    assert!(
        b.iter().any(|l| l.contains("ebsim growpart disk.img 1")),
        "{b:?}"
    );
    run_lines(&b);
}

/// The cloud's first example and the user-data opt-out, as written (the
/// lines with a `vol-...` placeholder need an id the reader fills in).
#[test]
fn the_cloud_examples_run_as_written() {
    let mut b: Vec<String> = block("`ebsim clock --help`):")
        .into_iter()
        .filter(|l| !l.contains("..."))
        .collect();
    assert_eq!(b.len(), 2, "{b:?}");
    b.extend(block("user data, as on EC2:"));
    run_lines(&b);
}
