//! `mkfs.xfs` (xfsprogs 6.1, or the guest's version) on an image file: the
//! default geometry and features of that version
//! (`fs::xfs::geometry::MkfsDefaults`), with `-f`, `-q`, `-N`, `-K`,
//! `-L label`, `-m uuid=...`, the feature switches `-m
//! finobt|reflink|rmapbt|bigtime|inobtcount=0|1` and `-i sparse=0|1`, the
//! sizes `-b size=`, `-s size=` (or `-s`/`-d`/`-l sectsize=`), `-i
//! size=|perblock=` and `-n size=` (`fs::xfs::geometry::Sizes`), and
//! `-d size=...,agcount=N` or `agsize=...`, `-l size=,agnum=,internal`
//! `-i maxpct=` and `-n ftype=1|version=2`, and the geometry it makes said
//! explicitly (`-i attr=2,projid32bit=1, align=1,nrext64=0`, `-d
//! noalign`), each value checked as mkfs.xfs checks it and in its order.
//! Messages, channels and exit codes are mkfs.xfs's. The refusals only
//! 5.19 and later make (one AG, AGs too small for a 64 MiB log) are made
//! for those versions only. Not made, and refused by name: version 4
//! (`-m crc=0`), stripe units (`-d su=,sw=`), more than 64 inodes a block
//! (64 KiB blocks with 512-byte inodes), and logs that may be under the
//! minimum log size, which ebsim does not compute.
//!
//! Hand-parsed: mkfs.xfs uses getopt with comma-separated sub-options
//! (`-d size=1g,agcount=4`) and its own wording for every mistake.

use super::error::{AppletError, finish};
use super::getopt::{LongOpt, getopt_long, strings};
use super::output::strerror;
use super::output::{err, out};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::compat::{strtoll, uuid_parse};
use ebsim::ec2::release::Version;
use ebsim::fs::xfs::size_arg::{SizeArgError, data_size};
use ebsim::fs::xfs::{
    self,
    geometry::{self, AgRequest, Ask, Geometry, GeometryError, MkfsDefaults, Sizes},
    inode::{MkfsTimes, Timestamp},
    mkfs::{self, MkfsOptions},
};
use ebsim::guest::Target;
use std::ffi::OsString;

const USAGE: &str = "\
/* blocksize */\t\t[-b size=num]
/* config file */\t[-c options=xxx]
/* metadata */\t\t[-m crc=0|1,finobt=0|1,uuid=xxx,rmapbt=0|1,reflink=0|1,
\t\t\t    inobtcount=0|1,bigtime=0|1]
/* data subvol */\t[-d agcount=n,agsize=n,file,name=xxx,size=num,
\t\t\t    (sunit=value,swidth=value|su=num,sw=num|noalign),
\t\t\t    sectsize=num
/* force overwrite */\t[-f]
/* inode size */\t[-i perblock=n|size=num,maxpct=n,attr=0|1|2,
\t\t\t    projid32bit=0|1,sparse=0|1,nrext64=0|1]
/* no discard */\t[-K]
/* log subvol */\t[-l agnum=n,internal,size=num,logdev=xxx,version=n
\t\t\t    sunit=value|su=num,sectsize=num,lazy-count=0|1]
/* label */\t\t[-L label (maximum 12 characters)]
/* naming */\t\t[-n size=num,version=2|ci,ftype=0|1]
/* no-op info only */\t[-N]
/* prototype file */\t[-p fname]
/* quiet */\t\t[-q]
/* realtime subvol */\t[-r extsize=num,size=num,rtdev=xxx]
/* sectorsize */\t[-s size=num]
/* version */\t\t[-V]
\t\t\tdevicename
<devicename> is required unless -d name=xxx is given.
<num> is xxx (bytes), xxxs (sectors), xxxb (fs blocks), xxxk (xxx KiB),
      xxxm (xxx MiB), xxxg (xxx GiB), xxxt (xxx TiB) or xxxp (xxx PiB).
<value> is xxx (512 byte blocks).
";

/// A failure followed by mkfs.xfs's usage text (its `usage()`).
fn fail(msg: impl Into<String>) -> AppletError {
    AppletError::new(1, msg).with_usage()
}

/// A failure without the usage text.
fn fail_plain(msg: impl Into<String>) -> AppletError {
    AppletError::new(1, msg)
}

/// `mkfs.xfs`, also reached by `mkfs -t xfs`: `args[0]` is the program
/// name used in messages (util-linux mkfs execs `mkfs.xfs`).
pub fn run(args: Vec<OsString>) -> i32 {
    let prog = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mkfs.xfs".into());
    // glibc's getopt messages name argv[0] as given, mkfs.xfs its basename.
    let argv0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| prog.clone());
    finish(
        mkfs_main(&prog, &argv0, args.get(1..).unwrap_or(&[])),
        || format!("Usage: {prog}\n{USAGE}"),
    )
}

#[derive(Default)]
struct Cli {
    force: bool,
    quiet: bool,
    dry_run: bool,
    label: Option<String>,
    uuid: Option<[u8; 16]>,
    dsize: Option<String>,
    /// `-d agcount=` or `-d agsize=` (bytes), already range-checked.
    ags: Option<AgOption>,
    /// `-l size=` as given (converted once the block size is known).
    log_size: Option<String>,
    /// `-b size=`.
    blocksize: Option<u32>,
    /// `-s size=`, `-s sectsize=` or `-d sectsize=`.
    sectsize: Option<u32>,
    /// `-l sectsize=`.
    log_sectsize: Option<u32>,
    /// `-i size=` (false) or `-i perblock=` (true), and its value.
    inode: Option<(bool, u32)>,
    /// `-n size=` as given (converted once the block size is known).
    dirblocksize: Option<String>,
    /// `-l agnum=`.
    log_agno: Option<u64>,
    /// `-i maxpct=`.
    imaxpct: Option<u8>,
    /// The features `-m` and `-i sparse=` asked for, over the version's
    /// defaults.
    features: Option<MkfsDefaults>,
    /// `-m inobtcount=1` given explicitly (only then is it an error
    /// without finobt; otherwise it follows finobt off).
    inobtcount_asked: bool,
    /// `-m crc=0`: a V4 filesystem, which ebsim does not make.
    crc_off: bool,
    /// `-i attr=`, `projid32bit=`, `align=` turned off: a CRC filesystem
    /// cannot (mkfs.xfs's message, once every option is read).
    crc_needs: Option<&'static str>,
    /// The numeric sub-options given so far (`-m reflink`), each allowed
    /// once.
    seen: Vec<String>,
}

fn mkfs_main(prog: &str, argv0: &str, args: &[OsString]) -> Result<i32, AppletError> {
    let parsed = getopt_long(
        &strings(args),
        "b:c:d:i:l:L:m:n:KNp:qr:s:CfV",
        &[LongOpt::flag("unsupported", 'U')],
    );
    let mut cli = Cli::default();
    let version = super::env::release().xfsprogs;
    for item in &parsed.items {
        let o = match item {
            Ok(o) => o,
            // glibc's line, then mkfs.xfs's own `unknown(optopt, "")`.
            Err(e) => {
                return Err(fail(format!(
                    "{}unknown option -{} \n",
                    e.message(argv0),
                    e.optopt()
                )));
            }
        };
        let v = o.arg_or_empty();
        match o.val {
            'C' | 'f' => cli.force = true,
            'N' => cli.dry_run = true,
            'K' => {}
            'q' => cli.quiet = true,
            'V' => {
                out(&format!(
                    "{prog} version {}\n",
                    super::env::release().xfsprogs
                ));
                return Ok(0);
            }
            'L' => {
                if v.len() > 12 {
                    return Err(fail(format!("Invalid value {v} for -L option\n")));
                }
                cli.label = Some(v);
            }
            'b' => parse_b(&v, &mut cli)?,
            's' => parse_s(&v, &mut cli)?,
            'd' => parse_d(&v, &mut cli)?,
            'm' => parse_m(&v, &mut cli, version)?,
            'i' => parse_i(&v, &mut cli, version)?,
            'l' => parse_l(&v, &mut cli)?,
            'n' => parse_n(&v, &mut cli)?,
            'U' => {
                return Err(fail_plain(format!(
                    "{prog}: --unsupported is not supported by ebsim\n"
                )));
            }
            c => {
                return Err(fail_plain(format!(
                    "{prog}: option -{c} is not supported by ebsim (it makes the default \
                     geometry; supported: -f -q -N -K -L -m -b size= -s size= -i sparse=,maxpct=,size=,perblock= -d size=,agcount=,agsize=,sectsize=,noalign -l size=,agnum=,internal,sectsize= -n size=,ftype=1,version=2 -V)\n"
                )));
            }
        }
    }
    if parsed.operands.len() > 1 {
        return Err(fail("extra arguments\n"));
    }
    let Some(dfile) = parsed.operands.first() else {
        return Err(fail("No device name specified\n"));
    };
    let dfile = dfile.clone();

    // mkfs.xfs's checks of the sizes and features, in its order, once
    // every option is read.
    let sizes = validate_sizes(&mut cli)?;
    // -d size= is converted before the device is opened.
    let dblocks = match &cli.dsize {
        Some(s) => Some(size_to_blocks(s, &sizes)?),
        None => None,
    };
    let log_blocks = match &cli.log_size {
        Some(s) => Some(log_size_to_blocks(s, &sizes)?),
        None => None,
    };

    // A device of the emulated instance, or a file of this machine.
    let guest = if super::env::target(&dfile, false) == Target::Device {
        Some(guest_device(prog, &dfile)?)
    } else {
        let meta = std::fs::metadata(&dfile).map_err(|e| {
            fail(format!(
                "Error accessing specified device {dfile}: {}\n",
                strerror(&e)
            ))
        })?;
        use std::os::unix::fs::FileTypeExt;
        if !meta.is_file()
            && !meta.file_type().is_block_device()
            && !ebsim::blockdev::segmented::is_segmented(std::path::Path::new(&dfile))
        {
            return Err(fail(format!(
                "specified device {dfile} not a file or block device\n"
            )));
        }
        None
    };
    let open = |access: Access| -> Result<Box<dyn BlockDevice>, AppletError> {
        let opened: Result<Box<dyn BlockDevice>, ebsim::blockdev::Error> = match &guest {
            Some(r) => r.open(access).map(|d| Box::new(d) as Box<dyn BlockDevice>),
            None => ImageFile::open(&dfile, access).map(|d| Box::new(d) as Box<dyn BlockDevice>),
        };
        opened.map_err(|e| fail_plain(format!("{prog}: cannot open {dfile}: {e}\n")))
    };
    let dev = open(Access::ReadOnly)?;
    if !cli.force {
        if let Some(what) = ebsim::fs::signature::probe(&dev) {
            return Err(fail_plain(format!(
                "{prog}: {dfile} appears to contain {what}.\n\
                 {prog}: Use the -f option to force overwrite.\n"
            )));
        }
    }
    let dev_blocks = dev.size() >> sizes.blocklog();
    let want = match dblocks {
        Some(d) if d > dev_blocks => {
            return Err(fail(format!(
                "size {} specified for data subvolume is too large, maximum is {dev_blocks} blocks\n",
                cli.dsize.as_deref().unwrap_or("")
            )));
        }
        Some(d) => d,
        None => dev_blocks,
    };
    let features = cli.features.unwrap_or_else(|| MkfsDefaults::of(version));
    let ags = match &cli.ags {
        None => AgRequest::Default,
        Some(AgOption::Count(n)) => AgRequest::Count(*n),
        Some(AgOption::Size(text)) => {
            let min = i64::try_from(geometry::AG_MIN_BYTES).unwrap_or(i64::MAX);
            let bytes = size_value('d', "agsize", text, min, AG_MAX_BYTES, &sizes)?.unsigned_abs();
            let bs = u64::from(sizes.blocksize);
            if bytes % bs != 0 {
                return Err(fail(format!(
                    "agsize ({text}) not a multiple of fs blk size ({bs})\n"
                )));
            }
            AgRequest::Size(bytes / bs)
        }
    };
    let ask = Ask {
        ags,
        log_blocks,
        log_agno: cli.log_agno,
        imaxpct: cli.imaxpct,
        sizes,
    };
    let geo = Geometry::plan_ags(want, version, features, &ask).map_err(|e| match e {
        GeometryError::MinimumLog { .. }
        | GeometryError::LogBelowMinimum { .. }
        | GeometryError::DefaultLogMaybeUnderMinimum { .. } => fail_plain(format!("{prog}: {e}\n")),
        _ => fail(format!("{e}\n")),
    })?;
    let opts = MkfsOptions {
        uuid: cli.uuid.unwrap_or_else(|| *uuid::Uuid::new_v4().as_bytes()),
        label: cli.label.clone().unwrap_or_default().into_bytes(),
        dblocks: Some(geo.dblocks.min(want)),
        times: mkfs_times(),
        features: Some(features),
        ask,
    };
    let sb = mkfs::superblock(&geo, &opts);
    if !cli.quiet || cli.dry_run {
        out(&xfs::report::render_as(
            &sb,
            &dfile,
            super::env::release().xfs_report,
            xfs::report::Printer::Mkfs,
        ));
        if cli.dry_run {
            return Ok(0);
        }
    }
    drop(dev);
    let mut dev = open(Access::ReadWrite)?;
    let plan =
        mkfs::plan_as(&dev, &opts, version).map_err(|e| fail_plain(format!("{prog}: {e}\n")))?;
    mkfs::apply(&mut dev, &plan).map_err(|e| fail_plain(format!("{prog}: {e}\n")))?;
    Ok(0)
}

/// A device of the instance, checked as mkfs.xfs checks a block device:
/// it must exist, hold no mounted filesystem, and not be a disk whose
/// partition is mounted (the kernel refuses the exclusive open).
fn guest_device(prog: &str, dfile: &str) -> Result<ebsim::guest::Resolved, AppletError> {
    let ctx = super::env::context().map_err(|why| fail_plain(format!("{prog}: {why}\n")))?;
    let Some(r) = ctx.resolve(dfile) else {
        return Err(fail(format!(
            "Error accessing specified device {dfile}: No such file or directory\n"
        )));
    };
    if !ctx.mounts_of(&r).is_empty() {
        return Err(fail(format!(
            "{prog}: {dfile} contains a mounted filesystem\n"
        )));
    }
    if ctx.disk_busy(&r) {
        return Err(fail_plain(format!(
            "{prog}: cannot open {dfile}: Device or resource busy\n"
        )));
    }
    Ok(r)
}

/// `-d agcount=` or `-d agsize=` as given.
#[derive(Debug, Clone)]
enum AgOption {
    Count(u64),
    /// As given: converted once the block size is known.
    Size(String),
}

/// `XFS_MAX_AGNUMBER`: the largest AG count `-d agcount=` takes.
const MAX_AGNUMBER: i64 = u32::MAX as i64 - 1;
/// `XFS_AG_MAX_BYTES`: the largest `-d agsize=` (1 TiB).
const AG_MAX_BYTES: i64 = 1 << 40;

/// A `-d agcount=` value as mkfs.xfs's `getnum` reads it (a C integer,
/// no suffix), or the text of `-d agsize=` (converted later, as mkfs.xfs
/// converts it once the block size is known).
fn ag_option(name: &str, value: &str) -> Result<AgOption, AppletError> {
    Ok(if name == "agcount" {
        AgOption::Count(int_value('d', name, value, 1, MAX_AGNUMBER)?.unsigned_abs())
    } else {
        AgOption::Size(value.to_string())
    })
}

/// `-d` sub-options: `size` (the data section's size), `agcount` and
/// `agsize`.
fn parse_d(arg: &str, cli: &mut Cli) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        match name {
            "size" => {
                let v = required('d', name, value)?;
                if cli.dsize.is_some() {
                    return Err(fail("-d size option respecified\n"));
                }
                cli.dsize = Some(v.to_string());
            }
            "agcount" | "agsize" => {
                // Given twice is found before given with the other.
                once('d', name, &mut cli.seen)?;
                if let Some(earlier) = &cli.ags {
                    let other = match earlier {
                        AgOption::Count(_) => "agcount",
                        AgOption::Size(..) => "agsize",
                    };
                    return Err(fail(format!(
                        "Cannot specify both -d {other} and -d {name}\n"
                    )));
                }
                let v = required('d', name, value)?;
                cli.ags = Some(ag_option(name, v)?);
            }
            // Without stripe geometry (an image file has none) it changes
            // nothing.
            "noalign" => {
                switch_value('d', name, value, &mut cli.seen)?;
            }
            "sectsize" => {
                let v = required('d', name, value)?;
                set_sectsize('d', name, v, cli)?;
            }
            "file" | "name" | "sunit" | "swidth" | "su" | "sw" | "rtinherit" | "projinherit"
            | "extszinherit" | "cowextsize" | "daxinherit" => {
                return Err(fail_plain(format!(
                    "mkfs.xfs: -d {name} is not supported by ebsim (only -d size=, agcount=, agsize=)\n"
                )));
            }
            _ => return Err(fail(format!("unknown option -d {tok}\n"))),
        }
    }
    Ok(())
}

/// `-m` sub-options: `uuid`, and the feature switches over the version's
/// defaults (an option the version does not know is unknown to it).
fn parse_m(arg: &str, cli: &mut Cli, version: Version) -> Result<(), AppletError> {
    // 4.5 knows crc, finobt and uuid; rmapbt and reflink came in 4.8 and
    // 4.9, bigtime and inobtcount in 5.10.
    let known_to = |name: &str| match name {
        "crc" | "finobt" => true,
        "rmapbt" | "reflink" => version >= Version::new(4, 9, 0),
        "inobtcount" | "bigtime" => version >= Version::new(5, 10, 0),
        _ => false,
    };
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        if name == "uuid" {
            let Some(u) = uuid_parse(required('m', name, value)?) else {
                return Err(fail(format!("Invalid value {value} for -m uuid option\n")));
            };
            cli.uuid = Some(u);
            continue;
        }
        if !known_to(name) {
            return Err(fail(format!("unknown option -m {tok}\n")));
        }
        let on = switch_value('m', name, value, &mut cli.seen)?;
        let f = cli
            .features
            .get_or_insert_with(|| MkfsDefaults::of(version));
        match name {
            "crc" => cli.crc_off = !on,
            "finobt" => f.finobt = on,
            "reflink" => f.reflink = on,
            "inobtcount" => {
                f.inobtcount = on;
                cli.inobtcount_asked = on;
            }
            "bigtime" => f.bigtime = on,
            _ => f.rmapbt = on,
        }
    }
    Ok(())
}

/// `-i` sub-options: `sparse` (sparse inode chunks), `maxpct`, and the
/// geometry ebsim makes said explicitly: 512-byte inodes (`size=512` or
/// `perblock=8`), `attr=2`, `projid32bit=1`, `align=1`, `nrext64=0`. Other
/// inode sizes and large extent counts are refused by name.
fn parse_i(arg: &str, cli: &mut Cli, version: Version) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        match name {
            "sparse" => {
                let on = switch_value('i', name, value, &mut cli.seen)?;
                cli.features
                    .get_or_insert_with(|| MkfsDefaults::of(version))
                    .sparse = on;
            }
            "maxpct" => {
                once('i', name, &mut cli.seen)?;
                let n = int_value('i', name, required('i', name, value)?, 0, 100)?;
                // OK to unwrap-free convert: 0..=100.
                cli.imaxpct = Some(n as u8);
            }
            "size" | "perblock" => {
                once('i', name, &mut cli.seen)?;
                let other = if name == "size" { "perblock" } else { "size" };
                if cli.seen.iter().any(|k| k == &format!("-i {other}")) {
                    return Err(fail(format!(
                        "Cannot specify both -i {other} and -i {name}\n"
                    )));
                }
                let value = required('i', name, value)?;
                // XFS_DINODE_MIN_SIZE to XFS_DINODE_MAX_SIZE bytes, or
                // XFS_MIN_INODE_PERBLOCK to 64 KiB / 256 a block.
                let (min, max) = if name == "size" {
                    (256, 2048)
                } else {
                    (2, 256)
                };
                let n = int_value('i', name, value, min, max)?;
                if !n.unsigned_abs().is_power_of_two() {
                    return Err(fail(format!(
                        "Invalid value {value} for -i {name} option. Value must be a power of 2.\n"
                    )));
                }
                // OK to unwrap-free convert: 2..=2048.
                cli.inode = Some((name == "perblock", n as u32));
            }
            "attr" => {
                once('i', name, &mut cli.seen)?;
                if int_value('i', name, required('i', name, value)?, 0, 2)? != 2 {
                    cli.crc_needs.get_or_insert(
                        "V2 attribute format always enabled on CRC enabled filesystems",
                    );
                }
            }
            "projid32bit" => {
                if !switch_value('i', name, value, &mut cli.seen)? {
                    cli.crc_needs.get_or_insert(
                        "32 bit Project IDs always enabled on CRC enabled filesystems",
                    );
                }
            }
            "align" => {
                if !switch_value('i', name, value, &mut cli.seen)? {
                    cli.crc_needs
                        .get_or_insert("Inodes always aligned for CRC enabled filesystems");
                }
            }
            "nrext64" => {
                if switch_value('i', name, value, &mut cli.seen)? {
                    return Err(fail_plain(
                        "mkfs.xfs: -i nrext64=1 is not supported by ebsim (large extent counts)\n"
                            .to_string(),
                    ));
                }
            }
            _ => return Err(fail(format!("unknown option -i {tok}\n"))),
        }
    }
    Ok(())
}

/// `-b size=`: a power of two from 512 to 64 KiB (`XFS_MIN_BLOCKSIZE`,
/// `XFS_MAX_BLOCKSIZE`), read while the options are parsed, so a `b` or
/// `s` suffix is not yet known.
fn parse_b(arg: &str, cli: &mut Cli) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        if name != "size" {
            return Err(fail(format!("unknown option -b {tok}\n")));
        }
        once('b', name, &mut cli.seen)?;
        let value = required('b', name, value)?;
        cli.blocksize = Some(pow2_value('b', name, value, 512, 65536, &UNKNOWN_SIZES)?);
    }
    Ok(())
}

/// `-s size=` or `-s sectsize=`: the sector size, a power of two from 512
/// bytes to 32 KiB; it sets the internal log's too.
fn parse_s(arg: &str, cli: &mut Cli) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        if name != "size" && name != "sectsize" {
            return Err(fail(format!("unknown option -s {tok}\n")));
        }
        let value = required('s', name, value)?;
        set_sectsize('s', name, value, cli)?;
    }
    Ok(())
}

/// One of the three sector-size options (`-s size`, `-s sectsize`, `-d
/// sectsize`): each once, and only one of them, as mkfs.xfs's conflict
/// table has it.
fn set_sectsize(opt: char, name: &str, value: &str, cli: &mut Cli) -> Result<(), AppletError> {
    once(opt, name, &mut cli.seen)?;
    let key = format!("-{opt} {name}");
    for other in ["-s size", "-s sectsize", "-d sectsize"] {
        if other != key && cli.seen.iter().any(|k| k == other) {
            return Err(fail(format!("Cannot specify both {other} and {key}\n")));
        }
    }
    let n = pow2_value(opt, name, value, 512, 32768, &UNKNOWN_SIZES)?;
    cli.sectsize = Some(n);
    cli.log_sectsize = Some(n);
    Ok(())
}

/// A power-of-two size sub-option as `getnum` reads it, with the `b` and
/// `s` suffixes of `sizes` ([`UNKNOWN_SIZES`] while the options are
/// still being parsed: then neither suffix is a valid value).
fn pow2_value(
    opt: char,
    name: &str,
    value: &str,
    min: i64,
    max: i64,
    sizes: &Sizes,
) -> Result<u32, AppletError> {
    let n = size_value(opt, name, value, min, max, sizes)?;
    if !n.unsigned_abs().is_power_of_two() {
        return Err(fail(format!(
            "Invalid value {value} for -{opt} {name} option. Value must be a power of 2.\n"
        )));
    }
    // OK to unwrap-free convert: bounded by max.
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Block and sector size while the options are still being read: neither
/// is known, so `cvtnum` refuses the `b` and `s` suffixes.
const UNKNOWN_SIZES: Sizes = Sizes {
    blocksize: 0,
    sectsize: 0,
    inodesize: 0,
    dirblocksize: 0,
};

/// mkfs.xfs's checks of the sizes, in its order (`validate_blocksize`,
/// `validate_sectorsize`, `validate_log_sectorsize`,
/// `validate_sb_features`, `validate_dirblocksize`, `validate_inodesize`),
/// and the sizes they settle on. Without `-s`, an image file (and an
/// instance's disk) has 512-byte sectors.
fn validate_sizes(cli: &mut Cli) -> Result<Sizes, AppletError> {
    let blocksize = cli.blocksize.unwrap_or(geometry::BLOCKSIZE);
    if blocksize < 1024 && !cli.crc_off {
        return Err(fail(
            "Minimum block size for CRC enabled filesystems is 1024 bytes.\n",
        ));
    }
    let sectsize = cli.sectsize.unwrap_or(geometry::SECTOR_SIZE);
    if blocksize < sectsize {
        return Err(fail(format!(
            "block size {blocksize} cannot be smaller than sector size {sectsize}\n"
        )));
    }
    if cli.log_sectsize.is_some_and(|l| l != sectsize) {
        return Err(fail("Can't change sector size on internal log!\n"));
    }
    if cli.crc_off {
        return Err(fail_plain(
            "mkfs.xfs: -m crc=0 is not supported by ebsim (it makes version 5 filesystems \
             only)\n",
        ));
    }
    if let Some(msg) = cli.crc_needs {
        return Err(fail(format!("{msg}\n")));
    }
    if let Some(f) = cli.features.as_mut() {
        if !f.finobt && f.inobtcount {
            if cli.inobtcount_asked {
                return Err(fail(
                    "inode btree counters not supported without finobt support\n",
                ));
            }
            f.inobtcount = false;
        }
    }
    let known = Sizes {
        blocksize,
        sectsize,
        ..Sizes::default()
    };
    // XFS_MIN_REC_DIRSIZE: directory blocks are at least 4 KiB.
    let dirblocksize = match &cli.dirblocksize {
        None => blocksize.max(4096),
        Some(text) => {
            let n = pow2_value('n', "size", text, 4096, 65536, &known)?;
            if n < blocksize {
                return Err(fail(format!("illegal directory block size {n}\n")));
            }
            n
        }
    };
    let inodesize = match cli.inode {
        None => geometry::INODE_SIZE,
        Some((true, perblock)) => blocksize >> perblock.ilog2().min(blocksize.ilog2()),
        Some((false, size)) => size,
    };
    if inodesize < geometry::INODE_SIZE {
        return Err(fail("Minimum inode size for CRCs is 512 bytes\n"));
    }
    // XFS_MIN_INODE_PERBLOCK: at least two inodes a block.
    if inodesize > blocksize / 2 || inodesize > 2048 {
        let maxsz = (blocksize / 2).min(2048);
        let allowed = if maxsz == 256 {
            format!("allowable inode size with {blocksize} byte blocks is 256\n")
        } else {
            format!(
                "allowable inode size with {blocksize} byte blocks is between 256 and {maxsz}\n"
            )
        };
        return Err(fail_plain(format!(
            "illegal inode size {inodesize}\n{allowed}"
        )));
    }
    // More inodes to a block than a chunk holds: mkfs allocates two
    // chunks at once, which ebsim does not lay out.
    if blocksize / inodesize > 64 {
        return Err(fail_plain(format!(
            "mkfs.xfs: {inodesize}-byte inodes in {blocksize}-byte blocks are not supported by \
             ebsim (more than 64 inodes a block); use -i size={}\n",
            blocksize / 64
        )));
    }
    Ok(Sizes {
        blocksize,
        sectsize,
        inodesize,
        dirblocksize,
    })
}

/// A sub-option given twice: mkfs.xfs's "respecified".
fn once(opt: char, name: &str, seen: &mut Vec<String>) -> Result<(), AppletError> {
    let key = format!("-{opt} {name}");
    if seen.contains(&key) {
        return Err(fail(format!("{key} option respecified\n")));
    }
    seen.push(key);
    Ok(())
}

/// A sub-option's value, which must not be empty.
fn required<'v>(opt: char, name: &str, value: &'v str) -> Result<&'v str, AppletError> {
    if value.is_empty() {
        return Err(fail(format!("-{opt} {name} option requires a value\n")));
    }
    Ok(value)
}

/// A size sub-option as `getnum` reads one that takes unit suffixes:
/// xfsprogs' `cvtnum` (b is the block, s the sector of `sizes`; 0 while
/// they are not known), then the option's bounds.
fn size_value(
    opt: char,
    name: &str,
    value: &str,
    min: i64,
    max: i64,
    sizes: &Sizes,
) -> Result<i64, AppletError> {
    let invalid = |why: &str| {
        fail(format!(
            "Invalid value {value} for -{opt} {name} option. {why}\n"
        ))
    };
    let Some(n) =
        ebsim::compat::cvtnum(u64::from(sizes.blocksize), u64::from(sizes.sectsize), value)
    else {
        return Err(invalid("Not a valid value or illegal suffix"));
    };
    if n < min {
        Err(invalid("Value is too small."))
    } else if n > max {
        Err(invalid("Value is too large."))
    } else {
        Ok(n)
    }
}

/// An integer sub-option as `getnum` reads one that takes no unit suffix:
/// C's `strtoll` (base 0), nothing after it, then the option's bounds.
fn int_value(opt: char, name: &str, value: &str, min: i64, max: i64) -> Result<i64, AppletError> {
    let invalid = |why: &str| {
        fail(format!(
            "Invalid value {value} for -{opt} {name} option. {why}\n"
        ))
    };
    let n = strtoll(value, 0);
    if n.end == 0 {
        Err(invalid("Value not recognized as number."))
    } else if n.end < value.len() {
        Err(invalid("Unit suffixes are not allowed."))
    } else if n.value < min {
        Err(invalid("Value is too small."))
    } else if n.value > max {
        Err(invalid("Value is too large."))
    } else {
        Ok(n.value)
    }
}

/// `-l` sub-options for the internal log: `size` (2 MiB to 2 GiB − 10
/// MiB, whole sectors, cut to whole blocks with a warning), `agnum`,
/// `internal`, and the `version`/`lazy-count` switches a CRC filesystem
/// cannot turn off; an external log device is not modelled.
fn parse_l(arg: &str, cli: &mut Cli) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        match name {
            "size" | "agnum" => {
                once('l', name, &mut cli.seen)?;
                let value = required('l', name, value)?;
                if name == "agnum" {
                    let n = int_value('l', name, value, 0, i64::from(u32::MAX))?;
                    cli.log_agno = Some(n.unsigned_abs());
                    continue;
                }
                cli.log_size = Some(value.to_string());
            }
            "sectsize" => {
                once('l', name, &mut cli.seen)?;
                let value = required('l', name, value)?;
                cli.log_sectsize = Some(pow2_value('l', name, value, 512, 32768, &UNKNOWN_SIZES)?);
            }
            "internal" | "version" | "lazy-count" => {
                once('l', name, &mut cli.seen)?;
                let (min, max, off) = match name {
                    "internal" => (0, 1, 0),
                    "version" => (1, 2, 1),
                    _ => (0, 1, 0),
                };
                let n = if value.is_empty() {
                    1
                } else {
                    int_value('l', name, value, min, max)?
                };
                if n == off {
                    return Err(fail(
                        match name {
                            "internal" => "No device name specified\n",
                            "version" => "V2 logs always enabled for CRC enabled filesystems\n",
                            _ => "Lazy superblock counters always enabled for CRC enabled filesystems\n",
                        }
                        .to_string(),
                    ));
                }
            }
            "logdev" | "name" | "sunit" | "su" | "file" => {
                return Err(fail_plain(format!(
                    "mkfs.xfs: -l {name} is not supported by ebsim (only -l size=, agnum=, internal)\n"
                )));
            }
            _ => return Err(fail(format!("unknown option -l {tok}\n"))),
        }
    }
    Ok(())
}

/// `-n` sub-options of a version 5 filesystem: `ftype` (always on: 0 is
/// refused as mkfs refuses it), `version=2`, and `size` (4 KiB to 64 KiB,
/// a power of two; ebsim makes directory blocks of the filesystem block
/// size only, and refuses `version=ci`).
fn parse_n(arg: &str, cli: &mut Cli) -> Result<(), AppletError> {
    for tok in arg.split(',').filter(|t| !t.is_empty()) {
        let (name, value) = tok.split_once('=').unwrap_or((tok, ""));
        match name {
            "ftype" => {
                if !switch_value('n', name, value, &mut cli.seen)? {
                    return Err(fail(
                        "Directory ftype field always enabled on CRC enabled filesystems\n"
                            .to_string(),
                    ));
                }
            }
            "version" => {
                once('n', name, &mut cli.seen)?;
                if required('n', name, value)? == "ci" {
                    return Err(fail_plain(
                        "mkfs.xfs: -n version=ci (ASCII case-insensitive names) is not supported by ebsim\n"
                            .to_string(),
                    ));
                }
                int_value('n', name, value, 2, 2)?;
            }
            "size" => {
                once('n', name, &mut cli.seen)?;
                let value = required('n', name, value)?;
                cli.dirblocksize = Some(value.to_string());
            }
            _ => return Err(fail(format!("unknown option -n {tok}\n"))),
        }
    }
    Ok(())
}

/// `-l size=`'s bounds: 2 MiB (`XFS_MIN_LOG_BLOCKS` of 4 KiB blocks)
/// and `XFS_MAX_LOG_BYTES` (2 GiB − 10 MiB).
const LOG_MIN_BYTES: i64 = 2 << 20;
const LOG_MAX_BYTES: i64 = (2 << 30) - (10 << 20);

/// The value of a 0/1 sub-option as mkfs.xfs's `getnum` reads it: empty
/// means 1; otherwise a C integer (`strtoll` base 0: decimal, 0x hex,
/// leading-0 octal, optional sign and leading blanks) with nothing after
/// it, between 0 and 1 ([`strtoll`] saturates, as C's does); each
/// sub-option at most once.
fn switch_value(
    opt: char,
    name: &str,
    value: &str,
    seen: &mut Vec<String>,
) -> Result<bool, AppletError> {
    once(opt, name, seen)?;
    if value.is_empty() {
        return Ok(true);
    }
    Ok(int_value(opt, name, value, 0, 1)? == 1)
}

/// `-d size=` in blocks (`fs::xfs::size_arg`), with mkfs.xfs's messages.
fn size_to_blocks(s: &str, sizes: &Sizes) -> Result<u64, AppletError> {
    let bs = sizes.blocksize;
    match data_size(s, sizes) {
        Ok((blocks, truncated)) => {
            if let Some(bytes) = truncated {
                err(&format!(
                    "warning: data length {bytes} not a multiple of {bs}, truncated to {}\n",
                    blocks * u64::from(bs)
                ));
            }
            Ok(blocks)
        }
        Err(SizeArgError::Illegal(reason)) => Err(fail(format!(
            "Invalid value {s} for -d size option. {reason}\n"
        ))),
        Err(SizeArgError::NotSectors(bytes)) => Err(fail(format!(
            "illegal data length {bytes}, not a multiple of 512\n"
        ))),
    }
}

/// `-l size=` in blocks (`calc_dev_size`): whole 512-byte units, cut to
/// whole blocks with a warning.
fn log_size_to_blocks(value: &str, sizes: &Sizes) -> Result<u64, AppletError> {
    let bs = i64::from(sizes.blocksize);
    let bytes = size_value('l', "size", value, LOG_MIN_BYTES, LOG_MAX_BYTES, sizes)?;
    if bytes % 512 != 0 {
        return Err(fail(format!(
            "illegal log length {bytes}, not a multiple of 512\n"
        )));
    }
    if bytes % bs != 0 {
        err(&format!(
            "warning: log length {bytes} not a multiple of {bs}, truncated to {}\n",
            bytes / bs * bs
        ));
    }
    Ok((bytes / bs).unsigned_abs())
}

/// "now" for the three inodes mkfs creates: `SOURCE_DATE_EPOCH` when set
/// (reproducible builds), else the clock, read once per inode as mkfs does.
fn mkfs_times() -> MkfsTimes {
    let now = || {
        if let Some(sec) = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            return Timestamp { sec, nsec: 0 };
        }
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nsec: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                Timestamp {
                    sec: -i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                    nsec: 0,
                }
            }
        }
    };
    MkfsTimes {
        root: now(),
        rbm: now(),
        rsum: now(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_to_blocks("1g", &Sizes::default()).ok(), Some(262144));
        assert_eq!(
            size_to_blocks("262144b", &Sizes::default()).ok(),
            Some(262144)
        );
        assert!(size_to_blocks("1m", &Sizes::default()).is_err());
        assert!(size_to_blocks("1x", &Sizes::default()).is_err());
        assert_eq!(
            size_to_blocks("262144B", &Sizes::default()).ok(),
            Some(262144)
        );
        assert_eq!(
            size_to_blocks("0x40000000", &Sizes::default()).ok(),
            Some(262144)
        );
    }
}
