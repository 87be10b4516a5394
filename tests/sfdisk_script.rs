//! `sfdisk -q IMG < SCRIPT` with script lines that name no device: named
//! fields alone (`start=2048, size=1M, type=L`), the positional shorthand
//! (`,,L`, `,+1G`, `2048,,`, `;`), `size=+`, omitted starts and sizes, sizes
//! with units. Each script is run by the real sfdisk and by ebsim's on two
//! images made the same way; the exit codes, stdout, stderr (modulo the
//! image name) and the real `sfdisk --dump` of both results must match
//! (random GUIDs and disk identifiers aside).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// (image size, setup script run by the real sfdisk first or "", script).
const CASES: &[(&str, &str, &str)] = &[
    // GPT, empty image.
    ("100M", "", "label: gpt\nstart=2048, size=1M, type=L\n"),
    ("100M", "", "label: gpt\n,,L\n"),
    ("100M", "", "label: gpt\n,10M\n,,S\n"),
    ("100M", "", "label: gpt\n2048,,\n"),
    ("100M", "", "label: gpt\n,1G,S\n"),
    ("100M", "", "label: gpt\n;\n"),
    ("100M", "", "label: gpt\nsize=+\n"),
    ("100M", "", "label: gpt\nsize=1000\n,1000\n"),
    ("100M", "", "label: gpt\nstart=10000,size=10M\n,\n"),
    ("100M", "", "label: gpt\nstart=30M,size=10M\n,5M\n,\n"),
    ("100M", "", "label: gpt\n,1M,U\n,1M,R\n,1M,V\n,1M,H\n"),
    ("100M", "", "label: gpt\n,,E\n"),
    ("100M", "", "label: gpt\nstart=60M,size=10M\n,\n"),
    ("100M", "", "label: gpt\nstart=60M,size=10M\nstart=3000\n"),
    (
        "100M",
        "",
        "label: gpt\nstart=60M,size=10M\nstart=3000,size=200M\n",
    ),
    (
        "100M",
        "",
        "label: gpt\nstart=2048,size=1001\nstart=122001,size=1000\n,\n,\n",
    ),
    (
        "100M",
        "",
        "label: gpt\nstart=2048,size=1001\nstart=5000,size=1000\n,\n,\n",
    ),
    (
        "100M",
        "",
        "label: gpt\nstart=3000,size=1501K\nstart=8192,size=2560K\n",
    ),
    (
        "100M",
        "",
        "label: gpt\nstart=3072,size=1M\nstart=4000,size=3M\n,3K\n",
    ),
    ("100M", "", "label: gpt\nlast-lba: 202751\n,\n"),
    ("100M", "", "label: gpt\nlast-lba: 202752\n,\n"),
    ("100M", "", "label: gpt\n2048 1M L\n,,V\n"),
    ("100M", "", "label: gpt\nstart=1M, size=1GiB\n"),
    ("100M", "", "label: gpt\nsize=10MB\n,+5M\n"),
    // A largest free area under two grains: its start is not aligned.
    ("4194816", "", "label: gpt\nsize=100\nsize=200\n,\n"),
    // Sizes past the free area they start in (libfdisk does not check).
    (
        "4193792",
        "",
        "label: gpt\nsize=40KiB\nstart=786, size=716K, type=S\nstart=4224, size=172KiB\n,\nsize=1M\n",
    ),
    // Script headers: the grain, LBAs out of range (warned twice).
    (
        "100M",
        "",
        "label: gpt\ngrain: 512\nsize=100\nsize=1000\n,\n",
    ),
    ("100M", "", "label: gpt\nfirst-lba: 10\nsize=100\n"),
    ("2M", "", "label: gpt\nlast-lba: 5000000\nsize=100\n"),
    // Disks of at most 4 MiB: a one-sector grain, first LBA 34.
    ("3M", "", "label: gpt\nsize=100\nsize=200\n,\n"),
    ("4M", "", "label: gpt\nsize=25KiB\n,1M\n,\n"),
    // GPT over an existing GPT.
    (
        "64M",
        "label: gpt\nstart=2048,size=20M\n",
        "label: gpt\n,,L\n,\n",
    ),
    (
        "64M",
        "label: gpt\nstart=2048,size=20M\n",
        "label: gpt\nstart=40M\n,10M\n",
    ),
    // DOS, empty image.
    ("100M", "", "label: dos\n,,L\n"),
    ("100M", "", "label: dos\n,10M\n,,S\n"),
    ("100M", "", "label: dos\nstart=60M,size=10M\n,\n"),
    ("100M", "", "label: dos\nstart=30M,size=10M\n,5M\n,\n"),
    ("100M", "", "label: dos\nstart=3000,size=200M\n"),
    (
        "100M",
        "",
        "label: dos\nstart=2048,size=1001\nstart=122001,size=1000\n,\n,\n",
    ),
    (
        "100M",
        "",
        "label: dos\nstart=4000,size=3M\nstart=20000,size=1536K\nstart=30000,size=1K\n",
    ),
    ("100M", "", "label: dos\nstart=3072,size=1M\n"),
    ("100M", "", "label: dos\n,,E\n,10M\n,,\n"),
    ("100M", "", "label: dos\n,10M,E\n,10M\n,1M\n"),
    ("100M", "", "label: dos\n,1M,U,*\n,1M,R\n,1M,V\n,,X\n"),
    ("100M", "", "label: dos\n;\n"),
    ("100M", "", "label: dos\nsize=+\n"),
    (
        "100M",
        "",
        "label: dos\ngrain: 4096\nsize=100\nsize=1000\n,\n",
    ),
    // A line after one that took the whole disk: no primary is possible.
    ("1G", "", "label: dos\n,\nsize=100M\n"),
    // Four primaries: sfdisk stops reading ("All partitions used.").
    (
        "5M",
        "",
        "label: dos\nsize=660\nsize=112K\nsize=150K\nsize=1705\nsize=1M, type=82\n",
    ),
    // A size past the disk's end: the search ends past the last sector.
    ("5M", "", "label: dos\nsize=5M\n"),
    (
        "100M",
        "",
        "label: dos\nstart=6399, size=2M\nsize=26071K, type=83\n",
    ),
    // Disks of at most 4 MiB: a one-sector grain, first LBA 1.
    ("3M", "", "label: dos\nsize=25KiB, type=S\n"),
    ("2M", "", "label: dos\nsize=1M, type=82\n"),
    ("3M", "", "label: dos\nsize=100\nsize=200\n,\n"),
    (
        "3146240",
        "",
        "label: dos\nsize=58KiB\nsize=1M, type=5\n,\n,\nsize=127K, type=82\n",
    ),
    // Past 2^32 sectors libfdisk warns that DOS cannot address the disk.
    ("3T", "", "label: dos\nsize=91KiB\n"),
    // DOS over an existing DOS table.
    (
        "64M",
        "label: dos\nstart=2048,size=20M\n",
        "label: dos\n,,L\n",
    ),
    (
        "64M",
        "label: dos\nstart=2048,size=20M\n",
        "label: dos\n,5M\n,,E\n,1M\n",
    ),
];

fn make(img: &Path, size: &str, setup: &str) {
    let st = Command::new("truncate")
        .args(["-s", size])
        .arg(img)
        .status()
        .expect("truncate");
    assert!(st.success());
    if !setup.is_empty() {
        let (code, _, err) = feed(&mut Command::new("sfdisk"), img, setup);
        assert_eq!(code, 0, "setup {setup:?}: {err}");
    }
}

/// Runs `cmd -q IMG` with `script` on stdin; (exit code, stdout, stderr).
fn feed(cmd: &mut Command, img: &Path, script: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = cmd
        .arg("-q")
        .arg(img)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sfdisk");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("wait sfdisk");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real `sfdisk --dump`, image name replaced, random ids dropped.
fn dump(img: &Path) -> String {
    let out = Command::new("sfdisk")
        .arg("--dump")
        .arg(img)
        .output()
        .expect("sfdisk --dump");
    let name = img.to_string_lossy();
    let text = String::from_utf8_lossy(&out.stdout).replace(name.as_ref(), "IMG");
    text.lines()
        .filter(|l| !l.starts_with("label-id:"))
        .map(|l| match l.find(", uuid=") {
            Some(i) => {
                let rest = &l[i + 2..];
                let tail = rest.find(", ").map_or("", |j| &rest[j..]);
                format!("{}{}", &l[..i], tail)
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + &format!("\nexit {:?}", out.status.code())
}

#[test]
fn deviceless_lines_match_real_sfdisk() {
    if !common::require_tools(&["sfdisk", "truncate"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bad = Vec::new();
    for (i, (size, setup, script)) in CASES.iter().enumerate() {
        let real = dir.path().join(format!("r{i}.img"));
        let ours = dir.path().join(format!("o{i}.img"));
        make(&real, size, setup);
        make(&ours, size, setup);
        let r = feed(&mut Command::new("sfdisk"), &real, script);
        let o = feed(&mut common::ebsim("sfdisk"), &ours, script);
        let rn = real.to_string_lossy().into_owned();
        let on = ours.to_string_lossy().into_owned();
        let norm = |s: &str, n: &str| s.replace(n, "IMG");
        let same = r.0 == o.0
            && norm(&r.1, &rn) == norm(&o.1, &on)
            && norm(&r.2, &rn) == norm(&o.2, &on)
            && dump(&real) == dump(&ours);
        if !same {
            bad.push(format!(
                "{script:?} on {size} after {setup:?}:\n real {r:?}\n ours {o:?}\n real dump:\n{}\n our dump:\n{}",
                dump(&real),
                dump(&ours)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        CASES.len(),
        bad.join("\n\n")
    );
}
