"""`gitgate schema`: the JSON Schema of gate and policy files, for editors and CI."""

from __future__ import annotations

import argparse
import json

from gitgate.schema import json_schema


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0
