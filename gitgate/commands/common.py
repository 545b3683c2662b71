"""Arguments several subcommands read the same way."""

from __future__ import annotations

import argparse

from gitgate.errors import UsageError
from gitgate.model import CanaryRef, Hook
from gitgate.schema import valid_ref


def hook_and_canary(args: argparse.Namespace) -> tuple[Hook, CanaryRef]:
    """--hook, --namespace and --name, checked: a one-line usage error names what is wrong."""
    try:
        hook = Hook(args.hook)
    except ValueError:
        raise UsageError(f"--hook {args.hook!r}: use one of {', '.join(h.value for h in Hook)}") from None
    if not valid_ref(args.namespace, args.name):
        raise UsageError(f"{args.namespace}/{args.name} is not a Kubernetes namespace/name")
    return hook, CanaryRef(args.namespace, args.name)
