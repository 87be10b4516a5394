//! What the C tools ebsim copies compute from text, in one place: the C
//! library's `strtoull`/`strtoll`, e2fsprogs' and xfsprogs' size arguments
//! built on them, libuuid's UUID text, `ctime(3)` dates and gnulib's
//! quoting of names in messages. Each tool used
//! to carry its own port and they drifted (`"-5"` read as 0 in one, while C
//! reads 2⁶⁴−5); these follow C exactly, in the C locale.

pub mod date;
pub mod filevercmp;
pub mod mode;
pub mod quote;

/// The result of a C `strto*` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strto<T> {
    /// The value (saturated when `overflow`).
    pub value: T,
    /// Bytes consumed: where C's `endptr` points. 0 when no number was
    /// found (C then points `endptr` back at the start, whitespace and
    /// sign included).
    pub end: usize,
    /// `errno == ERANGE`.
    pub overflow: bool,
}

/// The magnitude part shared by `strtoull` and `strtoll`: whitespace, sign,
/// base prefix and digits. Returns (negative, magnitude, end, overflow).
fn scan(s: &str, base: u32) -> (bool, u64, usize, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    // isspace() in the C locale.
    while i < b.len() && (b[i] == b' ' || (b'\t'..=b'\r').contains(&b[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        neg = b[i] == b'-';
        i += 1;
    }
    let hex_prefix = b.len() > i + 1 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    let (radix, start) = match base {
        0 | 16 if hex_prefix => {
            if b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit()) {
                (16, i + 2)
            } else {
                // "0x" without a hex digit: the "0" is the number.
                return (neg, 0, i + 1, false);
            }
        }
        0 if b.get(i) == Some(&b'0') => (8, i),
        0 => (10, i),
        r => (r, i),
    };
    let mut v: u64 = 0;
    let mut over = false;
    let mut j = start;
    while j < b.len() {
        let Some(d) = (b[j] as char).to_digit(radix) else {
            break;
        };
        match v
            .checked_mul(u64::from(radix))
            .and_then(|x| x.checked_add(u64::from(d)))
        {
            Some(x) => v = x,
            None => {
                over = true;
                v = u64::MAX;
            }
        }
        j += 1;
    }
    if j == start {
        return (false, 0, 0, false);
    }
    (neg, v, j, over)
}

/// C `strtoull(s, &end, base)` (base 0: `0x` hex, `0` octal, else
/// decimal). A minus sign negates modulo 2⁶⁴, as C does.
pub fn strtoull(s: &str, base: u32) -> Strto<u64> {
    let (neg, v, end, overflow) = scan(s, base);
    let value = if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    };
    Strto {
        value,
        end,
        overflow,
    }
}

/// `strtoull(s, &end, base)` followed by C's usual `if (*end)` check: the
/// value when nothing is left over (an empty string is 0, as in C).
pub fn strtoull_all(s: &str, base: u32) -> Option<u64> {
    let r = strtoull(s, base);
    (r.end == s.len()).then_some(r.value)
}

/// C `strtoll(s, &end, base)`: saturates at `i64::MIN`/`i64::MAX`.
pub fn strtoll(s: &str, base: u32) -> Strto<i64> {
    let (neg, v, end, over) = scan(s, base);
    let limit = if neg {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX.unsigned_abs()
    };
    let overflow = over || v > limit;
    let value = match (overflow, neg) {
        (true, true) => i64::MIN,
        (true, false) => i64::MAX,
        (false, true) => 0i64.wrapping_sub_unsigned(v),
        (false, false) => i64::try_from(v).unwrap_or(i64::MAX),
    };
    Strto {
        value,
        end,
        overflow,
    }
}

/// Why gnulib's `xstrtol` refused a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XstrtolError {
    /// No number, or a character after it that is no valid suffix
    /// (`LONGINT_INVALID`, `LONGINT_INVALID_SUFFIX_CHAR`, with or without
    /// an overflow before it).
    Invalid,
    /// The number or its scaling by the suffix overflowed
    /// (`LONGINT_OVERFLOW`; the tools add `Value too large for defined
    /// data type`).
    Overflow,
}

/// gnulib's `xstrtoimax(s, NULL, 10, &v, valid_suffixes)`: a decimal
/// number (leading whitespace and a sign allowed, as `strtoimax` reads
/// them) and one optional unit from `valid_suffixes`: `k`/`K` (1024¹),
/// `M`/`m`, `G`/`g`, `T`/`t`, `P`, `E`, `Z`, `Y` (1024⁸), and `b` (512),
/// `c` (1), `w` (2) where listed. When `valid_suffixes` holds `0`, a unit
/// may be followed by `B` or `D` (powers of 1000) or `iB` (1024). A unit
/// alone stands for one of it (`"K"` is 1024). Anything left over is
/// [`XstrtolError::Invalid`], even after an overflow.
pub fn xstrtoimax(s: &str, valid_suffixes: &str) -> Result<i64, XstrtolError> {
    let r = strtoll(s, 10);
    let mut overflow = r.overflow;
    let mut val = r.value;
    let rest = s.get(r.end..).unwrap_or("");
    if r.end == 0 {
        match rest.chars().next() {
            Some(c) if valid_suffixes.contains(c) => val = 1,
            _ => return Err(XstrtolError::Invalid),
        }
    }
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return if overflow {
            Err(XstrtolError::Overflow)
        } else {
            Ok(val)
        };
    };
    if !valid_suffixes.contains(c) {
        return Err(XstrtolError::Invalid);
    }
    let mut base: i64 = 1024;
    let mut used = 1;
    if valid_suffixes.contains('0') {
        let b = rest.as_bytes();
        match (b.get(1), b.get(2)) {
            (Some(b'i'), Some(b'B')) => used += 2,
            (Some(b'B'), _) | (Some(b'D'), _) => {
                base = 1000;
                used += 1;
            }
            _ => {}
        }
    }
    let (mult, power) = match c {
        'b' => (512, 1),
        'B' => (1024, 1),
        'c' => (1, 1),
        'w' => (2, 1),
        'k' | 'K' => (base, 1),
        'M' | 'm' => (base, 2),
        'G' | 'g' => (base, 3),
        'T' | 't' => (base, 4),
        'P' => (base, 5),
        'E' => (base, 6),
        'Z' => (base, 7),
        'Y' => (base, 8),
        _ => return Err(XstrtolError::Invalid),
    };
    for _ in 0..power {
        match val.checked_mul(mult) {
            Some(v) => val = v,
            None => {
                overflow = true;
                val = if val < 0 { i64::MIN } else { i64::MAX };
            }
        }
    }
    if rest.len() > used {
        return Err(XstrtolError::Invalid);
    }
    if overflow {
        Err(XstrtolError::Overflow)
    } else {
        Ok(val)
    }
}

/// e2p's `parse_num_blocks2`: a number with an optional K/M/G/T (powers
/// of 1024 bytes) or s (512-byte sectors) suffix, in blocks of
/// `1024 << log_block_size` (a bare number is already in blocks), or in
/// bytes when `log_block_size` < 0. 0 means invalid.
pub fn parse_num_blocks2(arg: &str, log_block_size: i32) -> u64 {
    let r = strtoull(arg, 0);
    let mut num = r.value;
    let rest = &arg.as_bytes()[r.end..];
    if rest.len() > 1 {
        return 0;
    }
    let shift = |n: u64, bits: i32| -> u64 {
        let bits = bits.clamp(0, 63) as u32;
        n >> bits
    };
    match rest.first() {
        None => num,
        Some(c @ (b'T' | b't' | b'G' | b'g' | b'M' | b'm' | b'K' | b'k')) => {
            let tens = match c {
                b'T' | b't' => 3,
                b'G' | b'g' => 2,
                b'M' | b'm' => 1,
                _ => 0,
            };
            for _ in 0..tens {
                num <<= 10;
            }
            if log_block_size < 0 {
                num << 10
            } else {
                shift(num, log_block_size)
            }
        }
        Some(b's') => {
            if log_block_size < 0 {
                num << 9
            } else {
                shift(num, log_block_size.saturating_add(1))
            }
        }
        Some(_) => 0,
    }
}

/// xfsprogs' `cvtnum`: a number (C base 0) with an optional one-letter
/// suffix in either case — `b` blocks, `s` sectors, or k/m/g/t/p/e (powers
/// of 1024; mkfs.xfs 6.1 takes `262144B` and `2097152S`). None where cvtnum
/// returns -1.
pub fn cvtnum(blocksize: u64, sectorsize: u64, s: &str) -> Option<i64> {
    // -1 is cvtnum's error value, whether it failed or computed it ("-1").
    cvtnum_value(blocksize, sectorsize, s).filter(|&v| v != -1)
}

fn cvtnum_value(blocksize: u64, sectorsize: u64, s: &str) -> Option<i64> {
    let r = strtoll(s, 0);
    if r.value == 0 && r.end == 0 {
        return None;
    }
    let rest = &s.as_bytes()[r.end..];
    let i = r.value;
    let (&c, tail) = match rest.split_first() {
        None => return Some(i),
        Some(x) => x,
    };
    if !tail.is_empty() {
        return None;
    }
    let times = |m: u64| i.wrapping_mul(i64::try_from(m).unwrap_or(i64::MAX));
    match c.to_ascii_lowercase() {
        b'b' => (blocksize != 0).then(|| times(blocksize)),
        b's' => (sectorsize != 0).then(|| times(sectorsize)),
        c => {
            let pow = match c {
                b'k' => 1,
                b'm' => 2,
                b'g' => 3,
                b't' => 4,
                b'p' => 5,
                b'e' => 6,
                _ => return None,
            };
            Some(times(1u64 << (10 * pow)))
        }
    }
}

/// e2fsprogs' `int_log10`: the number of decimal digits (0 for 0).
pub fn int_log10(mut n: u64) -> usize {
    let mut l = 0;
    while n > 0 {
        n /= 10;
        l += 1;
    }
    l
}

/// libuuid's `uuid_parse`: exactly 36 characters, dashes at 8, 13, 18 and
/// 23, hex digits elsewhere.
pub fn uuid_parse(s: &str) -> Option<[u8; 16]> {
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
        *out.get_mut(n)? = u8::try_from(hi * 16 + lo).ok()?;
        n += 1;
        i += 2;
    }
    Some(out)
}

/// libuuid's `uuid_unparse` (lower case): `05401320-e99f-4fea-...`.
pub fn uuid_unparse(u: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*u).hyphenated().to_string()
}

/// A random (version 4) UUID.
pub fn uuid_random() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day) (Howard
/// Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d is 1..=31 and m 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `ctime(3)` in UTC: `"Tue Nov 14 22:13:20 2023\n"`.
pub fn ctime(t: i64) -> String {
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let wday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let month = usize::try_from(m.saturating_sub(1)).unwrap_or(0);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}\n",
        WD.get(wday).unwrap_or(&"Thu"),
        MO.get(month).unwrap_or(&"Jan"),
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        y
    )
}

/// coreutils `quote()` of a name given as text (see [`quote::quote`]).
pub fn quote(s: &str, utf8: bool) -> String {
    quote::quote(s.as_bytes(), utf8)
}

/// coreutils `quotef()` of a name given as text, in a UTF-8 locale (see
/// [`quote::quotef`]).
pub fn quotef(s: &str) -> String {
    quote::quotef(s.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_is_c() {
        let r = |s: &str, b| {
            let x = strtoull(s, b);
            (x.value, x.end, x.overflow)
        };
        assert_eq!(r("42", 0), (42, 2, false));
        assert_eq!(r("  +0x1fz", 0), (31, 7, false));
        assert_eq!(r("0x", 0), (0, 1, false));
        assert_eq!(r("017", 0), (15, 3, false));
        assert_eq!(r("017", 10), (17, 3, false));
        assert_eq!(r("-5", 0), (u64::MAX - 4, 2, false));
        assert_eq!(r("x", 0), (0, 0, false));
        assert_eq!(r(" -", 0), (0, 0, false));
        assert_eq!(r("99999999999999999999", 10), (u64::MAX, 20, true));
        assert_eq!(strtoull_all("0x10", 0), Some(16));
        assert_eq!(strtoull_all("", 0), Some(0));
        assert_eq!(strtoull_all("12k", 0), None);
    }

    #[test]
    fn strtoll_is_c() {
        let r = |s: &str| {
            let x = strtoll(s, 10);
            (x.value, x.end)
        };
        assert_eq!(r("1G"), (1, 1));
        assert_eq!(r(" -12x"), (-12, 4));
        assert_eq!(r("x"), (0, 0));
        assert_eq!(r("99999999999999999999"), (i64::MAX, 20));
        assert_eq!(r("-9223372036854775808"), (i64::MIN, 20));
        assert_eq!(r("-9223372036854775809"), (i64::MIN, 20));
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
        assert_eq!(parse_num_blocks2("G", 2), 0);
    }

    #[test]
    fn cvtnum_suffixes() {
        assert_eq!(cvtnum(4096, 512, "1g"), Some(1 << 30));
        assert_eq!(cvtnum(4096, 512, "1G"), Some(1 << 30));
        assert_eq!(cvtnum(4096, 512, "2b"), Some(8192));
        assert_eq!(cvtnum(4096, 512, "2B"), Some(8192));
        assert_eq!(cvtnum(4096, 512, "2S"), Some(1024));
        assert_eq!(cvtnum(4096, 512, "2s"), Some(1024));
        assert_eq!(cvtnum(4096, 512, "0x10"), Some(16));
        assert_eq!(cvtnum(4096, 512, "1gb"), None);
        assert_eq!(cvtnum(4096, 512, "x"), None);
        assert_eq!(cvtnum(4096, 512, "0"), Some(0));
    }

    #[test]
    fn uuids_and_dates() {
        let u = uuid_parse("05401320-e99f-4fea-bd36-d9336535b08d");
        assert_eq!(
            u.map(|u| uuid_unparse(&u)).as_deref(),
            Some("05401320-e99f-4fea-bd36-d9336535b08d")
        );
        assert!(uuid_parse("111111112222333344445555555555555555").is_none());
        assert!(uuid_parse("1111111-22222-3333-4444-555555555555").is_none());
        assert_eq!(ctime(1_700_000_000), "Tue Nov 14 22:13:20 2023\n");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(int_log10(0), 0);
        assert_eq!(int_log10(1000), 4);
        assert_eq!(quote("a", true), "\u{2018}a\u{2019}");
        assert_eq!(quote("a", false), "'a'");
        assert_eq!(quotef("/var/lib"), "/var/lib");
        assert_eq!(quotef("it's"), "\"it's\"");
    }
}
