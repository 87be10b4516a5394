//! The teaching commands: `ebsim layers`, `ebsim checkpoint`, `ebsim lab`,
//! `ebsim web`, and what every applet does around its run for teaching:
//! the command log inside an instance and the opt-in hint line
//! (`EBSIM_HINTS=1`) after a growing tool that changed nothing.

use super::env;
use super::output::{err, out};
use clap::{Parser, Subcommand, ValueEnum};
use ebsim::ec2::DEFAULT_REGION;
use ebsim::teach::{checkpoint, hint, layers, log, render};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The variable that turns hints on (`1`, `yes`, `on`, `true`).
pub const HINTS_ENV: &str = "EBSIM_HINTS";

/// Whether hints are on.
pub fn hints_on() -> bool {
    std::env::var(HINTS_ENV)
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "on" | "true"))
}

/// The layers a hint is computed from: the instance's inside one, else
/// the image file the argument names.
fn layers_for(arg: &str) -> Option<layers::Layers> {
    if let Some(id) = env::instance() {
        let ec2 = env::ec2(DEFAULT_REGION).ok()?;
        return layers::of_instance(&ec2, Some(&id)).ok();
    }
    let file = arg.split('@').next().unwrap_or(arg);
    let p = Path::new(file);
    if p.is_file() {
        return layers::of_image(p).ok();
    }
    None
}

/// What is kept from before an applet runs, for after it.
pub struct Around {
    hint: Option<(String, layers::Layers)>,
    log: Option<(PathBuf, String, Vec<String>)>,
}

fn text_args(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Before an applet: the layers (when a hint may follow) and what the log
/// will record.
pub fn before(name: &str, args: &[OsString]) -> Around {
    let words = text_args(args);
    let rest = words.get(1..).unwrap_or_default();
    let hint = (hints_on() && hint::TOOLS.contains(&name))
        .then(|| hint::target_arg(name, rest))
        .flatten()
        .and_then(|arg| layers_for(&arg).map(|l| (arg, l)));
    // Inside an instance, every applet but the ones that only start
    // others (sudo runs the applet, which logs itself).
    let logged = !matches!(name, "sudo" | "shell" | "exec" | "demo");
    let log = match (env::instance(), env::home()) {
        (Some(id), Ok(home)) if logged && home.state_path().exists() => {
            let mut argv = vec![name.to_string()];
            argv.extend(rest.iter().cloned());
            Some((home.root().to_path_buf(), id, argv))
        }
        _ => None,
    };
    Around { hint, log }
}

/// After an applet exited with `code`: the log line and the hint.
pub fn after(a: Around, code: i32) {
    if let Some((home, id, argv)) = a.log {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let root = std::env::var(super::files::USER_ENV).is_ok_and(|u| u == "root");
        // The log is a teaching aid: a failure to write it never changes
        // what the command did or printed.
        let _ = log::append(
            &home,
            &id,
            &log::Entry {
                time_ms,
                argv,
                status: code,
                root,
            },
        );
    }
    if let Some((arg, before)) = a.hint {
        if let Some(after) = layers_for(&arg) {
            if let Some(line) = hint::hint(&before, &after, &arg, code) {
                err(&line);
            }
        }
    }
}

/// `ebsim layers`.
#[derive(Debug, Parser)]
#[command(
    name = "layers",
    about = "Show each disk's layers side by side: disk, partitions, filesystems, and what limits growth",
    long_about = "Shows, for each disk of an instance (or for an image file), the disk's size, \
its partition table and each partition's start and end, the unallocated space after them, \
each filesystem's size against its partition with its df numbers and mount point, and one \
sentence naming the layer that limits growth now and the command that grows it. Drawn to \
scale in the terminal (colour on a terminal), as SVG (--svg) or as JSON (--json). The \
numbers are lsblk -b's and df -B1's."
)]
pub struct LayersCmd {
    /// An instance id, or an image file (default: $EBSIM_INSTANCE, else the only running instance)
    pub target: Option<String>,
    /// Print JSON
    #[arg(long, conflicts_with = "svg")]
    pub json: bool,
    /// Print SVG
    #[arg(long)]
    pub svg: bool,
    /// Sizes in bytes
    #[arg(short, long)]
    pub bytes: bool,
    /// Colour: auto (on a terminal), always, never
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    pub color: Colour,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    /// On a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The layers of `target` (an image file, an instance id, or the current
/// instance).
pub fn load_layers(target: Option<&str>) -> Result<layers::Layers, String> {
    if let Some(t) = target {
        let p = Path::new(t);
        if p.is_file() {
            return layers::of_image(p).map_err(|e| e.to_string());
        }
    }
    let ec2 = env::ec2(DEFAULT_REGION).map_err(|e| env::why(&e))?;
    let id = target.map(str::to_string).or_else(env::instance);
    layers::of_instance(&ec2, id.as_deref()).map_err(|e| env::why(&e))
}

/// Runs `ebsim layers`.
pub fn layers_cmd(c: &LayersCmd) -> i32 {
    let l = match load_layers(c.target.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            err(&format!("ebsim layers: {e}\n"));
            return 1;
        }
    };
    if c.json {
        match serde_json::to_string_pretty(&l) {
            Ok(s) => out(&format!("{s}\n")),
            Err(e) => {
                err(&format!("ebsim layers: {e}\n"));
                return 1;
            }
        }
    } else if c.svg {
        out(&render::svg(&l));
    } else {
        let colour = match c.color {
            Colour::Always => true,
            Colour::Never => false,
            Colour::Auto => std::io::stdout().is_terminal(),
        };
        out(&render::text(&l, colour, c.bytes));
    }
    0
}

/// `ebsim checkpoint`.
#[derive(Debug, Parser)]
#[command(
    name = "checkpoint",
    about = "Save and restore the whole state (EBSIM_HOME) by name, sparse and crash-safe"
)]
pub struct CheckpointCmd {
    /// What to do
    #[command(subcommand)]
    pub action: CheckpointAction,
}

/// What `ebsim checkpoint` does.
#[derive(Debug, Subcommand)]
pub enum CheckpointAction {
    /// Save the state as NAME (replacing a checkpoint of that name)
    Save {
        /// The name
        name: String,
    },
    /// Put the state back as it was saved under NAME
    Restore {
        /// The name
        name: String,
    },
    /// List the checkpoints
    List,
}

/// Runs `ebsim checkpoint`.
pub fn checkpoint_cmd(c: &CheckpointCmd) -> i32 {
    let home = match env::home() {
        Ok(h) => h.root().to_path_buf(),
        Err(e) => {
            err(&format!("ebsim checkpoint: {e}\n"));
            return 1;
        }
    };
    let r = match &c.action {
        CheckpointAction::Save { name } => checkpoint::save(&home, name),
        CheckpointAction::Restore { name } => checkpoint::restore(&home, name),
        CheckpointAction::List => checkpoint::list(&home).map(|names| {
            for n in names {
                out(&format!("{n}\n"));
            }
        }),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("ebsim checkpoint: {e}\n"));
            1
        }
    }
}

/// `ebsim lab`.
#[derive(Debug, Parser)]
#[command(
    name = "lab",
    about = "Labs that set up a world and grade it: list, start, check, reset, solution",
    long_about = "Labs set up a world (instances, volumes, tables, filesystems, fill levels, \
pre-applied states) and state objectives that `ebsim lab check` grades from the state, the \
disks' layers, the files and the instance's command log (every ebsim command run inside the \
instance is logged). Start one in an empty EBSIM_HOME, work in `ebsim shell INSTANCE`, then \
check. `reset` puts the world back as `start` left it. NAME is a built-in lab or a .toml file."
)]
pub struct LabCmd {
    /// What to do
    #[command(subcommand)]
    pub action: LabAction,
}

/// What `ebsim lab` does.
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// List the built-in labs
    List,
    /// Show a lab's task and objectives
    Show {
        /// The lab
        name: String,
    },
    /// Set up a lab's world in EBSIM_HOME (empty, or --force to replace what is there)
    Start {
        /// The lab
        name: String,
        /// Remove the state already in EBSIM_HOME
        #[arg(long)]
        force: bool,
    },
    /// Grade the started lab: what is met, what is not, and why
    Check {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Put the world back as `start` left it
    Reset,
    /// Show a correct solution of the started lab (--run: run it)
    Solution {
        /// Run it
        #[arg(long)]
        run: bool,
    },
    /// Show the lab's scripted typical mistake (--run: run it)
    #[command(hide = true)]
    Mistake {
        /// Run it
        #[arg(long)]
        run: bool,
    },
}

/// The checkpoint `lab start` saves and `lab reset` restores.
const LAB_CHECKPOINT: &str = "lab-start";

use ebsim::teach::lab;
use std::collections::BTreeMap;

/// Runs one lab step as typed in the instance; returns (status, stdout, stderr).
fn run_step(
    step: &lab::Step,
    vars: &BTreeMap<String, String>,
) -> Result<(i32, String, String, String), String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let line = lab::subst(&step.run, vars);
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.first() == Some(&"ebsim") {
        words.remove(0);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ebsim itself: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(&words)
        .stdin(if step.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(i) = vars.get("INSTANCE") {
        cmd.env(env::INSTANCE_ENV, i);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{line}: {e}"))?;
    if let (Some(text), Some(mut sin)) = (&step.stdin, child.stdin.take()) {
        sin.write_all(lab::subst(text, vars).as_bytes())
            .map_err(|e| format!("{line}: stdin: {e}"))?;
    }
    let o = child
        .wait_with_output()
        .map_err(|e| format!("{line}: {e}"))?;
    Ok((
        o.status.code().unwrap_or(1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        line,
    ))
}

fn lab_home() -> Result<PathBuf, String> {
    env::home()
        .map(|h| h.root().to_path_buf())
        .map_err(|e| env::why(&e))
}

fn lab_start(name: &str, force: bool) -> Result<(), String> {
    let lab = lab::find(name).map_err(|e| e.to_string())?;
    let home = lab_home()?;
    checkpoint::recover(&home).map_err(|e| e.to_string())?;
    if home.join("state.json").exists() {
        if !force {
            return Err(format!(
                "{} already holds a state: start a lab in an empty EBSIM_HOME, or add --force to remove it",
                home.display()
            ));
        }
        let _ = std::fs::remove_file(home.join("state.json"));
        for d in ["volumes", "snapshots", "staging", "teach"] {
            let p = home.join(d);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
    }
    out(&format!("Setting up lab {}: {}\n", lab.name, lab.title));
    let mut vars = BTreeMap::new();
    for step in &lab.setup {
        let (code, so, se, line) = run_step(step, &vars)?;
        if code != 0 {
            return Err(format!("setup step failed: {line}\n{so}{se}"));
        }
        if let Some(var) = &step.capture {
            let word = so.split_whitespace().next().unwrap_or_default().to_string();
            vars.insert(var.clone(), word);
        }
    }
    log::clear(&home).map_err(|e| e.to_string())?;
    lab::save_started(
        &home,
        &lab::Started {
            name: name.to_string(),
            vars: vars.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    checkpoint::save(&home, LAB_CHECKPOINT).map_err(|e| e.to_string())?;
    out(&format!("\n{}\n\n", lab::subst(lab.task.trim(), &vars)));
    if let Some(i) = vars.get("INSTANCE") {
        out(&format!(
            "Instance {i}. Work in it with `ebsim shell {i}`; grade with `ebsim lab check`.\n"
        ));
    }
    Ok(())
}

fn started() -> Result<(PathBuf, lab::Lab, lab::Started), String> {
    let home = lab_home()?;
    checkpoint::recover(&home).map_err(|e| e.to_string())?;
    let s = lab::load_started(&home).map_err(|e| e.to_string())?;
    let l = lab::find(&s.name).map_err(|e| e.to_string())?;
    Ok((home, l, s))
}

fn run_steps(
    steps: &[lab::Step],
    vars: &mut BTreeMap<String, String>,
    run: bool,
) -> Result<(), String> {
    for step in steps {
        if !run {
            out(&format!("{}\n", lab::subst(&step.run, vars)));
            continue;
        }
        let (_, so, se, line) = run_step(step, vars)?;
        out(&format!("$ {line}\n{so}{se}"));
        if let Some(var) = &step.capture {
            let word = so.split_whitespace().next().unwrap_or_default().to_string();
            vars.insert(var.clone(), word);
        }
    }
    Ok(())
}

fn lab_inner(c: &LabCmd) -> Result<i32, String> {
    match &c.action {
        LabAction::List => {
            for n in lab::builtin_names() {
                let l = lab::find(n).map_err(|e| e.to_string())?;
                out(&format!("{:<24} {}\n", l.name, l.title));
            }
            Ok(0)
        }
        LabAction::Show { name } => {
            let l = lab::find(name).map_err(|e| e.to_string())?;
            out(&format!(
                "{}: {}\n\n{}\n\nObjectives:\n",
                l.name,
                l.title,
                l.task.trim()
            ));
            for g in &l.goal {
                let t = toml_line(&g.check);
                out(&format!("  - {t}\n"));
            }
            Ok(0)
        }
        LabAction::Start { name, force } => lab_start(name, *force).map(|()| 0),
        LabAction::Check { json } => {
            let (home, l, s) = started()?;
            let ec2 = env::ec2(DEFAULT_REGION).map_err(|e| env::why(&e))?;
            let instance = s.vars.get("INSTANCE").cloned().unwrap_or_default();
            let facts = lab::facts(&ec2, &home, &instance).map_err(|e| e.to_string())?;
            let r = lab::grade(&ec2, &l, &s.vars, &facts);
            if *json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
                ));
            } else {
                out(&r.text());
            }
            Ok(if r.passed() { 0 } else { 1 })
        }
        LabAction::Reset => {
            let home = lab_home()?;
            checkpoint::restore(&home, LAB_CHECKPOINT).map_err(|e| e.to_string())?;
            out("The lab is back as it started.\n");
            Ok(0)
        }
        LabAction::Solution { run } => {
            let (_, l, mut s) = started()?;
            run_steps(&l.solution, &mut s.vars, *run).map(|()| 0)
        }
        LabAction::Mistake { run } => {
            let (_, l, mut s) = started()?;
            run_steps(&l.mistake.steps, &mut s.vars, *run).map(|()| 0)
        }
    }
}

fn toml_line(c: &lab::Check) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| {
            v.as_object().map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_default()
}

/// Runs `ebsim lab`.
pub fn lab_cmd(c: &LabCmd) -> i32 {
    match lab_inner(c) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("ebsim lab: {e}\n"));
            1
        }
    }
}

/// `ebsim web`.
#[derive(Debug, Parser)]
#[command(
    name = "web",
    about = "Serve a live page of the instances, volumes, modifications and each disk's layers on 127.0.0.1",
    long_about = "Serves one self-contained page (no external assets: it works offline) on \
127.0.0.1 that polls the state every second and shows the instances, the volumes, the \
modifications with their progress and each disk's layers to scale, for a projector while \
commands run in `ebsim shell`. Prints the URL; SIGTERM or Ctrl-C stops it."
)]
pub struct WebCmd {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// Runs `ebsim web`.
pub fn web_cmd(c: &WebCmd) -> i32 {
    use ebsim::api::server::{Limits, Server};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let signals = match super::serve::block_stop_signals("ebsim web") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let factory = match env::ec2_factory() {
        Ok(f) => f,
        Err(e) => {
            err(&format!("ebsim web: {e}\n"));
            return 1;
        }
    };
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), c.port);
    let server = match Server::bind(addr, Limits::default()) {
        Ok(s) => s,
        Err(e) => {
            err(&format!("ebsim web: cannot listen on {addr}: {e}\n"));
            return 1;
        }
    };
    if let Err(code) = super::serve::stop_on_signal(&server, signals, "ebsim web") {
        return code;
    }
    out(&format!("http://{}/\n", server.local_addr()));
    let view = ebsim::teach::web::WebView::new(Box::new(factory), DEFAULT_REGION);
    match server.serve(std::sync::Arc::new(view)) {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("ebsim web: {e}\n"));
            1
        }
    }
}
