//! `growpart`: cloud-utils growpart 0.33 (or 0.34 with
//! `GROWPART_COMPAT=0.34`) on image files; in a guest, the guest's version
//! (0.29 on CentOS 7, 0.31 on Amazon Linux, 0.32 on Ubuntu 22.04; see
//! `partition::grow` for what differs).
//!
//! The argument loop is hand-written because growpart's own is a shell
//! `case` with behaviour clap cannot reproduce: options and operands mix in
//! any order, `--` stops parsing and drops what follows, `-vv` is an unknown
//! option, and every error has its own wording on stdout.

use super::error::{AppletError, finish};
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::guest::Target;
use ebsim::partition::grow::{self, Compat, GrowOptions, Outcome, Resizer};
use ebsim::partition::{self, Label, TableFormat};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

const FAILED: i32 = 2;
const NOCHANGE: i32 = 1;

fn usage(fudge: &str, compat: Compat) -> String {
    if !compat.free_percent() {
        return format!(
            "growpart disk partition
   rewrite partition table so that partition takes up all the space it can
   options:
    -h | --help       print Usage and exit
         --fudge F    if part could be resized, but change would be
                      less than 'F' bytes, do not resize (default: {fudge})
    -N | --dry-run    only report what would be done, show new 'sfdisk -d'
    -v | --verbose    increase verbosity / debug
    -u | --update  R  update the the kernel partition table info after growing
                      this requires kernel support and 'partx --update'
                      R is one of:
                       - 'auto'  : [default] update partition if possible
                       - 'force' : try despite sanity checks (fail on failure)
                       - 'off'   : do not attempt
                       - 'on'    : fail if sanity checks indicate no support

   Example:
    - growpart /dev/sda 1
      Resize partition 1 on /dev/sda
"
        );
    }
    format!(
        "growpart disk partition
   rewrite partition table so that partition takes up all the space it can
   options:
    -h | --help            print Usage and exit
         --free-percent F  resize so that specified percentage F of the disk is
                           not used in total (not just by this partition). This
                           is useful for consumer SSD or SD cards where a small
                           percentage unallocated can improve device lifetime.
         --fudge F         if part could be resized, but change would be less
                           than 'F' bytes, do not resize (default: {fudge})
    -N | --dry-run         only report what would be done, show new 'sfdisk -d'
    -v | --verbose         increase verbosity / debug
    -u | --update  R       update the the kernel partition table info after
                           growing this requires kernel support and
                           'partx --update'
                           R is one of:
                            - 'auto'  : [default] update partition if possible
                            - 'force' : try despite sanity checks (fail on
                                        failure)
                            - 'off'   : do not attempt
                            - 'on'    : fail if sanity checks indicate no
                                        support

   Example:
    - growpart /dev/sda 1
      Resize partition 1 on /dev/sda

    - growpart --free-percent=10 /dev/sda 1
      Resize partition 1 on /dev/sda so that 10% of the disk is unallocated
"
    )
}

/// Where debug lines go: stderr, or the file named by `DEBUG_LOG`.
struct Debug {
    verbosity: u8,
    log: Option<std::fs::File>,
}

impl Debug {
    fn line(&mut self, level: u8, text: &str) {
        if level > self.verbosity {
            return;
        }
        let mut s = text.to_string();
        s.push('\n');
        match &mut self.log {
            Some(f) => {
                let _ = f.write_all(s.as_bytes());
            }
            None => err(&s),
        }
    }

    fn lines(&mut self, lines: &[grow::Debug]) {
        for l in lines {
            self.line(l.level, &l.text);
        }
    }
}

/// growpart's `fail`: `FAILED: MESSAGE` on stdout, status 2.
fn fail(msg: &str) -> AppletError {
    AppletError::new(FAILED, "").with_stdout(format!("FAILED: {msg}\n"))
}

/// Shell arithmetic on a possibly non-numeric string: a name or nothing
/// counts as 0.
fn shell_int(s: &str) -> i64 {
    s.trim().parse().unwrap_or(0)
}

struct Args {
    disk: Option<String>,
    part: Option<String>,
    dry_run: bool,
    verbosity: u8,
    fudge: String,
    free_percent: Option<(String, u32)>,
}

/// The arguments; None when the help was printed.
fn parse(
    args: &[String],
    default_fudge: &str,
    compat: Compat,
) -> Result<Option<Args>, AppletError> {
    let mut a = Args {
        disk: None,
        part: None,
        dry_run: false,
        verbosity: 0,
        fudge: default_fudge.to_string(),
        free_percent: None,
    };
    let mut i = 0;
    while i < args.len() {
        let cur = args[i].as_str();
        let next = args.get(i + 1).map(String::as_str).unwrap_or("");
        match cur {
            "-h" | "--help" => {
                out(&usage(&a.fudge, compat));
                return Ok(None);
            }
            _ if compat.free_percent()
                && (cur == "--free-percent" || cur.starts_with("--free-percent=")) =>
            {
                let v = match cur.strip_prefix("--free-percent=") {
                    Some(v) => v,
                    None => {
                        i += 1;
                        next
                    }
                };
                match v.trim().parse::<i64>() {
                    Ok(n) if n > 0 && n < 100 => a.free_percent = Some((v.to_string(), n as u32)),
                    _ => {
                        return Err(fail(&format!("unknown/invalid --free-percent option: {v}")));
                    }
                }
            }
            "--fudge" => {
                a.fudge = next.to_string();
                i += 1;
            }
            "-N" | "--dry-run" => a.dry_run = true,
            _ if cur == "-u" || cur == "--update" || cur.starts_with("--update=") => {
                let v = match cur.strip_prefix("--update=") {
                    Some(v) => v,
                    None => {
                        i += 1;
                        next
                    }
                };
                if !matches!(v, "off" | "auto" | "force" | "on") {
                    return Err(fail(&format!("unknown --update option: {v}")));
                }
            }
            "-v" | "--verbose" => a.verbosity = a.verbosity.saturating_add(1),
            "--" => break,
            _ if cur.starts_with('-') => {
                return Err(fail(&format!("unknown option {cur}")));
            }
            _ => {
                if a.disk.is_none() {
                    a.disk = Some(cur.to_string());
                } else {
                    if a.part.is_some() {
                        return Err(fail(&format!("confused by arg {cur}")));
                    }
                    a.part = Some(cur.to_string());
                }
            }
        }
        i += 1;
    }
    Ok(Some(a))
}

fn bad_usage(fudge: &str, compat: Compat, msg: &str) -> AppletError {
    AppletError::new(FAILED, format!("{}{msg}\n", usage(fudge, compat)))
}

/// The growpart to copy: the guest's, or on this machine 0.33 (0.34 with
/// `GROWPART_COMPAT=0.34`).
fn compat() -> Compat {
    match std::env::var("GROWPART_COMPAT").as_deref() {
        Ok("0.34") => Compat::V0_34,
        _ => super::env::release().growpart,
    }
}

/// Runs growpart.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(&args), String::new)
}

fn main(args: &[OsString]) -> Result<i32, AppletError> {
    let args = super::getopt::after_argv0(args);
    let default_fudge = std::env::var("GROWPART_FUDGE").unwrap_or_else(|_| "1048576".into());
    let compat = compat();
    let Some(a) = parse(&args, &default_fudge, compat)? else {
        return Ok(0);
    };
    let Some(disk_arg) = a.disk.clone() else {
        return Err(bad_usage(
            &a.fudge,
            compat,
            "must supply disk and partition-number",
        ));
    };
    let Some(part) = a.part.clone() else {
        return Err(bad_usage(&a.fudge, compat, "must supply partition-number"));
    };
    let log = std::env::var_os("DEBUG_LOG")
        .filter(|v| !v.is_empty())
        .and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
    let mut dbg = Debug {
        verbosity: a.verbosity,
        log,
    };
    if super::env::target(&disk_arg, false) == Target::Device {
        return grow_guest_device(&disk_arg, &part, &a, &mut dbg);
    }
    let disk_path = Path::new(&disk_arg);
    if std::fs::symlink_metadata(disk_path).is_err() || !disk_path.exists() {
        return Err(fail(&format!("{disk_arg}: does not exist")));
    }
    let mut disk = disk_arg.clone();
    if disk_path.is_symlink() && compat.resolves_links() {
        match std::fs::canonicalize(disk_path) {
            Ok(real) => {
                let real = real.to_string_lossy().into_owned();
                dbg.line(1, &format!("{disk} resolved to {real}"));
                disk = real;
            }
            Err(_) => return Err(fail(&format!("unable to resolve {disk}"))),
        }
    }
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail("partition-number must be a number"));
    }
    dbg.line(1, "update-partition set to true");
    check_tmpdir()?;
    let opts = options(&a);
    grow_image(&disk, &Disk::File, &part, a.dry_run, opts, &mut dbg)
}

fn options(a: &Args) -> GrowOptions {
    GrowOptions {
        fudge_bytes: shell_int(&a.fudge),
        free_percent: a.free_percent.as_ref().map(|(_, n)| *n),
        compat: compat(),
        resizer: Resizer::Sfdisk,
    }
}

/// growpart on a block device of the instance (`/dev/xvda`,
/// `/dev/nvme0n1`, or the API name, a link the guest resolves).
fn grow_guest_device(
    disk_arg: &str,
    part: &str,
    a: &Args,
    dbg: &mut Debug,
) -> Result<i32, AppletError> {
    let resolved = match super::env::context().map(|c| c.resolve(disk_arg)) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(fail(&format!("{disk_arg}: does not exist"))),
        Err(why) => return Err(fail(&format!("{disk_arg}: {why}"))),
    };
    // The API name and /dev/disk/by-* are links to the kernel's node
    // (0.29 works on the name as given).
    let disk = if compat().resolves_links() {
        resolved.dev_path()
    } else {
        disk_arg.to_string()
    };
    if disk != disk_arg {
        dbg.line(1, &format!("{disk_arg} resolved to {disk}"));
    }
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail("partition-number must be a number"));
    }
    dbg.line(1, "update-partition set to true");
    check_tmpdir()?;
    grow_image(
        &disk,
        &Disk::Guest(Box::new(resolved)),
        part,
        a.dry_run,
        options(a),
        dbg,
    )
}

/// growpart makes a temporary directory first; an unusable TMPDIR fails.
fn check_tmpdir() -> Result<(), AppletError> {
    let base = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let dir = Path::new(&base).join(format!("growpart.{}", std::process::id()));
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&dir);
            Ok(())
        }
        Err(e_io) => {
            let mut e = fail("failed to make temp dir");
            e.prepend_stderr(&format!(
                "mkdir: cannot create directory '{}': {}\n",
                dir.display(),
                super::output::strerror(&e_io)
            ));
            Err(e)
        }
    }
}

fn sfdisk_cannot_open(disk: &str, e: &ebsim::blockdev::Error) -> String {
    let why = match e {
        ebsim::blockdev::Error::IsADirectory(_) => "Is a directory".to_string(),
        ebsim::blockdev::Error::Io { source, .. } => super::output::strerror(source),
        other => other.to_string(),
    };
    format!("sfdisk: cannot open {disk}: {why}\n")
}

/// Where the disk's bytes are: an image file named on the command line, or
/// a guest block device (a volume's image, or a range of it).
enum Disk {
    File,
    Guest(Box<ebsim::guest::Resolved>),
}

impl Disk {
    fn open(
        &self,
        path: &str,
        access: Access,
    ) -> Result<Box<dyn BlockDevice>, ebsim::blockdev::Error> {
        match self {
            Disk::File => Ok(Box::new(ImageFile::open(path, access)?)),
            Disk::Guest(r) => Ok(Box::new(r.open(access)?)),
        }
    }
}

fn grow_image(
    disk: &str,
    source: &Disk,
    part: &str,
    dry_run: bool,
    mut opts: GrowOptions,
    dbg: &mut Debug,
) -> Result<i32, AppletError> {
    let block = matches!(source, Disk::Guest(_));
    // sfdisk cannot open a directory or a file smaller than one sector.
    let opened = source.open(disk, Access::ReadOnly).and_then(|img| {
        if img.size() < partition::SECTOR {
            Err(ebsim::blockdev::Error::Io {
                path: disk.into(),
                op: "open".into(),
                source: std::io::Error::from_raw_os_error(22),
            })
        } else {
            Ok(img)
        }
    });
    let img = match opened {
        Ok(img) => img,
        Err(e) => {
            let msg = sfdisk_cannot_open(disk, &e);
            err(&msg);
            dbg.line(
                1,
                &format!("resizing {part} on {disk} using resize_sfdisk_dos"),
            );
            dbg.line(
                2,
                &format!("running[sfd_list][erronly] sfdisk --list --unit=S {disk}"),
            );
            err(&format!(
                "failed [sfd_list:1] sfdisk --list --unit=S {disk}\n"
            ));
            err(&msg);
            return Err(fail(&format!("failed: sfdisk --list {disk}")));
        }
    };
    let probe = match partition::probe(&img) {
        Ok(p) => p,
        Err(e) => return Err(fail(&format!("{disk}: {e}"))),
    };
    // Without blkid's answer, sfdisk --list runs and prints its warnings.
    let table = probe.table_format();
    if !matches!(table, TableFormat::Blkid(_)) {
        for w in &probe.gpt_probe_warnings {
            err(&format!("{w}\n"));
        }
    }
    if table == TableFormat::Unknown {
        err("WARN: unknown label \n");
    }
    let format = table.name();
    let resizer_env = std::env::var("GROWPART_RESIZER").unwrap_or_else(|_| "auto".into());
    opts.resizer = match resizer_env.as_str() {
        "sgdisk" => Resizer::Sgdisk,
        "sfdisk" | "auto" | "" => Resizer::Sfdisk,
        other => {
            err(&format!(
                "unexpected value '{other}' for growpart resizer\n"
            ));
            return Err(fail(&format!(
                "failed to get a resizer for format '{format}'"
            )));
        }
    };
    let resizer_name = match opts.resizer {
        Resizer::Sfdisk => format!("resize_sfdisk_{format}"),
        Resizer::Sgdisk => format!("resize_sgdisk_{format}"),
    };
    if block && !dry_run && opts.compat.flock() {
        dbg.line(
            1,
            "FLOCK: try exec open fd 9, on failure exec exits this program",
        );
        dbg.line(2, "running[flock][] flock -x 9");
        dbg.line(1, &format!("FLOCK: {disk}: obtained exclusive lock"));
    }
    dbg.line(
        1,
        &format!("resizing {part} on {disk} using {resizer_name}"),
    );
    let label: Label = match (&probe.label, opts.resizer) {
        (_, Resizer::Sgdisk) if format == "dos" => {
            return Err(fail("unable to resize dos label with sgdisk"));
        }
        (Some(l), _) => l.clone(),
        (None, _) => {
            dbg.line(
                2,
                &format!("running[sfd_list][erronly] sfdisk --list --unit=S {disk}"),
            );
            dbg.line(
                1,
                &format!(
                    "{} sectors of 512. total size={} bytes",
                    img.size() / 512,
                    img.size()
                ),
            );
            dbg.line(
                2,
                &format!("running[sfd_dump][erronly] sfdisk --unit=S --dump {disk}"),
            );
            err(&format!(
                "failed [sfd_dump:1] sfdisk --unit=S --dump {disk}\n"
            ));
            err(&format!(
                "sfdisk: {disk}: does not contain a recognized partition table\n"
            ));
            return Err(fail(&format!("failed to dump sfdisk info for {disk}")));
        }
    };
    if opts.resizer == Resizer::Sfdisk {
        dbg.line(
            2,
            &format!("running[sfd_list][erronly] sfdisk --list --unit=S {disk}"),
        );
    }
    let sector0 = match img.read_vec(0, partition::SECTOR as usize) {
        Ok(s) => s,
        Err(e) => return Err(fail(&format!("{disk}: {e}"))),
    };
    let view = grow::DiskView {
        name: disk,
        size_bytes: img.size(),
        sector0: &sector0,
        label: &label,
    };
    let outcome = grow::plan_grow(&view, part, &opts);
    let plan = match outcome {
        Err(f) => {
            print_plan_debug(dbg, &f.debug, opts.resizer, disk);
            return Err(fail(&f.message));
        }
        Ok(Outcome::NoChange(n)) => {
            print_plan_debug(dbg, &n.debug, opts.resizer, disk);
            out(&format!("NOCHANGE: {}\n", n.message));
            return Ok(NOCHANGE);
        }
        Ok(Outcome::Grow(p)) => p,
    };
    print_plan_debug(dbg, &plan.debug, opts.resizer, disk);
    if dry_run {
        out(&format!("CHANGE: {}\n", plan.change_info()));
        match &plan.dumps {
            Some((old, new)) => {
                err(&format!(
                    "# === old sfdisk -d ===\n{old}# === new sfdisk -d ===\n{new}"
                ));
                return Ok(0);
            }
            None => {
                lvm_note(dbg, disk, part);
                return Ok(0);
            }
        }
    }
    drop(img);
    let batch = match &plan.writes {
        Ok(b) => b,
        Err(rejection) => return Err(resize_failed(disk, &rejection.messages, opts.compat)),
    };
    // A disk whose partition is served (`ebsim mount IMAGE@N`, or a guest's
    // mounted partition) belongs to its server: the server writes the
    // table, as the kernel takes growpart's BLKPG while the partition is
    // mounted.
    let served_image = match &source {
        Disk::File => super::fuse_mount::served(disk).map(|(image, _)| image),
        Disk::Guest(r) => match ebsim::fuse::control::info(r.image()) {
            Ok(Some(_)) => Some(r.image().to_path_buf()),
            _ => None,
        },
    };
    if let Some(image) = &served_image {
        let mut writes = Vec::new();
        for op in &batch.ops {
            match op {
                ebsim::blockdev::WriteOp::Data { offset, bytes } => {
                    writes.push((*offset, bytes.clone()));
                }
                ebsim::blockdev::WriteOp::Discard { .. } => {}
            }
        }
        if batch.new_len.is_some() {
            return Err(resize_failed(
                disk,
                &[format!("sfdisk: {disk}: the table change resizes the disk")],
                opts.compat,
            ));
        }
        if let Err(e) = ebsim::fuse::control::write_table(image, writes) {
            let line = format!("sfdisk: cannot write the table of {disk}: {e}");
            return Err(resize_failed(disk, &[line], opts.compat));
        }
    } else {
        let written = source
            .open(disk, Access::ReadWrite)
            .and_then(|mut img| grow::apply(&mut img, batch));
        if let Err(e) = written {
            let line = sfdisk_cannot_open(disk, &e);
            return Err(resize_failed(
                disk,
                &[line.trim_end().to_string()],
                opts.compat,
            ));
        }
    }
    if opts.resizer == Resizer::Sfdisk && opts.compat.resolves_links() {
        dbg.line(1, &format!("resize of {disk} returned 0."));
    }
    dbg.line(2, &format!("running[pt_update][] pt_update {disk} {part}"));
    if block && opts.compat.flock() {
        dbg.line(1, &format!("FLOCK: {disk}: releasing exclusive lock"));
    }
    out(&format!("CHANGED: {}\n", plan.change_info()));
    lvm_note(dbg, disk, part);
    // A served guest disk: the guest's /proc/partitions follows the new
    // table.
    if served_image.is_some() && matches!(source, Disk::Guest(_)) {
        let _ = super::guest_ns::notify("sync");
    }
    Ok(0)
}

/// growpart's report when sfdisk refused or failed to write: sfdisk's
/// output, the (successful) restore of the saved sectors, then FAILED.
fn resize_failed(disk: &str, sfdisk_output: &[String], compat: Compat) -> AppletError {
    let mut text = format!("attempt to resize {disk} failed. sfdisk output below:\n");
    for m in sfdisk_output {
        text.push_str(&format!("| {m}\n"));
    }
    text.push_str("***** WARNING: Resize failed, attempting to revert ******\n");
    text.push_str(compat.restore_ok());
    text.push('\n');
    let mut e = fail("failed to resize");
    e.prepend_stderr(&text);
    e
}

fn print_plan_debug(dbg: &mut Debug, lines: &[grow::Debug], resizer: Resizer, disk: &str) {
    if resizer == Resizer::Sfdisk {
        // The dump listing comes after sfdisk --dump is run.
        for l in lines {
            if l.text.starts_with("## sfdisk --unit=S --dump") {
                dbg.line(
                    2,
                    &format!("running[sfd_dump][erronly] sfdisk --unit=S --dump {disk}"),
                );
            }
            dbg.line(l.level, &l.text);
        }
    } else {
        dbg.lines(lines);
    }
}

fn lvm_note(dbg: &mut Debug, disk: &str, part: &str) {
    dbg.line(
        2,
        &format!("No lvm command, cannot attempt lvm resize of disk '{disk}' part '{part}'"),
    );
}
