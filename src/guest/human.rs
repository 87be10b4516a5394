//! Human-readable sizes as util-linux (lsblk) and gnulib (df) print them.
//! They differ: lsblk rounds half up and drops ".0"; df always rounds up
//! and keeps one decimal under 10.

/// lsblk ≥ 2.36 (`size_to_human_string`, one-letter suffix).
pub fn lsblk_size(bytes: u64) -> String {
    lsblk_size_with(bytes, |frac, exp| {
        let f3 = ((u128::from(frac) * 1000) >> exp) as u64;
        (f3 + 50) / 100
    })
}

/// util-linux's `size_to_human_string` with a space and a three-letter
/// suffix, as its messages print sizes: "64 MiB", "1.5 GiB", "0 B".
pub fn size_3letter(bytes: u64) -> String {
    let s = lsblk_size(bytes);
    let (num, unit) = s.split_at(s.len() - 1);
    if unit == "B" {
        format!("{num} B")
    } else {
        format!("{num} {unit}iB")
    }
}

/// lsblk ≤ 2.35: the fraction was rounded in 1/1024 steps.
pub fn lsblk_size_old(bytes: u64) -> String {
    lsblk_size_with(bytes, |frac, exp| {
        let f = if exp >= 10 { frac >> (exp - 10) } else { frac };
        (f + 50) / 100
    })
}

fn lsblk_size_with(bytes: u64, tenths: impl Fn(u64, u32) -> u64) -> String {
    const UNITS: &[u8] = b"BKMGTPE";
    let mut exp = 0u32;
    while exp < 60 && bytes >= 1u64 << (exp + 10) {
        exp += 10;
    }
    let unit = UNITS[(exp / 10) as usize] as char;
    let mut dec = bytes >> exp;
    let frac = if exp == 0 {
        0
    } else {
        bytes & ((1u64 << exp) - 1)
    };
    let mut f = if frac != 0 { tenths(frac, exp) } else { 0 };
    if f >= 10 {
        dec += 1;
        f = 0;
    }
    if f != 0 {
        format!("{dec}.{f}{unit}")
    } else {
        format!("{dec}{unit}")
    }
}

/// gnulib `human_readable` option bits (human.h).
pub mod opts {
    /// Round up (`human_ceiling` is 0: the default).
    pub const CEILING: u32 = 0;
    /// Round to nearest.
    pub const ROUND_TO_NEAREST: u32 = 1;
    /// Round down.
    pub const FLOOR: u32 = 2;
    /// Group digits (a no-op in the C and C.UTF-8 locales).
    pub const GROUP_DIGITS: u32 = 4;
    /// Drop a ".0".
    pub const SUPPRESS_POINT_ZERO: u32 = 8;
    /// Pick the unit.
    pub const AUTOSCALE: u32 = 16;
    /// Powers of 1024 (else 1000).
    pub const BASE_1024: u32 = 32;
    /// A space before the unit.
    pub const SPACE_BEFORE_UNIT: u32 = 64;
    /// Append the unit letter.
    pub const SI: u32 = 128;
    /// Append "B" ("iB" in base 1024).
    pub const B: u32 = 256;
}

/// gnulib `human_readable(n, opts, from_block_size, to_block_size)` as
/// coreutils 9.1's df calls it: `n` counts units of `from` bytes, shown in
/// units of `to` (or autoscaled). The integer paths are exact; when neither
/// block size divides the other, gnulib computes in `long double`, which
/// [`x87`] reproduces bit for bit.
pub fn human_readable(n: u64, o: u32, from: u64, to: u64) -> String {
    use opts::*;
    let inexact = o & (ROUND_TO_NEAREST | FLOOR);
    let base: u64 = if o & BASE_1024 != 0 { 1024 } else { 1000 };
    const EXPONENT_MAX: i32 = 8;
    let mut exponent: i32 = -1;
    let to = to.max(1);
    let mut exact: Option<(u64, u64, u64)> = None; // amt, tenths, rounding
    if to <= from {
        if from % to == 0 {
            if let Some(amt) = n.checked_mul(from / to) {
                exact = Some((amt, 0, 0));
            }
        }
    } else if from != 0 && to % from == 0 {
        let divisor = u128::from(to / from);
        let n128 = u128::from(n);
        let r10 = (n128 % divisor) * 10;
        let r2 = (r10 % divisor) * 2;
        let amt = (n128 / divisor) as u64;
        let tenths = (r10 / divisor) as u64;
        let rounding = if r2 < divisor {
            u64::from(0 < r2)
        } else {
            2 + u64::from(divisor < r2)
        };
        exact = Some((amt, tenths, rounding));
    }
    let mut text = match exact {
        Some((mut amt, mut tenths, mut rounding)) => {
            let mut frac = String::new();
            if o & AUTOSCALE != 0 {
                exponent = 0;
                if base <= amt {
                    loop {
                        let r10 = (amt % base) * 10 + tenths;
                        let r2 = (r10 % base) * 2 + (rounding >> 1);
                        amt /= base;
                        tenths = r10 / base;
                        rounding = if r2 < base {
                            u64::from(r2 + rounding != 0)
                        } else {
                            2 + u64::from(base < r2 + rounding)
                        };
                        exponent += 1;
                        if !(base <= amt && exponent < EXPONENT_MAX) {
                            break;
                        }
                    }
                    if amt < 10 {
                        let up = if inexact == ROUND_TO_NEAREST {
                            2 < rounding + (tenths & 1)
                        } else {
                            inexact == CEILING && 0 < rounding
                        };
                        if up {
                            tenths += 1;
                            rounding = 0;
                            if tenths == 10 {
                                amt += 1;
                                tenths = 0;
                            }
                        }
                        if amt < 10 && (tenths != 0 || o & SUPPRESS_POINT_ZERO == 0) {
                            frac = format!(".{tenths}");
                            tenths = 0;
                            rounding = 0;
                        }
                    }
                }
            }
            let up = if inexact == ROUND_TO_NEAREST {
                5 < tenths + u64::from(0 < rounding + (amt & 1))
            } else {
                inexact == CEILING && 0 < tenths + rounding
            };
            if up {
                amt += 1;
                if o & AUTOSCALE != 0 && amt == base && exponent < EXPONENT_MAX {
                    exponent += 1;
                    if o & SUPPRESS_POINT_ZERO == 0 {
                        frac = ".0".into();
                    }
                    amt = 1;
                }
            }
            format!("{amt}{frac}")
        }
        None => {
            // long double damt = n * (from / (long double) to).
            let q = x87::div(from, to);
            let damt = x87::mul_u64(q, n);
            if o & AUTOSCALE == 0 {
                x87::to_integer_string(damt, inexact)
            } else {
                // Not reached by df (autoscale always has to == 1); an
                // approximation in f64.
                let mut v = damt.to_f64();
                let mut e = 1f64;
                exponent = 0;
                loop {
                    e *= base as f64;
                    exponent += 1;
                    if !(e * base as f64 <= v && exponent < EXPONENT_MAX) {
                        break;
                    }
                }
                v /= e;
                let t = (v * 10.0).ceil() / 10.0;
                if t >= 10.0 || (o & SUPPRESS_POINT_ZERO != 0 && t.fract() == 0.0) {
                    format!("{}", v.ceil())
                } else {
                    format!("{t:.1}")
                }
            }
        }
    };
    if o & SI != 0 {
        if exponent < 0 {
            exponent = 0;
            let mut power: u128 = 1;
            while power < u128::from(to) {
                exponent += 1;
                if exponent == EXPONENT_MAX {
                    break;
                }
                power *= u128::from(base);
            }
        }
        if (exponent != 0 || o & B != 0) && o & SPACE_BEFORE_UNIT != 0 {
            text.push(' ');
        }
        if exponent != 0 {
            const LETTERS: &[u8] = b"\0KMGTPEZY";
            text.push(if base == 1000 && exponent == 1 {
                'k'
            } else {
                LETTERS[exponent as usize] as char
            });
        }
        if o & B != 0 {
            if base == 1024 && exponent != 0 {
                text.push('i');
            }
            text.push('B');
        }
    }
    text
}

/// df -h / -H: `human_readable` with autoscale, SI letters and rounding up.
/// `base` is 1024 (-h, suffixes K M G ...) or 1000 (-H, suffixes k M G ...).
pub fn df_human(bytes: u64, base: u64) -> String {
    let b = if base == 1024 { opts::BASE_1024 } else { 0 };
    human_readable(bytes, opts::AUTOSCALE | opts::SI | b, 1, 1)
}

/// Just enough of the x87 80-bit `long double` (64-bit mantissa, round to
/// nearest even) to copy gnulib's floating-point path bit for bit.
pub mod x87 {
    /// `m × 2^e`, `m` normalized to 64 bits (or zero).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Ext {
        m: u64,
        e: i32,
    }

    /// Rounds the 128-bit `p × 2^e` to a 64-bit mantissa, nearest even.
    fn round(p: u128, e: i32) -> Ext {
        if p == 0 {
            return Ext { m: 0, e: 0 };
        }
        let bits = 128 - p.leading_zeros() as i32;
        if bits <= 64 {
            let s = 64 - bits;
            return Ext {
                m: (p << s) as u64,
                e: e - s,
            };
        }
        let s = (bits - 64) as u32;
        let mut m = p >> s;
        let rem = p & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        if rem > half || (rem == half && m & 1 == 1) {
            m += 1;
        }
        let mut e = e + s as i32;
        if m >> 64 != 0 {
            m >>= 1;
            e += 1;
        }
        Ext { m: m as u64, e }
    }

    /// `(long double) a / (long double) b`.
    pub fn div(a: u64, b: u64) -> Ext {
        if a == 0 || b == 0 {
            return Ext { m: 0, e: 0 };
        }
        let (a, b) = (u128::from(a), u128::from(b));
        // Find s with 2^63 <= (a << s) / b < 2^64, keeping the remainder
        // for the rounding.
        let mut s: i32 = 0;
        while s < 127 && (a << s) / b < (1u128 << 63) {
            s += 1;
        }
        let q = (a << s) / b;
        let r = (a << s) % b;
        // Fold the remainder into two extra bits (half and sticky) so
        // round() sees the exact tie/above/below.
        let half = match (2 * r).cmp(&b) {
            std::cmp::Ordering::Less => u128::from(r != 0),
            std::cmp::Ordering::Equal => 2,
            std::cmp::Ordering::Greater => 3,
        };
        round((q << 2) | half, -s - 2)
    }

    /// `(long double) n * x`.
    pub fn mul_u64(x: Ext, n: u64) -> Ext {
        round(u128::from(x.m) * u128::from(n), x.e)
    }

    impl Ext {
        /// Nearest f64 (for the unused autoscale branch).
        pub fn to_f64(self) -> f64 {
            (self.m as f64) * 2f64.powi(self.e)
        }
    }

    /// gnulib `adjust_value` then `sprintf("%.0Lf")`.
    pub fn to_integer_string(x: Ext, inexact: u32) -> String {
        if x.m == 0 {
            return "0".into();
        }
        if x.e >= 0 {
            let v = u128::from(x.m).checked_shl(x.e as u32).unwrap_or(u128::MAX);
            return v.to_string();
        }
        let k = (-x.e) as u32;
        let (int, frac, half_cmp) = if k > 64 {
            (0u64, x.m != 0, std::cmp::Ordering::Less)
        } else {
            let int = if k == 64 { 0 } else { x.m >> k };
            let mask = if k == 64 { u64::MAX } else { (1u64 << k) - 1 };
            let f = x.m & mask;
            let half = 1u128 << (k - 1);
            (int, f != 0, u128::from(f).cmp(&half))
        };
        let v = match inexact {
            super::opts::FLOOR => int,
            super::opts::ROUND_TO_NEAREST => match half_cmp {
                std::cmp::Ordering::Greater => int + 1,
                std::cmp::Ordering::Equal if int & 1 == 1 => int + 1,
                _ => int,
            },
            _ => int + u64::from(frac),
        };
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsblk_examples() {
        let g = 1u64 << 30;
        for (b, s) in [
            (0, "0B"),
            (512, "512B"),
            (1024, "1K"),
            (1536, "1.5K"),
            (1048064, "1023.5K"),
            (1073700864, "1024M"),
            (g, "1G"),
            (8 * g, "8G"),
            (15 * g + g / 2, "15.5G"),
            (17167269376, "16G"),
            (8577334784, "8G"),
            (3 * (1u64 << 40) / 2, "1.5T"),
            (16u64 << 40, "16T"),
            (1u64 << 50, "1P"),
            (480591872, "458.3M"),
        ] {
            assert_eq!(lsblk_size(b), s, "{b}");
        }
    }

    #[test]
    fn df_examples() {
        let g: u128 = 1 << 30;
        for (b, h, si) in [
            (4096u128, "4.0K", "4.1k"),
            (1 << 20, "1.0M", "1.1M"),
            (500 << 20, "500M", "525M"),
            ((500 << 20) + 4096, "501M", "525M"),
            (1048571904, "1000M", "1.1G"),
            (g - 4096, "1.0G", "1.1G"),
            (g, "1.0G", "1.1G"),
            (g + 4096, "1.1G", "1.1G"),
            (8 * g, "8.0G", "8.6G"),
            (8 * g + 4096, "8.1G", "8.6G"),
            (16 * g, "16G", "18G"),
            (16 * g + 4096, "17G", "18G"),
            (200 * g, "200G", "215G"),
            (1 << 40, "1.0T", "1.1T"),
            (16 << 40, "16T", "18T"),
            (0, "0", "0"),
        ] {
            let b = b as u64;
            assert_eq!(df_human(b, 1024), h, "{b}");
            assert_eq!(df_human(b, 1000), si, "{b}");
        }
        assert_eq!(df_human((9 * g + 95 * g / 100) as u64, 1024), "10G");
    }
}
