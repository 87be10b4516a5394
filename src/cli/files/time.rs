//! Dates in the guest's zone (UTC, as EC2 instances are set up): the
//! formats `ls -l` and `stat` print, and the dates `touch -d`/`-t` read
//! (the common forms of gnulib's `parse_datetime`: ISO dates and times
//! with an optional zone, `@SECONDS`, month names, `now`, `today`,
//! `yesterday`, `tomorrow`, and relative items such as `2 days ago`).

use ebsim::fs::node::Timespec;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

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
}
