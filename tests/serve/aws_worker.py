"""The real AWS CLI v1, run many times in one Python process.

Each request is a line of JSON on stdin, {"args": [...], "env": {"K": "v"
or null}}; the CLI runs as its `aws` script runs it (awscli.clidriver.main
with sys.argv set), in the environment this process started with plus the
request's changes, with an empty stdin, and the answer is a line of JSON,
{"code": N, "stdout": "...", "stderr": "..."}, the streams' bytes as
Latin-1 text. What this saves is the interpreter's start and botocore's
imports (about 0.6 s of CPU per call); the code that parses, sends and
prints is the same.
"""

import io
import json
import os
import sys

# As the `aws` script does before it imports the CLI.
if os.environ.get("LC_CTYPE", "") == "UTF-8":
    os.environ["LC_CTYPE"] = "en_US.UTF-8"
import awscli.clidriver  # noqa: E402

BASE = dict(os.environ)
PROTOCOL_IN = sys.stdin
PROTOCOL_OUT = sys.stdout
ENCODING = sys.stdout.encoding
ERRORS = sys.stdout.errors


def run(req):
    os.environ.clear()
    os.environ.update(BASE)
    for key, value in req["env"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    out, err = io.BytesIO(), io.BytesIO()
    # Kept in locals: a wrapper that is collected closes its buffer.
    so = io.TextIOWrapper(out, encoding=ENCODING, errors=ERRORS, write_through=True)
    se = io.TextIOWrapper(err, encoding=ENCODING, errors="backslashreplace", write_through=True)
    si = io.TextIOWrapper(io.BytesIO(b""), encoding=ENCODING)
    sys.stdout, sys.stderr, sys.stdin = so, se, si
    sys.argv = ["aws"] + req["args"]
    try:
        code = awscli.clidriver.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        for stream in (sys.stdout, sys.stderr, so, se):
            try:
                stream.flush()
            except ValueError:
                pass
        sys.stdout, sys.stderr, sys.stdin = PROTOCOL_OUT, sys.__stderr__, PROTOCOL_IN
    return {
        "code": code if code is not None else 0,
        "stdout": out.getvalue().decode("latin-1"),
        "stderr": err.getvalue().decode("latin-1"),
    }


for line in PROTOCOL_IN:
    answer = run(json.loads(line))
    PROTOCOL_OUT.write(json.dumps(answer) + "\n")
    PROTOCOL_OUT.flush()
