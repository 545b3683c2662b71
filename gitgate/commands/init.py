"""`gitgate init [DIR]`: a new approvals repo, a local operator signing key, and trust roots
kept in the state dir (outside the repo)."""

from __future__ import annotations

import argparse
import getpass
import socket
import subprocess
from importlib import resources
from pathlib import Path

from gitgate import git
from gitgate.errors import GitgateError
from gitgate.service import EMBEDDED_REPO, EMBEDDED_SIGNERS
from gitgate.state import StateDir

EXAMPLE_GATE = """\
# A gate for the Flagger Canary test/podinfo. gitgate answers its webhooks from this file.
# Approve a revision by adding an approval with Flagger's checksum (the 403 answer names it).
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: podinfo
  namespace: test
spec:
  default: closed
  approvals: []
  #  - hook: confirm-promotion
  #    checksum: "85d557f47b"
  #    expires: "2026-12-31T12:00:00Z"
  #    note: load-tested
"""

EXAMPLE_POLICY = """\
# Repo-wide policy for every gate under gates/. A gate's own `default` wins; freezes add up.
apiVersion: gitgate/v1
kind: Policy
spec:
  default: closed
  freeze: []
  #  - start: "0 18 * * FRI"
  #    duration: 63h
  #    timezone: Europe/Berlin
  #    reason: No deploys over the weekend
"""

README = """\
# Approvals

This repo holds the state of gitgate's approval gates for Flagger canaries.

- `gates/<namespace>/<name>.yaml`: one Gate per canary. Approving a revision = adding an approval
  with Flagger's checksum (gitgate's 403 answer names it) in a signed commit.
- `gitgate.yaml`: repo-wide policy (default answer, freeze windows).
- `.github/workflows/` (GitHub) and `.gitlab-ci.yml` (GitLab): `gitgate lint` on every pull/merge
  request (make it a required check), and the job that opens approval requests when gitgate asks
  for one (`--request-via dispatch`). Keep the files of the forge you use; pin the gitgate Action
  to the commit of the release you vetted.

gitgate answers only from commits signed by keys its operators configured, and never from a
rewritten branch. `gitgate lint` checks the files; `gitgate schema` prints their JSON Schema.
"""

CODEOWNERS = """\
# Who must review changes to gates (GitHub/GitLab). Replace with your approvers, then require
# code-owner review in branch protection.
# /gates/ @your-org/release-approvers
"""


# The CI templates (canonical copies in the source tree's workflows/, shipped in the wheel as
# gitgate/templates/workflows/, kept byte-identical by tests/test_delivery_action.py) and where
# `gitgate init` puts them in a new approvals repo.
WORKFLOWS = {
    "github/lint.yml": ".github/workflows/gitgate-lint.yml",
    "github/request.yml": ".github/workflows/gitgate-request.yml",
    "gitlab/gitgate.gitlab-ci.yml": ".gitlab-ci.yml",
}


def _write_workflows(directory: Path) -> None:
    templates = resources.files("gitgate") / "templates" / "workflows"
    for source, target in WORKFLOWS.items():
        dest = directory / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(templates.joinpath(*source.split("/")).read_bytes())


def _operator_key(state: StateDir) -> tuple[Path, str]:
    key = state.keys_dir / "operator"
    if not key.exists():
        state.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        principal = f"{getpass.getuser()}@{socket.gethostname()}"
        try:
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)],
                check=True,
                capture_output=True,
            )
        except FileNotFoundError as e:
            raise GitgateError("ssh-keygen is needed to make a signing key; install openssh-client") from e
        except subprocess.CalledProcessError as e:
            raise GitgateError(f"ssh-keygen failed: {e.stderr.decode().strip()}") from e
    pub = key.with_suffix(".pub").read_text().split()
    return key, f"{pub[2] if len(pub) > 2 else 'operator'} {pub[0]} {pub[1]}"


def init_repo(directory: Path, state: StateDir) -> Path:
    directory = directory.resolve()
    state = StateDir(state.path.resolve())  # paths written into git config must not be relative
    if directory.exists() and any(directory.iterdir()):
        raise GitgateError(f"{directory} exists and is not empty; gitgate init makes a new approvals repo")
    state.ensure()
    key, signer = _operator_key(state)
    principal, keytype, keydata = signer.split(" ")
    signers = state.trust_dir / EMBEDDED_SIGNERS
    state.trust_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    signers.write_text(f'{principal} namespaces="git" {keytype} {keydata}\n')
    (state.trust_dir / EMBEDDED_REPO).write_text(str(directory) + "\n")

    (directory / "gates" / "test").mkdir(parents=True)
    (directory / "gates" / "test" / "podinfo.yaml").write_text(EXAMPLE_GATE)
    (directory / "gitgate.yaml").write_text(EXAMPLE_POLICY)
    (directory / "README.md").write_text(README)
    (directory / "CODEOWNERS").write_text(CODEOWNERS)
    _write_workflows(directory)

    git.run("init", "-q", "-b", "main", str(directory))
    cfg = {
        "gpg.format": "ssh",
        "user.signingkey": str(key),
        "commit.gpgsign": "true",
        "gpg.ssh.allowedSignersFile": str(signers),
    }
    ident = git.run("config", "user.email", cwd=directory, check=False, isolated=False)
    if not ident.stdout.strip():
        cfg.update({"user.name": "gitgate operator", "user.email": principal})
    for name, value in cfg.items():
        git.run("config", name, value, cwd=directory)
    git.run("add", "-A", cwd=directory, isolated=False)
    git.run("commit", "-q", "-S", "-m", "Initial approvals repo (gitgate init)", cwd=directory, isolated=False)
    return directory


def run(args: argparse.Namespace) -> int:
    state = StateDir(Path(args.state_dir))
    directory = init_repo(Path(args.directory), state)
    print(f"Created approvals repo {directory} (branch main), signed by {state.keys_dir / 'operator'}.")
    print(f"Trust roots: {state.trust_dir / EMBEDDED_SIGNERS} (outside the repo).")
    print("Commits in it are signed with that key; run `gitgate serve` to answer Flagger from it.")
    return 0
