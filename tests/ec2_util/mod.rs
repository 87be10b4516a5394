//! Helpers of the ec2 integration tests: a private EBSIM_HOME per test with
//! the clock frozen, and runners for `ebsim ec2 ...`.
#![allow(dead_code)]

use crate::common::{ebsim, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One emulated cloud (its own state directory), manual clock.
pub struct Cloud {
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Cloud {
    pub fn new() -> Cloud {
        Cloud::in_dir(tempfile::tempdir().expect("tempdir"))
    }

    /// A cloud whose home is on tmpfs (for big sparse volumes and fast I/O).
    pub fn on_tmpfs() -> Cloud {
        Cloud::in_dir(crate::common::big_tempdir())
    }

    fn in_dir(home: tempfile::TempDir) -> Cloud {
        Cloud {
            home,
            env: vec![("EBSIM_CLOCK".into(), "manual".into())],
        }
    }

    pub fn with_env(mut self, k: &str, v: &str) -> Cloud {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    pub fn cmd(&self, applet: &str) -> Command {
        let mut c = ebsim(applet);
        c.env("EBSIM_HOME", self.home.path());
        c.env_remove("AWS_REGION");
        c.env_remove("AWS_DEFAULT_REGION");
        c.env_remove("EBSIM_MODIFY_RATE");
        c.env_remove("EBSIM_STATE_FAULT");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `ebsim ec2 ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd("ec2").args(args).output().expect("run ebsim ec2")
    }

    /// Runs and parses the JSON on stdout; panics unless it succeeded.
    pub fn ok(&self, args: &[&str]) -> serde_json::Value {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "ebsim ec2 {args:?} failed ({:?}):\n{}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        let s = stdout(&o);
        if s.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    /// Runs and returns stdout as text; panics unless it succeeded.
    pub fn text(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "ebsim ec2 {args:?} failed:\n{}",
            stderr(&o)
        );
        stdout(&o)
    }

    /// Asserts the command fails with exactly AWS's error line, exit 254.
    pub fn api_err(&self, args: &[&str], op: &str, code: &str, message: &str) {
        let o = self.run(args);
        let want =
            format!("\nAn error occurred ({code}) when calling the {op} operation: {message}\n");
        assert_eq!(stderr(&o), want, "stderr of {args:?}");
        assert_eq!(o.status.code(), Some(254), "exit of {args:?}");
        assert_eq!(stdout(&o), "", "stdout of {args:?}");
    }

    /// `ebsim clock advance D`.
    pub fn advance(&self, d: &str) {
        let o = self
            .cmd("clock")
            .args(["advance", d])
            .output()
            .expect("run clock");
        assert!(o.status.success(), "clock advance: {}", stderr(&o));
    }

    /// A new volume, made available.
    pub fn volume(&self, extra: &[&str]) -> String {
        let mut a = vec!["create-volume", "--availability-zone", "us-east-1a"];
        a.extend_from_slice(extra);
        let v = self.ok(&a);
        let id = v["VolumeId"].as_str().expect("VolumeId").to_string();
        self.ok(&["wait", "volume-available", "--volume-ids", &id]);
        id
    }

    /// A running instance from an AMI.
    pub fn instance(&self, image: &str, itype: &str) -> String {
        let r = self.ok(&[
            "run-instances",
            "--image-id",
            image,
            "--instance-type",
            itype,
        ]);
        let id = r["Instances"][0]["InstanceId"]
            .as_str()
            .expect("InstanceId")
            .to_string();
        self.ok(&["wait", "instance-running", "--instance-ids", &id]);
        id
    }

    /// The image file of a volume.
    /// `attach-volume` of `vol` to `instance` as `device`, then 30 s for
    /// the attachment to settle.
    pub fn attach_and_settle(&self, vol: &str, instance: &str, device: &str) {
        self.ok(&[
            "attach-volume",
            "--volume-id",
            vol,
            "--instance-id",
            instance,
            "--device",
            device,
        ]);
        self.advance("30s");
    }

    pub fn image_of(&self, vol: &str) -> PathBuf {
        self.home.path().join("volumes").join(format!("{vol}.img"))
    }

    /// The volume's description.
    pub fn describe_volume(&self, vol: &str) -> serde_json::Value {
        self.ok(&["describe-volumes", "--volume-ids", vol])["Volumes"][0].clone()
    }
}

/// Replaces ids and timestamps by placeholders, for golden comparisons.
pub fn normalise(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let is_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    'outer: while i < b.len() {
        for p in ["vol-", "snap-", "ami-", "i-", "r-", "eni-attach-", "eni-"] {
            let pb = p.as_bytes();
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if boundary && b[i..].starts_with(pb) {
                let h = i + pb.len();
                if h + 17 <= b.len() && b[h..h + 17].iter().all(|c| is_hex(*c)) {
                    out.push_str(p);
                    out.push_str("ID");
                    i = h + 17;
                    continue 'outer;
                }
            }
        }
        // 2024-01-02T03:04:05 then .fff(fff) then +00:00 or Z
        if i + 19 <= b.len()
            && b[i + 4] == b'-'
            && b[i + 10] == b'T'
            && b[i..i + 4].iter().all(u8::is_ascii_digit)
        {
            let mut j = i + 19;
            if j < b.len() && b[j] == b'.' {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if b[j..].starts_with(b"+00:00") {
                j += 6;
            } else if b[j..].starts_with(b"Z") {
                j += 1;
            }
            out.push_str("TIME");
            i = j;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Whether two images hold the same bytes, reading only where either holds
/// data (holes read as zeros).
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    use ebsim::blockdev::BlockDevice;
    use ebsim::blockdev::image::{Access, ImageFile};
    let (Ok(fa), Ok(fb)) = (
        ImageFile::open(a, Access::ReadOnly),
        ImageFile::open(b, Access::ReadOnly),
    ) else {
        return false;
    };
    if fa.size() != fb.size() {
        return false;
    }
    let mut ranges = fa.data_ranges(0..fa.size()).unwrap_or_default();
    ranges.extend(fb.data_ranges(0..fb.size()).unwrap_or_default());
    for r in ranges {
        let mut pos = r.start;
        while pos < r.end {
            let n = (r.end - pos).min(8 << 20) as usize;
            match (fa.read_vec(pos, n), fb.read_vec(pos, n)) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => return false,
            }
            pos += n as u64;
        }
    }
    true
}
