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
    std::env::var(HINTS_ENV).is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "yes" | "on" | "true"
        )
    })
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
