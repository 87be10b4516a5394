//! `blkid` (util-linux 2.38.1, or the instance image's older one): the
//! tags of block devices. Inside an instance (and on the host for `/dev/`
//! names, `-L`, `-U` and the listing without operands) the devices are the
//! instance's, named as its lsblk names them; an operand that is a regular
//! file is probed as an image file, as the real blkid probes files.
//!
//! As measured on blkid 2.38.1: operands that do not exist, or are neither
//! regular files nor devices, are dropped before probing, silently; the
//! cache-based listing prints every operand with tags and exits 0 when one
//! had some, else 2; the low-level probe (`-p`) stops at the first device
//! without tags and exits 2 then. Usage errors exit 4, getopt's 1.

use std::ffi::OsString;

use ebsim::blockdev::ImageFile;
use ebsim::blockdev::image::Access;
use ebsim::guest::blkid::{self as bk, Format, Printer, Probed};
use ebsim::guest::lsblk::UtilLinux;

use super::env;
use super::getopt::{LongOpt, getopt_long};
use super::output::Output;

/// blkid's exit code when nothing is found.
const EXIT_NOTFOUND: i32 = 2;
/// blkid's exit code for a usage error.
const EXIT_USAGE: i32 = 4;

const OPTSTRING: &str = "c:DdgH:hilL:n:ko:O:ps:S:t:u:U:w:Vv";

const LONGOPTS: &[LongOpt] = &[
    LongOpt::arg("cache-file", 'c'),
    LongOpt::flag("no-encoding", 'd'),
    LongOpt::flag("no-part-details", 'D'),
    LongOpt::flag("garbage-collect", 'g'),
    LongOpt::arg("output", 'o'),
    LongOpt::flag("list-filesystems", 'k'),
    LongOpt::arg("match-tag", 's'),
    LongOpt::arg("match-token", 't'),
    LongOpt::flag("list-one", 'l'),
    LongOpt::arg("label", 'L'),
    LongOpt::arg("uuid", 'U'),
    LongOpt::flag("probe", 'p'),
    LongOpt::flag("info", 'i'),
    LongOpt::arg("hint", 'H'),
    LongOpt::arg("size", 'S'),
    LongOpt::arg("offset", 'O'),
    LongOpt::arg("usages", 'u'),
    LongOpt::arg("match-types", 'n'),
    LongOpt::flag("version", 'V'),
    LongOpt::flag("help", 'h'),
];

const USAGE: &str = "
Usage:
 blkid --label <label> | --uuid <uuid>

 blkid [--cache-file <file>] [-ghlLv] [--output <format>] [--match-tag <tag>] 
       [--match-token <token>] [<dev> ...]

 blkid -p [--match-tag <tag>] [--offset <offset>] [--size <size>] 
       [--output <format>] <dev> ...

 blkid -i [--match-tag <tag>] [--output <format>] <dev> ...

Options:
 -c, --cache-file <file>    read from <file> instead of reading from the default
                              cache file (-c /dev/null means no cache)
 -d, --no-encoding          don't encode non-printing characters
 -g, --garbage-collect      garbage collect the blkid cache
 -o, --output <format>      output format; can be one of:
                              value, device, export or full; (default: full)
 -k, --list-filesystems     list all known filesystems/RAIDs and exit
 -s, --match-tag <tag>      show specified tag(s) (default show all tags)
 -t, --match-token <token>  find device with a specific token (NAME=value pair)
 -l, --list-one             look up only first device with token specified by -t
 -L, --label <label>        convert LABEL to device name
 -U, --uuid <uuid>          convert UUID to device name

Low-level probing options:
 -p, --probe                low-level superblocks probing (bypass cache)
 -i, --info                 gather information about I/O limits
 -H, --hint <value>         set hint for probing function
 -S, --size <size>          overwrite device size
 -O, --offset <offset>      probe at the given offset
 -u, --usages <list>        filter by \"usage\" (e.g. -u filesystem,raid)
 -n, --match-types <list>   filter by filesystem type (e.g. -n vfat,ext3)
 -D, --no-part-details      don't print info from partition table

 -h, --help                 display this help
 -V, --version              display version

Arguments:
 <size> and <offset> arguments may be followed by the suffixes for
   GiB, TiB, PiB, EiB, ZiB, and YiB (the \"iB\" is optional)

 <dev> specify device(s) to probe (default: all devices)

For more details see blkid(8).
";

const TRY_HELP: &str = "Try 'blkid --help' for more information.\n";

/// What the command line asks for.
#[derive(Debug, Default)]
struct Opts {
    /// `-p`.
    low: bool,
    /// `-D`: no partition tags with `-p`.
    no_part: bool,
    /// Format, `-s`, `-d`.
    printer: Printer,
    /// `-t NAME=value`.
    token: Option<(String, String)>,
    /// `-l`.
    list_one: bool,
    /// `-L`/`-U`: the tag and value to find a device by.
    lookup: Option<(&'static str, String)>,
    /// The operands.
    devs: Vec<String>,
}

#[derive(Debug)]
enum Request {
    Help,
    Version,
    /// `-g`: nothing to print, exit 0.
    Nothing,
    Run(Opts),
}

fn usage_error(msg: &str) -> Output {
    Output::error(format!("blkid: {msg}\n"), EXIT_USAGE)
}

fn parse(args: &[String]) -> Result<Request, Output> {
    let (opts, operands) = getopt_long(args.get(1..).unwrap_or(&[]), OPTSTRING, LONGOPTS)
        .strict()
        .map_err(|e| Output::error(format!("{}{TRY_HELP}", e.message("blkid")), 1))?;
    let mut o = Opts {
        devs: operands,
        ..Opts::default()
    };
    let mut gc = false;
    for p in &opts {
        let arg = p.arg_or_empty();
        match p.val {
            // The cache: ebsim keeps none, so every run is `-c /dev/null`.
            'c' | 'w' => {}
            // Garbage collection of the cache, then nothing else.
            'g' => gc = true,
            'd' => o.printer.raw_chars = true,
            'D' => o.no_part = true,
            'p' => o.low = true,
            'l' => o.list_one = true,
            'L' => o.lookup = Some(("LABEL", arg)),
            'U' => o.lookup = Some(("UUID", arg)),
            's' => o.printer.show.push(arg),
            'o' => {
                o.printer.format = match arg.as_str() {
                    "value" => Format::Value,
                    "device" | "devname" => Format::Device,
                    "list" => Format::List,
                    "udev" => Format::Udev,
                    "export" => Format::Export,
                    "full" => Format::Full,
                    _ => return Err(usage_error(&format!("unsupported output format {arg}"))),
                }
            }
            't' => match arg.split_once('=') {
                Some((n, v)) => o.token = Some((n.to_string(), v.to_string())),
                None => {
                    return Err(Output::error(
                        format!("blkid: -t needs NAME=value pair\n{TRY_HELP}"),
                        EXIT_USAGE,
                    ));
                }
            },
            'h' => return Ok(Request::Help),
            'V' | 'v' => return Ok(Request::Version),
            _ => {
                return Err(usage_error(&format!(
                    "option {} is not supported by ebsim",
                    p.spelling()
                )));
            }
        }
    }
    if gc {
        return Ok(Request::Nothing);
    }
    if o.low && o.printer.format == Format::List {
        return Err(usage_error(
            "The low-level probing mode does not support 'list' output format",
        ));
    }
    if o.low && o.devs.is_empty() {
        return Err(usage_error("The low-level probing mode requires a device"));
    }
    Ok(Request::Run(o))
}

/// The devices blkid can see: the instance's, loaded on first need.
struct Devices {
    /// The instance's devices in blkid's listing order, and its util-linux;
    /// or why there is no instance.
    loaded: Option<Result<(Vec<Probed>, UtilLinux), String>>,
}

impl Devices {
    fn get(&mut self) -> &Result<(Vec<Probed>, UtilLinux), String> {
        self.loaded.get_or_insert_with(|| {
            let ec2 = env::ec2(ebsim::ec2::DEFAULT_REGION).map_err(|e| env::why(&e))?;
            let (disks, v) = ebsim::guest::context::blkid_disks(&ec2, env::instance().as_deref())
                .map_err(|e| env::why(&e))?;
            Ok((bk::sysfs_order(disks), v))
        })
    }

    /// The instance's device `arg` names: `/dev/NAME` or a
    /// `/dev/disk/by-*/` link.
    fn find(&mut self, arg: &str) -> Option<Probed> {
        let path = ebsim::guest::normalize_path(arg);
        let rest = path.strip_prefix("/dev/")?;
        let Ok((devs, _)) = self.get() else {
            return None;
        };
        match rest.split_once('/') {
            None => devs.iter().find(|d| d.path == path).cloned(),
            Some(("disk", link)) => {
                let (kind, value) = link.split_once('/')?;
                let tag = match kind {
                    "by-uuid" => "UUID",
                    "by-label" => "LABEL",
                    "by-partuuid" => "PARTUUID",
                    "by-partlabel" => "PARTLABEL",
                    _ => return None,
                };
                devs.iter().find(|d| has_tag(d, tag, value)).cloned()
            }
            Some(_) => None,
        }
    }
}

fn has_tag(d: &Probed, name: &str, value: &str) -> bool {
    d.tags.iter().any(|(n, v)| n == name && v == value)
}

/// An image file's tags as blkid shows the file (`path` as given).
fn probe_file(path: &str, v: UtilLinux) -> Result<Probed, String> {
    let img = ImageFile::open(path, Access::ReadOnly).map_err(|e| env::why(&e))?;
    // The first device is the disk itself: the file.
    let (_, mut d) = bk::probe_disk(&img, path, (0, 0), v, &|_| None)
        .into_iter()
        .next()
        .unwrap_or_default();
    d.path = path.to_string();
    Ok(d)
}

/// What one operand names: an instance device, an image file, or nothing
/// blkid would probe (dropped).
fn resolve(arg: &str, devices: &mut Devices, v: UtilLinux) -> Option<Result<Probed, String>> {
    if arg.starts_with("/dev/") {
        if let Some(mut d) = devices.find(arg) {
            // blkid prints the name as given (a link's, too).
            d.path = arg.to_string();
            return Some(Ok(d));
        }
    }
    let m = std::fs::metadata(arg).ok()?;
    // A segmented image is a directory with a manifest.
    let image = m.is_file() || m.is_dir() && std::path::Path::new(arg).join("manifest").is_file();
    if !image {
        return None;
    }
    Some(probe_file(arg, v))
}

fn version_line(v: UtilLinux) -> String {
    match v {
        UtilLinux::V2_37 => {
            "blkid from util-linux 2.38.1  (libblkid 2.38.1, 04-Aug-2022)\n".to_string()
        }
        _ => format!("blkid from util-linux {}\n", v.release()),
    }
}

fn run_opts(mut o: Opts) -> Output {
    let mut devices = Devices { loaded: None };
    let mut out = Output::default();
    // The guest's util-linux inside an instance; the host's otherwise.
    let v = if env::in_instance() {
        match devices.get() {
            Ok((_, v)) => *v,
            Err(msg) => return Output::error(format!("blkid: {msg}\n"), EXIT_NOTFOUND),
        }
    } else {
        UtilLinux::V2_37
    };

    if let Some((name, value)) = &o.lookup {
        return match devices.get() {
            Err(msg) => Output::error(format!("blkid: {msg}\n"), EXIT_NOTFOUND),
            Ok((devs, _)) => match devs.iter().find(|d| has_tag(d, name, value)) {
                Some(d) => Output {
                    stdout: format!("{}\n", d.path),
                    ..Output::default()
                },
                None => Output::error(String::new(), EXIT_NOTFOUND),
            },
        };
    }

    // The devices to show: the operands that name something, or all.
    let mut list: Vec<Probed> = Vec::new();
    if o.devs.is_empty() {
        match devices.get() {
            Ok((devs, _)) => list = devs.clone(),
            Err(msg) => return Output::error(format!("blkid: {msg}\n"), EXIT_NOTFOUND),
        }
    } else {
        let given = o.devs.len();
        for arg in std::mem::take(&mut o.devs) {
            match resolve(&arg, &mut devices, v) {
                None => {}
                Some(Ok(d)) => list.push(d),
                Some(Err(why)) => {
                    // The real blkid could not open it either.
                    out.stderr
                        .push_str(&format!("blkid: error: {arg}: {why}\n"));
                }
            }
        }
        // Operands given but none left: blkid stops there (no list header).
        if given > 0 && list.is_empty() {
            out.code = EXIT_NOTFOUND;
            return out;
        }
    }
    if o.no_part {
        for d in &mut list {
            d.low.retain(|(n, _)| !n.starts_with("PART_ENTRY_"));
        }
    }

    let mut p = o.printer.clone();
    if o.low {
        out.code = EXIT_NOTFOUND;
        for d in &list {
            if d.low.is_empty() {
                out.code = EXIT_NOTFOUND;
                break;
            }
            p.low_device(&mut out.stdout, d);
            out.code = 0;
        }
        return out;
    }
    if p.format == Format::List {
        out.stdout.push_str(&bk::list_header());
    }
    let mut found = false;
    for d in &list {
        if d.tags.is_empty() {
            continue;
        }
        if let Some((n, val)) = &o.token {
            if !has_tag(d, n, val) {
                continue;
            }
        }
        p.cache_device(&mut out.stdout, d);
        found = true;
        if o.list_one && o.token.is_some() {
            break;
        }
    }
    out.code = if found { 0 } else { EXIT_NOTFOUND };
    out
}

/// Runs blkid; `args[0]` is the program name.
pub fn run_args(args: &[String]) -> Output {
    match parse(args) {
        Err(out) => out,
        Ok(Request::Help) => Output {
            stdout: USAGE.to_string(),
            ..Output::default()
        },
        Ok(Request::Version) => {
            let v = if env::in_instance() {
                let mut devices = Devices { loaded: None };
                match devices.get() {
                    Ok((_, v)) => *v,
                    Err(_) => UtilLinux::V2_37,
                }
            } else {
                UtilLinux::V2_37
            };
            Output {
                stdout: version_line(v),
                ..Output::default()
            }
        }
        Ok(Request::Nothing) => Output::default(),
        Ok(Request::Run(o)) => run_opts(o),
    }
}

/// The applet.
pub fn run(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    run_args(&args).emit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(a: &[&str]) -> (String, i32) {
        let mut args = vec!["blkid".to_string()];
        args.extend(a.iter().map(|s| s.to_string()));
        match parse(&args) {
            Err(o) => (o.stderr, o.code),
            Ok(_) => (String::new(), 0),
        }
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            parse_err(&["-o", "bogus"]),
            ("blkid: unsupported output format bogus\n".into(), 4)
        );
        assert_eq!(
            parse_err(&["-p", "-o", "list", "d.img"]),
            (
                "blkid: The low-level probing mode does not support 'list' output format\n".into(),
                4
            )
        );
        assert_eq!(
            parse_err(&["-t", "bad"]),
            (
                "blkid: -t needs NAME=value pair\nTry 'blkid --help' for more information.\n"
                    .into(),
                4
            )
        );
        assert_eq!(
            parse_err(&["-q"]),
            (
                "blkid: invalid option -- 'q'\nTry 'blkid --help' for more information.\n".into(),
                1
            )
        );
        assert_eq!(
            parse_err(&["-p", "-o", "list"]).0,
            "blkid: The low-level probing mode does not support 'list' output format\n"
        );
        assert_eq!(parse_err(&["-c", "/dev/null", "-g"]), (String::new(), 0));
    }
}
