//! gnulib's `filevercmp` as coreutils 9.1 has it (`ls -v`, `sort -V`):
//! names compare as version strings, runs of digits by their value,
//! letters before other characters, `~` before everything (even the end
//! of the name); `.` sorts first, then `..`, then other names starting
//! with a dot, then the rest; a trailing run of suffixes (`.` and a
//! letter or `~`, then letters, digits and `~`) is compared only when
//! the names are equal without it.

use std::cmp::Ordering;

/// Compares `a` and `b` as `filevercmp` does (no byte-order tiebreak:
/// ls adds one).
pub fn filevercmp(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    if a[0] == b'.' {
        if b[0] != b'.' {
            return Ordering::Less;
        }
        let (adot, bdot) = (a.len() == 1, b.len() == 1);
        if adot || bdot {
            return bdot.cmp(&adot);
        }
        let (add, bdd) = (a == b"..", b == b"..");
        if add || bdd {
            return bdd.cmp(&add);
        }
    } else if b[0] == b'.' {
        return Ordering::Greater;
    }
    let ap = prefix_len(a);
    let bp = prefix_len(b);
    let one_pass = ap == a.len() && bp == b.len();
    let r = verrevcmp(&a[..ap], &b[..bp]);
    if r != 0 || one_pass {
        return r.cmp(&0);
    }
    verrevcmp(a, b).cmp(&0)
}

/// The length of `s` without its trailing suffixes (a suffix may start
/// at the first byte).
fn prefix_len(s: &[u8]) -> usize {
    let n = s.len();
    let mut i = 0;
    loop {
        let prefix = i;
        while i + 1 < n && s[i] == b'.' && (s[i + 1].is_ascii_alphabetic() || s[i + 1] == b'~') {
            i += 2;
            while i < n && (s[i].is_ascii_alphanumeric() || s[i] == b'~') {
                i += 1;
            }
        }
        if i >= n {
            return prefix;
        }
        i += 1;
    }
}

/// The weight of the byte at `pos`: digits 0, letters their value, `~`
/// below the end of the string (-1), other bytes above letters.
fn order(s: &[u8], pos: usize) -> i32 {
    match s.get(pos) {
        None => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
        Some(b'~') => -2,
        Some(c) => i32::from(*c) + 256,
    }
}

fn verrevcmp(s1: &[u8], s2: &[u8]) -> i32 {
    let (l1, l2) = (s1.len(), s2.len());
    let digit = |s: &[u8], p: usize| s.get(p).is_some_and(u8::is_ascii_digit);
    let (mut p1, mut p2) = (0, 0);
    while p1 < l1 || p2 < l2 {
        let mut first_diff = 0;
        while (p1 < l1 && !digit(s1, p1)) || (p2 < l2 && !digit(s2, p2)) {
            let c1 = order(s1, p1);
            let c2 = order(s2, p2);
            if c1 != c2 {
                return c1 - c2;
            }
            p1 += 1;
            p2 += 1;
        }
        while s1.get(p1) == Some(&b'0') {
            p1 += 1;
        }
        while s2.get(p2) == Some(&b'0') {
            p2 += 1;
        }
        while digit(s1, p1) && digit(s2, p2) {
            if first_diff == 0 {
                first_diff = i32::from(s1[p1]) - i32::from(s2[p2]);
            }
            p1 += 1;
            p2 += 1;
        }
        if digit(s1, p1) {
            return 1;
        }
        if digit(s2, p2) {
            return -1;
        }
        if first_diff != 0 {
            return first_diff;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order of coreutils 9.1 `LC_ALL=C sort -V` on these names.
    #[test]
    fn as_sort_v() {
        let want: &[&str] = &[
            ".",
            "..",
            ".a",
            ".b9",
            ".b10",
            "..a",
            "~",
            "~a",
            "001",
            "01",
            "1",
            "9",
            "10",
            "a~",
            "a~1",
            "a",
            "a.~",
            "a.B~c",
            "a.b~",
            "a.b",
            "a.tar.gz",
            "a001",
            "a01",
            "a1",
            "a2",
            "a10",
            "a-1.tar.gz",
            "a-1.2~rc1.tar.gz",
            "a-1.2.tar.gz",
            "a-1.10.tar.gz",
            "a.",
            "-a",
        ];
        let mut got: Vec<&str> = want.to_vec();
        got.reverse();
        got.sort_by(|a, b| {
            filevercmp(a.as_bytes(), b.as_bytes()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
        });
        assert_eq!(got, want);
    }
}
