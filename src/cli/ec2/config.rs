//! Where the AWS CLI finds its region and output format when the command
//! line does not say: `AWS_DEFAULT_REGION` (and `AWS_REGION`) and
//! `AWS_DEFAULT_OUTPUT`, then the profile's `region` and `output` in the
//! config file (`AWS_CONFIG_FILE`, else `~/.aws/config`). The profile is
//! `--profile`, else `AWS_PROFILE` (or `AWS_DEFAULT_PROFILE`), else
//! `default`; its section is `[default]` or `[profile NAME]`. A profile
//! named on purpose that the file does not have is an error, as in the CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The settings of the profile in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `region`.
    pub region: Option<String>,
    /// `output`.
    pub output: Option<String>,
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = env("AWS_CONFIG_FILE") {
        let p = match p.strip_prefix("~/") {
            Some(rest) => PathBuf::from(env("HOME")?).join(rest),
            None => PathBuf::from(p),
        };
        return Some(p);
    }
    Some(PathBuf::from(env("HOME")?).join(".aws/config"))
}

/// The sections of an INI file: name → key → value (botocore's reader:
/// `#`/`;` comments, `key = value`, indented lines continue a value and
/// are ignored here).
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&current, t.split_once(['=', ':'])) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

/// The profile in use, from the config file. Err: the profile named by
/// `--profile` or `AWS_PROFILE` is not in the file (the CLI's message).
pub fn profile(flag: Option<&str>) -> Result<Profile, String> {
    let named = flag
        .map(str::to_string)
        .or_else(|| env("AWS_PROFILE"))
        .or_else(|| env("AWS_DEFAULT_PROFILE"));
    let name = named.clone().unwrap_or_else(|| "default".to_string());
    let text = config_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let ini = parse_ini(&text);
    let section = if name == "default" {
        ini.get("default").or_else(|| ini.get("profile default"))
    } else {
        ini.get(&format!("profile {name}"))
    };
    match section {
        Some(s) => Ok(Profile {
            region: s.get("region").filter(|v| !v.is_empty()).cloned(),
            output: s.get("output").filter(|v| !v.is_empty()).cloned(),
        }),
        None if named.is_some() && name != "default" => {
            // The credentials file may hold the profile too; ebsim needs
            // no credentials, so a profile that exists only there is fine.
            let creds = env("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            if parse_ini(&creds).contains_key(&name) {
                Ok(Profile::default())
            } else {
                Err(format!("The config profile ({name}) could not be found"))
            }
        }
        None => Ok(Profile::default()),
    }
}

/// The region: `--region`, `AWS_REGION`/`AWS_DEFAULT_REGION`, the
/// profile's, or None.
pub fn region(flag: Option<&str>, p: &Profile) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| p.region.clone())
}

/// The output format when `--output` is not given: `AWS_DEFAULT_OUTPUT`,
/// else the profile's.
pub fn output(p: &Profile) -> Option<String> {
    env("AWS_DEFAULT_OUTPUT").or_else(|| p.output.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_keys_and_comments() {
        let ini = parse_ini(
            "# c\n[default]\nregion = eu-west-1\noutput=text\n[profile dev]\nregion: us-west-2\n  nested = x\n; c\n",
        );
        assert_eq!(ini["default"]["region"], "eu-west-1");
        assert_eq!(ini["default"]["output"], "text");
        assert_eq!(ini["profile dev"]["region"], "us-west-2");
        assert!(!ini["profile dev"].contains_key("nested"));
    }
}
