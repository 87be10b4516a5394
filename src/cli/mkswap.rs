//! `mkswap` (util-linux 2.38.1): set up a swap area on an instance's device
//! (`/dev/xvdf2`) or on a file of this machine. The header is the
//! library's (`fs::swap`), written through the blockdev commit. Checks,
//! messages, their order and exit codes are 2.38.1's: option errors, more
//! than two operands, the UUID (`clear`, `random`, `time` or text), the
//! page size, the block count, the device's size (ten pages at least),
//! a mounted device, then the warnings (permissions and holes of a file,
//! a partition table kept, old signatures wiped), the size line and the
//! label/UUID line. Not emulated: a file inside the instance (a swap
//! file on a mounted filesystem) is refused by name; `-U time` makes a
//! random UUID; `--lock` is accepted and changes nothing (ebsim takes the
//! image's lock anyway).

use super::error::{AppletError, finish};
use super::getopt::{LongOpt, getopt_long};
use super::output::{err, out, strerror};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::fs::swap::{self, SwapError, SwapOptions};
use ebsim::guest::Target;
use ebsim::guest::human::size_3letter as size_string;
use std::ffi::OsString;

/// The machine's page size (x86-64 and the EC2 guests ebsim models).
const PAGE_SIZE: u32 = 4096;

const LONG: &[LongOpt] = &[
    LongOpt::flag("check", 'c'),
    LongOpt::flag("force", 'f'),
    LongOpt::flag("quiet", 'q'),
    LongOpt::arg("pagesize", 'p'),
    LongOpt::arg("label", 'L'),
    LongOpt::arg("swapversion", 'v'),
    LongOpt::arg("uuid", 'U'),
    LongOpt::flag("version", 'V'),
    LongOpt::flag("help", 'h'),
    LongOpt::optional("lock", '\u{1}'),
    LongOpt::flag("verbose", '\u{2}'),
];

const USAGE: &str = "
Usage:
 mkswap [options] device [size]

Set up a Linux swap area.

Options:
 -c, --check               check bad blocks before creating the swap area
 -f, --force               allow swap size area be larger than device
 -q, --quiet               suppress output and warning messages
 -p, --pagesize SIZE       specify page size in bytes
 -L, --label LABEL         specify label
 -v, --swapversion NUM     specify swap-space version number
 -U, --uuid UUID           specify the uuid to use
     --verbose             verbose output
     --lock[=<mode>]       use exclusive device lock (yes, no or nonblock)
 -h, --help                display this help
 -V, --version             display version

For more details see mkswap(8).
";

const TRY: &str = "Try 'mkswap --help' for more information.\n";

fn fail(msg: &str) -> AppletError {
    AppletError::prog("mkswap", msg)
}

fn fail_try(msg: &str) -> AppletError {
    AppletError::new(1, format!("mkswap: {msg}\n{TRY}"))
}

/// util-linux `strtou32_or_err`/`strtos32_or_err`: decimal digits only.
fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, AppletError> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(&format!("{what}: '{s}'")));
    }
    digits
        .parse()
        .map_err(|_| fail(&format!("{what}: '{s}': Numerical result out of range")))
}

struct Cli {
    check: bool,
    force: bool,
    quiet: bool,
    verbose: bool,
    pagesize: u32,
    label: Option<String>,
    uuid: Option<String>,
    lock: Option<String>,
}

/// The device: an instance's, or a file here.
enum Device {
    Guest {
        r: Box<ebsim::guest::Resolved>,
        /// A filesystem on it is mounted.
        mounted: bool,
        /// A disk with a mounted partition (the exclusive open fails).
        busy: bool,
    },
    Host(std::fs::Metadata),
}

pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(&args), String::new)
}

fn main(args: &[OsString]) -> Result<i32, AppletError> {
    let argv = super::getopt::after_argv0(args);
    let parsed = getopt_long(&argv, "cfp:qL:v:U:Vh", LONG);
    let mut cli = Cli {
        check: false,
        force: false,
        quiet: false,
        verbose: false,
        pagesize: 0,
        label: None,
        uuid: None,
        lock: None,
    };
    for item in parsed.items {
        let o = item.map_err(|e| AppletError::new(1, format!("{}{TRY}", e.message("mkswap"))))?;
        // util-linux's err_exclusive_options: -c and -q.
        if (o.val == 'c' && cli.quiet) || (o.val == 'q' && cli.check) {
            return Err(fail("mutually exclusive arguments: --check --quiet"));
        }
        let a = o.arg_or_empty();
        match o.val {
            'c' => cli.check = true,
            'f' => cli.force = true,
            'q' => cli.quiet = true,
            'p' => cli.pagesize = number(&a, "parsing page size failed")?,
            'L' => cli.label = Some(a),
            'v' => {
                let v: i32 = number(&a, "parsing version number failed")?;
                if v != 1 {
                    return Err(fail(&format!("swapspace version {v} is not supported")));
                }
            }
            'U' => cli.uuid = Some(a),
            'V' => {
                out("mkswap from util-linux 2.38.1\n");
                return Ok(0);
            }
            'h' => {
                out(USAGE);
                return Ok(0);
            }
            '\u{1}' => {
                cli.lock = Some(
                    o.arg
                        .map_or("1".into(), |m| m.trim_start_matches('=').into()),
                )
            }
            '\u{2}' => cli.verbose = true,
            _ => return Err(AppletError::new(1, TRY)),
        }
    }
    let mut ops = parsed.operands.into_iter();
    let devname = ops.next();
    let block_count = ops.next();
    if ops.next().is_some() {
        return Err(fail_try("only one device argument is currently supported"));
    }

    let uuid: [u8; 16] = match cli.uuid.as_deref() {
        Some("clear") => [0; 16],
        // libuuid's time-based UUIDs are not modelled: a random one.
        None | Some("random") | Some("time") => *uuid::Uuid::new_v4().as_bytes(),
        Some(text) => {
            ebsim::compat::uuid_parse(text).ok_or_else(|| fail("error: parsing UUID failed"))?
        }
    };

    let pagesize = if cli.pagesize != 0 {
        let p = cli.pagesize;
        if !p.is_power_of_two() || !(1550..=1 << 30).contains(&p) {
            return Err(fail(&format!("Bad user-specified page size {p}")));
        }
        if !cli.quiet && p != PAGE_SIZE {
            err(&format!(
                "mkswap: Using user-specified page size {p}, instead of the system value {PAGE_SIZE}\n"
            ));
        }
        p
    } else {
        PAGE_SIZE
    };

    let Some(devname) = devname else {
        return Err(fail_try("error: Nowhere to set up swap on?"));
    };
    let pages = match &block_count {
        Some(b) => {
            let blks: u64 = number(b, "invalid block count argument")?;
            Some(blks / u64::from(pagesize / 1024))
        }
        None => None,
    };

    // Which device, and is it in use.
    let device = match super::env::target(&devname, false) {
        Target::Device => {
            let ctx = super::env::context().map_err(|why| fail(&why))?;
            let Some(r) = ctx.resolve(&devname) else {
                return Err(fail(&format!(
                    "cannot open {devname}: No such file or directory"
                )));
            };
            let mounted = !ctx.mounts_of(&r).is_empty();
            let busy = ctx.disk_busy(&r);
            Device::Guest {
                r: Box::new(r),
                mounted,
                busy,
            }
        }
        Target::Path if super::env::context().is_ok() => {
            return guest_file(&cli, &devname, pagesize, pages, uuid);
        }
        _ => match std::fs::metadata(&devname) {
            Ok(m) => Device::Host(m),
            Err(e) => {
                return Err(fail(&format!("cannot open {devname}: {}", strerror(&e))));
            }
        },
    };
    let open = |access: Access| -> Result<Box<dyn BlockDevice>, AppletError> {
        let opened: Result<Box<dyn BlockDevice>, ebsim::blockdev::Error> = match &device {
            Device::Guest { r, .. } => r.open(access).map(|d| Box::new(d) as Box<dyn BlockDevice>),
            Device::Host(_) => {
                ImageFile::open(&devname, access).map(|d| Box::new(d) as Box<dyn BlockDevice>)
            }
        };
        opened.map_err(|e| fail(&format!("cannot open {devname}: {e}")))
    };

    let opts = swap_options(&cli, pagesize, pages, uuid);
    let dev = open(Access::ReadOnly)?;
    // The size checks come before any warning about the device.
    let plan = swap::plan(dev.as_ref(), &opts).map_err(|e| match e {
        SwapError::Device(e) => fail(&format!("{devname}: {e}")),
        e => fail(&e.to_string()),
    })?;
    if plan.truncated && !cli.quiet {
        err(&format!(
            "mkswap: warning: truncating swap area to {} KiB\n",
            plan.pages * u64::from(pagesize) / 1024
        ));
    }
    if let Device::Guest { mounted, busy, .. } = &device {
        if *mounted {
            return Err(fail(&format!(
                "error: {devname} is mounted; will not make swapspace"
            )));
        }
        if *busy {
            return Err(fail(&format!(
                "cannot open {devname}: Device or resource busy"
            )));
        }
    }
    if let Some(mode) = &cli.lock {
        if !matches!(mode.as_str(), "1" | "yes" | "no" | "nonblock") {
            return Err(fail(&format!("unsupported lock mode: {mode}")));
        }
    }
    match &device {
        Device::Host(meta) => {
            use std::os::unix::fs::MetadataExt;
            use std::os::unix::fs::PermissionsExt;
            if cli.check {
                cli.check = false;
                if !cli.quiet {
                    err(&format!(
                        "mkswap: warning: checking bad blocks from swap file is not supported: {devname}\n"
                    ));
                }
            }
            let mode = meta.permissions().mode();
            if !cli.quiet && mode & 0o7077 != 0 {
                err(&format!(
                    "mkswap: {devname}: insecure permissions {:04o}, fix with: chmod 0600 {devname}\n",
                    mode & 0o7777
                ));
            }
            // getuid(): the owner of this process's /proc entry.
            let uid_is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
            if !cli.quiet && uid_is_root && meta.uid() != 0 {
                err(&format!(
                    "mkswap: {devname}: insecure file owner {}, fix with: chown 0:0 {devname}\n",
                    meta.uid()
                ));
            }
            // Fully allocated (fallocate's unwritten extents count, as
            // FIEMAP lists them): no hole.
            if !cli.quiet && meta.blocks().saturating_mul(512) < meta.len() {
                holes(dev.as_ref(), &devname, cli.verbose)?;
            }
        }
        Device::Guest { .. } => {
            if cli.check {
                // Every page of an image reads: none is bad.
                out("0 bad pages\n");
            }
        }
    }
    report(&cli, &devname, &plan, &uuid);
    drop(dev);
    let mut dev = open(Access::ReadWrite)?;
    swap::apply(dev.as_mut(), &plan)
        .map_err(|e| fail(&format!("{devname}: unable to write signature page: {e}")))?;
    Ok(0)
}

/// A swap file inside the instance (`/swapfile` on the root, `/data/swap`
/// on a data volume): the header is written through the guest's file
/// layer and committed with its sync. The holes check is left out: the
/// file layer's extents are not FIEMAP's, and a file made with
/// `fallocate` or `dd` (the usual ways) has none.
/// The library's options from the command line's.
fn swap_options(cli: &Cli, pagesize: u32, pages: Option<u64>, uuid: [u8; 16]) -> SwapOptions {
    SwapOptions {
        pagesize,
        pages,
        force: cli.force,
        uuid,
        label: cli.label.as_ref().map(|l| l.as_bytes().to_vec()),
        bad_pages: Vec::new(),
    }
}

fn guest_file(
    cli: &Cli,
    devname: &str,
    pagesize: u32,
    pages: Option<u64>,
    uuid: [u8; 16],
) -> Result<i32, AppletError> {
    use super::files::common;
    use ebsim::guest::vfs::OpenFlags;
    let mut s = common::start("mkswap", true)?;
    let flags = OpenFlags {
        read: true,
        write: true,
        ..OpenFlags::default()
    };
    let o = s
        .vfs
        .open(devname.as_bytes(), flags)
        .map_err(|e| fail(&format!("cannot open {devname}: {}", common::strerror(&e))))?;
    let (loc, attr) = (o.stat.loc, o.stat.attr.clone());
    let size = attr.size;
    let mut head = vec![0u8; size.min(swap::PROBE_BYTES) as usize];
    let mut done = 0;
    while done < head.len() {
        let n = s
            .vfs
            .read(loc, done as u64, &mut head[done..])
            .map_err(|e| fail(&format!("{devname}: {}", common::strerror(&e))))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    let opts = swap_options(cli, pagesize, pages, uuid);
    let mem = ebsim::blockdev::MemDevice::from_bytes(head);
    let plan = swap::plan_sized(&mem, size, &opts).map_err(|e| fail(&e.to_string()))?;
    if !cli.quiet {
        if cli.check {
            err(&format!(
                "mkswap: warning: checking bad blocks from swap file is not supported: {devname}\n"
            ));
        }
        let mode = u32::from(attr.perm);
        if mode & 0o7077 != 0 {
            err(&format!(
                "mkswap: {devname}: insecure permissions {:04o}, fix with: chmod 0600 {devname}\n",
                mode & 0o7777
            ));
        }
        if std::env::var("EBSIM_GUEST_USER").is_ok_and(|u| u == "root") && attr.uid != 0 {
            err(&format!(
                "mkswap: {devname}: insecure file owner {}, fix with: chown 0:0 {devname}\n",
                attr.uid
            ));
        }
    }
    report(cli, devname, &plan, &uuid);
    for op in &plan.batch.ops {
        if let ebsim::blockdev::WriteOp::Data { offset, bytes } = op {
            s.vfs.write(loc, *offset, bytes).map_err(|e| {
                fail(&format!(
                    "{devname}: unable to write signature page: {}",
                    common::strerror(&e)
                ))
            })?;
        }
    }
    common::sync("mkswap", &mut s, 0)
}

/// The warnings about what the header replaces, the size line and the
/// label/UUID line.
fn report(cli: &Cli, devname: &str, plan: &swap::SwapPlan, uuid: &[u8; 16]) {
    if cli.quiet {
        return;
    }
    if let Some(t) = plan.kept_table {
        err(&format!(
            "mkswap: {devname}: warning: don't erase bootbits sectors\n        ({t} partition table detected). Use -f to force.\n"
        ));
    }
    for t in &plan.wiped {
        err(&format!(
            "mkswap: {devname}: warning: wiping old {t} signature.\n"
        ));
    }
    out(&format!(
        "Setting up swapspace version 1, size = {} ({} bytes)\n",
        size_string(plan.usable_bytes),
        plan.usable_bytes
    ));
    if plan.label_truncated {
        err("mkswap: Label was truncated.\n");
    }
    let label = match &cli.label {
        Some(l) => {
            let bytes: Vec<u8> = l
                .as_bytes()
                .iter()
                .take(swap::LABEL_LEN - 1)
                .copied()
                .collect();
            format!("LABEL={}, ", String::from_utf8_lossy(&bytes))
        }
        None => "no label, ".to_string(),
    };
    out(&format!(
        "{label}UUID={}\n",
        ebsim::compat::uuid_unparse(uuid)
    ));
}

/// mkswap's FIEMAP check of a swap file: a hole (a range with no data
/// extent) makes the kernel refuse it at swapon. The ranges are
/// `SEEK_DATA`'s, which skip unwritten (fallocated) extents that FIEMAP
/// lists, so on a file mixing both `--verbose` may name other offsets.
fn holes(dev: &dyn BlockDevice, devname: &str, verbose: bool) -> Result<(), AppletError> {
    let ranges = dev
        .data_ranges(0..dev.size())
        .map_err(|e| fail(&format!("{devname}: {e}")))?;
    let mut gaps = Vec::new();
    let mut at = 0u64;
    for r in ranges {
        if r.start > at {
            gaps.push(at);
        }
        at = at.max(r.end);
    }
    if at < dev.size() {
        gaps.push(at);
    }
    if gaps.is_empty() {
        return Ok(());
    }
    let mut text = format!(
        "\nmkswap: {devname} contains holes or other unsupported extents.\n        \
         This swap file can be rejected by kernel on swap activation!\n"
    );
    if verbose {
        text.push('\n');
        for g in &gaps {
            text.push_str(&format!(" - hole detected at offset {g}\n"));
        }
    } else {
        text.push_str("        Use --verbose for more details.\n");
    }
    text.push('\n');
    err(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::size_string;

    #[test]
    fn sizes_as_mkswap_prints_them() {
        assert_eq!(size_string(67_104_768), "64 MiB");
        assert_eq!(size_string(36_864), "36 KiB");
        assert_eq!(size_string(1_044_480), "1020 KiB");
        assert_eq!(size_string(2_147_479_552), "2 GiB");
    }
}
