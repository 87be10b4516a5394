//! Human-readable sizes as util-linux (lsblk) and gnulib (df) print them.
//! They differ: lsblk rounds half up and drops ".0"; df always rounds up
//! and keeps one decimal under 10 (spec views.md §1.7, §2.4).

/// lsblk ≥ 2.36 (`size_to_human_string`, one-letter suffix).
pub fn lsblk_size(bytes: u64) -> String {
    lsblk_size_with(bytes, |frac, exp| {
        let f3 = ((u128::from(frac) * 1000) >> exp) as u64;
        (f3 + 50) / 100
    })
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

/// df -h / -H: gnulib human_readable with ceiling rounding and autoscale.
/// `base` is 1024 (-h, suffixes K M G ...) or 1000 (-H, suffixes k M G ...).
pub fn df_human(bytes: u128, base: u128) -> String {
    let suffixes: &[&str] = if base == 1024 {
        &["K", "M", "G", "T", "P", "E", "Z", "Y"]
    } else {
        &["k", "M", "G", "T", "P", "E", "Z", "Y"]
    };
    if bytes < base {
        return bytes.to_string();
    }
    let mut e = 0usize;
    let mut p = base;
    while e + 1 < suffixes.len() && bytes >= p * base {
        p *= base;
        e += 1;
    }
    // v = bytes / p, exact rational.
    if bytes < 10 * p {
        let t = (10 * bytes).div_ceil(p);
        if t < 100 {
            return format!("{}.{}{}", t / 10, t % 10, suffixes[e]);
        }
        return format!("10{}", suffixes[e]);
    }
    let n = bytes.div_ceil(p);
    if n == base && e + 1 < suffixes.len() {
        return format!("1.0{}", suffixes[e + 1]);
    }
    format!("{n}{}", suffixes[e])
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
            assert_eq!(df_human(b, 1024), h, "{b}");
            assert_eq!(df_human(b, 1000), si, "{b}");
        }
        assert_eq!(df_human(9 * g + 95 * g / 100, 1024), "10G");
    }
}
