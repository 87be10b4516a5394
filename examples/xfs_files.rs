//! A small driver of ebsim's XFS file write path, for benchmarks and
//! experiments (the real interface comes with the host-side image access).
//!
//! ```text
//! xfs_files IMAGE statfs
//! xfs_files IMAGE ls PATH
//! xfs_files IMAGE mkdir PATH
//! xfs_files IMAGE rm PATH
//! xfs_files IMAGE fallocate PATH LEN [keep]     LEN in bytes, or with K/M/G/T
//! xfs_files IMAGE write PATH LEN [SEED]         LEN pseudo-random bytes, 1 MiB at a time
//! xfs_files IMAGE fill PATH                     write 1 MiB chunks until ENOSPC
//! xfs_files IMAGE cat PATH                      the file's bytes to stdout
//! xfs_files IMAGE copyin SRC PATH               a host file's bytes into PATH
//! ```
//! Every command but `statfs`, `ls` and `cat` ends with one sync.

use ebsim::blockdev::{ImageFile, image::Access};
use ebsim::fs::node::{Cred, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, Ino, Timespec};
use ebsim::fs::xfs::XfsFiles;
use std::io::Write;
use std::process::ExitCode;

fn now() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

fn size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|e| format!("bad size {s}: {e}"))
}

fn walk<F: FileSystem>(fs: &F, path: &str) -> Result<(Ino, Ino, Vec<u8>), String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err("a path below / is needed".into());
    };
    let mut dir = fs.root();
    for p in dirs {
        dir = fs
            .lookup(dir, p.as_bytes())
            .map_err(|e| format!("{p}: {e}"))?
            .ino;
    }
    let ino = fs.lookup(dir, last.as_bytes()).map(|a| a.ino).unwrap_or(0);
    Ok((dir, ino, last.as_bytes().to_vec()))
}

fn run(args: &[String]) -> Result<(), String> {
    let [img, cmd, rest @ ..] = args else {
        return Err("usage: xfs_files IMAGE COMMAND ARGS...".into());
    };
    let ro = matches!(cmd.as_str(), "statfs" | "ls" | "cat");
    let dev = ImageFile::open(
        img,
        if ro {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        },
    )
    .map_err(|e| e.to_string())?;
    let mut fs = if ro {
        XfsFiles::open_read_only(dev)
    } else {
        XfsFiles::open(dev)
    }
    .map_err(|e| e.to_string())?;
    if let Some(n) = std::env::var("XFS_FILES_AUTO_SYNC")
        .ok()
        .and_then(|v| size(&v).ok())
    {
        fs.set_auto_sync(n);
    }
    let ctx = Ctx {
        cred: Cred::ROOT,
        now: now(),
    };
    let path = rest.first().map(String::as_str).unwrap_or("/");
    let get_file = |fs: &mut XfsFiles<ImageFile>| -> Result<Ino, String> {
        let (dir, ino, name) = walk(fs, path)?;
        if ino != 0 {
            return Ok(ino);
        }
        fs.mknod(ctx, dir, &name, FileType::Regular, 0o644, 0)
            .map(|a| a.ino)
            .map_err(|e| e.to_string())
    };
    match cmd.as_str() {
        "statfs" => {
            let s = fs.statfs().map_err(|e| e.to_string())?;
            println!(
                "bsize {} blocks {} bfree {} bavail {} files {} ffree {}",
                s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree
            );
            return Ok(());
        }
        "ls" => {
            let ino = if path == "/" {
                fs.root()
            } else {
                walk(&fs, path)?.1
            };
            for e in fs.readdir(ino).map_err(|e| e.to_string())? {
                let a = fs.getattr(e.ino).map_err(|e| e.to_string())?;
                println!(
                    "{:>8} {:o} {:>5} {:>12} {}",
                    e.ino,
                    a.perm,
                    a.nlink,
                    a.size,
                    String::from_utf8_lossy(&e.name)
                );
            }
            return Ok(());
        }
        "cat" => {
            let ino = walk(&fs, path)?.1;
            let size = fs.getattr(ino).map_err(|e| e.to_string())?.size;
            let mut out = std::io::stdout().lock();
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < size {
                let n = fs.read(ino, off, &mut buf).map_err(|e| e.to_string())?;
                out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                off += n as u64;
            }
            return Ok(());
        }
        "mkdir" => {
            let (dir, _, name) = walk(&fs, path)?;
            fs.mkdir(ctx, dir, &name, 0o755)
                .map_err(|e| e.to_string())?;
        }
        "rm" => {
            let (dir, _, name) = walk(&fs, path)?;
            fs.unlink(ctx, dir, &name).map_err(|e| e.to_string())?;
        }
        "fallocate" => {
            let len = size(rest.get(1).ok_or("LEN missing")?)?;
            let keep_size = rest.get(2).is_some_and(|s| s == "keep");
            let ino = get_file(&mut fs)?;
            fs.fallocate(ctx, ino, 0, len, FallocateMode::Allocate { keep_size })
                .map_err(|e| e.to_string())?;
        }
        "copyin" => {
            use std::io::Read;
            let src = rest.first().ok_or("SRC missing")?;
            let dst = rest.get(1).ok_or("PATH missing")?;
            let mut f = std::fs::File::open(src).map_err(|e| format!("{src}: {e}"))?;
            let (dir, ino, name) = walk(&fs, dst)?;
            let ino = if ino != 0 {
                ino
            } else {
                fs.mknod(ctx, dir, &name, FileType::Regular, 0o644, 0)
                    .map_err(|e| e.to_string())?
                    .ino
            };
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                fs.write(ctx, ino, off, &buf[..n])
                    .map_err(|e| e.to_string())?;
                off += n as u64;
            }
        }
        "write" | "fill" => {
            let len = if cmd == "fill" {
                u64::MAX
            } else {
                size(rest.get(1).ok_or("LEN missing")?)?
            };
            let seed: u64 = rest.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let ino = get_file(&mut fs)?;
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            while off < len {
                let n = (len - off).min(buf.len() as u64) as usize;
                for w in buf[..n].chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let b = x.to_le_bytes();
                    w.copy_from_slice(&b[..w.len()]);
                }
                match fs.write(ctx, ino, off, &buf[..n]) {
                    Ok(got) => {
                        off += got as u64;
                        if got < n {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NoSpace && cmd == "fill" => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            if cmd == "fill" {
                println!("{off}");
            }
        }
        other => return Err(format!("unknown command {other}")),
    }
    fs.sync().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xfs_files: {e}");
            ExitCode::FAILURE
        }
    }
}
