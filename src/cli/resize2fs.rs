//! `resize2fs` (e2fsprogs 1.47.0) on image files: offline grow within the
//! reserved GDT blocks, and `-P`'s estimate of the minimum size
//! (`fs::ext4::min_size`), which also refuses smaller sizes without `-f`
//! and is `-M`'s size. `-S` records a RAID stride; `-b`/`-s` give
//! resize2fs's answers when there is nothing to convert. Messages, channels
//! and exit codes follow resize/main.c; ebsim's own refusals (shrinking,
//! converting between 32 and 64 bit, undo files, growth beyond the
//! reserved descriptor blocks without flex_bg, unsupported features) are
//! worded in the same `resize2fs: ...` form and change nothing. Options
//! are parsed by hand:
//! resize2fs uses getopt with glibc's permutation and its own messages.

use super::env;
use super::error::{AppletError, finish};
use super::getopt::{getopt, strings};
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::compat::parse_num_blocks2;
use ebsim::ec2::release::{DEBIAN_12, Version};
use ebsim::fs::ext4::grow::{self, GrowOutcome, GrowPlan, GrowRequest};
use ebsim::fs::ext4::{Error, Ext4, GrowError};
use ebsim::guest::{Context, Target};
use std::ffi::OsString;

const OPTSTRING: &str = "d:fFhMPpS:bsz:";

/// What resize2fs prints on stdout when it cannot open the filesystem.
const SUPERBLOCK: &str = "Couldn't find valid filesystem superblock.\n";

fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-d debug_flags] [-f] [-F] [-M] [-P] [-p] device [-b|-s|new_size] [-S RAID-stride] [-z undo_file]\n\n"
    )
}

/// libext2fs's wording for the errors `ext2fs_open2` would report.
fn open_error_text(e: &Error) -> String {
    match e {
        Error::BadMagic { .. } => "Bad magic number in super-block".into(),
        Error::SuperblockChecksum { .. } => "Superblock checksum does not match superblock".into(),
        Error::DescriptorChecksum {
            group,
            stored,
            computed,
        } => format!(
            "Block group descriptor {group} checksum is invalid (stored {stored:#06x}, computed {computed:#06x})"
        ),
        Error::BadDescriptor {
            group, what, block, ..
        } => {
            format!("Corrupt group descriptor: bad block for {what} (group {group}, block {block})")
        }
        Error::BadSuperblock { field, value, why } => {
            format!("The ext2 superblock is corrupt ({field} = {value}: {why})")
        }
        Error::DeviceTooSmall { .. } => {
            "Attempt to read block from filesystem resulted in short read".into()
        }
        other => other.to_string(),
    }
}

/// How resize2fs reports a failure inside `resize_fs` (after the
/// "Resizing ..." line).
fn resize_error_text(e: &Error) -> String {
    match e {
        Error::BitmapChecksum {
            what: "block bitmap",
            group,
            ..
        } => {
            format!("Block bitmap checksum does not match bitmap (group {group})")
        }
        Error::BitmapChecksum { group, .. } => {
            format!("Inode bitmap checksum does not match bitmap (group {group})")
        }
        Error::InodeChecksum { ino } => {
            format!("Inode checksum does not match inode (inode {ino})")
        }
        Error::BadInode { ino: 7, why } => format!("Resize inode is corrupt ({why})"),
        other => other.to_string(),
    }
}

pub fn run(args: Vec<OsString>) -> i32 {
    let args = strings(&args);
    let prog = args.first().cloned().unwrap_or_else(|| "resize2fs".into());
    finish(main(&args, &prog), || usage(&prog))
}

fn main(args: &[String], prog: &str) -> Result<i32, AppletError> {
    // Device names are the emulated instance's; the banner then shows the
    // guest's e2fsprogs (also inside `ebsim shell`).
    // resize2fs resolves UUID= and LABEL= itself (blkid). An absolute path
    // that is no file here may be a mount point there.
    let targets: Vec<Target> = args
        .iter()
        .skip(1)
        .map(|a| super::env::target(a, true))
        .collect();
    let ctx = if env::in_instance() || targets.contains(&Target::Device) {
        Some(env::context())
    } else if targets.contains(&Target::Path) {
        env::maybe_context().map(Ok)
    } else {
        None
    };
    let e2fsprogs = match &ctx {
        Some(Ok(c)) => c.release.e2fsprogs,
        _ => DEBIAN_12.e2fsprogs,
    };
    err(&format!(
        "resize2fs {} ({})\n",
        e2fsprogs.version, e2fsprogs.date
    ));
    let (opts, operands) = getopt(args.get(1..).unwrap_or(&[]), OPTSTRING)
        .strict()
        .map_err(|e| AppletError::new(1, e.message(prog)).with_usage())?;
    let mut force = false;
    let mut print_min = false;
    let mut flush = false;
    let mut progress = false;
    let mut to_minimum = false;
    let mut bits = Bits::default();
    let mut stride = None;
    for o in &opts {
        match o.val {
            'h' => return Err(AppletError::usage_only(1)),
            'f' => force = true,
            // -d sets debug flags: nothing to do.
            'd' => {}
            'F' => flush = true,
            'p' => progress = true,
            'M' => to_minimum = true,
            'P' => print_min = true,
            'b' => bits.to_64 = true,
            's' => bits.to_32 = true,
            // atoi: a negative stride leaves resize2fs's own guess.
            'S' => {
                let n = ebsim::compat::strtoll(o.arg.as_deref().unwrap_or(""), 10).value as i32;
                stride = u32::try_from(n).ok();
            }
            'z' => {
                return Err(AppletError::prog(
                    prog,
                    "undo files (-z) are not supported by ebsim",
                ));
            }
            _ => return Err(AppletError::usage_only(1)),
        }
    }
    if operands.is_empty() || operands.len() > 2 {
        return Err(AppletError::usage_only(1));
    }
    let device = operands[0].clone();
    let size_str = operands.get(1).cloned();
    if print_min {
        return print_min_size(prog, &device, ctx, force, e2fsprogs.version);
    }
    let asked = Asked {
        size: size_str.as_deref(),
        force,
        progress,
        to_minimum,
        bits,
        stride,
        version: e2fsprogs.version,
    };

    match super::env::target(&device, true) {
        Target::Device => {
            return match ctx.unwrap_or_else(env::context) {
                Ok(c) => resize_guest(prog, &device, asked, &c),
                Err(why) => Err(AppletError::prog(prog, &why)),
            };
        }
        // A mount point of the instance is a directory there, as the real
        // resize2fs finds it.
        Target::Path => {
            if matches!(&ctx, Some(Ok(c)) if c.is_mount_point(&device)) {
                return Err(AppletError::new(
                    1,
                    format!("open: Is a directory while opening {device}\n"),
                ));
            }
        }
        Target::Host => {}
    }
    let path = std::path::Path::new(&device);
    let is_file = std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false)
        || ebsim::blockdev::segmented::is_segmented(path);
    if is_file {
        if let Some((image, info)) = super::fuse_mount::served(&device) {
            return resize_served(
                prog,
                &device,
                &image,
                &info,
                size_str.as_deref(),
                force,
                false,
            );
        }
    }
    let img = ImageFile::open(path, Access::ReadWrite).map_err(|e| open_failed(&device, &e))?;
    // -F asks the kernel to flush the device's buffers (BLKFLSBUF), which
    // a regular file does not take.
    if flush && is_file {
        return Err(AppletError::new(
            1,
            format!("{prog}: Inappropriate ioctl for device while trying to flush {device}\n"),
        ));
    }
    open_and_grow(prog, &device, img, asked, is_file, None)
}

/// What the command line asks of one resize: the size argument, `-f`,
/// `-p`, `-M`, `-b`/`-s`, `-S`, and the e2fsprogs whose minimum-size
/// estimate applies.
#[derive(Debug, Clone, Copy)]
struct Asked<'a> {
    size: Option<&'a str>,
    force: bool,
    progress: bool,
    to_minimum: bool,
    bits: Bits,
    stride: Option<u32>,
    version: Version,
}

/// `-b` (to 64 bit) and `-s` (to 32 bit).
#[derive(Debug, Clone, Copy, Default)]
struct Bits {
    to_64: bool,
    to_32: bool,
}

/// Opens the ext4 on `dev`, reads the size argument in its block size, and
/// grows it: the common tail of the image-file and instance paths.
fn open_and_grow<D: BlockDevice>(
    prog: &str,
    device: &str,
    dev: D,
    asked: Asked<'_>,
    image_file: bool,
    mount_point: Option<&str>,
) -> Result<i32, AppletError> {
    let fs = open_fs(prog, device, dev)?;
    let log_block_size = fs.superblock().s_log_block_size as i32;
    let minimum = ebsim::fs::ext4::min_size::minimum_size_as(
        fs.superblock(),
        fs.descriptors(),
        asked.version,
    );
    let size = match asked.size {
        _ if asked.to_minimum => Some(minimum),
        Some(s) => {
            let n = parse_num_blocks2(s, log_block_size);
            if n == 0 {
                return Err(AppletError::new(
                    1,
                    format!("{prog}: Invalid new size: {s}\n\n"),
                ));
            }
            Some(n)
        }
        None => None,
    };
    let converting = asked.bits.to_64 || asked.bits.to_32;
    let req = GrowRequest {
        // Converting keeps the size.
        size: if converting {
            Some(fs.superblock().s_blocks_count)
        } else {
            size
        },
        force: asked.force,
        online: mount_point.is_some(),
        image_file,
        now: super::e2fs_util::e2fsprogs_now(),
        stride: asked.stride,
        minimum: Some(minimum),
    };
    if converting {
        return convert_bits(prog, device, fs, &req, asked.bits, mount_point.is_some());
    }
    run_grow(prog, device, fs, &req, mount_point, asked.progress)
}

/// `-b`/`-s`: resize2fs's checks and its answers when there is nothing to
/// convert; a conversion itself is refused (ebsim does not move the
/// descriptor table to another size). Past the size checks resize2fs has
/// recorded the RAID stride, so the superblock is rewritten (new write
/// time) on these answers as on "Nothing to do!".
fn convert_bits<D: BlockDevice>(
    prog: &str,
    device: &str,
    mut fs: Ext4<D>,
    req: &GrowRequest,
    bits: Bits,
    mounted: bool,
) -> Result<i32, AppletError> {
    let batch = match grow::target(&fs, req) {
        Ok(GrowOutcome::NothingToDo { batch, .. }) => Some(batch),
        Ok(GrowOutcome::Grow(_)) => None,
        Err(e) => return Err(refusal(prog, device, &e)),
    };
    let sb = fs.superblock();
    let is_64 = sb.has_incompat(ebsim::fs::ext4::features::incompat::BIT64);
    let (code, text) = if bits.to_64 && bits.to_32 {
        (1, "Cannot set and unset 64bit feature.\n")
    } else if sb.s_blocks_count >= 1 << 32 {
        (
            1,
            "Cannot change the 64bit feature on a filesystem that is larger than 2^32 blocks.\n",
        )
    } else if mounted {
        (
            1,
            "Cannot change the 64bit feature while the filesystem is mounted.\n",
        )
    } else if bits.to_64 && !sb.has_incompat(ebsim::fs::ext4::features::incompat::EXTENTS) {
        (
            1,
            "Please enable the extents feature with tune2fs before enabling the 64bit feature.\n",
        )
    } else if bits.to_64 && is_64 {
        (0, "The filesystem is already 64-bit.\n")
    } else if bits.to_32 && !is_64 {
        (0, "The filesystem is already 32-bit.\n")
    } else {
        return Err(AppletError::prog(
            prog,
            "converting between 32 and 64 bit (-b, -s) is not supported by ebsim",
        ));
    };
    if let (Some(batch), false) = (batch, mounted) {
        grow::apply(fs.device_mut(), &batch)
            .map_err(|e| AppletError::new(1, format!("{prog}: {e}\n")))?;
    }
    Err(AppletError::new(code, text.to_string()))
}

/// resize2fs of an image `ebsim mount` serves: the online resize, made by
/// the server (the kernel's EXT4_IOC_RESIZE_FS), never by this process.
fn resize_served(
    prog: &str,
    device: &str,
    image: &std::path::Path,
    info: &ebsim::fuse::control::Info,
    size_str: Option<&str>,
    force: bool,
    guest: bool,
) -> Result<i32, AppletError> {
    use ebsim::fuse::control::{self, ControlError};
    let sb = &info.superblock;
    let log_block_size = match sb.get(24..28) {
        // A guest names the partition served itself (/dev/xvda1).
        Some(b) if info.fs_type == "ext4" && (guest || info.part.is_none()) => {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
        // A partition of it is mounted: the whole disk is busy.
        _ => {
            return Err(AppletError::new(
                1,
                format!("{prog}: Device or resource busy while trying to open {device}\n"),
            )
            .with_stdout(SUPERBLOCK));
        }
    };
    let size = match size_str {
        Some(s) => {
            let n = parse_num_blocks2(s, log_block_size);
            if n == 0 {
                return Err(AppletError::new(
                    1,
                    format!("{prog}: Invalid new size: {s}\n\n"),
                ));
            }
            Some(n)
        }
        None => None,
    };
    // The served filesystem's block count (s_blocks_count_lo at 0x4, _hi
    // at 0x150 when INCOMPAT_64BIT, 0x80 of s_feature_incompat at 0x60): a
    // smaller size is online.c's refusal, as for an unserved mount.
    let le32 = |at: usize| {
        sb.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let current = u64::from(le32(0x4))
        | if le32(0x60) & 0x80 != 0 {
            u64::from(le32(0x150)) << 32
        } else {
            0
        };
    if size.is_some_and(|n| n < current) {
        out(&format!(
            "Filesystem at {device} is mounted on {}; on-line resizing required\n",
            info.mountpoint.display()
        ));
        return Err(AppletError::new(
            1,
            format!("{prog}: On-line shrinking not supported\n"),
        ));
    }
    // main.c's device-size check comes before the online resize.
    let block = 1024u64 << log_block_size.clamp(0, 6);
    let device_blocks = info.device_size / block;
    if let Some(n) = size.filter(|&n| !force && n > device_blocks) {
        return Err(AppletError::new(
            1,
            format!(
                "The containing partition (or device) is only {device_blocks} ({}k) blocks.\nYou requested a new size of {n} blocks.\n\n",
                block / 1024
            ),
        ));
    }
    let args = ebsim::fuse::GrowArgs {
        blocks: size,
        force,
        imaxpct: None,
        now: super::e2fs_util::e2fsprogs_now(),
    };
    match control::grow_of(image, info.part, args) {
        Ok(ebsim::fuse::GrowReport::Ext4 {
            block_size,
            old_blocks,
            new_blocks,
            old_desc_blocks,
            new_desc_blocks,
        }) => {
            let kib = block_size / 1024;
            if new_blocks == old_blocks {
                return Err(AppletError::new(
                    0,
                    format!(
                        "The filesystem is already {new_blocks} ({kib}k) blocks long.  Nothing to do!\n\n"
                    ),
                ));
            }
            out(&format!(
                "Filesystem at {device} is mounted on {}; on-line resizing required\nold_desc_blocks = {old_desc_blocks}, new_desc_blocks = {new_desc_blocks}\n",
                info.mountpoint.display()
            ));
            out(&format!(
                "The filesystem on {device} is now {new_blocks} ({kib}k) blocks long.\n\n"
            ));
            Ok(0)
        }
        Ok(_) => Err(AppletError::new(
            1,
            format!("{prog}: Bad magic number in super-block while trying to open {device}\n"),
        )
        .with_stdout(SUPERBLOCK)),
        Err(ControlError::Failed { message, .. }) => Err(AppletError::new(
            1,
            format!("{prog}: {message} while trying to resize {device}\n"),
        )),
        Err(e) => Err(AppletError::new(1, format!("{prog}: {e}\n"))),
    }
}

/// resize2fs on a disk or partition of the instance: online when it is
/// mounted there, offline otherwise. Names print as given, except
/// `UUID=`/`LABEL=`, which resize2fs resolves (blkid) to the device.
fn resize_guest(
    prog: &str,
    spec: &str,
    asked: Asked<'_>,
    ctx: &Context,
) -> Result<i32, AppletError> {
    let (size_str, force) = (asked.size, asked.force);
    let Some(r) = ctx.resolve(spec) else {
        return Err(AppletError::new(
            1,
            format!("open: No such file or directory while opening {spec}\n"),
        ));
    };
    let device = if spec.starts_with("/dev/") {
        spec.to_string()
    } else {
        r.dev_path()
    };
    // Served (inside the guest namespace): its server grows it online, as
    // the kernel does for a mounted filesystem.
    let part = r.part.as_ref().map(|p| p.number);
    if let Ok(Some(mut info)) = ebsim::fuse::control::info_of(r.image(), part) {
        if info.part == part {
            // Where the guest sees it mounted.
            if let Some(m) = ctx.mounts_of(&r).first() {
                info.mountpoint = std::path::PathBuf::from(&m.target);
            }
            return resize_served(prog, &device, r.image(), &info, size_str, force, true);
        }
    }
    // ext2fs_check_mount_point reports the first mount of the device.
    let mount_point = ctx.mounts_of(&r).first().map(|m| m.target.clone());
    if mount_point.is_none() && ctx.disk_busy(&r) {
        // Unmounted, resize2fs opens the device exclusively: a disk whose
        // partition is mounted is busy.
        return Err(AppletError::new(
            1,
            format!("{prog}: Device or resource busy while trying to open {device}\n"),
        )
        .with_stdout(SUPERBLOCK));
    }
    let dev = match r.open(Access::ReadWrite) {
        Ok(d) => d,
        Err(e) => {
            return Err(AppletError::new(
                1,
                format!("open: {e} while opening {device}\n"),
            ));
        }
    };
    open_and_grow(prog, &device, dev, asked, false, mount_point.as_deref())
}

/// Plans and applies a grow, printing what resize2fs prints. `mounted_on`
/// renders the online resize lines instead of the offline ones (the
/// instance model passes the mount point).
pub fn run_grow<D: BlockDevice>(
    prog: &str,
    device: &str,
    mut fs: Ext4<D>,
    req: &GrowRequest,
    mounted_on: Option<&str>,
    progress: bool,
) -> Result<i32, AppletError> {
    let decided = match grow::target(&fs, req) {
        Ok(o) => o,
        Err(Error::Grow(GrowError::Shrink { .. })) if mounted_on.is_some() => {
            // online.c: the online banner, then the refusal (exit 1).
            out(&format!(
                "Filesystem at {device} is mounted on {}; on-line resizing required\n",
                mounted_on.unwrap_or("/")
            ));
            return Err(AppletError::new(
                1,
                format!("{prog}: On-line shrinking not supported\n"),
            ));
        }
        Err(e @ Error::Grow(GrowError::DeviceTooSmall { .. })) if mounted_on.is_none() => {
            // Refused after the stride was settled: closing still
            // rewrites the superblock.
            let mut batch = ebsim::blockdev::WriteBatch::new();
            grow::closing_write(&fs, req, &mut batch);
            if let Err(w) = grow::apply(fs.device_mut(), &batch) {
                return Err(AppletError::new(1, format!("{prog}: {w}\n")));
            }
            return Err(refusal(prog, device, &e));
        }
        Err(e) => return Err(refusal(prog, device, &e)),
    };
    let stub: GrowPlan = match decided {
        GrowOutcome::NothingToDo {
            blocks,
            block_size,
            batch,
        } => {
            if let Err(e) = grow::apply(fs.device_mut(), &batch) {
                return Err(AppletError::new(1, format!("{prog}: {e}\n")));
            }
            return Err(AppletError::new(
                0,
                format!(
                    "The filesystem is already {blocks} ({}k) blocks long.  Nothing to do!\n\n",
                    block_size / 1024
                ),
            ));
        }
        GrowOutcome::Grow(p) => *p,
    };
    let kib = stub.block_size / 1024;
    match mounted_on {
        None => out(&format!(
            "Resizing the filesystem on {device} to {} ({kib}k) blocks.\n",
            stub.new_blocks
        )),
        Some(mp) => out(&format!(
            "Filesystem at {device} is mounted on {mp}; on-line resizing required\nold_desc_blocks = {}, new_desc_blocks = {}\n",
            stub.old_desc_blocks, stub.new_desc_blocks
        )),
    }
    let plan = match grow::plan(&fs, req) {
        Ok(GrowOutcome::Grow(p)) => *p,
        Ok(GrowOutcome::NothingToDo { .. }) => return Ok(0),
        Err(e) => {
            err(&format!(
                "{prog}: {} while trying to resize {device}\n",
                resize_error_text(&e)
            ));
            // What ebsim does not do is refused before anything is
            // written: nothing to fix. resize2fs's own failures keep its
            // advice (it had started writing).
            let advice = if matches!(e, Error::Unsupported(_)) {
                String::new()
            } else {
                format!(
                    "Please run 'e2fsck -fy {device}' to fix the filesystem\nafter the aborted resize operation.\n"
                )
            };
            return Err(AppletError::new(1, advice));
        }
    };
    if progress && mounted_on.is_none() {
        out(&extend_itable_progress(
            &plan.superblock,
            plan.old_groups,
            plan.new_groups,
        ));
        for &(pass, max) in &plan.passes {
            out(&pass_progress(pass, max));
        }
    }
    if let Err(e) = grow::apply(fs.device_mut(), &plan.batch) {
        err(&format!("{prog}: {e} while trying to resize {device}\n"));
        // An image file's undo log undoes a failed grow; only a device
        // without one can be left half grown.
        let advice = if e.may_leave_partial_change() {
            format!(
                "Please run 'e2fsck -fy {device}' to fix the filesystem\nafter the aborted resize operation.\n"
            )
        } else {
            String::new()
        };
        return Err(AppletError::new(1, advice));
    }
    out(&format!(
        "The filesystem on {device} is now {} ({kib}k) blocks long.\n\n",
        plan.new_blocks
    ));
    Ok(0)
}

/// resize2fs's `open: REASON while opening DEVICE` for an image file
/// that would not open.
/// What `resize2fs -p` prints as an offline grow zeroes the new groups'
/// inode tables: resize2fs does that (its pass 1) only without group
/// descriptor checksums, where the kernel cannot initialize them lazily.
/// The meter is e2fsprogs' simple progress bar: the label padded to 30
/// columns, 40 dashes, 40 backspaces, then 40 X as the groups are done.
/// (The passes of a grow that moves blocks out of the way are not shown.)
fn extend_itable_progress(
    sb: &ebsim::fs::ext4::superblock::Superblock,
    old_groups: u64,
    new_groups: u64,
) -> String {
    let added = new_groups.saturating_sub(old_groups);
    if ebsim::fs::ext4::group_desc::has_group_csum(sb) || added == 0 {
        return String::new();
    }
    pass_progress(1, added)
}

/// resize2fs's `-p` meter for one pass: its banner, the label in 30
/// columns, a bar of 40 dashes backed over and filled with X's as the
/// pass goes to `max`, and a newline when done.
fn pass_progress(pass: u32, max: u64) -> String {
    let label = match pass {
        1 => "Extending the inode table",
        2 => "Relocating blocks",
        3 => "Scanning inode table",
        4 => "Updating inode references",
        _ => "Moving inode table",
    };
    format!(
        "Begin pass {pass} (max = {max})\n{label:<30}{}{}{}\n",
        "-".repeat(40),
        "\u{8}".repeat(40),
        "X".repeat(40)
    )
}

fn open_failed(device: &str, e: &ebsim::blockdev::Error) -> AppletError {
    let reason = match e {
        ebsim::blockdev::Error::Io { source, .. } => super::output::strerror(source),
        ebsim::blockdev::Error::NotFound(_) => "No such file or directory".to_string(),
        ebsim::blockdev::Error::IsADirectory(_) => "Is a directory".to_string(),
        other => other.to_string(),
    };
    AppletError::new(1, format!("open: {reason} while opening {device}\n"))
}

/// Opens the ext4 on `dev`, failing as resize2fs fails to open it.
fn open_fs<D: BlockDevice>(prog: &str, device: &str, dev: D) -> Result<Ext4<D>, AppletError> {
    Ext4::open(dev).map_err(|e| {
        AppletError::new(
            1,
            format!(
                "{prog}: {} while trying to open {device}\n",
                open_error_text(&e)
            ),
        )
        .with_stdout(SUPERBLOCK)
    })
}

/// `resize2fs -P`: the estimated minimum size, read-only, from an image
/// file or a device of the instance. A mounted filesystem (ebsim's server
/// holds its image) is read while the server holds it still, after it has
/// committed what was written, and without resize2fs's checks, which it
/// skips for a mounted filesystem too.
fn print_min_size(
    prog: &str,
    device: &str,
    ctx: Option<Result<Context, String>>,
    force: bool,
    version: Version,
) -> Result<i32, AppletError> {
    let freeze = |image: &std::path::Path| {
        ebsim::fuse::control::freeze(image).map_err(|e| AppletError::prog(prog, &e.to_string()))
    };
    match super::env::target(device, true) {
        Target::Device => {
            let ctx = ctx
                .unwrap_or_else(env::context)
                .map_err(|why| AppletError::prog(prog, &why))?;
            let Some(r) = ctx.resolve(device) else {
                return Err(AppletError::new(
                    1,
                    format!("open: No such file or directory while opening {device}\n"),
                ));
            };
            let part = r.part.as_ref().map(|p| p.number);
            let served = ebsim::fuse::control::info_of(r.image(), part).is_ok_and(|i| i.is_some());
            let _still = if served {
                Some(freeze(r.image())?)
            } else {
                None
            };
            let dev = r
                .open(Access::ReadOnly)
                .map_err(|e| AppletError::new(1, format!("open: {e} while opening {device}\n")))?;
            let mounted = served || !ctx.mounts_of(&r).is_empty();
            return min_size_of(prog, device, dev, force || mounted, version);
        }
        Target::Path => {
            if matches!(&ctx, Some(Ok(c)) if c.is_mount_point(device)) {
                return Err(AppletError::new(
                    1,
                    format!("open: Is a directory while opening {device}\n"),
                ));
            }
        }
        Target::Host => {}
    }
    let served = super::fuse_mount::served(device);
    let _still = match &served {
        Some((image, _)) => Some(freeze(image)?),
        None => None,
    };
    let img = ImageFile::open(device, Access::ReadOnly).map_err(|e| match e {
        // Opened read-only, a directory opens; reading it fails.
        ebsim::blockdev::Error::IsADirectory(_) => AppletError::new(
            1,
            format!("{prog}: Is a directory while trying to open {device}\n"),
        )
        .with_stdout(SUPERBLOCK),
        e => open_failed(device, &e),
    })?;
    min_size_of(prog, device, img, force || served.is_some(), version)
}

/// The estimate for the ext4 on `dev`, after resize2fs's checks (which
/// `-f` skips; unlike a resize, `-P` does not ask for a check after the
/// last mount).
fn min_size_of<D: BlockDevice>(
    prog: &str,
    device: &str,
    dev: D,
    force: bool,
    version: Version,
) -> Result<i32, AppletError> {
    let fs = open_fs(prog, device, dev)?;
    let sb = fs.superblock();
    if grow::needs_check(sb, false).is_some() && !force {
        return Err(AppletError::new(
            1,
            format!("Please run 'e2fsck -f {device}' first.\n\n"),
        ));
    }
    let min = ebsim::fs::ext4::min_size::minimum_size_as(sb, fs.descriptors(), version);
    out(&format!(
        "Estimated minimum size of the filesystem: {min}\n"
    ));
    Ok(0)
}

/// Refusals before any write, in resize2fs's words where it has them.
fn refusal(prog: &str, device: &str, e: &Error) -> AppletError {
    let text = match e {
        Error::Grow(GrowError::NeedsCheck(_)) => {
            format!("Please run 'e2fsck -f {device}' first.\n\n")
        }
        Error::Grow(GrowError::TooLargeFor32Bit) => {
            format!("{prog}: New size too large to be expressed in 32 bits\n\n")
        }
        Error::Grow(GrowError::TooManyDescriptors) => {
            format!("{prog}: New size results in too many block group descriptors.\n\n")
        }
        Error::Grow(g @ GrowError::BelowMinimum { .. }) => format!("{prog}: {g}\n\n"),
        Error::Grow(g @ GrowError::InvalidStride) => format!("{prog}: {g}\n"),
        Error::Grow(g @ GrowError::DeviceTooSmall { .. }) => format!("{g}\n\n"),
        Error::UnsupportedFeature { .. } => {
            format!("{prog}: Filesystem has unsupported feature(s) ({device}): {e}\n")
        }
        other => format!("{prog}: {other}\n"),
    };
    AppletError::new(1, text)
}
