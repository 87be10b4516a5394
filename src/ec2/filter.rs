//! `--filters Name=...,Values=...`: a resource matches when, for every
//! filter, one of its values for that name matches one of the filter's
//! values. Values may hold the wildcards `*` and `?` (EC2's rule).

use super::error::ApiError;

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The filter name (`status`, `tag:Name`, ...).
    pub name: String,
    /// Accepted values.
    pub values: Vec<String>,
}

/// One element of a wildcard pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pat {
    /// This character.
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: zero or more characters.
    Star,
}

/// Matches `text` against an EC2 wildcard pattern: `*` matches zero or
/// more characters, `?` exactly one, and a backslash makes the character
/// after it literal (`\*amazon\?\\` is the text `*amazon?\`; a
/// trailing lone backslash is itself).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let mut p: Vec<Pat> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        p.push(match c {
            '\\' => Pat::Lit(chars.next().unwrap_or('\\')),
            '*' => Pat::Star,
            '?' => Pat::One,
            c => Pat::Lit(c),
        });
    }
    let t: Vec<char> = text.chars().collect();
    // Iterative glob with one backtrack point: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some(Pat::One) => true,
            Some(Pat::Lit(c)) => *c == t[ti],
            _ => false,
        };
        if step {
            pi += 1;
            ti += 1;
        } else if p.get(pi) == Some(&Pat::Star) {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p.get(pi) == Some(&Pat::Star) {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a resource passes every filter. `values_of(name)` gives the
/// resource's values for a filter name, or `None` when the name is not a
/// filter of this resource type (then AWS refuses the request).
pub fn matches(
    filters: &[Filter],
    mut values_of: impl FnMut(&str) -> Option<Vec<String>>,
) -> Result<bool, ApiError> {
    for f in filters {
        let Some(have) = values_of(&f.name) else {
            return Err(invalid_filter(&f.name));
        };
        let ok = f
            .values
            .iter()
            .any(|want| have.iter().any(|h| wildcard(want, h)));
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `InvalidParameterValue: The filter 'x' is invalid` [V: aws-cli#2516].
pub fn invalid_filter(name: &str) -> ApiError {
    ApiError::invalid_value(format!("The filter '{name}' is invalid"))
}

/// Checks every filter name is known before anything is matched (AWS
/// refuses an unknown filter even when nothing would be compared).
pub fn check_names(filters: &[Filter], known: &[&str]) -> Result<(), ApiError> {
    for f in filters {
        let ok = known.contains(&f.name.as_str())
            || f.name.starts_with("tag:")
            || f.name == "tag-key"
            || f.name == "tag-value";
        if !ok {
            return Err(invalid_filter(&f.name));
        }
    }
    Ok(())
}

/// The values of the tag filters for a resource's tags, or None when the
/// name is not a tag filter.
pub fn tag_values(name: &str, tags: &[super::model::Tag]) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(
            tags.iter()
                .filter(|t| t.key == key)
                .map(|t| t.value.clone())
                .collect(),
        );
    }
    match name {
        "tag-key" => Some(tags.iter().map(|t| t.key.clone()).collect()),
        "tag-value" => Some(tags.iter().map(|t| t.value.clone()).collect()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("vol-*", "vol-123"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "abbc"));
        assert!(wildcard("*b*", "abc"));
        assert!(!wildcard("gp2", "gp3"));
        assert!(!wildcard("a?", "a"));
        assert!(wildcard(r"\*amazon\?\\", r"*amazon?\"));
        assert!(!wildcard(r"\*x", "ax"));
        assert!(wildcard(r"a\", r"a\"));
    }

    #[test]
    fn all_filters_must_match() {
        let fs = vec![
            Filter {
                name: "status".into(),
                values: vec!["available".into(), "in-use".into()],
            },
            Filter {
                name: "volume-type".into(),
                values: vec!["gp3".into()],
            },
        ];
        let r = matches(&fs, |n| match n {
            "status" => Some(vec!["in-use".into()]),
            "volume-type" => Some(vec!["gp3".into()]),
            _ => None,
        });
        assert_eq!(r, Ok(true));
        let r = matches(&fs, |n| match n {
            "status" => Some(vec!["in-use".into()]),
            "volume-type" => Some(vec!["gp2".into()]),
            _ => None,
        });
        assert_eq!(r, Ok(false));
    }
}
