//! Pieces shared by the e2fsprogs look-alike applets (mkfs.ext4/mke2fs and
//! resize2fs): their getopt, number parsing, progress meter and version
//! banners. The real tools use POSIX getopt with glibc's argument
//! permutation, which clap cannot reproduce message for message, so the
//! parsing is by hand.

use std::ffi::OsString;

/// e2fsprogs version string of the tools ebsim copies.
pub const E2FSPROGS_VERSION: &str = "1.47.0";
/// Its release date as the banners print it.
pub const E2FSPROGS_DATE: &str = "5-Feb-2023";

/// One parsed option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The option letter.
    pub flag: char,
    /// Its argument, when the letter takes one.
    pub arg: Option<String>,
}

/// getopt's two failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// `invalid option -- 'c'`
    Invalid(char),
    /// `option requires an argument -- 'c'`
    MissingArg(char),
}

impl GetoptError {
    /// glibc's message (without the trailing newline), prefixed by argv[0].
    pub fn message(&self, argv0: &str) -> String {
        match self {
            GetoptError::Invalid(c) => format!("{argv0}: invalid option -- '{c}'"),
            GetoptError::MissingArg(c) => format!("{argv0}: option requires an argument -- '{c}'"),
        }
    }
}

/// glibc `getopt(argc, argv, optstring)` with argument permutation:
/// options anywhere before `--`, operands collected in order.
pub fn getopt(args: &[String], optstring: &str) -> Result<(Vec<Opt>, Vec<String>), GetoptError> {
    let takes_arg = |c: char| -> Option<bool> {
        let i = optstring.find(c)?;
        Some(optstring[i + c.len_utf8()..].starts_with(':'))
    };
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
        if !a.starts_with('-') || a == "-" {
            operands.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            match takes_arg(c) {
                None => return Err(GetoptError::Invalid(c)),
                Some(false) => opts.push(Opt { flag: c, arg: None }),
                Some(true) => {
                    let rest: String = chars[j..].iter().collect();
                    let arg = if !rest.is_empty() {
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(GetoptError::MissingArg(c));
                    };
                    opts.push(Opt {
                        flag: c,
                        arg: Some(arg),
                    });
                    j = chars.len();
                }
            }
        }
    }
    Ok((opts, operands))
}

/// The arguments as Strings (lossy; device paths here are UTF-8 in practice).
pub fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// `strtoull(arg, &end, 0)`: value and the unparsed rest.
fn strtoull(s: &str) -> (u64, &str) {
    let t = s.trim_start();
    let (radix, body) = if let Some(r) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, r)
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let mut v: u64 = 0;
    let mut used = 0;
    for (k, c) in body.char_indices() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
        used = k + c.len_utf8();
    }
    if used == 0 && radix == 16 {
        // "0x" alone: strtoull parses the "0".
        return (0, &t[1..]);
    }
    (v, &body[used..])
}

/// e2p's `parse_num_blocks2`: a number with an optional K/M/G/T (powers of
/// 1024 bytes) or s (512-byte sectors) suffix, in blocks of
/// `1024 << log_block_size` (a bare number is already in blocks), or in
/// bytes when `log_block_size` < 0. 0 means invalid.
pub fn parse_num_blocks2(arg: &str, log_block_size: i32) -> u64 {
    let (mut num, rest) = strtoull(arg);
    let mut it = rest.chars();
    let suffix = it.next();
    if it.next().is_some() {
        return 0;
    }
    let shift_k = |n: u64| -> u64 {
        if log_block_size < 0 {
            n << 10
        } else {
            n >> log_block_size
        }
    };
    match suffix {
        None => num,
        Some('T' | 't') => {
            num <<= 30;
            shift_k(num)
        }
        Some('G' | 'g') => {
            num <<= 20;
            shift_k(num)
        }
        Some('M' | 'm') => {
            num <<= 10;
            shift_k(num)
        }
        Some('K' | 'k') => shift_k(num),
        Some('s') => {
            if log_block_size < 0 {
                num << 9
            } else {
                num >> (1 + log_block_size)
            }
        }
        Some(_) => 0,
    }
}

/// `strtoul(arg, &end, 0)` that must consume everything (`*end == 0`).
pub fn strtoul_all(arg: &str) -> Option<u64> {
    let (v, rest) = strtoull(arg);
    if rest.is_empty() && !arg.is_empty() {
        Some(v)
    } else {
        None
    }
}

/// `int_log10` of e2fsprogs: the number of decimal digits (0 for 0).
pub fn int_log10(mut n: u64) -> usize {
    let mut l = 0;
    while n > 0 {
        n /= 10;
        l += 1;
    }
    l
}

/// The numeric progress meter (lib/ext2fs/progress.c) for a run that
/// finishes within a second: init prints the label, the first update
/// prints `0/max` and backs over it, close blanks it and prints the
/// message. With `E2FSPROGS_SKIP_PROGRESS` the number is not printed.
pub struct Progress {
    width: usize,
    skip: bool,
}

impl Progress {
    /// Starts a meter; returns the text to print.
    pub fn init(label: Option<&str>, max: u64, text: &mut String) -> Self {
        if let Some(l) = label {
            text.push_str(l);
        }
        Progress {
            width: int_log10(max),
            skip: std::env::var_os("E2FSPROGS_SKIP_PROGRESS").is_some(),
        }
    }

    /// The first update (value 0, always printed: the meter's clock starts
    /// at 0).
    pub fn first_update(&self, max: u64, text: &mut String) {
        if self.skip {
            return;
        }
        let w = self.width;
        text.push_str(&format!("{:>w$}/{:>w$}", 0, max));
        text.push_str(&"\u{8}".repeat(2 * w + 1));
    }

    /// Closes the meter with `message`.
    pub fn close(&self, message: Option<&str>, text: &mut String) {
        let n = 2 * self.width + 1;
        text.push_str(&" ".repeat(n));
        text.push_str(&"\u{8}".repeat(n));
        if let Some(m) = message {
            text.push_str(m);
        }
    }
}

/// Parses a UUID exactly as libuuid's `uuid_parse` (36 characters,
/// dashes at 8, 13, 18, 23, hex elsewhere).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = (b[i] as char).to_digit(16)?;
        let lo = (b[i + 1] as char).to_digit(16)?;
        out[n] = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    Some(out)
}

/// Formats a UUID the way e2fsprogs prints it.
pub fn format_uuid(u: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*u).hyphenated().to_string()
}

/// A random (version 4) UUID.
pub fn random_uuid() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn getopt_permutes_and_clusters() {
        let (o, rest) = getopt(
            &s(&["img", "-qF", "-L", "lbl", "-Ehash_seed=x", "1G"]),
            "qFL:E:",
        )
        .unwrap();
        assert_eq!(rest, ["img", "1G"]);
        assert_eq!(o.len(), 4);
        assert_eq!(
            o[2],
            Opt {
                flag: 'L',
                arg: Some("lbl".into())
            }
        );
        assert_eq!(o[3].arg.as_deref(), Some("hash_seed=x"));
        assert_eq!(getopt(&s(&["-Z"]), "q"), Err(GetoptError::Invalid('Z')));
        assert_eq!(getopt(&s(&["-L"]), "L:"), Err(GetoptError::MissingArg('L')));
    }

    #[test]
    fn num_blocks() {
        assert_eq!(parse_num_blocks2("8G", 2), 2_097_152);
        assert_eq!(parse_num_blocks2("8G", 0), 8_388_608);
        assert_eq!(parse_num_blocks2("1000", 2), 1000);
        assert_eq!(parse_num_blocks2("16s", 2), 2);
        assert_eq!(parse_num_blocks2("4k", -1), 4096);
        assert_eq!(parse_num_blocks2("1x", 2), 0);
        assert_eq!(parse_num_blocks2("1GB", 2), 0);
        assert_eq!(parse_num_blocks2("0x10", 2), 16);
    }

    #[test]
    fn uuid_parse_is_strict() {
        assert!(parse_uuid("11111111-2222-3333-4444-555555555555").is_some());
        assert!(parse_uuid("111111112222333344445555555555555555").is_none());
        assert!(parse_uuid("1111111-22222-3333-4444-555555555555").is_none());
    }

    #[test]
    fn progress_text() {
        let mut t = String::new();
        let p = Progress::init(Some("L: "), 8, &mut t);
        p.first_update(8, &mut t);
        p.close(Some("done\n"), &mut t);
        if std::env::var_os("E2FSPROGS_SKIP_PROGRESS").is_none() {
            assert_eq!(t, "L: 0/8\u{8}\u{8}\u{8}   \u{8}\u{8}\u{8}done\n");
        }
    }
}
