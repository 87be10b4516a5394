//! `ebsim ec2 OPERATION ...`, the `aws` link (`aws ec2 OPERATION ...`) and
//! `ebsim clock`: the AWS CLI's operation names, flags and JSON output over
//! ebsim's cloud model.
//!
//! Exit codes as AWS CLI v2: 0 success, 252 bad command line, 254 an error
//! from the service, 255 anything else (a waiter that failed, a damaged
//! state).

mod args;
mod cli_input;
mod config;
mod eaw;
mod ops;
mod paginate;
mod query;
mod shorthand;
mod skeletons;
mod table;
mod text;
mod wait;
mod yaml;

use super::commands::{CLOCK_HELP, Clock, ClockAction};
use super::getopt::after_argv0;
use super::output::{err, out};
use args::{ArgError, Output};
use ebsim::ec2::DEFAULT_REGION;
use ebsim::ec2::wire::json::J;
use ops::Fail;
use std::ffi::OsString;

const EXIT_USAGE: i32 = 252;
const EXIT_SERVICE: i32 = 254;
const EXIT_OTHER: i32 = 255;

const USAGE: &str = "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]
To see help text, you can run:

  aws help
  aws <command> help
  aws <command> <subcommand> help
";

fn usage_error(msg: &str) -> i32 {
    err(&format!("{USAGE}\n{msg}\n"));
    EXIT_USAGE
}

fn arg_error(e: &ArgError) -> i32 {
    match e {
        ArgError::Required(_) | ArgError::Unknown(_) => usage_error(&e.to_string()),
        ArgError::Bad(msg) => {
            err(&format!("\n{msg}\n"));
            EXIT_USAGE
        }
    }
}

/// Applies the profile and environment to the parsed arguments (the
/// output format when `--output` is absent) and answers the region.
fn settle(a: &mut args::Args) -> Result<String, i32> {
    let prof = match config::profile(a.globals.profile.as_deref()) {
        Ok(p) => p,
        Err(m) => {
            err(&format!("\n{m}\n"));
            return Err(EXIT_OTHER);
        }
    };
    if !a.globals.output_given
        && let Some(o) = config::output(&prof)
    {
        match args::Output::parse(&o) {
            Ok(o) => a.globals.output = o,
            Err(e) => return Err(arg_error(&e)),
        }
    }
    Ok(config::region(a.globals.region.as_deref(), &prof)
        .unwrap_or_else(|| DEFAULT_REGION.to_string()))
}

/// Whether the table is coloured: `--color on`, or `auto` (the default)
/// with stdout a terminal.
fn table_color(a: &args::Args) -> bool {
    match a.globals.color.as_deref() {
        Some("on") => true,
        Some("off") => false,
        _ => std::io::IsTerminal::is_terminal(&std::io::stdout()),
    }
}

/// A whole response (or a paginated command's merged result) with
/// `--query` applied, in the output format; `title` is the operation's
/// API name (the table's title).
fn print_response(resp: &J, a: &args::Args, title: &str) -> i32 {
    let resp = match &a.globals.query {
        Some(q) => match query::Query::compile(q).and_then(|q| q.search(resp)) {
            Ok(r) => r,
            Err(e) => {
                err(&format!("\n{e}\n"));
                return EXIT_USAGE;
            }
        },
        None => resp.clone(),
    };
    match a.globals.output {
        Output::Json => out(&format!("{}\n", resp.to_pretty())),
        Output::Text => out(&text::to_text(&resp)),
        Output::Yaml => out(&yaml::to_yaml(&resp)),
        Output::YamlStream => out(&yaml::to_yaml(&J::Arr(vec![resp]))),
        Output::Table => {
            match table::to_table(title, &resp, table::terminal_width(), table_color(a)) {
                Ok(t) => out(&t),
                Err(e) => {
                    err(&format!("\n{e}\n"));
                    return EXIT_OTHER;
                }
            }
        }
    }
    0
}

/// `--generate-cli-skeleton`: the input skeleton as JSON (or YAML with
/// each member's summary), or the output skeleton as any response; None
/// when not asked for.
fn skeleton(a: &args::Args, api: &str) -> Option<i32> {
    let kind = a.globals.skeleton.as_deref()?;
    let shapes = cli_input::shapes(api);
    if kind == "yaml-input" {
        // Printed as the AWS CLI v2 dumps it, comments and all.
        out(shapes.map_or("{}\n", |s| s.yaml_input));
        return Some(0);
    }
    let text = shapes.map_or("{}", |s| if kind == "output" { s.output } else { s.input });
    let Some(doc) = cli_input::parse(text) else {
        err(&format!(
            "\nebsim: the {kind} skeleton of {api} is damaged\n"
        ));
        return Some(EXIT_OTHER);
    };
    if kind == "output" {
        return Some(print_response(&doc, a, api));
    }
    out(&format!("{}\n", doc.to_pretty()));
    Some(0)
}

fn op_list() -> String {
    let mut names: Vec<&str> = ops::OPS.iter().map(|o| o.name).collect();
    names.push("wait");
    names.push("help");
    names.join(" | ")
}

fn help() -> String {
    let mut s = String::from(
        "ebsim ec2 OPERATION [PARAMETERS] (also: aws ec2 OPERATION ...)\n\n\
         Emulates these EC2 operations with the AWS CLI's flags and output:\n",
    );
    for o in ops::OPS {
        s.push_str(&format!("  {}\n", o.name));
    }
    s.push_str("  wait WAITER   (");
    s.push_str(
        &wait::WAITERS
            .iter()
            .map(|w| w.name)
            .collect::<Vec<_>>()
            .join(", "),
    );
    s.push_str(")\n\nGlobal options: --query JMESPATH, --output json|text|table|yaml|yaml-stream, --color on|off|auto, --region REGION\n\n");
    s.push_str(CLOCK_HELP);
    s
}

fn op_help(o: &ops::Op) -> String {
    let mut s = format!("aws ec2 {}\n\nParameters:\n", o.name);
    for p in o.params {
        let ty = match p.ty {
            args::Ty::Str => "<value>",
            args::Ty::Int => "<integer>",
            args::Ty::Bool => "",
            args::Ty::StrList => "<value> [<value>...]",
            args::Ty::Struct => "<shorthand or JSON>",
            args::Ty::StructList => "<shorthand or JSON> [...]",
        };
        let flag = if p.ty == args::Ty::Bool {
            match p.name.strip_prefix("no-") {
                Some(base) => format!("--{} | --{base}", p.name),
                None => format!("--{} | --no-{}", p.name, p.name),
            }
        } else {
            format!("--{} {ty}", p.name)
        };
        s.push_str(&format!(
            "  {flag}{}\n",
            if p.required { "   (required)" } else { "" }
        ));
    }
    s
}

/// Runs `ec2 OPERATION WORDS...` (the words after `ec2`).
fn run_ec2_words(words: Vec<String>) -> i32 {
    let Some(opname) = words.first().cloned() else {
        return usage_error("aws: error: the following arguments are required: operation");
    };
    let rest: Vec<String> = words[1..].to_vec();
    if opname == "help" || opname == "--help" || opname == "-h" {
        out(&help());
        return 0;
    }
    if opname == "wait" {
        return run_wait(rest);
    }
    let Some(op) = ops::find(&opname) else {
        return usage_error(&format!(
            "aws: error: argument operation: Invalid choice, valid choices are:\n\n{}\n\n(ebsim emulates the EC2 operations above)",
            op_list()
        ));
    };
    if rest.first().map(String::as_str) == Some("help") || rest.iter().any(|w| w == "--help") {
        out(&op_help(op));
        return 0;
    }
    let mut a = match args::parse(op.params, &rest) {
        Ok(a) => a,
        Err(e) => return arg_error(&e),
    };
    let region = match settle(&mut a) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(code) = skeleton(&a, op.api) {
        return code;
    }
    let ec2 = match super::env::ec2(&region) {
        Ok(e) => e,
        Err(e) => {
            err(&format!("\n{e}\n"));
            return EXIT_OTHER;
        }
    };
    // The CLI pages by itself unless told not to, or given the service's
    // own paging parameters.
    let manual = a.vals.contains_key("next-token") || a.vals.contains_key("max-results");
    let key = paginate::result_key(op.api);
    if key.is_some() && (a.globals.no_paginate || manual) {
        let p = &a.globals.paging;
        let mut used = Vec::new();
        if p.starting_token.is_some() {
            used.push("--starting-token");
        }
        if p.page_size.is_some() {
            used.push("--page-size");
        }
        if p.max_items.is_some() {
            used.push("--max-items");
        }
        if !used.is_empty() {
            err(&format!(
                "\nError during pagination: Cannot specify --no-paginate along with pagination arguments: {}\n",
                used.join(", ")
            ));
            return EXIT_OTHER;
        }
    }
    match key {
        Some(key) if !a.globals.no_paginate && !manual => {
            if a.globals.paging.max_items.is_some_and(|m| m <= 0) {
                err(
                    "warning: Non-positive values for --max-items may result in undefined behavior.\n",
                );
            }
            match paginate::run(op, &ec2, &a, key, &a.globals.paging) {
                Ok(paged) => print_paged(&paged, &a, op.api),
                Err(f) => fail(op.api, f),
            }
        }
        _ => match op.run(&ec2, &a) {
            Ok(Some(resp)) => print_response(&resp, &a, op.api),
            Ok(None) => 0,
            Err(f) => fail(op.api, f),
        },
    }
}

/// A paginated result as the CLI prints it: JSON, table and YAML merged,
/// text page by page (each with `--query` applied), then the resume
/// token; yaml-stream each page as the service answered it, a list item
/// each.
fn print_paged(p: &paginate::Paged, a: &args::Args, title: &str) -> i32 {
    match a.globals.output {
        Output::Json | Output::Table | Output::Yaml => return print_response(&p.full, a, title),
        Output::YamlStream => {
            let mut s = String::new();
            for page in &p.raw {
                let page = match &a.globals.query {
                    Some(q) => match query::Query::compile(q).and_then(|q| q.search(page)) {
                        Ok(r) => r,
                        Err(e) => {
                            err(&format!("\n{e}\n"));
                            return EXIT_USAGE;
                        }
                    },
                    None => page.clone(),
                };
                s.push_str(&yaml::to_yaml(&J::Arr(vec![page])));
            }
            out(&s);
            return 0;
        }
        Output::Text => {}
    }
    let query = match a.globals.query.as_deref().map(query::Query::compile) {
        Some(Ok(q)) => Some(q),
        Some(Err(e)) => {
            err(&format!("\n{e}\n"));
            return EXIT_USAGE;
        }
        None => None,
    };
    let mut docs: Vec<J> = p.pages.clone();
    if let Some(r) = &p.resume {
        docs.push(J::Obj(vec![(
            "NextToken".to_string(),
            J::Obj(vec![("NextToken".to_string(), J::Str(r.clone()))]),
        )]));
    }
    let mut s = String::new();
    for d in &docs {
        let d = match &query {
            Some(q) => match q.search(d) {
                Ok(r) => r,
                Err(e) => {
                    err(&format!("\n{e}\n"));
                    return EXIT_USAGE;
                }
            },
            None => d.clone(),
        };
        s.push_str(&text::to_text(&d));
    }
    out(&s);
    0
}

fn fail(api: &str, f: Fail) -> i32 {
    match f {
        Fail::Api(e) => {
            err(&format!(
                "\nAn error occurred ({}) when calling the {api} operation: {}\n",
                e.code, e.message
            ));
            EXIT_SERVICE
        }
        Fail::Arg(e) => arg_error(&e),
        other @ (Fail::Local(_) | Fail::Waiter { .. } | Fail::Query(_)) => {
            err(&format!("\n{other}\n"));
            EXIT_OTHER
        }
    }
}

fn run_wait(words: Vec<String>) -> i32 {
    let Some(name) = words.first().cloned() else {
        return usage_error("aws: error: the following arguments are required: waiter_name");
    };
    let Some(w) = wait::find(&name) else {
        let names: Vec<&str> = wait::WAITERS.iter().map(|w| w.name).collect();
        return usage_error(&format!(
            "aws: error: argument waiter_name: Invalid choice, valid choices are:\n\n{}",
            names.join(" | ")
        ));
    };
    let mut a = match wait::parse(w, &words[1..]) {
        Ok(a) => a,
        Err(e) => return arg_error(&e),
    };
    let region = match settle(&mut a) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let ec2 = match super::env::ec2(&region) {
        Ok(e) => e,
        Err(e) => {
            err(&format!("\n{e}\n"));
            return EXIT_OTHER;
        }
    };
    match wait::run(&ec2, w, &a) {
        Ok(()) => 0,
        Err(f) => fail("Describe", f),
    }
}

/// `ebsim ec2 ...`: args[0] is `ec2`.
pub fn run(args: Vec<OsString>) -> i32 {
    run_ec2_words(after_argv0(&args))
}

/// The `aws` link: `aws [GLOBAL OPTIONS] ec2 OPERATION ...`.
pub fn run_aws(args: Vec<OsString>) -> i32 {
    let words = after_argv0(&args);
    let mut globals = Vec::new();
    let mut i = 0;
    while i < words.len() && words[i].starts_with("--") {
        let w = &words[i];
        if w == "--version" {
            out(&format!(
                "aws-cli/2.15.30 Python/3.11.8 Linux/x86_64 exe/x86_64 prompt/off (ebsim {})\n",
                env!("CARGO_PKG_VERSION")
            ));
            return 0;
        }
        globals.push(w.clone());
        let takes_value = [
            "--query",
            "--output",
            "--region",
            "--profile",
            "--endpoint-url",
            "--color",
        ]
        .contains(&w.as_str());
        if takes_value && i + 1 < words.len() {
            globals.push(words[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    match words.get(i).map(String::as_str) {
        Some("ec2") => {
            let mut rest: Vec<String> = words[i + 1..].to_vec();
            rest.extend(globals);
            run_ec2_words(rest)
        }
        Some("sts") => {
            let mut rest: Vec<String> = words[i + 1..].to_vec();
            rest.extend(globals);
            run_sts(rest)
        }
        Some("help") => {
            out(&help());
            0
        }
        None if globals.iter().any(|g| g == "--help" || g == "-h") => {
            out(&help());
            0
        }
        None => {
            out(&help());
            usage_error("aws: error: the following arguments are required: command")
        }
        Some(other) => usage_error(&format!(
            "aws: error: argument command: Invalid choice: '{other}' (ebsim emulates only 'ec2')"
        )),
    }
}

/// `aws sts get-caller-identity`: the account, with the access key as the
/// user (what `ebsim serve` answers for the STS query too).
fn run_sts(words: Vec<String>) -> i32 {
    match words.first().map(String::as_str) {
        Some("get-caller-identity") => {}
        _ => {
            return usage_error(
                "aws: error: argument operation: Invalid choice, valid choices are:\n\nget-caller-identity\n\n(ebsim emulates only this STS operation)",
            );
        }
    }
    let mut a = match args::parse(&[], &words[1..]) {
        Ok(a) => a,
        Err(e) => return arg_error(&e),
    };
    if let Err(code) = settle(&mut a) {
        return code;
    }
    if let Some(code) = skeleton(&a, "GetCallerIdentity") {
        return code;
    }
    let key = std::env::var("AWS_ACCESS_KEY_ID")
        .ok()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    let doc = ebsim::ec2::wire::json::Obj::new()
        .put("UserId", key)
        .put("Account", ebsim::ec2::model::OWNER_ID)
        .put(
            "Arn",
            format!("arn:aws:iam::{}:user/ebsim", ebsim::ec2::model::OWNER_ID),
        )
        .done();
    print_response(&doc, &a, "GetCallerIdentity")
}

/// `ebsim clock` and `ebsim clock advance DURATION`.
pub fn run_clock(args: Vec<OsString>) -> i32 {
    match super::commands::parse::<Clock>(&args) {
        Ok(c) => clock(&c),
        Err(code) => code,
    }
}

/// `ebsim clock`: the virtual time, its mode and what is due next, after
/// moving it when asked.
pub fn clock(c: &Clock) -> i32 {
    let ec2 = match super::env::ec2(DEFAULT_REGION) {
        Ok(e) => e,
        Err(e) => {
            err(&format!("ebsim clock: {e}\n"));
            return 1;
        }
    };
    let change = c.action.as_ref();
    let res = ec2.transact(|t| {
        match change {
            Some(ClockAction::Advance { duration }) => t.advance(*duration)?,
            Some(ClockAction::Reset) => {
                t.reset_clock()?;
            }
            None => {}
        }
        Ok((t.now(), t.upcoming()))
    });
    match res {
        Ok((now, next)) => {
            let mut s = format!("{}\nmode: {}\n", now.to_wire(), ec2.mode().describe());
            if !next.is_empty() {
                s.push_str("next:\n");
                for (at, what) in next {
                    s.push_str(&format!(
                        "  in {:>8}  {what}\n",
                        ebsim::ec2::time::format_duration(at.since(now))
                    ));
                }
            }
            out(&s);
            0
        }
        Err(e @ ebsim::ec2::Error::ClockLimit { .. }) => {
            err(&format!("ebsim clock: {e}\n"));
            2
        }
        Err(e) => {
            err(&format!("ebsim clock: {e}\n"));
            1
        }
    }
}
