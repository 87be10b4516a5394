//! The environment, read here at the command line's boundary and handed to
//! the library as configuration: which instance a guest command runs in
//! (`EBSIM_INSTANCE`, set by `ebsim shell`), the cloud's settings, the
//! locale, and the test hook for lsblk/df.

use super::error::AppletError;
use ebsim::ec2::release::{DEBIAN_12, OsRelease};
use ebsim::ec2::{ClockMode, DEFAULT_REGION, Ec2, Home, RatePolicy};
use ebsim::guest::{self, Context, Snapshot, Target};

/// The instance environment variable (set by `ebsim shell` and `exec`).
pub const INSTANCE_ENV: &str = "EBSIM_INSTANCE";

/// The guest's fstab file, set inside the guest namespace (`/etc/fstab`)
/// and by its boot (the served root's `etc/fstab`): `mount -a` and
/// `mount DIR` then read it instead of the image's catalog fstab.
pub const FSTAB_ENV: &str = "EBSIM_GUEST_FSTAB";

/// The test hook's variable: **EBSIM_GUEST_SNAPSHOT=path.json** makes lsblk
/// and df read their snapshot (`ebsim::guest::Snapshot` in serde's derived
/// layout) from that file instead of from an instance. tests/views.rs and
/// scripts/bench-views.sh use it; it is also handy for debugging a
/// rendering by hand. Not a user feature.
pub const SNAPSHOT_HOOK: &str = "EBSIM_GUEST_SNAPSHOT";

/// The instance `EBSIM_INSTANCE` names, if set.
pub fn instance() -> Option<String> {
    std::env::var(INSTANCE_ENV).ok().filter(|v| !v.is_empty())
}

/// True inside `ebsim shell`/`exec` (`EBSIM_INSTANCE` set): applets then
/// show the guest's tool versions.
pub fn in_instance() -> bool {
    instance().is_some()
}

/// The state directory: `EBSIM_HOME`, else `$XDG_DATA_HOME/ebsim`, else
/// `~/.local/share/ebsim`.
pub fn home() -> Result<Home, ebsim::ec2::Error> {
    Home::from_settings(
        std::env::var_os(ebsim::ec2::store::HOME_ENV),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The cloud as the environment sets it up (`EBSIM_HOME`, `EBSIM_CLOCK`,
/// `EBSIM_MODIFY_RATE`), acting in `region`.
pub fn ec2(region: &str) -> Result<Ec2, ebsim::ec2::Error> {
    let make = ec2_factory()?;
    make(region)
}

/// The environment's cloud settings, read once, as a maker of the cloud of
/// any region (what `ebsim serve` uses for each request).
pub fn ec2_factory() -> Result<
    impl Fn(&str) -> Result<Ec2, ebsim::ec2::Error> + Send + Sync + 'static,
    ebsim::ec2::Error,
> {
    let setting = |var: &str| std::env::var(var).ok();
    let mode = ClockMode::from_setting(setting(ebsim::ec2::clock::CLOCK_ENV).as_deref())?;
    let rate = RatePolicy::from_setting(setting(ebsim::ec2::RATE_ENV).as_deref())?;
    let home = home()?;
    Ok(move |region: &str| Ok(Ec2::new(home.clone(), mode, region).with_policy(rate)))
}

/// A library error as the guest's tools print it after `PROG: `.
pub fn why(e: &impl std::fmt::Display) -> String {
    e.to_string().trim().to_string()
}

/// The current instance's context (one transaction). The error is the
/// message without the program name.
pub fn context() -> Result<Context, String> {
    let ec2 = ec2(DEFAULT_REGION).map_err(|e| why(&e))?;
    let mut ctx = Context::load(&ec2, instance().as_deref()).map_err(|e| why(&e))?;
    // Inside the guest namespace (and at its boot) the fstab is the
    // guest's own file, not the image's catalog entry.
    if let Some(path) = std::env::var_os(FSTAB_ENV) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {}",
                std::path::Path::new(&path).display(),
                super::output::strerror(&e)
            )
        })?;
        ctx.fstab = guest::fstab::mounts(&text, &ctx.disks, &ctx.links).0;
    }
    Ok(ctx)
}

/// The instance's context when there is a cloud state to read, for paths
/// that may or may not be the instance's (a mount point there, or a file
/// here): None without a state (none is created then) or an instance.
pub fn maybe_context() -> Option<Context> {
    let home = home().ok()?;
    if !home.state_path().exists() {
        return None;
    }
    context().ok()
}

/// The instance's context for a tool's device argument, by the one rule
/// of [`Target`]: None when it is the host's business (a file here, or a
/// path while no instance has a mount there); the context; or, for a
/// device name without an instance, why not (`PROG: WHY`).
pub fn target_context(
    prog: &str,
    target: &str,
    tags: bool,
) -> Option<Result<Context, AppletError>> {
    match Target::of(target, tags, in_instance()) {
        Target::Host => None,
        Target::Path => maybe_context().map(Ok),
        Target::Device => Some(context().map_err(|why| AppletError::prog(prog, &why))),
    }
}

/// Where a tool's device argument points, by the one rule of [`Target`],
/// knowing whether this command runs inside an instance.
pub fn target(arg: &str, tags: bool) -> Target {
    Target::of(arg, tags, in_instance())
}

/// The OS release whose tools the applets copy: the instance's inside
/// `ebsim shell`, else the host's (Debian 12).
pub fn release() -> OsRelease {
    if !in_instance() {
        return DEBIAN_12;
    }
    let Ok(ec2) = ec2(DEFAULT_REGION) else {
        return DEBIAN_12;
    };
    guest::context::release(&ec2, instance().as_deref()).unwrap_or(DEBIAN_12)
}

/// What the current instance shows lsblk and df (or the test hook's file).
/// The error is the message without the program name.
pub fn snapshot() -> Result<Snapshot, String> {
    if let Some(path) = std::env::var_os(SNAPSHOT_HOOK) {
        let shown = std::path::Path::new(&path).display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        return serde_json::from_str(&text).map_err(|e| format!("{shown}: {e}"));
    }
    let ec2 = ec2(DEFAULT_REGION).map_err(|e| why(&e))?;
    guest::context::snapshot(&ec2, instance().as_deref()).map_err(|e| why(&e))
}

/// Whether the locale's character set is UTF-8 (glibc: the first set of
/// LC_ALL, LC_CTYPE, LANG; none means the C locale).
pub fn utf8_locale() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                let v = v.to_ascii_lowercase();
                return v.contains("utf-8") || v.contains("utf8");
            }
        }
    }
    false
}
