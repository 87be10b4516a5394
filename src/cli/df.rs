//! `df` (GNU coreutils 9.1): the instance's mounted filesystems. Parsing
//! copies df.c's getopt_long loop by hand: the last of -h/-H/-k/-m/-B
//! wins, -P/-T/-i conflict with --output in either order, `-B` takes
//! gnulib's block sizes, and the messages and exit codes are df's.

use std::ffi::OsString;

use ebsim::guest::Snapshot;
use ebsim::guest::df::{
    self as render, BlockSizeError, Field, FileResult, HeaderMode, Options, Row, Selection,
};
use ebsim::guest::human::opts;

use super::env;
use super::getopt::{LongOpt, getopt_long};
use super::output::Output;
use ebsim::compat::{quote, quotef};

const OPTSTRING: &str = "aB:iF:hHklmPTt:vx:";

const OUTPUT_OPTION: char = '\u{80}';
const SYNC_OPTION: char = '\u{81}';
const NO_SYNC_OPTION: char = '\u{82}';
const TOTAL_OPTION: char = '\u{83}';
const HELP_OPTION: char = '\u{84}';
const VERSION_OPTION: char = '\u{85}';

const LONGOPTS: &[LongOpt] = &[
    LongOpt::flag("all", 'a'),
    LongOpt::arg("block-size", 'B'),
    LongOpt::flag("inodes", 'i'),
    LongOpt::flag("human-readable", 'h'),
    LongOpt::flag("si", 'H'),
    LongOpt::flag("local", 'l'),
    LongOpt::optional("output", OUTPUT_OPTION),
    LongOpt::flag("portability", 'P'),
    LongOpt::flag("print-type", 'T'),
    LongOpt::flag("sync", SYNC_OPTION),
    LongOpt::flag("no-sync", NO_SYNC_OPTION),
    LongOpt::flag("total", TOTAL_OPTION),
    LongOpt::arg("type", 't'),
    LongOpt::arg("exclude-type", 'x'),
    LongOpt::flag("help", HELP_OPTION),
    LongOpt::flag("version", VERSION_OPTION),
];

const TRY_HELP: &str = "Try 'df --help' for more information.\n";

const USAGE: &str = "Usage: df [OPTION]... [FILE]...
Show information about the file system on which each FILE resides,
or all file systems by default (ebsim: those of the emulated instance).

  -a, --all             include pseudo, duplicate, inaccessible file systems
  -B, --block-size=SIZE  scale sizes by SIZE before printing them
  -h, --human-readable  print sizes in powers of 1024 (e.g., 1023M)
  -H, --si              print sizes in powers of 1000 (e.g., 1.1G)
  -i, --inodes          list inode information instead of block usage
  -k                    like --block-size=1K
  -l, --local           limit listing to local file systems
      --output[=FIELD_LIST]  use the output format defined by FIELD_LIST,
                               or print all fields if FIELD_LIST is omitted.
  -P, --portability     use the POSIX output format
      --total           elide all entries insignificant to available space,
                          and produce a grand total
  -t, --type=TYPE       limit listing to file systems of type TYPE
  -T, --print-type      print file system type
  -x, --exclude-type=TYPE   limit listing to file systems not of type TYPE
      --help        display this help and exit
      --version     output version information and exit

FIELD_LIST is a comma-separated list of columns to be included.  Valid
field names are: 'source', 'fstype', 'itotal', 'iused', 'iavail', 'ipcent',
'size', 'used', 'avail', 'pcent', 'file' and 'target' (see info page).
";

/// Everything the command line asks for.
#[derive(Debug)]
struct Request {
    opts: Options,
    sel: Selection,
    files: Vec<String>,
}

enum Parsed {
    Help,
    Version,
    Run(Request),
}

fn usage_error(msg: String) -> Output {
    Output::error(format!("{msg}{TRY_HELP}"), 1)
}

fn parse(args: &[String], utf8: bool) -> Result<Parsed, Output> {
    let (list, files) = getopt_long(args.get(1..).unwrap_or(&[]), OPTSTRING, LONGOPTS)
        .strict()
        .map_err(|e| usage_error(e.message("df")))?;
    let mut sel = Selection::default();
    let mut human: Option<(u32, u64)> = None;
    let mut header_mode = HeaderMode::Default;
    let mut print_type = false;
    let mut posix = false;
    let mut total = false;
    let mut fields: Vec<Field> = Vec::new();
    let excl =
        |a: &str, b: &str| usage_error(format!("df: options {a} and {b} are mutually exclusive\n"));
    for p in &list {
        match p.val {
            'a' => sel.all = true,
            'B' => {
                let arg = p.arg.clone().unwrap_or_default();
                match render::parse_block_size(&arg) {
                    Ok(v) => human = Some(v),
                    Err(e) => {
                        let opt = p.spelling();
                        let msg = match e {
                            BlockSizeError::Invalid => {
                                format!("df: invalid {opt} argument '{arg}'\n")
                            }
                            BlockSizeError::InvalidSuffix => {
                                format!("df: invalid suffix in {opt} argument '{arg}'\n")
                            }
                            BlockSizeError::Overflow => {
                                format!("df: {opt} argument '{arg}' too large\n")
                            }
                        };
                        return Err(Output::error(msg, 1));
                    }
                }
            }
            'i' => {
                if header_mode == HeaderMode::Output {
                    return Err(excl("-i", "--output"));
                }
                header_mode = HeaderMode::Inodes;
            }
            'h' => human = Some((opts::AUTOSCALE | opts::SI | opts::BASE_1024, 1)),
            'H' => human = Some((opts::AUTOSCALE | opts::SI, 1)),
            'k' => human = Some((0, 1024)),
            'm' => human = Some((0, 1024 * 1024)),
            'l' => sel.local = true,
            'T' => {
                if header_mode == HeaderMode::Output {
                    return Err(excl("-T", "--output"));
                }
                print_type = true;
            }
            'P' => {
                if header_mode == HeaderMode::Output {
                    return Err(excl("-P", "--output"));
                }
                posix = true;
            }
            SYNC_OPTION | NO_SYNC_OPTION | 'v' => {}
            'F' | 't' => sel.types.push(p.arg.clone().unwrap_or_default()),
            'x' => sel.exclude.push(p.arg.clone().unwrap_or_default()),
            OUTPUT_OPTION => {
                if header_mode == HeaderMode::Inodes {
                    return Err(excl("-i", "--output"));
                }
                if posix && header_mode == HeaderMode::Default {
                    return Err(excl("-P", "--output"));
                }
                if print_type {
                    return Err(excl("-T", "--output"));
                }
                header_mode = HeaderMode::Output;
                if let Some(arg) = &p.arg {
                    for name in arg.split(',') {
                        let f = Field::parse(name).ok_or_else(|| {
                            usage_error(format!(
                                "df: option --output: field {} unknown\n",
                                quote(name, utf8)
                            ))
                        })?;
                        if fields.contains(&f) {
                            return Err(usage_error(format!(
                                "df: option --output: field {} used more than once\n",
                                quote(f.name(), utf8)
                            )));
                        }
                        fields.push(f);
                    }
                }
            }
            TOTAL_OPTION => total = true,
            HELP_OPTION => return Ok(Parsed::Help),
            VERSION_OPTION => return Ok(Parsed::Version),
            _ => return Err(usage_error(String::new())),
        }
    }
    // Without a size option: -P means 1024-byte blocks; otherwise
    // DF_BLOCK_SIZE/BLOCK_SIZE/BLOCKSIZE would be read (ebsim does not
    // look at the host's environment for the guest) and the default is 1K.
    let (human_opts, block_size) = human.unwrap_or((0, 1024));
    if !matches!(header_mode, HeaderMode::Inodes | HeaderMode::Output) {
        if human_opts & opts::AUTOSCALE != 0 {
            header_mode = HeaderMode::Human;
        } else if posix {
            header_mode = HeaderMode::Posix;
        }
    }
    let mut errors = String::new();
    for t in &sel.types {
        if sel.exclude.contains(t) {
            errors.push_str(&format!(
                "df: file system type {} both selected and excluded\n",
                quote(t, utf8)
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Output::error(errors, 1));
    }
    let fields = match header_mode {
        HeaderMode::Output if fields.is_empty() => Field::all(),
        HeaderMode::Output => fields,
        HeaderMode::Inodes => render::default_fields(true, print_type),
        _ => render::default_fields(false, print_type),
    };
    Ok(Parsed::Run(Request {
        opts: Options {
            fields,
            header_mode,
            human_opts,
            block_size,
            total,
        },
        sel,
        files,
    }))
}

/// Runs df on `snap`; `args[0]` is the program name. Messages use the
/// quotes of a UTF-8 locale (the locale of the captured fixtures).
pub fn run_with(args: &[String], snap: &Snapshot) -> Output {
    run_locale(args, snap, true)
}

fn run_locale(args: &[String], snap: &Snapshot, utf8: bool) -> Output {
    let req = match parse(args, utf8) {
        Err(out) => return out,
        Ok(Parsed::Help) => {
            return Output {
                stdout: USAGE.into(),
                ..Output::default()
            };
        }
        Ok(Parsed::Version) => {
            return Output {
                stdout: "df (GNU coreutils) 9.1\n".into(),
                ..Output::default()
            };
        }
        Ok(Parsed::Run(r)) => r,
    };
    let mut stderr = String::new();
    let mut code = 0;
    let mut rows: Vec<Row> = Vec::new();
    if req.files.is_empty() {
        rows = render::select_all(&snap.mounts, &req.sel);
    } else {
        // df stats every argument first (reporting missing ones), then
        // looks each remaining one up.
        let mut found = Vec::new();
        for f in &req.files {
            let is_dev = snap.device(f).is_some();
            match render::select_file(&snap.mounts, f, is_dev, &req.sel) {
                FileResult::NotFound => {
                    stderr.push_str(&format!("df: {}: No such file or directory\n", quotef(f)));
                    code = 1;
                }
                r => found.push((f, r)),
            }
        }
        for (f, r) in found {
            match r {
                FileResult::Row(Some(row)) => rows.push(row),
                FileResult::Row(None) | FileResult::NotFound => {}
                FileResult::OverMounted => {
                    stderr.push_str(&format!(
                        "df: cannot access {}: over-mounted by another device\n",
                        quote(f, utf8)
                    ));
                    code = 1;
                }
            }
        }
    }
    if rows.is_empty() {
        if code == 0 {
            stderr.push_str("df: no file systems processed\n");
            code = 1;
        }
        return Output {
            stdout: String::new(),
            stderr,
            code,
        };
    }
    Output {
        stdout: render::render(&rows, &req.opts),
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
    let utf8 = env::utf8_locale();
    // Options are checked before the instance is looked up, as df checks
    // them before reading the mount table.
    match parse(&args, utf8) {
        Err(out) => return out.emit(),
        Ok(Parsed::Help) | Ok(Parsed::Version) => {
            let snap = Snapshot::empty(ebsim::guest::lsblk::UtilLinux::V2_37);
            return run_with(&args, &snap).emit();
        }
        Ok(Parsed::Run(_)) => {}
    }
    match env::snapshot() {
        Ok(snap) => run_locale(&args, &snap, utf8).emit(),
        Err(msg) => Output::error(format!("df: {msg}\n"), 1).emit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebsim::guest::df::{Mount, StatFs};
    use ebsim::guest::lsblk::{Device, UtilLinux};

    fn mount(source: &str, fstype: &str, target: &str, st: [u64; 6]) -> Mount {
        Mount {
            source: source.into(),
            fstype: fstype.into(),
            target: target.into(),
            stat: StatFs {
                blocks: st[0],
                bfree: st[1],
                bavail: st[2],
                files: st[3],
                ffree: st[4],
                frsize: st[5],
            },
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            devices: vec![Device {
                name: "xvdf".into(),
                major: 202,
                minor: 80,
                kind: "disk".into(),
                ..Default::default()
            }],
            mounts: vec![
                mount(
                    "/dev/xvda1",
                    "ext4",
                    "/",
                    [2038647, 2038641, 1929688, 524288, 524277, 4096],
                ),
                mount("tmpfs", "tmpfs", "/run", [0, 0, 0, 0, 0, 4096]),
                mount(
                    "/dev/xvdf",
                    "xfs",
                    "/var/lib",
                    [52403200, 52029572, 52029572, 104857600, 104857597, 4096],
                ),
            ],
            util_linux: UtilLinux::V2_37,
        }
    }

    fn run(a: &[&str]) -> Output {
        let mut args = vec!["df".to_string()];
        args.extend(a.iter().map(|s| s.to_string()));
        run_with(&args, &snap())
    }

    #[test]
    fn default_and_human() {
        let o = run(&[]);
        assert_eq!(
            o.stdout,
            "Filesystem     1K-blocks    Used Available Use% Mounted on\n\
             /dev/xvda1       8154588      24   7718752   1% /\n\
             /dev/xvdf      209612800 1494512 208118288   1% /var/lib\n"
        );
        let o = run(&["-hT", "/var/lib/mysql"]);
        assert_eq!(
            o.stdout,
            "Filesystem     Type  Size  Used Avail Use% Mounted on\n\
             /dev/xvdf      xfs   200G  1.5G  199G   1% /var/lib\n"
        );
        // The last size option wins.
        assert!(
            run(&["-h", "-m", "/"])
                .stdout
                .starts_with("Filesystem     1M-blocks")
        );
        assert!(
            run(&["-m", "-h", "/"])
                .stdout
                .starts_with("Filesystem      Size")
        );
        assert!(
            run(&["--block-size=1K", "/"])
                .stdout
                .starts_with("Filesystem     1K-blocks")
        );
        assert!(
            run(&["-Pk", "/"])
                .stdout
                .starts_with("Filesystem     1024-blocks")
        );
        assert!(
            run(&["-P", "-BG", "/"]).stdout.starts_with(
                "Filesystem     1073741824-blocks  Used Available Capacity Mounted on\n"
            )
        );
    }

    #[test]
    fn device_and_type_arguments() {
        let o = run(&["/dev/xvdf"]);
        assert!(o.stdout.ends_with("/var/lib\n"), "{}", o.stdout);
        let o = run(&["-t", "foo"]);
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str(), o.code),
            ("", "df: no file systems processed\n", 1)
        );
        let o = run(&["-x", "ext4", "/"]);
        assert_eq!(o.stderr, "df: no file systems processed\n");
        let o = run(&["-t", "ext4", "-x", "ext4"]);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            (
                "df: file system type \u{2018}ext4\u{2019} both selected and excluded\n",
                1
            )
        );
        let o = run(&["-t", "xfs", "-t", "ext4"]);
        assert_eq!(o.stdout.lines().count(), 3);
    }

    #[test]
    fn messages_and_exit_codes() {
        let mut s = snap();
        s.mounts.remove(0);
        let o = run_with(&["df".into(), "/nonexistent".into()], &s);
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str(), o.code),
            ("", "df: /nonexistent: No such file or directory\n", 1)
        );
        let o = run_with(&["df".into(), "/var/lib".into(), "/nonexistent".into()], &s);
        assert_eq!(o.code, 1);
        assert!(o.stdout.contains("/var/lib"));
        for (args, msg) in [
            (
                &["--output=foo"][..],
                "df: option --output: field \u{2018}foo\u{2019} unknown\nTry 'df --help' for more information.\n",
            ),
            (
                &["--output=source,source"],
                "df: option --output: field \u{2018}source\u{2019} used more than once\nTry 'df --help' for more information.\n",
            ),
            (
                &["--output=source,"],
                "df: option --output: field \u{2018}\u{2019} unknown\nTry 'df --help' for more information.\n",
            ),
            (
                &["-P", "--output"],
                "df: options -P and --output are mutually exclusive\nTry 'df --help' for more information.\n",
            ),
            (
                &["--output", "-T"],
                "df: options -T and --output are mutually exclusive\nTry 'df --help' for more information.\n",
            ),
            (
                &["-i", "--output"],
                "df: options -i and --output are mutually exclusive\nTry 'df --help' for more information.\n",
            ),
            (&["-B", "0"], "df: invalid -B argument '0'\n"),
            (&["-B", "1Q"], "df: invalid suffix in -B argument '1Q'\n"),
            (
                &["--block-size=foo"],
                "df: invalid --block-size argument 'foo'\n",
            ),
            (
                &["--block-size=99999999999999999999"],
                "df: --block-size argument '99999999999999999999' too large\n",
            ),
            (
                &["-B"],
                "df: option requires an argument -- 'B'\nTry 'df --help' for more information.\n",
            ),
            (
                &["--t"],
                "df: option '--t' is ambiguous; possibilities: '--total' '--type'\nTry 'df --help' for more information.\n",
            ),
            (
                &["--foo"],
                "df: unrecognized option '--foo'\nTry 'df --help' for more information.\n",
            ),
        ] {
            let o = run(args);
            assert_eq!(
                (o.stderr.as_str(), o.code, o.stdout.as_str()),
                (msg, 1, ""),
                "{args:?}"
            );
        }
    }

    #[test]
    fn output_fields_and_total() {
        let o = run(&["--output=target,size", "--total", "/"]);
        assert_eq!(
            o.stdout,
            "Mounted on 1K-blocks\n/            8154588\ntotal        8154588\n"
        );
        let o = run(&["--output", "--output=source", "/"]);
        assert_eq!(o.stdout, "Filesystem\n/dev/xvda1\n");
        let o = run(&["--output=file,itotal,ipcent", "-h", "/var/lib"]);
        assert_eq!(o.stdout, "File     Inodes IUse%\n/var/lib   100M    1%\n");
        let o = run(&["-i", "-BKiB", "/"]);
        assert!(o.stdout.contains("524288B"), "{}", o.stdout);
    }
}
