//! glibc's `getopt` and `getopt_long` (2.36), the one argument parser of
//! every emulated applet: their messages are part of what the real tools
//! print, so clap cannot stand in for it.
//!
//! What it copies: argument permutation (options anywhere before `--`,
//! operands kept in order) unless the optstring starts with `+`; clusters
//! of short options (`-fq`); arguments attached or separate (`-Lfoo`,
//! `-L foo`) and optional ones only attached (`-Tx`); `--name=ARG` and
//! `--name ARG`; unique prefixes of long names (several entries meaning the
//! same option count as one); and glibc's message for each failure.
//!
//! [`getopt`] is glibc's `getopt()`, which passes no long-option table: then
//! `--foo` is not a long option but a cluster of short ones starting with
//! `-` (`invalid option -- '-'`, as resize2fs and xfs_growfs print). With a
//! table, even an empty one, `--foo` is an unrecognized long option.
//!
//! The result is per option ([`Parsed::items`]): a tool that reacts to
//! each `getopt` return in turn (mkfs.xfs prints glibc's message and then
//! its own) sees the errors where glibc reports them; [`Parsed::strict`]
//! gives the first error instead, for tools that stop at it.

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// `no_argument`
    No,
    /// `required_argument`
    Required,
    /// `optional_argument` (only attached: `-Tx`, `--tree=x`)
    Optional,
}

/// One long option: its name, argument kind and the value getopt returns
/// (the short letter it is a synonym of, or a private code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongOpt {
    /// The name without `--`.
    pub name: &'static str,
    /// Its argument.
    pub has_arg: HasArg,
    /// What getopt returns for it.
    pub val: char,
}

impl LongOpt {
    /// An option without argument (`no_argument`).
    pub const fn flag(name: &'static str, val: char) -> LongOpt {
        LongOpt {
            name,
            has_arg: HasArg::No,
            val,
        }
    }

    /// An option with a required argument (`required_argument`).
    pub const fn arg(name: &'static str, val: char) -> LongOpt {
        LongOpt {
            name,
            has_arg: HasArg::Required,
            val,
        }
    }

    /// An option with an optional argument (`optional_argument`).
    pub const fn optional(name: &'static str, val: char) -> LongOpt {
        LongOpt {
            name,
            has_arg: HasArg::Optional,
            val,
        }
    }
}

/// One option as getopt returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The short letter or the long option's value.
    pub val: char,
    /// Its argument.
    pub arg: Option<String>,
    /// The long option's name, when it was given as one (some messages
    /// differ: `-B` vs `--block-size`).
    pub long: Option<&'static str>,
}

impl Opt {
    /// The option as the user wrote it: `--name` or `-c`.
    pub fn spelling(&self) -> String {
        match self.long {
            Some(n) => format!("--{n}"),
            None => format!("-{}", self.val),
        }
    }

    /// The argument, or an empty string.
    pub fn arg_or_empty(&self) -> String {
        self.arg.clone().unwrap_or_default()
    }
}

/// getopt's failures, each with glibc's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `invalid option -- 'q'`
    Invalid(char),
    /// `option requires an argument -- 'o'`
    ShortMissing(char),
    /// `unrecognized option '--foo=bar'`
    Unrecognized(String),
    /// `option '--no' is ambiguous; possibilities: '--nodeps' ...`
    Ambiguous(String, Vec<&'static str>),
    /// `option '--output' requires an argument`
    LongMissing(&'static str),
    /// `option '--bytes' doesn't allow an argument`
    LongNoArg(&'static str),
}

impl Error {
    /// glibc's message, prefixed by the program name, with its newline.
    pub fn message(&self, prog: &str) -> String {
        format!("{prog}: {}\n", self.text())
    }

    /// glibc's message alone (no program name, no newline).
    pub fn text(&self) -> String {
        match self {
            Error::Invalid(c) => format!("invalid option -- '{c}'"),
            Error::ShortMissing(c) => format!("option requires an argument -- '{c}'"),
            Error::Unrecognized(s) => format!("unrecognized option '{s}'"),
            Error::Ambiguous(s, names) => {
                let mut m = format!("option '{s}' is ambiguous; possibilities:");
                for n in names {
                    m.push_str(&format!(" '--{n}'"));
                }
                m
            }
            Error::LongMissing(n) => format!("option '--{n}' requires an argument"),
            Error::LongNoArg(n) => format!("option '--{n}' doesn't allow an argument"),
        }
    }

    /// glibc's `optopt` after this failure: the short letter, or NUL for a
    /// long option it could not match.
    pub fn optopt(&self) -> char {
        match self {
            Error::Invalid(c) | Error::ShortMissing(c) => *c,
            _ => '\0',
        }
    }
}

/// What getopt returned over a whole command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Each return of getopt in order: an option, or a failure (after
    /// which glibc goes on with the next option).
    pub items: Vec<Result<Opt, Error>>,
    /// The operands, in order.
    pub operands: Vec<String>,
}

impl Parsed {
    /// The options and operands, or the first failure (for tools whose
    /// loop exits at getopt's first `?`).
    pub fn strict(self) -> Result<(Vec<Opt>, Vec<String>), Error> {
        let opts = self
            .items
            .into_iter()
            .collect::<Result<Vec<Opt>, Error>>()?;
        Ok((opts, self.operands))
    }
}

fn short_kind(optstring: &str, c: char) -> Option<HasArg> {
    if c == ':' || c == '+' {
        return None;
    }
    let i = optstring.find(c)?;
    let rest = &optstring[i + c.len_utf8()..];
    Some(if rest.starts_with("::") {
        HasArg::Optional
    } else if rest.starts_with(':') {
        HasArg::Required
    } else {
        HasArg::No
    })
}

/// Finds the long option `name` names: an exact match, else the only one
/// it is a prefix of (several entries that all mean the same count as one).
fn find_long<'a>(longopts: &'a [LongOpt], name: &str) -> Result<&'a LongOpt, Vec<&'static str>> {
    if let Some(o) = longopts.iter().find(|o| o.name == name) {
        return Ok(o);
    }
    let cands: Vec<&LongOpt> = longopts
        .iter()
        .filter(|o| o.name.starts_with(name))
        .collect();
    match cands.first() {
        None => Err(Vec::new()),
        Some(first) => {
            let same = cands
                .iter()
                .all(|o| o.has_arg == first.has_arg && o.val == first.val);
            if same {
                Ok(first)
            } else {
                Err(cands.iter().map(|o| o.name).collect())
            }
        }
    }
}

/// glibc `getopt(argc, argv, optstring)`: short options only (`args`
/// without the program name).
pub fn getopt(args: &[String], optstring: &str) -> Parsed {
    parse(args, optstring, None)
}

/// glibc `getopt_long(argc, argv, optstring, longopts, NULL)` (`args`
/// without the program name).
pub fn getopt_long(args: &[String], optstring: &str, longopts: &[LongOpt]) -> Parsed {
    parse(args, optstring, Some(longopts))
}

fn parse(args: &[String], optstring: &str, longopts: Option<&[LongOpt]>) -> Parsed {
    let in_order = optstring.starts_with('+');
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.operands.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            if in_order {
                p.operands.extend(args[i - 1..].iter().cloned());
                break;
            }
            p.operands.push(a.clone());
            continue;
        }
        if let (Some(longopts), Some(body)) = (longopts, a.strip_prefix("--")) {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let o = match find_long(longopts, name) {
                Ok(o) => o,
                Err(c) if c.is_empty() => {
                    p.items.push(Err(Error::Unrecognized(a.clone())));
                    continue;
                }
                Err(c) => {
                    p.items.push(Err(Error::Ambiguous(a.clone(), c)));
                    continue;
                }
            };
            let arg = match (o.has_arg, attached) {
                (HasArg::No, Some(_)) => Err(Error::LongNoArg(o.name)),
                (HasArg::No, None) => Ok(None),
                (HasArg::Optional, v) => Ok(v),
                (HasArg::Required, Some(v)) => Ok(Some(v)),
                (HasArg::Required, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Ok(Some(v.clone()))
                    }
                    None => Err(Error::LongMissing(o.name)),
                },
            };
            p.items.push(arg.map(|arg| Opt {
                val: o.val,
                arg,
                long: Some(o.name),
            }));
            continue;
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            let rest: String = chars[j..].iter().collect();
            let arg = match short_kind(optstring, c) {
                None => {
                    p.items.push(Err(Error::Invalid(c)));
                    continue;
                }
                Some(HasArg::No) => None,
                Some(HasArg::Optional) => {
                    j = chars.len();
                    (!rest.is_empty()).then_some(rest)
                }
                Some(HasArg::Required) => {
                    j = chars.len();
                    if !rest.is_empty() {
                        Some(rest)
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        Some(v.clone())
                    } else {
                        p.items.push(Err(Error::ShortMissing(c)));
                        continue;
                    }
                }
            };
            p.items.push(Ok(Opt {
                val: c,
                arg,
                long: None,
            }));
        }
    }
    p
}

/// The arguments as Strings (lossy; device paths are UTF-8 in practice).
pub fn strings(args: &[std::ffi::OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The arguments after `argv[0]`, as strings (see [`strings`]).
pub fn after_argv0(args: &[std::ffi::OsString]) -> Vec<String> {
    strings(args.get(1..).unwrap_or(&[]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        LongOpt::flag("nodeps", 'd'),
        LongOpt::flag("noempty", 'A'),
        LongOpt::flag("noheadings", 'n'),
        LongOpt::arg("output", 'o'),
        LongOpt::flag("output-all", 'O'),
        LongOpt::optional("tree", 'T'),
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn vals(o: &[Opt]) -> Vec<(char, Option<&str>)> {
        o.iter().map(|p| (p.val, p.arg.as_deref())).collect()
    }

    #[test]
    fn clusters_permutation_and_args() {
        let (o, rest) = getopt_long(
            &s(&["-bno", "NAME", "/dev/x", "-oSIZE", "--", "-d"]),
            "bdno:T::",
            LONG,
        )
        .strict()
        .unwrap();
        assert_eq!(
            vals(&o),
            vec![
                ('b', None),
                ('n', None),
                ('o', Some("NAME")),
                ('o', Some("SIZE"))
            ]
        );
        assert_eq!(rest, s(&["/dev/x", "-d"]));
        let (o, _) = getopt_long(
            &s(&["--output=A", "--output", "B", "--nod", "--tree", "-Tx"]),
            "o:T::d",
            LONG,
        )
        .strict()
        .unwrap();
        assert_eq!(
            vals(&o),
            vec![
                ('o', Some("A")),
                ('o', Some("B")),
                ('d', None),
                ('T', None),
                ('T', Some("x"))
            ]
        );
        assert_eq!(o[2].long, Some("nodeps"));
        assert_eq!(o[2].spelling(), "--nodeps");
        assert_eq!(o[4].spelling(), "-T");
    }

    #[test]
    fn messages() {
        let e = |a: &[&str]| {
            getopt_long(&s(a), "bo:", LONG)
                .strict()
                .unwrap_err()
                .message("lsblk")
        };
        assert_eq!(
            e(&["--no"]),
            "lsblk: option '--no' is ambiguous; possibilities: '--nodeps' '--noempty' '--noheadings'\n"
        );
        assert_eq!(
            e(&["--out=NAME"]),
            "lsblk: option '--out=NAME' is ambiguous; possibilities: '--output' '--output-all'\n"
        );
        assert_eq!(
            e(&["--foo=bar"]),
            "lsblk: unrecognized option '--foo=bar'\n"
        );
        assert_eq!(
            e(&["--nodeps=1"]),
            "lsblk: option '--nodeps' doesn't allow an argument\n"
        );
        assert_eq!(
            e(&["--output"]),
            "lsblk: option '--output' requires an argument\n"
        );
        assert_eq!(e(&["-bq"]), "lsblk: invalid option -- 'q'\n");
        assert_eq!(e(&["-o"]), "lsblk: option requires an argument -- 'o'\n");
    }

    #[test]
    fn short_only_and_per_option_results() {
        let p = getopt(
            &s(&["-fq", "img", "-Lab", "-d", "size=1g", "-z", "--", "-x"]),
            "d:fL:q",
        );
        assert_eq!(p.operands, s(&["img", "-x"]));
        assert_eq!(p.items.len(), 5);
        assert_eq!(p.items[4], Err(Error::Invalid('z')));
        let ok: Vec<Opt> = p
            .items
            .iter()
            .take(4)
            .cloned()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            vals(&ok),
            vec![
                ('f', None),
                ('q', None),
                ('L', Some("ab")),
                ('d', Some("size=1g"))
            ]
        );
        // Without a long table `--foo` is a cluster starting with '-'; glibc
        // goes on after each failure.
        let p = getopt(&s(&["--fq"]), "q");
        assert_eq!(
            p.items,
            vec![
                Err(Error::Invalid('-')),
                Err(Error::Invalid('f')),
                Ok(Opt {
                    val: 'q',
                    arg: None,
                    long: None
                })
            ]
        );
        // With a table, even an empty one, it is a long option.
        let p = getopt_long(&s(&["--fq"]), "q", &[]);
        assert_eq!(p.items, vec![Err(Error::Unrecognized("--fq".into()))]);
        assert_eq!(p.items[0].clone().unwrap_err().optopt(), '\0');
        assert_eq!(
            getopt(&s(&["-D"]), "D:").items,
            vec![Err(Error::ShortMissing('D'))]
        );
    }

    #[test]
    fn plus_stops_at_the_first_operand() {
        let p = getopt(&s(&["-V", "img", "-t", "x"]), "+t:V");
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.operands, s(&["img", "-t", "x"]));
    }
}
