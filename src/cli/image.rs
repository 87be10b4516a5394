//! `ebsim image`: the files inside plain image files, from the host, for
//! tests and scripts. Locations are written as e2tools' `IMAGE:/path`
//! (mtools' `-i IMAGE ::/path`, guestfish's copy-in/copy-out do the same
//! jobs): `IMAGE@N:/path` for partition N of a GPT or MBR disk.
//!
//! ```text
//! ebsim image ls [-l] [-n] [-a] [-d] IMAGE[@N][:PATH]...
//! ebsim image cp [-r] [-p] [-a] SRC... DEST      (one side IMAGE[@N]:PATH)
//! ebsim image cat IMAGE[@N]:PATH...
//! ebsim image mkdir [-p] [-m MODE] IMAGE[@N]:PATH...
//! ebsim image rm [-r] [-f] IMAGE[@N]:PATH...
//! ebsim image fallocate -l LEN [-o OFF] [-n] [-p] IMAGE[@N]:PATH
//! ebsim image stat [-L] [-c FORMAT] IMAGE[@N]:PATH...
//! ebsim image df [-h] [-H] [-i] [-T] IMAGE[@N]
//! ebsim image info IMAGE...
//! ```
//!
//! Every command opens one filesystem; a changing command stages all its
//! changes and syncs once at the end (crash safe, through the blockdev
//! commit), so a failure leaves the image as it was. A copy into an image
//! larger than [`DRY_RUN_ABOVE`] is first tried without its data (space
//! allocated, nothing written, thrown away), so "No space left on device"
//! comes before anything is written. Times are shown in UTC; owners by
//! the names in the image's own `/etc/passwd` and `/etc/group`.

use super::error::{AppletError, finish};
use super::output;
use clap::{Args, Parser, Subcommand};
use ebsim::fs::node::{
    Attr, Cred, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, NodeError, Timespec,
    split_rdev,
};
use ebsim::fs::path;
use ebsim::imgio::copy::{self, CopyError, CopyOptions, ImageFs};
use ebsim::imgio::{self, ImgError, Location, Opened};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Host data above which a copy into an image is tried without its data
/// first (the file layer syncs on its own past 64 MiB of staged data).
pub const DRY_RUN_ABOVE: u64 = 32 << 20;

/// `ebsim image`.
#[derive(Debug, Parser)]
#[command(
    name = "image",
    about = "Read and write the files inside image files (IMAGE:/path, IMAGE@N:/path for partition N)",
    long_about = "Read and write the files inside image files, from the host: list, copy in and \
                  out, cat, mkdir, rm, fallocate, stat, df. A location is IMAGE:/path (the \
                  filesystem on the whole image) or IMAGE@N:/path (partition N of its GPT or MBR \
                  table); ext4 and XFS are supported. Nothing is written unless the whole \
                  command succeeds.",
    disable_help_subcommand = true
)]
pub struct ImageCmd {
    /// Use partition N of the image's table (same as IMAGE@N)
    #[arg(short = 'P', long, global = true, value_name = "N")]
    partition: Option<u32>,
    /// Act as this user for new files' ownership and for space (root may
    /// use ext4's reserved blocks)
    #[arg(long, global = true, value_name = "UID[:GID]", value_parser = parse_user)]
    user: Option<(u32, u32)>,
    /// The command
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List directory contents (as ls -1, or -l)
    Ls(Ls),
    /// Copy files and trees between the host and an image (one side IMAGE:PATH)
    Cp(Cp),
    /// Print files' contents
    Cat(Cat),
    /// Make directories
    Mkdir(Mkdir),
    /// Remove files or directories
    Rm(Rm),
    /// Preallocate or punch space in a file (unwritten extents: no data written)
    Fallocate(Fallocate),
    /// Show files' status (as coreutils stat, times in UTC)
    Stat(Stat),
    /// Show the filesystem's size and use (as df on a read-only mount:
    /// XFS holds back its per-AG reservations only when mounted read-write)
    Df(Df),
    /// Show where an image's bytes are on the host: one sparse file, or
    /// (past the length the host allows a file) a directory of segments
    Info(Info),
}

#[derive(Debug, Args)]
struct Info {
    /// Image files (or segmented image directories)
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct Ls {
    /// Long listing
    #[arg(short = 'l')]
    long: bool,
    /// Long listing with numeric user and group ids
    #[arg(short = 'n', long = "numeric-uid-gid")]
    numeric: bool,
    /// Include entries starting with . (and . and ..)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// List directories themselves, not their contents
    #[arg(short = 'd', long = "directory")]
    directory: bool,
    /// One entry per line (the default off a terminal)
    #[arg(short = '1')]
    one: bool,
    /// Time format of -l: default, long-iso, full-iso
    #[arg(long = "time-style", value_name = "STYLE", default_value = "default")]
    time_style: TimeStyle,
    /// IMAGE[@N][:PATH]
    #[arg(required = true)]
    paths: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TimeStyle {
    Default,
    LongIso,
    FullIso,
}

#[derive(Debug, Args)]
struct Cp {
    /// Copy directories recursively (symlinks copied as symlinks)
    #[arg(short = 'r', short_alias = 'R', long = "recursive")]
    recursive: bool,
    /// Keep mode, ownership and timestamps
    #[arg(short = 'p')]
    preserve: bool,
    /// -r -p, and keep hard links
    #[arg(short = 'a', long = "archive")]
    archive: bool,
    /// SOURCE... DEST: host paths, or IMAGE[@N]:PATH on one side
    #[arg(required = true, num_args = 2..)]
    paths: Vec<OsString>,
}

#[derive(Debug, Args)]
struct Cat {
    /// IMAGE[@N]:PATH
    #[arg(required = true)]
    paths: Vec<OsString>,
}

#[derive(Debug, Args)]
struct Mkdir {
    /// Make parents as needed; no error if existing
    #[arg(short = 'p', long = "parents")]
    parents: bool,
    /// Mode (octal) of the new directories
    #[arg(short = 'm', long = "mode", value_parser = parse_mode)]
    mode: Option<u16>,
    /// IMAGE[@N]:PATH
    #[arg(required = true)]
    paths: Vec<OsString>,
}

#[derive(Debug, Args)]
struct Rm {
    /// Remove directories and their contents
    #[arg(short = 'r', short_alias = 'R', long = "recursive")]
    recursive: bool,
    /// Ignore missing files
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// IMAGE[@N]:PATH
    #[arg(required = true)]
    paths: Vec<OsString>,
}

#[derive(Debug, Args)]
struct Fallocate {
    /// Length (K, M, G, T, P, E: powers of 1024; KB, MB, ...: of 1000)
    #[arg(short = 'l', long = "length", value_parser = parse_size)]
    length: u64,
    /// Offset
    #[arg(short = 'o', long = "offset", value_parser = parse_size, default_value = "0")]
    offset: u64,
    /// Keep the file size
    #[arg(short = 'n', long = "keep-size")]
    keep_size: bool,
    /// Punch a hole (implies -n)
    #[arg(short = 'p', long = "punch-hole")]
    punch: bool,
    /// IMAGE[@N]:PATH (created when missing, unless -n or -p)
    path: OsString,
}

#[derive(Debug, Args)]
struct Stat {
    /// Follow symlinks
    #[arg(short = 'L', long = "dereference")]
    follow: bool,
    /// Print FORMAT (coreutils' %n %s %b %B %f %a %A %F %u %U %g %G %h %i %o %t %T %x %X %y %Y %z %Z %w %W %N) and a newline
    #[arg(short = 'c', long = "format", value_name = "FORMAT")]
    format: Option<String>,
    /// IMAGE[@N]:PATH
    #[arg(required = true)]
    paths: Vec<OsString>,
}

#[derive(Debug, Args)]
struct Df {
    /// Sizes in powers of 1024 (1K, 234M, 2G)
    #[arg(short = 'h', long = "human-readable")]
    human: bool,
    /// Sizes in powers of 1000
    #[arg(short = 'H', long = "si")]
    si: bool,
    /// Inodes instead of blocks
    #[arg(short = 'i', long = "inodes")]
    inodes: bool,
    /// Show the filesystem type
    #[arg(short = 'T', long = "print-type")]
    print_type: bool,
    /// IMAGE[@N]
    image: OsString,
}

fn parse_user(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    match (u.parse::<u32>(), g.parse::<u32>()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(format!("invalid user '{s}' (UID or UID:GID, numbers)")),
    }
}

fn parse_mode(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid mode '{s}' (octal, at most 7777)"))
}

/// util-linux's `strtosize`: digits, then K/M/G/T/P/E (1024s), with `iB`
/// (the same) or `B` (1000s).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{s}'");
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = s[..digits].parse().map_err(|_| bad())?;
    let suffix = &s[digits..];
    let (unit, base) = match suffix.as_bytes() {
        [] => return Ok(n),
        [u] => (*u, 1024u64),
        [u, b'B'] => (*u, 1000),
        [u, b'i', b'B'] => (*u, 1024),
        _ => return Err(bad()),
    };
    let pow = match unit.to_ascii_uppercase() {
        b'K' => 1,
        b'M' => 2,
        b'G' => 3,
        b'T' => 4,
        b'P' => 5,
        b'E' => 6,
        _ => return Err(bad()),
    };
    base.checked_pow(pow)
        .and_then(|m| n.checked_mul(m))
        .ok_or_else(|| format!("size '{s}' too large"))
}

/// A failure, already worded; the exit status is 1.
struct Fail(String);

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail(s)
    }
}

/// Runs `ebsim image` reached through its link or the applet table;
/// `args[0]` is "image".
pub fn run(args: Vec<OsString>) -> i32 {
    match super::commands::parse::<ImageCmd>(&args) {
        Ok(c) => exec(&c),
        Err(code) => code,
    }
}

/// Runs a parsed `ebsim image` command.
pub fn exec(cmd: &ImageCmd) -> i32 {
    let name = match &cmd.cmd {
        Sub::Ls(_) => "ls",
        Sub::Cp(_) => "cp",
        Sub::Cat(_) => "cat",
        Sub::Mkdir(_) => "mkdir",
        Sub::Rm(_) => "rm",
        Sub::Fallocate(_) => "fallocate",
        Sub::Stat(_) => "stat",
        Sub::Df(_) => "df",
        Sub::Info(_) => "info",
    };
    let ctx = context(cmd.user);
    let result = match &cmd.cmd {
        Sub::Ls(a) => ls(a, cmd.partition),
        Sub::Cp(a) => cp(a, cmd.partition, ctx),
        Sub::Cat(a) => cat(a, cmd.partition),
        Sub::Mkdir(a) => mkdir(a, cmd.partition, ctx),
        Sub::Rm(a) => rm(a, cmd.partition, ctx),
        Sub::Fallocate(a) => fallocate(a, cmd.partition, ctx),
        Sub::Stat(a) => stat(a, cmd.partition),
        Sub::Df(a) => df(a, cmd.partition),
        Sub::Info(a) => info(a),
    };
    let result = result.map(|()| 0).map_err(|Fail(m)| {
        if m.is_empty() {
            // The messages are out already (ls, stat: one per path).
            AppletError::new(1, "")
        } else {
            AppletError::prog(&format!("ebsim image {name}"), &m)
        }
    });
    finish(result, String::new)
}

/// Who acts (root unless `--user`) and now (`SOURCE_DATE_EPOCH` when set,
/// for reproducible images).
fn context(user: Option<(u32, u32)>) -> Ctx {
    let (uid, gid) = user.unwrap_or((0, 0));
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(|sec| Timespec { sec, nsec: 0 })
        .unwrap_or_else(|| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timespec {
                sec: i64::try_from(d.as_secs()).unwrap_or(0),
                nsec: d.subsec_nanos(),
            }
        });
    Ctx {
        cred: Cred { uid, gid },
        now,
    }
}

/// The process umask (read by setting and restoring it).
fn umask() -> u16 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    (old.bits() & 0o777) as u16
}

/// Parses locations that must all be in one image (and partition).
fn locations(args: &[OsString], partition: Option<u32>) -> Result<Vec<Location>, Fail> {
    let mut out: Vec<Location> = Vec::new();
    for a in args {
        let mut l = Location::parse_image(a);
        l.partition = merge_partition(&l, partition)?;
        if let Some(first) = out.first() {
            if first.image != l.image || first.partition != l.partition {
                return Err(Fail(format!(
                    "'{}' and '{}' are in different images or partitions; one command works on one filesystem",
                    first.display(),
                    l.display()
                )));
            }
        }
        out.push(l);
    }
    Ok(out)
}

fn merge_partition(l: &Location, partition: Option<u32>) -> Result<Option<u32>, Fail> {
    match (l.partition, partition) {
        (Some(a), Some(b)) if a != b => Err(Fail(format!(
            "'{}' names partition {a} but --partition says {b}",
            l.display()
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

fn open(l: &Location, write: bool) -> Result<Opened, Fail> {
    imgio::open(&l.image, l.partition, write).map_err(|e: ImgError| Fail(e.to_string()))
}

fn prefix(o: &Opened) -> String {
    format!("{}:", o.device)
}

fn show(o: &Opened, p: &[u8]) -> String {
    format!("{}{}", prefix(o), String::from_utf8_lossy(p))
}

fn sync(o: &mut Opened) -> Result<(), Fail> {
    o.fs.sync()
        .map_err(|e| Fail(format!("{}: writing the changes: {e}", o.device)))
}

fn cp(a: &Cp, partition: Option<u32>, ctx: Ctx) -> Result<(), Fail> {
    let Some((dest_arg, srcs)) = a.paths.split_last() else {
        return Err(Fail("missing file operand".into()));
    };
    let opts = CopyOptions {
        recursive: a.recursive || a.archive,
        preserve: a.preserve || a.archive,
        links: a.archive,
        umask: umask(),
        dry_run: false,
    };
    let dest = Location::parse(dest_arg);
    let sources: Vec<Option<Location>> = srcs.iter().map(|s| Location::parse(s)).collect();
    match dest {
        Some(mut d) => {
            d.partition = merge_partition(&d, partition)?;
            if sources.iter().any(Option::is_some) {
                return Err(Fail(
                    "copying from one image to another (or within one) is not supported: copy out to the host, then in".into(),
                ));
            }
            let host: Vec<PathBuf> = srcs.iter().map(|s| copy::host_path(s)).collect();
            for h in &host {
                if std::fs::symlink_metadata(h).is_err() {
                    return Err(Fail(format!(
                        "cannot stat '{}': No such file or directory",
                        h.display()
                    )));
                }
            }
            if copy::host_bytes(&host, opts.recursive) > DRY_RUN_ABOVE {
                let mut o = open(&d, true)?;
                let pre = prefix(&o);
                let mut img = ImageFs {
                    fs: o.fs.as_mut(),
                    ctx,
                    prefix: pre,
                };
                let dry = CopyOptions {
                    dry_run: true,
                    ..opts
                };
                copy::copy_in(&mut img, &host, &d.path, dry).map_err(|e| Fail(e.to_string()))?;
                // Dropped without a sync: nothing was written.
            }
            let mut o = open(&d, true)?;
            let pre = prefix(&o);
            let mut img = ImageFs {
                fs: o.fs.as_mut(),
                ctx,
                prefix: pre,
            };
            copy::copy_in(&mut img, &host, &d.path, opts).map_err(|e| Fail(e.to_string()))?;
            sync(&mut o)
        }
        None => {
            let Some(Some(first)) = sources.first() else {
                return Err(Fail(
                    "neither the sources nor the destination is in an image (IMAGE:PATH)".into(),
                ));
            };
            let mut paths = Vec::new();
            for (s, arg) in sources.iter().zip(srcs) {
                let Some(s) = s else {
                    return Err(Fail(format!(
                        "'{}' is on the host but the destination is too; copy from an image or into one",
                        arg.to_string_lossy()
                    )));
                };
                let p = merge_partition(s, partition)?;
                if s.image != first.image || p != merge_partition(first, partition)? {
                    return Err(Fail(
                        "all sources must be in one image and partition".into(),
                    ));
                }
                paths.push(s.path.clone());
            }
            let mut first = first.clone();
            first.partition = merge_partition(&first, partition)?;
            let o = open(&first, false)?;
            copy::copy_out(
                o.fs.as_ref(),
                &prefix(&o),
                &paths,
                &copy::host_path(dest_arg.as_os_str()),
                opts,
            )
            .map(|_| ())
            .map_err(|e| Fail(e.to_string()))
        }
    }
}

fn mkdir(a: &Mkdir, partition: Option<u32>, ctx: Ctx) -> Result<(), Fail> {
    let locs = locations(&a.paths, partition)?;
    let Some(first) = locs.first() else {
        return Ok(());
    };
    let mut o = open(first, true)?;
    let mask = umask();
    let perm = a.mode.unwrap_or(0o777 & !mask);
    let parent_perm = (0o777 & !mask) | 0o300;
    {
        let pre = prefix(&o);
        let mut img = ImageFs {
            fs: o.fs.as_mut(),
            ctx,
            prefix: pre,
        };
        for l in &locs {
            copy::make_dir(&mut img, &l.path, a.parents, perm, parent_perm)
                .map_err(|e| Fail(e.to_string()))?;
        }
    }
    sync(&mut o)
}

fn rm(a: &Rm, partition: Option<u32>, ctx: Ctx) -> Result<(), Fail> {
    let locs = locations(&a.paths, partition)?;
    let Some(first) = locs.first() else {
        return Ok(());
    };
    let mut o = open(first, true)?;
    {
        let pre = prefix(&o);
        let mut img = ImageFs {
            fs: o.fs.as_mut(),
            ctx,
            prefix: pre,
        };
        for l in &locs {
            copy::remove(&mut img, &l.path, a.recursive, a.force)
                .map_err(|e: CopyError| Fail(e.to_string()))?;
        }
    }
    sync(&mut o)
}

fn fallocate(a: &Fallocate, partition: Option<u32>, ctx: Ctx) -> Result<(), Fail> {
    let locs = locations(std::slice::from_ref(&a.path), partition)?;
    let Some(l) = locs.first() else {
        return Ok(());
    };
    if a.length == 0 {
        return Err(Fail("invalid length value specified".into()));
    }
    let mut o = open(l, true)?;
    let shown = show(&o, &l.path);
    let fail = |e: &dyn std::fmt::Display| Fail(format!("{shown}: {e}"));
    let ino = match path::lookup(o.fs.as_ref(), &l.path, true) {
        Ok(a) if a.kind == FileType::Directory => {
            return Err(fail(&NodeError::new(ErrorKind::IsADirectory)));
        }
        Ok(a) => a.ino,
        // util-linux creates the file only for a plain allocation.
        Err(e) if e.kind() == Some(ErrorKind::NotFound) && !a.punch && !a.keep_size => {
            let at = path::parent(o.fs.as_ref(), &l.path).map_err(|e| fail(&e))?;
            let name = at
                .name
                .ok_or_else(|| fail(&NodeError::new(ErrorKind::IsADirectory)))?;
            let perm = 0o666 & !umask();
            o.fs.mknod(ctx, at.dir, &name, FileType::Regular, perm, 0)
                .map_err(|e| fail(&e))?
                .ino
        }
        Err(e) => return Err(fail(&e)),
    };
    let mode = if a.punch {
        FallocateMode::PunchHole
    } else {
        FallocateMode::Allocate {
            keep_size: a.keep_size,
        }
    };
    o.fs.fallocate(ctx, ino, a.offset, a.length, mode)
        .map_err(|e| Fail(format!("{shown}: fallocate failed: {e}")))?;
    sync(&mut o)
}

fn cat(a: &Cat, partition: Option<u32>) -> Result<(), Fail> {
    let locs = locations(&a.paths, partition)?;
    let Some(first) = locs.first() else {
        return Ok(());
    };
    let o = open(first, false)?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 20];
    for l in &locs {
        let shown = show(&o, &l.path);
        let attr = path::lookup(o.fs.as_ref(), &l.path, true)
            .map_err(|e| Fail(format!("{shown}: {e}")))?;
        if attr.kind == FileType::Directory {
            return Err(Fail(format!("{shown}: Is a directory")));
        }
        let mut off = 0u64;
        while off < attr.size {
            let n =
                o.fs.read(attr.ino, off, &mut buf)
                    .map_err(|e| Fail(format!("{shown}: {e}")))?;
            if n == 0 {
                break;
            }
            if let Err(e) = out.write_all(&buf[..n]) {
                return write_error(&e);
            }
            off += n as u64;
        }
    }
    if let Err(e) = out.flush() {
        return write_error(&e);
    }
    Ok(())
}

/// A failed write to stdout: reported unless the pipe was closed.
fn write_error(e: &std::io::Error) -> Result<(), Fail> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Fail(format!("write error: {}", output::strerror(e))))
    }
}

/// `ebsim image info`: where each image's bytes are.
fn info(a: &Info) -> Result<(), Fail> {
    use ebsim::blockdev::ImageFile;
    use ebsim::blockdev::image::Access;
    use ebsim::blockdev::segmented::{Layout, segment_name};
    let mut out = String::new();
    for p in &a.images {
        let img = ImageFile::open(p, Access::ReadOnly).map_err(|e| Fail(e.to_string()))?;
        let layout = img.layout().map_err(|e| Fail(e.to_string()))?;
        let shown = p.display();
        match layout {
            Layout::File { length, allocated } => out.push_str(&format!(
                "{shown}: one sparse file, {length} bytes, {allocated} bytes allocated on the host\n"
            )),
            Layout::Segmented {
                manifest,
                allocated,
            } => {
                let n = manifest.segments.len();
                out.push_str(&format!(
                    "{shown}: segmented image (a file here may not be {} bytes long), {} bytes \
                     in {n} segment{} of up to {} bytes, {allocated} bytes allocated on the host\n",
                    manifest.length,
                    manifest.length,
                    if n == 1 { "" } else { "s" },
                    manifest.segment_size,
                ));
                out.push_str(&format!("  {shown}/manifest\n"));
                let mut start = 0u64;
                for (i, len) in manifest.segments.iter().enumerate() {
                    out.push_str(&format!(
                        "  {shown}/{}  bytes {start}..{}\n",
                        segment_name(i),
                        start + len
                    ));
                    start += len;
                }
            }
        }
    }
    output::out(&out);
    Ok(())
}

fn df(a: &Df, partition: Option<u32>) -> Result<(), Fail> {
    use ebsim::guest::df::{HeaderMode, Options, Row, default_fields, render};
    let locs = locations(std::slice::from_ref(&a.image), partition)?;
    let Some(l) = locs.first() else {
        return Ok(());
    };
    let o = open(l, false)?;
    let st =
        o.fs.statfs()
            .map_err(|e| Fail(format!("{}: {e}", o.device)))?;
    let fields = default_fields(a.inodes, a.print_type);
    let mut opts = if a.human || a.si {
        Options::human(if a.human { 1024 } else { 1000 }, fields)
    } else {
        Options {
            fields,
            ..Options::new()
        }
    };
    if a.inodes {
        opts.header_mode = HeaderMode::Inodes;
    }
    let row = Row {
        source: o.device.clone(),
        fstype: o.kind.name().to_string(),
        target: "-".into(),
        file: "-".into(),
        stat: Some(st),
    };
    output::out(&render(&[row], &opts));
    Ok(())
}

// ---- ls and stat: names, modes, times ----

/// Names of users and groups from the image's `/etc/passwd` and
/// `/etc/group` (empty when it has none).
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn of(fs: &dyn FileSystem) -> Names {
        Names {
            users: id_file(fs, b"/etc/passwd"),
            groups: id_file(fs, b"/etc/group"),
        }
    }

    fn user(&self, id: u32) -> Option<&str> {
        self.users.get(&id).map(String::as_str)
    }

    fn group(&self, id: u32) -> Option<&str> {
        self.groups.get(&id).map(String::as_str)
    }
}

/// `name:x:id:...` lines of a small file (at most 1 MiB read).
fn id_file(fs: &dyn FileSystem, p: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Ok(a) = path::lookup(fs, p, true) else {
        return out;
    };
    if a.kind != FileType::Regular {
        return out;
    }
    let mut buf = vec![0u8; usize::try_from(a.size.min(1 << 20)).unwrap_or(0)];
    let Ok(n) = fs.read(a.ino, 0, &mut buf) else {
        return out;
    };
    for line in String::from_utf8_lossy(&buf[..n]).lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let (Some(name), Some(id)) = (f.first(), f.get(2).and_then(|i| i.parse::<u32>().ok())) {
            out.entry(id).or_insert_with(|| (*name).to_string());
        }
    }
    out
}

/// `drwxr-xr-x` (coreutils' filemodestring).
fn mode_string(a: &Attr) -> String {
    let t = match a.kind {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    };
    let p = a.perm;
    let bit = |m: u16, c: char| if p & m != 0 { c } else { '-' };
    let special = |x: u16, s: u16, set: char, unset: char| match (p & x != 0, p & s != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        t,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

fn type_name(a: &Attr) -> &'static str {
    match a.kind {
        FileType::Regular if a.size == 0 => "regular empty file",
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDevice => "character special file",
        FileType::BlockDevice => "block special file",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
    }
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(sec: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    let (y, m, d) = ebsim::ec2::time::civil_from_days(days);
    let r = u32::try_from(rem).unwrap_or(0);
    (y, m, d, r / 3600, r / 60 % 60, r % 60)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// stat's `%y`: `2024-03-01 07:07:06.000000000 +0000`.
fn full_time(t: Timespec) -> String {
    let (y, mo, d, h, mi, s) = civil(t.sec);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:09} +0000",
        t.nsec
    )
}

/// ls -l's date: within six months of now (and not in the future)
/// `Mar  1 07:07`, else `Mar  1  2023`; or an ISO style.
fn ls_time(t: Timespec, now: Timespec, style: TimeStyle) -> String {
    let (y, mo, d, h, mi, _) = civil(t.sec);
    match style {
        TimeStyle::FullIso => full_time(t),
        TimeStyle::LongIso => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}"),
        TimeStyle::Default => {
            let month = MONTHS
                .get(usize::try_from(mo).unwrap_or(1).saturating_sub(1))
                .copied()
                .unwrap_or("???");
            let six_months_ago = Timespec {
                sec: now.sec - 31_556_952 / 2,
                nsec: now.nsec,
            };
            if six_months_ago < t && t <= now {
                format!("{month} {d:>2} {h:02}:{mi:02}")
            } else {
                format!("{month} {d:>2}  {y}")
            }
        }
    }
}

/// How ls prints a name off a terminal: as it is (coreutils' literal
/// quoting style).
fn literal(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// One entry of a listing.
struct Entry {
    name: Vec<u8>,
    attr: Attr,
    target: Option<Vec<u8>>,
}

fn ls(a: &Ls, partition: Option<u32>) -> Result<(), Fail> {
    let locs = locations(&a.paths, partition)?;
    let Some(first) = locs.first() else {
        return Ok(());
    };
    let o = open(first, false)?;
    let fs = o.fs.as_ref();
    let long = a.long || a.numeric;
    let names = if long && !a.numeric {
        Some(Names::of(fs))
    } else {
        None
    };
    let now = context(None).now;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut status = Ok(());
    for (l, arg) in locs.iter().zip(&a.paths) {
        let shown = show(&o, &l.path);
        // ls follows a symlink named on the command line in the short
        // format and when it ends in '/'; -l and -d show the link.
        let follow = !(long || a.directory) || l.path.last() == Some(&b'/');
        match path::lookup(fs, &l.path, follow).or_else(|e| {
            if follow {
                path::lookup(fs, &l.path, false)
            } else {
                Err(e)
            }
        }) {
            Ok(attr) if attr.kind == FileType::Directory && !a.directory => {
                dirs.push((arg.as_bytes().to_vec(), l.path.clone(), attr));
            }
            Ok(attr) => files.push(entry(fs, arg.as_bytes().to_vec(), attr, long)),
            Err(e) => {
                output::err(&format!("ebsim image ls: cannot access '{shown}': {e}\n"));
                status = Err(Fail(String::new()));
            }
        }
    }
    files.sort_by(|x, y| x.name.cmp(&y.name));
    dirs.sort_by(|x, y| x.0.cmp(&y.0));
    let mut text = String::new();
    if !files.is_empty() {
        text.push_str(&listing(&files, long, a, names.as_ref(), now, false));
    }
    let headers = files.len() + dirs.len() > 1 || status.is_err();
    for (i, (given, p, attr)) in dirs.iter().enumerate() {
        if !text.is_empty() || i > 0 {
            text.push('\n');
        }
        if headers {
            text.push_str(&format!("{}:\n", String::from_utf8_lossy(given)));
        }
        let mut entries = Vec::new();
        if a.all {
            entries.push(entry(fs, b".".to_vec(), attr.clone(), false));
            let up = path::lookup(fs, &path::join(p, b".."), true)
                .map_err(|e| Fail(format!("{}: {e}", show(&o, p))))?;
            entries.push(entry(fs, b"..".to_vec(), up, false));
        }
        let list = fs
            .readdir(attr.ino)
            .map_err(|e| Fail(format!("cannot open directory '{}': {e}", show(&o, p))))?;
        for d in list {
            if !a.all && d.name.first() == Some(&b'.') {
                continue;
            }
            let at = fs
                .getattr(d.ino)
                .map_err(|e| Fail(format!("{}: {e}", show(&o, &path::join(p, &d.name)))))?;
            entries.push(entry(fs, d.name, at, long));
        }
        entries.sort_by(|x, y| x.name.cmp(&y.name));
        text.push_str(&listing(&entries, long, a, names.as_ref(), now, true));
    }
    output::out(&text);
    match status {
        Err(_) => Err(Fail(String::new())),
        Ok(()) => Ok(()),
    }
}

fn entry(fs: &dyn FileSystem, name: Vec<u8>, attr: Attr, long: bool) -> Entry {
    let target = if long && attr.kind == FileType::Symlink {
        fs.readlink(attr.ino).ok()
    } else {
        None
    };
    Entry { name, attr, target }
}

/// The lines of a listing (ls -1, or ls -l with `total` for a directory).
fn listing(
    entries: &[Entry],
    long: bool,
    a: &Ls,
    names: Option<&Names>,
    now: Timespec,
    total: bool,
) -> String {
    let mut s = String::new();
    if !long {
        for e in entries {
            s.push_str(&literal(&e.name));
            s.push('\n');
        }
        return s;
    }
    if total {
        let blocks: u64 = entries.iter().map(|e| e.attr.blocks).sum();
        s.push_str(&format!("total {}\n", blocks.div_ceil(2)));
    }
    let owner = |e: &Entry| match names.and_then(|n| n.user(e.attr.uid)) {
        Some(n) => (n.to_string(), false),
        None => (e.attr.uid.to_string(), true),
    };
    let group = |e: &Entry| match names.and_then(|n| n.group(e.attr.gid)) {
        Some(n) => (n.to_string(), false),
        None => (e.attr.gid.to_string(), true),
    };
    let is_dev = |e: &Entry| matches!(e.attr.kind, FileType::CharDevice | FileType::BlockDevice);
    let w_links = entries
        .iter()
        .map(|e| e.attr.nlink.to_string().len())
        .max()
        .unwrap_or(0);
    let w_owner = entries.iter().map(|e| owner(e).0.len()).max().unwrap_or(0);
    let w_group = entries.iter().map(|e| group(e).0.len()).max().unwrap_or(0);
    let w_major = entries
        .iter()
        .filter(|e| is_dev(e))
        .map(|e| split_rdev(e.attr.rdev).0.to_string().len())
        .max()
        .unwrap_or(0);
    let w_minor = entries
        .iter()
        .filter(|e| is_dev(e))
        .map(|e| split_rdev(e.attr.rdev).1.to_string().len())
        .max()
        .unwrap_or(0);
    let w_size = entries
        .iter()
        .map(|e| {
            if is_dev(e) {
                w_major + 2 + w_minor
            } else {
                e.attr.size.to_string().len()
            }
        })
        .max()
        .unwrap_or(0);
    let pad = |(text, right): (String, bool), w: usize| {
        if right {
            format!("{text:>w$}")
        } else {
            format!("{text:<w$}")
        }
    };
    for e in entries {
        let size = if is_dev(e) {
            format!(
                "{:>w_major$}, {:>w_minor$}",
                split_rdev(e.attr.rdev).0,
                split_rdev(e.attr.rdev).1
            )
        } else {
            e.attr.size.to_string()
        };
        s.push_str(&format!(
            "{} {:>w_links$} {} {} {size:>w_size$} {} {}",
            mode_string(&e.attr),
            e.attr.nlink,
            pad(owner(e), w_owner),
            pad(group(e), w_group),
            ls_time(e.attr.mtime, now, a.time_style),
            literal(&e.name),
        ));
        if let Some(t) = &e.target {
            s.push_str(&format!(" -> {}", literal(t)));
        }
        s.push('\n');
    }
    s
}

fn stat(a: &Stat, partition: Option<u32>) -> Result<(), Fail> {
    let locs = locations(&a.paths, partition)?;
    let Some(first) = locs.first() else {
        return Ok(());
    };
    let o = open(first, false)?;
    let fs = o.fs.as_ref();
    let names = Names::of(fs);
    let mut text = String::new();
    let mut failed = false;
    for (l, arg) in locs.iter().zip(&a.paths) {
        match path::lookup(fs, &l.path, a.follow) {
            Ok(attr) => {
                let target = if attr.kind == FileType::Symlink {
                    fs.readlink(attr.ino).ok()
                } else {
                    None
                };
                let f = StatFields {
                    name: arg.as_bytes(),
                    attr: &attr,
                    target: target.as_deref(),
                    names: &names,
                    device: &o.device,
                };
                match &a.format {
                    Some(fmt) => {
                        text.push_str(&f.format(fmt));
                        text.push('\n');
                    }
                    None => text.push_str(&f.default_format()),
                }
            }
            Err(e) => {
                output::err(&format!(
                    "ebsim image stat: cannot stat '{}': {e}\n",
                    show(&o, &l.path)
                ));
                failed = true;
            }
        }
    }
    output::out(&text);
    if failed {
        Err(Fail(String::new()))
    } else {
        Ok(())
    }
}

struct StatFields<'a> {
    name: &'a [u8],
    attr: &'a Attr,
    target: Option<&'a [u8]>,
    names: &'a Names,
    device: &'a str,
}

impl StatFields<'_> {
    fn default_format(&self) -> String {
        let a = self.attr;
        let dev = matches!(a.kind, FileType::CharDevice | FileType::BlockDevice);
        let mut s = format!("  File: {}", String::from_utf8_lossy(self.name));
        if let Some(t) = self.target {
            s.push_str(&format!(" -> {}", String::from_utf8_lossy(t)));
        }
        s.push('\n');
        s.push_str(&format!(
            "  Size: {:<10}\tBlocks: {:<10} IO Block: {:<6} {}\n",
            a.size,
            a.blocks,
            a.blksize,
            type_name(a)
        ));
        let links = format!("Links: {}", a.nlink);
        if dev {
            s.push_str(&format!(
                "Device: {}\tInode: {:<11} {links:<5} Device type: {},{}\n",
                self.device,
                a.ino,
                split_rdev(a.rdev).0,
                split_rdev(a.rdev).1
            ));
        } else {
            s.push_str(&format!(
                "Device: {}\tInode: {:<11} {links}\n",
                self.device, a.ino
            ));
        }
        s.push_str(&format!(
            "Access: ({:04o}/{})  Uid: ({:>5}/{:>8})   Gid: ({:>5}/{:>8})\n",
            a.perm,
            mode_string(a),
            a.uid,
            self.directive('U'),
            a.gid,
            self.directive('G')
        ));
        s.push_str(&format!("Access: {}\n", full_time(a.atime)));
        s.push_str(&format!("Modify: {}\n", full_time(a.mtime)));
        s.push_str(&format!("Change: {}\n", full_time(a.ctime)));
        s.push_str(&format!(" Birth: {}\n", self.directive('w')));
        s
    }

    fn directive(&self, c: char) -> String {
        let a = self.attr;
        let birth = (a.crtime != Timespec::default()).then_some(a.crtime);
        match c {
            'n' => String::from_utf8_lossy(self.name).into_owned(),
            'N' => match self.target {
                Some(t) => format!("{} -> {}", quote_always(self.name), quote_always(t)),
                None => quote_always(self.name),
            },
            's' => a.size.to_string(),
            'b' => a.blocks.to_string(),
            'B' => "512".into(),
            'o' => a.blksize.to_string(),
            'f' => format!("{:x}", u32::from(a.kind.mode_bits() | a.perm)),
            'a' => format!("{:o}", a.perm),
            'A' => mode_string(a),
            'F' => type_name(a).into(),
            'u' => a.uid.to_string(),
            'g' => a.gid.to_string(),
            'U' => self.names.user(a.uid).unwrap_or("UNKNOWN").into(),
            'G' => self.names.group(a.gid).unwrap_or("UNKNOWN").into(),
            'h' => a.nlink.to_string(),
            'i' => a.ino.to_string(),
            't' => format!("{:x}", split_rdev(a.rdev).0),
            'T' => format!("{:x}", split_rdev(a.rdev).1),
            'x' => full_time(a.atime),
            'y' => full_time(a.mtime),
            'z' => full_time(a.ctime),
            'w' => birth.map_or("-".into(), full_time),
            'X' => a.atime.sec.to_string(),
            'Y' => a.mtime.sec.to_string(),
            'Z' => a.ctime.sec.to_string(),
            'W' => birth.map_or("0".into(), |t| t.sec.to_string()),
            'd' | 'D' => self.device.into(),
            _ => format!("?{c}"),
        }
    }

    /// coreutils' `-c FORMAT`: `%[-][WIDTH]X` directives, `%%`.
    fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut left = false;
            let mut width = String::new();
            while let Some(&n) = chars.peek() {
                if n == '-' && width.is_empty() {
                    left = true;
                    chars.next();
                } else if n.is_ascii_digit() {
                    width.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(d) = chars.next() else {
                out.push('%');
                break;
            };
            if d == '%' {
                out.push('%');
                continue;
            }
            let v = self.directive(d);
            let w: usize = width.parse().unwrap_or(0);
            if left {
                out.push_str(&format!("{v:<w$}"));
            } else {
                out.push_str(&format!("{v:>w$}"));
            }
        }
        out
    }
}

/// stat's %N quoting: always in single quotes.
fn quote_always(name: &[u8]) -> String {
    format!("'{}'", String::from_utf8_lossy(name).replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        ImageCmd::command().debug_assert();
    }

    #[test]
    fn sizes_as_util_linux() {
        assert_eq!(parse_size("150G"), Ok(150 << 30));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999E").is_err());
    }

    #[test]
    fn modes_and_times() {
        let a = Attr {
            ino: 1,
            kind: FileType::Directory,
            perm: 0o1777,
            nlink: 2,
            uid: 0,
            gid: 0,
            size: 0,
            blocks: 0,
            atime: Timespec::default(),
            mtime: Timespec::default(),
            ctime: Timespec::default(),
            crtime: Timespec::default(),
            rdev: 0,
            blksize: 4096,
        };
        assert_eq!(mode_string(&a), "drwxrwxrwt");
        let now = Timespec {
            sec: 1_709_276_826,
            nsec: 0,
        };
        let t = Timespec {
            sec: 1_709_276_826 - 3600,
            nsec: 5,
        };
        assert_eq!(ls_time(t, now, TimeStyle::Default), "Mar  1 06:07");
        let old = Timespec {
            sec: 1_600_000_000,
            nsec: 0,
        };
        assert_eq!(ls_time(old, now, TimeStyle::Default), "Sep 13  2020");
        assert_eq!(full_time(t), "2024-03-01 06:07:06.000000005 +0000");
        assert_eq!(quote_always(b"it's"), "'it'\\''s'");
    }
}
