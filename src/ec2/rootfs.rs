//! What the catalog's root filesystems hold: the files a user looks at on
//! a freshly launched instance, and bulk content that makes `df` show what
//! the real AMI shows on first boot, without real bytes on the host.
//!
//! A root is a list of [`Node`]s written through the file layer
//! ([`FileSystem`]), so the same lists serve ext4 and XFS:
//!
//! - the usual top-level directories (`/tmp` and `/var/tmp` 1777, `/root`
//!   0700, `/proc` and `/sys` 0555), the merged-`/usr` links where the
//!   distribution has them;
//! - `/etc/os-release` with the release's text, `/etc/fstab` naming the
//!   root by the label or UUID the distribution's image uses, `/etc/hostname`,
//!   `/etc/cloud/cloud.cfg` with the settings of the release's cloud-init
//!   (growpart and resizefs among the init modules), the account files
//!   with the default user (uid 1000, as cloud-init creates it on first
//!   boot) and its home with shell start-up files, `/var/log`;
//! - bulk files (kernel, modules, libraries, snaps or package caches) as
//!   preallocated, unwritten extents: they count in `df`'s Used column as
//!   on the real instance, read as zeros, and cost the image nothing but
//!   metadata.
//!
//! Used space: after the listed content, one more bulk file is
//! preallocated so that statfs's used
//! blocks reach the root's [`RootSpec::used_bytes`], taken from published
//! `df -h` output of instances launched from these AMIs (see
//! [`RootSpec::used_bytes`] for each). Bulk files carry their real
//! names where they are few and large (kernel, initrd, snaps); the rest
//! of a directory's share is one hidden `.ebsim-bulk` file in it, so `du`
//! shows where the space goes and nothing pretends to be a real library.
//! The split between directories is illustrative; the total is matched. The shell start-up files
//! are short stand-ins written for ebsim, not the distributions' own.

use super::catalog::CatalogImage;
use crate::fs::node::{Ctx, FallocateMode, FileSystem, FileType, Ino, SetAttr};
use crate::fs::path;

/// One thing in a root filesystem. Paths are absolute; parents come first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory: path, mode, owner, group.
    Dir(&'static str, u16, u32, u32),
    /// A file with this text: path, mode, owner, group, contents.
    File(String, u16, u32, u32, String),
    /// A symlink: path, target.
    Link(&'static str, &'static str),
    /// A preallocated file (unwritten extents): path, bytes.
    Bulk(String, u64),
    /// A sparse file (a hole of this size): path, mode, owner, group, size.
    Sparse(&'static str, u16, u32, u32, u64),
}

/// A root filesystem's contents.
#[derive(Debug, Clone)]
pub struct RootSpec {
    /// What to create, in order.
    pub nodes: Vec<Node>,
    /// The file preallocated last to bring the used space to
    /// `used_bytes`.
    pub balance: &'static str,
    /// The bytes statfs reports in use (`blocks − bfree`) on first boot.
    pub used_bytes: u64,
}

/// Why populating a root failed (a bug in a spec, or the filesystem).
fn fail(what: &str, e: impl std::fmt::Display) -> String {
    format!("populating the root filesystem: {what}: {e}")
}

fn parent_of(fs: &dyn FileSystem, p: &str) -> Result<(Ino, Vec<u8>), String> {
    let at = path::parent(fs, p.as_bytes()).map_err(|e| fail(p, e))?;
    match at.name {
        Some(n) => Ok((at.dir, n)),
        None => Err(fail(p, "not a file name")),
    }
}

fn own(
    fs: &mut dyn FileSystem,
    ctx: Ctx,
    ino: Ino,
    p: &str,
    uid: u32,
    gid: u32,
) -> Result<(), String> {
    if (uid, gid) == (ctx.cred.uid, ctx.cred.gid) {
        return Ok(());
    }
    let set = SetAttr {
        uid: Some(uid),
        gid: Some(gid),
        ..SetAttr::default()
    };
    fs.setattr(ctx, ino, set)
        .map(|_| ())
        .map_err(|e| fail(p, e))
}

/// Used bytes as statfs reports them.
fn used(fs: &dyn FileSystem) -> Result<u64, String> {
    let s = fs.statfs().map_err(|e| fail("statfs", e))?;
    Ok(s.blocks.saturating_sub(s.bfree).saturating_mul(s.frsize))
}

/// Writes `spec` into `fs` as root at `ctx.now`, then preallocates the
/// balance file up to the spec's used bytes (never past them; a spec
/// whose content alone passes them is an error), and syncs.
pub fn populate(fs: &mut dyn FileSystem, ctx: Ctx, spec: &RootSpec) -> Result<(), String> {
    for n in &spec.nodes {
        match n {
            Node::Dir(p, perm, uid, gid) => {
                let (dir, name) = parent_of(fs, p)?;
                let a = fs.mkdir(ctx, dir, &name, *perm).map_err(|e| fail(p, e))?;
                own(fs, ctx, a.ino, p, *uid, *gid)?;
            }
            Node::File(p, perm, uid, gid, text) => {
                let (dir, name) = parent_of(fs, p)?;
                let a = fs
                    .mknod(ctx, dir, &name, FileType::Regular, *perm, 0)
                    .map_err(|e| fail(p, e))?;
                let mut off = 0usize;
                while off < text.len() {
                    let n = fs
                        .write(ctx, a.ino, off as u64, &text.as_bytes()[off..])
                        .map_err(|e| fail(p, e))?;
                    if n == 0 {
                        return Err(fail(p, "short write"));
                    }
                    off += n;
                }
                own(fs, ctx, a.ino, p, *uid, *gid)?;
            }
            Node::Link(p, target) => {
                let (dir, name) = parent_of(fs, p)?;
                fs.symlink(ctx, dir, &name, target.as_bytes())
                    .map_err(|e| fail(p, e))?;
            }
            Node::Bulk(p, size) => {
                let (dir, name) = parent_of(fs, p)?;
                let a = fs
                    .mknod(ctx, dir, &name, FileType::Regular, 0o644, 0)
                    .map_err(|e| fail(p, e))?;
                if *size > 0 {
                    fs.fallocate(
                        ctx,
                        a.ino,
                        0,
                        *size,
                        FallocateMode::Allocate { keep_size: false },
                    )
                    .map_err(|e| fail(p, e))?;
                }
            }
            Node::Sparse(p, perm, uid, gid, size) => {
                let (dir, name) = parent_of(fs, p)?;
                let a = fs
                    .mknod(ctx, dir, &name, FileType::Regular, *perm, 0)
                    .map_err(|e| fail(p, e))?;
                let set = SetAttr {
                    size: Some(*size),
                    ..SetAttr::default()
                };
                fs.setattr(ctx, a.ino, set).map_err(|e| fail(p, e))?;
                own(fs, ctx, a.ino, p, *uid, *gid)?;
            }
        }
    }
    let (dir, name) = parent_of(fs, spec.balance)?;
    let bal = fs
        .mknod(ctx, dir, &name, FileType::Regular, 0o644, 0)
        .map_err(|e| fail(spec.balance, e))?;
    let now = used(fs)?;
    let bs = fs.statfs().map_err(|e| fail("statfs", e))?.frsize.max(1);
    if now > spec.used_bytes {
        return Err(fail(
            spec.balance,
            format!(
                "the content uses {now} bytes, more than the {} to reach",
                spec.used_bytes
            ),
        ));
    }
    // The tree blocks of a large preallocation count too: leave room for
    // them (one per 340 extents, at most a few).
    let want = (spec.used_bytes - now) / bs * bs;
    let room = want.saturating_sub(8 * bs);
    if room > 0 {
        fs.fallocate(
            ctx,
            bal.ino,
            0,
            room,
            FallocateMode::Allocate { keep_size: false },
        )
        .map_err(|e| fail(spec.balance, e))?;
    }
    fs.sync().map_err(|e| fail("sync", e))
}

fn bulk(p: impl Into<String>, size: u64) -> Node {
    Node::Bulk(p.into(), size)
}

fn text(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// `name:x:uid:gid:gecos:home:shell` lines and the matching group lines.
struct Accounts {
    passwd: Vec<String>,
    shadow: Vec<String>,
    group: Vec<String>,
    gshadow: Vec<String>,
}

impl Accounts {
    fn new() -> Self {
        Accounts {
            passwd: Vec::new(),
            shadow: Vec::new(),
            group: Vec::new(),
            gshadow: Vec::new(),
        }
    }

    fn user(&mut self, name: &str, id: u32, gid: u32, gecos: &str, home: &str, shell: &str) {
        self.passwd
            .push(format!("{name}:x:{id}:{gid}:{gecos}:{home}:{shell}"));
        self.shadow.push(format!("{name}:*:19782:0:99999:7:::"));
    }

    fn group(&mut self, name: &str, id: u32, members: &str) {
        self.group.push(format!("{name}:x:{id}:{members}"));
        self.gshadow.push(format!("{name}:*::{members}"));
    }

    fn files(&self, shadow_gid: u32) -> Vec<Node> {
        vec![
            Node::File(
                "/etc/passwd".into(),
                0o644,
                0,
                0,
                text(&as_refs(&self.passwd)),
            ),
            Node::File(
                "/etc/shadow".into(),
                0o640,
                0,
                shadow_gid,
                text(&as_refs(&self.shadow)),
            ),
            Node::File(
                "/etc/group".into(),
                0o644,
                0,
                0,
                text(&as_refs(&self.group)),
            ),
            Node::File(
                "/etc/gshadow".into(),
                0o640,
                0,
                shadow_gid,
                text(&as_refs(&self.gshadow)),
            ),
        ]
    }
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A home's shell start-up files (ebsim's own short versions).
fn home_files(home: &'static str, uid: u32, bash_profile: bool) -> Vec<Node> {
    let f = |name: &str, body: String| Node::File(format!("{home}/{name}"), 0o644, uid, uid, body);
    let mut v = vec![
        f(
            ".bashrc",
            text(&[
                "# ~/.bashrc: run by interactive non-login bash shells.",
                "# (A short stand-in written for ebsim's catalog image.)",
                "case $- in *i*) ;; *) return ;; esac",
                "HISTCONTROL=ignoreboth",
                "HISTSIZE=1000",
                "HISTFILESIZE=2000",
                "shopt -s histappend checkwinsize",
                "PS1='\\u@\\h:\\w\\$ '",
                "alias ls='ls --color=auto'",
                "alias ll='ls -alF'",
                "alias la='ls -A'",
                "[ -f ~/.bash_aliases ] && . ~/.bash_aliases",
            ]),
        ),
        f(
            ".bash_logout",
            text(&[
                "# ~/.bash_logout: run when a login shell exits.",
                "[ \"$SHLVL\" = 1 ] && [ -x /usr/bin/clear_console ] && /usr/bin/clear_console -q",
            ]),
        ),
    ];
    if bash_profile {
        v.push(f(
            ".bash_profile",
            text(&[
                "# ~/.bash_profile: run by login shells.",
                "[ -f ~/.bashrc ] && . ~/.bashrc",
                "PATH=$HOME/.local/bin:$HOME/bin:$PATH",
                "export PATH",
            ]),
        ));
    } else {
        v.push(f(
            ".profile",
            text(&[
                "# ~/.profile: run by login shells.",
                "if [ -n \"$BASH_VERSION\" ] && [ -f \"$HOME/.bashrc\" ]; then . \"$HOME/.bashrc\"; fi",
                "[ -d \"$HOME/bin\" ] && PATH=\"$HOME/bin:$PATH\"",
                "[ -d \"$HOME/.local/bin\" ] && PATH=\"$HOME/.local/bin:$PATH\"",
            ]),
        ));
    }
    v
}

/// cloud-init's settings for Ubuntu 22.04 (cloud-init 23.4): the module
/// lists of its stages and the default user.
fn ubuntu_cloud_cfg() -> String {
    text(&[
        "# cloud-init configuration (cloud-init 23.4, Ubuntu 22.04).",
        "users:",
        "  - default",
        "disable_root: true",
        "preserve_hostname: false",
        "cloud_init_modules:",
        "  - seed_random",
        "  - bootcmd",
        "  - write_files",
        "  - growpart",
        "  - resizefs",
        "  - disk_setup",
        "  - mounts",
        "  - set_hostname",
        "  - update_hostname",
        "  - update_etc_hosts",
        "  - ca_certs",
        "  - rsyslog",
        "  - users_groups",
        "  - ssh",
        "cloud_config_modules:",
        "  - wireguard",
        "  - snap",
        "  - ubuntu_autoinstall",
        "  - ssh_import_id",
        "  - keyboard",
        "  - locale",
        "  - set_passwords",
        "  - grub_dpkg",
        "  - apt_pipelining",
        "  - apt_configure",
        "  - ubuntu_advantage",
        "  - ntp",
        "  - timezone",
        "  - disable_ec2_metadata",
        "  - runcmd",
        "  - byobu",
        "cloud_final_modules:",
        "  - package_update_upgrade_install",
        "  - fan",
        "  - landscape",
        "  - lxd",
        "  - ubuntu_drivers",
        "  - write_files_deferred",
        "  - puppet",
        "  - chef",
        "  - ansible",
        "  - mcollective",
        "  - salt_minion",
        "  - reset_rmc",
        "  - scripts_vendor",
        "  - scripts_per_once",
        "  - scripts_per_boot",
        "  - scripts_per_instance",
        "  - scripts_user",
        "  - ssh_authkey_fingerprints",
        "  - keys_to_console",
        "  - install_hotplug",
        "  - phone_home",
        "  - final_message",
        "  - power_state_change",
        "system_info:",
        "  distro: ubuntu",
        "  default_user:",
        "    name: ubuntu",
        "    lock_passwd: True",
        "    gecos: Ubuntu",
        "    groups: [adm, cdrom, dip, lxd, sudo]",
        "    sudo: [\"ALL=(ALL) NOPASSWD:ALL\"]",
        "    shell: /bin/bash",
        "  network:",
        "    renderers: ['netplan', 'eni', 'sysconfig']",
        "    activators: ['netplan', 'eni', 'network-manager', 'networkd']",
        "  ntp_client: auto",
        "  paths:",
        "    cloud_dir: /var/lib/cloud/",
        "    templates_dir: /etc/cloud/templates/",
        "  package_mirrors:",
        "    - arches: [i386, amd64]",
        "      failsafe:",
        "        primary: http://archive.ubuntu.com/ubuntu",
        "        security: http://security.ubuntu.com/ubuntu",
        "      search:",
        "        primary:",
        "          - http://%(ec2_region)s.ec2.archive.ubuntu.com/ubuntu/",
        "          - http://%(availability_zone)s.clouds.archive.ubuntu.com/ubuntu/",
        "          - http://%(region)s.clouds.archive.ubuntu.com/ubuntu/",
        "        security: []",
        "    - arches: [arm64, armel, armhf]",
        "      failsafe:",
        "        primary: http://ports.ubuntu.com/ubuntu-ports",
        "        security: http://ports.ubuntu.com/ubuntu-ports",
        "  ssh_svcname: ssh",
    ])
}

/// The top-level layout of a merged-`/usr` distribution.
fn merged_usr(lib32: bool) -> Vec<Node> {
    let mut v = vec![
        Node::Link("/bin", "usr/bin"),
        Node::Link("/lib", "usr/lib"),
        Node::Link("/lib64", "usr/lib64"),
        Node::Link("/sbin", "usr/sbin"),
    ];
    if lib32 {
        v.push(Node::Link("/lib32", "usr/lib32"));
        v.push(Node::Link("/libx32", "usr/libx32"));
    }
    v
}

/// Directories every root has.
fn common_dirs() -> Vec<Node> {
    [
        ("/boot", 0o755),
        ("/dev", 0o755),
        ("/etc", 0o755),
        ("/home", 0o755),
        ("/media", 0o755),
        ("/mnt", 0o755),
        ("/opt", 0o755),
        ("/proc", 0o555),
        ("/root", 0o700),
        ("/run", 0o755),
        ("/srv", 0o755),
        ("/sys", 0o555),
        ("/tmp", 0o1777),
        ("/usr", 0o755),
        ("/usr/bin", 0o755),
        ("/usr/include", 0o755),
        ("/usr/lib", 0o755),
        ("/usr/lib64", 0o755),
        ("/usr/libexec", 0o755),
        ("/usr/local", 0o755),
        ("/usr/local/bin", 0o755),
        ("/usr/local/etc", 0o755),
        ("/usr/local/lib", 0o755),
        ("/usr/local/sbin", 0o755),
        ("/usr/local/share", 0o755),
        ("/usr/local/src", 0o755),
        ("/usr/sbin", 0o755),
        ("/usr/share", 0o755),
        ("/usr/src", 0o755),
        ("/var", 0o755),
        ("/var/cache", 0o755),
        ("/var/lib", 0o755),
        ("/var/local", 0o755),
        ("/var/opt", 0o755),
        ("/var/spool", 0o755),
        ("/var/tmp", 0o1777),
        ("/etc/cloud", 0o755),
        ("/etc/cloud/cloud.cfg.d", 0o755),
        ("/var/lib/cloud", 0o755),
    ]
    .iter()
    .map(|&(p, m)| Node::Dir(p, m, 0, 0))
    .collect()
}

/// Ubuntu 22.04 (jammy, the 20240301 server image): ext4 labelled
/// `cloudimg-rootfs`, merged `/usr`, snaps. Used space: `df -h` on
/// instances launched from early-2024 jammy AMIs shows
/// `/dev/root 7.6G 1.5G 6.1G 20% /` (up to `1.6G 6.0G 21%`): 1.5 GiB.
pub fn ubuntu(image: &CatalogImage) -> RootSpec {
    const UID: u32 = 1000;
    let mut n = common_dirs();
    n.extend(merged_usr(image.architecture == "x86_64"));
    if image.architecture == "x86_64" {
        n.push(Node::Dir("/usr/lib32", 0o755, 0, 0));
        n.push(Node::Dir("/usr/libx32", 0o755, 0, 0));
    }
    let triplet = if image.architecture == "x86_64" {
        "x86_64-linux-gnu"
    } else {
        "aarch64-linux-gnu"
    };
    for (p, m) in [
        ("/boot/efi", 0o755),
        ("/boot/grub", 0o755),
        ("/snap", 0o755),
        ("/etc/netplan", 0o755),
        ("/etc/sudoers.d", 0o750),
        ("/etc/default", 0o755),
        ("/etc/ssh", 0o755),
        ("/usr/lib/modules", 0o755),
        ("/usr/lib/python3", 0o755),
        ("/usr/lib/python3/dist-packages", 0o755),
        ("/usr/share/doc", 0o755),
        ("/usr/share/zoneinfo", 0o755),
        ("/usr/share/zoneinfo/Etc", 0o755),
        ("/var/backups", 0o755),
        ("/var/cache/apt", 0o755),
        ("/var/cache/apt/archives", 0o755),
        ("/var/crash", 0o1777),
        ("/var/lib/apt", 0o755),
        ("/var/lib/apt/lists", 0o755),
        ("/var/lib/dpkg", 0o755),
        ("/var/lib/snapd", 0o755),
        ("/var/lib/snapd/snaps", 0o755),
        ("/var/snap", 0o755),
        ("/var/log/apt", 0o755),
        ("/var/log/dist-upgrade", 0o755),
        ("/var/log/landscape", 0o755),
        ("/var/log/unattended-upgrades", 0o750),
    ] {
        if p == "/var/log/apt" {
            // /var/log before its children: root:syslog 0775.
            n.push(Node::Dir("/var/log", 0o775, 0, 113));
            n.push(Node::Dir("/var/log/journal", 0o2755, 0, 101));
        }
        n.push(Node::Dir(p, m, 0, 0));
    }
    n.push(Node::Dir("/var/mail", 0o2775, 0, 8));
    n.push(Node::Link("/var/lock", "/run/lock"));
    n.push(Node::Link("/var/run", "/run"));
    n.push(Node::Dir("/usr/lib/modules/6.5.0-1014-aws", 0o755, 0, 0));
    n.push(Node::Dir(
        match triplet {
            "x86_64-linux-gnu" => "/usr/lib/x86_64-linux-gnu",
            _ => "/usr/lib/aarch64-linux-gnu",
        },
        0o755,
        0,
        0,
    ));
    n.push(Node::File(
        "/usr/lib/os-release".into(),
        0o644,
        0,
        0,
        text(&[
            "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"",
            "NAME=\"Ubuntu\"",
            "VERSION_ID=\"22.04\"",
            "VERSION=\"22.04.4 LTS (Jammy Jellyfish)\"",
            "VERSION_CODENAME=jammy",
            "ID=ubuntu",
            "ID_LIKE=debian",
            "HOME_URL=\"https://www.ubuntu.com/\"",
            "SUPPORT_URL=\"https://help.ubuntu.com/\"",
            "BUG_REPORT_URL=\"https://bugs.launchpad.net/ubuntu/\"",
            "PRIVACY_POLICY_URL=\"https://www.ubuntu.com/legal/terms-and-policies/privacy-policy\"",
            "UBUNTU_CODENAME=jammy",
        ]),
    ));
    n.push(Node::Link("/etc/os-release", "../usr/lib/os-release"));
    let etc = |p: &str, body: String| Node::File(p.into(), 0o644, 0, 0, body);
    n.extend([
        etc(
            "/etc/lsb-release",
            text(&[
                "DISTRIB_ID=Ubuntu",
                "DISTRIB_RELEASE=22.04",
                "DISTRIB_CODENAME=jammy",
                "DISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"",
            ]),
        ),
        etc("/etc/debian_version", text(&["bookworm/sid"])),
        etc("/etc/issue", text(&["Ubuntu 22.04.4 LTS \\n \\l", ""])),
        etc("/etc/issue.net", text(&["Ubuntu 22.04.4 LTS"])),
        etc(
            "/etc/fstab",
            text(&[
                "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1",
                "LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1",
            ]),
        ),
        etc("/etc/hostname", text(&["ubuntu"])),
        etc(
            "/etc/hosts",
            text(&[
                "127.0.0.1 localhost",
                "",
                "# The following lines are desirable for IPv6 capable hosts",
                "::1 ip6-localhost ip6-loopback",
                "fe00::0 ip6-localnet",
                "ff00::0 ip6-mcastprefix",
                "ff02::1 ip6-allnodes",
                "ff02::2 ip6-allrouters",
                "ff02::3 ip6-allhosts",
            ]),
        ),
        etc("/etc/timezone", text(&["Etc/UTC"])),
        etc("/etc/cloud/cloud.cfg", ubuntu_cloud_cfg()),
        etc(
            "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
            text(&[
                "# to update this file, run dpkg-reconfigure cloud-init",
                "datasource_list: [ NoCloud, ConfigDrive, OpenNebula, DigitalOcean, Azure, AltCloud, OVF, MAAS, GCE, OpenStack, CloudSigma, SmartOS, Bigstep, Scaleway, AliYun, Ec2, CloudStack, Hetzner, IBMCloud, Oracle, Exoscale, RbxCloud, UpCloud, VMware, Vultr, LXD, NWCS, Akamai, None ]",
            ]),
        ),
        etc(
            "/etc/netplan/50-cloud-init.yaml",
            text(&[
                "network:",
                "    ethernets:",
                "        eth0:",
                "            dhcp4: true",
                "            dhcp6: false",
                "            match:",
                "                macaddress: 06:00:00:00:00:01",
                "            set-name: eth0",
                "    version: 2",
            ]),
        ),
        Node::File(
            "/etc/sudoers.d/90-cloud-init-users".into(),
            0o440,
            0,
            0,
            text(&[
                "# Created by cloud-init v. 23.4.4-0ubuntu0~22.04.1 on Fri, 01 Mar 2024 07:07:06 +0000",
                "",
                "# User rules for ubuntu",
                "ubuntu ALL=(ALL) NOPASSWD:ALL",
            ]),
        ),
        etc("/etc/default/locale", text(&["LANG=C.UTF-8"])),
    ]);
    n.push(Node::Link("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"));
    n.push(bulk("/usr/share/zoneinfo/Etc/UTC", 114));
    let mut acc = Accounts::new();
    for (name, id, gid, gecos, home, shell) in [
        ("root", 0, 0, "root", "/root", "/bin/bash"),
        ("daemon", 1, 1, "daemon", "/usr/sbin", "/usr/sbin/nologin"),
        ("bin", 2, 2, "bin", "/bin", "/usr/sbin/nologin"),
        ("sys", 3, 3, "sys", "/dev", "/usr/sbin/nologin"),
        ("sync", 4, 65534, "sync", "/bin", "/bin/sync"),
        ("games", 5, 60, "games", "/usr/games", "/usr/sbin/nologin"),
        ("man", 6, 12, "man", "/var/cache/man", "/usr/sbin/nologin"),
        ("lp", 7, 7, "lp", "/var/spool/lpd", "/usr/sbin/nologin"),
        ("mail", 8, 8, "mail", "/var/mail", "/usr/sbin/nologin"),
        ("news", 9, 9, "news", "/var/spool/news", "/usr/sbin/nologin"),
        (
            "uucp",
            10,
            10,
            "uucp",
            "/var/spool/uucp",
            "/usr/sbin/nologin",
        ),
        ("proxy", 13, 13, "proxy", "/bin", "/usr/sbin/nologin"),
        (
            "www-data",
            33,
            33,
            "www-data",
            "/var/www",
            "/usr/sbin/nologin",
        ),
        (
            "backup",
            34,
            34,
            "backup",
            "/var/backups",
            "/usr/sbin/nologin",
        ),
        (
            "list",
            38,
            38,
            "Mailing List Manager",
            "/var/list",
            "/usr/sbin/nologin",
        ),
        ("irc", 39, 39, "ircd", "/run/ircd", "/usr/sbin/nologin"),
        (
            "gnats",
            41,
            41,
            "Gnats Bug-Reporting System (admin)",
            "/var/lib/gnats",
            "/usr/sbin/nologin",
        ),
        (
            "nobody",
            65534,
            65534,
            "nobody",
            "/nonexistent",
            "/usr/sbin/nologin",
        ),
        ("_apt", 100, 65534, "", "/nonexistent", "/usr/sbin/nologin"),
        (
            "systemd-network",
            101,
            102,
            "systemd Network Management,,,",
            "/run/systemd",
            "/usr/sbin/nologin",
        ),
        (
            "systemd-resolve",
            102,
            103,
            "systemd Resolver,,,",
            "/run/systemd",
            "/usr/sbin/nologin",
        ),
        (
            "messagebus",
            103,
            104,
            "",
            "/nonexistent",
            "/usr/sbin/nologin",
        ),
        (
            "systemd-timesync",
            104,
            105,
            "systemd Time Synchronization,,,",
            "/run/systemd",
            "/usr/sbin/nologin",
        ),
        (
            "pollinate",
            105,
            1,
            "",
            "/var/cache/pollinate",
            "/bin/false",
        ),
        ("sshd", 106, 65534, "", "/run/sshd", "/usr/sbin/nologin"),
        ("syslog", 107, 113, "", "/home/syslog", "/usr/sbin/nologin"),
        ("uuidd", 108, 114, "", "/run/uuidd", "/usr/sbin/nologin"),
        ("tcpdump", 109, 115, "", "/nonexistent", "/usr/sbin/nologin"),
        (
            "tss",
            110,
            116,
            "TPM software stack,,,",
            "/var/lib/tpm",
            "/bin/false",
        ),
        (
            "landscape",
            111,
            117,
            "",
            "/var/lib/landscape",
            "/usr/sbin/nologin",
        ),
        (
            "fwupd-refresh",
            112,
            118,
            "fwupd-refresh user,,,",
            "/run/systemd",
            "/usr/sbin/nologin",
        ),
        ("ubuntu", UID, UID, "Ubuntu", "/home/ubuntu", "/bin/bash"),
    ] {
        acc.user(name, id, gid, gecos, home, shell);
    }
    for (name, id, members) in [
        ("root", 0, ""),
        ("daemon", 1, ""),
        ("bin", 2, ""),
        ("sys", 3, ""),
        ("adm", 4, "syslog,ubuntu"),
        ("tty", 5, ""),
        ("disk", 6, ""),
        ("lp", 7, ""),
        ("mail", 8, ""),
        ("news", 9, ""),
        ("uucp", 10, ""),
        ("man", 12, ""),
        ("proxy", 13, ""),
        ("kmem", 15, ""),
        ("dialout", 20, ""),
        ("fax", 21, ""),
        ("voice", 22, ""),
        ("cdrom", 24, "ubuntu"),
        ("floppy", 25, ""),
        ("tape", 26, ""),
        ("sudo", 27, "ubuntu"),
        ("audio", 29, ""),
        ("dip", 30, "ubuntu"),
        ("www-data", 33, ""),
        ("backup", 34, ""),
        ("operator", 37, ""),
        ("list", 38, ""),
        ("irc", 39, ""),
        ("src", 40, ""),
        ("gnats", 41, ""),
        ("shadow", 42, ""),
        ("utmp", 43, ""),
        ("video", 44, ""),
        ("sasl", 45, ""),
        ("plugdev", 46, ""),
        ("staff", 50, ""),
        ("games", 60, ""),
        ("users", 100, ""),
        ("nogroup", 65534, ""),
        ("systemd-journal", 101, ""),
        ("systemd-network", 102, ""),
        ("systemd-resolve", 103, ""),
        ("messagebus", 104, ""),
        ("systemd-timesync", 105, ""),
        ("input", 106, ""),
        ("sgx", 107, ""),
        ("kvm", 108, ""),
        ("render", 109, ""),
        ("lxd", 110, "ubuntu"),
        ("_ssh", 111, ""),
        ("crontab", 112, ""),
        ("syslog", 113, ""),
        ("uuidd", 114, ""),
        ("tcpdump", 115, ""),
        ("tss", 116, ""),
        ("landscape", 117, ""),
        ("fwupd-refresh", 118, ""),
        ("netdev", 119, ""),
        ("ubuntu", UID, ""),
    ] {
        acc.group(name, id, members);
    }
    n.extend(acc.files(42));
    n.push(Node::Dir("/home/ubuntu", 0o750, UID, UID));
    n.extend(home_files("/home/ubuntu", UID, false));
    n.push(Node::Dir("/home/ubuntu/.ssh", 0o700, UID, UID));
    n.push(Node::Dir("/home/ubuntu/.cache", 0o700, UID, UID));
    n.extend(home_files("/root", 0, false));
    n.push(Node::Dir("/root/.ssh", 0o700, 0, 0));
    n.push(Node::Dir("/root/snap", 0o700, 0, 0));
    // Logs of the first boot (binary account logs: sparse, as on a real
    // system; text logs: empty here).
    n.extend([
        Node::Sparse("/var/log/lastlog", 0o664, 0, 43, 292_584),
        Node::Sparse("/var/log/wtmp", 0o664, 0, 43, 0),
        Node::Sparse("/var/log/btmp", 0o660, 0, 43, 0),
        Node::Sparse("/var/log/syslog", 0o640, 107, 4, 0),
        Node::Sparse("/var/log/auth.log", 0o640, 107, 4, 0),
        Node::Sparse("/var/log/kern.log", 0o640, 107, 4, 0),
        Node::Sparse("/var/log/cloud-init.log", 0o640, 107, 4, 0),
        Node::Sparse("/var/log/cloud-init-output.log", 0o640, 0, 4, 0),
        Node::Sparse("/var/log/dpkg.log", 0o644, 0, 0, 0),
    ]);
    // Bulk: the kernel and the snaps under their own names, the rest as
    // one hidden `.ebsim-bulk` file per directory (so du shows where the
    // space is, and ls without -a shows nothing odd).
    n.extend([
        bulk("/boot/vmlinuz-6.5.0-1014-aws", 14_209_432),
        bulk("/boot/initrd.img-6.5.0-1014-aws", 29_856_311),
        bulk("/boot/System.map-6.5.0-1014-aws", 8_453_262),
        bulk("/boot/config-6.5.0-1014-aws", 279_611),
        Node::Link("/boot/vmlinuz", "vmlinuz-6.5.0-1014-aws"),
        Node::Link("/boot/initrd.img", "initrd.img-6.5.0-1014-aws"),
        bulk(
            "/var/lib/snapd/snaps/amazon-ssm-agent_7628.snap",
            26_107_904,
        ),
        bulk("/var/lib/snapd/snaps/core18_2812.snap", 58_404_864),
        bulk("/var/lib/snapd/snaps/core20_2182.snap", 67_006_464),
        bulk("/var/lib/snapd/snaps/lxd_27037.snap", 91_226_112),
        bulk("/var/lib/snapd/snaps/snapd_20671.snap", 42_364_928),
        bulk("/usr/lib/modules/6.5.0-1014-aws/.ebsim-bulk", 120 << 20),
        bulk(
            match triplet {
                "x86_64-linux-gnu" => "/usr/lib/x86_64-linux-gnu/.ebsim-bulk",
                _ => "/usr/lib/aarch64-linux-gnu/.ebsim-bulk",
            },
            330 << 20,
        ),
        bulk("/usr/lib/python3/dist-packages/.ebsim-bulk", 100 << 20),
        bulk("/usr/bin/.ebsim-bulk", 90 << 20),
        bulk("/usr/sbin/.ebsim-bulk", 20 << 20),
        bulk("/usr/libexec/.ebsim-bulk", 20 << 20),
        bulk("/usr/share/.ebsim-bulk", 300 << 20),
        bulk("/var/lib/apt/lists/.ebsim-bulk", 90 << 20),
        bulk("/var/cache/apt/.ebsim-bulk", 60 << 20),
        bulk("/var/lib/dpkg/.ebsim-bulk", 30 << 20),
    ]);
    RootSpec {
        nodes: n,
        balance: "/usr/lib/.ebsim-bulk",
        used_bytes: (3 << 30) / 2 - (1 << 20),
    }
}

/// cloud-init's settings as Amazon Linux and CentOS ship them (the
/// `amazon` and `centos` variants): the stages' modules, the default user.
fn rh_cloud_cfg(variant: &str, user: &str, gecos: &str, version: &str) -> String {
    let amazon = variant == "amazon";
    let mut v: Vec<String> = vec![
        format!("# cloud-init configuration (cloud-init {version})."),
        "users:".into(),
        " - default".into(),
        "disable_root: true".into(),
        "ssh_pwauth: false".into(),
    ];
    if amazon {
        v.extend(
            [
                "mount_default_fields: [~, ~, 'auto', 'defaults,nofail', '0', '2']",
                "resize_rootfs: noblock",
                "resize_rootfs_tmp: /dev",
                "ssh_deletekeys: true",
                "ssh_genkeytypes: ['rsa', 'ecdsa', 'ed25519']",
                "syslog_fix_perms: ~",
                "datasource_list: [ Ec2, None ]",
                "repo_upgrade: security",
                "repo_upgrade_exclude:",
                " - kernel",
                " - nvidia*",
                " - cuda*",
                "network:",
                "  config: disabled",
            ]
            .map(String::from),
        );
    } else {
        v.extend(
            [
                "mount_default_fields: [~, ~, 'auto', 'defaults,nofail,x-systemd.requires=cloud-init.service', '0', '2']",
                "resize_rootfs_tmp: /dev",
                "ssh_deletekeys: false",
                "ssh_genkeytypes: ~",
                "syslog_fix_perms: ~",
                "disable_vmware_customization: false",
            ]
            .map(String::from),
        );
    }
    v.extend(
        [
            "preserve_hostname: false",
            "cloud_init_modules:",
            " - migrator",
            " - bootcmd",
            " - write-files",
            " - growpart",
            " - resizefs",
            " - disk_setup",
            " - mounts",
            " - set_hostname",
            " - update_hostname",
            " - update_etc_hosts",
            " - rsyslog",
            " - users-groups",
            " - ssh",
            "cloud_config_modules:",
            " - locale",
            " - set-passwords",
            " - yum-add-repo",
            " - package-update-upgrade-install",
            " - timezone",
            " - disable-ec2-metadata",
            " - runcmd",
            "cloud_final_modules:",
            " - scripts-per-once",
            " - scripts-per-boot",
            " - scripts-per-instance",
            " - scripts-user",
            " - ssh-authkey-fingerprints",
            " - keys-to-console",
            " - phone-home",
            " - final-message",
            " - power-state-change",
            "system_info:",
        ]
        .map(String::from),
    );
    v.push(format!(
        "  distro: {}",
        if amazon { "amazon" } else { "rhel" }
    ));
    v.extend([
        "  default_user:".to_string(),
        format!("    name: {user}"),
        "    lock_passwd: true".into(),
        format!("    gecos: {gecos}"),
        "    groups: [wheel, adm, systemd-journal]".into(),
        "    sudo: [\"ALL=(ALL) NOPASSWD:ALL\"]".into(),
        "    shell: /bin/bash".into(),
        "  paths:".into(),
        "    cloud_dir: /var/lib/cloud".into(),
        "    templates_dir: /etc/cloud/templates".into(),
        "  ssh_svcname: sshd".into(),
    ]);
    text(&as_refs(&v))
}

/// The accounts of a Red Hat-like system with `user` (uid 1000).
fn rh_accounts(user: &str, gecos: &str) -> Vec<Node> {
    let mut acc = Accounts::new();
    for (name, id, gid, g, home, shell) in [
        ("root", 0, 0, "root", "/root", "/bin/bash"),
        ("bin", 1, 1, "bin", "/bin", "/sbin/nologin"),
        ("daemon", 2, 2, "daemon", "/sbin", "/sbin/nologin"),
        ("adm", 3, 4, "adm", "/var/adm", "/sbin/nologin"),
        ("lp", 4, 7, "lp", "/var/spool/lpd", "/sbin/nologin"),
        ("sync", 5, 0, "sync", "/sbin", "/bin/sync"),
        ("shutdown", 6, 0, "shutdown", "/sbin", "/sbin/shutdown"),
        ("halt", 7, 0, "halt", "/sbin", "/sbin/halt"),
        ("mail", 8, 12, "mail", "/var/spool/mail", "/sbin/nologin"),
        ("operator", 11, 0, "operator", "/root", "/sbin/nologin"),
        ("games", 12, 100, "games", "/usr/games", "/sbin/nologin"),
        ("ftp", 14, 50, "FTP User", "/var/ftp", "/sbin/nologin"),
        ("nobody", 99, 99, "Nobody", "/", "/sbin/nologin"),
        (
            "systemd-network",
            192,
            192,
            "systemd Network Management",
            "/",
            "/sbin/nologin",
        ),
        ("dbus", 81, 81, "System message bus", "/", "/sbin/nologin"),
        (
            "rpc",
            32,
            32,
            "Rpcbind Daemon",
            "/var/lib/rpcbind",
            "/sbin/nologin",
        ),
        (
            "libstoragemgmt",
            999,
            997,
            "daemon account for libstoragemgmt",
            "/var/run/lsm",
            "/sbin/nologin",
        ),
        (
            "sshd",
            74,
            74,
            "Privilege-separated SSH",
            "/var/empty/sshd",
            "/sbin/nologin",
        ),
        ("chrony", 998, 996, "", "/var/lib/chrony", "/sbin/nologin"),
        (
            "rpcuser",
            29,
            29,
            "RPC Service User",
            "/var/lib/nfs",
            "/sbin/nologin",
        ),
        (
            "nfsnobody",
            65534,
            65534,
            "Anonymous NFS User",
            "/var/lib/nfs",
            "/sbin/nologin",
        ),
        ("tcpdump", 72, 72, "", "/", "/sbin/nologin"),
    ] {
        acc.user(name, id, gid, g, home, shell);
    }
    acc.user(
        user,
        1000,
        1000,
        gecos,
        &format!("/home/{user}"),
        "/bin/bash",
    );
    for (name, id, members) in [
        ("root", 0, ""),
        ("bin", 1, ""),
        ("daemon", 2, ""),
        ("sys", 3, ""),
        ("adm", 4, user),
        ("tty", 5, ""),
        ("disk", 6, ""),
        ("lp", 7, ""),
        ("mem", 8, ""),
        ("kmem", 9, ""),
        ("wheel", 10, user),
        ("cdrom", 11, ""),
        ("mail", 12, ""),
        ("man", 15, ""),
        ("dialout", 18, ""),
        ("floppy", 19, ""),
        ("games", 20, ""),
        ("tape", 33, ""),
        ("video", 39, ""),
        ("ftp", 50, ""),
        ("lock", 54, ""),
        ("audio", 63, ""),
        ("nobody", 99, ""),
        ("users", 100, ""),
        ("utmp", 22, ""),
        ("utempter", 35, ""),
        ("input", 999, ""),
        ("systemd-journal", 190, user),
        ("systemd-network", 192, ""),
        ("dbus", 81, ""),
        ("rpc", 32, ""),
        ("sshd", 74, ""),
        ("tcpdump", 72, ""),
        ("ec2-user", 1000, ""),
    ] {
        let name = if name == "ec2-user" { user } else { name };
        acc.group(name, id, members);
    }
    // Red Hat's shadow files are root-only (0000).
    acc.files(0)
        .into_iter()
        .map(|n| match n {
            Node::File(p, 0o640, u, g, t) => Node::File(p, 0o000, u, g, t),
            other => other,
        })
        .collect()
}

/// A Red Hat-like root (Amazon Linux 2, Amazon Linux 2023, CentOS 7):
/// merged `/usr`, the default user's home 0700.
#[allow(clippy::too_many_arguments)]
fn rh_root(
    user: &'static str,
    gecos: &str,
    os_release: String,
    fstab: String,
    hostname: &str,
    cloud_cfg: String,
    kernel: &'static [(&'static str, u64)],
    shares: &'static [(&'static str, u64)],
    arch: &str,
) -> Vec<Node> {
    let mut n = common_dirs();
    n.extend(merged_usr(false));
    for (p, m) in [
        ("/boot/grub2", 0o700),
        ("/etc/sudoers.d", 0o750),
        ("/etc/sysconfig", 0o755),
        ("/etc/yum.repos.d", 0o755),
        ("/usr/lib/modules", 0o755),
        ("/usr/lib/python3", 0o755),
        ("/usr/share/doc", 0o755),
        ("/var/cache/yum", 0o755),
        ("/var/lib/rpm", 0o755),
        ("/var/log", 0o755),
        ("/var/log/journal", 0o2755),
        ("/var/spool/mail", 0o775),
        ("/var/empty", 0o755),
        ("/var/empty/sshd", 0o711),
    ] {
        n.push(Node::Dir(p, m, 0, 0));
    }
    n.push(Node::Link("/var/mail", "spool/mail"));
    n.push(Node::Link("/var/run", "../run"));
    n.push(Node::Link("/var/lock", "../run/lock"));
    n.push(Node::File(
        "/etc/os-release".into(),
        0o644,
        0,
        0,
        os_release,
    ));
    n.push(Node::File("/etc/fstab".into(), 0o644, 0, 0, fstab));
    n.push(Node::File(
        "/etc/hostname".into(),
        0o644,
        0,
        0,
        text(&[hostname]),
    ));
    n.push(Node::File(
        "/etc/hosts".into(),
        0o644,
        0,
        0,
        text(&[
            "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4",
            "::1         localhost6 localhost6.localdomain6",
        ]),
    ));
    n.push(Node::File(
        "/etc/cloud/cloud.cfg".into(),
        0o644,
        0,
        0,
        cloud_cfg,
    ));
    n.push(Node::File(
        "/etc/sudoers.d/90-cloud-init-users".into(),
        0o440,
        0,
        0,
        text(&[
            "# Created by cloud-init on first boot",
            "",
            &format!("# User rules for {user}"),
            &format!("{user} ALL=(ALL) NOPASSWD:ALL"),
        ]),
    ));
    n.push(Node::Link("/etc/localtime", "../usr/share/zoneinfo/UTC"));
    n.push(Node::Dir("/usr/share/zoneinfo", 0o755, 0, 0));
    n.push(bulk("/usr/share/zoneinfo/UTC", 118));
    n.extend(rh_accounts(user, gecos));
    let home: &'static str = match user {
        "ec2-user" => "/home/ec2-user",
        _ => "/home/centos",
    };
    n.push(Node::Dir(home, 0o700, 1000, 1000));
    n.extend(home_files(home, 1000, true));
    n.push(Node::Dir(
        match user {
            "ec2-user" => "/home/ec2-user/.ssh",
            _ => "/home/centos/.ssh",
        },
        0o700,
        1000,
        1000,
    ));
    n.extend(home_files("/root", 0, true));
    n.extend([
        Node::Sparse("/var/log/lastlog", 0o644, 0, 0, 292_292),
        Node::Sparse("/var/log/wtmp", 0o664, 0, 22, 0),
        Node::Sparse("/var/log/btmp", 0o600, 0, 22, 0),
        Node::Sparse("/var/log/messages", 0o600, 0, 0, 0),
        Node::Sparse("/var/log/secure", 0o600, 0, 0, 0),
        Node::Sparse("/var/log/cloud-init.log", 0o644, 0, 0, 0),
        Node::Sparse("/var/log/cloud-init-output.log", 0o644, 0, 0, 0),
    ]);
    for (p, size) in kernel.iter().chain(shares) {
        n.push(bulk(p.replace("x86_64", arch), *size));
    }
    n
}

/// The machine name in kernel and library paths.
fn arch(image: &CatalogImage) -> &'static str {
    if image.architecture == "arm64" {
        "aarch64"
    } else {
        "x86_64"
    }
}

/// Red Hat-like bulk shares (Amazon Linux, CentOS): each directory's
/// hidden `.ebsim-bulk` file.
const RH_BULK: &[(&str, u64)] = &[
    ("/usr/lib64/.ebsim-bulk", 420 << 20),
    ("/usr/lib/python3/.ebsim-bulk", 120 << 20),
    ("/usr/bin/.ebsim-bulk", 150 << 20),
    ("/usr/sbin/.ebsim-bulk", 40 << 20),
    ("/usr/libexec/.ebsim-bulk", 40 << 20),
    ("/usr/share/.ebsim-bulk", 330 << 20),
    ("/var/cache/yum/.ebsim-bulk", 60 << 20),
    ("/var/lib/rpm/.ebsim-bulk", 80 << 20),
];

/// Amazon Linux 2 (2.0.20240306.2, kernel 5.10): XFS labelled `/`,
/// fstab by UUID. Used space: `df -h` on instances of the kernel-5.10 AL2
/// AMIs shows `/dev/xvda1 8.0G 1.6G 6.5G 20% /` (t2; `nvme0n1p1` on t3);
/// the `1.2G 15%` of older (kernel 4.14) builds is not this AMI's.
pub fn amazon_linux_2(image: &CatalogImage, root_uuid: &str) -> RootSpec {
    const KERNEL: &[(&str, u64)] = &[
        ("/boot/vmlinuz-5.10.210-201.852.amzn2.x86_64", 10_489_216),
        (
            "/boot/initramfs-5.10.210-201.852.amzn2.x86_64.img",
            12_318_417,
        ),
        ("/boot/System.map-5.10.210-201.852.amzn2.x86_64", 4_511_612),
        ("/boot/config-5.10.210-201.852.amzn2.x86_64", 213_507),
        ("/usr/lib/modules/.ebsim-bulk", 95 << 20),
    ];
    let nodes = rh_root(
        "ec2-user",
        "EC2 Default User",
        text(&[
            "NAME=\"Amazon Linux\"",
            "VERSION=\"2\"",
            "ID=\"amzn\"",
            "ID_LIKE=\"centos rhel fedora\"",
            "VERSION_ID=\"2\"",
            "PRETTY_NAME=\"Amazon Linux 2\"",
            "ANSI_COLOR=\"0;33\"",
            "CPE_NAME=\"cpe:2.3:o:amazon:amazon_linux:2\"",
            "HOME_URL=\"https://amazonlinux.com/\"",
            "SUPPORT_END=\"2025-06-30\"",
        ]),
        text(&[&format!(
            "UUID={root_uuid}     /           xfs    defaults,noatime  1   1"
        )]),
        "localhost.localdomain",
        rh_cloud_cfg("amazon", "ec2-user", "EC2 Default User", "19.3"),
        KERNEL,
        RH_BULK,
        arch(image),
    );
    RootSpec {
        nodes,
        balance: "/usr/lib/.ebsim-bulk",
        used_bytes: 1_550 << 20,
    }
}

/// Amazon Linux 2023 (2023.4.20240401.1, kernel 6.1): XFS labelled `/`,
/// fstab by UUID with the EFI partition. Used space: `df -h` shows
/// `/dev/xvda1 8.0G 1.6G 6.4G 20% /` on t2 (`1.5G 6.5G 19%` on t3).
pub fn amazon_linux_2023(image: &CatalogImage, root_uuid: &str, efi_id: &str) -> RootSpec {
    const KERNEL: &[(&str, u64)] = &[
        ("/boot/vmlinuz-6.1.82-99.168.amzn2023.x86_64", 12_341_568),
        (
            "/boot/initramfs-6.1.82-99.168.amzn2023.x86_64.img",
            13_771_204,
        ),
        ("/boot/System.map-6.1.82-99.168.amzn2023.x86_64", 5_213_880),
        ("/boot/config-6.1.82-99.168.amzn2023.x86_64", 210_551),
        ("/usr/lib/modules/.ebsim-bulk", 110 << 20),
    ];
    let nodes = rh_root(
        "ec2-user",
        "EC2 Default User",
        text(&[
            "NAME=\"Amazon Linux\"",
            "VERSION=\"2023\"",
            "ID=\"amzn\"",
            "ID_LIKE=\"fedora\"",
            "VERSION_ID=\"2023\"",
            "PLATFORM_ID=\"platform:al2023\"",
            "PRETTY_NAME=\"Amazon Linux 2023.4.20240401\"",
            "ANSI_COLOR=\"0;33\"",
            "CPE_NAME=\"cpe:2.3:o:amazon:amazon_linux:2023\"",
            "HOME_URL=\"https://aws.amazon.com/linux/amazon-linux-2023/\"",
            "DOCUMENTATION_URL=\"https://docs.aws.amazon.com/linux/\"",
            "SUPPORT_URL=\"https://aws.amazon.com/premiumsupport/\"",
            "BUG_REPORT_URL=\"https://github.com/amazonlinux/amazon-linux-2023\"",
            "VENDOR_NAME=\"AWS\"",
            "VENDOR_URL=\"https://aws.amazon.com/\"",
            "SUPPORT_END=\"2028-03-15\"",
        ]),
        text(&[
            &format!("UUID={root_uuid}     /           xfs    defaults,noatime  1   1"),
            &format!(
                "UUID={efi_id}        /boot/efi       vfat    defaults,noatime,uid=0,gid=0,umask=0077,shortname=winnt,x-systemd.automount 0 2"
            ),
        ]),
        "localhost.localdomain",
        rh_cloud_cfg("amazon", "ec2-user", "EC2 Default User", "22.2.2"),
        KERNEL,
        RH_BULK,
        arch(image),
    );
    let mut nodes = nodes;
    nodes.insert(
        nodes
            .iter()
            .position(|x| matches!(x, Node::Dir("/boot/grub2", ..)))
            .unwrap_or(0),
        Node::Dir("/boot/efi", 0o700, 0, 0),
    );
    // 1600 MiB: on this layout (7.93 GiB of XFS after the EFI and BIOS
    // boot partitions) the used space that prints `1.6G 6.4G 20%` lies
    // between 1562 and 1638 MiB.
    RootSpec {
        nodes,
        balance: "/usr/lib/.ebsim-bulk",
        used_bytes: 1_600 << 20,
    }
}

/// CentOS 7 (2111, 10 GiB root): XFS without a label, fstab by UUID as
/// anaconda writes it. Used space: `df -h` on such instances shows
/// `/dev/xvda1 10G 1.4G..1.6G 8.5G..8.7G 14..16% /`: 1450 MiB, which on
/// this layout (9.94 GiB of XFS) prints the middle line, `1.5G 8.6G 15%`.
pub fn centos_7(image: &CatalogImage, root_uuid: &str) -> RootSpec {
    const KERNEL: &[(&str, u64)] = &[
        ("/boot/vmlinuz-3.10.0-1160.76.1.el7.x86_64", 7_051_880),
        (
            "/boot/initramfs-3.10.0-1160.76.1.el7.x86_64.img",
            12_067_345,
        ),
        ("/boot/System.map-3.10.0-1160.76.1.el7.x86_64", 3_623_956),
        ("/boot/config-3.10.0-1160.76.1.el7.x86_64", 153_619),
        ("/usr/lib/modules/.ebsim-bulk", 80 << 20),
    ];
    let nodes = rh_root(
        "centos",
        "Cloud User",
        text(&[
            "NAME=\"CentOS Linux\"",
            "VERSION=\"7 (Core)\"",
            "ID=\"centos\"",
            "ID_LIKE=\"rhel fedora\"",
            "VERSION_ID=\"7\"",
            "PRETTY_NAME=\"CentOS Linux 7 (Core)\"",
            "ANSI_COLOR=\"0;31\"",
            "CPE_NAME=\"cpe:/o:centos:centos:7\"",
            "HOME_URL=\"https://www.centos.org/\"",
            "BUG_REPORT_URL=\"https://bugs.centos.org/\"",
            "",
            "CENTOS_MANTISBT_PROJECT=\"CentOS-7\"",
            "CENTOS_MANTISBT_PROJECT_VERSION=\"7\"",
            "REDHAT_SUPPORT_PRODUCT=\"centos\"",
            "REDHAT_SUPPORT_PRODUCT_VERSION=\"7\"",
            "",
        ]),
        text(&[
            "",
            "# /etc/fstab (written by the installer)",
            "#",
            &format!("UUID={root_uuid} /                       xfs     defaults        0 0"),
        ]),
        "localhost.localdomain",
        rh_cloud_cfg("centos", "centos", "Cloud User", "19.4"),
        KERNEL,
        RH_BULK,
        arch(image),
    );
    RootSpec {
        nodes,
        balance: "/usr/lib/.ebsim-bulk",
        used_bytes: 1_450 << 20,
    }
}

/// The root contents of a catalog image, if ebsim has them.
pub fn spec_for(image: &CatalogImage) -> Option<RootSpec> {
    use super::catalog::{fat_volume_id, fs_uuid, uuid_text};
    let root = image.layout.root_partition()?.number;
    let uuid = uuid_text(&fs_uuid(image, root));
    let efi = image
        .layout
        .partitions
        .iter()
        .find(|p| p.fs.and_then(|f| f.mount_point) == Some("/boot/efi"))
        .map(|p| fat_volume_id(image, p.number))
        .unwrap_or_default();
    match image.key {
        k if k.starts_with("ubuntu") => Some(ubuntu(image)),
        k if k.starts_with("amzn2") => Some(amazon_linux_2(image, &uuid)),
        k if k.starts_with("al2023") => Some(amazon_linux_2023(image, &uuid, &efi)),
        "centos7" => Some(centos_7(image, &uuid)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_ordered_and_unique() {
        let mut all: Vec<(&str, RootSpec)> = Vec::new();
        for c in super::super::catalog::CATALOG {
            all.push((c.key, spec_for(c).unwrap()));
        }
        for (key, s) in &all {
            let c = super::super::catalog::by_key(key).unwrap();
            let mut seen = std::collections::HashSet::new();
            seen.insert("/".to_string());
            for n in &s.nodes {
                let p = match n {
                    Node::Dir(p, ..) | Node::Link(p, _) | Node::Sparse(p, ..) => p.to_string(),
                    Node::File(p, ..) | Node::Bulk(p, _) => p.clone(),
                };
                let parent = p.rsplit_once('/').map(|(d, _)| d).unwrap();
                let parent = if parent.is_empty() { "/" } else { parent };
                assert!(seen.contains(parent), "{}: {p} before its parent", c.key);
                assert!(seen.insert(p.clone()), "{}: {p} twice", c.key);
            }
        }
    }
}
