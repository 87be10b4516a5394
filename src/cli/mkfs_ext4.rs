//! `mkfs.ext4` / `mke2fs` (e2fsprogs 1.47.0 with Debian's mke2fs.conf) on
//! image files. Options parsed by hand (mke2fs uses
//! getopt, with its own messages; see `e2fs_util`).
//!
//! Supported: -q -v -F -n -V -j -J size= -L -U -M -e -K -D -E (hash_seed,
//! discard, nodiscard, lazy_itable_init, lazy_journal_init, resize, stride,
//! stripe_width, root_owner, test_fs, encoding, encoding_flags,
//! orphan_file_size) -b 1024/2048/4096 -g -G -m -N -i -I
//! -O -t ext4 -T (Debian's mke2fs.conf usage types), and a size operand;
//! without -b or -T the block size follows mke2fs.conf's size classes (1
//! KiB below 512 MiB). Other options are refused by name. `-v` (and, in a
//! guest whose e2fsprogs predates 1.43, every run) shows `show_stats`'
//! details instead of the one "Creating filesystem with" line.

use super::e2fs_util::Progress;
use super::error::{AppletError, finish};
use super::getopt::{getopt, strings};
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::compat::{ctime, int_log10, parse_num_blocks2, strtoull_all, uuid_random, uuid_unparse};
use ebsim::ec2::release::DEBIAN_12;
use ebsim::fs::ext4::error::MkfsError;
use ebsim::fs::ext4::features::{self, compat, incompat, ro_compat};
use ebsim::fs::ext4::geometry::{GeometryRequest, Profile};
use ebsim::fs::ext4::mke2fs::{self, ExtendedError, Usage};
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
    /// `-T`: usage types, comma-separated.
    usage_types: Option<String>,
    /// `-e`: `s_errors`.
    errors: Option<u16>,
    /// `-M`: the last-mounted directory.
    mount_dir: Option<String>,
    /// `-g`: blocks per group (C's `__u32`).
    blocks_per_group: Option<u32>,
    /// `-G`: groups per flex group.
    flex_bg_size: Option<u64>,
    /// `-J size=` in MiB (C's `int`; -1 for `-j`: the default size).
    journal_size: i32,
    /// `-K`: no discard.
    no_discard: bool,
    /// `-v`: verbose.
    verbose: bool,
}

fn basename(s: &str) -> String {
    Path::new(s)
        .file_name()
        .map_or_else(|| s.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The features and inode size: mke2fs.conf's ext4, then `-O` (joined
/// with commas, as mke2fs joins repeated options), then `-I`.
fn profile(
    prog: &str,
    a: &Args,
    fs_type: &str,
    block_size: u64,
    usage: &Usage,
) -> Result<Profile, AppletError> {
    let mut profile = Profile::of_type(fs_type);
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
    // A journal size (or -j) turns the journal on whatever -O said.
    if a.journal_size != 0 {
        words[0] |= compat::HAS_JOURNAL;
    }
    // metadata_csum supersedes uninit_bg (mke2fs drops the latter).
    if words[2] & ro_compat::METADATA_CSUM != 0 {
        words[2] &= !ro_compat::GDT_CSUM;
    }
    profile.set_words(words);
    if words[1] & incompat::META_BG != 0 && words[0] & compat::RESIZE_INODE != 0 {
        return Err(AppletError::new(
            1,
            "The resize_inode and meta_bg features are not compatible.\nThey can not be both enabled simultaneously.\n",
        ));
    }
    if words[0] & compat::RESIZE_INODE != 0 && words[2] & ro_compat::SPARSE_SUPER == 0 {
        return Err(AppletError::prog(
            prog,
            "reserved online resize blocks not supported on non-sparse filesystem",
        ));
    }
    if let Some((name, asked)) = profile.unsupported() {
        let what = if asked { "with" } else { "without" };
        return Err(AppletError::prog(
            prog,
            &format!("ebsim does not make filesystems {what} the feature {name}"),
        ));
    }
    // -I, else mke2fs.conf's inode_size; checked either way, as mke2fs
    // checks whichever it got.
    let n = a.inode_size.unwrap_or(u64::from(usage.inode_size));
    if n < 128 || n > block_size || !n.is_power_of_two() {
        return Err(AppletError::prog(
            prog,
            &format!("invalid inode size {n} (min 128/max {block_size})"),
        ));
    }
    if n == 128 && usage.warn_y2038 {
        out("128-byte inodes cannot handle dates beyond 2038 and are deprecated\n");
    }
    profile.inode_size = n as u32;
    Ok(profile)
}

/// mke2fs's `parse_journal_opts` (misc/util.c): `size=MiB` is honoured;
/// an unknown name, a missing or non-numeric value prints the journal
/// help and exits 1; the external-journal and fast-commit options are
/// refused by name.
fn parse_journal_opts(prog: &str, opts: &str, a: &mut Args) -> Result<(), AppletError> {
    let mut bad = 0;
    for token in opts.split(',').take_while(|t| !t.is_empty()) {
        let (name, value) = match token.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (token, None),
        };
        match (name, value) {
            ("size", Some(v)) => {
                let r = ebsim::compat::strtoull(v, 0);
                // C stores strtoul's unsigned long in an int.
                a.journal_size = r.value as i32;
                if r.end != v.len() {
                    bad += 1;
                }
            }
            ("device" | "location" | "fast_commit_size" | "v1_superblock", _) => {
                return Err(AppletError::prog(
                    prog,
                    &format!("journal option {name} is not supported by ebsim"),
                ));
            }
            _ => bad += 1,
        }
    }
    if bad > 0 {
        return Err(AppletError::new(
            1,
            "\nBad journal options specified.\n\n\
             Journal options are separated by commas, and may take an argument which\n\
             \tis set off by an equals ('=') sign.\n\n\
             Valid journal options are:\n\
             \tsize=<journal size in megabytes>\n\
             \tdevice=<journal device>\n\
             \tlocation=<journal location>\n\n\
             The journal size must be between 1024 and 10240000 filesystem blocks.\n\n",
        ));
    }
    Ok(())
}

/// mke2fs's advice when metadata_csum comes without 64bit.
const CSUM_WITHOUT_EXTENTS: &str = "Extents are not enabled.  The file extent tree can be checksummed, whereas block maps cannot.  Not enabling extents reduces the coverage of metadata checksumming.  Pass -O extents to rectify.\n";
const CSUM_WITHOUT_64BIT: &str = "64-bit filesystem support is not enabled.  The larger fields afforded by this feature enable full-strength checksumming.  Pass -O 64bit to rectify.\n";

/// mke2fs's advice on metadata_csum without extents or 64bit (printed
/// unless -q, after the journal size is checked).
fn csum_advice(profile: &Profile) -> String {
    let mut text = String::new();
    if profile.feature_ro_compat & ro_compat::METADATA_CSUM != 0 {
        if profile.feature_incompat & incompat::EXTENTS == 0 {
            text.push_str(CSUM_WITHOUT_EXTENTS);
        }
        if !profile.is_64bit() {
            text.push_str(CSUM_WITHOUT_64BIT);
        }
    }
    text
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
    // Called as mkfs.ext3, mke2fs makes a journal whatever -O says.
    if matches!(prog, "mkfs.ext3" | "mke3fs") {
        a.journal_size = -1;
    }
    for o in opts {
        let arg = o.arg.clone().unwrap_or_default();
        match o.val {
            'q' => a.quiet = true,
            'F' => {
                a.force = true;
                a.force_count += 1;
            }
            'n' => a.noaction = true,
            'v' => a.verbose = true,
            'V' => a.show_version = true,
            'j' => {
                if a.journal_size == 0 {
                    a.journal_size = -1;
                }
            }
            'J' => parse_journal_opts(prog, &arg, &mut a)?,
            'K' => {
                err(
                    "Warning: -K option is deprecated and should not be used anymore. Use \'-E nodiscard\' extended option instead!\n",
                );
                a.no_discard = true;
            }
            'D' => {}
            'M' => a.mount_dir = Some(arg),
            'T' => {
                if a.usage_types.is_some() {
                    return Err(AppletError::prog(
                        prog,
                        "The -T option may only be used once",
                    ));
                }
                a.usage_types = Some(arg);
            }
            'g' => {
                let Some(n) = strtoull_all(&arg, 0) else {
                    return Err(AppletError::prog(
                        prog,
                        "Illegal number for blocks per group",
                    ));
                };
                // Stored in the superblock's 32-bit field as C does.
                let n = n as u32;
                if n % 8 != 0 {
                    return Err(AppletError::prog(
                        prog,
                        "blocks per group must be multiple of 8",
                    ));
                }
                a.blocks_per_group = Some(n);
            }
            'G' => {
                let Some(n) = strtoull_all(&arg, 0) else {
                    return Err(AppletError::prog(prog, "Illegal number for flex_bg size"));
                };
                if n < 1 || !n.is_power_of_two() {
                    return Err(AppletError::prog(prog, "flex_bg size must be a power of 2"));
                }
                if n > u64::from(u32::MAX) {
                    return Err(AppletError::prog(
                        prog,
                        &format!("flex_bg size ({n}) must be less than or equal to 2^31"),
                    ));
                }
                a.flex_bg_size = Some(n);
            }
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
                a.errors = Some(match arg.as_str() {
                    "continue" => 1,
                    "remount-ro" => 2,
                    "panic" => 3,
                    _ => {
                        return Err(AppletError::prog(
                            prog,
                            &format!("bad error behavior - {arg}"),
                        )
                        .with_usage());
                    }
                });
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
        Some(d) if super::env::target(d, false) == Target::Device => Some(super::env::context()),
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
            // mke2fs.conf's default, ext3 once a journal is asked for.
            _ if a.journal_size != 0 => "ext3".to_string(),
            _ => "ext2".to_string(),
        });

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
    // A filesystem type that is a usage type of mke2fs.conf ("small")
    // applies its stanza first.
    let type_stanza = mke2fs::is_usage_type(&fs_type).then_some(fs_type.as_str());
    let with_type = |list: &str| match type_stanza {
        Some(t) => Usage::of(&format!("{t},{list}")),
        None => Usage::of(list),
    };
    let asked_usage = a.usage_types.as_deref().map(with_type);
    let usage_block_size = asked_usage
        .as_ref()
        .map(|u| u.block_size)
        .or_else(|| type_stanza.map(|t| Usage::of(t).block_size));
    let size = mke2fs::size(
        dev_size_before,
        explicit_blocks,
        a.block_size,
        usage_block_size,
    )
    .map_err(|e| match e {
        mke2fs::SizeError::ZeroDevice => AppletError::new(1, format!("{prog}: {e}\n")),
        other => AppletError::prog(prog, &other.to_string()),
    })?;
    let (block_size, blocks, size_type) = (size.block_size, size.blocks, size.size_type);
    let usage = asked_usage.unwrap_or_else(|| with_type(size_type.name()));
    if !matches!(fs_type.as_str(), "ext2" | "ext3" | "ext4") && type_stanza.is_none() {
        let mut text =
            format!("\nYour mke2fs.conf file does not define the {fs_type} filesystem type.\n");
        if fs_type == "ext4dev" {
            text.push_str("You probably need to install an updated mke2fs.conf file.\n\n");
        }
        if !a.force {
            text.push_str("Aborting...\n");
            return Err(AppletError::new(1, String::new()).with_stdout(&text));
        }
        out(&text);
    }
    for name in &usage.unknown {
        err(&format!(
            "\nWarning: the fs_type {name} is not defined in mke2fs.conf\n\n"
        ));
    }
    let mut profile = profile(prog, &a, &fs_type, block_size, &usage)?;
    // mke2fs's size checks come before its verbose list of types.
    ext4::geometry::check_size(blocks, block_size as u32, &profile)
        .map_err(|e| plan_failure(prog, &device, e))?;
    if a.verbose {
        // The filesystem type, then the usage types mke2fs.conf defines.
        let types: Vec<String> = std::iter::once(fs_type.as_str())
            .chain(
                usage
                    .types
                    .iter()
                    .copied()
                    .skip(usize::from(type_stanza.is_some())),
            )
            .map(|t| format!("'{t}'"))
            .collect();
        out(&format!(
            "fs_types for mke2fs.conf resolution: {}\n",
            types.join(", ")
        ));
    }

    let cx = mke2fs::ExtendedContext {
        blocks,
        block_size,
        descs_per_block: block_size / profile.desc_size(),
        blocks_per_group: a.blocks_per_group.map_or(block_size * 8, u64::from),
        // -K turns the discard off unless -E (read after it) says otherwise.
        discard: !a.no_discard,
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
    // encoding= turns casefold on; encoding_flags= needs it (mke2fs
    // checks after the stripe warning's test, with the features known).
    if ext.encoding {
        profile.feature_incompat |= incompat::CASEFOLD;
    }
    if ext.stride != 0 && ext.stripe_width % ext.stride != 0 {
        err(&format!(
            "\nWarning: RAID stripe-width {} not an even multiple of stride {}.\n\n",
            ext.stripe_width, ext.stride
        ));
    }
    if let Some(bpg) = a.blocks_per_group {
        if bpg < 256 || u64::from(bpg) > 8 * block_size {
            return Err(AppletError::prog(
                prog,
                "blocks per group count out of range",
            ));
        }
        profile.blocks_per_group = Some(u64::from(bpg));
    }
    if let Some(n) = a.flex_bg_size {
        if profile.feature_incompat & incompat::FLEX_BG == 0 {
            return Err(AppletError::prog(
                prog,
                "Flex_bg feature not enabled, so flex_bg size may not be specified",
            ));
        }
        profile.log_groups_per_flex = Some(n.trailing_zeros() as u8);
    }
    if a.journal_size > 0 {
        // jsize_to_blks: MiB to blocks.
        profile.journal_blocks =
            Some(i64::from(a.journal_size) as u64 * 1024 / (block_size / 1024));
    }
    if profile.feature_incompat & incompat::CASEFOLD != 0 {
        if let Some(flags) = &ext.encoding_flags {
            profile.encoding_flags = mke2fs::encoding_flags(flags).ok_or_else(|| {
                AppletError::new(1, format!("error: Invalid encoding flag: {flags}\n"))
            })?;
        }
    } else if ext.encoding_flags.is_some() {
        return Err(AppletError::new(
            1,
            "error: An encoding must be explicitly specified when passing encoding-flags\n",
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
            inode_ratio: Some(a.inode_ratio.unwrap_or(usage.inode_ratio.max(block_size))),
            reserved_ratio: a.reserved_ratio.unwrap_or(5.0),
            profile,
        },
        uuid,
        hash_seed: ext.hash_seed.unwrap_or_else(uuid_random),
        label,
        now: super::e2fs_util::e2fsprogs_now(),
        discard: ext.discard && dev_size_before > 0,
        tunables: mkfs::Tunables {
            errors: a.errors.unwrap_or(1),
            last_mounted: a.mount_dir.clone().unwrap_or_default().into_bytes(),
            test_fs: ext.test_fs,
            root_owner: ext.root_owner.unwrap_or((0, 0)),
        },
    };
    let plan = match mkfs::plan(dev_size_before, &opts) {
        Ok(p) => p,
        Err(e @ ext4::Error::Mkfs(MkfsError::TooBigFor32Bit { .. } | MkfsError::TooBig { .. })) => {
            return Err(plan_failure(prog, &device, e));
        }
        // figure_journal_size's own lines, after the checksum advice.
        Err(ext4::Error::Mkfs(e @ (MkfsError::JournalSizeRange(_) | MkfsError::JournalTooBig))) => {
            if !a.quiet {
                out(&csum_advice(&profile));
            }
            return Err(AppletError::new(1, e.to_string()));
        }
        Err(e) => return Err(AppletError::prog(prog, &e.to_string())),
    };
    if !a.quiet {
        out(&csum_advice(&profile));
    }
    if plan.geometry.journal_dropped {
        err("\nFilesystem too small for a journal\n");
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
    // A file reads zeros where it was discarded (a block device of the
    // instance does not promise it).
    if a.verbose && opts.discard && !a.noaction && guest.is_none() {
        let line = "Discard succeeded and will return 0s - skipping inode table wipe\n";
        if a.quiet {
            out(line);
        } else {
            text.push_str(line);
        }
    }
    // e2fsprogs before 1.43 always shows the details, and no UUID.
    let old_stats = e2fsprogs.version < ebsim::ec2::release::Version::new(1, 43, 0);
    if !a.quiet || a.noaction {
        if a.verbose || old_stats {
            text.push_str(&stats_details(&plan, opts.tunables.root_owner));
        } else {
            text.push_str(&format!(
                "Creating filesystem with {} {}k blocks and {} inodes\n",
                g.blocks,
                g.block_size / 1024,
                g.inodes_count
            ));
        }
        if g.groups == 1 {
            text.push('\n');
        } else {
            if uuid != [0u8; 16] && !old_stats {
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

/// mke2fs's words for a size it cannot make (naming the device), or the
/// error as it is.
fn plan_failure(prog: &str, device: &str, e: ext4::Error) -> AppletError {
    match e {
        ext4::Error::Mkfs(MkfsError::TooBigFor32Bit { blocks, block_size }) => AppletError::prog(
            prog,
            &format!(
                "Size of device ({blocks:#x} blocks) {device} too big to be expressed\n\tin 32 bits using a blocksize of {block_size}."
            ),
        ),
        ext4::Error::Mkfs(MkfsError::TooBig { blocks, block_size }) => AppletError::prog(
            prog,
            &format!(
                "Size of device ({blocks:#x} blocks) {device} too big to create\n\ta filesystem using a blocksize of {block_size}."
            ),
        ),
        other => AppletError::prog(prog, &other.to_string()),
    }
}

/// mke2fs's `show_stats` details (with `-v`, or always before 1.43).
fn stats_details(plan: &mkfs::MkfsPlan, root_owner: (u32, u32)) -> String {
    let g = &plan.geometry;
    let sb = &plan.superblock;
    let mut t = String::new();
    t.push_str(&format!("Filesystem label={}\n", sb.label()));
    t.push_str("OS type: Linux\n");
    t.push_str(&format!(
        "Block size={} (log={})\n",
        g.block_size, g.log_block_size
    ));
    t.push_str(&format!(
        "Fragment size={} (log={})\n",
        g.block_size, g.log_block_size
    ));
    t.push_str(&format!(
        "Stride={} blocks, Stripe width={} blocks\n",
        g.raid_stride, g.raid_stripe_width
    ));
    t.push_str(&format!("{} inodes, {} blocks\n", g.inodes_count, g.blocks));
    t.push_str(&format!(
        "{} blocks ({:2.2}%) reserved for the super user\n",
        g.r_blocks,
        100.0 * g.r_blocks as f64 / g.blocks as f64
    ));
    t.push_str(&format!("First data block={}\n", g.first_data_block));
    if root_owner != (0, 0) {
        t.push_str(&format!(
            "Root directory owner={}:{}\n",
            root_owner.0, root_owner.1
        ));
    }
    if g.reserved_gdt_blocks > 0 {
        let per_block = u64::from(g.block_size) / u64::from(sb.desc_size());
        t.push_str(&format!(
            "Maximum filesystem blocks={}\n",
            (g.reserved_gdt_blocks + g.desc_blocks) * per_block * g.blocks_per_group
        ));
    }
    let s = if g.groups > 1 { "s" } else { "" };
    t.push_str(&format!("{} block group{s}\n", g.groups));
    t.push_str(&format!(
        "{} blocks per group, {} fragments per group\n",
        g.blocks_per_group, g.blocks_per_group
    ));
    t.push_str(&format!("{} inodes per group\n", g.inodes_per_group));
    t
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
