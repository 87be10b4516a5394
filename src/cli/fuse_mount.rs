//! `ebsim mount IMAGE[@PART] DIR` and `ebsim umount DIR` on the host: an
//! image (or partition N of it) served at a directory through FUSE, as
//! fuse2fs serves one, for real tools without root's loop devices.
//!
//! ```text
//! ebsim mount [-f] [-o OPT[,OPT...]] IMAGE[@PART] DIR [-o ...]
//! ```
//! Options: `ro`, `rw`, `allow_other`, `suid`/`nosuid`, `dev`/`nodev`,
//! `exec`/`noexec`, `atime`/`noatime`, `commit=SECONDS` (the commit
//! interval), `default_permissions` (always on). `-f` stays in the
//! foreground; otherwise the server daemonizes and the command returns once
//! the mount is live. Unmount with `ebsim umount DIR` (which waits for the
//! final commit), `umount DIR` or `fusermount -u DIR` (which return before
//! it). SIGTERM, SIGINT or SIGHUP commit and unmount.
//!
//! Exit codes follow fuse2fs 1.47.0's: 1 for usage errors, 2 when the
//! image cannot be opened or holds no ext4/XFS, 3 when the filesystem is
//! there but refused (journal needing recovery, a feature ebsim does not
//! write); ebsim also exits 1 when the kernel refuses the mount (fuse2fs
//! 1.47.0 ignores fuse_main's failure and exits 0).

use super::output::{err, out};
use ebsim::fuse::{self, CommitPolicy, MountConfig, Volume, VolumeError, VolumeSpec, kernel};
use nix::sys::signal::{SigSet, Signal};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const READY_ENV: &str = "EBSIM_MOUNT_DAEMON";

const HELP: &str = "Usage:
 ebsim mount [-f] [-o OPTIONS] IMAGE[@PART] DIR
 ebsim mount IMAGE[@PART] DIR [-o OPTIONS] [-f]     (fuse2fs's order)

Serve the ext4 or XFS filesystem of IMAGE (or of its partition PART) at DIR
through FUSE, read-write unless -o ro. The server holds the image while
mounted: resize2fs and xfs_growfs of it reach the server and grow the
mounted filesystem online.

Options:
 -f                 stay in the foreground (default: return once mounted)
 -o ro|rw           read-only or read-write (default rw)
 -o allow_other     let other users in (default when run as root)
 -o commit=SECONDS  commit staged changes at least this often (default 5)
 -o nosuid,nodev,noexec,noatime and their opposites
 -h, --help         this help

Unmount with `ebsim umount DIR` (waits for the last commit), `umount DIR`
or `fusermount -u DIR`. The mount's type is fuse.ebsim, its source the image.
";

/// True when these `mount` arguments name a host image (an existing regular
/// file, possibly with `@PART`): the FUSE mount, not the instance's mount.
pub fn is_host_mount(args: &[OsString]) -> bool {
    // Inside the guest namespace /dev/xvdf is a file too (the image bound
    // there): every mount there is the instance's.
    if std::env::var_os(super::guest_ns::NS_ENV).is_some() {
        return false;
    }
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    let mut operands = Vec::new();
    while i < words.len() {
        let w = &words[i];
        if w == "-o" || w == "-t" {
            i += 2;
            continue;
        }
        if !w.starts_with('-') {
            operands.push(w.clone());
        }
        i += 1;
    }
    operands.len() == 2
        && split_part(&operands[0])
            .is_some_and(|(p, _)| p.is_file() || ebsim::blockdev::segmented::is_segmented(&p))
}

/// `IMAGE@N` → (IMAGE, Some(N)) when IMAGE exists; a path that exists as
/// written wins over a split.
fn split_part(s: &str) -> Option<(PathBuf, Option<u32>)> {
    let whole = PathBuf::from(s);
    if whole.exists() {
        return Some((whole, None));
    }
    let (img, n) = s.rsplit_once('@')?;
    let n: u32 = n.parse().ok().filter(|n| *n > 0)?;
    Some((PathBuf::from(img), Some(n)))
}

struct Opts {
    foreground: bool,
    read_only: bool,
    allow_other: Option<bool>,
    nosuid: bool,
    nodev: bool,
    noexec: bool,
    noatime: bool,
    commit: Option<u64>,
    operands: Vec<String>,
}

fn usage(msg: &str) -> i32 {
    err(&format!(
        "ebsim mount: {msg}\nTry 'ebsim mount --help' for more information.\n"
    ));
    1
}

fn parse(args: &[String]) -> Result<Opts, i32> {
    let mut o = Opts {
        foreground: false,
        read_only: false,
        allow_other: None,
        nosuid: true,
        nodev: true,
        noexec: false,
        noatime: false,
        commit: None,
        operands: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let mut list: Option<String> = None;
        match a.as_str() {
            "-h" | "--help" => {
                out(HELP);
                return Err(0);
            }
            "-f" => o.foreground = true,
            "-r" => o.read_only = true,
            "-w" => o.read_only = false,
            "-o" => {
                let Some(v) = args.get(i + 1) else {
                    return Err(usage("option requires an argument -- 'o'"));
                };
                list = Some(v.clone());
                i += 1;
            }
            s if s.starts_with("-o") => list = Some(s[2..].to_string()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage(&format!("unknown option '{s}'")));
            }
            _ => o.operands.push(a.clone()),
        }
        for opt in list
            .iter()
            .flat_map(|l| l.split(','))
            .filter(|x| !x.is_empty())
        {
            match opt {
                "ro" => o.read_only = true,
                "rw" => o.read_only = false,
                "allow_other" => o.allow_other = Some(true),
                "suid" => o.nosuid = false,
                "nosuid" => o.nosuid = true,
                "dev" => o.nodev = false,
                "nodev" => o.nodev = true,
                "exec" => o.noexec = false,
                "noexec" => o.noexec = true,
                "atime" | "relatime" | "strictatime" => o.noatime = false,
                "noatime" => o.noatime = true,
                "default_permissions" | "defaults" | "async" | "auto" | "nofail" => {}
                s if s.starts_with("commit=") => match s[7..].parse::<u64>() {
                    Ok(n) => o.commit = Some(n),
                    Err(_) => return Err(usage(&format!("bad value in '{s}'"))),
                },
                s => return Err(usage(&format!("unknown mount option '{s}'"))),
            }
        }
        i += 1;
    }
    if o.operands.len() != 2 {
        return Err(usage(if o.operands.len() < 2 {
            "an image and a mount point are needed"
        } else {
            "too many operands"
        }));
    }
    Ok(o)
}

/// `ebsim mount` of a host image.
pub fn run(args: Vec<OsString>) -> i32 {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let o = match parse(&words) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let Some((image, part)) = split_part(&o.operands[0]) else {
        err(&format!(
            "ebsim mount: {}: No such file or directory\n",
            o.operands[0]
        ));
        return 2;
    };
    let image = std::path::absolute(&image).unwrap_or(image);
    let dir = PathBuf::from(&o.operands[1]);
    let dir = match std::fs::canonicalize(&dir) {
        Ok(d) if d.is_dir() => d,
        Ok(_) => {
            err(&format!(
                "ebsim mount: {}: Not a directory\n",
                dir.display()
            ));
            return 1;
        }
        Err(e) => {
            err(&format!(
                "ebsim mount: {}: {}\n",
                dir.display(),
                super::output::strerror(&e)
            ));
            return 1;
        }
    };
    if o.foreground || std::env::var_os(READY_ENV).is_some() {
        serve(&o, image, part, dir)
    } else {
        daemonize(&words, &image, part, &dir)
    }
}

/// Starts the server as a child in the foreground mode, returns once it
/// says the mount is live (or with its error and exit code).
fn daemonize(words: &[String], image: &Path, part: Option<u32>, dir: &Path) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            err(&format!("ebsim mount: cannot find ebsim itself: {e}\n"));
            return 1;
        }
    };
    // Absolute paths: the daemon leaves the working directory.
    let source = match part {
        Some(n) => format!("{}@{n}", image.display()),
        None => image.display().to_string(),
    };
    let mut argv: Vec<String> = vec!["mount".into()];
    let mut i = 0;
    let mut ops = 0;
    while i < words.len() {
        let w = &words[i];
        if w == "-o" {
            argv.push(w.clone());
            if let Some(v) = words.get(i + 1) {
                argv.push(v.clone());
            }
            i += 2;
            continue;
        }
        if w.starts_with('-') {
            argv.push(w.clone());
        } else {
            argv.push(if ops == 0 {
                source.clone()
            } else {
                dir.display().to_string()
            });
            ops += 1;
        }
        i += 1;
    }
    let mut child = match Command::new(exe)
        .args(&argv)
        .env(READY_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/")
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            err(&format!("ebsim mount: cannot start the server: {e}\n"));
            return 1;
        }
    };
    let mut ready = false;
    if let Some(so) = child.stdout.take() {
        let mut line = String::new();
        if BufReader::new(so).read_line(&mut line).is_ok() && line == "ready\n" {
            ready = true;
        }
    }
    if ready {
        return 0;
    }
    let mut msg = String::new();
    if let Some(mut se) = child.stderr.take() {
        let _ = se.read_to_string(&mut msg);
    }
    err(&msg);
    match child.wait() {
        Ok(s) => s.code().unwrap_or(1).max(1),
        Err(_) => 1,
    }
}

fn open_volume(image: PathBuf, part: Option<u32>, read_only: bool) -> Result<Volume, i32> {
    let shown = image.display().to_string();
    match Volume::open(VolumeSpec {
        image,
        part,
        read_only,
    }) {
        Ok(v) => Ok(v),
        Err(e @ VolumeError::Refused { .. }) => {
            err(&format!("ebsim mount: {e}\n"));
            Err(3)
        }
        Err(e @ VolumeError::NoFilesystem(_)) => {
            err(&format!("ebsim mount: {e} (ebsim serves ext4 and XFS)\n"));
            Err(2)
        }
        Err(e) => {
            err(&format!("ebsim mount: {shown}: {e}\n"));
            Err(2)
        }
    }
}

/// The server itself (foreground, or the daemon's child).
fn serve(o: &Opts, image: PathBuf, part: Option<u32>, dir: PathBuf) -> i32 {
    let daemon = std::env::var_os(READY_ENV).is_some();
    // Signals go to one thread that commits and unmounts; block them here
    // before any thread starts, so every thread inherits the mask.
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    let _ = sigs.thread_block();
    // One process serves an image (its lock, its undo log, its handle are
    // that process's): a second process cannot join it, and would wait
    // for the lock for ever.
    if let Ok(Some(info)) = fuse::control::info(&image) {
        let what: Vec<String> = info
            .served
            .iter()
            .map(|(p, mp)| match p {
                Some(n) => format!("partition {n} at {}", mp.display()),
                None => format!("the whole image at {}", mp.display()),
            })
            .collect();
        err(&format!(
            "ebsim mount: {}: busy: served by ebsim mount (pid {}): {}; \
             one process serves all the mounted filesystems of an image, and \
             another process cannot join it: unmount first\n",
            image.display(),
            info.pid,
            what.join(", ")
        ));
        return 1;
    }
    let vol = match open_volume(image.clone(), part, o.read_only) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let euid_root = nix::unistd::geteuid().is_root();
    let mut policy = CommitPolicy::default();
    if let Some(s) = o.commit {
        policy.interval = Duration::from_secs(s.max(1));
    }
    let cfg = MountConfig {
        mountpoint: dir.clone(),
        flags: kernel::MountFlags {
            read_only: o.read_only,
            allow_other: o.allow_other.unwrap_or(euid_root),
            nosuid: o.nosuid,
            nodev: o.nodev,
            noexec: o.noexec,
            noatime: o.noatime,
            fsname: image.display().to_string(),
            root_mode: 0o040755,
        },
        policy,
        control_image: Some(image.clone()),
        part,
    };
    let mounted = match fuse::mount(Box::new(vol), &cfg) {
        Ok(m) => m,
        Err(e) => {
            err(&format!("ebsim mount: {e}\n"));
            return 1;
        }
    };
    let handle = mounted.handle();
    std::thread::spawn(move || {
        if sigs.wait().is_ok() {
            let _ = handle.sync();
            let _ = handle.unmount();
            // Still busy after a while: the changes are committed; end the
            // server (users of the mount then see it disconnected).
            std::thread::sleep(Duration::from_secs(3));
            let _ = handle.sync();
            std::process::exit(0);
        }
    });
    if daemon {
        out("ready\n");
        // Nobody reads our output from now on.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
    match mounted.run() {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("ebsim mount: {e}\n"));
            1
        }
    }
}

/// `ebsim umount DIR` for an ebsim FUSE mount on the host: the server
/// commits, unmounts and exits before this returns. None: not such a
/// mount (the instance's umount takes it).
pub fn umount_host(args: &[OsString]) -> Option<i32> {
    if std::env::var_os(super::guest_ns::NS_ENV).is_some() {
        return None;
    }
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let operands: Vec<&String> = words.iter().filter(|w| !w.starts_with('-')).collect();
    let lazy = words.iter().any(|w| w == "-l" || w == "--lazy");
    if operands.len() != 1 {
        return None;
    }
    let dir = Path::new(operands[0]);
    let m = kernel::ebsim_mount_at(dir)?;
    let image = PathBuf::from(&m.source);
    // One server serves every mounted partition of an image: the one
    // mounted at DIR is unmounted, and the server ends with its last.
    let info = fuse::control::info(&image).ok().flatten();
    let target = fuse::absolute(&m.target);
    let part = info.as_ref().and_then(|i| {
        i.served
            .iter()
            .find(|(_, mp)| fuse::absolute(mp) == target)
            .map(|(p, _)| *p)
    });
    let last = info.as_ref().is_none_or(|i| i.served.len() <= 1);
    let pid = info.filter(|_| last).map(|i| i.pid);
    if !lazy {
        let req = fuse::control::Request::Unmount {
            part: part.flatten(),
        };
        match fuse::control::request(&image, &req) {
            Ok(_) => {
                if let Some(pid) = pid {
                    wait_exit(pid);
                }
                return Some(0);
            }
            Err(fuse::control::ControlError::NotServed(_)) => {}
            Err(e) => {
                err(&format!("umount: {}: {e}\n", m.target.display()));
                return Some(32);
            }
        }
    }
    match kernel::unmount(&m.target, lazy) {
        Ok(()) => {
            if let (Some(pid), false) = (pid, lazy) {
                wait_exit(pid);
            }
            Some(0)
        }
        Err(e) => {
            err(&format!("umount: {}: {}.\n", m.target.display(), e.desc()));
            Some(32)
        }
    }
}

/// Waits (up to a minute) for a server process to be gone, so the image's
/// lock is free when umount returns.
fn wait_exit(pid: u32) {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    for _ in 0..6000 {
        match std::fs::read_to_string(proc.join("stat")) {
            Ok(s) if !s.contains(") Z ") => std::thread::sleep(Duration::from_millis(10)),
            _ => return,
        }
    }
}

/// The server of a host image or mount point, when `ebsim mount` serves it:
/// `target` is an image file (its control socket answers) or the directory
/// of a `fuse.ebsim` mount (its source is the image). Another process than
/// the server must never write a served image: the tools reach the server
/// instead, as the real ones reach the kernel through ioctls.
pub fn served(target: &str) -> Option<(PathBuf, fuse::control::Info)> {
    let p = Path::new(target);
    let image = if p.is_dir() && !ebsim::blockdev::segmented::is_segmented(p) {
        PathBuf::from(kernel::ebsim_mount_at(p)?.source)
    } else if p.is_file() || ebsim::blockdev::segmented::is_segmented(p) {
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    } else {
        return None;
    };
    let info = fuse::control::info(&image).ok().flatten()?;
    // A mount point names the filesystem mounted there (one server serves
    // every mounted partition of the image).
    if p.is_dir() && !ebsim::blockdev::segmented::is_segmented(p) {
        let dir = fuse::absolute(p);
        if let Some((part, _)) = info.served.iter().find(|(_, mp)| fuse::absolute(mp) == dir) {
            if *part != info.part {
                let other = fuse::control::info_of(&image, *part).ok().flatten()?;
                return Some((image, other));
            }
        }
    }
    Some((image, info))
}
