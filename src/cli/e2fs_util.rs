//! Pieces shared by the e2fsprogs look-alike applets (mkfs.ext4/mke2fs and
//! resize2fs): the clock they read and the progress meter.

use ebsim::compat::int_log10;

/// The time e2fsprogs uses: `E2FSPROGS_FAKE_TIME` read as C's
/// `strtoul(s, NULL, 0)` when set and nonzero; else the clock.
pub fn e2fsprogs_now() -> u64 {
    if let Ok(s) = std::env::var("E2FSPROGS_FAKE_TIME") {
        let t = ebsim::compat::strtoull(&s, 0).value;
        if t != 0 {
            return t;
        }
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The numeric progress meter (lib/ext2fs/progress.c) for a run that
/// finishes within a second: init prints the label, the first update
/// prints `0/max` and backs over it, close blanks it and prints the
/// message. With `E2FSPROGS_SKIP_PROGRESS` the number is not printed.
/// The width is the digit count of `max` cut to 32 bits (progress.c's
/// `int_log10` takes an `unsigned int`): 2^32 blocks print "0/4294967296"
/// backed over by one character.
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
            // C's unsigned int: the low 32 bits.
            width: int_log10(max & 0xFFFF_FFFF),
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

#[cfg(test)]
mod tests {
    use super::*;

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
