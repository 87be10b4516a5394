//! growpart: differential tests against the real cloud-utils growpart 0.33
//! (Debian's cloud-guest-utils), bad input, sparse discipline.
//!
//! Each differential case builds a disk image with the real sfdisk/sgdisk,
//! copies it, runs the real `growpart` on one copy and `ebsim growpart` on
//! the other (same file name, each in its own directory), and requires the
//! same stdout, the same exit code, the same stderr where the real tool's is
//! deterministic, the same `sfdisk --dump`, a clean `sgdisk -v` for GPT, and
//! byte-identical images.

mod common;

use common::*;
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use std::path::Path;
use std::process::Command;

const G: u64 = 1 << 30;
const M: u64 = 1 << 20;

#[derive(Clone)]
struct Case {
    name: String,
    /// Shell commands run in the scratch directory; must create `disk.img`
    /// (or whatever `args` name).
    setup: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Compare stderr too (false where the real tool prints sfdisk's
    /// transcript, temp paths or dd timings).
    stderr: bool,
}

fn case(name: &str, setup: &str, args: &str) -> Case {
    Case {
        name: name.to_string(),
        setup: setup.to_string(),
        args: args.split_whitespace().map(str::to_string).collect(),
        env: Vec::new(),
        stderr: true,
    }
}

impl Case {
    fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.into(), v.into()));
        self
    }
    fn no_stderr(mut self) -> Case {
        self.stderr = false;
        self
    }
}

/// A GPT made by sgdisk on a `before`-byte file, then grown to `after`.
fn gpt(before: u64, sgdisk_args: &str, after: u64) -> String {
    format!(
        "truncate -s {before} disk.img && sgdisk {sgdisk_args} disk.img >/dev/null && truncate -s {after} disk.img"
    )
}

/// A table written by an sfdisk script on a `before`-byte file, then grown.
fn sfd(before: u64, script: &str, after: u64) -> String {
    format!(
        "truncate -s {before} disk.img && printf '{script}' | sfdisk -q disk.img >/dev/null && truncate -s {after} disk.img"
    )
}

fn gpt_cases() -> Vec<Case> {
    let one = "-n 1:2048:+500M";
    let three = "-n 1:2048:+100M -n 2:309248:+100M -n 3:514048:+100M";
    let mut v = vec![
        case("gpt-1g-2g", &gpt(G, one, 2 * G), "disk.img 1"),
        case("gpt-1g-2g-dry", &gpt(G, one, 2 * G), "-N disk.img 1"),
        case("gpt-1g-2g-dry-long", &gpt(G, one, 2 * G), "--dry-run disk.img 1"),
        case("gpt-grown-0", &gpt(G, "-n 1:2048:0", G), "disk.img 1"),
        case("gpt-grown-0-unfilled", &gpt(G, one, G), "disk.img 1"),
        case("gpt-grown-512k", &gpt(G, "-n 1:2048:0", G + 512 * 1024), "disk.img 1"),
        case("gpt-grown-512k-fudge0", &gpt(G, "-n 1:2048:0", G + 512 * 1024), "--fudge 0 -N disk.img 1"),
        case("gpt-grown-1m", &gpt(G, "-n 1:2048:0", G + M), "disk.img 1"),
        case("gpt-grown-1m-plus-512", &gpt(G, "-n 1:2048:0", G + M + 512), "-N disk.img 1"),
        case("gpt-grown-1m-minus-512", &gpt(G, "-n 1:2048:0", G + M - 512), "disk.img 1"),
        case("gpt-1g-100g", &gpt(G, one, 100 * G), "disk.img 1"),
        case("gpt-1g-3t", &gpt(G, one, 3 << 40), "disk.img 1"),
        case("gpt-free-percent-10", &gpt(G, one, 2 * G), "--free-percent 10 disk.img 1"),
        case("gpt-free-percent-eq-90", &gpt(G, one, 2 * G), "--free-percent=90 disk.img 1"),
        case("gpt-verbose", &gpt(G, one, 2 * G), "-v disk.img 1"),
        case("gpt-verbose-dry", &gpt(G, one, 2 * G), "-v -N disk.img 1"),
        case("gpt-three-grow-1-gap", &gpt(G, three, 2 * G), "disk.img 1"),
        case("gpt-three-grow-2-full", &gpt(G, "-n 1:2048:+100M -n 2:206848:+100M -n 3:411648:+100M", 2 * G), "disk.img 2"),
        case("gpt-three-grow-3-last", &gpt(G, three, 2 * G), "disk.img 3"),
        case("gpt-p2-before-p1", &gpt(G, "-n 1:1026048:+100M -n 2:2048:+100M", 2 * G), "disk.img 2"),
        case(
            "gpt-cloud-utils-middle",
            &sfd(2 * G, "label: gpt\\nfirst-lba: 34\\nstart=34, size=2014, type=21686148-6449-6E6F-744E-656564454649\\nstart=2048, size=204800\\nstart=206848, size=524288\\nstart=731136, size=819200\\nstart=4061184, size=133087\\n", 2 * G),
            "disk.img 3",
        ),
        case(
            "gpt-al2023-like",
            &gpt(8 * G, "-n 127:2048:+1M -t 127:ef02 -n 128:4096:+10M -t 128:ef00 -n 1:24576:0", 20 * G),
            "disk.img 1",
        ),
        case("gpt-four-grow-4", &gpt(G, "-n 1:2048:+50M -n 2:0:+50M -n 3:0:+50M -n 4:0:+50M", 4 * G), "disk.img 4"),
        case(
            "gpt-names-attrs",
            &gpt(G, "-n 1:2048:+100M -c 1:'root fs' -A 1:set:2 -A 1:set:60 -n 2:0:+10M -t 2:ef02 -c 2:bios", 3 * G),
            "disk.img 1",
        ),
        case("gpt-256-entries", &gpt(G, "--resize-table=256 -n 1:2048:+500M", 2 * G), "disk.img 1").no_stderr(),
        case("gpt-256-entries-dry", &gpt(G, "--resize-table=256 -n 1:2048:+500M", 2 * G), "-N disk.img 1"),
        case("gpt-32-entries", &gpt(G, "--resize-table=32 -n 1:2048:+500M", 2 * G), "disk.img 1"),
        case(
            "gpt-start-matches-size",
            &sfd(G, "label: gpt\\nfirst-lba: 2048\\nstart=2048, size=1024000\\nstart=1026048, size=1026048\\n", 2 * G),
            "disk.img 2",
        ),
        case("gpt-missing-partition", &gpt(G, one, 2 * G), "disk.img 7"),
        case("gpt-partition-0", &gpt(G, one, 2 * G), "disk.img 0"),
        case("gpt-p1-not-number", &gpt(G, one, 2 * G), "disk.img p1"),
                                case("gpt-file-ends-in-digit", &gpt(G, one, 2 * G).replace("disk.img", "img2"), "img2 1"),
        case(
            "gpt-corrupt-primary-crc-not-grown",
            &format!("{} && printf '\\336\\255' | dd of=disk.img bs=1 seek=528 conv=notrunc 2>/dev/null", gpt(G, one, G)),
            "disk.img 1",
        ),
        case(
            "gpt-corrupt-primary-crc-grown",
            &format!("{} && printf '\\336\\255' | dd of=disk.img bs=1 seek=528 conv=notrunc 2>/dev/null", gpt(G, one, 2 * G)),
            "disk.img 1",
        ),
        case(
            "gpt-corrupt-entries-grown",
            &format!("{} && printf '\\336\\255' | dd of=disk.img bs=1 seek=1084 conv=notrunc 2>/dev/null", gpt(G, one, 2 * G)),
            "disk.img 1",
        ),
        case(
            "gpt-corrupt-entries-not-grown",
            &format!("{} && printf '\\336\\255' | dd of=disk.img bs=1 seek=1084 conv=notrunc 2>/dev/null", gpt(G, one, G)),
            "disk.img 1",
        ),
        case("gpt-truncated", &format!("{} && truncate -s 1M disk.img", gpt(G, one, G)), "disk.img 1"),
        case("gpt-sgdisk-resizer", &gpt(G, one, 2 * G), "disk.img 1").env("GROWPART_RESIZER", "sgdisk"),
        case("gpt-sgdisk-resizer-dry", &gpt(G, one, 2 * G), "-N disk.img 1").env("GROWPART_RESIZER", "sgdisk"),
        case("gpt-sgdisk-nochange", &gpt(2 * G, "-n 1:2048:4194269", 2 * G), "disk.img 1").env("GROWPART_RESIZER", "sgdisk"),
        case("gpt-sgdisk-fudge", &gpt(2 * G, "-n 1:2048:4194268", 2 * G), "disk.img 1").env("GROWPART_RESIZER", "sgdisk"),
        case(
            "gpt-sgdisk-middle",
            &sfd(2 * G, "label: gpt\\nfirst-lba: 34\\nstart=34, size=2014, type=21686148-6449-6E6F-744E-656564454649\\nstart=2048, size=204800\\nstart=206848, size=524288\\nstart=731136, size=819200\\nstart=4061184, size=133087\\n", 2 * G),
            "disk.img 3",
        )
        .env("GROWPART_RESIZER", "sgdisk"),
        case("gpt-resizer-bogus", &gpt(G, one, 2 * G), "disk.img 1").env("GROWPART_RESIZER", "bogus"),
        case("gpt-update-off", &gpt(G, one, 2 * G), "-u off disk.img 1"),
        case("gpt-update-eq-force", &gpt(G, one, 2 * G), "--update=force disk.img 1"),
        case("gpt-args-mixed-order", &gpt(G, one, 2 * G), "disk.img -N 1 -v"),
        case("gpt-symlink", &format!("{} && ln -s disk.img link.img", gpt(G, one, 2 * G)), "-N link.img 1").no_stderr(),
    ];
    // -v -v adds sfdisk invocations; compare them too.
    v.push(case(
        "gpt-verbose-2",
        &gpt(G, one, 2 * G),
        "-v -v disk.img 1",
    ));
    // A disk of at most 4 MiB: libfdisk's grain is one sector, which the
    // verbose dump names ("grain: 512").
    v.push(case(
        "gpt-small-disk-verbose",
        &sfd(2 * M, "label: gpt\\nstart=2048, size=119\\n", 3 * M),
        "-v -v disk.img 1",
    ));
    v.push(case(
        "mbr-small-disk-verbose",
        &sfd(2 * M, "label: dos\\nsize=1043\\n", 3 * M),
        "-v disk.img 1",
    ));
    v
}

fn mbr_cases() -> Vec<Case> {
    let m1 = sfd(
        G,
        "label: dos\\nlabel-id: 0x1234abcd\\nstart=2048, size=1024000, type=83, bootable\\n",
        2 * G,
    );
    let logical = "label: dos\\nlabel-id: 0x0badcafe\\nstart=2048, size=204800, type=83\\nstart=206848, size=409600, type=5\\nstart=208896, size=100000, type=83\\nstart=311296, size=100000, type=82\\n";
    let four = "label: dos\\nstart=2048, size=204800\\nstart=206848, size=204800\\nstart=616448, size=204800\\nstart=821248, size=204800\\n";
    vec![
        case("mbr-1g-2g", &m1, "disk.img 1"),
        case("mbr-1g-2g-dry", &m1, "-N disk.img 1"),
        case(
            "mbr-nochange-33",
            &sfd(G, "label: dos\\nstart=2048\\n", G),
            "disk.img 1",
        ),
        case(
            "mbr-grown-0",
            &sfd(G, "label: dos\\nstart=2048, size=1024000\\n", G),
            "disk.img 1",
        ),
        case(
            "mbr-grown-under-1m",
            &sfd(
                G,
                "label: dos\\nstart=2048, size=2095071\\n",
                G + 512 * 1024,
            ),
            "disk.img 1",
        ),
        case("mbr-free-percent", &m1, "--free-percent 10 disk.img 1"),
        case("mbr-extended-grow-2", &sfd(G, logical, 2 * G), "disk.img 2"),
        case(
            "mbr-logical-6-before-2",
            &sfd(G, logical, 2 * G),
            "disk.img 6",
        )
        .no_stderr(),
        case(
            "mbr-logical-6-before-2-dry",
            &sfd(G, logical, 2 * G),
            "-N disk.img 6",
        ),
        case(
            "mbr-logical-5-into-ebr",
            &sfd(G, logical, 2 * G),
            "disk.img 5",
        )
        .no_stderr(),
        case(
            "mbr-logical-6-after-2",
            &format!(
                "{} && growpart disk.img 2 >/dev/null",
                sfd(G, logical, 2 * G)
            ),
            "disk.img 6",
        ),
        case("mbr-four-grow-3", &sfd(G, four, 2 * G), "disk.img 3"),
        case("mbr-four-grow-4", &sfd(G, four, 2 * G), "disk.img 4"),
        case(
            "mbr-extended-empty",
            &sfd(
                G,
                "label: dos\\nstart=2048, size=204800\\nstart=206848, size=204800, type=5\\n",
                2 * G,
            ),
            "disk.img 2",
        ),
        case(
            "mbr-3t-dry",
            &sfd(G, "label: dos\\nstart=2048, size=1024000\\n", 3 << 40),
            "-N disk.img 1",
        ),
        case(
            "mbr-3t",
            &sfd(G, "label: dos\\nstart=2048, size=1024000\\n", 3 << 40),
            "disk.img 1",
        )
        .no_stderr(),
        case(
            "mbr-3t-already-max",
            &format!(
                "truncate -s {} disk.img && printf 'label: dos\\nstart=2048, size=4294965248\\n' | sfdisk -q --force disk.img >/dev/null 2>&1",
                3u64 << 40
            ),
            "disk.img 1",
        ),
        case(
            "mbr-3t-free-percent",
            &sfd(G, "label: dos\\nstart=2048, size=1024000\\n", 3 << 40),
            "-N --free-percent 20 disk.img 1",
        ),
        case("mbr-sgdisk", &m1, "disk.img 1").env("GROWPART_RESIZER", "sgdisk"),
        case(
            "mbr-1g-100g-verbose",
            &sfd(G, "label: dos\\nstart=2048, size=1024000\\n", 100 * G),
            "-v disk.img 1",
        ),
    ]
}

fn usage_cases() -> Vec<Case> {
    let img = gpt(G, "-n 1:2048:+500M", 2 * G);
    vec![
        case("usage-none", "true", ""),
        case("usage-disk-only", &img, "disk.img"),
        case("usage-help", "true", "-h"),
        case("usage-help-long", "true", "--help disk.img 1"),
        case("usage-help-fudge", "true", "--fudge 4096 -h"),
        case("usage-third-arg", &img, "disk.img 1 2"),
        case("usage-bogus", &img, "--bogus disk.img 1"),
        case("usage-vv", &img, "-vv disk.img 1"),
        case("usage-version", &img, "--version"),
        case("usage-free-percent-0", &img, "--free-percent 0 disk.img 1"),
        case(
            "usage-free-percent-100",
            &img,
            "--free-percent=100 disk.img 1",
        ),
        case(
            "usage-free-percent-abc",
            &img,
            "--free-percent abc disk.img 1",
        ),
        case("usage-update-bad", &img, "-u bad disk.img 1"),
        case("usage-double-dash", &img, "-- disk.img 1"),
        case("usage-missing-file", "true", "nope.img 1"),
        case("bad-no-table", "truncate -s 1G disk.img", "disk.img 1"),
        case("bad-zero-image", "truncate -s 0 disk.img", "disk.img 1"),
        case("bad-text-file", "echo hello > disk.img", "disk.img 1"),
        case("bad-directory", "mkdir disk.img", "disk.img 1"),
        case("bad-tmpdir", &img, "disk.img 1")
            .env("TMPDIR", "/nonexistent")
            .no_stderr(),
    ]
}

struct RunResult {
    stdout: String,
    stderr: String,
    code: i32,
}

fn run_in(dir: &Path, program: &mut Command, c: &Case) -> RunResult {
    program
        .current_dir(dir)
        .args(&c.args)
        .env_remove("DEBUG_LOG");
    for (k, v) in &c.env {
        program.env(k, v);
    }
    let o = run(program);
    RunResult {
        stdout: stdout(&o),
        stderr: stderr(&o),
        code: o.status.code().unwrap_or(-1),
    }
}

/// Compares two sparse images by their data: same size, same bytes wherever
/// either holds data.
fn same_images(a: &Path, b: &Path) -> Result<(), String> {
    let (Ok(ia), Ok(ib)) = (
        ImageFile::open(a, Access::ReadOnly),
        ImageFile::open(b, Access::ReadOnly),
    ) else {
        return Ok(());
    };
    if ia.size() != ib.size() {
        return Err(format!("sizes differ: {} vs {}", ia.size(), ib.size()));
    }
    let mut ranges = ia.data_ranges(0..ia.size()).unwrap();
    ranges.extend(ib.data_ranges(0..ib.size()).unwrap());
    for r in ranges {
        let mut off = r.start;
        while off < r.end {
            let n = (r.end - off).min(1 << 20) as usize;
            let x = ia.read_vec(off, n).unwrap();
            let y = ib.read_vec(off, n).unwrap();
            if x != y {
                let i = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(0);
                return Err(format!("bytes differ at offset {}", off + i as u64));
            }
            off += n as u64;
        }
    }
    Ok(())
}

fn sfdisk_dump(dir: &Path, file: &str) -> String {
    let o = run(Command::new("sfdisk")
        .arg("--dump")
        .arg(file)
        .current_dir(dir));
    format!("rc={:?}\n{}", o.status.code(), stdout(&o))
}

/// Runs one case; returns a description of every difference.
fn check(c: &Case) -> Vec<String> {
    let real_dir = tempfile::tempdir().unwrap();
    let ours_dir = tempfile::tempdir().unwrap();
    let setup = run(Command::new("sh")
        .arg("-c")
        .arg(&c.setup)
        .current_dir(real_dir.path()));
    assert!(
        setup.status.success(),
        "{}: setup failed: {}",
        c.name,
        stderr(&setup)
    );
    let copy = run(Command::new("sh").arg("-c").arg(format!(
        "cp -a --sparse=always {}/. {}/",
        real_dir.path().display(),
        ours_dir.path().display()
    )));
    assert!(copy.status.success(), "{}: copy failed", c.name);
    let real = run_in(real_dir.path(), &mut Command::new("growpart"), c);
    let mut ebsim = Command::new(ebsim_bin());
    ebsim.arg("growpart");
    let ours = run_in(ours_dir.path(), &mut ebsim, c);
    let mut diffs = Vec::new();
    if real.stdout != ours.stdout {
        diffs.push(format!(
            "stdout:\n  real: {:?}\n  ours: {:?}",
            real.stdout, ours.stdout
        ));
    }
    if real.code != ours.code {
        diffs.push(format!("exit code: real {} ours {}", real.code, ours.code));
    }
    if c.stderr && real.stderr != ours.stderr {
        diffs.push(format!(
            "stderr:\n  real: {:?}\n  ours: {:?}",
            real.stderr, ours.stderr
        ));
    }
    let file = c
        .args
        .iter()
        .find(|a| !a.starts_with('-') && (a.contains("img") || a.contains('.')))
        .cloned();
    if let Some(file) = file {
        let (rp, op) = (real_dir.path().join(&file), ours_dir.path().join(&file));
        if rp.is_file() && op.is_file() {
            let (rd, od) = (
                sfdisk_dump(real_dir.path(), &file),
                sfdisk_dump(ours_dir.path(), &file),
            );
            if rd != od {
                diffs.push(format!("sfdisk --dump:\n  real: {rd:?}\n  ours: {od:?}"));
            }
            if let Err(e) = same_images(&rp, &op) {
                diffs.push(format!("images: {e}"));
            }
            if rd.contains("label: gpt") && real.stdout.starts_with("CHANGED:") {
                let v = run(Command::new("sgdisk")
                    .arg("-v")
                    .arg(&file)
                    .current_dir(ours_dir.path()));
                if !stdout(&v).contains("No problems found") {
                    diffs.push(format!("sgdisk -v on ours: {}", stdout(&v)));
                }
            }
        }
    }
    diffs
        .into_iter()
        .map(|d| format!("[{}] {d}", c.name))
        .collect()
}

fn check_all(cases: Vec<Case>) {
    if !require_tools(&["growpart", "sfdisk", "sgdisk"]) {
        return;
    }
    let n = cases.len();
    // Eight cases at a time: most of a case's time is sgdisk's one-second
    // sleep after it writes a table (its setup), not work.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Vec<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(c) = cases.get(i) else { break done };
                        done.push((i, check(c)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a case panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let failures: Vec<String> = results.into_iter().flat_map(|(_, f)| f).collect();
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn differential_gpt() {
    check_all(gpt_cases());
}

#[test]
fn differential_mbr() {
    check_all(mbr_cases());
}

#[test]
fn differential_usage_and_bad_input() {
    check_all(usage_cases());
}

#[test]
fn at_least_forty_differential_cases() {
    let n = gpt_cases().len() + mbr_cases().len() + usage_cases().len();
    assert!(n >= 40, "only {n} cases");
}

// ------------------------------------------------------------------------
// The scenarios of cloud-utils 0.33's root-free tests, with ebsim's growpart
// reached through a link named `growpart` first on PATH.

/// A directory holding a `growpart` link to ebsim, and PATH with it first.
fn growpart_on_path() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(ebsim_bin(), bin.path().join("growpart")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (bin, path)
}

fn linked_growpart(path: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let mut c = Command::new("growpart");
    c.env("PATH", path).current_dir(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(&mut c);
    (stdout(&o), o.status.code().unwrap_or(-1))
}

fn partition_line(dir: &Path, file: &str, n: u32) -> (u64, u64) {
    let dump = stdout(&run(Command::new("sfdisk")
        .arg("--dump")
        .arg(file)
        .current_dir(dir)));
    let name = format!("{file}{n} ");
    let line = dump.lines().find(|l| l.starts_with(&name)).unwrap();
    let num = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split(',').next().unwrap().trim().parse().unwrap()
    };
    (num("start="), num("size="))
}

#[test]
fn cloud_utils_fsimage_scenario() {
    if !require_tools(&["sfdisk"]) {
        return;
    }
    let (_bin, path) = growpart_on_path();
    for label in ["dos", "gpt"] {
        let d = tempfile::tempdir().unwrap();
        sh(&format!(
            "cd {} && truncate -s 500M img && echo '2048,' | sfdisk --label={label} --force --unit=S img >/dev/null 2>&1 && truncate -s 1000M img",
            d.path().display()
        ));
        let (out, code) = linked_growpart(&path, d.path(), &["-v", "-v", "img", "1"], &[]);
        assert_eq!(code, 0, "{label}: {out}");
        assert!(
            out.lines().any(|l| l.starts_with("CHANGED:")),
            "{label}: {out}"
        );
    }
}

#[test]
fn cloud_utils_middle_scenario() {
    if !require_tools(&["sfdisk"]) {
        return;
    }
    let (_bin, path) = growpart_on_path();
    for resizer in ["sfdisk", "sgdisk"] {
        let d = tempfile::tempdir().unwrap();
        sh(&format!(
            "cd {} && truncate -s 2G img && printf 'label: gpt\\nfirst-lba: 34\\n4 : start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649\\n1 : start=2048, size=204800\\n2 : start=206848, size=524288\\n3 : start=731136, size=819200\\n5 : start=4061184, size=133087\\n' | sfdisk --force img >/dev/null 2>&1",
            d.path().display()
        ));
        let (out, code) = linked_growpart(
            &path,
            d.path(),
            &["img", "3"],
            &[("GROWPART_RESIZER", resizer)],
        );
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "CHANGED: partition=3 start=731136 old: size=819200 end=1550335 new: size=3330048 end=4061183\n",
            "{resizer}"
        );
    }
}

#[test]
fn cloud_utils_start_matches_size_scenario() {
    if !require_tools(&["sfdisk"]) {
        return;
    }
    let (_bin, path) = growpart_on_path();
    // 0.33 results: sfdisk ends at N-34, sgdisk one sector before pt_max-1.
    for (resizer, want) in [("sfdisk", 3_168_223u64), ("sgdisk", 3_166_207)] {
        let d = tempfile::tempdir().unwrap();
        sh(&format!(
            "cd {} && truncate -s 2G disk.img && printf 'label: gpt\\nfirst-lba: 2048\\nstart=2048, size=1024000\\nstart=1026048, size=1026048\\n' | sfdisk --force disk.img >/dev/null 2>&1",
            d.path().display()
        ));
        let (out, code) = linked_growpart(
            &path,
            d.path(),
            &["disk.img", "2"],
            &[("GROWPART_RESIZER", resizer)],
        );
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            partition_line(d.path(), "disk.img", 2),
            (1_026_048, want),
            "{resizer}"
        );
    }
}

#[test]
fn cloud_utils_overprovision_scenario() {
    if !require_tools(&["sfdisk"]) {
        return;
    }
    let (_bin, path) = growpart_on_path();
    for label in ["dos", "gpt"] {
        let d = tempfile::tempdir().unwrap();
        sh(&format!(
            "cd {} && truncate -s 50M img && echo '2048,' | sfdisk --label={label} --force --unit=S img >/dev/null 2>&1 && truncate -s 100M img",
            d.path().display()
        ));
        let (out, code) = linked_growpart(
            &path,
            d.path(),
            &["-v", "-v", "--free-percent", "10", "img", "1"],
            &[],
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("CHANGED:"));
        let n: u64 = 100 * 1024 * 1024 / 512;
        let (start, size) = partition_line(d.path(), "img", 1);
        assert_eq!(start + size - 1, n - (n / 100 * 10) - 34, "{label}");
    }
}

// ------------------------------------------------------------------------
// GROWPART_COMPAT=0.34: the installed growpart is 0.33, so these compare
// with what upstream 0.34 printed on the same inputs.

#[test]
fn compat_0_34_aligns_sizes_to_1mib() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("g1.img");
    write_gpt_image(&img, 1 << 30, 2048, 1_024_000);
    ImageFile::open(&img, Access::ReadWrite)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let run34 = |args: &[&str]| {
        let o = run(ebsim("growpart")
            .args(args)
            .current_dir(d.path())
            .env("GROWPART_COMPAT", "0.34"));
        (stdout(&o), o.status.code().unwrap())
    };
    assert_eq!(
        run34(&["g1.img", "1"]),
        (
            "CHANGED: partition=1 start=2048 old: size=1024000 end=1026047 new: size=4190208 end=4192255\n".into(),
            0
        )
    );
    assert_eq!(
        run34(&["g1.img", "1"]),
        (
            "NOCHANGE: partition 1 size is 2145386496 bytes (4190208 sectors of 512). it cannot be grown\n".into(),
            1
        )
    );
}

#[test]
fn compat_0_34_free_percent_and_mbr_2tib() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("g.img");
    write_gpt_image(&img, 1 << 30, 2048, 1_024_000);
    ImageFile::open(&img, Access::ReadWrite)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let o = run(ebsim("growpart")
        .args(["-N", "--free-percent", "10", "g.img", "1"])
        .current_dir(d.path())
        .env("GROWPART_COMPAT", "0.34"));
    assert_eq!(
        stdout(&o),
        "CHANGE: partition=1 start=2048 old: size=1024000 end=1026047 new: size=3770368 end=3772415\n"
    );
    if !require_tools(&["sfdisk"]) {
        return;
    }
    sh(&format!(
        "cd {} && truncate -s 1G m3.img && printf 'label: dos\\nstart=2048, size=1024000\\n' | sfdisk -q m3.img && truncate -s 3T m3.img",
        d.path().display()
    ));
    let o = run(ebsim("growpart")
        .args(["m3.img", "1"])
        .current_dir(d.path())
        .env("GROWPART_COMPAT", "0.34"));
    assert_eq!(
        stdout(&o),
        "CHANGED: partition=1 start=2048 old: size=1024000 end=1026047 new: size=4294965248 end=4294967295\n"
    );
    assert_eq!(partition_line(d.path(), "m3.img", 1), (2048, 4_294_965_248));
    let sector0 = ImageFile::open(d.path().join("m3.img"), Access::ReadOnly)
        .unwrap()
        .read_vec(0, 512)
        .unwrap();
    assert_eq!(&sector0[446 + 5..446 + 8], &[0xfe, 0xff, 0xff], "end CHS");
}

/// Writes a one-partition GPT with ebsim's own sfdisk emulation (no tools
/// needed), on a new sparse image of `size` bytes.
fn write_gpt_image(path: &Path, size: u64, start: u64, sectors: u64) {
    use ebsim::partition::{script, sfdisk};
    let mut img = ImageFile::create(path, size).unwrap();
    let s = script::parse(&format!(
        "label: gpt\nlabel-id: 296C2A53-2C4A-4B8E-9C1F-0D5E8C3A7B11\nfirst-lba: 34\n\nx1 : start={start}, size={sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=ADFE2CE3-7C6F-4A5B-9A44-2D3B6F0E9C21\n"
    ))
    .unwrap();
    let batch = sfdisk::apply(&img, &s).unwrap().batch;
    img.commit(&batch).unwrap();
}

// ------------------------------------------------------------------------
// Bad input: the real tool's message and code, and the file untouched.

#[test]
fn bad_input_leaves_the_file_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let grown = |name: &str| {
        let p = dir.join(name);
        write_gpt_image(&p, 1 << 30, 2048, 1_024_000);
        ImageFile::open(&p, Access::ReadWrite)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        p
    };
    let poke = |p: &Path, off: u64, bytes: &[u8]| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.write_all_at(bytes, off).unwrap();
    };
    let none = dir.join("none.img");
    ImageFile::create(&none, 1 << 30).unwrap();
    let hdr = grown("hdr.img");
    poke(&hdr, 512 + 16, &[0xde, 0xad]);
    let ents = grown("ents.img");
    poke(&ents, 1024 + 60, &[0xde, 0xad]);
    let trunc = grown("trunc.img");
    ImageFile::open(&trunc, Access::ReadWrite)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    grown("good.img");
    std::fs::create_dir(dir.join("dir.img")).unwrap();

    let cases: Vec<(&str, Vec<&str>, &str, i32)> = vec![
        (
            "none.img",
            vec!["none.img", "1"],
            "FAILED: failed to dump sfdisk info for none.img\n",
            2,
        ),
        (
            "hdr.img",
            vec!["hdr.img", "1"],
            "NOCHANGE: partition 1 could only be grown by -33 [fudge=2048]\n",
            1,
        ),
        (
            "ents.img",
            vec!["ents.img", "1"],
            "NOCHANGE: partition 1 could only be grown by -33 [fudge=2048]\n",
            1,
        ),
        (
            "trunc.img",
            vec!["trunc.img", "1"],
            "NOCHANGE: partition 1 could only be grown by -33 [fudge=2048]\n",
            1,
        ),
        (
            "good.img",
            vec!["good.img", "7"],
            "FAILED: failed to get start and end for good.img7 in good.img\n",
            2,
        ),
        (
            "good.img",
            vec!["good.img", "p1"],
            "FAILED: partition-number must be a number\n",
            2,
        ),
        (
            "dir.img",
            vec!["dir.img", "1"],
            "FAILED: failed: sfdisk --list dir.img\n",
            2,
        ),
    ];
    for (file, args, want, code) in cases {
        let path = dir.join(file);
        let before = if path.is_file() {
            file_hash(&path)
        } else {
            String::new()
        };
        let o = run(ebsim("growpart").args(&args).current_dir(dir));
        assert_eq!(stdout(&o), want, "{args:?}");
        assert_eq!(o.status.code(), Some(code), "{args:?}");
        if path.is_file() {
            assert_eq!(file_hash(&path), before, "{file} changed");
        }
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    // A device name needs the instance model.
    let o = run(ebsim("growpart").args(["/dev/xvda", "1"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("no running instance"), "{}", stdout(&o));
}

#[test]
fn read_only_image_is_refused_and_unchanged() {
    // Beside the build (not /tmp, which may be a tmpfs without chattr).
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = d.path().join("ro.img");
    write_gpt_image(&p, 1 << 30, 2048, 1_024_000);
    ImageFile::open(&p, Access::ReadWrite)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let before = file_hash(&p);
    // Root ignores permission bits; the immutable flag stops it too.
    let made_ro = if nix::unistd::geteuid().is_root() {
        run(Command::new("chattr").arg("+i").arg(&p))
            .status
            .success()
    } else {
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
        std::fs::set_permissions(&p, perm).is_ok()
    };
    if !made_ro {
        assert!(
            !in_ci(),
            "cannot make a read-only file here (chattr +i failed)"
        );
        return;
    }
    let o = run(ebsim("growpart")
        .args(["ro.img", "1"])
        .current_dir(d.path()));
    let dry = run(ebsim("growpart")
        .args(["-N", "ro.img", "1"])
        .current_dir(d.path()));
    if nix::unistd::geteuid().is_root() {
        run(Command::new("chattr").arg("-i").arg(&p));
    }
    assert_eq!(stdout(&o), "FAILED: failed to resize\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ro.img"), "{}", stderr(&o));
    assert_eq!(dry.status.code(), Some(0), "a dry run only reads");
    assert_eq!(file_hash(&p), before);
}

// ------------------------------------------------------------------------

#[test]
fn sparse_grow_to_64_tib_stays_small() {
    let d = big_tempdir();
    let p = d.path().join("big.img");
    write_gpt_image(&p, 1 << 30, 2048, 1_024_000);
    let target: u64 = 64 << 40;
    let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
    let target = if img.set_len(target).is_ok() {
        target
    } else {
        assert!(!in_ci(), "no filesystem here can hold a 64 TiB sparse file");
        (16 << 40) - 4096
    };
    drop(img);
    let o = run(ebsim("growpart")
        .args(["big.img", "1"])
        .current_dir(d.path()));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let sectors = target / 512;
    assert_eq!(
        stdout(&o),
        format!(
            "CHANGED: partition=1 start=2048 old: size=1024000 end=1026047 new: size={} end={}\n",
            sectors - 34 - 2048 + 1,
            sectors - 34
        )
    );
    let used = allocated(&p);
    assert!(used < 1 << 20, "allocated {used} bytes");
}

#[test]
fn grown_tables_read_back_with_the_gpt_crate() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.img");
    write_gpt_image(&p, 1 << 30, 2048, 1_024_000);
    ImageFile::open(&p, Access::ReadWrite)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let o = run(ebsim("growpart").args(["x.img", "1"]).current_dir(d.path()));
    assert_eq!(o.status.code(), Some(0));
    let disk = gpt::GptConfig::new().writable(false).open(&p).unwrap();
    let parts = disk.partitions();
    let p1 = parts.get(&1).unwrap();
    assert_eq!(p1.first_lba, 2048);
    assert_eq!(p1.last_lba, 3 * 2 * 1024 * 1024 - 34);
    assert_eq!(disk.header().backup_lba, 3 * 2 * 1024 * 1024 - 1);
    assert_eq!(disk.header().last_usable, 3 * 2 * 1024 * 1024 - 34);
}

/// Crash safety: stop growpart's commit after every possible number of
/// writes; the next open rolls the image back to exactly what it was, and a
/// clean run then succeeds.
#[test]
fn interrupted_growpart_rolls_back_at_every_write() {
    for mbr in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.img");
        if mbr {
            use ebsim::partition::{script, sfdisk};
            let mut img = ImageFile::create(&p, 1 << 30).unwrap();
            let s = script::parse(
                "label: dos\nlabel-id: 0x01020304\n\nx1 : start=2048, size=204800, type=83\nx2 : start=206848, size=409600, type=5\nx5 : start=208896, size=100000, type=83\nx6 : start=311296, size=100000, type=83\n",
            )
            .unwrap();
            let batch = sfdisk::apply(&img, &s).unwrap().batch;
            img.commit(&batch).unwrap();
        } else {
            write_gpt_image(&p, 1 << 30, 2048, 1_024_000);
        }
        ImageFile::open(&p, Access::ReadWrite)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let part = if mbr { "2" } else { "1" };
        let before = file_hash(&p);
        let mut writes = 0;
        loop {
            let o = run(ebsim("growpart")
                .args(["c.img", part])
                .current_dir(d.path())
                .env("EBSIM_FAULT_AFTER_WRITES", writes.to_string()));
            if o.status.code() == Some(0) {
                break;
            }
            assert_eq!(
                stdout(&o),
                "FAILED: failed to resize\n",
                "after {writes} writes"
            );
            // Opening rolls the interrupted change back.
            drop(ImageFile::open(&p, Access::ReadOnly).unwrap());
            assert_eq!(
                file_hash(&p),
                before,
                "mbr={mbr}: not rolled back after {writes} writes"
            );
            writes += 1;
            assert!(writes < 50, "the fault hook never let the commit finish");
        }
        assert!(writes >= 3, "expected several writes, saw {writes}");
        let o = run(ebsim("growpart")
            .args(["c.img", part])
            .current_dir(d.path()));
        assert_eq!(o.status.code(), Some(1), "already grown: {}", stdout(&o));
        if have_tool("sgdisk") && !mbr {
            let v = run(Command::new("sgdisk").arg("-v").arg(&p));
            assert!(stdout(&v).contains("No problems found"), "{}", stdout(&v));
        }
    }
}

/// An image file under `/dev/` (a scratch image in `/dev/shm`) is a file of
/// this machine, not an instance's device: growpart and mkfs.ext4 act on it
/// with no instance anywhere.
#[test]
fn an_image_in_dev_shm_is_a_host_file() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return;
    }
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir_in(shm).expect("tempdir in /dev/shm");
    let img = dir.path().join("disk.img");
    write_gpt_image(&img, 64 * M, 2048, 2048);
    std::fs::File::options()
        .write(true)
        .open(&img)
        .and_then(|f| f.set_len(128 * M))
        .expect("grow the file");
    let out = ebsim("growpart")
        .arg(&img)
        .arg("1")
        .env("EBSIM_HOME", home.path())
        .env_remove("EBSIM_INSTANCE")
        .output()
        .expect("growpart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("CHANGED: partition=1"), "{stdout}");
    let out = ebsim("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .env("EBSIM_HOME", home.path())
        .env_remove("EBSIM_INSTANCE")
        .output()
        .expect("mkfs.ext4");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_dir(home.path())
            .expect("home")
            .next()
            .is_none(),
        "no cloud state was made"
    );
}
