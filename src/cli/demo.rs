//! `ebsim demo`: the README's first command. Walks the EBS volume-expansion
//! runbook on an embedded default — an Ubuntu 22.04 instance on a Xen type
//! (t2.micro) with an 8 GiB ext4 root, plus a 200 GiB XFS data volume at
//! /var/lib — typing each command as on EC2 and printing what it prints.
//! `--nitro` runs the same runbook on t3.micro (nvme0n1, nvme1n1).
//!
//! The demo uses its own state directory (a temporary one, removed at the
//! end unless `--keep`; `--home DIR` uses and keeps DIR) and the manual
//! clock, so every run prints the same transcript apart from the generated
//! ids. `--transcript` prints only the commands and their outputs (the
//! runbook test compares it).

use super::commands::Demo;
use super::output::{err, out};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One step of the runbook.
enum Step {
    /// Narration.
    Say(&'static str),
    /// A command typed at the instance's shell; its trimmed stdout may be
    /// kept in a variable for later steps (`${NAME}`).
    Run(&'static str, Option<&'static str>),
    /// A command whose output is not shown (the virtual clock's report
    /// carries wall-clock times).
    Quiet(&'static str),
}

use Step::{Quiet, Run, Say};

const UBUNTU: &str = "ami-080e1f13689e07408";

const RUNBOOK: &[Step] = &[
    Say(
        "Launch an instance from the Ubuntu 22.04 image: an 8 GiB root volume with ext4 on partition 1.",
    ),
    Run(
        "aws ec2 run-instances --image-id ${AMI} --instance-type ${TYPE} --query Instances[0].InstanceId --output text",
        Some("INSTANCE"),
    ),
    Run(
        "aws ec2 wait instance-running --instance-ids ${INSTANCE}",
        None,
    ),
    Run(
        "aws ec2 describe-instances --instance-ids ${INSTANCE} --query Reservations[0].Instances[0].Placement.AvailabilityZone --output text",
        Some("AZ"),
    ),
    Run(
        "aws ec2 describe-volumes --filters Name=attachment.instance-id,Values=${INSTANCE} --query Volumes[0].VolumeId --output text",
        Some("ROOT"),
    ),
    Run("lsblk", None),
    Run("df -hT", None),
    Say("Add a 200 GiB data volume, make XFS on it and mount it at /var/lib."),
    Run(
        "aws ec2 create-volume --size 200 --volume-type gp3 --availability-zone ${AZ} --query VolumeId --output text",
        Some("DATA"),
    ),
    Run("aws ec2 wait volume-available --volume-ids ${DATA}", None),
    Run(
        "aws ec2 attach-volume --volume-id ${DATA} --instance-id ${INSTANCE} --device /dev/sdf --query State --output text",
        None,
    ),
    Run("aws ec2 wait volume-in-use --volume-ids ${DATA}", None),
    Say("(the attachment completes a few seconds later: the guest sees the new disk)"),
    Quiet("ebsim clock advance 5s"),
    Run("sudo mkfs -t xfs -q ${DATADEV}", None),
    Run("sudo mount ${DATADEV} /var/lib", None),
    Run("lsblk", None),
    Say("Snapshot the root volume before changing it."),
    Run(
        "aws ec2 create-snapshot --volume-id ${ROOT} --description before-resize --query SnapshotId --output text",
        Some("SNAP"),
    ),
    Run(
        "aws ec2 wait snapshot-completed --snapshot-ids ${SNAP}",
        None,
    ),
    Say("Modify the root volume to 16 GiB. While it is `modifying` the instance still sees 8 GiB."),
    Run(
        "aws ec2 modify-volume --volume-id ${ROOT} --size 16 --query VolumeModification.ModificationState --output text",
        None,
    ),
    Run("lsblk ${ROOTDEV}", None),
    Say("(the virtual clock moves on: the modification enters `optimizing`)"),
    Quiet("ebsim clock advance 30s"),
    Run(
        "aws ec2 describe-volumes-modifications --volume-ids ${ROOT} --query VolumesModifications[0].ModificationState --output text",
        None,
    ),
    Say("The disk is 16 GiB now; the partition and the filesystem are not."),
    Run("lsblk", None),
    Run("df -h", None),
    Run("df -hT /", None),
    Say("Grow the partition, then the filesystem (online: it is mounted)."),
    Run("sudo growpart ${ROOTDEV} 1", None),
    Run("lsblk", None),
    Run("sudo resize2fs ${ROOTPART}", None),
    Run("df -h", None),
    Say("Grow the data volume to 400 GiB, then its XFS filesystem."),
    Run(
        "aws ec2 modify-volume --volume-id ${DATA} --size 400 --query VolumeModification.ModificationState --output text",
        None,
    ),
    Quiet("ebsim clock advance 30s"),
    Run("sudo xfs_growfs -d /var/lib", None),
    Run("df -h", None),
    Say("Keep the root volume when the instance is terminated."),
    Run(
        "aws ec2 modify-instance-attribute --instance-id ${INSTANCE} --block-device-mappings file://example.json",
        None,
    ),
    Run(
        "aws ec2 terminate-instances --instance-ids ${INSTANCE} --query TerminatingInstances[0].CurrentState.Name --output text",
        None,
    ),
    Run(
        "aws ec2 wait instance-terminated --instance-ids ${INSTANCE}",
        None,
    ),
    Run(
        "aws ec2 describe-volumes --volume-ids ${ROOT} ${DATA} --query Volumes[].[VolumeId,State,Size] --output text",
        None,
    ),
];

/// The seed's block-device-mapping file.
const EXAMPLE_JSON: &str =
    r#"[{"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": false}}]"#;

fn fail(msg: String) -> i32 {
    err(&format!("ebsim demo: {msg}\n"));
    1
}

/// Splits a command line on blanks (the runbook needs no quoting).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

fn substitute(s: &str, vars: &[(String, String)]) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

struct Runner {
    home: PathBuf,
    bin: PathBuf,
    exe: PathBuf,
    transcript_only: bool,
}

impl Runner {
    fn run(&self, line: &str, instance: Option<&str>) -> Result<(String, String, i32), String> {
        let w = words(line);
        let Some((prog, args)) = w.split_first() else {
            return Err("empty command".into());
        };
        let mut cmd = if prog == "ebsim" {
            Command::new(&self.exe)
        } else {
            Command::new(self.bin.join(prog))
        };
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        if let Some(id) = instance {
            cmd.env(super::env::INSTANCE_ENV, id);
        }
        // One pipe for both streams, so the transcript shows them in the
        // order a terminal would (resize2fs's banner before its report).
        let (r, w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
        let mut reader = std::fs::File::from(r);
        let writer = std::fs::File::from(w);
        let writer2 = writer.try_clone().map_err(|e| e.to_string())?;
        let mut child = cmd
            .args(args)
            .current_dir(&self.home)
            .env("EBSIM_HOME", &self.home)
            .env("EBSIM_CLOCK", "manual")
            .env("PATH", path)
            .stdout(writer)
            .stderr(writer2)
            .spawn()
            .map_err(|e| format!("{prog}: {e}"))?;
        drop(cmd);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut reader, &mut text).map_err(|e| e.to_string())?;
        let status = child.wait().map_err(|e| e.to_string())?;
        Ok((text, String::new(), status.code().unwrap_or(-1)))
    }
}

/// `ebsim demo` (or a link named `demo`).
pub fn run(args: Vec<OsString>) -> i32 {
    match super::commands::parse::<Demo>(&args) {
        Ok(d) => exec(&d),
        Err(code) => code,
    }
}

/// Runs the demo.
pub fn exec(d: &Demo) -> i32 {
    let transcript_only = d.transcript;
    let nitro = d.nitro;
    let keep = d.keep || d.home.is_some();
    let home = d
        .home
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ebsim-demo-{}", std::process::id())));
    if let Err(e) = std::fs::create_dir_all(&home) {
        return fail(format!("{}: {e}", home.display()));
    }
    let code = match demo(&home, nitro, transcript_only) {
        Ok(()) => 0,
        Err(e) => fail(e),
    };
    if keep {
        if !transcript_only {
            out(&format!(
                "\n(the state and volumes are kept in {})\n",
                home.display()
            ));
        }
    } else {
        let _ = std::fs::remove_dir_all(&home);
    }
    code
}

fn demo(home: &Path, nitro: bool, transcript_only: bool) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = super::shell::links(home, &exe)?;
    std::fs::write(home.join("example.json"), EXAMPLE_JSON).map_err(|e| e.to_string())?;
    let d = Runner {
        home: home.to_path_buf(),
        bin,
        exe,
        transcript_only,
    };
    let (ty, rootdev, rootpart, datadev) = if nitro {
        ("t3.micro", "/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/nvme1n1")
    } else {
        ("t2.micro", "/dev/xvda", "/dev/xvda1", "/dev/xvdf")
    };
    let mut vars: Vec<(String, String)> = vec![
        ("AMI".into(), UBUNTU.into()),
        ("TYPE".into(), ty.into()),
        ("ROOTDEV".into(), rootdev.into()),
        ("ROOTPART".into(), rootpart.into()),
        ("DATADEV".into(), datadev.into()),
    ];
    if !d.transcript_only {
        out("ebsim demo: the EBS volume-expansion runbook, end to end, on sparse image files.\n");
    }
    for step in RUNBOOK {
        match step {
            Say(text) => {
                if !d.transcript_only {
                    out(&format!("\n# {text}\n"));
                }
            }
            Quiet(line) => {
                let line = substitute(line, &vars);
                out(&format!("$ {line}\n"));
                let (text, _, code) = d.run(&line, None)?;
                if code != 0 {
                    return Err(format!("`{line}` exited with {code}: {text}"));
                }
            }
            Run(line, capture) => {
                let line = substitute(line, &vars);
                out(&format!("$ {line}\n"));
                let instance = vars
                    .iter()
                    .find(|(k, _)| k == "INSTANCE")
                    .map(|(_, v)| v.clone());
                let (stdout, stderr, code) = d.run(&line, instance.as_deref())?;
                out(&stdout);
                if !stderr.is_empty() {
                    out(&stderr);
                }
                if code != 0 {
                    return Err(format!("`{line}` exited with {code}"));
                }
                if let Some(name) = capture {
                    // Later commands run inside the instance (EBSIM_INSTANCE).
                    vars.push(((*name).to_string(), stdout.trim().to_string()));
                }
            }
        }
    }
    Ok(())
}
