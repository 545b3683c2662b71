"""Command-line flags that also read GITGATE_<FLAG> from the environment (SPEC §2)."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from gitgate.errors import UsageError
from gitgate.timeutil import parse_duration

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^[^/\s]+@[^/\s]+:")


def env_name(flag: str) -> str:
    return "GITGATE_" + flag.lstrip("-").upper().replace("-", "_")


def add(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    default: Any = None,
    help: str,
    **kwargs: Any,
) -> None:
    """A flag whose default comes from GITGATE_<FLAG> when that is set."""
    var = env_name(flag)
    value = os.environ.get(var)
    if value is not None and kwargs.get("action") is argparse.BooleanOptionalAction:
        default = value.strip().lower() in ("1", "true", "yes", "on")
    elif value is not None and kwargs.get("action") in ("store_true", "store_false"):
        truthy = value.strip().lower() in ("1", "true", "yes", "on")
        default = truthy if kwargs["action"] == "store_true" else not truthy
    elif value is not None:
        default = value
    parser.add_argument(flag, default=default, help=f"{help} [env {var}]", **kwargs)


def is_url(repo: str) -> bool:
    return bool(_URL.match(repo))


def seconds(text: str, flag: str) -> float:
    try:
        return parse_duration(str(text)).total_seconds()
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from e


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: use HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the load tester's default
