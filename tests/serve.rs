//! `ebsim serve` driven by the real AWS CLI (v1) and boto3, from the
//! virtual environment scripts/test.sh makes (`EBSIM_PYENV`, else
//! `target/pyenv`); the Python side is in tests/serve/. Also raw HTTP:
//! garbage, truncated and oversized requests, and a stop by SIGTERM with a
//! request in flight.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The virtual environment holding `aws` and boto3, or None (a skip;
/// under CI a failure).
fn pyenv() -> Option<PathBuf> {
    let dir = std::env::var_os("EBSIM_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv"));
    let ok = dir.join("bin/aws").is_file() && dir.join("bin/python").is_file();
    if ok {
        return Some(dir);
    }
    assert!(
        !common::in_ci(),
        "CI is set but {} has no aws/boto3 (scripts/test.sh installs them)",
        dir.display()
    );
    eprintln!(
        "skipping: no AWS CLI/boto3 virtual environment at {}",
        dir.display()
    );
    None
}

/// A running `ebsim serve` on a free port with its own EBSIM_HOME.
struct Serve {
    child: Child,
    url: String,
    addr: String,
    home: tempfile::TempDir,
    clock: &'static str,
    /// The real AWS CLI, kept running (tests/serve/aws_worker.py).
    worker: std::sync::Mutex<Option<AwsWorker>>,
}

/// The real AWS CLI v1 in one long-lived Python process: each call runs
/// `awscli.clidriver.main` as the `aws` script does, without paying the
/// interpreter's start and botocore's imports again.
struct AwsWorker {
    child: Child,
    to: std::process::ChildStdin,
    from: BufReader<std::process::ChildStdout>,
}

impl AwsWorker {
    fn start(py: &Path) -> AwsWorker {
        let mut child = Command::new(py.join("bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/aws_worker.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/serve/aws_worker.py");
        let to = child.stdin.take().unwrap();
        let from = BufReader::new(child.stdout.take().unwrap());
        AwsWorker { child, to, from }
    }

    /// `aws ARGS` with the environment changes `env` (None removes).
    fn call(&mut self, args: &[String], env: &[(String, Option<String>)]) -> Output {
        use std::os::unix::process::ExitStatusExt;
        let env: serde_json::Map<String, serde_json::Value> = env
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.clone().map_or(serde_json::Value::Null, Into::into),
                )
            })
            .collect();
        let req = serde_json::json!({ "args": args, "env": env });
        writeln!(self.to, "{req}").expect("write to the aws worker");
        self.to.flush().unwrap();
        let mut line = String::new();
        self.from.read_line(&mut line).expect("read the aws worker");
        assert!(!line.is_empty(), "the aws worker ended");
        let a: serde_json::Value = serde_json::from_str(&line).expect("the aws worker's answer");
        let bytes = |k: &str| -> Vec<u8> {
            a[k].as_str()
                .unwrap_or_default()
                .chars()
                .map(|c| u8::try_from(u32::from(c)).expect("Latin-1"))
                .collect()
        };
        let code = i32::try_from(a["code"].as_i64().unwrap_or(255)).unwrap_or(255);
        Output {
            status: std::process::ExitStatus::from_raw((code & 0xff) << 8),
            stdout: bytes("stdout"),
            stderr: bytes("stderr"),
        }
    }
}

impl Drop for AwsWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every real CLI call gets.
const REAL_ENV: &[(&str, Option<&str>)] = &[
    ("AWS_ACCESS_KEY_ID", Some("AKIDEBSIMTEST0000001")),
    ("AWS_SECRET_ACCESS_KEY", Some("secret")),
    ("AWS_DEFAULT_REGION", Some("us-east-1")),
    ("AWS_EC2_METADATA_DISABLED", Some("true")),
    ("AWS_CONFIG_FILE", Some("/nonexistent/config")),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        Some("/nonexistent/credentials"),
    ),
    ("AWS_PROFILE", None),
    ("AWS_ENDPOINT_URL", None),
    ("AWS_ENDPOINT_URL_EC2", None),
];

impl Serve {
    fn start(clock: &'static str) -> Serve {
        let home = tempfile::tempdir().unwrap();
        Serve::start_in(home, clock)
    }

    fn start_in(home: tempfile::TempDir, clock: &'static str) -> Serve {
        let mut child = Command::new(common::ebsim_bin())
            .args(["serve", "--port", "0"])
            .env("EBSIM_HOME", home.path())
            .env("EBSIM_CLOCK", clock)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        let addr = url.trim_start_matches("http://").to_string();
        Serve {
            child,
            url,
            addr,
            home,
            clock,
            worker: std::sync::Mutex::new(None),
        }
    }

    /// `ebsim ARGS` on the server's state and clock.
    fn ebsim(&self, args: &[&str]) -> Output {
        Command::new(common::ebsim_bin())
            .args(args)
            .env("EBSIM_HOME", self.home.path())
            .env("EBSIM_CLOCK", self.clock)
            .output()
            .unwrap()
    }

    /// The real `aws --endpoint-url URL ARGS`.
    fn aws(&self, py: &Path, args: &[&str]) -> Output {
        self.real_cli(py, args, &[])
    }

    /// The real `aws --endpoint-url URL ARGS` in [`REAL_ENV`] changed by
    /// `extra`, through this server's [`AwsWorker`].
    fn real_cli(&self, py: &Path, args: &[&str], extra: &[(&str, Option<&str>)]) -> Output {
        let mut words = vec!["--endpoint-url".to_string(), self.url.clone()];
        words.extend(args.iter().map(|a| a.to_string()));
        let env: Vec<(String, Option<String>)> = REAL_ENV
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        let mut w = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        w.get_or_insert_with(|| AwsWorker::start(py))
            .call(&words, &env)
    }

    /// The real `aws --endpoint-url URL ARGS` and `ebsim aws ARGS` with
    /// the same extra environment (`None` removes a variable).
    fn both(&self, py: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> (Output, Output) {
        let mut real_env = vec![("AWS_REGION", None), ("AWS_DEFAULT_OUTPUT", None)];
        real_env.extend_from_slice(env);
        let real = self.real_cli(py, args, &real_env);
        let mut ours = Command::new(common::ebsim_bin());
        ours.arg("aws")
            .args(args)
            .env("EBSIM_HOME", self.home.path())
            .env("EBSIM_CLOCK", self.clock)
            .env("AWS_ACCESS_KEY_ID", "AKIDEBSIMTEST0000001")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_OUTPUT");
        for (k, v) in env {
            match v {
                Some(v) => ours.env(k, v),
                None => ours.env_remove(k),
            };
        }
        (real, ours.output().unwrap())
    }

    /// A script of tests/serve/ run with the venv's Python.
    fn python(&self, py: &Path, script: &str, extra: &[&str]) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/serve")
            .join(script);
        Command::new(py.join("bin/python"))
            .arg(path)
            .arg(&self.url)
            .args(extra)
            .env("EBSIM_HOME", self.home.path())
            .env("EBSIM_CLOCK", self.clock)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
            .output()
            .unwrap()
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < until,
                "ebsim serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.sigterm();
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "rc {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn passes(o: &Output) {
    let t = text(o);
    println!("{t}");
    assert!(o.status.success(), "{t}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(" passed, 0 failed"),
        "{t}"
    );
}

#[test]
fn boto3_every_operation_error_dry_run_waiter_and_paging() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("60x");
    passes(&s.python(&py, "boto3_suite.py", &[]));
}

#[test]
fn boto3_instance_status_tags_attributes_copies_deregister_network_and_reset() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("60x");
    passes(&s.python(&py, "ops2.py", &[]));
}

/// Extra environment of a command (`None` removes the variable).
type Env<'a> = Vec<(&'a str, Option<&'a str>)>;

#[test]
fn the_real_cli_pages_and_reads_its_config_as_ebsim_aws_does() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("manual");
    for n in 0..25 {
        let size = format!("{}", 1 + n % 3);
        let o = s.ebsim(&[
            "aws",
            "ec2",
            "create-volume",
            "--size",
            &size,
            "--availability-zone",
            "us-east-1a",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        "[default]\noutput = text\n\n[profile eu]\nregion = eu-west-1\noutput = json\naws_access_key_id = AKIDEBSIMTEST0000001\naws_secret_access_key = secret\n",
    )
    .unwrap();
    let cfg_path = cfg.path().to_str().unwrap().to_string();
    // A resume token the CLI made, to start from.
    let (real, _) = s.both(
        &py,
        &[
            "ec2",
            "describe-volumes",
            "--page-size",
            "4",
            "--max-items",
            "6",
            "--query",
            "NextToken",
            "--output",
            "text",
        ],
        &[],
    );
    // Text output applies --query to each page (None) and then to the
    // resume token.
    let real_out = String::from_utf8_lossy(&real.stdout).to_string();
    assert_eq!(
        real_out.lines().take(2).collect::<Vec<_>>(),
        ["None", "None"]
    );
    let token = real_out.lines().last().unwrap_or("").to_string();
    assert!(!token.is_empty(), "{}", text(&real));
    let q = "Volumes[].[VolumeId,Size]";
    let cases: Vec<(Vec<&str>, Env)> = vec![
        (vec!["ec2", "describe-volumes", "--max-items", "3"], vec![]),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--max-items",
                "3",
                "--output",
                "text",
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--page-size",
                "4",
                "--max-items",
                "6",
                "--query",
                q,
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--page-size",
                "5",
                "--max-items",
                "10",
                "--output",
                "text",
                "--query",
                "Volumes[0].VolumeId",
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--starting-token",
                &token,
                "--max-items",
                "5",
                "--query",
                q,
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--starting-token",
                &token,
                "--page-size",
                "3",
                "--query",
                q,
                "--output",
                "text",
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--filters",
                "Name=size,Values=2",
                "--max-items",
                "2",
                "--query",
                q,
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--max-results",
                "5",
                "--query",
                "[Volumes[].VolumeId,NextToken]",
            ],
            vec![],
        ),
        (
            vec![
                "ec2",
                "describe-volumes",
                "--no-paginate",
                "--query",
                "length(Volumes)",
            ],
            vec![],
        ),
        (
            vec!["ec2", "describe-volumes", "--query", q],
            vec![("AWS_DEFAULT_OUTPUT", Some("text"))],
        ),
        (
            vec!["ec2", "describe-volumes", "--query", q],
            vec![("AWS_CONFIG_FILE", Some(&cfg_path))],
        ),
        (
            vec![
                "ec2",
                "describe-availability-zones",
                "--query",
                "AvailabilityZones[].ZoneName",
            ],
            vec![
                ("AWS_CONFIG_FILE", Some(&cfg_path)),
                ("AWS_PROFILE", Some("eu")),
                ("AWS_DEFAULT_REGION", None),
            ],
        ),
        (
            vec![
                "--profile",
                "eu",
                "ec2",
                "describe-availability-zones",
                "--query",
                "AvailabilityZones[0].RegionName",
                "--output",
                "text",
            ],
            vec![
                ("AWS_CONFIG_FILE", Some(&cfg_path)),
                ("AWS_DEFAULT_REGION", None),
            ],
        ),
        (vec!["sts", "get-caller-identity"], vec![]),
    ];
    let mut diffs = Vec::new();
    for (args, env) in &cases {
        let (real, ours) = s.both(&py, args, env);
        let (r, o) = (
            String::from_utf8_lossy(&real.stdout).to_string(),
            v1_times(&String::from_utf8_lossy(&ours.stdout)),
        );
        assert!(real.status.success(), "real aws {args:?}: {}", text(&real));
        if r != o || !ours.status.success() {
            diffs.push(format!(
                "{args:?} {env:?}\n--- real aws through ebsim serve\n{r}\n--- ebsim aws (rc {:?})\n{o}{}",
                ours.status.code(),
                String::from_utf8_lossy(&ours.stderr)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // Paging arguments with --no-paginate: both refuse.
    let (real, ours) = s.both(
        &py,
        &[
            "ec2",
            "describe-volumes",
            "--no-paginate",
            "--max-items",
            "2",
        ],
        &[],
    );
    assert_eq!(real.status.code(), Some(255), "{}", text(&real));
    assert_eq!(ours.status.code(), Some(255), "{}", text(&ours));
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&real.stderr)
    );
}

#[test]
fn boto3_seed_runbook_with_guest_commands() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("60x");
    let bin = common::ebsim_bin();
    passes(&s.python(&py, "runbook.py", &[bin.to_str().unwrap()]));
    // And the other way round: what the guest grew shows in the API.
    let o = s.ebsim(&[
        "aws",
        "ec2",
        "describe-volumes",
        "--query",
        "Volumes[?Size==`16`].State",
        "--output",
        "text",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "available");
}

#[test]
fn sixteen_concurrent_boto3_clients_lose_nothing() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("60x");
    passes(&s.python(&py, "many_clients.py", &[]));
}

/// The CLI v2 timestamps ebsim's `aws` prints (`2024-05-01T10:00:00+00:00`,
/// `.123000+00:00`) in the wire form the CLI v1 prints as received
/// (`2024-05-01T10:00:00.000Z`): the one difference between the two
/// renderings that is by design (ebsim's `aws` is the v2 CLI).
fn v1_times(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("+00:00") {
        let (before, after) = rest.split_at(i);
        // The timestamp starts at the last date before the offset.
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | 'T'))
            .last()
            .map(|(j, _)| j)
            .unwrap_or(before.len());
        let stamp = &before[start..];
        match ebsim::ec2::time::Millis::parse(&format!("{stamp}+00:00")) {
            Some(t) if stamp.contains('T') => {
                out.push_str(&before[..start]);
                out.push_str(&t.to_wire());
            }
            _ => {
                out.push_str(before);
                out.push_str("+00:00");
            }
        }
        rest = &after["+00:00".len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_real_cli_through_the_endpoint_prints_what_ebsim_aws_prints() {
    let Some(py) = pyenv() else { return };
    // Manual clock: nothing moves between the two calls.
    let s = Serve::start("manual");
    let run = |args: &[&str]| s.ok(args);
    let iid = run(&[
        "aws",
        "ec2",
        "run-instances",
        "--image-id",
        "ami-080e1f13689e07408",
        "--instance-type",
        "t3.micro",
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=Name,Value=web}]",
        "--query",
        "Instances[0].InstanceId",
        "--output",
        "text",
    ]);
    run(&["clock", "advance", "1m"]);
    let vid = run(&[
        "aws",
        "ec2",
        "create-volume",
        "--size",
        "10",
        "--volume-type",
        "io2",
        "--iops",
        "500",
        "--availability-zone",
        "us-east-1a",
        "--tag-specifications",
        "ResourceType=volume,Tags=[{Key=Name,Value=data},{Key=x,Value=\"a&b<c>\"}]",
        "--query",
        "VolumeId",
        "--output",
        "text",
    ]);
    run(&["clock", "advance", "1m"]);
    run(&[
        "aws",
        "ec2",
        "attach-volume",
        "--volume-id",
        &vid,
        "--instance-id",
        &iid,
        "--device",
        "/dev/sdf",
    ]);
    run(&[
        "aws",
        "ec2",
        "create-snapshot",
        "--volume-id",
        &vid,
        "--description",
        "d",
    ]);
    run(&["clock", "advance", "2m"]);
    run(&[
        "aws",
        "ec2",
        "modify-volume",
        "--volume-id",
        &vid,
        "--size",
        "20",
    ]);
    run(&["clock", "advance", "31s"]);
    run(&[
        "aws",
        "ec2",
        "create-image",
        "--instance-id",
        &iid,
        "--name",
        "img",
        "--no-reboot",
    ]);

    let ami = "ami-080e1f13689e07408";
    let cases: Vec<Vec<&str>> = vec![
        vec!["describe-volumes"],
        vec!["describe-volumes", "--volume-ids", &vid],
        vec!["describe-instances"],
        vec![
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=web",
        ],
        vec!["describe-snapshots", "--owner-ids", "self"],
        vec!["describe-volumes-modifications"],
        vec!["describe-images", "--image-ids", ami],
        vec!["describe-images", "--owners", "self"],
        vec!["describe-availability-zones"],
        vec![
            "describe-instance-types",
            "--instance-types",
            "t3.micro",
            "t2.micro",
        ],
        vec![
            "describe-volumes",
            "--query",
            "Volumes[].[VolumeId,State,Size,Attachments[0].State]",
            "--output",
            "text",
        ],
        vec!["describe-volumes", "--output", "text"],
        vec!["describe-instances", "--output", "text"],
        vec![
            "describe-volumes",
            "--query",
            "Volumes[].Tags[?Key==`Name`].Value",
        ],
        vec!["describe-volumes", "--query", "sum(Volumes[].Size)"],
        vec![
            "describe-volumes",
            "--query",
            "[Volumes[?CreateTime>='2024-03-31'].Size, Volumes[?CreateTime<'2024-03-31'].Size]",
        ],
        vec!["describe-volumes", "--query", "avg(Volumes[].Size)"],
        vec![
            "describe-volumes",
            "--query",
            "[max(Volumes[].Size), length(Volumes), Volumes[?Size>`5`] | length(@)]",
        ],
        vec![
            "describe-volumes",
            "--query",
            "Volumes[0].Tags[?Key=='Name'].Value",
        ],
        vec![
            "describe-volumes-modifications",
            "--query",
            "VolumesModifications[0].[ModificationState,Progress]",
            "--output",
            "text",
        ],
        vec![
            "describe-snapshots",
            "--owner-ids",
            "self",
            "--query",
            "Snapshots[0].[State,Progress,VolumeSize]",
        ],
        vec!["describe-instance-status"],
        vec!["describe-instance-status", "--include-all-instances"],
        vec!["describe-instance-status", "--output", "text"],
        vec!["describe-tags"],
        vec!["describe-tags", "--output", "text"],
        vec![
            "describe-tags",
            "--filters",
            "Name=resource-type,Values=volume",
            "Name=key,Values=N*",
        ],
        vec![
            "describe-instance-attribute",
            "--instance-id",
            &iid,
            "--attribute",
            "blockDeviceMapping",
        ],
        vec![
            "describe-instance-attribute",
            "--instance-id",
            &iid,
            "--attribute",
            "groupSet",
        ],
        vec![
            "describe-instance-attribute",
            "--instance-id",
            &iid,
            "--attribute",
            "userData",
        ],
        vec![
            "describe-instance-attribute",
            "--instance-id",
            &iid,
            "--attribute",
            "kernel",
        ],
        vec![
            "describe-instance-attribute",
            "--instance-id",
            &iid,
            "--attribute",
            "disableApiTermination",
            "--output",
            "text",
        ],
        vec![
            "describe-instances",
            "--filters",
            "Name=vpc-id,Values=vpc-*",
            "--query",
            "Reservations[].Instances[].[NetworkInterfaces[0].PrivateIpAddress,SecurityGroups[0].GroupName,SubnetId]",
            "--output",
            "text",
        ],
    ];
    let mut diffs = Vec::new();
    for c in &cases {
        let mut real_args = vec!["ec2"];
        real_args.extend(c.iter().copied());
        let real = s.aws(&py, &real_args);
        let mut ours_args = vec!["aws", "ec2"];
        ours_args.extend(c.iter().copied());
        let ours = s.ebsim(&ours_args);
        assert!(real.status.success(), "real aws {c:?}: {}", text(&real));
        assert!(ours.status.success(), "ebsim aws {c:?}: {}", text(&ours));
        let (r, o) = (
            String::from_utf8_lossy(&real.stdout).to_string(),
            v1_times(&String::from_utf8_lossy(&ours.stdout)),
        );
        if r != o {
            diffs.push(format!(
                "{c:?}\n--- real aws through ebsim serve\n{r}\n--- ebsim aws\n{o}"
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    // Errors: the CLI v1's words, rc 255.
    let e = s.aws(
        &py,
        &[
            "ec2",
            "describe-volumes",
            "--volume-ids",
            "vol-0000000000000000f",
        ],
    );
    assert_eq!(e.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&e.stderr),
        "\nAn error occurred (InvalidVolume.NotFound) when calling the DescribeVolumes operation: The volume 'vol-0000000000000000f' does not exist.\n"
    );
    let e = s.aws(
        &py,
        &[
            "ec2",
            "create-volume",
            "--size",
            "1",
            "--availability-zone",
            "us-east-1a",
            "--dry-run",
        ],
    );
    assert_eq!(e.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&e.stderr).contains(
        "(DryRunOperation) when calling the CreateVolume operation: Request would have succeeded, but DryRun flag is set."
    ), "{}", text(&e));
    let e = s.aws(
        &py,
        &[
            "ec2",
            "create-volume",
            "--size",
            "1",
            "--availability-zone",
            "us-east-1a",
            "--volume-type",
            "gp9",
        ],
    );
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("(InvalidParameterValue)"),
        "{}",
        text(&e)
    );
    let e = s.aws(
        &py,
        &["ec2", "modify-volume", "--volume-id", &vid, "--size", "30"],
    );
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("(IncorrectModificationState)"),
        "{}",
        text(&e)
    );
    // A CLI waiter over the endpoint (the first poll succeeds).
    let w = s.aws(&py, &["ec2", "wait", "volume-in-use", "--volume-ids", &vid]);
    assert!(w.status.success(), "{}", text(&w));
}

/// Sends raw bytes, returns everything the server answers before closing
/// (or what came within the deadline).
fn raw(addr: &str, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(bytes);
    if half_close {
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

#[test]
fn garbage_truncated_and_huge_requests_get_a_clean_refusal() {
    let s = Serve::start("fast");
    let ok_body = "Action=DescribeAvailabilityZones&Version=2016-11-15";
    let good = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{ok_body}",
        ok_body.len()
    );
    // A deterministic generator: no dependency, same cases every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cases: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"POST / HTTP/9.9\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec(),
    ];
    for _ in 0..60 {
        let len = (next() % 300) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        b.extend_from_slice(b"\r\n\r\n");
        cases.push(b);
    }
    for _ in 0..60 {
        // The good request with one byte changed.
        let mut b = good.clone().into_bytes();
        let i = (next() as usize) % b.len();
        b[i] = (next() & 0xff) as u8;
        cases.push(b);
    }
    for c in &cases {
        let answer = raw(&s.addr, c, true);
        let head = String::from_utf8_lossy(&answer);
        let status: Option<u16> = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|x| x.parse().ok());
        // Either the request was still a request (200 or an API error in
        // XML), or it was refused with a 4xx/501 and the connection closed.
        assert!(
            matches!(status, Some(200 | 400 | 412 | 413 | 431 | 501)) || answer.is_empty(),
            "{:?} -> {head:?}",
            String::from_utf8_lossy(c)
        );
        // A protocol refusal closes the connection; an API error (the
        // request was well formed) keeps it.
        if matches!(status, Some(413 | 431 | 501)) || head.contains("<Code>InvalidRequest</Code>") {
            assert!(head.contains("Connection: close"), "{head}");
        }
    }
    // Truncated: every prefix of a good request, then the client closes.
    for cut in [1, 10, 40, good.len() - 5] {
        let answer = raw(&s.addr, &good.as_bytes()[..cut], true);
        assert!(answer.is_empty(), "a truncated request got {answer:?}");
    }
    // A huge declared body is refused at once, without reading it.
    let huge = b"POST / HTTP/1.1\r\nContent-Length: 10737418240\r\n\r\nAction=";
    let answer = String::from_utf8_lossy(&raw(&s.addr, huge, false)).to_string();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    // A huge chunked body is refused once it passes the limit, while it
    // is still being sent.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "A".repeat(64 * 1024));
    let mut refused = false;
    for _ in 0..64 {
        if c.write_all(chunk.as_bytes()).is_err() {
            refused = true;
            break;
        }
    }
    let _ = c.shutdown(std::net::Shutdown::Write);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out);
    assert!(refused || head.starts_with("HTTP/1.1 413 "), "{head}");
    // Still serving, with keep-alive: two requests on one connection.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    for _ in 0..2 {
        c.write_all(good.as_bytes()).unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK\r\n");
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
            assert_ne!(h.trim(), "Connection: close");
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        assert!(String::from_utf8_lossy(&body).contains("<availabilityZoneInfo>"));
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let mut s = Serve::start("fast");
    // Half a request is in flight when the signal comes; the rest follows.
    let body = "Action=DescribeVolumes&Version=2016-11-15";
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(s.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    assert!(answer.contains("<volumeSet>"), "{answer}");
    let st = s.sigterm_wait();
    assert_eq!(st.code(), Some(0));
    // No new connection is taken after that.
    assert!(TcpStream::connect(&s.addr).is_err());
}

impl Serve {
    /// Runs `ebsim ARGS` against this server's home; asserts success and
    /// returns its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.ebsim(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn sigterm_wait(&mut self) -> std::process::ExitStatus {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < until, "ebsim serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One form-encoded request on its own connection: (status, body).
fn post(addr: &str, form: &str) -> Option<(u16, String)> {
    let mut c = TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    c.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    c.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

const CREATE: &str = "Action=CreateVolume&Version=2016-11-15&Size=1&AvailabilityZone=us-east-1a";
const DESCRIBE: &str = "Action=DescribeVolumes&Version=2016-11-15";

/// The `<volumeId>` of a CreateVolume answer.
fn volume_id(body: &str) -> String {
    let start = body.find("<volumeId>").unwrap() + "<volumeId>".len();
    let end = body[start..].find('<').unwrap();
    body[start..start + end].to_string()
}

/// Every file under `dir`, relative to it.
fn tree(dir: &Path) -> std::collections::BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.insert(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The server keeps the parsed state between requests and commits
/// concurrent requests together: what another process writes in between
/// is seen by the next request (the file's fingerprint changed), every
/// request answered 200 survives a SIGKILL in the middle of a burst of
/// concurrent creates, and the next transaction leaves exactly the files
/// the committed state names.
#[test]
fn group_commit_sees_other_writers_and_survives_sigkill() {
    let mut s = Serve::start("fast");
    let (st, body) = post(&s.addr, CREATE).unwrap();
    assert_eq!(st, 200, "{body}");
    let a = volume_id(&body);
    // Two writes by other processes (the second may reuse the inode number
    // the server's last document had), then the server answers.
    for value in ["one", "two"] {
        let tag = format!("Key=k,Value={value}");
        let o = s.ebsim(&[
            "aws",
            "ec2",
            "create-tags",
            "--resources",
            &a,
            "--tags",
            &tag,
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = s.ebsim(&[
        "aws",
        "ec2",
        "create-volume",
        "--size",
        "2",
        "--availability-zone",
        "us-east-1a",
        "--query",
        "VolumeId",
        "--output",
        "text",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let b = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let (st, body) = post(&s.addr, DESCRIBE).unwrap();
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(&a) && body.contains(&b), "{body}");
    assert!(body.contains("<value>two</value>"), "{body}");
    assert!(!body.contains("<value>one</value>"), "{body}");
    // A burst of concurrent creates, killed in the middle.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..12)
        .map(|_| {
            let (addr, stop, answered) = (s.addr.clone(), stop.clone(), answered.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match post(&addr, CREATE) {
                        Some((200, body)) => answered.lock().unwrap().push(volume_id(&body)),
                        Some((st, body)) => panic!("{st}: {body}"),
                        None => break,
                    }
                }
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 40 {
        assert!(Instant::now() < until, "too few creates answered");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    // The next transaction (another process) recovers.
    let o = s.ebsim(&[
        "aws",
        "ec2",
        "describe-volumes",
        "--query",
        "Volumes[].VolumeId",
        "--output",
        "text",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: std::collections::BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let answered = answered.lock().unwrap().clone();
    for id in answered.iter().chain([&a, &b]) {
        assert!(
            listed.contains(id),
            "{id} was answered but is not in the state"
        );
    }
    let mut want: std::collections::BTreeSet<String> = listed
        .iter()
        .map(|id| format!("volumes/{id}.img"))
        .collect();
    want.insert("state.json".to_string());
    want.insert("state.lock".to_string());
    assert_eq!(tree(s.home.path()), want);
    println!(
        "{} creates answered before the kill, {} volumes committed",
        answered.len(),
        listed.len()
    );
}

/// `ebsim aws` on the server's state with the environment `both` gives
/// the real CLI (region, keys, no profile), plus `env`.
fn ours_env(s: &Serve, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(common::ebsim_bin());
    c.arg("aws")
        .args(args)
        .env("EBSIM_HOME", s.home.path())
        .env("EBSIM_CLOCK", s.clock)
        .env("AWS_ACCESS_KEY_ID", "AKIDEBSIMTEST0000001")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_OUTPUT");
    for (k, v) in env {
        c.env(k, v);
    }
    match stdin {
        None => c.output().unwrap(),
        Some(input) => {
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
    }
}

/// A state with an instance, tagged volumes (one tag in CJK, which the
/// table counts two columns a character), a snapshot and a modification.
fn populate(s: &Serve) -> (String, String) {
    let run = |args: &[&str]| s.ok(args);
    let iid = run(&[
        "aws",
        "ec2",
        "run-instances",
        "--image-id",
        "ami-080e1f13689e07408",
        "--instance-type",
        "t3.micro",
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=Name,Value=web}]",
        "--query",
        "Instances[0].InstanceId",
        "--output",
        "text",
    ]);
    run(&["clock", "advance", "1m"]);
    let vid = run(&[
        "aws",
        "ec2",
        "create-volume",
        "--size",
        "10",
        "--volume-type",
        "gp3",
        "--availability-zone",
        "us-east-1a",
        "--tag-specifications",
        "ResourceType=volume,Tags=[{Key=Name,Value=data},{Key=jp,Value=日本語のディスク},{Key=q,Value=\"it's: #1\"}]",
        "--query",
        "VolumeId",
        "--output",
        "text",
    ]);
    run(&["clock", "advance", "1m"]);
    run(&[
        "aws",
        "ec2",
        "attach-volume",
        "--volume-id",
        &vid,
        "--instance-id",
        &iid,
        "--device",
        "/dev/sdf",
    ]);
    run(&[
        "aws",
        "ec2",
        "create-snapshot",
        "--volume-id",
        &vid,
        "--description",
        "nightly backup of the data volume before the resize, kept for thirty days as the runbook says",
    ]);
    run(&["clock", "advance", "2m"]);
    run(&[
        "aws",
        "ec2",
        "modify-volume",
        "--volume-id",
        &vid,
        "--size",
        "20",
    ]);
    run(&["clock", "advance", "31s"]);
    (iid, vid)
}

/// The cases the table and YAML comparisons run (after `ec2`).
fn output_cases(iid: &str) -> Vec<Vec<String>> {
    let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        c(&["describe-volumes"]),
        c(&["describe-instances"]),
        c(&["describe-instances", "--instance-ids", iid]),
        c(&["describe-snapshots", "--owner-ids", "self"]),
        c(&["describe-volumes-modifications"]),
        c(&["describe-availability-zones"]),
        c(&["describe-tags"]),
        c(&[
            "describe-instance-types",
            "--instance-types",
            "t3.micro",
            "t2.micro",
            "m5.large",
        ]),
        c(&[
            "describe-instance-types",
            "--query",
            "InstanceTypes[?MemoryInfo.SizeInMiB==`1024`].[InstanceType,VCpuInfo.DefaultVCpus,Hypervisor]",
        ]),
        c(&[
            "describe-instance-types",
            "--filters",
            "Name=instance-type,Values=t3.*",
            "--query",
            "InstanceTypes[].{T:InstanceType,M:MemoryInfo.SizeInMiB}",
        ]),
        c(&[
            "describe-volumes",
            "--query",
            "Volumes[].[VolumeId,Size,State,Attachments[0].Device]",
        ]),
        c(&["describe-volumes", "--query", "Volumes[0].VolumeId"]),
        c(&["describe-volumes", "--query", "sum(Volumes[].Size)"]),
        c(&["describe-volumes", "--query", "avg(Volumes[].Size)"]),
        c(&["describe-volumes", "--query", "Volumes[].Tags"]),
        c(&["describe-volumes", "--query", "Volumes[?Size>`100`]"]),
        c(&[
            "describe-volumes",
            "--query",
            "Volumes[].{ID:VolumeId,Tags:Tags,Empty:``,Zero:`0`,T:`true`}",
        ]),
        c(&[
            "describe-instances",
            "--query",
            "Reservations[].Instances[].[InstanceId,State.Name,Placement.AvailabilityZone]",
        ]),
        c(&[
            "describe-instance-attribute",
            "--instance-id",
            iid,
            "--attribute",
            "blockDeviceMapping",
        ]),
        c(&["sts-marker"]),
    ]
}

#[test]
fn tables_as_the_real_cli_draws_them_and_yaml_as_awscli_v2_dumps_it() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("manual");
    let (iid, _vid) = populate(&s);
    // The real CLI v1 with the v2 timestamps ebsim's `aws` prints.
    let cfg = s.home.path().join("aws-config");
    std::fs::write(&cfg, "[default]\ncli_timestamp_format = iso8601\n").unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let env = [("AWS_CONFIG_FILE", Some(cfg.as_str()))];
    let mut diffs = Vec::new();
    let mut compared = 0;
    for case in output_cases(&iid) {
        let words: Vec<&str> = if case[0] == "sts-marker" {
            vec!["sts", "get-caller-identity"]
        } else {
            std::iter::once("ec2")
                .chain(case.iter().map(String::as_str))
                .collect()
        };
        // Tables, plain and coloured.
        for extra in [
            &["--output", "table"][..],
            &["--output", "table", "--color", "on"],
        ] {
            let mut args = words.clone();
            args.extend_from_slice(extra);
            let (real, ours) = s.both(&py, &args, &env);
            assert!(real.status.success(), "real aws {args:?}: {}", text(&real));
            assert!(ours.status.success(), "ebsim aws {args:?}: {}", text(&ours));
            compared += 1;
            if real.stdout != ours.stdout {
                diffs.push(format!(
                    "{args:?}\n--- real aws through ebsim serve\n{}\n--- ebsim aws\n{}",
                    String::from_utf8_lossy(&real.stdout),
                    String::from_utf8_lossy(&ours.stdout)
                ));
            }
        }
        // YAML: the real CLI's JSON through awscli v2's dumper.
        let mut args = words.clone();
        args.extend_from_slice(&["--output", "json"]);
        let (real, _) = s.both(&py, &args, &env);
        assert!(real.status.success(), "real aws {args:?}: {}", text(&real));
        // yaml-stream prints a document per page: the reference (one
        // document) holds only for results of one page.
        let many_pages = case[0] == "describe-instance-types" && case[1] != "--instance-types";
        for mode in ["yaml", "yaml-stream"] {
            if many_pages && mode == "yaml-stream" {
                continue;
            }
            let mut r = Command::new(py.join("bin/python"));
            r.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/yaml_ref.py"))
                .arg(mode)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = r.spawn().unwrap();
            child.stdin.take().unwrap().write_all(&real.stdout).unwrap();
            let reference = child.wait_with_output().unwrap();
            assert!(reference.status.success(), "{}", text(&reference));
            let mut args = words.clone();
            args.extend_from_slice(&["--output", mode]);
            let ours = ours_env(&s, &args, &[], None);
            assert!(ours.status.success(), "ebsim aws {args:?}: {}", text(&ours));
            compared += 1;
            if reference.stdout != ours.stdout {
                diffs.push(format!(
                    "{args:?}\n--- ruamel.yaml over the real aws JSON\n{}\n--- ebsim aws\n{}",
                    String::from_utf8_lossy(&reference.stdout),
                    String::from_utf8_lossy(&ours.stdout)
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {compared} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    println!("{compared} renderings identical");

    // AWS_DEFAULT_OUTPUT and the config file's `output` choose the format.
    let (real, ours) = s.both(
        &py,
        &["ec2", "describe-volumes"],
        &[
            ("AWS_CONFIG_FILE", Some(cfg.as_str())),
            ("AWS_DEFAULT_OUTPUT", Some("table")),
        ],
    );
    assert!(real.status.success(), "{}", text(&real));
    assert_eq!(
        String::from_utf8_lossy(&real.stdout),
        String::from_utf8_lossy(&ours.stdout)
    );
    assert!(
        String::from_utf8_lossy(&ours.stdout).contains("|  DescribeVolumes  |")
            || String::from_utf8_lossy(&ours.stdout).contains("DescribeVolumes")
    );
    let ycfg = s.home.path().join("aws-config-yaml");
    std::fs::write(&ycfg, "[default]\noutput = yaml\n").unwrap();
    let by_config = ours_env(
        &s,
        &["ec2", "describe-volumes"],
        &[("AWS_CONFIG_FILE", ycfg.to_str().unwrap())],
        None,
    );
    let by_flag = ours_env(
        &s,
        &["ec2", "describe-volumes", "--output", "yaml"],
        &[],
        None,
    );
    assert!(by_config.status.success(), "{}", text(&by_config));
    assert_eq!(by_config.stdout, by_flag.stdout);
    assert!(String::from_utf8_lossy(&by_flag.stdout).starts_with("Volumes:\n- "));
    // yaml-stream: one list item per page (200 types, 100 a page), the
    // query applied to each.
    let pages = ours_env(
        &s,
        &[
            "ec2",
            "describe-instance-types",
            "--output",
            "yaml-stream",
            "--query",
            "length(InstanceTypes)",
        ],
        &[],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&pages.stdout), "- 100\n- 100\n");
    // An unknown format is a usage error.
    let bad = ours_env(
        &s,
        &["ec2", "describe-volumes", "--output", "xml"],
        &[],
        None,
    );
    assert_eq!(bad.status.code(), Some(252), "{}", text(&bad));
}

#[test]
fn skeletons_and_cli_input_json_as_the_real_cli() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("manual");
    let mut diffs = Vec::new();
    let mut compared = 0;
    // The real CLI fills an enum member with a random value of the enum:
    // skeletons are compared with every string value blanked.
    let blank = |o: &[u8]| -> String {
        String::from_utf8_lossy(o)
            .lines()
            .map(|l| {
                let comma = if l.ends_with(',') { "," } else { "" };
                let body = l.trim_end_matches(',');
                if let Some(i) = body.find("\": \"") {
                    format!("{}\": \"\"{comma}", &body[..i])
                } else if body.trim_start().starts_with('"') && body.ends_with('"') {
                    let ind = body.len() - body.trim_start().len();
                    format!("{}\"\"{comma}", &body[..ind])
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut check = |args: &[&str], diffs: &mut Vec<String>| {
        let (real, ours) = s.both(&py, args, &[]);
        compared += 1;
        let skeleton = args.contains(&"--generate-cli-skeleton");
        let same_out = if skeleton {
            blank(&real.stdout) == blank(&ours.stdout)
        } else {
            real.stdout == ours.stdout
        };
        let same = same_out
            && real.stderr == ours.stderr
            && real.status.success() == ours.status.success();
        if !same {
            diffs.push(format!(
                "{args:?}\n--- real aws\n{}\n--- ebsim aws\n{}",
                text(&real),
                text(&ours)
            ));
        }
        ours
    };
    // Input skeletons of every operation kind; output skeletons of the
    // operations without required members, in JSON and as a table.
    for op in [
        "attach-volume",
        "create-volume",
        "create-tags",
        "delete-volume",
        "describe-instance-types",
        "describe-instances",
        "describe-volumes",
        "describe-volumes-modifications",
        "modify-instance-attribute",
        "modify-volume",
        "run-instances",
        "stop-instances",
    ] {
        check(&["ec2", op, "--generate-cli-skeleton"], &mut diffs);
        check(&["ec2", op, "--generate-cli-skeleton", "input"], &mut diffs);
    }
    for op in [
        "describe-volumes",
        "describe-snapshots",
        "describe-instances",
    ] {
        check(
            &["ec2", op, "--generate-cli-skeleton", "output"],
            &mut diffs,
        );
    }
    check(
        &[
            "ec2",
            "describe-volumes",
            "--generate-cli-skeleton",
            "output",
            "--query",
            "Volumes[0].Tags",
            "--output",
            "table",
        ],
        &mut diffs,
    );
    check(
        &[
            "ec2",
            "describe-volumes",
            "--generate-cli-skeleton",
            "output",
            "--query",
            "Volumes[0].Tags",
        ],
        &mut diffs,
    );
    check(
        &["sts", "get-caller-identity", "--generate-cli-skeleton"],
        &mut diffs,
    );
    // --cli-input-json: the command line wins; a file:// document too.
    let input = r#"{"AvailabilityZone":"us-east-1a","Size":3,"VolumeType":"gp3","TagSpecifications":[{"ResourceType":"volume","Tags":[{"Key":"Name","Value":"from-json"}]}]}"#;
    let o = check(
        &[
            "ec2",
            "create-volume",
            "--cli-input-json",
            input,
            "--size",
            "4",
            "--query",
            "[Size,VolumeType,Tags[0].Value]",
            "--output",
            "text",
        ],
        &mut diffs,
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "4\tgp3\tfrom-json\n");
    let file = s.home.path().join("input.json");
    std::fs::write(&file, input).unwrap();
    let url = format!("file://{}", file.display());
    check(
        &[
            "ec2",
            "create-volume",
            "--cli-input-json",
            &url,
            "--query",
            "Size",
        ],
        &mut diffs,
    );
    check(
        &[
            "ec2",
            "describe-volumes",
            "--cli-input-json",
            r#"{"Filters":[{"Name":"size","Values":["3"]}]}"#,
            "--query",
            "length(Volumes)",
        ],
        &mut diffs,
    );
    assert!(
        diffs.is_empty(),
        "{} of {compared} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    println!("{compared} commands print the same");

    // Errors: the same words; the real CLI (v1) exits 255 where ebsim's
    // (v2) exits 252.
    for (args, words) in [
        (
            vec![
                "ec2",
                "delete-volume",
                "--cli-input-json",
                r#"{"VolumeId":"vol-1","Foo":1}"#,
            ],
            "Unknown parameter in input: \"Foo\", must be one of: VolumeId, DryRun",
        ),
        (
            vec!["ec2", "delete-volume", "--cli-input-json", "{}"],
            "Missing required parameter in input: \"VolumeId\"",
        ),
        (
            vec![
                "ec2",
                "delete-volume",
                "--cli-input-json",
                r#"{"VolumeId":5}"#,
            ],
            "Invalid type for parameter VolumeId, value: 5, type: <class 'int'>, valid types: <class 'str'>",
        ),
    ] {
        let (real, ours) = s.both(&py, &args, &[]);
        assert_eq!(real.status.code(), Some(255), "{}", text(&real));
        assert_eq!(ours.status.code(), Some(252), "{}", text(&ours));
        assert_eq!(
            String::from_utf8_lossy(&real.stderr),
            String::from_utf8_lossy(&ours.stderr)
        );
        assert!(String::from_utf8_lossy(&ours.stderr).contains(words));
    }
}

/// The real AWS CLI v2 (`EBSIM_AWSCLI_V2`, else `target/awscli-v2/aws`,
/// which scripts/test.sh unpacks), the reference for what only v2 has
/// (`--generate-cli-skeleton yaml-input`, `--cli-input-yaml`); None is a
/// skip, a failure under CI.
fn awscli_v2() -> Option<PathBuf> {
    let exe = std::env::var_os("EBSIM_AWSCLI_V2")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/awscli-v2/aws"));
    if exe.is_file() {
        return Some(exe);
    }
    assert!(
        !common::in_ci(),
        "CI is set but there is no AWS CLI v2 at {} (scripts/test.sh installs it)",
        exe.display()
    );
    eprintln!("skipping: no AWS CLI v2 at {}", exe.display());
    None
}

impl Serve {
    /// The real AWS CLI v2 against this server and `ebsim aws`, with the
    /// same arguments and environment.
    fn both_v2(&self, v2: &Path, args: &[&str]) -> (Output, Output) {
        let real = Command::new(v2)
            .arg("--endpoint-url")
            .arg(&self.url)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDEBSIMTEST0000001")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
            .env("AWS_PAGER", "")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_OUTPUT")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_EC2")
            .output()
            .unwrap();
        let ours = self.ebsim_aws(args);
        (real, ours)
    }

    fn ebsim_aws(&self, args: &[&str]) -> Output {
        Command::new(common::ebsim_bin())
            .arg("aws")
            .args(args)
            .env("EBSIM_HOME", self.home.path())
            .env("EBSIM_CLOCK", self.clock)
            .env("AWS_ACCESS_KEY_ID", "AKIDEBSIMTEST0000001")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_OUTPUT")
            .output()
            .unwrap()
    }
}

/// `--generate-cli-skeleton yaml-input` and `--cli-input-yaml` against the
/// real AWS CLI v2 (v1 has neither): the skeletons byte for byte, the same
/// YAML document given to the real CLI through `ebsim serve` and to
/// `ebsim aws` makes the same volume and prints the same answer, and bad
/// documents are refused with the same words and exit code.
#[test]
fn yaml_skeletons_and_cli_input_yaml_as_the_real_cli_v2() {
    let Some(v2) = awscli_v2() else { return };
    let s = Serve::start("manual");
    let mut diffs = Vec::new();
    let mut compared = 0;
    let mut check = |args: &[&str], diffs: &mut Vec<String>| -> (Output, Output) {
        let (real, ours) = s.both_v2(&v2, args);
        compared += 1;
        if real.stdout != ours.stdout
            || real.stderr != ours.stderr
            || real.status.code() != ours.status.code()
        {
            diffs.push(format!(
                "{args:?}\n--- real aws v2 through ebsim serve\n{}\n--- ebsim aws\n{}",
                text(&real),
                text(&ours)
            ));
        }
        (real, ours)
    };
    // Skeletons with required members, enums, nested lists of structures
    // and none at all. (The operations whose models changed between the
    // botocore ebsim's skeletons come from and the v2 CLI's newer one --
    // a new member of CreateImage, new tag resource types and market
    // types -- are left out: they differ by the model, not the rendering.)
    for op in [
        "attach-volume",
        "delete-volume",
        "create-tags",
        "describe-volumes",
        "describe-instances",
        "describe-instance-status",
        "describe-instance-types",
        "modify-volume",
        "stop-instances",
    ] {
        check(
            &["ec2", op, "--generate-cli-skeleton", "yaml-input"],
            &mut diffs,
        );
    }
    check(
        &[
            "sts",
            "get-caller-identity",
            "--generate-cli-skeleton",
            "yaml-input",
        ],
        &mut diffs,
    );
    // A filled-in skeleton (its comments kept), from a file and inline;
    // the command line wins over the document.
    let doc = "AvailabilityZone: us-east-1a  # The ID of the Availability Zone\n\
               Size: 3 # The size of the volume, in GiBs.\n\
               VolumeType: gp3 # The volume type.\n\
               TagSpecifications: # The tags to apply to the volume during creation.\n\
               - ResourceType: volume  # The type of resource to tag on creation.\n  \
               Tags: # The tags to apply to the resource.\n  \
               - Key: Name  # The key of the tag.\n    \
               Value: from-yaml # The value of the tag.\n\
               Encrypted: false\n";
    let file = s.home.path().join("input.yaml");
    std::fs::write(&file, doc).unwrap();
    let url = format!("file://{}", file.display());
    let q = "{Size:Size,Type:VolumeType,Zone:AvailabilityZone,Tags:Tags,Encrypted:Encrypted,State:State}";
    let (real, ours) = check(
        &[
            "ec2",
            "create-volume",
            "--cli-input-yaml",
            &url,
            "--query",
            q,
        ],
        &mut diffs,
    );
    assert!(real.status.success(), "{}", text(&real));
    assert!(
        String::from_utf8_lossy(&ours.stdout).contains("\"Value\": \"from-yaml\""),
        "{}",
        text(&ours)
    );
    let (_, ours) = check(
        &[
            "ec2",
            "create-volume",
            "--cli-input-yaml",
            doc,
            "--size",
            "4",
            "--query",
            q,
            "--output",
            "yaml",
        ],
        &mut diffs,
    );
    assert!(
        String::from_utf8_lossy(&ours.stdout).contains("Size: 4\n"),
        "{}",
        text(&ours)
    );
    // Both clients' volumes are in the one state.
    let (_, ours) = check(
        &[
            "ec2",
            "describe-volumes",
            "--cli-input-yaml",
            "Filters:\n- Name: tag:Name\n  Values: [from-yaml]\n",
            "--query",
            "sort_by(Volumes, &Size)[].[Size,VolumeType,Encrypted]",
            "--output",
            "text",
        ],
        &mut diffs,
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        "3\tgp3\tFalse\n3\tgp3\tFalse\n4\tgp3\tFalse\n4\tgp3\tFalse\n"
    );
    // Refusals: not YAML, more than one document, not a mapping, nothing,
    // unknown and missing members, both input options, a missing file.
    for bad in [
        "VolumeId: [",
        "VolumeId: vol-1\n---\nVolumeId: vol-2\n",
        "- vol-1",
        "vol-1",
        "",
        "Foo: 1",
        "VolumeId: vol-1\nfoo: [1, 2]",
        "VolumeId: 5",
        "VolumeId: vol-1\nDryRun: [yes, 1, ~]",
    ] {
        check(
            &["ec2", "delete-volume", "--cli-input-yaml", bad],
            &mut diffs,
        );
    }
    check(
        &[
            "ec2",
            "delete-volume",
            "--cli-input-yaml",
            "VolumeId: vol-1",
            "--cli-input-json",
            "{}",
        ],
        &mut diffs,
    );
    check(
        &[
            "ec2",
            "delete-volume",
            "--cli-input-yaml",
            "file:///nonexistent/input.yaml",
        ],
        &mut diffs,
    );
    assert!(
        diffs.is_empty(),
        "{} of {compared} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    println!("{compared} commands print the same as the AWS CLI v2");
}

/// SIGKILL at random moments while 16 boto3 clients create, tag, modify
/// and delete, then SIGTERM with requests in flight: after a restart the
/// state holds every change answered 200 and nothing else a client did
/// not ask for, exactly its files are on disk, and no client ever saw a
/// 5xx (tests/serve/crash_clients.py).
#[test]
fn sigkill_and_sigterm_under_sixteen_boto3_clients_lose_no_answered_change() {
    let Some(py) = pyenv() else { return };
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    println!("seed {seed}");
    let o = Command::new(py.join("bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/crash_clients.py"))
        .arg(common::ebsim_bin())
        .arg(&port)
        .arg(&seed)
        .env("EBSIM_HOME", home.path())
        .env("EBSIM_CLOCK", "fast")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .output()
        .unwrap();
    passes(&o);
}

/// `--max-items`/`--starting-token` round trips, `--page-size` and
/// `MaxResults`, non-positive limits and tokens the CLI did not make,
/// through the real CLI (v1) driving `ebsim serve` and through `ebsim aws`
/// on the same state: the same tokens, pages, warnings and refusals (the
/// real CLI exits 255 where ebsim's, the v2 CLI, exits 252 or 254).
#[test]
fn the_real_cli_resumes_its_tokens_and_refuses_bad_ones_as_ebsim_aws_does() {
    let Some(py) = pyenv() else { return };
    let s = Serve::start("manual");
    for _ in 0..10 {
        s.ok(&[
            "aws",
            "ec2",
            "create-volume",
            "--size",
            "1",
            "--availability-zone",
            "us-east-1a",
        ]);
    }
    let all: Vec<String> = s
        .ok(&[
            "aws",
            "ec2",
            "describe-volumes",
            "--query",
            "Volumes[].VolumeId",
            "--output",
            "text",
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(all.len(), 10);
    let same = |args: &[&str]| -> (String, String) {
        let (real, ours) = s.both(&py, args, &[]);
        let (r, o) = (
            String::from_utf8_lossy(&real.stdout).to_string(),
            String::from_utf8_lossy(&ours.stdout).to_string(),
        );
        let (re, oe) = (
            String::from_utf8_lossy(&real.stderr).to_string(),
            String::from_utf8_lossy(&ours.stderr).to_string(),
        );
        let rc_ok = match real.status.code() {
            Some(0) => ours.status.code() == Some(0),
            Some(255) => matches!(ours.status.code(), Some(252 | 254 | 255)),
            _ => false,
        };
        assert!(
            r == o && re == oe && rc_ok,
            "{args:?}\n--- real aws through ebsim serve\n{}\n--- ebsim aws\n{}",
            text(&real),
            text(&ours)
        );
        (r, re)
    };
    // Chains of resume tokens, stopping inside pages and on their
    // boundaries, cover every volume once and in order.
    for (page, max) in [("3", "4"), ("4", "4"), ("2", "5"), ("1000", "3")] {
        let mut token: Option<String> = None;
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..12 {
            let mut args = vec![
                "ec2",
                "describe-volumes",
                "--page-size",
                page,
                "--max-items",
                max,
                "--query",
                "[Volumes[].VolumeId,NextToken]",
                "--output",
                "json",
            ];
            if let Some(t) = &token {
                args.push("--starting-token");
                args.push(t);
            }
            let (out, _) = same(&args);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            seen.extend(
                v[0].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string()),
            );
            match v[1].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, all, "--page-size {page} --max-items {max}");
    }
    // Non-positive limits: the CLI's warning, botocore's slicing (-1
    // stops one item before the end of the first page) and its token.
    let (out, _) = same(&[
        "ec2",
        "describe-volumes",
        "--page-size",
        "3",
        "--max-items",
        "-1",
        "--query",
        "[Volumes[].VolumeId,NextToken]",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0].as_array().unwrap().len(), 2, "{out}");
    let minus_one = v[1].as_str().unwrap().to_string();
    same(&[
        "ec2",
        "describe-volumes",
        "--page-size",
        "4",
        "--starting-token",
        &minus_one,
        "--query",
        "Volumes[].VolumeId",
    ]);
    same(&["ec2", "describe-volumes", "--max-items", "0"]);
    same(&["ec2", "describe-volumes", "--page-size", "-1"]);
    same(&[
        "ec2",
        "describe-volumes",
        "--page-size",
        "0",
        "--query",
        "length(Volumes)",
    ]);
    // MaxResults given: one call, the service's token printed as is, and
    // paging options with it refused.
    same(&[
        "ec2",
        "describe-volumes",
        "--max-results",
        "6",
        "--query",
        "[length(Volumes),NextToken!=null]",
    ]);
    same(&[
        "ec2",
        "describe-volumes",
        "--max-results",
        "6",
        "--page-size",
        "3",
    ]);
    same(&[
        "ec2",
        "describe-volumes",
        "--next-token",
        "x",
        "--max-items",
        "2",
    ]);
    // Tokens the CLI did not make: not base64 JSON (sent to the service
    // as its own token, which refuses it), a JSON object naming another
    // member, a service token ebsim did not make, a list.
    let b64 = |s: &str| {
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(a[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    };
    for t in [
        "garbage".to_string(),
        b64(r#"{"foo": 1}"#),
        b64(r#"{"NextToken": "zzz"}"#),
        b64(r#"{"NextToken": "zzz", "boto_truncate_amount": 1}"#),
        b64(r#"{"NextToken": null, "MaxResults": 2}"#),
        b64("[1]"),
    ] {
        same(&[
            "ec2",
            "describe-volumes",
            "--starting-token",
            &t,
            "--query",
            "Volumes[].VolumeId",
        ]);
    }
}
