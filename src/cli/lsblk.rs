//! `lsblk` (util-linux 2.38.1, or the instance image's older one): the
//! instance's block devices. Parsing copies lsblk's getopt_long loop by
//! hand: `-o` keeps only its last list, `-f` adds its columns once each,
//! `-o +LIST` appends, exclusive option groups and unknown columns fail
//! with lsblk's messages, and device arguments exit 32 (none found) or 64
//! (some found) as lsblk does.

use std::ffi::OsString;

use ebsim::guest::Snapshot;
use ebsim::guest::lsblk::{
    self as render, Column, ColumnListError, Format, Options, Root, UtilLinux,
};

use super::env;
use super::getopt::{LongOpt, getopt_long};
use super::output::Output;

/// lsblk's exit code when no device argument was found.
const EXIT_ALLFAILED: i32 = 32;
/// lsblk's exit code when some device arguments were not found.
const EXIT_SOMEOK: i32 = 64;

const OPTSTRING: &str = "AabdDzE:e:fhJlnMmo:OpPiI:rstVST::w:x:y";

const LONGOPTS: &[LongOpt] = &[
    LongOpt::flag("all", 'a'),
    LongOpt::flag("bytes", 'b'),
    LongOpt::flag("nodeps", 'd'),
    LongOpt::flag("noempty", 'A'),
    LongOpt::flag("discard", 'D'),
    LongOpt::arg("dedup", 'E'),
    LongOpt::flag("zoned", 'z'),
    LongOpt::flag("help", 'h'),
    LongOpt::flag("json", 'J'),
    LongOpt::arg("output", 'o'),
    LongOpt::flag("output-all", 'O'),
    LongOpt::flag("merge", 'M'),
    LongOpt::flag("perms", 'm'),
    LongOpt::flag("noheadings", 'n'),
    LongOpt::flag("list", 'l'),
    LongOpt::flag("ascii", 'i'),
    LongOpt::flag("raw", 'r'),
    LongOpt::flag("inverse", 's'),
    LongOpt::flag("fs", 'f'),
    LongOpt::arg("exclude", 'e'),
    LongOpt::arg("include", 'I'),
    LongOpt::flag("topology", 't'),
    LongOpt::flag("paths", 'p'),
    LongOpt::flag("pairs", 'P'),
    LongOpt::flag("scsi", 'S'),
    LongOpt::arg("sort", 'x'),
    LongOpt::arg("sysroot", '\u{80}'),
    LongOpt::flag("shell", 'y'),
    LongOpt::optional("tree", 'T'),
    LongOpt::flag("version", 'V'),
    LongOpt::arg("width", 'w'),
];

/// lsblk's groups of mutually exclusive options that ebsim can meet
/// (lsblk.c `excl[]`; the others pair options ebsim refuses anyway).
const EXCLUSIVE: &[&[char]] = &[&['I', 'e'], &['J', 'P', 'r'], &['P', 'T', 'l', 'r']];

fn long_name(c: char) -> Option<&'static str> {
    LONGOPTS.iter().find(|o| o.val == c).map(|o| o.name)
}

/// A comma-separated list of major numbers as lsblk's `parse_excludes`
/// reads it (decimal, `strtoul`; a trailing comma ends the list).
fn parse_majors(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let t = rest.trim_start();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 {
            return None;
        }
        // C stores the unsigned long in an int: only the low bits count.
        let n: u64 = t[..digits].parse().unwrap_or(u64::MAX);
        out.push(n as u32);
        rest = match &t[digits..] {
            "" => "",
            r => r.strip_prefix(',')?,
        };
    }
    Some(out)
}

/// What the command line asks for.
#[derive(Debug)]
enum Request {
    Help,
    Version,
    List(Options, Vec<String>),
}

const USAGE: &str = "
Usage:
 lsblk [options] [<device> ...]

List information about block devices (ebsim: the devices of the emulated
instance).

Options:
 -I, --include <list> show only devices with specified major numbers
 -J, --json           use JSON output format
 -O, --output-all     (not supported by ebsim)
 -P, --pairs          use key=\"value\" output format
 -a, --all            print all devices
 -b, --bytes          print SIZE in bytes rather than in human readable format
 -d, --nodeps         don't print slaves or holders
 -e, --exclude <list> exclude devices by major number (default: RAM disks)
 -f, --fs             output info about filesystems
 -i, --ascii          use ascii characters only
 -l, --list           use list format output
 -n, --noheadings     don't print headings
 -o, --output <list>  output columns
 -p, --paths          print complete device path
 -r, --raw            use raw output format

 -h, --help           display this help
 -V, --version        display version

Available output columns:
 NAME KNAME PATH PKNAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINT MOUNTPOINTS
 FSTYPE FSVER LABEL UUID PARTUUID PARTLABEL PARTTYPE PTUUID PTTYPE
 FSSIZE FSUSED FSAVAIL FSUSE% SERIAL MODEL
";

fn parse(args: &[String], v: UtilLinux) -> Result<Request, Output> {
    let try_help = "Try 'lsblk --help' for more information.\n";
    let (opts, operands) = getopt_long(args.get(1..).unwrap_or(&[]), OPTSTRING, LONGOPTS)
        .strict()
        .map_err(|e| Output::error(format!("{}{try_help}", e.message("lsblk")), 1))?;
    let mut o = Options::new(v);
    let mut columns: Vec<Column> = Vec::new();
    let mut outarg: Option<String> = None;
    let mut excl_state = vec![None::<char>; EXCLUSIVE.len()];
    let mut json = false;
    for p in &opts {
        for (g, group) in EXCLUSIVE.iter().enumerate() {
            if !group.contains(&p.val) {
                continue;
            }
            match excl_state[g] {
                None => excl_state[g] = Some(p.val),
                Some(c) if c != p.val => {
                    let names: Vec<String> = group
                        .iter()
                        .map(|&c| match long_name(c) {
                            Some(n) => format!("--{n}"),
                            None => format!("-{c}"),
                        })
                        .collect();
                    return Err(Output::error(
                        format!("lsblk: mutually exclusive arguments: {}\n", names.join(" ")),
                        1,
                    ));
                }
                _ => {}
            }
        }
        match p.val {
            // -a shows empty and RAM devices (an instance has none, but a
            // -a listing excludes nothing by default); -A hides empty
            // devices, of which an instance has none.
            'a' => o.all = true,
            'A' => {}
            'e' | 'I' => {
                let list = p.arg.clone().unwrap_or_default();
                let majors = parse_majors(&list).ok_or_else(|| {
                    Output::error(format!("lsblk: failed to parse list '{list}'\n"), 1)
                })?;
                if p.val == 'e' {
                    o.excludes.extend(majors);
                } else {
                    o.includes.extend(majors);
                }
            }
            'b' => o.bytes = true,
            'd' => o.nodeps = true,
            'J' => json = true,
            'l' => o.tree = false,
            'n' => o.noheadings = true,
            'o' => outarg = p.arg.clone(),
            'p' => o.paths = true,
            'P' => {
                o.format = Format::Pairs;
                o.tree = false;
            }
            'i' => o.ascii = true,
            'r' => {
                o.format = Format::Raw;
                o.tree = false;
            }
            'f' => {
                for c in render::fs_columns(v) {
                    if !columns.contains(&c) {
                        columns.push(c);
                    }
                }
            }
            'h' => return Ok(Request::Help),
            'V' => return Ok(Request::Version),
            _ => {
                return Err(Output::error(
                    format!(
                        "lsblk: option {} is not supported by ebsim\n{try_help}",
                        p.spelling()
                    ),
                    1,
                ));
            }
        }
    }
    if json {
        o.format = Format::Json;
    }
    if columns.is_empty() {
        columns = render::default_columns(v);
    }
    if let Some(list) = outarg {
        let (add, body) = match list.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, list.as_str()),
        };
        match Column::parse_list(body, v) {
            Ok(cols) => {
                if !add {
                    columns.clear();
                }
                columns.extend(cols);
            }
            Err(ColumnListError::Empty) => return Err(Output::error(String::new(), 1)),
            Err(ColumnListError::Unknown(rest)) => {
                return Err(Output::error(format!("lsblk: unknown column: {rest}\n"), 1));
            }
        }
    }
    o.columns = columns;
    Ok(Request::List(o, operands))
}

/// Runs lsblk on `snap`; `args[0]` is the program name. Tree art is
/// UTF-8 (the locale of the captured fixtures).
pub fn run_with(args: &[String], snap: &Snapshot) -> Output {
    run_locale(args, snap, true)
}

fn run_locale(args: &[String], snap: &Snapshot, utf8: bool) -> Output {
    match parse(args, snap.util_linux) {
        Err(out) => out,
        Ok(Request::Help) => Output {
            stdout: USAGE.to_string(),
            ..Output::default()
        },
        Ok(Request::Version) => Output {
            stdout: format!("lsblk from util-linux {}\n", snap.util_linux.release()),
            ..Output::default()
        },
        Ok(Request::List(mut o, devs)) => {
            o.ascii |= !utf8;
            list(&o, &devs, snap)
        }
    }
}

fn list(o: &Options, devs: &[String], snap: &Snapshot) -> Output {
    if devs.is_empty() {
        return Output {
            stdout: render::render(&snap.devices, o),
            ..Output::default()
        };
    }
    let mut stderr = String::new();
    let mut roots = Vec::new();
    let mut failed = 0;
    for d in devs {
        match snap.device(d) {
            Some((dev, disk)) => roots.push(Root { dev, disk }),
            None => {
                stderr.push_str(&format!("lsblk: {d}: not a block device\n"));
                failed += 1;
            }
        }
    }
    let code = if failed == devs.len() {
        EXIT_ALLFAILED
    } else if failed > 0 {
        EXIT_SOMEOK
    } else {
        0
    };
    Output {
        // With no device found the table is empty: nothing, or an empty
        // JSON array.
        stdout: render::render_roots(&roots, o),
        stderr,
        code,
    }
}

/// The applet.
pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Options are checked before the instance is looked up, as lsblk
    // checks them before reading /sys.
    match parse(&args, UtilLinux::V2_37) {
        Err(out) => return out.emit(),
        Ok(Request::Help) => return run_with(&args, &Snapshot::empty(UtilLinux::V2_37)).emit(),
        _ => {}
    }
    match env::snapshot() {
        Ok(snap) => run_locale(&args, &snap, env::utf8_locale()).emit(),
        Err(msg) => Output::error(format!("lsblk: {msg}\n"), 1).emit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebsim::guest::lsblk::{Device, FsUsage};

    fn snap() -> Snapshot {
        let part = |name: &str, minor, size, mp: &[&str]| Device {
            name: name.into(),
            major: 202,
            minor,
            size,
            kind: "part".into(),
            mountpoints: mp.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut root = part("xvda1", 1, 8 << 30, &["/"]);
        root.fstype = Some("ext4".into());
        root.fsver = Some("1.0".into());
        root.uuid = Some("11111111-2222-3333-4444-555555555555".into());
        root.label = Some("cloudimg-rootfs".into());
        root.fs = Some(FsUsage {
            frsize: 4096,
            blocks: 2038647,
            bfree: 2038641,
            bavail: 1929688,
        });
        Snapshot {
            devices: vec![
                Device {
                    name: "xvda".into(),
                    major: 202,
                    minor: 0,
                    size: 16 << 30,
                    kind: "disk".into(),
                    children: vec![root],
                    ..Default::default()
                },
                Device {
                    name: "xvdf".into(),
                    major: 202,
                    minor: 80,
                    size: 200 << 30,
                    kind: "disk".into(),
                    mountpoints: vec!["/var/lib".into()],
                    ..Default::default()
                },
            ],
            mounts: Vec::new(),
            util_linux: UtilLinux::V2_37,
        }
    }

    fn run(a: &[&str]) -> Output {
        let mut args = vec!["lsblk".to_string()];
        args.extend(a.iter().map(|s| s.to_string()));
        run_with(&args, &snap())
    }

    #[test]
    fn default_listing() {
        let o = run(&[]);
        assert_eq!(o.code, 0);
        assert_eq!(
            o.stdout,
            "NAME    MAJ:MIN RM  SIZE RO TYPE MOUNTPOINTS\n\
             xvda    202:0    0   16G  0 disk \n\
             \u{2514}\u{2500}xvda1 202:1    0    8G  0 part /\n\
             xvdf    202:80   0  200G  0 disk /var/lib\n"
        );
    }

    #[test]
    fn combined_short_options_and_output_lists() {
        let o = run(&["-no", "NAME,SIZE", "/dev/xvdf"]);
        assert_eq!(o.stdout, "xvdf  200G\n");
        let o = run(&["-bno", "SIZE", "/dev/xvdf"]);
        assert_eq!(o.stdout, "214748364800\n");
        let o = run(&["-dn", "-o", "name"]);
        assert_eq!(o.stdout, "xvda\nxvdf\n");
        // -o replaces -f's columns; -o + appends to them.
        let o = run(&["-f", "-o", "NAME", "-d"]);
        assert_eq!(o.stdout, "NAME\nxvda\nxvdf\n");
        let o = run(&["-f", "-o", "+SIZE", "/dev/xvda1"]);
        assert!(o.stdout.starts_with("NAME  FSTYPE FSVER LABEL           UUID                                 FSAVAIL FSUSE% MOUNTPOINTS SIZE\n"), "{}", o.stdout);
        // The last -o wins.
        let o = run(&["-o", "SIZE", "-o", "NAME", "-d"]);
        assert_eq!(o.stdout, "NAME\nxvda\nxvdf\n");
        let o = run(&["-bf", "-d"]);
        assert!(
            o.stdout
                .starts_with("NAME FSTYPE FSVER LABEL UUID FSAVAIL FSUSE% MOUNTPOINTS\n"),
            "{}",
            o.stdout
        );
    }

    #[test]
    fn column_list_errors() {
        let e = |list: &str| {
            let o = run(&["-o", list]);
            (o.stderr, o.code, o.stdout)
        };
        assert_eq!(
            e("FOO"),
            ("lsblk: unknown column: FOO\n".into(), 1, String::new())
        );
        assert_eq!(
            e("NAME,FOO,SIZE"),
            ("lsblk: unknown column: FOO,SIZE\n".into(), 1, String::new())
        );
        assert_eq!(
            e("NAME,"),
            ("lsblk: unknown column: NAME,\n".into(), 1, String::new())
        );
        assert_eq!(e(",NAME"), (String::new(), 1, String::new()));
        assert_eq!(
            e("+FOO,BAR"),
            ("lsblk: unknown column: FOO,BAR\n".into(), 1, String::new())
        );
        let mut s = snap();
        s.util_linux = UtilLinux::V2_30;
        let o = run_with(&["lsblk".into(), "-o".into(), "MOUNTPOINTS".into()], &s);
        assert_eq!(o.stderr, "lsblk: unknown column: MOUNTPOINTS\n");
    }

    #[test]
    fn option_errors() {
        let o = run(&["-P", "-J"]);
        assert_eq!(
            o.stderr,
            "lsblk: mutually exclusive arguments: --json --pairs --raw\n"
        );
        let o = run(&["-l", "-r"]);
        assert_eq!(
            o.stderr,
            "lsblk: mutually exclusive arguments: --pairs --tree --list --raw\n"
        );
        let o = run(&["-q"]);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            (
                "lsblk: invalid option -- 'q'\nTry 'lsblk --help' for more information.\n",
                1
            )
        );
        let o = run(&["--no"]);
        assert_eq!(
            o.stderr,
            "lsblk: option '--no' is ambiguous; possibilities: '--nodeps' '--noempty' '--noheadings'\nTry 'lsblk --help' for more information.\n"
        );
        let o = run(&["-o"]);
        assert_eq!(
            o.stderr,
            "lsblk: option requires an argument -- 'o'\nTry 'lsblk --help' for more information.\n"
        );
        assert_eq!(run(&["-V"]).stdout, "lsblk from util-linux 2.38.1\n");
        let o = run(&["-e", "7", "-I", "202"]);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            (
                "lsblk: mutually exclusive arguments: --include --exclude\n",
                1
            )
        );
        let o = run(&["-e", "7,x"]);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            ("lsblk: failed to parse list '7,x'\n", 1)
        );
    }

    #[test]
    fn majors_excluded_and_included() {
        let names = |a: &[&str]| {
            let mut args = vec!["-d", "-n", "-o", "NAME"];
            args.extend_from_slice(a);
            run(&args).stdout
        };
        assert_eq!(names(&[]), "xvda\nxvdf\n");
        assert_eq!(names(&["-e", "7,"]), "xvda\nxvdf\n");
        assert_eq!(names(&["-e", "202"]), "");
        assert_eq!(names(&["-e", "7", "-e", " 202"]), "");
        assert_eq!(names(&["-I", "202"]), "xvda\nxvdf\n");
        assert_eq!(names(&["--include", "259"]), "");
        // A device named on the command line is shown whatever the filter.
        assert_eq!(names(&["-e", "202", "/dev/xvdf"]), "xvdf\n");
    }

    #[test]
    fn device_arguments_and_exit_codes() {
        let o = run(&["/dev/xvdz"]);
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str(), o.code),
            ("", "lsblk: /dev/xvdz: not a block device\n", 32)
        );
        let o = run(&["/dev/xvdf", "/nope"]);
        assert_eq!(o.code, 64);
        assert_eq!(o.stderr, "lsblk: /nope: not a block device\n");
        assert!(o.stdout.contains("xvdf 202:80"));
        // A partition alone; its disk and itself; the same device twice.
        let o = run(&["-o", "NAME,PKNAME", "/dev/xvda1"]);
        assert_eq!(o.stdout, "NAME  PKNAME\nxvda1 xvda\n");
        let o = run(&["-o", "NAME", "/dev/xvda1", "/dev/xvda", "/dev/xvda"]);
        assert_eq!(o.stdout, "NAME\nxvda\n\u{2514}\u{2500}xvda1\nxvda1\n");
        let o = run(&["-lo", "NAME", "/dev/xvda1", "/dev/xvda"]);
        assert_eq!(o.stdout, "NAME\nxvda\nxvda1\n");
        let o = run(&["-no", "NAME", "/dev/disk/by-label/cloudimg-rootfs"]);
        assert_eq!(o.stdout, "xvda1\n");
        let o = run(&["-no", "NAME", "/dev//./xvdf"]);
        assert_eq!(o.stdout, "xvdf\n");
    }

    #[test]
    fn json_parses_back() {
        for a in [
            &["-J"][..],
            &["-Jb"],
            &["-Jf"],
            &["-Jl"],
            &["-Jd"],
            &["-J", "-o", "NAME,FSSIZE,FSUSE%,MOUNTPOINT"],
        ] {
            let o = run(a);
            let v: serde_json::Value = serde_json::from_str(&o.stdout)
                .unwrap_or_else(|e| panic!("{a:?}: {e}\n{}", o.stdout));
            assert!(v["blockdevices"].is_array());
        }
    }
}
