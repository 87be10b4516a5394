//! `mkfs.ext4` / `mke2fs` (e2fsprogs 1.47.0 with Debian's mke2fs.conf) on
//! image files. Options parsed by hand (mke2fs uses
//! getopt, with its own messages; see `e2fs_util`).
//!
//! Supported: -q -F -n -V -j -L -U -E (hash_seed, discard, nodiscard,
//! lazy_itable_init, lazy_journal_init) -b 1024/2048/4096 -m -N -i -I 256
//! -t ext4 -e continue, and a size operand; block size by mke2fs.conf's
//! size classes (1 KiB below 512 MiB). Other options are refused by name.

use super::e2fs_util::Progress;
use super::error::{AppletError, finish};
use super::getopt::{getopt, strings};
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::compat::{ctime, int_log10, parse_num_blocks2, strtoull_all, uuid_random, uuid_unparse};
use ebsim::ec2::release::DEBIAN_12;
use ebsim::fs::ext4::error::MkfsError;
use ebsim::fs::ext4::features::{self, incompat, ro_compat};
use ebsim::fs::ext4::geometry::{GeometryRequest, Profile};
use ebsim::fs::ext4::mke2fs::{self, ExtendedError};
use ebsim::fs::ext4::{self, mkfs};
use ebsim::guest::{Context, Resolved, Target};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;

const OPTSTRING: &str = "b:cd:e:g:i:jl:m:no:qr:s:t:vC:DE:FG:I:J:KL:M:N:O:R:ST:U:Vz:";

fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-c|-l filename] [-b block-size] [-C cluster-size]\n\
         \t[-i bytes-per-inode] [-I inode-size] [-J journal-options]\n\
         \t[-G flex-group-size] [-N number-of-inodes] [-d root-directory]\n\
         \t[-m reserved-blocks-percentage] [-o creator-os]\n\
         \t[-g blocks-per-group] [-L volume-label] [-M last-mounted-directory]\n\
         \t[-O feature[,...]] [-r fs-revision] [-E extended-option[,...]]\n\
         \t[-t fs-type] [-T usage-type ] [-U UUID] [-e errors_behavior][-z undo_file]\n\
         \t[-jnqvDFSV] device [blocks-count]\n"
    )
}

const EXTENDED_HELP: &str = "Extended options are separated by commas, and may take an argument which\n\
\tis set off by an equals ('=') sign.\n\n\
Valid extended options are:\n\
\tmmp_update_interval=<interval>\n\
\tnum_backup_sb=<0|1|2>\n\
\tstride=<RAID per-disk data chunk in blocks>\n\
\tstripe-width=<RAID stride * data disks in blocks>\n\
\toffset=<offset to create the file system>\n\
\tresize=<resize maximum size in blocks>\n\
\tpacked_meta_blocks=<0 to disable, 1 to enable>\n\
\tlazy_itable_init=<0 to disable, 1 to enable>\n\
\tlazy_journal_init=<0 to disable, 1 to enable>\n\
\troot_owner=<uid of root dir>:<gid of root dir>\n\
\ttest_fs\n\
\tdiscard\n\
\tnodiscard\n\
\tencoding=<encoding>\n\
\tencoding_flags=<flags>\n\
\tquotatype=<quota type(s) to be enabled>\n\
\tassume_storage_prezeroed=<0 to disable, 1 to enable>\n\n";

/// Parsed command line.
#[derive(Debug, Default)]
struct Args {
    quiet: bool,
    force: bool,
    force_count: u32,
    noaction: bool,
    block_size: Option<u64>,
    label: Option<String>,
    uuid: Option<String>,
    extended: Vec<String>,
    reserved_ratio: Option<f64>,
    inodes: Option<u64>,
    inode_ratio: Option<u64>,
    fs_type: Option<String>,
    /// `-O` edits, in order (mke2fs joins them with commas).
    features: Vec<String>,
    /// `-I`.
    inode_size: Option<u64>,
    show_version: bool,
}

fn basename(s: &str) -> String {
    Path::new(s)
        .file_name()
        .map_or_else(|| s.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The features and inode size: mke2fs.conf's ext4, then `-O` (joined
/// with commas, as mke2fs joins repeated options), then `-I`.
fn profile(prog: &str, a: &Args, block_size: u64) -> Result<Profile, AppletError> {
    let mut profile = Profile::EXT4;
    let mut words = profile.words();
    let spec = a.features.join(",");
    if features::edit(&mut words, &spec).is_err() {
        return Err(AppletError::new(
            1,
            format!("Invalid filesystem option set: {spec}\n"),
        ));
    }
    if words[1] & incompat::BIT64 != 0 && words[1] & incompat::EXTENTS == 0 {
        out("Extents MUST be enabled for a 64-bit filesystem.  Pass -O extents to rectify.\n");
        return Err(AppletError::new(1, String::new()));
    }
    // Every revision 1 filesystem mke2fs makes has large_file.
    words[2] |= ro_compat::LARGE_FILE;
    // metadata_csum supersedes uninit_bg (mke2fs drops the latter).
    if words[2] & ro_compat::METADATA_CSUM != 0 {
        words[2] &= !ro_compat::GDT_CSUM;
    }
    profile.set_words(words);
    if let Some((name, asked)) = profile.unsupported() {
        let what = if asked { "with" } else { "without" };
        return Err(AppletError::prog(
            prog,
            &format!("ebsim does not make filesystems {what} the feature {name}"),
        ));
    }
    if let Some(n) = a.inode_size {
        if n < 128 || n > block_size || !n.is_power_of_two() {
            return Err(AppletError::prog(
                prog,
                &format!("invalid inode size {n} (min 128/max {block_size})"),
            ));
        }
        if n == 128 {
            out("128-byte inodes cannot handle dates beyond 2038 and are deprecated\n");
        }
        profile.inode_size = n as u32;
    }
    Ok(profile)
}

pub fn run(args: Vec<OsString>) -> i32 {
    let args = strings(&args);
    let argv0 = args.first().cloned().unwrap_or_else(|| "mkfs.ext4".into());
    let prog = basename(&argv0);
    finish(main(&args, &argv0, &prog), || usage(&prog))
}

fn main(args: &[String], argv0: &str, prog: &str) -> Result<i32, AppletError> {
    let (opts, operands) = match getopt(args.get(1..).unwrap_or(&[]), OPTSTRING).strict() {
        Ok(v) => v,
        Err(e) => return Err(AppletError::new(1, e.message(argv0)).with_usage()),
    };
    let mut a = Args::default();
    for o in opts {
        let arg = o.arg.clone().unwrap_or_default();
        match o.val {
            'q' => a.quiet = true,
            'F' => {
                a.force = true;
                a.force_count += 1;
            }
            'n' => a.noaction = true,
            'V' => a.show_version = true,
            'j' => {}
            'L' => {
                let mut l = arg;
                if l.len() > 16 {
                    // mke2fs cuts at 16 bytes.
                    let mut cut = 16;
                    while !l.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    l.truncate(cut);
                    err(&format!(
                        "Warning: label too long; will be truncated to '{l}'\n\n"
                    ));
                }
                a.label = Some(l);
            }
            'U' => a.uuid = Some(arg),
            'E' | 'R' => {
                if o.val == 'R' {
                    err(&format!("{prog}: '-R' is deprecated, use '-E' instead\n"));
                }
                a.extended = arg.split(',').map(str::to_string).collect();
            }
            'b' => {
                let b = parse_num_blocks2(&arg, -1);
                if !(1024..=65536).contains(&b) {
                    return Err(AppletError::prog(
                        prog,
                        &format!("invalid block size - {arg}"),
                    ));
                }
                if b > 4096 {
                    err(&format!(
                        "Warning: blocksize {b} not usable on most systems.\n"
                    ));
                }
                a.block_size = Some(b);
            }
            'm' => match arg.parse::<f64>() {
                Ok(r) if (0.0..=50.0).contains(&r) => a.reserved_ratio = Some(r),
                _ => {
                    return Err(AppletError::prog(
                        prog,
                        &format!("invalid reserved blocks percent - {arg}"),
                    ));
                }
            },
            'N' => match strtoull_all(&arg, 0) {
                Some(n) => a.inodes = Some(n),
                None => return Err(AppletError::prog(prog, &format!("bad num inodes - {arg}"))),
            },
            'i' => {
                let r = parse_num_blocks2(&arg, -1);
                if !(1024..=65536 * 1024).contains(&r) {
                    return Err(AppletError::prog(
                        prog,
                        &format!("invalid inode ratio {arg} (min 1024/max 67108864)"),
                    ));
                }
                a.inode_ratio = Some(r);
            }
            'I' => a.inode_size = Some(strtoull_all(&arg, 0).unwrap_or(0)),
            'O' => a.features.push(arg),
            'e' => {
                if arg != "continue" {
                    return Err(AppletError::prog(
                        prog,
                        &format!(
                            "ebsim supports only the default error behavior (continue), not {arg}"
                        ),
                    ));
                }
            }
            't' => {
                if a.fs_type.is_some() {
                    return Err(AppletError::prog(
                        prog,
                        "The -t option may only be used once",
                    ));
                }
                a.fs_type = Some(arg);
            }
            c => {
                return Err(AppletError::prog(
                    prog,
                    &format!("option -{c} is not supported by ebsim"),
                ));
            }
        }
    }
    if operands.is_empty() && !a.show_version {
        return Err(AppletError::usage_only(1));
    }
    // A device name is a disk or partition of the emulated instance, whose
    // e2fsprogs the banner shows.
    let guest_ctx = match operands.first() {
        Some(d) if Target::of(d, false) == Target::Device => Some(super::env::context()),
        _ => None,
    };
    let e2fsprogs = match &guest_ctx {
        Some(Ok(ctx)) => ctx.release.e2fsprogs,
        _ => DEBIAN_12.e2fsprogs,
    };
    let (version, date) = (e2fsprogs.version, e2fsprogs.date);
    if !a.quiet || a.show_version {
        err(&format!("mke2fs {version} ({date})\n"));
    }
    if a.show_version {
        err(&format!("\tUsing EXT2FS Library version {version}\n"));
        return Ok(0);
    }
    let device = operands[0].clone();
    let size_arg = operands.get(1).cloned();
    if operands.len() > 2 {
        return Err(AppletError::usage_only(1));
    }
    let log_block_size: i32 = match a.block_size {
        Some(b) => (b / 1024).trailing_zeros() as i32,
        None => 0,
    };
    let explicit_blocks = match &size_arg {
        Some(s) => {
            let n = parse_num_blocks2(s, log_block_size);
            if n == 0 {
                return Err(AppletError::prog(
                    prog,
                    &format!("invalid blocks '{s}' on device '{device}'"),
                ));
            }
            Some(n)
        }
        None => None,
    };
    // The filesystem type: -t, else the program name's suffix, else
    // mke2fs.conf's default (ext2).
    let fs_type = a
        .fs_type
        .clone()
        .unwrap_or_else(|| match prog.strip_prefix("mkfs.") {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => "ext2".to_string(),
        });
    if fs_type != "ext4" {
        return Err(AppletError::prog(
            prog,
            &format!(
                "ebsim makes ext4 only (asked for {fs_type}); use mkfs.ext4 or mke2fs -t ext4"
            ),
        ));
    }

    // The device.
    let guest = match guest_ctx {
        None => None,
        Some(Err(why)) => return Err(AppletError::prog(prog, &why)),
        Some(Ok(ctx)) => guest_device(&ctx, &device, a.force_count)?,
    };
    let path = Path::new(&device);
    let existed = guest.is_some() || path.exists();
    if !existed && explicit_blocks.is_none() {
        return Err(AppletError::new(
            1,
            format!("The file {device} does not exist and no size was specified.\n"),
        ));
    }
    let open_dev = |access: Access| -> Result<Box<dyn BlockDevice>, ebsim::blockdev::Error> {
        match &guest {
            Some(r) => Ok(Box::new(r.open(access)?)),
            None => Ok(Box::new(ImageFile::open(path, access)?)),
        }
    };
    let dev_size_before = if let Some(r) = &guest {
        r.range().1
    } else if existed {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => match ImageFile::open(path, Access::ReadOnly) {
                Ok(i) => i.size(),
                Err(e) => {
                    return Err(AppletError::prog(
                        prog,
                        &format!("{e} while trying to determine filesystem size"),
                    ));
                }
            },
            Err(e) => {
                return Err(AppletError::prog(
                    prog,
                    &format!("{e} while trying to determine filesystem size"),
                ));
            }
        }
    } else {
        0
    };
    let size =
        mke2fs::size(dev_size_before, explicit_blocks, a.block_size).map_err(|e| match e {
            mke2fs::SizeError::ZeroDevice => AppletError::new(1, format!("{prog}: {e}\n")),
            other => AppletError::prog(prog, &other.to_string()),
        })?;
    let (block_size, blocks, size_type) = (size.block_size, size.blocks, size.size_type);
    let mut profile = profile(prog, &a, block_size)?;
    let cx = mke2fs::ExtendedContext {
        blocks,
        block_size,
        descs_per_block: block_size / profile.desc_size(),
    };
    let ext = mke2fs::extended(&a.extended, &cx).map_err(|e| match e {
        ExtendedError::Unsupported { name, complaints } => {
            let mut text = complaints.concat();
            text.push_str(&format!(
                "{prog}: extended option {name} is not supported by ebsim\n"
            ));
            AppletError::new(1, text)
        }
        ExtendedError::Bad { name, complaints } => {
            let mut text = complaints.concat();
            text.push_str(&format!(
                "\nBad option(s) specified: {name}\n\n{EXTENDED_HELP}"
            ));
            AppletError::new(1, text)
        }
    })?;
    if ext.stride != 0 && ext.stripe_width % ext.stride != 0 {
        err(&format!(
            "\nWarning: RAID stripe-width {} not an even multiple of stride {}.\n\n",
            ext.stripe_width, ext.stride
        ));
    }
    profile.reserved_gdt = ext.reserved_gdt;
    profile.raid_stride = ext.stride;
    profile.raid_stripe_width = ext.stripe_width;

    let mut label = [0u8; 16];
    if let Some(l) = &a.label {
        label[..l.len()].copy_from_slice(l.as_bytes());
    }
    let Some(uuid) = mke2fs::uuid_arg(a.uuid.as_deref()) else {
        return Err(AppletError::new(
            1,
            format!(
                "{device}: could not parse UUID: {}\n\n",
                a.uuid.as_deref().unwrap_or_default()
            ),
        ));
    };
    let opts = mkfs::MkfsOptions {
        geometry: GeometryRequest {
            block_size: block_size as u32,
            blocks,
            size_type,
            inodes: a.inodes,
            inode_ratio: a.inode_ratio,
            reserved_ratio: a.reserved_ratio.unwrap_or(5.0),
            profile,
        },
        uuid,
        hash_seed: ext.hash_seed.unwrap_or_else(uuid_random),
        label,
        now: super::e2fs_util::e2fsprogs_now(),
        discard: ext.discard && dev_size_before > 0,
    };
    let plan = match mkfs::plan(dev_size_before, &opts) {
        Ok(p) => p,
        // mke2fs names the device in these two.
        Err(ext4::Error::Mkfs(MkfsError::TooBigFor32Bit { blocks, block_size })) => {
            return Err(AppletError::prog(
                prog,
                &format!(
                    "Size of device ({blocks:#x} blocks) {device} too big to be expressed\n\tin 32 bits using a blocksize of {block_size}."
                ),
            ));
        }
        Err(ext4::Error::Mkfs(MkfsError::TooBig { blocks, block_size })) => {
            return Err(AppletError::prog(
                prog,
                &format!(
                    "Size of device ({blocks:#x} blocks) {device} too big to create\n\ta filesystem using a blocksize of {block_size}."
                ),
            ));
        }
        Err(e) => return Err(AppletError::prog(prog, &e.to_string())),
    };
    if !a.quiet && profile.feature_ro_compat & ro_compat::METADATA_CSUM != 0 && !profile.is_64bit()
    {
        out(
            "64-bit filesystem support is not enabled.  The larger fields afforded by this feature enable full-strength checksumming.  Pass -O 64bit to rectify.\n",
        );
    }

    // An existing filesystem: mke2fs asks only on a terminal.
    if existed && !a.force && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        if let Ok(img) = open_dev(Access::ReadOnly) {
            if let Ok(sb) = ext4::read_superblock(&img) {
                let lbl = sb.label();
                if lbl.is_empty() {
                    out(&format!("{device} contains a ext4 file system\n"));
                } else {
                    out(&format!(
                        "{device} contains a ext4 file system labelled '{lbl}'\n"
                    ));
                }
                out(&format!(
                    "\tcreated on {}",
                    ctime(i64::try_from(sb.s_mkfs_time).unwrap_or(i64::MAX))
                ));
                out("Proceed anyway? (y,N) ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !line.starts_with(['y', 'Y']) {
                    out("\n");
                    return Ok(1);
                }
            }
        }
    }

    let mut img: Box<dyn BlockDevice> = if existed {
        match open_dev(Access::ReadWrite) {
            Ok(i) => i,
            Err(e) => {
                return Err(AppletError::new(
                    1,
                    format!("Could not open {device}: {e}\n"),
                ));
            }
        }
    } else {
        match ImageFile::create(path, 0) {
            Ok(i) => {
                out(&format!("Creating regular file {device}\n"));
                Box::new(i)
            }
            Err(e) => {
                return Err(AppletError::new(
                    1,
                    format!("Could not open {device}: {e}\n"),
                ));
            }
        }
    };

    let g = &plan.geometry;
    let mut text = String::new();
    if !a.quiet && opts.discard && !a.noaction {
        let p = Progress::init(Some("Discarding device blocks: "), g.blocks, &mut text);
        p.first_update(g.blocks, &mut text);
        p.close(Some("done                            \n"), &mut text);
    }
    if !a.quiet || a.noaction {
        text.push_str(&format!(
            "Creating filesystem with {} {}k blocks and {} inodes\n",
            g.blocks,
            g.block_size / 1024,
            g.inodes_count
        ));
        if g.groups == 1 {
            text.push('\n');
        } else {
            if uuid != [0u8; 16] {
                text.push_str(&format!("Filesystem UUID: {}\n", uuid_unparse(&uuid)));
            }
            text.push_str("Superblock backups stored on blocks: ");
            let mut col_left: usize = 0;
            for (k, b) in plan.backup_blocks.iter().enumerate() {
                if k != 0 {
                    text.push_str(", ");
                }
                let need = int_log10(*b) + 2;
                if need > col_left {
                    text.push_str("\n\t");
                    col_left = 72;
                }
                col_left -= need;
                text.push_str(&b.to_string());
            }
            text.push_str("\n\n");
        }
    }
    if a.noaction {
        out(&text);
        return Ok(0);
    }
    if !a.quiet {
        text.push_str("Allocating group tables: ");
        let p = Progress::init(None, g.groups, &mut text);
        p.first_update(g.groups, &mut text);
        p.close(None, &mut text);
        text.push_str("done                            \n");
        let p = Progress::init(Some("Writing inode tables: "), g.groups, &mut text);
        p.first_update(g.groups, &mut text);
        p.close(Some("done                            \n"), &mut text);
        if g.journal_blocks > 0 {
            text.push_str(&format!(
                "Creating journal ({} blocks): done\n",
                g.journal_blocks
            ));
        }
        text.push_str("Writing superblocks and filesystem accounting information: ");
        let p = Progress::init(None, g.groups, &mut text);
        p.first_update(g.groups, &mut text);
        p.close(None, &mut text);
        out(&text);
    }
    if let Err(e) = mkfs::apply(&mut img, &plan) {
        return Err(AppletError::new(
            1,
            format!("{prog}: {e} while writing out and closing file system\n"),
        ));
    }
    if !a.quiet {
        out("done\n\n");
    }
    Ok(0)
}

/// A device of the instance, checked as mke2fs checks a block device
/// (`check_plausibility`, then `check_mount`). Ok(None) never happens for
/// a device name.
fn guest_device(ctx: &Context, device: &str, force: u32) -> Result<Option<Resolved>, AppletError> {
    let Some(r) = ctx.resolve(device) else {
        return Err(AppletError::new(
            1,
            format!("The file {device} does not exist and no size was specified.\n"),
        ));
    };
    let mounted = !ctx.mounts_of(&r).is_empty();
    let busy = ctx.disk_busy(&r);
    if mounted || busy {
        let what = if mounted {
            "is mounted"
        } else {
            "is apparently in use by the system"
        };
        if force < 2 {
            return Err(AppletError::new(
                1,
                format!("{device} {what}; will not make a filesystem here!\n"),
            ));
        }
        // Forced, mke2fs goes on, and the kernel's exclusive open fails.
        return Err(AppletError::new(
            1,
            format!(
                "{device} {what}; mke2fs forced anyway.{}\n{device}: Device or resource busy while setting up superblock\n",
                if mounted {
                    "  Hope /etc/mtab is incorrect."
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(Some(r))
}
