"""The AWS CLI v2's YAML output of a JSON document, for comparing with
`ebsim aws --output yaml|yaml-stream`: awscli v2 dumps the (parsed)
response with ruamel.yaml's safe dumper in block style; yaml-stream dumps
each page as a one-item list. The CLI v1 in the test environment has no
YAML output, so the tests give this script the real v1 CLI's JSON (with
`cli_timestamp_format = iso8601`, the v2 timestamps) and compare.

usage: yaml_ref.py yaml|yaml-stream < response.json
"""
import json
import sys

from ruamel.yaml import YAML

mode = sys.argv[1]
text = sys.stdin.read()
dumper = YAML(typ="safe")
dumper.default_flow_style = False
if text.strip():
    doc = json.loads(text)
    if mode == "yaml-stream":
        doc = [doc]
    dumper.dump(doc, sys.stdout)
