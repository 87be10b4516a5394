//! File names in messages, quoted as gnulib's quotearg quotes them for
//! coreutils (measured against coreutils 9.1):
//!
//! - [`quotef`] (shell-escape style): the name as is when a shell would
//!   take it as one word; else in single quotes, with `'` as `'\''`,
//!   control characters and bytes that are not text as `$'\n'`/`$'\ooo'`
//!   outside the quotes; a name whose only problem is a single quote (and
//!   characters that mean the same in C and shell double quotes) in double
//!   quotes instead.
//! - [`quoteaf`] (shell-escape-always): the same, always quoted.
//! - [`quote`] (locale style): `‘name’` in a UTF-8 locale, `'name'` in C,
//!   with C escapes inside.

/// One character of a name.
enum Piece<'a> {
    /// Printable text (one character).
    Text(&'a str),
    /// A byte that must be escaped (control, DEL, not UTF-8, or not ASCII
    /// in the C locale).
    Byte(u8),
}

fn pieces(s: &[u8], utf8: bool) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let valid = match std::str::from_utf8(rest) {
            Ok(v) => v,
            Err(e) => {
                // OK to unwrap: the prefix up to valid_up_to is UTF-8.
                #[allow(clippy::unwrap_used)]
                let v = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap();
                v
            }
        };
        for (i, c) in valid.char_indices() {
            let piece = &valid[i..i + c.len_utf8()];
            if (c as u32) < 0x20 || c == '\u{7f}' || (!c.is_ascii() && (!utf8 || c.is_control())) {
                for &b in piece.as_bytes() {
                    out.push(Piece::Byte(b));
                }
            } else {
                out.push(Piece::Text(piece));
            }
        }
        let n = valid.len();
        if n < rest.len() {
            out.push(Piece::Byte(rest[n]));
            rest = &rest[n + 1..];
        } else {
            rest = &[];
        }
    }
    out
}

fn c_escape(b: u8) -> String {
    match b {
        7 => "\\a".into(),
        8 => "\\b".into(),
        9 => "\\t".into(),
        10 => "\\n".into(),
        11 => "\\v".into(),
        12 => "\\f".into(),
        13 => "\\r".into(),
        _ => format!("\\{b:03o}"),
    }
}

/// Characters that make a shell word need quotes (`#` and `~` only at the
/// start; `:` only in messages, which coreutils quotes with `:` added).
fn shell_special(c: &str, first: bool, colon: bool) -> bool {
    match c {
        ":" => colon,
        " " | "!" | "\"" | "$" | "&" | "'" | "(" | ")" | "*" | ";" | "<" | "=" | ">" | "?"
        | "[" | "\\" | "^" | "`" | "|" => true,
        "#" | "~" => first,
        _ => false,
    }
}

/// Characters that read the same inside C and shell double quotes.
fn dq_compat(c: &str) -> bool {
    let b = c.as_bytes()[0];
    b.is_ascii_alphanumeric()
        || !c.is_ascii()
        || matches!(
            c,
            "%" | "+" | "," | "-" | "." | "/" | ":" | "@" | "]" | "_" | " " | "'"
        )
}

fn shell_escape(s: &[u8], always: bool, utf8: bool, colon: bool) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let ps = pieces(s, utf8);
    let mut needs = false;
    let mut escapes = false;
    let mut squote = false;
    let mut compat = true;
    for (i, p) in ps.iter().enumerate() {
        match p {
            Piece::Byte(_) => {
                escapes = true;
                compat = false;
            }
            Piece::Text(t) => {
                if shell_special(t, i == 0, colon) {
                    needs = true;
                }
                if *t == "'" {
                    squote = true;
                }
                if !dq_compat(t) {
                    compat = false;
                }
            }
        }
    }
    if !needs && !escapes {
        return if always {
            format!("'{}'", String::from_utf8_lossy(s))
        } else {
            String::from_utf8_lossy(s).into_owned()
        };
    }
    if squote && compat {
        return format!("\"{}\"", String::from_utf8_lossy(s));
    }
    let mut out = String::from("'");
    let mut quoted = true;
    let mut i = 0;
    while i < ps.len() {
        match &ps[i] {
            Piece::Text(t) => {
                if !quoted {
                    out.push('\'');
                    quoted = true;
                }
                if *t == "'" {
                    out.push_str("'\\''");
                } else {
                    out.push_str(t);
                }
                i += 1;
            }
            Piece::Byte(_) => {
                if quoted {
                    out.push('\'');
                    quoted = false;
                }
                out.push_str("$'");
                while let Some(Piece::Byte(b)) = ps.get(i) {
                    out.push_str(&c_escape(*b));
                    i += 1;
                }
                out.push('\'');
            }
        }
    }
    if quoted {
        out.push('\'');
    }
    out
}

/// coreutils `quotef`: shell-escape quoting, only when needed.
pub fn quotef(s: &[u8], utf8: bool) -> String {
    shell_escape(s, false, utf8, true)
}

/// coreutils `quoteaf`: shell-escape quoting, always quoted.
pub fn quoteaf(s: &[u8], utf8: bool) -> String {
    shell_escape(s, true, utf8, true)
}

/// A file name as `ls` shows it in the shell-escape styles (`always`:
/// shell-escape-always): as [`quotef`]/[`quoteaf`], but a `:` needs no
/// quotes.
pub fn shell_escape_name(s: &[u8], always: bool, utf8: bool) -> String {
    shell_escape(s, always, utf8, false)
}

/// coreutils `quote`: locale quotes around a C-escaped name.
pub fn quote(s: &[u8], utf8: bool) -> String {
    let (l, r) = if utf8 {
        ("\u{2018}", "\u{2019}")
    } else {
        ("'", "'")
    };
    let mut out = String::from(l);
    for p in pieces(s, utf8) {
        match p {
            Piece::Text("\\") => out.push_str("\\\\"),
            Piece::Text(t) => out.push_str(t),
            Piece::Byte(b) => out.push_str(&c_escape(b)),
        }
    }
    out.push_str(r);
    out
}

/// gnulib's `c` quoting style (`outer`: in double quotes, as `ls -Q`)
/// and `escape` style (without them: `ls -b`): backslash escapes for `\`,
/// the control characters and bytes that are not text (`\n`, `\ooo`), a
/// double quote inside double quotes, and each byte of `also` (ls adds
/// the space in escape style and its indicator characters with `-F`).
pub fn c_style(s: &[u8], utf8: bool, outer: bool, also: &[u8]) -> String {
    let mut out = String::new();
    if outer {
        out.push('"');
    }
    for p in pieces(s, utf8) {
        match p {
            Piece::Text("\\") => out.push_str("\\\\"),
            Piece::Text("\"") if outer => out.push_str("\\\""),
            Piece::Text(t) => {
                if t.len() == 1 && t.as_bytes().first().is_some_and(|b| also.contains(b)) {
                    out.push('\\');
                }
                out.push_str(t);
            }
            Piece::Byte(b) => out.push_str(&c_escape(b)),
        }
    }
    if outer {
        out.push('"');
    }
    out
}

/// A name as ls prints it in the literal style on a terminal (`-q`):
/// control characters and bytes that are not text as `?`.
pub fn qmark(s: &[u8], utf8: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for p in pieces(s, utf8) {
        match p {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Byte(_) => out.push(b'?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of coreutils 9.1 `cat NAME` (quotef) in C.UTF-8.
    #[test]
    fn shell_escape_as_measured() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", "plain"),
            (b"a b", "'a b'"),
            (b"it's", "\"it's\""),
            (b"a\nb", "'a'$'\\n''b'"),
            (b"x\"y", "'x\"y'"),
            (b"tab\there", "'tab'$'\\t''here'"),
            ("é".as_bytes(), "é"),
            (b"\xff", "''$'\\377'"),
            (b"a'$b", "'a'\\''$b'"),
            (b"a'b c", "\"a'b c\""),
            (b"a'\nb", "'a'\\'''$'\\n''b'"),
            (b"\n", "''$'\\n'"),
            (b"a\x01b", "'a'$'\\001''b'"),
            (b"", "''"),
            (b"a'?b", "'a'\\''?b'"),
            (b"a':b", "\"a':b\""),
            (b"a'{b", "'a'\\''{b'"),
            (b"#a", "'#a'"),
            (b"a#", "a#"),
            (b"~a", "'~a'"),
            (b"a~", "a~"),
            (b"a:b", "'a:b'"),
            (b"a%b", "a%b"),
            (b"'", "\"'\""),
        ];
        for (name, want) in cases {
            assert_eq!(
                quotef(name, true),
                *want,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(quoteaf(b"plain", true), "'plain'");
        assert_eq!(quoteaf(b"it's", true), "\"it's\"");
    }

    #[test]
    fn locale_quotes() {
        assert_eq!(quote(b"/tmp", true), "\u{2018}/tmp\u{2019}");
        assert_eq!(quote(b"a\nb", true), "\u{2018}a\\nb\u{2019}");
        assert_eq!(quote(b"/tmp", false), "'/tmp'");
    }
}
