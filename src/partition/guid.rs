//! GUIDs as GPT stores them: the first three fields little-endian, the rest
//! as bytes ("mixed endian").

use std::fmt;

/// A GUID in its on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID, which marks an unused GPT entry.
    pub const ZERO: Guid = Guid([0; 16]);

    /// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case).
    pub fn parse(s: &str) -> Option<Guid> {
        let s = s.trim();
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5 || parts.iter().zip(lens).any(|(p, l)| p.len() != l) {
            return None;
        }
        let hex: String = parts.concat();
        let mut text = [0u8; 16];
        for (i, b) in text.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut d = [0u8; 16];
        d[0..4].copy_from_slice(&[text[3], text[2], text[1], text[0]]);
        d[4..6].copy_from_slice(&[text[5], text[4]]);
        d[6..8].copy_from_slice(&[text[7], text[6]]);
        d[8..16].copy_from_slice(&text[8..16]);
        Some(Guid(d))
    }

    /// A random (version 4) GUID.
    pub fn random() -> Guid {
        // OK to unwrap: the textual form of a uuid always parses.
        #[allow(clippy::unwrap_used)]
        Guid::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
    }

    /// True for the all-zero GUID.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    /// Upper case, as sfdisk prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            d[3], d[2], d[1], d[0], d[5], d[4], d[7], d[6], d[8], d[9]
        )?;
        for b in &d[10..16] {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// Well-known partition type GUIDs.
pub mod types {
    /// Linux filesystem data.
    pub const LINUX_FS: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    /// BIOS boot partition.
    pub const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
    /// EFI system partition.
    pub const EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mixed_endian() {
        let g = Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4").unwrap();
        assert_eq!(&g.0[..4], &[0xAF, 0x3D, 0xC6, 0x0F]);
        assert_eq!(g.to_string(), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(Guid::parse("0fc63daf-8483-4772-8e79-3d69d8477de4"), Some(g));
        assert!(Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE").is_none());
        assert!(Guid::parse("zzzzzzzz-8483-4772-8E79-3D69D8477DE4").is_none());
        assert!(!Guid::random().is_zero());
    }
}
