//! `ebsim shell [INSTANCE]`, `ebsim exec INSTANCE -- COMMAND...` and the
//! `sudo` applet: running a runbook's commands "inside" an instance, typed
//! exactly as on EC2.
//!
//! Both start the command with PATH beginning with a folder of links to
//! ebsim (one per guest applet, plus `sudo` and `ebsim`) and
//! `EBSIM_INSTANCE` set, so `sudo growpart /dev/xvda 1` reaches ebsim's
//! growpart for that instance.

use super::commands::{Exec, Shell};
use super::output::err;
use ebsim::ec2::DEFAULT_REGION;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The names linked into the shell's bin folder.
pub const GUEST_COMMANDS: &[&str] = &[
    "ls",
    "cat",
    "cp",
    "mv",
    "rm",
    "mkdir",
    "touch",
    "tee",
    "truncate",
    "fallocate",
    "dd",
    "du",
    "stat",
    "sha256sum",
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
    "lsblk",
    "blkid",
    "df",
    "aws",
    "sudo",
    "ebsim",
];

/// Why a shell or command cannot reach an instance.
enum Unreachable {
    /// Not in the model, several running, ...: `ebsim shell: REASON`, 1.
    Other(String),
    /// Not running: what ssh prints for a host that is not up, and the
    /// state, status 255 as ssh's.
    NotUp(String),
}

impl Unreachable {
    fn report(&self, prog: &str) -> i32 {
        match self {
            Unreachable::Other(e) => {
                err(&format!("{prog}: {e}\n"));
                1
            }
            Unreachable::NotUp(text) => {
                err(text);
                255
            }
        }
    }
}

/// What ssh says to a host in `state` (an instance that is not running):
/// while it boots (pending) or shuts down (stopping, shutting-down) the
/// host answers but sshd does not listen, so the connection is refused; a
/// stopped or terminated instance answers nothing, so the connection times
/// out. ssh exits 255 either way. The second line names the state.
fn ssh_refusal(ip: &str, id: &str, state: &str) -> String {
    let why = match state {
        "pending" | "stopping" | "shutting-down" => "Connection refused",
        _ => "Connection timed out",
    };
    format!(
        "ssh: connect to host {ip} port 22: {why}\n(ebsim: instance {id} is {state}; commands run only while it is running)\n"
    )
}

/// The instance a shell is for: its id and the name of its image's user.
/// An instance that is not running cannot be reached (pending is refused
/// too, not waited for: with the manual clock nothing would end the wait;
/// `aws ec2 wait instance-running` is the way to wait, as on EC2).
fn pick_instance(explicit: Option<&str>) -> Result<(String, String), Unreachable> {
    let ec2 = super::env::ec2(DEFAULT_REGION).map_err(|e| Unreachable::Other(e.to_string()))?;
    let wanted = explicit.map(str::to_string).or_else(super::env::instance);
    let (id, user, state, ip, failure) = ec2
        .transact(|txn| {
            let id = txn.resolve_instance(wanted.as_deref())?;
            let inst = txn.instance(&id)?;
            let user = ebsim::ec2::catalog::login_user(inst.flavour.as_deref());
            Ok((
                id,
                user.to_string(),
                inst.state.as_str().to_string(),
                inst.private_ip.clone(),
                inst.boot_failure.clone(),
            ))
        })
        .map_err(|e| Unreachable::Other(e.to_string().trim().to_string()))?;
    if state != "running" {
        return Err(Unreachable::NotUp(ssh_refusal(&ip, &id, &state)));
    }
    // A boot stopped in emergency mode: the host runs, sshd does not, and
    // nothing answers on port 22 (the console would show the prompt).
    if let Some(why) = failure {
        return Err(Unreachable::NotUp(format!(
            "ssh: connect to host {ip} port 22: Connection timed out\n(ebsim: instance {id} is running but unreachable: {why}; its instance status check fails)\n"
        )));
    }
    Ok((id, user))
}

/// The folder of links, made (or refreshed) under the state directory.
fn bin_dir() -> Result<PathBuf, String> {
    let home = super::env::home().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ebsim itself: {e}"))?;
    links(home.root(), &exe)
}

/// `DIR/bin` with a link to `exe` for each guest command (links to
/// something else are replaced).
pub fn links(home: &Path, exe: &Path) -> Result<PathBuf, String> {
    let dir = home.join("bin");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in GUEST_COMMANDS {
        let link = dir.join(name);
        if std::fs::read_link(&link).ok().as_deref() == Some(exe) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(exe, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(dir)
}

fn guest_path(bin: &Path) -> OsString {
    let mut p = OsString::from(bin);
    if let Some(rest) = std::env::var_os("PATH") {
        p.push(":");
        p.push(rest);
    }
    p
}

fn status_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// What `shell --host-mode` and `exec --host-mode` say first, on stderr
/// (so `exec`'s stdout stays the command's own).
fn host_mode_banner(prog: &str) -> String {
    format!(
        "ebsim {prog} --host-mode: ebsim's applets (lsblk, df, growpart, resize2fs, xfs_growfs, \
         mount, sudo, ...) act on the instance; every other command acts on THIS HOST, not on \
         the guest.\n"
    )
}

/// `ebsim shell` (or a link named `shell`).
pub fn run_shell(args: Vec<OsString>) -> i32 {
    match super::commands::parse::<Shell>(&args) {
        Ok(s) => shell(&s),
        Err(code) => code,
    }
}

/// `ebsim shell [INSTANCE]`.
pub fn shell(s: &Shell) -> i32 {
    let (id, user) = match pick_instance(s.instance.as_deref()) {
        Ok(v) => v,
        Err(e) => return e.report("ebsim shell"),
    };
    if !s.host_mode {
        return super::guest_ns::run("shell", &id, None);
    }
    err(&host_mode_banner("shell"));
    let bin = match bin_dir() {
        Ok(b) => b,
        Err(e) => {
            err(&format!("ebsim shell: {e}\n"));
            return 1;
        }
    };
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bash".into());
    let prompt = format!("[{user}@{id} \\W]$ ");
    let mut cmd = Command::new(&shell);
    cmd.env("PATH", guest_path(&bin))
        .env(super::env::INSTANCE_ENV, &id)
        .env("PS1", &prompt);
    // bash reads ~/.bashrc, which usually sets PS1: give it an rc file that
    // reads the user's and then names the instance.
    let rc = bin.join(format!("bashrc-{id}"));
    if Path::new(&shell).file_name().is_some_and(|n| n == "bash") {
        let text = format!(
            "[ -f ~/.bashrc ] && . ~/.bashrc\nPATH='{}'\nPS1='{}'\n",
            guest_path(&bin).to_string_lossy(),
            prompt
        );
        if std::fs::write(&rc, text).is_ok() {
            cmd.arg("--rcfile").arg(&rc).arg("-i");
        }
    }
    match cmd.status() {
        Ok(s) => status_code(s),
        Err(e) => {
            err(&format!("ebsim shell: cannot start {shell}: {e}\n"));
            127
        }
    }
}

/// `ebsim exec` (or a link named `exec`).
pub fn run_exec(args: Vec<OsString>) -> i32 {
    match super::commands::parse::<Exec>(&args) {
        Ok(x) => exec(&x),
        Err(code) => code,
    }
}

/// `ebsim exec INSTANCE -- COMMAND [ARGS...]`.
pub fn exec(x: &Exec) -> i32 {
    let Some((program, rest)) = x.command.split_first() else {
        return 2;
    };
    let (id, _) = match pick_instance(Some(&x.instance)) {
        Ok(v) => v,
        Err(e) => return e.report("ebsim exec"),
    };
    if !x.host_mode {
        return super::guest_ns::run("exec", &id, Some(x.command.clone()));
    }
    err(&host_mode_banner("exec"));
    let bin = match bin_dir() {
        Ok(b) => b,
        Err(e) => {
            err(&format!("ebsim exec: {e}\n"));
            return 1;
        }
    };
    use std::os::unix::process::CommandExt;
    let path = guest_path(&bin);
    let resolved = which(program, &path).unwrap_or_else(|| PathBuf::from(program));
    // argv[0] as a shell passes it (the name typed, not the path found on
    // PATH): the tools name themselves by it (`resize2fs: ...`).
    match Command::new(resolved)
        .arg0(program)
        .args(rest)
        .env("PATH", &path)
        .env(super::env::INSTANCE_ENV, &id)
        .status()
    {
        Ok(s) => status_code(s),
        Err(e) => {
            err(&format!("ebsim exec: {}: {e}\n", program.to_string_lossy()));
            127
        }
    }
}

/// Finds `program` on `path` (names with a slash are taken as they are).
fn which(program: &OsString, path: &OsString) -> Option<PathBuf> {
    if program.to_string_lossy().contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `sudo [OPTIONS] COMMAND [ARGS...]`: runs one of ebsim's applets as
/// the guest's root (it sets `EBSIM_GUEST_USER=root` for the applet, which
/// the file commands read; the others already act as root). It never runs
/// a host program: a guest's root must not become root on the host, so
/// `sudo vi` is refused with the reason. `-u root`/`-u 0` and the default
/// user (`-u ubuntu`, ...) are understood; the other options that take an
/// argument are skipped with it, the rest ignored.
pub fn run_sudo(args: Vec<OsString>) -> i32 {
    use std::os::unix::process::CommandExt;
    let rest: Vec<OsString> = args.into_iter().skip(1).collect();
    let in_guest = std::env::var_os(super::guest_ns::NS_ENV).is_some();
    let mut i = 0;
    let mut as_root = true;
    let mut shell = false;
    let mut user_arg: Option<String> = None;
    while let Some(a) = rest.get(i).map(|a| a.to_string_lossy().into_owned()) {
        match a.as_str() {
            "--" => {
                i += 1;
                break;
            }
            "-u" | "--user" => {
                user_arg = rest.get(i + 1).map(|u| u.to_string_lossy().into_owned());
                i += 2;
            }
            "-i" | "--login" | "-s" | "--shell" => {
                shell = true;
                i += 1;
            }
            "-g" | "-C" | "-h" | "-p" | "-U" | "-r" | "-t" | "-T" | "-D" | "--group"
            | "--prompt" | "--other-user" | "--chdir" | "--host" => i += 2,
            _ if a.starts_with("--user=") => {
                user_arg = Some(a["--user=".len()..].to_string());
                i += 1;
            }
            _ if a.starts_with("-u") && a.len() > 2 => {
                user_arg = Some(a[2..].to_string());
                i += 1;
            }
            _ if a.starts_with('-') && a.len() > 1 => i += 1,
            _ => break,
        }
    }
    if let Some(u) = &user_arg {
        match u.as_str() {
            "root" | "#0" | "0" => as_root = true,
            "ubuntu" | "ec2-user" | "centos" | "#1000" | "1000" => as_root = false,
            other => {
                err(&format!("sudo: unknown user {other}\n"));
                return 1;
            }
        }
    }
    let Some(program) = rest.get(i) else {
        if shell && in_guest {
            let e = Command::new("/bin/bash")
                .args(["--rcfile", "/run/ebsim/bashrc", "-i"])
                .exec();
            err(&format!("sudo: /bin/bash: {e}\n"));
            return 1;
        }
        if shell {
            err(SUDO_SHELL_REFUSED);
            return 1;
        }
        err("usage: sudo [-u user] command [args...]\n");
        return 1;
    };
    if in_guest {
        // Inside the guest namespace everything already runs as the
        // guest's root, and the host is out of reach: run the command.
        let e = Command::new(program)
            .args(&rest[i + 1..])
            .env(super::files::USER_ENV, "root")
            .exec();
        err(&format!("sudo: {}: {e}\n", program.to_string_lossy()));
        return if e.kind() == std::io::ErrorKind::NotFound {
            1
        } else {
            126
        };
    }
    let Some(applet) = applet_of(program) else {
        err(&format!(
            "sudo: {}: runs on the host, not in the instance; ebsim runs only its own applets as root in a guest (see 'ebsim shell --help')\n",
            program.to_string_lossy()
        ));
        return 1;
    };
    // ebsim's own `shell` and `exec` start host programs.
    if applet == "ebsim" {
        if let Some(sub) = rest
            .get(i + 1)
            .and_then(|s| s.to_str())
            .filter(|s| matches!(*s, "shell" | "exec"))
        {
            err(&format!(
                "sudo: ebsim {sub}: runs on the host, not in the instance; ebsim runs only its own applets as root in a guest (see 'ebsim shell --help')\n"
            ));
            return 1;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            err(&format!("sudo: cannot find ebsim itself: {e}\n"));
            return 1;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg0(&applet).args(&rest[i + 1..]);
    if as_root {
        cmd.env(super::files::USER_ENV, "root");
    } else {
        cmd.env_remove(super::files::USER_ENV);
    }
    match cmd.status() {
        Ok(s) => status_code(s),
        Err(e) => {
            err(&format!("sudo: {}: {e}\n", program.to_string_lossy()));
            1
        }
    }
}

const SUDO_SHELL_REFUSED: &str = "sudo: a root shell runs on the host, not in the instance; ebsim runs only its own applets as root in a guest (see 'ebsim shell --help')\n";

/// The ebsim applet `program` names: an applet's name, or a path that
/// leads to ebsim itself (a link of the shell's bin folder). None for
/// anything else (a host program).
fn applet_of(program: &OsString) -> Option<String> {
    let text = program.to_str()?;
    if !text.contains('/') {
        return (text == "ebsim" || super::find(text).is_some()).then(|| text.to_string());
    }
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let target = Path::new(text).canonicalize().ok()?;
    if target != exe {
        return None;
    }
    let name = Path::new(text).file_name()?.to_str()?.to_string();
    (name == "ebsim" || super::find(&name).is_some()).then_some(name)
}
