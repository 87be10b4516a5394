//! Resource ids: a prefix and 17 hex digits (`vol-049df61146c4d7901`).

/// A random id with this prefix (`vol`, `snap`, `i`, `r`, `ami`).
pub fn random_id(prefix: &str) -> String {
    let r = uuid::Uuid::new_v4();
    let hex: String = r.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    // AWS's 17-digit ids start with 0.
    format!("{prefix}-0{}", &hex[..16])
}

/// 16 random hex digits (a staging directory's name).
pub fn random_hex() -> String {
    let r = uuid::Uuid::new_v4();
    r.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `id` looks like an id with this prefix.
pub fn well_formed(id: &str, prefix: &str) -> bool {
    match id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) {
        Some(hex) => {
            (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let id = random_id("vol");
        assert_eq!(id.len(), 21);
        assert!(well_formed(&id, "vol"));
        assert!(well_formed("i-1234567890abcdef0", "i"));
        assert!(!well_formed("vol-xyz", "vol"));
        assert!(!well_formed("snap-1234567890abcdef0", "vol"));
    }
}
