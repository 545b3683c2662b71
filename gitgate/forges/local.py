"""The local forge: approval requests in plain git, for the embedded default and for teams without
a forge. A request is its branch plus a record kept in git at refs/gitgate/requests/<number> (a
small history of JSON states: opened, commented, merged, closed). `gitgate approve` merges a
request with a commit signed by the reviewer; neither the requester nor anyone named as the author
or committer of a commit on the request can approve it.

Every change happens under a file lock in the git dir, so any number of callers on this machine
converge on one request per branch. The identities here are the names people give; what gitgate
verifies is the signature on the merge commit, against the service's trust roots.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gitgate import git
from gitgate.errors import GitError, GitgateError
from gitgate.forges.base import Approver, ForgeError, ForgeNotFound, OpenRequest, Review
from gitgate.request import RequestRef, RequestSpec, body, branch_name, change, gate_file, title
from gitgate.timeutil import format_timestamp

RECORDS = "refs/gitgate/requests/"
NO_OBJECT = "0" * 40


@dataclass
class Record:
    number: int
    branch: str
    title: str
    body: str
    requester: str
    created_at: str
    state: str = "open"  # open | merged | closed
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    comments: list[dict[str, str]] = field(default_factory=list)
    head: str = ""
    merged_by: str = ""
    merge_commit: str = ""


class LocalForge:
    name = "local"

    def __init__(self, *, repo: Path, base_branch: str = "main", user: str) -> None:
        proc = git.run("rev-parse", "--absolute-git-dir", cwd=repo, check=False)
        if proc.returncode != 0:
            raise ForgeNotFound(f"{repo} is not a git repository; the local forge works on the approvals repo itself")
        self.git_dir = Path(proc.stdout.decode().strip())
        self.repo = repo
        self.base = base_branch
        self.user = user

    # --- plumbing -----------------------------------------------------------------------------

    def _git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        return git.run("--git-dir", str(self.git_dir), *args, env=env, check=check).stdout.decode().strip()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.git_dir / "gitgate-requests.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _rev(self, ref: str) -> str | None:
        out = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return out or None

    def _records(self) -> list[Record]:
        out = self._git("for-each-ref", "--format=%(objectname)", RECORDS)
        return [self._read(sha) for sha in out.split()]

    def _read(self, sha: str) -> Record:
        raw: Any = json.loads(self._git("show", f"{sha}:request.json"))
        return Record(**raw)

    def _write(self, record: Record, *, create: bool = False) -> None:
        ref = f"{RECORDS}{record.number}"
        blob = self._git_stdin(["hash-object", "-w", "--stdin"], json.dumps(asdict(record), indent=2) + "\n")
        tree = self._git_stdin(["mktree"], f"100644 blob {blob}\trequest.json\n")
        old = None if create else self._rev(ref)
        parents = ["-p", old] if old else []
        commit = self._git_stdin(
            ["commit-tree", tree, *parents], f"request #{record.number}: {record.state}\n", env=self._ident(self.user)
        )
        self._git("update-ref", ref, commit, old or NO_OBJECT)

    def _git_stdin(self, args: list[str], text: str, env: dict[str, str] | None = None) -> str:
        return git.run("--git-dir", str(self.git_dir), *args, stdin=text.encode(), env=env).stdout.decode().strip()

    @staticmethod
    def _ident(who: str) -> dict[str, str]:
        email = who if "@" in who else f"{who}@gitgate.local"
        return {
            "GIT_AUTHOR_NAME": who,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": who,
            "GIT_COMMITTER_EMAIL": email,
        }

    def url(self, number: int) -> str:
        return f"file://{self.repo}#gitgate-request-{number}"

    def _ref(self, record: Record, created: bool) -> RequestRef:
        return RequestRef(self.url(record.number), record.number, record.branch, created)

    def _commit_change(self, spec: RequestSpec, gates_path: str, now: datetime) -> str:
        """One commit on top of the base branch that changes only the gate file."""
        base = self._rev(f"refs/heads/{self.base}")
        if base is None:
            raise ForgeNotFound(f"branch {self.base} not found in {self.repo}")
        path = gate_file(spec, gates_path)
        current = git.run("--git-dir", str(self.git_dir), "cat-file", "blob", f"{base}:{path}", check=False)
        new = change(current.stdout if current.returncode == 0 else None, spec, now)
        blob = (
            git.run("--git-dir", str(self.git_dir), "hash-object", "-w", "--stdin", stdin=new).stdout.decode().strip()
        )
        with tempfile.TemporaryDirectory(prefix="gitgate-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", base, env=env)
            self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self._git("write-tree", env=env)
        return self._git_stdin(["commit-tree", tree, "-p", base], f"{title(spec)}\n", env=self._ident(self.user))

    # --- the Forge protocol -------------------------------------------------------------------

    def open_request(self, spec: RequestSpec, *, gates_path: str, now: datetime) -> RequestRef:
        branch = branch_name(spec)
        with self._locked():
            for record in self._records():
                if record.state == "open" and record.branch == branch:
                    return self._ref(record, created=False)
            commit = self._commit_change(spec, gates_path, now)
            self._git("update-ref", f"refs/heads/{branch}", commit)
            numbers = [r.number for r in self._records()]
            record = Record(
                number=max(numbers, default=0) + 1,
                branch=branch,
                title=title(spec),
                body=body(spec, gates_path, now),
                requester=self.user,
                created_at=format_timestamp(now),
                labels=list(spec.labels),
                reviewers=list(spec.reviewers),
                head=commit,
            )
            self._write(record, create=True)
            return self._ref(record, created=True)

    def close_request(self, branch: str, comment: str) -> bool:
        with self._locked():
            for record in self._records():
                if record.state == "open" and record.branch == branch:
                    self._close(record, comment, self.user)
                    return True
        return False

    def _close(self, record: Record, comment: str, by: str) -> None:
        record.state = "closed"
        record.comments.append({"by": by, "at": format_timestamp(datetime.now().astimezone()), "text": comment})
        self._write(record)
        self._git("update-ref", "-d", f"refs/heads/{record.branch}", check=False)

    def open_requests(self) -> list[OpenRequest]:
        return [
            OpenRequest(self.url(r.number), r.number, r.branch, r.title, r.requester)
            for r in sorted(self._records(), key=lambda r: r.number)
            if r.state == "open"
        ]

    def review(self, commit: str) -> Review | None:
        for record in self._records():
            if record.state == "merged" and record.merge_commit == commit:
                try:
                    idents = self._idents(f"{commit}^1", record.head)
                except GitError as e:  # fail closed: who wrote the request cannot be told
                    raise ForgeError(f"cannot read the commits of request #{record.number}: {e}") from e
                committers = {who for ident in idents for who in ident[1:]}
                committers |= {record.merged_by for ident in idents if self._wrote(record.merged_by, ident)}
                return Review(
                    record.number,
                    self.url(record.number),
                    record.requester,
                    record.head,
                    (Approver(record.merged_by, record.head),),
                    committers=frozenset(committers),
                    unattributed=(),
                )
        return None

    def _idents(self, base: str, head: str) -> list[tuple[str, str, str, str, str]]:
        """(commit, author name, author email, committer name, committer email) of each commit of the
        request: on `head` and not on `base`."""
        out = self._git("log", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce", f"{base}..{head}", "--")
        return [(c, an, ae, cn, ce) for c, an, ae, cn, ce in (line.split("\x00") for line in out.splitlines())]

    @classmethod
    def _wrote(cls, who: str, ident: tuple[str, str, str, str, str]) -> bool:
        """Whether `who` (a name or an email, as people give them here) is the author or committer."""
        names = {who.casefold(), cls._ident(who)["GIT_AUTHOR_EMAIL"].casefold()}
        return any(field.casefold() in names for field in ident[1:])

    def dispatch(self, spec: RequestSpec) -> None:
        raise ForgeError("--request-via dispatch needs --forge github or gitlab; the local forge opens requests itself")

    # --- what only the local forge does -------------------------------------------------------

    def get(self, number: int) -> Record:
        for record in self._records():
            if record.number == number:
                return record
        raise ForgeNotFound(f"no request #{number} in {self.repo}; `gitgate requests` lists the open ones")

    def approve(self, number: int, *, signing_key: Path, now: datetime) -> str:
        """Merge request `number` into the base branch with a commit signed by `signing_key`."""
        with self._locked():
            record = self.get(number)
            if record.state != "open":
                raise ForgeError(f"request #{number} is {record.state}, not open")
            if record.requester == self.user:
                raise ForgeError(f"{self.user} opened request #{number} and cannot approve it; ask another reviewer")
            if not signing_key.is_file():
                raise GitgateError(f"--signing-key {signing_key}: no such key file")
            base = self._rev(f"refs/heads/{self.base}")
            head = self._rev(f"refs/heads/{record.branch}")
            if base is None or head is None:
                raise ForgeNotFound(f"branch {self.base} or {record.branch} is missing in {self.repo}")
            mine = [ident[0] for ident in self._idents(base, head) if self._wrote(self.user, ident)]
            if mine:
                raise ForgeError(
                    f"{self.user} added commits to request #{number} ({', '.join(c[:12] for c in mine)}) and "
                    "cannot approve it; ask another reviewer"
                )
            merged = self._git("merge-tree", "--write-tree", base, head, check=False)
            tree = merged.splitlines()[0] if merged else ""
            if len(tree) != 40 or "CONFLICT" in merged:
                raise ForgeError(f"request #{number} conflicts with {self.base}; reject it and request again")
            message = f"Merge request #{number}: {record.title}\n\nApproved-by: {self.user}\n"
            signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key.resolve()}"]
            try:
                commit = (
                    git.run(
                        "--git-dir",
                        str(self.git_dir),
                        *signing,
                        "commit-tree",
                        "-S",
                        tree,
                        "-p",
                        base,
                        "-p",
                        head,
                        stdin=message.encode(),
                        env=self._ident(self.user),
                    )
                    .stdout.decode()
                    .strip()
                )
            except GitError as e:
                raise GitgateError(f"signing with {signing_key} failed: {e}") from e
            self._advance_base(base, commit)
            record.state, record.merged_by, record.merge_commit, record.head = "merged", self.user, commit, head
            record.comments.append({"by": self.user, "at": format_timestamp(now), "text": "approved and merged"})
            self._write(record)
            self._git("update-ref", "-d", f"refs/heads/{record.branch}", check=False)
            return commit

    def reject(self, number: int, *, reason: str) -> None:
        with self._locked():
            record = self.get(number)
            if record.state != "open":
                raise ForgeError(f"request #{number} is {record.state}, not open")
            self._close(record, reason or "rejected", self.user)

    def _advance_base(self, old: str, new: str) -> None:
        """Move the base branch; in a checkout of it, bring the working tree along safely."""
        head_ref = self._git("symbolic-ref", "-q", "HEAD", check=False)
        bare = self._git("rev-parse", "--is-bare-repository") == "true"
        if not bare and head_ref == f"refs/heads/{self.base}":
            top = git.run("rev-parse", "--show-toplevel", cwd=self.repo, check=False).stdout.decode().strip()
            proc = git.run("merge", "--ff-only", "-q", new, cwd=top or self.repo, check=False, isolated=False)
            if proc.returncode != 0:
                raise ForgeError(f"could not fast-forward the checkout {top}: {proc.stderr.decode().strip()[-200:]}")
            return
        self._git("update-ref", f"refs/heads/{self.base}", new, old)


def default_user() -> str:
    """Who is asking: $GITGATE_USER, else git's user.email, else the login name."""
    if os.environ.get("GITGATE_USER"):
        return os.environ["GITGATE_USER"]
    proc = git.run("config", "user.email", check=False, isolated=False)
    return proc.stdout.decode().strip() or os.environ.get("USER", "operator")
