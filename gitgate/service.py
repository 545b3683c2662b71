"""The composition root: settings -> state dir, trust roots, clone, reconciler. Used by `serve`,
`verify` and `check`, so each sees the repo exactly as the others do."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitgate.errors import GitgateError, InvalidFiles, Problem, TrustError, UsageError
from gitgate.forges.base import REGISTRY, Forge, ForgeError, approved_by_others
from gitgate.forges.local import LocalForge, default_user
from gitgate.git import Mirror, run, token_env
from gitgate.metrics import Metrics
from gitgate.model import Snapshot
from gitgate.parse_store import ParseStore
from gitgate.reconcile import Evaluation, Reconciler, ReviewCheck, evaluate
from gitgate.settings import is_url
from gitgate.snapshot import SnapshotBuilder
from gitgate.state import StateDir
from gitgate.trust import TrustRoots, VerifyMode, check_allowed_signers, load_gpg_roots

log = logging.getLogger("gitgate")
DEFAULT_REPO = "./approvals"
EMBEDDED_SIGNERS = "allowed_signers"
EMBEDDED_REPO = "repo"


@dataclass(frozen=True)
class RepoSettings:
    repo: str  # a URL, or an absolute local path
    branch: str
    path: str
    state: StateDir
    is_local: bool


def repo_settings(args: argparse.Namespace) -> RepoSettings:
    repo = str(args.repo)
    local = not is_url(repo)
    if local:
        repo = str(Path(repo).expanduser().resolve())
    path = str(args.path).strip("/")
    if not path or ".." in path.split("/"):
        raise UsageError(f"--path {args.path!r}: name a folder inside the repo, e.g. gates or clusters/prod/gates")
    return RepoSettings(repo, str(args.branch), path, StateDir(Path(args.state_dir).resolve()), local)


def verify_mode(text: str) -> VerifyMode:
    try:
        return VerifyMode(text)
    except ValueError:
        raise UsageError(f"--verify {text!r}: use all, head or off") from None


def embedded_trust(state: StateDir, repo: str) -> Path | None:
    """The allowed_signers that `gitgate init` wrote for this very repo, if any."""
    signers = state.trust_dir / EMBEDDED_SIGNERS
    owner = state.trust_dir / EMBEDDED_REPO
    try:
        if signers.is_file() and owner.read_text().strip() == repo:
            return signers
    except OSError:
        return None
    return None


def trust_roots(args: argparse.Namespace, rs: RepoSettings, gnupg_home: Path) -> TrustRoots:
    """The configured trust roots. GPG keys go into a private keyring at `gnupg_home`, made anew."""
    mode = verify_mode(args.verify)
    if mode is VerifyMode.OFF:
        log.warning("--verify off: answers come from UNVERIFIED commits of %s", rs.repo)
        return TrustRoots(mode)
    ssh = Path(args.trust_ssh).resolve() if args.trust_ssh else None
    gpg = Path(args.trust_gpg).resolve() if args.trust_gpg else None
    if ssh is None and gpg is None:
        ssh = embedded_trust(rs.state, rs.repo)
        if ssh is None:
            raise TrustError(
                f"no trust roots for {rs.repo}: add --trust-ssh FILE (an OpenSSH allowed_signers file) "
                "or --trust-gpg FILE|DIR (armored public keys); or --verify off to run UNVERIFIED"
            )
    if ssh is not None:
        check_allowed_signers(ssh)
    fprs: frozenset[str] = frozenset()
    if gpg is not None:
        fprs = load_gpg_roots(gpg, gnupg_home)
    else:
        gnupg_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return TrustRoots(mode, ssh, fprs, gnupg_home)


def git_credentials(args: argparse.Namespace) -> dict[str, str]:
    """--token (or GITHUB_TOKEN / GITLAB_TOKEN) authenticates https fetches, as an HTTP header."""
    token = getattr(args, "token", None) or os.environ.get("GITHUB_TOKEN") or os.environ.get("GITLAB_TOKEN")
    return token_env(token)


def review_check(forge: Forge, required: int, approvers: frozenset[str] | None) -> ReviewCheck:
    """--require-approvals: how each new commit came to be, asked of the forge."""

    def check(commit: str) -> tuple[bool | None, str]:
        try:
            review = forge.review(commit)
        except ForgeError as e:
            return None, f"could not ask {forge.name} how it was reviewed: {e}"
        if review is None:
            return False, "not the merge of a reviewed request (pushed directly, bypassing review)"
        ok, why = approved_by_others(review, required=required, approvers=approvers)
        return ok, f"from {review.url}: {why}"

    return check


def review_settings(args: argparse.Namespace) -> tuple[int, frozenset[str] | None]:
    try:
        required = int(args.require_approvals or 0)
    except ValueError:
        raise UsageError(f"--require-approvals {args.require_approvals!r}: give a whole number") from None
    if required < 0:
        raise UsageError("--require-approvals must be 0 or more")
    approvers = frozenset(a.strip() for a in (args.approvers or "").split(",") if a.strip()) or None
    if approvers is not None and required == 0:
        raise UsageError("--approvers only matters with --require-approvals N")
    if required and not getattr(args, "forge", None):
        raise UsageError("--require-approvals needs --forge: reviews are read from the forge")
    return required, approvers


def build_reconciler(
    args: argparse.Namespace, rs: RepoSettings, metrics: Metrics, *, review: ReviewCheck | None = None
) -> Reconciler:
    rs.state.ensure()
    trust = trust_roots(args, rs, rs.state.gnupg_dir)
    mirror = Mirror(rs.state.mirror_dir, env=git_credentials(args))
    return Reconciler(
        repo=rs.repo,
        branch=rs.branch,
        mirror=mirror,
        state=rs.state,
        trust=trust,
        builder=SnapshotBuilder(mirror, rs.path, store=ParseStore(rs.state.parsed_file, rs.path)),
        metrics=metrics,
        trust_from=args.trust_from,
        review=review,
    )


@dataclass
class Inspection:
    """The repo as the service would see it now, computed without touching the service's state."""

    head: str
    base: str | None
    evaluation: Evaluation
    problems: list[Problem]
    snapshot: Snapshot | None  # what the service would answer from (None: not ready)
    answered_from: str  # "head", "last verified" or ""


def inspect(args: argparse.Namespace, rev: str | None = None) -> Inspection:
    """Read the repo read-only (a local checkout in place, a URL into a temporary clone), check
    `rev` (default: the branch head) as the reconciler would, and say what would be served."""
    rs = repo_settings(args)
    with tempfile.TemporaryDirectory(prefix="gitgate-") as tmp:
        trust = trust_roots(args, rs, Path(tmp) / "gnupg")
        if rs.is_local:
            proc = run("rev-parse", "--absolute-git-dir", cwd=rs.repo, check=False)
            if proc.returncode != 0:
                raise GitgateError(f"--repo {rs.repo}: not a git repository")
            mirror = Mirror(Path(proc.stdout.decode().strip()))
            ref = f"refs/heads/{rs.branch}"
        else:
            mirror = Mirror(Path(tmp) / "repo.git", env=git_credentials(args))
            mirror.create(rs.repo)
            mirror.fetch(rs.branch)
            ref = f"refs/remotes/origin/{rs.branch}"
        head = mirror.rev(rev or ref)
        if head is None:
            raise GitgateError(f"{rev or 'branch ' + rs.branch} not found in {rs.repo}")
        verified = None
        if (rs.state.path / "state.json").exists():
            verified = rs.state.load()
        if verified is not None and (verified.repo, verified.branch) != (rs.repo, rs.branch):
            verified = None
        base = verified.commit if verified else None
        ev = evaluate(mirror, trust, base=base, head=head, trust_from=args.trust_from)
        builder = SnapshotBuilder(mirror, rs.path)
        problems: list[Problem] = []
        snapshot = None
        answered = ""
        verified_flag = trust.mode is not VerifyMode.OFF
        if ev.refusal is None:
            try:
                snapshot, answered = builder.build(head, verified=verified_flag), "head"
            except InvalidFiles as e:
                problems = e.problems
        if snapshot is None and base is not None and mirror.rev(base):
            snapshot, answered = builder.build(base, verified=verified_flag), "last verified"
        return Inspection(head, base, ev, problems, snapshot, answered)


def make_forge(args: argparse.Namespace, rs: RepoSettings, *, user: str | None = None) -> Forge:
    """The forge named by --forge, built from the flags. GitHub and GitLab load only when asked for."""
    kind = getattr(args, "forge", None) or "local"
    if kind not in REGISTRY:
        raise UsageError(f"--forge {kind!r}: use one of {', '.join(REGISTRY)}")
    if kind == "local":
        if not rs.is_local:
            raise UsageError(
                "--forge local works on a local approvals repo; give --repo a path, or use --forge github|gitlab"
            )
        return LocalForge(repo=Path(rs.repo), base_branch=rs.branch, user=user or default_user())
    if not args.forge_repo:
        raise UsageError(f"--forge {kind} needs --forge-repo ({'owner/name' if kind == 'github' else 'group/project'})")
    env_token = os.environ.get("GITHUB_TOKEN" if kind == "github" else "GITLAB_TOKEN")
    token = args.token or env_token
    if not token:
        raise UsageError(
            f"--forge {kind} needs a token: --token, or {'GITHUB_TOKEN' if kind == 'github' else 'GITLAB_TOKEN'}"
        )
    module, _, name = REGISTRY[kind].partition(":")
    factory = getattr(importlib.import_module(module), name)
    key = "repo" if kind == "github" else "project"
    options: dict[str, object] = {key: args.forge_repo, "token": token, "base_branch": rs.branch}
    if args.api_url:
        options["api_url"] = args.api_url
    forge: Forge = factory(**options)
    return forge
