//! The guest namespace of `ebsim shell` and `ebsim exec`: the guest's
//! commands run in their own user, mount, UTS and PID namespaces, where `/`
//! and every mount point of the instance's mount table are the guest's
//! filesystems served by ebsim over FUSE, and the host is out of reach.
//!
//! Three processes, each a run of this binary (no code runs between fork
//! and exec, so no unsafe code is needed):
//!
//! 1. **the caller** (`ebsim shell`): checks what the host allows, then
//!    `unshare(USER|NS|UTS|PID)`, maps its uid and gid to 0 and starts
//!    2. It forwards SIGTERM/SIGHUP to it and exits with its status.
//! 2. **init** (`ebsim __guest-init`, PID 1 of the new PID namespace): makes
//!    every mount private, sets the hostname, serves the instance's root
//!    filesystem at a staging directory under `EBSIM_HOME/.ns/`, runs the
//!    boot's `mount -a` on the guest's own `/etc/fstab`, serves each mount
//!    of the table at its mount point, binds the host's userland read-only,
//!    builds `/dev`, `/proc` (with a generated `/proc/partitions`, bound as
//!    LXCFS binds its files) and `/run`, then starts 3. It keeps serving:
//!    `mount`, `umount` and `reboot` inside the guest reach it through
//!    `/run/ebsim/init.sock` (the guest's mount table lives in the EC2
//!    model; init makes the namespace's real mounts follow it). When 3
//!    exits (or on SIGTERM/SIGHUP) every server commits and unmounts, last
//!    mounted first.
//! 3. **enter** (`ebsim __guest-enter`): a private copy of init's mounts
//!    (a slave, so later mounts of init reach it), `pivot_root` into the
//!    staging directory, the old root detached, then CAP_SYS_ADMIN dropped
//!    from the bounding set, so the guest's root can neither remount the
//!    host's binds read-write nor unmount them to see what is under them
//!    (a nested user namespace would lock the mounts instead, but the
//!    kernel does not propagate an unmount to locked mounts, so init's
//!    `umount` would never reach the guest). Then it execs the shell or the
//!    command.
//!
//! What backs the guest's devices: a whole disk (`/dev/xvda`) is the
//! volume's image file bound onto a file in `/dev`; a partition
//! (`/dev/xvda1`) is a file of a read-only FUSE filesystem that init serves
//! at `/run/ebsim/parts` ([`ebsim::fuse::partitions`]), bound onto a file in
//! `/dev`: its bytes are the partition's bytes in the image (what is
//! committed; a served filesystem's pending changes are not), its size
//! follows the table after growpart or sfdisk, and a write is refused
//! (EROFS: a raw write would bypass the server and the undo log). ebsim's
//! applets still resolve these nodes by name. The nodes of a deleted
//! partition are removed, and a new partition's node made, when the mount
//! table is refreshed (growpart, mount and umount ask init to).

use super::output::err;
use ebsim::ec2::DEFAULT_REGION;
use ebsim::fs::vfat_files::FatOptions;
use ebsim::fuse::{self, CommitPolicy, MountConfig, Volume, VolumeSpec, kernel};
use ebsim::guest::Context;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set inside the guest: the init's socket (`/run/ebsim/init.sock`).
pub const NS_ENV: &str = "EBSIM_GUEST_NS";
/// Simulates a host that forbids the guest: `userns`, `apparmor`, `fuse`
/// or `linux` (for tests of the refusal and of `--host-mode`).
pub const SIMULATE_ENV: &str = "EBSIM_SIMULATE_MISSING";
const PLAN_ENV: &str = "EBSIM_GUEST_PLAN";
const GUEST_HOME: &str = "/run/ebsim/home";
const GUEST_EXE: &str = "/run/ebsim/ebsim";
const GUEST_SOCK: &str = "/run/ebsim/init.sock";
const GUEST_PATH: &str =
    "/run/ebsim/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The applets first on the guest's PATH: the tools ebsim emulates. Every
/// other command is the host's program, acting on the guest's files.
pub const NS_APPLETS: &[&str] = &[
    "lsblk",
    "blkid",
    "df",
    "growpart",
    "resize2fs",
    "xfs_growfs",
    "xfs_info",
    "mkfs",
    "mkfs.ext4",
    "mkfs.ext3",
    "mkfs.ext2",
    "mke2fs",
    "mkfs.xfs",
    "mount",
    "umount",
    "findmnt",
    "sudo",
    "aws",
    "ebsim",
    "reboot",
];

/// What the host lacks for the guest namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Not Linux.
    NotLinux,
    /// User namespaces are off.
    UserNs(String),
    /// Ubuntu's AppArmor restriction of unprivileged user namespaces.
    AppArmor,
    /// No usable `/dev/fuse`.
    Fuse(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NotLinux => write!(
                f,
                "the guest needs Linux namespaces and FUSE, and this is not Linux"
            ),
            Missing::UserNs(why) => write!(
                f,
                "user namespaces are not available: {why} (enable them with \
                 'sudo sysctl -w user.max_user_namespaces=15000' and, on Debian kernels, \
                 'sudo sysctl -w kernel.unprivileged_userns_clone=1')"
            ),
            Missing::AppArmor => write!(
                f,
                "AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later): \
                 give ebsim an AppArmor profile that allows 'userns,' (as bubblewrap's), or \
                 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0'"
            ),
            Missing::Fuse(why) => write!(f, "{why}"),
        }
    }
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// What the host lacks for the guest namespace, if anything (checked before
/// anything is changed).
pub fn probe() -> Result<(), Missing> {
    match std::env::var(SIMULATE_ENV).ok().as_deref() {
        Some("linux") => return Err(Missing::NotLinux),
        Some("userns") => {
            return Err(Missing::UserNs(
                "/proc/sys/user/max_user_namespaces is 0".into(),
            ));
        }
        Some("apparmor") => return Err(Missing::AppArmor),
        Some("fuse") => {
            return Err(Missing::Fuse(
                kernel::MountError::DeviceDenied { mode: 0o600 }.to_string(),
            ));
        }
        _ => {}
    }
    if !cfg!(target_os = "linux") {
        return Err(Missing::NotLinux);
    }
    let root = nix::unistd::geteuid().is_root();
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err(Missing::UserNs(
            "/proc/sys/user/max_user_namespaces is 0".into(),
        ));
    }
    if !root {
        if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            return Err(Missing::UserNs(
                "/proc/sys/kernel/unprivileged_userns_clone is 0".into(),
            ));
        }
        if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
        {
            return Err(Missing::AppArmor);
        }
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Missing::Fuse(kernel::MountError::NoDevice.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata("/dev/fuse")
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0);
            Err(Missing::Fuse(
                kernel::MountError::DeviceDenied { mode }.to_string(),
            ))
        }
        Err(e) => Err(Missing::Fuse(format!("/dev/fuse: {e}"))),
    }
}

/// What the caller hands init and enter.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    instance: String,
    user: String,
    hostname: String,
    prompt: String,
    host_home: PathBuf,
    stage: PathBuf,
    exe: PathBuf,
    /// `exec`'s command; None: an interactive shell.
    command: Option<Vec<String>>,
}

/// The prompt of the image's shell (bash's PS1 as the image sets it).
fn prompt_of(flavour: Option<&str>, user: &str, host: &str) -> String {
    match flavour {
        Some(f) if f.starts_with("ubuntu") => format!("{user}@{host}:\\w\\$ "),
        _ => format!("[{user}@{host} \\W]\\$ "),
    }
}

/// `ip-172-31-1-2` from the instance's private address.
fn hostname_of(ip: &str) -> String {
    format!("ip-{}", ip.replace('.', "-"))
}

/// `ebsim shell` / `ebsim exec` in the guest namespace. `command` None:
/// an interactive shell.
pub fn run(prog: &str, instance: &str, command: Option<Vec<OsString>>) -> i32 {
    if let Err(m) = probe() {
        err(&format!(
            "ebsim {prog}: cannot build the guest: {m}\n\
             ebsim {prog}: or run 'ebsim {prog} --host-mode ...': ebsim's applets then act on the \
             instance, and every other command acts on this host\n"
        ));
        return 1;
    }
    match start(prog, instance, command) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("ebsim {prog}: cannot build the guest: {e}\n"));
            1
        }
    }
}

fn start(_prog: &str, instance: &str, command: Option<Vec<OsString>>) -> Result<i32, String> {
    let ec2 = super::env::ec2(DEFAULT_REGION).map_err(|e| super::env::why(&e))?;
    let (flavour, ip) = ec2
        .transact(|txn| {
            let i = txn.instance(instance)?;
            Ok((i.flavour.clone(), i.private_ip.clone()))
        })
        .map_err(|e| super::env::why(&e))?;
    let user = ebsim::ec2::catalog::login_user(flavour.as_deref()).to_string();
    let hostname = hostname_of(&ip);
    let home = super::env::home().map_err(|e| super::env::why(&e))?;
    let host_home = std::path::absolute(home.root()).map_err(|e| e.to_string())?;
    if let Some(code) = join(instance, &host_home, command.as_deref())? {
        return Ok(code);
    }
    let stage = host_home.join(".ns").join(std::process::id().to_string());
    std::fs::create_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ebsim itself: {e}"))?;
    let plan = Plan {
        instance: instance.to_string(),
        prompt: prompt_of(flavour.as_deref(), &user, &hostname),
        user,
        hostname,
        host_home,
        stage: stage.clone(),
        exe: exe.clone(),
        command: command.map(|c| c.iter().map(|a| a.to_string_lossy().into_owned()).collect()),
    };
    let json = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
    // Signals to forward, and SIGCHLD: blocked, then waited for on this
    // thread (no thread can start once the PID namespace is unshared).
    let sigs = block_forwarded_signals();
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    // Root on the host maps every id (through a helper left outside the
    // namespace: only a process with CAP_SETUID in the parent namespace may
    // map more than its own id), so the guest's root may read and write
    // files whatever their owner, as on EC2. Others map their own id only:
    // files of other owners then show as nobody.
    let mapper = if uid.is_root() {
        Command::new(&exe)
            .arg("__guest-maps")
            .arg(std::process::id().to_string())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .ok()
    } else {
        None
    };
    nix::sched::unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWPID,
    )
    .map_err(|e| format!("unshare(user, mount, uts, pid namespaces): {e}"))?;
    let mapped = mapper.is_some_and(|mut m| {
        let told = m
            .stdin
            .take()
            .is_some_and(|mut w| w.write_all(b"go\n").is_ok());
        told && m.wait().is_ok_and(|st| st.success())
    });
    if !mapped {
        write_maps(&format!("0 {uid} 1"), &format!("0 {gid} 1"))?;
    }
    pin_to_one_cpu();
    let mut child = Command::new(&exe)
        .arg("__guest-init")
        .env(PLAN_ENV, &json)
        .spawn()
        .map_err(|e| format!("cannot start the guest's init: {e}"))?;
    let status = wait_forwarding(&mut child, &sigs)?;
    let _ = std::fs::remove_dir(&stage);
    Ok(exit_code(status))
}

/// A shell's exit code for a child's status (128 + the signal that killed
/// it).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Blocks the signals a session forwards to its guest (SIGTERM, SIGHUP),
/// SIGINT (the terminal's ^C reaches the guest's own processes) and SIGCHLD
/// (which ends [`wait_forwarding`]'s wait).
fn block_forwarded_signals() -> SigSet {
    let mut sigs = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGCHLD,
    ] {
        sigs.add(s);
    }
    let _ = sigs.thread_block();
    sigs
}

/// Waits for `child`, passing on SIGTERM and SIGHUP.
fn wait_forwarding(
    child: &mut std::process::Child,
    sigs: &SigSet,
) -> Result<std::process::ExitStatus, String> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(st);
        }
        if let Ok(s @ (Signal::SIGTERM | Signal::SIGHUP)) = sigs.wait() {
            let _ = nix::sys::signal::kill(pid, s);
        }
    }
}

/// The socket on which the init of an instance's running guest takes
/// more sessions (beside the stages, in the host's view of the state
/// directory, which init's mount namespace shares).
fn join_socket(host_home: &Path, instance: &str) -> PathBuf {
    host_home.join(".ns").join(format!("{instance}.join"))
}

/// Another session of an instance whose guest is running, as a second ssh
/// login is: when the instance's init answers on its join socket, this
/// process enters init's user, mount, UTS and PID namespaces (and its CPU),
/// runs the shell or the command there as the first session's was run, and
/// keeps the connection open while it lasts, so that the guest stays up
/// until every session has ended. None: no guest of the instance is
/// running, so this session builds one.
fn join(
    instance: &str,
    host_home: &Path,
    command: Option<&[OsString]>,
) -> Result<Option<i32>, String> {
    let path = join_socket(host_home, instance);
    let Ok(conn) = UnixStream::connect(&path) else {
        return Ok(None);
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", path.display());
    // The kernel tells who listens there (as this namespace numbers it).
    let creds = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| fail("peer credentials", &e))?;
    let init_pid = creds.pid();
    // init answers at once; a wedged one is not waited for without end.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new(&conn)
        .read_line(&mut line)
        .map_err(|e| fail("read", &e))?;
    let mut plan: Plan = serde_json::from_str(line.trim_end()).map_err(|e| fail("plan", &e))?;
    if plan.instance != instance {
        return Err(fail("answered for", &plan.instance));
    }
    plan.command = command.map(|c| c.iter().map(|a| a.to_string_lossy().into_owned()).collect());
    let json = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
    let sigs = block_forwarded_signals();
    let init = nix::unistd::Pid::from_raw(init_pid);
    if let Ok(cpus) = nix::sched::sched_getaffinity(init) {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpus);
    }
    for (name, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("pid", CloneFlags::CLONE_NEWPID),
    ] {
        let ns = format!("/proc/{init_pid}/ns/{name}");
        let f = std::fs::File::open(&ns).map_err(|e| format!("{ns}: {e}"))?;
        nix::sched::setns(&f, flag).map_err(|e| format!("setns({ns}): {e}"))?;
    }
    let mut child = Command::new(&plan.exe)
        .arg("__guest-enter")
        .env(PLAN_ENV, &json)
        .spawn()
        .map_err(|e| format!("cannot start the guest: {e}"))?;
    let status = wait_forwarding(&mut child, &sigs)?;
    drop(conn);
    use std::os::unix::process::ExitStatusExt;
    if status.signal() == Some(Signal::SIGKILL as i32) {
        // init ended the guest (a reboot, or the instance stopped).
        err(&format!(
            "Connection to {} closed by remote host.\n",
            plan.hostname
        ));
        return Ok(Some(255));
    }
    Ok(Some(exit_code(status)))
}

/// Turns off [`pin_to_one_cpu`]: `EBSIM_GUEST_PIN=0`.
pub const PIN_ENV: &str = "EBSIM_GUEST_PIN";

/// Keeps the guest's processes and the FUSE servers that serve them on the
/// CPU this process runs on (init and the guest inherit the mask).
///
/// Every file operation of the guest is a synchronous round trip to a
/// server thread: the guest sleeps until the server replies. When the two
/// sit on different CPUs each round trip costs a cross-CPU wake-up (an
/// inter-processor interrupt, a VM exit under a hypervisor), and those
/// wake-ups dominate: a `tar -x` of 8,800 small files took 6.4 s spread
/// over two vCPUs and 1.2 s on one (`scripts/bench-guest.sh`). The cost is
/// that the guest's own work runs on one CPU (`nproc` says 1, as on a
/// one-vCPU instance); `EBSIM_GUEST_PIN=0` keeps the host's full mask.
fn pin_to_one_cpu() {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    if std::env::var_os(PIN_ENV).is_some_and(|v| v == "0") {
        return;
    }
    let me = nix::unistd::Pid::from_raw(0);
    let Ok(allowed) = sched_getaffinity(me) else {
        return;
    };
    let usable: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    // The CPU we are on now (field 39 of /proc/self/stat), so that guests
    // started side by side spread the way the scheduler spread them.
    let current = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after_comm = &s[s.rfind(')')? + 1..];
            after_comm.split_whitespace().nth(36)?.parse::<usize>().ok()
        })
        .filter(|c| usable.contains(c));
    let Some(cpu) = current.or_else(|| usable.first().copied()) else {
        return;
    };
    let mut one = CpuSet::new();
    if one.set(cpu).is_ok() {
        // Best effort: a guest that cannot be pinned still runs, slower.
        let _ = sched_setaffinity(me, &one);
    }
}

/// `ebsim __guest-maps PID`: waits for a line on stdin (the caller has
/// entered its new user namespace), then maps every uid and gid of it to
/// the same id outside. Run by host root only; exit 1 if the kernel refuses.
pub fn run_maps(args: Vec<OsString>) -> i32 {
    let Some(pid) = args
        .get(1)
        .and_then(|p| p.to_str())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return 2;
    };
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() || line.trim() != "go" {
        return 1;
    }
    let all = "0 0 4294967295";
    let ok = std::fs::write(format!("/proc/{pid}/uid_map"), all).is_ok()
        && std::fs::write(format!("/proc/{pid}/gid_map"), all).is_ok();
    if ok { 0 } else { 1 }
}

fn write_maps(uid_map: &str, gid_map: &str) -> Result<(), String> {
    let apparmor = || {
        read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
    };
    let write = |path: &str, text: &str| {
        std::fs::write(path, text).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied && apparmor() {
                Missing::AppArmor.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
    };
    write("/proc/self/setgroups", "deny")?;
    write("/proc/self/uid_map", uid_map)?;
    write("/proc/self/gid_map", gid_map)
}

fn plan_from_env() -> Result<Plan, String> {
    let text = std::env::var(PLAN_ENV).map_err(|_| format!("{PLAN_ENV} is not set"))?;
    serde_json::from_str(&text).map_err(|e| format!("{PLAN_ENV}: {e}"))
}

fn sys(what: &str, path: &Path, e: nix::errno::Errno) -> String {
    format!("{what} {}: {}", path.display(), e.desc())
}

fn bind(src: &Path, dst: &Path, read_only: bool, recursive: bool) -> Result<(), String> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    nix::mount::mount(Some(src), dst, None::<&str>, flags, None::<&str>)
        .map_err(|e| sys(&format!("bind {} on", src.display()), dst, e))?;
    if read_only {
        // A remount must keep the flags the kernel locked on the copy of
        // the host's mount (nodev, nosuid, ...).
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Ok(st) = nix::sys::statvfs::statvfs(dst) {
            use nix::sys::statvfs::FsFlags;
            for (f, m) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(f) {
                    flags |= m;
                }
            }
        }
        nix::mount::mount(None::<&str>, dst, None::<&str>, flags, None::<&str>)
            .map_err(|e| sys("remount read-only", dst, e))?;
    }
    Ok(())
}

fn tmpfs(dst: &Path, mode: &str) -> Result<(), String> {
    nix::mount::mount(
        Some("tmpfs"),
        dst,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(mode),
    )
    .map_err(|e| sys("mount tmpfs on", dst, e))
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

fn touch(p: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(p).is_ok() {
        return Ok(());
    }
    std::fs::File::create(p)
        .map(drop)
        .map_err(|e| format!("create {}: {e}", p.display()))
}

fn symlink(target: &str, link: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(link).is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("ln -s {}: {e}", link.display()))
}

/// One filesystem served at a mount point of the guest.
struct Served {
    mount: ebsim::ec2::model::Mount,
    /// The server; None for a second mount of a filesystem already served
    /// (a bind of the first, as the kernel shows one filesystem twice).
    server: Option<Server>,
}

struct Server {
    handle: fuse::Handle,
    thread: std::thread::JoinHandle<Result<(), fuse::ServeError>>,
}

/// Init's state shared with its socket thread.
struct Init {
    plan: Plan,
    served: Mutex<Vec<Served>>,
    /// The guest's main process (to end on reboot).
    guest: Mutex<Option<nix::unistd::Pid>>,
    reboot: Mutex<bool>,
    /// Sessions that joined this guest ([`join`]) and have not ended.
    joined: Mutex<usize>,
    /// A signal told init to end the guest.
    stopping: std::sync::atomic::AtomicBool,
    /// The read-only filesystem of partitions whose files back the
    /// partition nodes of `/dev`.
    parts: Mutex<Option<PartNodes>>,
}

/// The partitions filesystem and the `/dev` nodes bound to its files.
struct PartNodes {
    served: fuse::partitions::Served,
    /// The names of the nodes bound (checked without a stat, which would
    /// be a round trip to the server).
    bound: Mutex<std::collections::HashSet<String>>,
}

impl PartNodes {
    fn is_bound(&self, name: &str) -> bool {
        self.bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Binds partition `name`'s file onto `node` (an existing file); a
    /// failure leaves the node an empty placeholder.
    fn bind(&self, name: &str, node: &Path) {
        if bind(&self.served.mountpoint.join(name), node, false, false).is_ok() {
            self.bound
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string());
        }
    }

    fn unbound(&self, name: &str) {
        self.bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

fn load_context(instance: &str) -> Result<Context, String> {
    let ec2 = super::env::ec2(DEFAULT_REGION).map_err(|e| super::env::why(&e))?;
    Context::load(&ec2, Some(instance)).map_err(|e| super::env::why(&e))
}

/// `ebsim __guest-init` (hidden): the namespace's PID 1.
pub fn run_init() -> i32 {
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        sigs.add(s);
    }
    let _ = sigs.thread_block();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let plan = match plan_from_env() {
        Ok(p) => p,
        Err(e) => {
            err(&format!("ebsim: guest init: {e}\n"));
            return 1;
        }
    };
    let init = Arc::new(Init {
        plan,
        served: Mutex::new(Vec::new()),
        guest: Mutex::new(None),
        reboot: Mutex::new(false),
        joined: Mutex::new(0),
        stopping: std::sync::atomic::AtomicBool::new(false),
        parts: Mutex::new(None),
    });
    let code = match boot(&init, sigs) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("ebsim: cannot build the guest: {e}\n"));
            1
        }
    };
    shutdown(&init);
    if *init.reboot.lock().unwrap_or_else(|p| p.into_inner()) {
        let o = Command::new(&init.plan.exe)
            .args([
                "aws",
                "ec2",
                "reboot-instances",
                "--instance-ids",
                &init.plan.instance,
            ])
            .env(super::env::INSTANCE_ENV, &init.plan.instance)
            .output();
        if let Ok(o) = o {
            if !o.status.success() {
                err(&String::from_utf8_lossy(&o.stderr));
            }
        }
        err(&format!(
            "Connection to {} closed by remote host (the instance is rebooting; \
             'ebsim shell' again to log in).\n",
            init.plan.hostname
        ));
    }
    code
}

fn guest_dir(stage: &Path, target: &str) -> PathBuf {
    stage.join(target.trim_start_matches('/'))
}

fn serve(plan: &Plan, ctx: &Context, m: &ebsim::ec2::model::Mount) -> Result<Served, String> {
    let disk = ctx
        .disks
        .iter()
        .find(|d| d.view.volume_id == m.volume_id)
        .ok_or_else(|| format!("{}: the volume is not attached", m.source))?;
    let image = disk.view.image.clone();
    // A server of this image that is still ending (an unmount while a
    // process of the guest was using it) holds the image: wait a while
    // rather than for ever. Another partition of the image served by this
    // process is no obstacle: the new one joins its image handle and
    // control channel (one server per image).
    let t0 = Instant::now();
    let me = std::process::id();
    while let Ok(Some(info)) = fuse::control::info(&image) {
        if info.pid == me && !info.served.iter().any(|(p, _)| *p == m.partition) {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "{}: busy: still served at {}",
                m.source,
                info.mountpoint.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read_only = m.options.split(',').any(|o| o == "ro");
    // A FAT (the EFI system partition at /boot/efi) shows the owner and
    // modes its mount options give.
    let vol = Volume::open_with(
        VolumeSpec {
            image: image.clone(),
            part: m.partition,
            read_only,
        },
        FatOptions::from_mount_options(&m.options),
    )
    .map_err(|e| format!("{}: {e}", m.source))?;
    let cfg = MountConfig {
        mountpoint: guest_dir(&plan.stage, &m.target),
        flags: kernel::MountFlags {
            read_only,
            allow_other: true,
            nosuid: false,
            nodev: true,
            noexec: false,
            noatime: false,
            fsname: m.source.clone(),
            root_mode: 0o040755,
        },
        policy: CommitPolicy::default(),
        control_image: Some(image),
        part: m.partition,
    };
    let mounted = fuse::mount(Box::new(vol), &cfg).map_err(|e| e.to_string())?;
    let handle = mounted.handle();
    let thread = std::thread::spawn(move || mounted.run());
    Ok(Served {
        mount: m.clone(),
        server: Some(Server { handle, thread }),
    })
}

fn same(a: &ebsim::ec2::model::Mount, b: &ebsim::ec2::model::Mount) -> bool {
    a.target == b.target && a.volume_id == b.volume_id && a.partition == b.partition
}

/// Ends one server: commit, unmount (lazily when busy), wait a while for
/// the session's final commit.
fn stop(plan: &Plan, s: Served) {
    let Some(server) = s.server else {
        let dir = guest_dir(&plan.stage, &s.mount.target);
        let _ = nix::mount::umount2(&dir, MntFlags::MNT_DETACH);
        return;
    };
    let _ = server.handle.sync();
    let _ = server.handle.unmount();
    let t0 = Instant::now();
    while !server.thread.is_finished() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if server.thread.is_finished() {
        let _ = server.thread.join();
    }
}

/// Makes the namespace's mounts follow the instance's mount table: what
/// left the table is unmounted (last mounted first), what joined it is
/// served; a mount the namespace cannot make is taken out of the table
/// again and reported. Then `/dev` and `/proc/partitions` are refreshed.
fn reconcile(init: &Init) -> Result<(), String> {
    let plan = &init.plan;
    let ctx = load_context(&plan.instance)?;
    let mut served = init.served.lock().unwrap_or_else(|p| p.into_inner());
    let mut keep = Vec::new();
    let mut gone = Vec::new();
    for s in served.drain(..) {
        if ctx.mounts.iter().any(|m| same(m, &s.mount)) {
            keep.push(s);
        } else {
            gone.push(s);
        }
    }
    for mut s in gone.into_iter().rev() {
        // A filesystem still mounted elsewhere keeps its server: that
        // mount takes it over, and only this mount point goes.
        if let Some(other) = keep.iter_mut().find(|k| {
            k.server.is_none()
                && k.mount.volume_id == s.mount.volume_id
                && k.mount.partition == s.mount.partition
        }) {
            other.server = s.server.take();
        }
        stop(plan, s);
    }
    *served = keep;
    let mut errors = Vec::new();
    for m in &ctx.mounts {
        if served.iter().any(|s| same(m, &s.mount)) {
            continue;
        }
        // The same filesystem mounted again: a bind of its first mount.
        if let Some(first) = served.iter().find(|s| {
            s.server.is_some()
                && s.mount.volume_id == m.volume_id
                && s.mount.partition == m.partition
        }) {
            let from = guest_dir(&plan.stage, &first.mount.target);
            match bind(&from, &guest_dir(&plan.stage, &m.target), false, false) {
                Ok(()) => served.push(Served {
                    mount: m.clone(),
                    server: None,
                }),
                Err(e) => errors.push(format!("{}: {e}", m.target)),
            }
            continue;
        }
        match serve(plan, &ctx, m) {
            Ok(s) => served.push(s),
            Err(e) => {
                if let Ok(ec2) = super::env::ec2(DEFAULT_REGION) {
                    let _ = ebsim::guest::context::remove_mount(&ec2, &plan.instance, m);
                }
                errors.push(format!("{}: {e}", m.target));
            }
        }
    }
    drop(served);
    let parts = init.parts.lock().unwrap_or_else(|p| p.into_inner());
    let _ = devices(plan, &ctx, parts.as_ref());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn boot(init: &Arc<Init>, sigs: SigSet) -> Result<i32, String> {
    let plan = &init.plan;
    let stage = &plan.stage;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| sys("make private", Path::new("/"), e))?;
    nix::unistd::sethostname(&plan.hostname).map_err(|e| format!("sethostname: {e}"))?;
    // The root filesystem first.
    let ctx = load_context(&plan.instance)?;
    let root = ctx
        .mounts
        .iter()
        .find(|m| m.target == "/")
        .ok_or_else(|| format!("{}: nothing is mounted at /", plan.instance))?;
    let s = serve(plan, &ctx, root)?;
    init.served
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(s);
    // The guest's own files that the host's binds below would hide.
    let os_release = std::fs::read(stage.join("usr/lib/os-release")).ok();
    // /run: ebsim's applets, the state directory, the generated files.
    mkdir(&stage.join("run"))?;
    tmpfs(&stage.join("run"), "mode=755")?;
    let run = stage.join("run/ebsim");
    mkdir(&run.join("bin"))?;
    mkdir(&run.join("home"))?;
    mkdir(&stage.join("run/lock"))?;
    touch(&run.join("ebsim"))?;
    bind(&plan.exe, &run.join("ebsim"), true, false)?;
    for name in NS_APPLETS {
        symlink(GUEST_EXE, &run.join("bin").join(name))?;
    }
    bind(&plan.host_home, &run.join("home"), false, false)?;
    let rc = format!(
        "PS1='{}'\nPATH='{GUEST_PATH}'\nalias ls='ls --color=auto' 2>/dev/null\n",
        plan.prompt
    );
    std::fs::write(run.join("bashrc"), rc).map_err(|e| format!("bashrc: {e}"))?;
    // The host's userland, read-only.
    for top in ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(top);
        let guest = stage.join(top);
        let Ok(hm) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let gm = std::fs::symlink_metadata(&guest);
        if hm.file_type().is_symlink() {
            match gm {
                Err(_) => {
                    let t = std::fs::read_link(&host).map_err(|e| e.to_string())?;
                    symlink(&t.to_string_lossy(), &guest)?;
                }
                Ok(m) if m.is_dir() => {
                    let real = std::fs::canonicalize(&host).map_err(|e| e.to_string())?;
                    bind(&real, &guest, true, true)?;
                }
                Ok(_) => {}
            }
        } else if hm.is_dir() {
            match gm {
                Ok(m) if m.file_type().is_symlink() => {}
                Ok(_) => bind(&host, &guest, true, true)?,
                Err(_) => {
                    mkdir(&guest)?;
                    bind(&host, &guest, true, true)?;
                }
            }
        }
    }
    if let Some(text) = os_release {
        let copy = run.join("os-release");
        std::fs::write(&copy, text).map_err(|e| format!("os-release: {e}"))?;
        let target = stage.join("usr/lib/os-release");
        if target.is_file() {
            bind(&copy, &target, true, false)?;
        }
    }
    // The dynamic linker's cache must be the host's (the programs are):
    // bound over the guest's own. A guest without one gets none rather
    // than an empty file made in its root to bind on (that would be a
    // write to the image a real boot never makes): the linker then
    // searches its built-in directories, where the host's libraries are.
    // Nothing else of the host's /etc is bound (the guest's passwd,
    // nsswitch.conf and resolv.conf are its own, or glibc's defaults).
    let host = Path::new("/etc/ld.so.cache");
    let guest = stage.join("etc/ld.so.cache");
    if host.is_file() && std::fs::symlink_metadata(&guest).is_ok_and(|m| m.is_file()) {
        bind(host, &guest, true, false)?;
    }
    // The default user's home, as cloud-init makes it at first boot.
    let home = guest_home(&plan.user);
    if std::fs::symlink_metadata(guest_dir(stage, &home)).is_err() {
        let _ = std::fs::create_dir_all(guest_dir(stage, &home));
    }
    // /dev.
    let dev = stage.join("dev");
    mkdir(&dev)?;
    tmpfs(&dev, "mode=755")?;
    for n in ["null", "zero", "full", "random", "urandom", "tty"] {
        touch(&dev.join(n))?;
        bind(&Path::new("/dev").join(n), &dev.join(n), false, false)?;
    }
    mkdir(&dev.join("pts"))?;
    nix::mount::mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    )
    .map_err(|e| sys("mount devpts on", &dev.join("pts"), e))?;
    symlink("pts/ptmx", &dev.join("ptmx"))?;
    mkdir(&dev.join("shm"))?;
    tmpfs(&dev.join("shm"), "mode=1777")?;
    for (l, t) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(t, &dev.join(l))?;
    }
    // /proc of the new PID namespace, /proc/partitions generated.
    let proc_dir = stage.join("proc");
    mkdir(&proc_dir)?;
    nix::mount::mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| sys("mount proc on", &proc_dir, e))?;
    devices(plan, &ctx, None)?;
    // The partitions' bytes, read-only, for the partition nodes, served
    // and bound while the boot's `mount -a` runs. Without them (the mount
    // refused) the nodes stay empty placeholders that only ebsim's
    // applets resolve.
    let parts_job = {
        let parts_dir = run.join("parts");
        mkdir(&parts_dir)?;
        let disks = part_disks(&ctx);
        let names: Vec<String> = ctx
            .disks
            .iter()
            .flat_map(|d| d.parts.iter().map(|p| p.name.clone()))
            .collect();
        let dev = dev.clone();
        std::thread::spawn(move || {
            let served = fuse::partitions::mount(&parts_dir, disks).ok()?;
            let nodes = PartNodes {
                served,
                bound: Mutex::new(Default::default()),
            };
            for n in names {
                nodes.bind(&n, &dev.join(&n));
            }
            Some(nodes)
        })
    };
    bind(
        &run.join("partitions"),
        &proc_dir.join("partitions"),
        true,
        false,
    )?;
    // Boot: the guest's own fstab, then every mount of the table.
    let fstab = stage.join("etc/fstab");
    if fstab.is_file() {
        let o = Command::new(&plan.exe)
            .args(["mount", "-a"])
            .env(super::env::INSTANCE_ENV, &plan.instance)
            .env(super::env::FSTAB_ENV, &fstab)
            .env_remove(NS_ENV)
            .output();
        if let Ok(o) = o {
            // A failed fstab mount is what a boot prints and goes on from.
            err(&String::from_utf8_lossy(&o.stderr));
        }
    }
    *init.parts.lock().unwrap_or_else(|p| p.into_inner()) = parts_job.join().ok().flatten();
    if let Err(e) = reconcile(init) {
        err(&format!("ebsim: boot: {e}\n"));
    }
    // Later mounts made here reach the guest's copy of this tree.
    nix::mount::mount(
        None::<&str>,
        stage.as_path(),
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|e| sys("make shared", stage, e))?;
    let listener = UnixListener::bind(run.join("init.sock"))
        .map_err(|e| format!("{}: {e}", run.join("init.sock").display()))?;
    {
        let init = Arc::clone(init);
        std::thread::spawn(move || listen(&init, &listener));
    }
    // More sessions join through a socket beside the stages; None when a
    // live one of the instance answers there (another guest of it, which
    // this one's mounts refuse) or it cannot be made.
    let joins = fuse::control::bind_at(join_socket(&plan.host_home, &plan.instance))
        .ok()
        .flatten();
    if let Some(joins) = &joins {
        let init = Arc::clone(init);
        let listener = joins.socket().try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || take_joins(&init, &listener));
    }
    let child = Command::new(&plan.exe)
        .arg("__guest-enter")
        .env(
            PLAN_ENV,
            serde_json::to_string(plan).map_err(|e| e.to_string())?,
        )
        .spawn()
        .map_err(|e| format!("cannot start the guest: {e}"))?;
    let guest = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    *init.guest.lock().unwrap_or_else(|p| p.into_inner()) = Some(guest);
    let stopper = Arc::clone(init);
    std::thread::spawn(move || {
        if sigs.wait().is_ok() {
            stopper
                .stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = nix::sys::signal::kill(guest, Signal::SIGHUP);
            let _ = nix::sys::signal::kill(guest, Signal::SIGTERM);
            std::thread::sleep(Duration::from_secs(2));
            let _ = nix::sys::signal::kill(guest, Signal::SIGKILL);
        }
    });
    use nix::sys::wait::{WaitStatus, waitpid};
    let code = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == guest => break code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == guest => break 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => break 1,
        }
    };
    // The guest stays up while other sessions that joined it run (a
    // reboot or a signal ends them all).
    let mut told = false;
    loop {
        let others = *init.joined.lock().unwrap_or_else(|p| p.into_inner());
        if others == 0
            || *init.reboot.lock().unwrap_or_else(|p| p.into_inner())
            || init.stopping.load(std::sync::atomic::Ordering::SeqCst)
        {
            break;
        }
        if !told {
            err(&format!(
                "ebsim: {} stays up while its other sessions run; waiting for them to end\n",
                plan.instance
            ));
            told = true;
        }
        while waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            .is_ok_and(|s| s != WaitStatus::StillAlive)
        {}
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(joins);
    // Whatever the guest left running ends with it, as at a power-off.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
        .is_ok_and(|s| s != WaitStatus::StillAlive)
    {}
    Ok(code)
}

fn guest_home(user: &str) -> String {
    if user == "root" {
        "/root".into()
    } else {
        format!("/home/{user}")
    }
}

/// Commits and unmounts every server, last mounted first.
fn shutdown(init: &Init) {
    let served: Vec<Served> = init
        .served
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .collect();
    for s in served.into_iter().rev() {
        stop(&init.plan, s);
    }
}

/// Takes sessions that join the guest: each gets the plan (where the
/// guest's root is staged, its user, hostname and prompt) and is counted
/// until it closes the connection.
fn take_joins(init: &Arc<Init>, listener: &UnixListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let Ok(mut line) = serde_json::to_string(&init.plan) else {
            continue;
        };
        line.push('\n');
        if conn.write_all(line.as_bytes()).is_err() {
            continue;
        }
        *init.joined.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let init = Arc::clone(init);
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            while std::io::Read::read(&mut conn, &mut sink).is_ok_and(|n| n > 0) {}
            *init.joined.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        });
    }
}

/// The init socket: `sync` (the mount table changed), `reboot`.
fn listen(init: &Arc<Init>, listener: &UnixListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        if let Ok(c) = conn.try_clone() {
            let _ = BufReader::new(c).read_line(&mut line);
        }
        let reply = match line.trim() {
            "sync" => match reconcile(init) {
                Ok(()) => "ok\n".to_string(),
                Err(e) => format!("error {e}\n"),
            },
            "reboot" => {
                *init.reboot.lock().unwrap_or_else(|p| p.into_inner()) = true;
                if let Some(g) = *init.guest.lock().unwrap_or_else(|p| p.into_inner()) {
                    let _ = nix::sys::signal::kill(g, Signal::SIGHUP);
                    let _ = nix::sys::signal::kill(g, Signal::SIGTERM);
                }
                "ok\n".to_string()
            }
            other => format!("error unknown request {other:?}\n"),
        };
        let _ = conn.write_all(reply.as_bytes());
    }
}

/// Tells the guest's init (when inside a guest) that the mount table
/// changed, or asks it to reboot. Outside a guest: nothing.
pub fn notify(request: &str) -> Result<(), String> {
    let Some(path) = std::env::var_os(NS_ENV) else {
        return Ok(());
    };
    let mut s =
        UnixStream::connect(&path).map_err(|e| format!("{}: {e}", Path::new(&path).display()))?;
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    match line.trim_end().strip_prefix("error ") {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// `/dev`'s disks, partitions and links, and `/proc/partitions`' text
/// (rewritten in place: the bind shows the file's inode).
fn devices(plan: &Plan, ctx: &Context, nodes: Option<&PartNodes>) -> Result<(), String> {
    let dev = plan.stage.join("dev");
    if let Some(n) = nodes {
        *n.served.disks.lock().unwrap_or_else(|p| p.into_inner()) = part_disks(ctx);
    }
    forget_partitions(&dev, ctx, nodes);
    let mut parts = String::from("major minor  #blocks  name\n\n");
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    let snap = super::env::ec2(DEFAULT_REGION)
        .ok()
        .and_then(|ec2| ebsim::guest::context::snapshot(&ec2, Some(&plan.instance)).ok());
    // The snaps' loop devices come first, as the kernel registered them
    // before the disks (their nodes are not made: no tool here opens them).
    for l in snap
        .iter()
        .flat_map(|s| &s.devices)
        .filter(|d| d.kind == "loop")
    {
        parts.push_str(&format!(
            "{:4}  {:7} {:10} {}\n",
            l.major,
            l.minor,
            l.size / 1024,
            l.name
        ));
    }
    for d in &ctx.disks {
        let node = dev.join(&d.view.name);
        if std::fs::symlink_metadata(&node).is_err() {
            touch(&node)?;
            bind(&d.view.image, &node, false, false)?;
        }
        parts.push_str(&format!(
            "{:4}  {:7} {:10} {}\n",
            d.view.major,
            d.view.minor,
            d.size / 1024,
            d.view.name
        ));
        for p in &d.parts {
            let node = dev.join(&p.name);
            // The partition's bytes (read-only); an empty placeholder
            // until (or if not) bound.
            let bound = nodes.is_some_and(|n| n.is_bound(&p.name));
            if !bound && touch(&node).is_ok() {
                if let Some(n) = nodes {
                    n.bind(&p.name, &node);
                }
            }
            parts.push_str(&format!(
                "{:4}  {:7} {:10} {}\n",
                p.major,
                p.minor,
                p.len / 1024,
                p.name
            ));
        }
    }
    let path = plan.stage.join("run/ebsim/partitions");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(parts.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // The image's udev links (`/dev/sdf` on Amazon Linux only).
    for (link, target) in &ctx.links {
        if let Some(name) = link.strip_prefix("/dev/").filter(|n| !n.contains('/')) {
            links.push((dev.join(name), target.clone()));
        }
    }
    for (l, t) in links {
        symlink(&t, &l)?;
    }
    // udev's by-uuid and by-label links.
    if let Some(snap) = &snap {
        let all = snap
            .devices
            .iter()
            .flat_map(|d| std::iter::once(d).chain(d.children.iter()));
        for d in all {
            for (kind, v) in [("by-uuid", &d.uuid), ("by-label", &d.label)] {
                let Some(v) = v.as_deref().filter(|v| !v.is_empty() && !v.contains('/')) else {
                    continue;
                };
                let dir = dev.join("disk").join(kind);
                mkdir(&dir)?;
                let l = dir.join(v);
                let _ = std::fs::remove_file(&l);
                symlink(&format!("../../{}", d.name), &l)?;
            }
        }
    }
    Ok(())
}

/// The disks whose partitions the partitions filesystem shows.
fn part_disks(ctx: &Context) -> Vec<fuse::partitions::Disk> {
    ctx.disks
        .iter()
        .map(|d| fuse::partitions::Disk {
            name: d.view.name.clone(),
            image: d.view.image.clone(),
        })
        .collect()
}

/// Removes the nodes of partitions that left their disk's table (as the
/// kernel's re-read of the table does), so that a new partition of that
/// number gets a fresh node.
fn forget_partitions(dev: &Path, ctx: &Context, nodes: Option<&PartNodes>) {
    let Ok(rd) = std::fs::read_dir(dev) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(d) = ctx.disks.iter().find(|d| {
            name.strip_prefix(d.view.name.as_str())
                .map(|r| r.strip_prefix('p').unwrap_or(r))
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        }) else {
            continue;
        };
        if d.parts.iter().any(|p| p.name == name) {
            continue;
        }
        let node = dev.join(&name);
        let _ = nix::mount::umount2(&node, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&node);
        if let Some(n) = nodes {
            n.unbound(&name);
        }
    }
}

/// `ebsim __guest-enter` (hidden): into the guest's root, then the shell
/// or the command.
pub fn run_enter() -> i32 {
    let plan = match plan_from_env() {
        Ok(p) => p,
        Err(e) => {
            err(&format!("ebsim: guest: {e}\n"));
            return 1;
        }
    };
    match enter(&plan) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("ebsim: cannot enter the guest: {e}\n"));
            1
        }
    }
}

fn enter(plan: &Plan) -> Result<i32, String> {
    let stage = &plan.stage;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(mount): {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| sys("make slave", Path::new("/"), e))?;
    nix::unistd::chdir(stage).map_err(|e| sys("chdir", stage, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| sys("pivot_root", stage, e))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| sys("detach the host's root", Path::new("/"), e))?;
    nix::unistd::chdir("/").map_err(|e| sys("chdir", Path::new("/"), e))?;
    // The guest's root may do anything but change the mounts: without
    // CAP_SYS_ADMIN in its bounding set no process of the guest can
    // remount the host's read-only binds, unmount them to see what is
    // under them, or mount anything (ebsim's mount and umount ask init).
    // A user namespace the guest makes copies these mounts locked.
    rustix::thread::remove_capability_from_bounding_set(rustix::thread::CapabilitySet::SYS_ADMIN)
        .map_err(|e| format!("drop CAP_SYS_ADMIN: {e}"))?;
    let home = guest_home(&plan.user);
    let cwd = if Path::new(&home).is_dir() {
        home.clone()
    } else {
        "/".to_string()
    };
    let _ = nix::unistd::chdir(cwd.as_str());
    let mut cmd = match &plan.command {
        Some(argv) => {
            let Some((prog, args)) = argv.split_first() else {
                return Ok(2);
            };
            let mut c = Command::new(prog);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new("/bin/bash");
            c.args(["--rcfile", "/run/ebsim/bashrc", "-i"]);
            c
        }
    };
    let passed: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            matches!(
                k.as_ref(),
                "TERM" | "LANG" | "LC_ALL" | "LC_CTYPE" | "TZ" | "COLUMNS" | "LINES"
            ) || ((k.starts_with("EBSIM_") || k.starts_with("E2FSPROGS_"))
                && k != "EBSIM_HOME"
                && k != PLAN_ENV
                && k != SIMULATE_ENV)
        })
        .collect();
    cmd.env_clear()
        .envs(passed)
        .env("HOME", &home)
        .env("USER", &plan.user)
        .env("LOGNAME", &plan.user)
        .env("SHELL", "/bin/bash")
        .env("HOSTNAME", &plan.hostname)
        .env("PATH", GUEST_PATH)
        .env("PS1", &plan.prompt)
        .env("EBSIM_HOME", GUEST_HOME)
        .env(super::env::INSTANCE_ENV, &plan.instance)
        .env(NS_ENV, GUEST_SOCK)
        .env(super::env::FSTAB_ENV, "/etc/fstab")
        .env("PWD", &cwd);
    // init blocks the signals it waits for; the guest starts with none.
    let _ = SigSet::all().thread_unblock();
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    let shown = plan
        .command
        .as_ref()
        .and_then(|c| c.first().cloned())
        .unwrap_or_else(|| "/bin/bash".into());
    err(&format!("ebsim exec: {shown}: {e}\n"));
    Ok(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// `reboot` inside the guest: the session ends and the instance reboots
/// (the mounts not in the fstab are gone; the next shell boots from the
/// guest's /etc/fstab). Outside a guest it is refused.
pub fn run_reboot(_args: Vec<OsString>) -> i32 {
    if std::env::var_os(NS_ENV).is_none() {
        err("reboot: runs on the host, not in the instance: use 'aws ec2 reboot-instances'\n");
        return 1;
    }
    match notify("reboot") {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("reboot: {e}\n"));
            1
        }
    }
}
