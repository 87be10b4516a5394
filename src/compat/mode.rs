//! Modes given on a command line (`mkdir -m`): octal, or chmod's symbolic
//! clauses (`u+w,g-r`, `a=rx`, `go=u`), applied as gnulib's `mode_adjust`
//! applies them: a clause without `u`, `g`, `o` or `a` is masked by the
//! umask.

/// One `[ugoa]*[-+=]...` operation.
#[derive(Debug, Clone, Copy)]
struct Op {
    who: u16,
    op: u8,
    perm: u16,
    /// Copy from a class: `u`, `g`, `o` (mask of that class's bits).
    copy: Option<u16>,
    /// `X`: execute only for directories or files already executable.
    cond_x: bool,
    /// No `who` was given: the umask masks the change.
    masked: bool,
}

/// A parsed mode.
#[derive(Debug, Clone)]
pub enum Mode {
    /// An octal mode: exactly these bits.
    Octal(u16),
    /// Symbolic clauses.
    Symbolic(Vec<OpList>),
}

/// The operations of one clause.
#[derive(Debug, Clone)]
pub struct OpList(Vec<Op>);

/// Parses a mode; None when invalid.
pub fn parse(s: &str) -> Option<Mode> {
    if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let v = u32::from_str_radix(s, 8).ok()?;
        if v > 0o7777 {
            return None;
        }
        return Some(Mode::Octal(v as u16));
    }
    let mut clauses = Vec::new();
    for clause in s.split(',') {
        let b = clause.as_bytes();
        let mut i = 0;
        let mut who = 0u16;
        while i < b.len() && matches!(b[i], b'u' | b'g' | b'o' | b'a') {
            who |= match b[i] {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        let masked = who == 0;
        if masked {
            who = 0o7777;
        }
        let mut ops = Vec::new();
        if i >= b.len() {
            return None;
        }
        while i < b.len() {
            let op = b[i];
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            i += 1;
            let mut perm = 0u16;
            let mut copy = None;
            let mut cond_x = false;
            if i < b.len() && matches!(b[i], b'u' | b'g' | b'o') {
                copy = Some(match b[i] {
                    b'u' => 0o700,
                    b'g' => 0o070,
                    _ => 0o007,
                });
                i += 1;
            } else {
                while i < b.len() && matches!(b[i], b'r' | b'w' | b'x' | b'X' | b's' | b't') {
                    match b[i] {
                        b'r' => perm |= 0o444,
                        b'w' => perm |= 0o222,
                        b'x' => perm |= 0o111,
                        b'X' => cond_x = true,
                        b's' => perm |= 0o6000,
                        _ => perm |= 0o1000,
                    }
                    i += 1;
                }
            }
            ops.push(Op {
                who,
                op,
                perm,
                copy,
                cond_x,
                masked,
            });
        }
        clauses.push(OpList(ops));
    }
    Some(Mode::Symbolic(clauses))
}

/// The mode `m` makes of `old` (permission bits and set-id/sticky bits)
/// for a file that `is_dir` or not, under `umask`.
pub fn apply(m: &Mode, old: u16, is_dir: bool, umask: u16) -> u16 {
    match m {
        Mode::Octal(v) => *v,
        Mode::Symbolic(clauses) => {
            let mut cur = old & 0o7777;
            for c in clauses {
                for op in &c.0 {
                    let mut bits = match op.copy {
                        Some(class) => {
                            let v = cur & class;
                            let v = match class {
                                0o700 => v >> 6,
                                0o070 => v >> 3,
                                _ => v,
                            };
                            v * 0o111
                        }
                        None => op.perm,
                    };
                    if op.cond_x && (is_dir || cur & 0o111 != 0) {
                        bits |= 0o111;
                    }
                    let mut who = op.who;
                    if op.masked {
                        who &= !umask;
                    }
                    let change = bits & who;
                    match op.op {
                        b'+' => cur |= change,
                        b'-' => cur &= !change,
                        _ => {
                            // `=` clears the class's bits (not the
                            // set-id bits of a directory unless named).
                            let keep = !op.who | if is_dir { 0o6000 & !bits } else { 0 };
                            cur = (cur & keep) | change;
                        }
                    }
                }
            }
            cur
        }
    }
}

/// The letter `ls -l` shows first for a file of type `kind`.
pub fn type_letter(kind: crate::fs::node::FileType) -> char {
    use crate::fs::node::FileType;
    match kind {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    }
}

/// `ls -l`'s and `stat`'s ten-character mode (gnulib's `filemodestring`):
/// the type letter, then rwx for owner, group and others, with setuid,
/// setgid and sticky shown as s/S, s/S and t/T.
pub fn mode_string(kind: crate::fs::node::FileType, perm: u16) -> String {
    let t = type_letter(kind);
    let bit = |m: u16, c: char| if perm & m != 0 { c } else { '-' };
    let special = |x: bool, s: bool, on: char, off: char| match (x, s) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(perm & 0o100 != 0, perm & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(perm & 0o010 != 0, perm & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(perm & 0o001 != 0, perm & 0o1000 != 0, 't', 'T'));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let s = |m: &str, old, umask| apply(&parse(m).unwrap(), old, true, umask);
        assert_eq!(s("700", 0o777, 0o22), 0o700);
        assert_eq!(s("1777", 0o777, 0o22), 0o1777);
        assert_eq!(s("u+w,g-r", 0o777, 0o22), 0o737);
        assert_eq!(s("a=rx", 0o777, 0o22), 0o555);
        assert_eq!(s("go=u", 0o750, 0), 0o777);
        assert_eq!(s("+w", 0o555, 0o22), 0o755);
        assert_eq!(s("-w", 0o777, 0o22), 0o577);
        assert!(parse("bad").is_none());
        assert!(parse("8").is_none());
        assert!(parse("u").is_none());
        assert!(parse("").is_none());
    }
}
