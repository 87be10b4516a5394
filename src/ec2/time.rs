//! Timestamps of the virtual clock: milliseconds since the Unix epoch, and
//! the two ways AWS tools print them.

use serde::{Deserialize, Serialize};

/// A point in virtual time, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

/// One second, in milliseconds.
pub const SECOND: i64 = 1000;
/// One minute.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour.
pub const HOUR: i64 = 60 * MINUTE;
/// One day.
pub const DAY: i64 = 24 * HOUR;
/// The latest instant the virtual clock reaches: 9999-12-31T23:59:59.999Z,
/// the last one with a four-digit year (the AWS CLI parses timestamps into
/// Python datetimes, whose years end at 9999).
pub const LATEST: Millis = Millis(253_402_300_799_999);

impl Millis {
    /// This instant plus `ms` milliseconds (saturating).
    pub fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// This instant with its milliseconds dropped (AWS reports launch,
    /// attach and modification times in whole seconds).
    pub fn whole_seconds(self) -> Millis {
        Millis(self.0 - self.0.rem_euclid(SECOND))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: Millis) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The civil date and time in UTC: (year, month, day, hour, minute,
    /// second, millisecond).
    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(DAY);
        let rem = self.0.rem_euclid(DAY);
        let (y, m, d) = civil_from_days(days);
        // rem < 86_400_000, so each part fits in u32.
        let rem = u32::try_from(rem).unwrap_or(0);
        (
            y,
            m,
            d,
            rem / 3_600_000,
            rem / 60_000 % 60,
            rem / 1000 % 60,
            rem % 1000,
        )
    }

    /// As the AWS CLI v2 prints a timestamp (Python's `isoformat()` of an
    /// aware datetime): `2024-09-16T06:42:37+00:00`, with `.mmm000` before
    /// the offset when the milliseconds are not zero.
    pub fn to_cli(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        if ms == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}000+00:00")
        }
    }

    /// As EC2 writes a timestamp on the wire: `2017-01-19T22:21:02.959Z`.
    pub fn to_wire(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]` (UTC only).
    pub fn parse(s: &str) -> Option<Millis> {
        let s = s.trim();
        let s = s
            .strip_suffix('Z')
            .or_else(|| s.strip_suffix("+00:00"))
            .unwrap_or(s);
        let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
        let mut dp = date.split('-');
        let y: i64 = dp.next()?.parse().ok()?;
        let m: u32 = dp.next()?.parse().ok()?;
        let d: u32 = dp.next()?.parse().ok()?;
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let mut tp = hms.split(':');
        let h: i64 = tp.next()?.parse().ok()?;
        let mi: i64 = tp.next().unwrap_or("0").parse().ok()?;
        let sec: i64 = tp.next().unwrap_or("0").parse().ok()?;
        let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
        let ms: i64 = frac3.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let days = days_from_civil(y, m, d);
        Some(Millis(
            days * DAY + h * HOUR + mi * MINUTE + sec * SECOND + ms,
        ))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
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

pub use crate::compat::civil_from_days;

/// Parses a duration: `90`, `90s`, `5m`, `6h`, `1d`, `1h30m`, `250ms`.
/// A bare number is seconds. Returns milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return n.checked_mul(SECOND).filter(|v| *v >= 0);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                's' => SECOND,
                'm' => MINUTE,
                'h' => HOUR,
                'd' => DAY,
                _ => return None,
            }
        };
        let n: i64 = num.parse().ok()?;
        num.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

/// Formats milliseconds as a short duration (`1h30m`, `45s`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, name) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_instant_has_a_four_digit_year() {
        assert_eq!(Millis::parse("9999-12-31T23:59:59.999Z"), Some(LATEST));
        assert_eq!(LATEST.to_wire(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn formats_like_the_cli() {
        let t = Millis::parse("2013-12-18T22:35:00.084Z").unwrap();
        assert_eq!(t.to_cli(), "2013-12-18T22:35:00.084000+00:00");
        assert_eq!(t.to_wire(), "2013-12-18T22:35:00.084Z");
        let t = Millis::parse("2024-02-29T06:42:37+00:00").unwrap();
        assert_eq!(t.to_cli(), "2024-02-29T06:42:37+00:00");
        assert_eq!(Millis(0).to_wire(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000i64, 0, 59, 365 * 30 + 7, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90_000));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("1d"), Some(DAY));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5"), Some(5000));
        assert_eq!(parse_duration("5q"), None);
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(0), "0s");
    }
}
