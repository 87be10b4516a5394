//! `ebsim debug-fs`: a hidden, minimal driver of the native ext4, XFS and
//! FAT file layers for benchmarks and crash tests (not a user interface; the file
//! commands users see come later). Every command of one invocation is
//! staged, then synced once at the end.
//!
//! ```text
//! ebsim debug-fs [--user UID] [--offset BYTES] IMAGE COMMAND [ARGS...]
//! ebsim debug-fs [--user UID] [--offset BYTES] IMAGE -      (commands on stdin, one a line)
//! commands: mkdir PATH | put HOSTFILE PATH | fallocate LEN PATH |
//!           rm PATH | rmdir PATH | mv OLD NEW | symlink TARGET PATH |
//!           truncate LEN PATH | cat PATH | ls PATH | statfs
//! ebsim debug-fs IMAGE grow-online [LEN]   (ext4: the online resize an instance's
//!                                           resize2fs makes, to LEN or the device's size)
//! ebsim debug-fs IMAGE build-esp KEY       (the EFI system partition of catalog image
//!                                           KEY, written as building the image does)
//! ```
//! LEN takes K, M, G, T suffixes (powers of 1024). Times come from
//! `E2FSPROGS_FAKE_TIME` when set (for reproducible images);
//! `EBSIM_DEBUG_FS_SYNC_MIB` changes how much staged data syncs on its own
//! (for measuring).

use super::output;
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{ImageFile, Slice};
use ebsim::fs::ext4::files::Ext4Files;
use ebsim::fs::node::{
    Cred, Ctx, FallocateMode, FileSystem, FileType, Ino, NodeError, SetAttr, Timespec,
};
use ebsim::fs::xfs::XfsFiles;
use std::ffi::OsString;
use std::io::{BufRead, Read};

fn parse_len(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        'T' | 't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Splits "/a/b/c" into the parent's inode and "c".
fn parent_of(fs: &dyn FileSystem, path: &str) -> Result<(Ino, Vec<u8>), String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(format!("{path}: not a file name"));
    };
    let mut ino = fs.root();
    for d in dirs {
        ino = fs
            .lookup(ino, d.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?
            .ino;
    }
    Ok((ino, last.as_bytes().to_vec()))
}

fn resolve(fs: &dyn FileSystem, path: &str) -> Result<Ino, String> {
    let mut ino = fs.root();
    for p in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs
            .lookup(ino, p.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?
            .ino;
    }
    Ok(ino)
}

fn e(path: &str) -> impl Fn(NodeError) -> String + '_ {
    move |x| format!("{path}: {x}")
}

/// Creates `path` (or opens it, truncated) as a regular file.
fn create(fs: &mut dyn FileSystem, ctx: Ctx, path: &str) -> Result<Ino, String> {
    let (dir, name) = parent_of(fs, path)?;
    match fs.lookup(dir, &name) {
        Ok(a) => {
            fs.setattr(
                ctx,
                a.ino,
                SetAttr {
                    size: Some(0),
                    ..SetAttr::default()
                },
            )
            .map_err(e(path))?;
            Ok(a.ino)
        }
        Err(_) => Ok(fs
            .mknod(ctx, dir, &name, FileType::Regular, 0o644, 0)
            .map_err(e(path))?
            .ino),
    }
}

fn command(fs: &mut dyn FileSystem, ctx: Ctx, words: &[&str]) -> Result<(), String> {
    let usage = || format!("bad command: {}", words.join(" "));
    match words {
        ["mkdir", path] => {
            let (dir, name) = parent_of(fs, path)?;
            fs.mkdir(ctx, dir, &name, 0o755).map_err(e(path))?;
        }
        ["put", host, path] => {
            let ino = create(fs, ctx, path)?;
            let mut f = std::fs::File::open(host).map_err(|x| format!("{host}: {x}"))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = f.read(&mut buf).map_err(|x| format!("{host}: {x}"))?;
                if n == 0 {
                    break;
                }
                let mut done = 0;
                while done < n {
                    let w = fs.write(ctx, ino, off, &buf[done..n]).map_err(e(path))?;
                    done += w;
                    off += w as u64;
                }
            }
        }
        ["fallocate", len, path] => {
            let len = parse_len(len).ok_or_else(usage)?;
            let ino = create(fs, ctx, path)?;
            fs.fallocate(
                ctx,
                ino,
                0,
                len,
                FallocateMode::Allocate { keep_size: false },
            )
            .map_err(e(path))?;
        }
        ["truncate", len, path] => {
            let len = parse_len(len).ok_or_else(usage)?;
            let ino = resolve(fs, path)?;
            fs.setattr(
                ctx,
                ino,
                SetAttr {
                    size: Some(len),
                    ..SetAttr::default()
                },
            )
            .map_err(e(path))?;
        }
        ["rm", path] => {
            let (dir, name) = parent_of(fs, path)?;
            fs.unlink(ctx, dir, &name).map_err(e(path))?;
        }
        ["rmdir", path] => {
            let (dir, name) = parent_of(fs, path)?;
            fs.rmdir(ctx, dir, &name).map_err(e(path))?;
        }
        ["mv", old, new] => {
            let (od, on) = parent_of(fs, old)?;
            let (nd, nn) = parent_of(fs, new)?;
            fs.rename(ctx, od, &on, nd, &nn, Default::default())
                .map_err(e(old))?;
        }
        ["symlink", target, path] => {
            let (dir, name) = parent_of(fs, path)?;
            fs.symlink(ctx, dir, &name, target.as_bytes())
                .map_err(e(path))?;
        }
        ["cat", path] => {
            let ino = resolve(fs, path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            let mut out = std::io::stdout().lock();
            loop {
                let n = fs.read(ino, off, &mut buf).map_err(e(path))?;
                if n == 0 {
                    break;
                }
                use std::io::Write;
                out.write_all(&buf[..n]).map_err(|x| x.to_string())?;
                off += n as u64;
            }
        }
        ["ls", path] => {
            let ino = resolve(fs, path)?;
            let mut s = String::new();
            for d in fs.readdir(ino).map_err(e(path))? {
                let a = fs.getattr(d.ino).map_err(e(path))?;
                s.push_str(&format!(
                    "{:>8} {:o} {:>12} {}\n",
                    a.ino,
                    a.kind.mode_bits() | a.perm,
                    a.size,
                    String::from_utf8_lossy(&d.name)
                ));
            }
            output::out(&s);
        }
        ["statfs"] => {
            let s = fs.statfs().map_err(|x| x.to_string())?;
            output::out(&format!(
                "bsize {} blocks {} bfree {} bavail {} files {} ffree {}\n",
                s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree
            ));
        }
        _ => return Err(usage()),
    }
    Ok(())
}

/// The library's online ext4 resize (what resize2fs in an instance does to
/// a mounted filesystem, past the reserved GDT blocks a meta_bg
/// conversion), to `len` bytes or the device's size.
fn grow_online(dev: Slice<ImageFile>, len: Option<&str>) -> Result<(), String> {
    use ebsim::fs::ext4::{Ext4, grow};
    let fs = Ext4::open(dev).map_err(|e| e.to_string())?;
    let size = match len {
        Some(l) => {
            let bytes = parse_len(l).ok_or_else(|| format!("bad length {l:?}"))?;
            Some(bytes / u64::from(fs.superblock().block_size()))
        }
        None => None,
    };
    let req = grow::GrowRequest {
        size,
        force: false,
        online: true,
        image_file: false,
        now: super::e2fs_util::e2fsprogs_now(),
        ..Default::default()
    };
    match grow::plan(&fs, &req).map_err(|e| e.to_string())? {
        grow::GrowOutcome::NothingToDo { .. } => Ok(()),
        grow::GrowOutcome::Grow(plan) => {
            let mut dev = fs.into_device();
            grow::apply(&mut dev, &plan.batch).map_err(|e| e.to_string())
        }
    }
}

/// Writes the EFI system partition of catalog image `key` (its key or
/// AMI id) into `image`, which already holds the image's partition table,
/// exactly as building the catalog image does (one commit); for the crash
/// sweep of that write.
fn build_esp(image: &str, key: &str) -> Result<(), String> {
    use ebsim::ec2::catalog::{self, FsKind};
    use ebsim::partition::SECTOR;
    let c = catalog::by_key(key)
        .or_else(|| catalog::by_image_id(key))
        .ok_or_else(|| format!("{key}: no such catalog image"))?;
    let (p, fs) = c
        .layout
        .partitions
        .iter()
        .find_map(|p| p.fs.filter(|f| f.kind == FsKind::Vfat).map(|f| (p, f)))
        .ok_or_else(|| format!("{key}: the image has no EFI system partition"))?;
    let end = p
        .end_lba
        .ok_or_else(|| format!("{key}: the EFI system partition has no fixed end"))?;
    let offset = p.start_lba.saturating_mul(SECTOR);
    let size = end
        .saturating_sub(p.start_lba)
        .saturating_add(1)
        .saturating_mul(SECTOR);
    let mut img = ImageFile::open(image, Access::ReadWrite).map_err(|e| e.to_string())?;
    catalog::make_fs(c, p, fs, &mut img, offset, size)
}

/// Runs the hidden subcommand; `args[0]` is "debug-fs".
pub fn run(args: Vec<OsString>) -> i32 {
    let args = super::getopt::after_argv0(&args);
    let mut uid = 0u32;
    let mut offset = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--user" => {
                uid = args.get(i + 1).and_then(|u| u.parse().ok()).unwrap_or(0);
                i += 2;
            }
            "--offset" => {
                offset = args.get(i + 1).and_then(|u| parse_len(u));
                i += 2;
            }
            _ => break,
        }
    }
    let Some(image) = args.get(i) else {
        output::err(
            "usage: ebsim debug-fs [--user UID] [--offset BYTES] IMAGE COMMAND [ARGS...] | -\n",
        );
        return 2;
    };
    let rest: Vec<&str> = args[i + 1..].iter().map(String::as_str).collect();
    if let ["build-esp", key] = rest.as_slice() {
        return match build_esp(image, key) {
            Ok(()) => 0,
            Err(m) => {
                output::err(&format!("ebsim debug-fs: {image}: {m}\n"));
                1
            }
        };
    }
    let img = match ImageFile::open(image, Access::ReadWrite) {
        Ok(i) => i,
        Err(x) => {
            output::err(&format!("ebsim debug-fs: {x}\n"));
            return 1;
        }
    };
    let size = ebsim::blockdev::BlockDevice::size(&img);
    let off = offset.unwrap_or(0);
    let dev = match Slice::new(img, off, size.saturating_sub(off)) {
        Ok(d) => d,
        Err(x) => {
            output::err(&format!("ebsim debug-fs: {x}\n"));
            return 1;
        }
    };
    if let ["grow-online", len @ ..] = rest.as_slice() {
        return match grow_online(dev, len.first().copied()) {
            Ok(()) => 0,
            Err(m) => {
                output::err(&format!("ebsim debug-fs: {image}: {m}\n"));
                1
            }
        };
    }
    let sync_bytes = std::env::var("EBSIM_DEBUG_FS_SYNC_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|mib| mib << 20);
    // XFS or FAT when the device holds one, else ext4.
    let opened: Result<Box<dyn FileSystem>, NodeError> =
        if ebsim::fs::vfat::probe(&dev).unwrap_or(false) {
            let opts = ebsim::fs::vfat_files::FatOptions::default();
            ebsim::fs::vfat_files::FatFiles::open(dev, false, opts)
                .map(|f| Box::new(f) as Box<dyn FileSystem>)
        } else if ebsim::fs::xfs::probe(&dev).unwrap_or(false) {
            XfsFiles::open(dev).map(|mut f| {
                if let Some(b) = sync_bytes {
                    f.set_sync_threshold(b);
                }
                Box::new(f) as Box<dyn FileSystem>
            })
        } else {
            Ext4Files::open(dev).map(|mut f| {
                if let Some(b) = sync_bytes {
                    f.set_sync_threshold(b);
                }
                Box::new(f) as Box<dyn FileSystem>
            })
        };
    let mut fs = match opened {
        Ok(f) => f,
        Err(x) => {
            output::err(&format!("ebsim debug-fs: {image}: {x}\n"));
            return 1;
        }
    };
    let now = super::e2fs_util::e2fsprogs_now();
    let ctx = Ctx {
        cred: Cred { uid, gid: uid },
        now: Timespec {
            sec: i64::try_from(now).unwrap_or(0),
            nsec: 0,
        },
    };
    let lines: Vec<String> = if rest == ["-"] {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .collect()
    } else {
        vec![rest.join(" ")]
    };
    for line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        if let Err(m) = command(fs.as_mut(), ctx, &words) {
            output::err(&format!("ebsim debug-fs: {m}\n"));
            return 1;
        }
    }
    if let Err(x) = fs.sync() {
        output::err(&format!("ebsim debug-fs: sync: {x}\n"));
        return 1;
    }
    0
}
