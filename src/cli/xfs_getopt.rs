//! A small copy of glibc `getopt` behaviour for the xfsprogs applets, whose
//! parsing clap cannot reproduce: short options only, grouped flags (`-fq`),
//! attached or separate arguments (`-Lfoo`, `-L foo`), operands permuted to
//! the end, `--` ending options, and glibc's own error messages.

use std::ffi::OsString;

/// One parsed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// An option without argument.
    Flag(char),
    /// An option with its argument.
    Arg(char, String),
    /// An option not in the spec (glibc already described it).
    Invalid(char),
    /// An option missing its argument.
    Missing(char),
    /// A long option (`--name`), which these tools do not take, except
    /// mkfs.xfs's `--unsupported`.
    Long(String),
}

/// The result: options in order, then operands, and glibc's messages for
/// bad options (to print before the tool's own reaction).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub opts: Vec<Opt>,
    pub operands: Vec<OsString>,
}

/// Parses `args` (without the program name) against an optstring such as
/// `"dD:n"` (a colon marks an argument).
pub fn getopt(args: &[OsString], spec: &str) -> Parsed {
    let takes_arg = |c: char| -> Option<bool> {
        let mut it = spec.chars().peekable();
        while let Some(x) = it.next() {
            let has = it.peek() == Some(&':');
            if has {
                it.next();
            }
            if x == c && x != ':' {
                return Some(has);
            }
        }
        None
    };
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        i += 1;
        if a == "--" {
            p.operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            p.opts.push(Opt::Long(long.to_string()));
            continue;
        }
        if !a.starts_with('-') || a == "-" {
            p.operands.push(args[i - 1].clone());
            continue;
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            match takes_arg(c) {
                None => p.opts.push(Opt::Invalid(c)),
                Some(false) => p.opts.push(Opt::Flag(c)),
                Some(true) => {
                    if k < chars.len() {
                        p.opts.push(Opt::Arg(c, chars[k..].iter().collect()));
                    } else if i < args.len() {
                        p.opts
                            .push(Opt::Arg(c, args[i].to_string_lossy().into_owned()));
                        i += 1;
                    } else {
                        p.opts.push(Opt::Missing(c));
                    }
                    break;
                }
            }
        }
    }
    p
}

/// glibc's message for an [`Opt::Invalid`] / [`Opt::Missing`] /
/// unrecognized long option, for `prog`.
pub fn glibc_message(prog: &str, o: &Opt) -> String {
    match o {
        Opt::Invalid(c) => format!("{prog}: invalid option -- '{c}'\n"),
        Opt::Missing(c) => format!("{prog}: option requires an argument -- '{c}'\n"),
        Opt::Long(l) => format!("{prog}: unrecognized option '--{l}'\n"),
        _ => String::new(),
    }
}

/// C `strtoll(s, NULL, 10)`: optional spaces and sign, then digits; stops at
/// the first non-digit; 0 when there are none; saturates on overflow.
pub fn strtoll(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in rest.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        let d = i64::from(b - b'0');
        v = match v.checked_mul(10).and_then(|x| {
            if neg {
                x.checked_sub(d)
            } else {
                x.checked_add(d)
            }
        }) {
            Some(x) => x,
            None => return if neg { i64::MIN } else { i64::MAX },
        };
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_like_glibc() {
        let p = getopt(
            &os(&["-fq", "img", "-Lab", "-d", "size=1g", "-z", "--", "-x"]),
            "d:fL:q",
        );
        assert_eq!(
            p.opts,
            vec![
                Opt::Flag('f'),
                Opt::Flag('q'),
                Opt::Arg('L', "ab".into()),
                Opt::Arg('d', "size=1g".into()),
                Opt::Invalid('z'),
            ]
        );
        assert_eq!(p.operands, os(&["img", "-x"]));
        assert_eq!(getopt(&os(&["-D"]), "D:").opts, vec![Opt::Missing('D')]);
        assert_eq!(strtoll("1G"), 1);
        assert_eq!(strtoll(" -12x"), -12);
        assert_eq!(strtoll("x"), 0);
        assert_eq!(strtoll("99999999999999999999"), i64::MAX);
    }
}
