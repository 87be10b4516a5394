//! Dates in the guest's zone (UTC, as EC2 instances are set up): the
//! formats `ls -l` and `stat` print, and the dates `touch -d`/`-t` read
//! (the common forms of gnulib's `parse_datetime`: ISO dates and times
//! with an optional zone, `@SECONDS`, month names, `now`, `today`,
//! `yesterday`, `tomorrow`, and relative items such as `2 days ago`).

pub use super::{civil_from_days, days_from_civil};
use crate::fs::node::Timespec;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    /// Year.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub min: u32,
    /// Second.
    pub sec: u32,
}

/// `gmtime`.
pub fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Tm {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        min: (rem % 3600 / 60) as u32,
        sec: (rem % 60) as u32,
    }
}

/// `ls -l`'s date: `Mon DD HH:MM` within six months before now, else
/// `Mon DD  YYYY` (ls's `recent` test; a time equal to now counts as
/// recent, since the virtual clock may stand still between commands).
pub fn ls_date(t: Timespec, now: Timespec) -> String {
    // Half of the Gregorian year's average length.
    const SIX_MONTHS: i64 = 31_556_952 / 2;
    let six_ago = Timespec {
        sec: now.sec - SIX_MONTHS,
        nsec: now.nsec,
    };
    let recent = six_ago < t && t <= now;
    let tm = gmtime(t.sec);
    let mon = MONTHS[(tm.month as usize).saturating_sub(1) % 12];
    if recent {
        format!("{mon} {:>2} {:02}:{:02}", tm.day, tm.hour, tm.min)
    } else {
        format!("{mon} {:>2}  {}", tm.day, tm.year)
    }
}

/// `stat`'s `%y`: `2026-12-05 14:02:39.194232426 +0000`.
pub fn stat_time(t: Timespec) -> String {
    let tm = gmtime(t.sec);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09} +0000",
        tm.year, tm.month, tm.day, tm.hour, tm.min, tm.sec, t.nsec
    )
}

fn month_of(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    full.iter()
        .position(|m| m.starts_with(&w) || (w == "sept" && *m == "september"))
        .map(|i| i as u32 + 1)
}

fn unit_seconds(word: &str) -> Option<i64> {
    let w = word.to_ascii_lowercase();
    let w = w.strip_suffix('s').unwrap_or(&w);
    Some(match w {
        "sec" | "second" => 1,
        "min" | "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        "fortnight" => 14 * 86_400,
        _ => return None,
    })
}

/// Parses a fraction like `.123` into nanoseconds.
fn frac_ns(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = s.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    digits.parse().ok()
}

/// A zone suffix: `Z`, `UTC`, `GMT`, `+hh:mm`, `+hhmm`, `+hh`; the offset
/// east of UTC in seconds.
fn zone(s: &str) -> Option<i64> {
    match s.to_ascii_uppercase().as_str() {
        "Z" | "UTC" | "GMT" | "UT" => return Some(0),
        _ => {}
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    if h > 24 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn hms(s: &str) -> Option<(u32, u32, u32, u32)> {
    let (main, frac) = match s.split_once(['.', ',']) {
        Some((m, f)) => (m, frac_ns(f)?),
        None => (s, 0),
    };
    let parts: Vec<&str> = main.split(':').collect();
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h, m, sec, frac))
}

fn valid_date(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= len[(m - 1) as usize]
}

/// `touch -d`'s date (UTC unless a zone is given), relative to `now`.
pub fn parse_date(s: &str, now: Timespec) -> Option<Timespec> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('@') {
        let (int, frac) = match rest.split_once(['.', ',']) {
            Some((i, f)) => (i, frac_ns(f)?),
            None => (rest, 0),
        };
        let sec: i64 = int.parse().ok()?;
        return Some(Timespec { sec, nsec: frac });
    }
    // Tokens: an ISO date with `T`, words, numbers.
    let norm = t.replacen(
        'T',
        " ",
        usize::from(t.len() > 10 && t.as_bytes().get(10) == Some(&b'T')),
    );
    let words: Vec<&str> = norm.split_whitespace().collect();
    let today = now.sec.div_euclid(86_400);
    let mut day: Option<i64> = None;
    let mut time: Option<(u32, u32, u32, u32)> = None;
    let mut offset: Option<i64> = None;
    let mut rel: i64 = 0;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let lw = w.to_ascii_lowercase();
        i += 1;
        match lw.as_str() {
            "now" => {
                day.get_or_insert(today);
                time.get_or_insert((
                    (now.sec.rem_euclid(86_400) / 3600) as u32,
                    (now.sec.rem_euclid(3600) / 60) as u32,
                    now.sec.rem_euclid(60) as u32,
                    now.nsec,
                ));
                continue;
            }
            "today" => {
                day = Some(today);
                continue;
            }
            "yesterday" => {
                day = Some(today);
                rel -= 86_400;
                continue;
            }
            "tomorrow" => {
                day = Some(today);
                rel += 86_400;
                continue;
            }
            "ago" => {
                rel = -rel;
                continue;
            }
            _ => {}
        }
        // YYYY-MM-DD, optionally followed by a time glued with T (handled
        // above) and a zone.
        if let Some((y, rest)) = w
            .split_once('-')
            .filter(|(y, _)| y.len() >= 4 && y.bytes().all(|b| b.is_ascii_digit()))
        {
            let (m, d) = rest.split_once('-')?;
            let y: i64 = y.parse().ok()?;
            let m: u32 = m.parse().ok()?;
            let d: u32 = d.parse().ok()?;
            if !valid_date(y, m, d) {
                return None;
            }
            day = Some(days_from_civil(y, m, d));
            continue;
        }
        if w.contains(':') && w.as_bytes()[0].is_ascii_digit() {
            // A time, with a zone glued on (`12:00:00Z`, `12:00+02:00`).
            let cut = w[1..]
                .find(['Z', 'z', '+', '-'])
                .map(|p| p + 1)
                .unwrap_or(w.len());
            time = Some(hms(&w[..cut])?);
            if cut < w.len() {
                offset = Some(zone(&w[cut..])?);
            }
            continue;
        }
        if let Some(z) = zone(w).filter(|_| w.len() > 1 || w.eq_ignore_ascii_case("z")) {
            if time.is_some() || day.is_some() {
                offset = Some(z);
                continue;
            }
        }
        if let Some(m) = month_of(w.trim_end_matches(',')) {
            // `Jan 5 2020`, `Jan 5`, and `5 Jan 2020` (day before).
            let mut d: Option<u32> = None;
            let mut y: Option<i64> = None;
            if let Some(n) = words
                .get(i)
                .and_then(|x| x.trim_end_matches(',').parse::<u32>().ok())
            {
                d = Some(n);
                i += 1;
                if let Some(n) = words.get(i).and_then(|x| x.parse::<i64>().ok()) {
                    if n >= 1000 {
                        y = Some(n);
                        i += 1;
                    }
                }
            }
            let y = y.unwrap_or_else(|| civil_from_days(today).0);
            let d = d?;
            if !valid_date(y, m, d) {
                return None;
            }
            day = Some(days_from_civil(y, m, d));
            continue;
        }
        if let Ok(n) = w.trim_start_matches('+').parse::<i64>() {
            // A day number before a month, or a count before a unit.
            if let Some(m) = words.get(i).and_then(|x| month_of(x)) {
                i += 1;
                let mut y = civil_from_days(today).0;
                if let Some(yy) = words.get(i).and_then(|x| x.parse::<i64>().ok()) {
                    y = yy;
                    i += 1;
                }
                let d = u32::try_from(n).ok()?;
                if !valid_date(y, m, d) {
                    return None;
                }
                day = Some(days_from_civil(y, m, d));
                continue;
            }
            let unit = unit_seconds(words.get(i)?)?;
            i += 1;
            rel += n.checked_mul(unit)?;
            continue;
        }
        if let Some(unit) = unit_seconds(w) {
            rel += unit;
            continue;
        }
        return None;
    }
    if day.is_none() && time.is_none() && rel == 0 {
        return None;
    }
    // Relative items alone count from now.
    let (base, nsec) = match (day, time) {
        (None, None) => (now.sec, now.nsec),
        (d, t) => {
            let d = d.unwrap_or(today);
            let (h, m, s, ns) = t.unwrap_or((0, 0, 0, 0));
            (
                d * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)
                    - offset.unwrap_or(0),
                ns,
            )
        }
    };
    Some(Timespec {
        sec: base.checked_add(rel)?,
        nsec,
    })
}

/// `touch -t [[CC]YY]MMDDhhmm[.ss]` (POSIX), in UTC; `now` gives the
/// current year when none is given.
pub fn parse_stamp(s: &str, now: Timespec) -> Option<Timespec> {
    let (main, secs) = match s.split_once('.') {
        Some((m, ss)) => {
            if ss.len() != 2 || !ss.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (m, ss.parse::<u32>().ok()?)
        }
        None => (s, 0),
    };
    if !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| main.get(r).and_then(|x| x.parse::<u32>().ok());
    let (year, rest) = match main.len() {
        8 => (civil_from_days(now.sec.div_euclid(86_400)).0, 0),
        10 => {
            let yy = i64::from(n(0..2)?);
            (if yy < 69 { 2000 + yy } else { 1900 + yy }, 2)
        }
        12 => (i64::from(n(0..4)?), 4),
        _ => return None,
    };
    let (mo, d, h, mi) = (
        n(rest..rest + 2)?,
        n(rest + 2..rest + 4)?,
        n(rest + 4..rest + 6)?,
        n(rest + 6..rest + 8)?,
    );
    if !valid_date(year, mo, d) || h > 23 || mi > 59 || secs > 60 {
        return None;
    }
    Some(Timespec {
        sec: days_from_civil(year, mo, d) * 86_400
            + i64::from(h) * 3600
            + i64::from(mi) * 60
            + i64::from(secs),
        nsec: 0,
    })
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The ISO 8601 week-based year and week of a day (`yday` 0-based,
/// `wday` 0 = Sunday).
fn iso_week(year: i64, yday: i64, wday: i64) -> (i64, i64) {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    // Monday-based weekday 0..=6.
    let wd = (wday + 6) % 7;
    let week = (yday - wd + 10) / 7;
    if week < 1 {
        let py = year - 1;
        let pdays = if leap(py) { 366 } else { 365 };
        return iso_week(py, yday + pdays, wday);
    }
    let days = if leap(year) { 366 } else { 365 };
    if week == 53 && yday - wd + 3 >= days {
        return (year + 1, 1);
    }
    (year, week)
}

/// glibc/gnulib `strftime` in the C locale and the guest's zone (UTC),
/// with gnulib's `%N` (nanoseconds; `%3N` and the like truncate): the
/// formats of `ls --time-style=+FORMAT`. Flags `-` (no padding), `_`
/// (spaces), `0` (zeros), `^` (upper case) and `#` (swap case), and a
/// field width, apply as in gnulib; an unknown conversion is copied as
/// written.
pub fn strftime(fmt: &[u8], t: Timespec) -> Vec<u8> {
    let tm = gmtime(t.sec);
    let days = t.sec.div_euclid(86_400);
    let wday = (days + 4).rem_euclid(7);
    let yday = days - days_from_civil(tm.year, 1, 1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut pad: Option<u8> = None;
        let mut upper = false;
        let mut swap = false;
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' | b'_' | b'0' => pad = Some(f),
                b'^' => upper = true,
                b'#' => swap = true,
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        while let Some(&d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            width = Some(
                width
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(usize::from(d - b'0')),
            );
            i += 1;
        }
        // E and O modifiers mean nothing in the C locale.
        while matches!(fmt.get(i), Some(b'E' | b'O')) {
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            out.extend_from_slice(&fmt[start..]);
            break;
        };
        i += 1;
        // (text, is a number, default pad char, default width)
        enum Field {
            Num(i64, u8, usize),
            Text(String),
        }
        let h12 = if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 };
        let field = match conv {
            b'a' => Field::Text(DAYS[wday as usize % 7].into()),
            b'A' => Field::Text(LONG_DAYS[wday as usize % 7].into()),
            b'b' | b'h' => Field::Text(MONTHS[(tm.month as usize + 11) % 12].into()),
            b'B' => Field::Text(LONG_MONTHS[(tm.month as usize + 11) % 12].into()),
            b'c' => Field::Text(
                String::from_utf8_lossy(&strftime(b"%a %b %e %H:%M:%S %Y", t)).into_owned(),
            ),
            b'C' => Field::Num(tm.year.div_euclid(100), b'0', 2),
            b'd' => Field::Num(i64::from(tm.day), b'0', 2),
            b'D' | b'x' => {
                Field::Text(String::from_utf8_lossy(&strftime(b"%m/%d/%y", t)).into_owned())
            }
            b'e' => Field::Num(i64::from(tm.day), b' ', 2),
            b'F' => Field::Text(format!("{:04}-{:02}-{:02}", tm.year, tm.month, tm.day)),
            b'g' => Field::Num(iso_week(tm.year, yday, wday).0.rem_euclid(100), b'0', 2),
            b'G' => Field::Num(iso_week(tm.year, yday, wday).0, b'0', 1),
            b'H' => Field::Num(i64::from(tm.hour), b'0', 2),
            b'I' => Field::Num(i64::from(h12), b'0', 2),
            b'j' => Field::Num(yday + 1, b'0', 3),
            b'k' => Field::Num(i64::from(tm.hour), b' ', 2),
            b'l' => Field::Num(i64::from(h12), b' ', 2),
            b'm' => Field::Num(i64::from(tm.month), b'0', 2),
            b'M' => Field::Num(i64::from(tm.min), b'0', 2),
            b'n' => Field::Text("\n".into()),
            b'N' => {
                let digits = format!("{:09}", t.nsec);
                let w = width.unwrap_or(9).clamp(1, 9);
                width = None;
                Field::Text(digits[..w].to_string())
            }
            b'p' => Field::Text(if tm.hour < 12 { "AM" } else { "PM" }.into()),
            b'q' => Field::Num(i64::from(tm.month.div_ceil(3)), b'0', 1),
            b'P' => Field::Text(if tm.hour < 12 { "am" } else { "pm" }.into()),
            b'r' => Field::Text(String::from_utf8_lossy(&strftime(b"%I:%M:%S %p", t)).into_owned()),
            b'R' => Field::Text(format!("{:02}:{:02}", tm.hour, tm.min)),
            b's' => Field::Num(t.sec, b'0', 1),
            b'S' => Field::Num(i64::from(tm.sec), b'0', 2),
            b't' => Field::Text("\t".into()),
            b'T' | b'X' => Field::Text(format!("{:02}:{:02}:{:02}", tm.hour, tm.min, tm.sec)),
            b'u' => Field::Num(if wday == 0 { 7 } else { wday }, b'0', 1),
            b'U' => Field::Num((yday + 7 - wday) / 7, b'0', 2),
            b'V' => Field::Num(iso_week(tm.year, yday, wday).1, b'0', 2),
            b'w' => Field::Num(wday, b'0', 1),
            b'W' => Field::Num((yday + 7 - (wday + 6) % 7) / 7, b'0', 2),
            b'y' => Field::Num(tm.year.rem_euclid(100), b'0', 2),
            b'Y' => Field::Num(tm.year, b'0', 1),
            b'z' => Field::Text("+0000".into()),
            b'Z' => Field::Text("UTC".into()),
            b'%' => Field::Text("%".into()),
            _ => {
                out.extend_from_slice(&fmt[start..i]);
                continue;
            }
        };
        let text = match field {
            Field::Text(mut s) => {
                if upper {
                    s = s.to_uppercase();
                } else if swap {
                    s = if s.chars().any(|c| c.is_ascii_lowercase()) {
                        s.to_uppercase()
                    } else {
                        s.to_lowercase()
                    };
                }
                match width {
                    Some(w) if w > s.chars().count() => {
                        let fill = if pad == Some(b'0') { '0' } else { ' ' };
                        let mut p: String =
                            std::iter::repeat_n(fill, w - s.chars().count()).collect();
                        p.push_str(&s);
                        p
                    }
                    _ => s,
                }
            }
            Field::Num(v, dpad, dwidth) => {
                let digits = v.unsigned_abs().to_string();
                let sign = if v < 0 { "-" } else { "" };
                let w = width.unwrap_or(dwidth);
                let fill = match pad {
                    Some(b'-') => None,
                    Some(b'_') => Some(' '),
                    Some(b'0') => Some('0'),
                    _ => Some(char::from(dpad)),
                };
                let body_len = sign.len() + digits.len();
                match fill {
                    Some(f) if w > body_len => {
                        let n = w - body_len;
                        if f == '0' {
                            format!("{sign}{}{digits}", "0".repeat(n))
                        } else {
                            format!("{}{sign}{digits}", " ".repeat(n))
                        }
                    }
                    _ => format!("{sign}{digits}"),
                }
            }
        };
        out.extend_from_slice(text.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timespec = Timespec {
        sec: 1_796_479_959, // 2026-12-05 14:12:39
        nsec: 5,
    };

    fn at(s: &str) -> i64 {
        parse_date(s, NOW).unwrap().sec
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(
            stat_time(Timespec { sec: 0, nsec: 1 }),
            "1970-01-01 00:00:00.000000001 +0000"
        );
    }

    #[test]
    fn ls_dates() {
        let old = Timespec {
            sec: 1_590_000_000,
            nsec: 0,
        };
        assert_eq!(ls_date(old, NOW), "May 20  2020");
        let recent = Timespec {
            sec: NOW.sec - 3600,
            nsec: 0,
        };
        assert_eq!(ls_date(recent, NOW), "Dec  5 13:12");
        let future = Timespec {
            sec: NOW.sec + 3600,
            nsec: 0,
        };
        assert_eq!(ls_date(future, NOW), "Dec  5  2026");
    }

    #[test]
    fn dates_touch_reads() {
        assert_eq!(at("2020-01-02"), 1_577_923_200);
        assert_eq!(at("2020-01-02 03:04:05"), 1_577_934_245);
        assert_eq!(at("2020-01-02T03:04:05Z"), 1_577_934_245);
        assert_eq!(at("2020-01-02 03:04:05 +0100"), 1_577_934_245 - 3600);
        assert_eq!(at("@1234567890"), 1_234_567_890);
        assert_eq!(parse_date("@1.5", NOW).unwrap().nsec, 500_000_000);
        assert_eq!(at("Jan 2 2020"), 1_577_923_200);
        assert_eq!(at("2 Jan 2020"), 1_577_923_200);
        assert_eq!(at("2 days ago"), NOW.sec - 2 * 86_400);
        assert_eq!(at("1 hour"), NOW.sec + 3600);
        assert_eq!(at("now"), NOW.sec);
        assert!(parse_date("2020-13-01", NOW).is_none());
        assert!(parse_date("soon", NOW).is_none());
        assert!(parse_date("", NOW).is_none());
    }

    #[test]
    fn stamps() {
        let t = |s| parse_stamp(s, NOW).map(|t| t.sec);
        assert_eq!(t("202001020304.05"), Some(1_577_934_245));
        assert_eq!(t("2001020304.05"), Some(1_577_934_245));
        assert_eq!(
            t("01020304"),
            Some(days_from_civil(2026, 1, 2) * 86_400 + 3 * 3600 + 240)
        );
        assert_eq!(t("0102030"), None);
        assert_eq!(t("202013020304"), None);
    }

    /// GNU date's output for the same instant (`TZ=UTC date -d @1623053350.123456789 +...`).
    #[test]
    fn strftime_as_gnu_date() {
        let t = Timespec {
            sec: 1_623_053_350,
            nsec: 123_456_789,
        };
        let got = strftime(b"%Y-%m-%d %H:%M:%S.%N %z|%e|%3N|%-d|%_m|%^b|%j|%a %A %B|%I %p|%s|%U %W %V %G|%c|%Z|%%|%q", t);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "2021-06-07 08:09:10.123456789 +0000| 7|123|7| 6|JUN|158|Mon Monday June|08 AM|1623053350|23 23 23 2021|Mon Jun  7 08:09:10 2021|UTC|%|2"
        );
    }
}
