"""`gitgate ...`: parse flags, run one command, turn every failure into one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from gitgate import __version__
from gitgate.errors import GitgateError, UsageError
from gitgate.settings import add

Runner = Callable[[argparse.Namespace], int]
HOOKS_HELP = "confirm-rollout | confirm-traffic-increase | confirm-promotion | rollback | *"


def _repo_flags(p: argparse.ArgumentParser) -> None:
    add(p, "--repo", default="./approvals", help="approvals repo: a local path or a git URL (file, ssh, https)")
    add(p, "--branch", default="main", help="branch to answer from")
    add(p, "--path", default="gates", help="folder of gate files in the repo (e.g. clusters/prod/gates)")
    add(p, "--state-dir", default=".gitgate", help="where the clone, the last verified commit and keys live")
    add(p, "--token", help="token for https git URLs (also read from GITHUB_TOKEN / GITLAB_TOKEN)")


def _trust_flags(p: argparse.ArgumentParser) -> None:
    add(p, "--trust-ssh", metavar="FILE", help="OpenSSH allowed_signers file of trusted signers")
    add(p, "--trust-gpg", metavar="FILE|DIR", help="armored public keys; only their fingerprints are trusted")
    add(
        p,
        "--verify",
        default="all",
        choices=["all", "head", "off"],
        help="which new commits must be signed by a trusted key (off: UNVERIFIED)",
    )
    add(p, "--trust-from", metavar="SHA", help="with no state yet: verify every commit after this one")


def _forge_flags(p: argparse.ArgumentParser, default: str | None = "local") -> None:
    add(p, "--forge", default=default, choices=["local", "github", "gitlab"], help="where requests live")
    add(p, "--forge-repo", metavar="OWNER/NAME", help="the approvals repo on the forge (group/project on GitLab)")
    add(p, "--api-url", help="GitHub Enterprise or self-managed GitLab API URL")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gitgate", description="GitOps-native manual approval gate for Flagger canaries."
    )
    top.add_argument("--version", action="version", version=f"gitgate {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="answer Flagger's gate webhooks from the latest verified commit")
    _repo_flags(p)
    _trust_flags(p)
    add(p, "--interval", help="how often to fetch (default 30s; 1s for a local path)")
    add(p, "--listen", default="0.0.0.0:8080", help="HOST:PORT to listen on")
    add(p, "--admin-token", help="bearer token for /gate/open, /gate/close, /rollback/open, /rollback/close")
    add(p, "--log-format", default="text", choices=["text", "json"], help="log lines for people or as JSON")
    _forge_flags(p, default=None)
    add(
        p,
        "--require-approvals",
        default="0",
        metavar="N",
        help="each new commit must come from a merged request with N approvals by others than its author",
    )
    add(p, "--approvers", metavar="LIST", help="comma-separated logins whose approvals count (default: anyone's)")
    add(
        p,
        "--request-on-deny",
        action=argparse.BooleanOptionalAction,
        help="open an approval request on the first denied check (default: on when --forge is set)",
    )
    add(
        p,
        "--request-via",
        default="open",
        choices=["open", "dispatch"],
        help="open requests directly, or have the forge's workflow do it (repository_dispatch / pipeline)",
    )
    add(p, "--github-webhook-secret", help="secret of the GitHub push webhook (/hooks/github)")
    add(p, "--gitlab-webhook-token", help="token of the GitLab push webhook (/hooks/gitlab)")
    p.set_defaults(run="serve:run")

    p = sub.add_parser("init", help="create a new approvals repo with a local signing key")
    p.add_argument("directory", nargs="?", default="./approvals", help="where (default ./approvals)")
    add(p, "--state-dir", default=".gitgate", help="where the signing key and trust roots go")
    p.set_defaults(run="init:run")

    p = sub.add_parser("lint", help="check gate and policy files")
    p.add_argument("paths", nargs="*", metavar="PATH", help="repo roots or files (default .)")
    add(p, "--path", default="gates", help="folder of gate files inside a repo root")
    p.set_defaults(run="lint:run")

    p = sub.add_parser("schema", help="print the JSON Schema of gate and policy files")
    p.set_defaults(run="schema_cmd:run")

    p = sub.add_parser("check", help="answer one check as the service would, with the reason")
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--hook", required=True, help=HOOKS_HELP)
    p.add_argument("--checksum", help="Flagger's checksum of the revision")
    p.add_argument("--phase", help="the canary's phase, as Flagger sends it")
    add(p, "--url", help="ask a running service (e.g. http://gitgate.flagger-system) instead of the repo")
    _repo_flags(p)
    _trust_flags(p)
    p.set_defaults(run="check:run")

    p = sub.add_parser("verify", help="what the reconciler would accept, commit by commit, and why")
    p.add_argument("rev", nargs="?", help="commit to check (default: the branch head)")
    _repo_flags(p)
    _trust_flags(p)
    p.set_defaults(run="verify:run")

    p = sub.add_parser("request", help="open (or find) the approval request for a gate; prints its URL")
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--hook", required=True, help=HOOKS_HELP)
    p.add_argument("--checksum", required=True, help="Flagger's checksum of the revision")
    p.add_argument("--phase", help="the canary's phase, as Flagger sent it")
    p.add_argument("--message", help="Flagger's last message about the canary")
    p.add_argument("--expires-in", help="the approval expires this long after the request (e.g. 24h)")
    p.add_argument("--reviewers", help="comma-separated reviewers to ask")
    p.add_argument("--labels", help="comma-separated labels")
    _repo_flags(p)
    _forge_flags(p)
    p.set_defaults(run="request_cmd:run")

    p = sub.add_parser("requests", help="list open requests (local forge)")
    _repo_flags(p)
    p.set_defaults(run="local_requests:list_requests")

    p = sub.add_parser("approve", help="merge a request with a commit signed by you (local forge)")
    p.add_argument("request", help="the request's number")
    add(p, "--signing-key", help="your SSH signing key (private key file)")
    add(p, "--notify", metavar="URL", help="a gitgate service to tell at once (POST URL/hooks/local)")
    _repo_flags(p)
    p.set_defaults(run="local_requests:approve")

    p = sub.add_parser("reject", help="close a request without merging it (local forge)")
    p.add_argument("request", help="the request's number")
    p.add_argument("--reason", help="why, kept in the request's record")
    _repo_flags(p)
    p.set_defaults(run="local_requests:reject")

    p = sub.add_parser("demo", help="the whole story on this machine: repo, keys, service, Flagger, request, approval")
    p.add_argument("--dir", help="keep the demo's files here (default: a temporary folder, removed after)")
    p.set_defaults(run="demo:run")

    p = sub.add_parser("status", help="what a running service answers from, and why")
    add(p, "--url", default="http://127.0.0.1:8080", help="the service")
    p.add_argument("--json", action="store_true", help="print the raw /api/v1/status JSON")
    p.set_defaults(run="status:run")
    return top


def _runner(spec: str) -> Runner:
    """A command's function, imported only when it runs: `gitgate lint` need not load the web
    service, and neither does a process the service starts to parse files (it imports this module)."""
    module, _, name = spec.partition(":")
    return cast(Runner, getattr(importlib.import_module(f"gitgate.commands.{module}"), name))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runner = _runner(args.run)
    try:
        return runner(args)
    except UsageError as e:
        print(f"gitgate {args.command}: {e}", file=sys.stderr)
        return 2
    except GitgateError as e:
        print(f"gitgate {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gitgate schema | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else the exit flush fails too
        return 141  # as a shell reports a command killed by SIGPIPE
