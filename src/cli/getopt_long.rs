//! glibc's `getopt_long` (2.36), for applets whose real tool parses with
//! it (lsblk, df): argument permutation, clustered short options, `-oARG`
//! and `-o ARG`, `--name=ARG` and `--name ARG`, unique prefixes of long
//! names, and glibc's messages for each failure. clap cannot copy these
//! messages, so the parsing is by hand.

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
#[derive(Debug, Clone, Copy)]
pub struct LongOpt {
    /// The name without `--`.
    pub name: &'static str,
    /// Its argument.
    pub has_arg: HasArg,
    /// What getopt returns for it.
    pub val: char,
}

/// One option as getopt returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The short letter or the long option's value.
    pub val: char,
    /// Its argument.
    pub arg: Option<String>,
    /// True when it was given as a long option (some messages differ:
    /// `-B` vs `--block-size`).
    pub long: bool,
    /// The long option's name, when `long`.
    pub name: &'static str,
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
}

fn short_kind(optstring: &str, c: char) -> Option<HasArg> {
    if c == ':' {
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

/// Parses `args` (without the program name) as glibc `getopt_long` with
/// permutation: returns the options in order and the operands in order.
pub fn parse(
    args: &[String],
    optstring: &str,
    longopts: &[LongOpt],
) -> Result<(Vec<Parsed>, Vec<String>), Error> {
    let mut opts = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let o = match find_long(longopts, name) {
                Ok(o) => o,
                Err(c) if c.is_empty() => return Err(Error::Unrecognized(a.clone())),
                Err(c) => return Err(Error::Ambiguous(a.clone(), c)),
            };
            let arg = match (o.has_arg, attached) {
                (HasArg::No, Some(_)) => return Err(Error::LongNoArg(o.name)),
                (HasArg::No, None) => None,
                (HasArg::Optional, v) => v,
                (HasArg::Required, Some(v)) => Some(v),
                (HasArg::Required, None) => {
                    if i < args.len() {
                        i += 1;
                        Some(args[i - 1].clone())
                    } else {
                        return Err(Error::LongMissing(o.name));
                    }
                }
            };
            opts.push(Parsed {
                val: o.val,
                arg,
                long: true,
                name: o.name,
            });
            continue;
        }
        if !a.starts_with('-') || a == "-" {
            operands.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            let rest: String = chars[j..].iter().collect();
            let arg = match short_kind(optstring, c) {
                None => return Err(Error::Invalid(c)),
                Some(HasArg::No) => None,
                Some(HasArg::Optional) => {
                    j = chars.len();
                    (!rest.is_empty()).then_some(rest)
                }
                Some(HasArg::Required) => {
                    j = chars.len();
                    if !rest.is_empty() {
                        Some(rest)
                    } else if i < args.len() {
                        i += 1;
                        Some(args[i - 1].clone())
                    } else {
                        return Err(Error::ShortMissing(c));
                    }
                }
            };
            opts.push(Parsed {
                val: c,
                arg,
                long: false,
                name: "",
            });
        }
    }
    Ok((opts, operands))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "nodeps",
            has_arg: HasArg::No,
            val: 'd',
        },
        LongOpt {
            name: "noempty",
            has_arg: HasArg::No,
            val: 'A',
        },
        LongOpt {
            name: "noheadings",
            has_arg: HasArg::No,
            val: 'n',
        },
        LongOpt {
            name: "output",
            has_arg: HasArg::Required,
            val: 'o',
        },
        LongOpt {
            name: "output-all",
            has_arg: HasArg::No,
            val: 'O',
        },
        LongOpt {
            name: "tree",
            has_arg: HasArg::Optional,
            val: 'T',
        },
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn clusters_permutation_and_args() {
        let (o, rest) = parse(
            &s(&["-bno", "NAME", "/dev/x", "-oSIZE", "--", "-d"]),
            "bdno:T::",
            LONG,
        )
        .unwrap();
        let v: Vec<(char, Option<&str>)> = o.iter().map(|p| (p.val, p.arg.as_deref())).collect();
        assert_eq!(
            v,
            vec![
                ('b', None),
                ('n', None),
                ('o', Some("NAME")),
                ('o', Some("SIZE"))
            ]
        );
        assert_eq!(rest, s(&["/dev/x", "-d"]));
        let (o, _) = parse(
            &s(&["--output=A", "--output", "B", "--nod", "--tree", "-Tx"]),
            "o:T::d",
            LONG,
        )
        .unwrap();
        let v: Vec<(char, Option<&str>)> = o.iter().map(|p| (p.val, p.arg.as_deref())).collect();
        assert_eq!(
            v,
            vec![
                ('o', Some("A")),
                ('o', Some("B")),
                ('d', None),
                ('T', None),
                ('T', Some("x"))
            ]
        );
    }

    #[test]
    fn messages() {
        let e = |a: &[&str]| parse(&s(a), "bo:", LONG).unwrap_err().message("lsblk");
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
}
