"""A stateful fake GitLab (REST API v4) on 127.0.0.1, for the GitLab adapter and its tests.

It serves exactly the calls gitgate's adapter makes through unmodified python-gitlab, plus what a
test needs to play reviewers (approve and merge through the real endpoints, as another user picked
by token). Its data lives in a real bare git repo: branches, commits and merges are real git
objects, and the commits it makes (API commits and merge commits, as GitLab signs web commits) are
signed with the GPG key it is given (carol's in the tests).

Shapes follow GitLab's REST API documentation (docs.gitlab.com/api: projects, users, branches,
repository files, commits, merge requests, merge request approvals, notes, pipelines, pipeline
triggers). Every response is JSON with `Content-Type: application/json` and is checked against
SHAPES (the documented fields of that endpoint's answer, with their JSON types) before it is sent;
a violation is recorded in `violations` and answered with a 500, so a test cannot pass on a shape
GitLab would not send.

What GitLab does not say in the approvals API, this fake records and exposes the way newer GitLab
versions do: each approval keeps the merge request's head at the time (`Approval.head`), and the
answer carries `approved_by[].approved_at`; with the MR's versions (one per push, with
`head_commit_sha` and `created_at`) a client can tell which head an approval was given on. Pass
`approved_at=False` to answer as older GitLab versions do (no timestamp), and
`reset_approvals_on_push=True` for a project that drops approvals on every push (GitLab Premium).

Commit emails: every user's email is confirmed and public (`GET /users?search=<email>` finds them by
it, as GitLab finds users by public email); `GET /user` shows the token's user its own emails.
`committers_approval=False` turns on "Prevent approvals by users who add commits"
(`merge_requests_disable_committers_approval`): a user whose email is the committer email of a commit
of the merge request cannot approve it, as GitLab decides. `push_as()` pushes a commit with any
identity, as someone's own git would.

Faults: `fail(method, path_regex, status, body, headers, times, delay)` answers the next `times`
matching requests (-1: all of them) with that status (after `delay` seconds; with status None, the
request is then served normally: a slow answer). `hang()` accepts matching requests and answers
nothing until `heal()` (which also drops every fault): a GitLab that stopped answering. `hits()`
counts requests as they arrive, hung or not.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import waitress
from flask import Flask, Response, request

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ZERO = "0" * 40
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


# --- response shapes (from GitLab's REST API docs) -------------------------------------------------

NULL = type(None)
SHA = "sha"  # 40 hex digits
TIME = "time"  # ISO 8601 with an offset, as GitLab writes them
URL = "url"  # an absolute http(s) URL


class Opt:
    """A field a documented answer may leave out (present only in some GitLab versions)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


class OneOf:
    """Any one of several object shapes (error bodies: {"message": ...} or {"error": ...})."""

    def __init__(self, *specs: Any) -> None:
        self.specs = specs


_SHA = re.compile(r"[0-9a-f]{40}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def check_shape(value: Any, spec: Any, where: str = "$") -> list[str]:
    """Every way `value` differs from `spec` (types, dict of fields, [item spec], tuple of alternatives,
    a set of allowed strings, SHA/TIME/URL, Opt, OneOf)."""
    if isinstance(spec, OneOf):
        tried = [check_shape(value, s, where) for s in spec.specs]
        return [] if any(not t for t in tried) else min(tried, key=len)
    if isinstance(spec, tuple):
        tried = [check_shape(value, s, where) for s in spec]
        return [] if any(not t for t in tried) else [f"{where}: {value!r} matches none of its allowed shapes"]
    if spec is NULL:
        return [] if value is None else [f"{where}: expected null, got {type(value).__name__}"]
    if spec == SHA:
        return (
            []
            if isinstance(value, str) and _SHA.fullmatch(value)
            else [f"{where}: expected a commit sha, got {value!r}"]
        )
    if spec == TIME:
        return (
            []
            if isinstance(value, str) and _TIME.fullmatch(value)
            else [f"{where}: expected a timestamp, got {value!r}"]
        )
    if spec == URL:
        ok = isinstance(value, str) and value.startswith(("http://", "https://"))
        return [] if ok else [f"{where}: expected a URL, got {value!r}"]
    if isinstance(spec, (set, frozenset)):
        return [] if value in spec else [f"{where}: {value!r} is not one of {sorted(spec)}"]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        problems = []
        for key, sub in spec.items():
            if isinstance(sub, Opt):
                if key in value:
                    problems += check_shape(value[key], sub.spec, f"{where}.{key}")
            elif key not in value:
                problems.append(f"{where}: missing {key!r}")
            else:
                problems += check_shape(value[key], sub, f"{where}.{key}")
        return problems
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in check_shape(item, spec[0], f"{where}[{i}]")]
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if spec is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if isinstance(spec, type):
        return [] if isinstance(value, spec) else [f"{where}: expected {spec.__name__}, got {type(value).__name__}"]
    raise TypeError(f"bad shape spec at {where}: {spec!r}")


USER = {"id": int, "username": str, "name": str, "state": str, "avatar_url": (str, NULL), "web_url": URL}
COMMIT = {
    "id": SHA,
    "short_id": str,
    "title": str,
    "message": str,
    "author_name": str,
    "author_email": str,
    "authored_date": TIME,
    "committer_name": str,
    "committer_email": str,
    "committed_date": TIME,
    "created_at": TIME,
    "parent_ids": [SHA],
    "web_url": URL,
    "trailers": dict,
}
MR_COMMIT = {
    "id": SHA,
    "short_id": str,
    "title": str,
    "message": str,
    "author_name": str,
    "author_email": str,
    "authored_date": TIME,
    "committer_name": str,
    "committer_email": str,
    "committed_date": TIME,
    "created_at": TIME,
    "web_url": Opt(URL),
}
CURRENT_USER = {**USER, "email": str, "commit_email": str, "public_email": (str, NULL)}
COMMIT_CREATED = {
    **COMMIT,
    "stats": {"additions": int, "deletions": int, "total": int},
    "status": (str, NULL),
    "project_id": int,
    "last_pipeline": (dict, NULL),
}
BRANCH = {
    "name": str,
    "merged": bool,
    "protected": bool,
    "default": bool,
    "developers_can_push": bool,
    "developers_can_merge": bool,
    "can_push": bool,
    "web_url": URL,
    "commit": COMMIT,
}
FILE = {
    "file_name": str,
    "file_path": str,
    "size": int,
    "encoding": {"base64"},
    "content": str,
    "content_sha256": str,
    "ref": str,
    "blob_id": SHA,
    "commit_id": SHA,
    "last_commit_id": SHA,
    "execute_filemode": bool,
}
PROJECT = {
    "id": int,
    "description": (str, NULL),
    "name": str,
    "name_with_namespace": str,
    "path": str,
    "path_with_namespace": str,
    "created_at": TIME,
    "default_branch": str,
    "visibility": {"private", "internal", "public"},
    "web_url": URL,
    "http_url_to_repo": URL,
    "ssh_url_to_repo": str,
    "archived": bool,
    "empty_repo": bool,
    "namespace": {"id": int, "name": str, "path": str, "kind": {"group", "user"}, "full_path": str},
    "permissions": {
        "project_access": ({"access_level": int, "notification_level": int}, NULL),
        "group_access": ({"access_level": int, "notification_level": int}, NULL),
    },
}
MR = {
    "id": int,
    "iid": int,
    "project_id": int,
    "title": str,
    "description": (str, NULL),
    "state": {"opened", "closed", "merged", "locked"},
    "created_at": TIME,
    "updated_at": TIME,
    "merged_by": (USER, NULL),
    "merge_user": (USER, NULL),
    "merged_at": (TIME, NULL),
    "closed_by": (USER, NULL),
    "closed_at": (TIME, NULL),
    "target_branch": str,
    "source_branch": str,
    "user_notes_count": int,
    "upvotes": int,
    "downvotes": int,
    "author": USER,
    "assignee": (USER, NULL),
    "assignees": [USER],
    "reviewers": [USER],
    "source_project_id": int,
    "target_project_id": int,
    "labels": [str],
    "draft": bool,
    "work_in_progress": bool,
    "milestone": (dict, NULL),
    "merge_when_pipeline_succeeds": bool,
    "merge_status": str,
    "detailed_merge_status": str,
    "sha": SHA,
    "merge_commit_sha": (SHA, NULL),
    "squash_commit_sha": (SHA, NULL),
    "discussion_locked": (bool, NULL),
    "should_remove_source_branch": (bool, NULL),
    "force_remove_source_branch": (bool, NULL),
    "reference": str,
    "references": {"short": str, "relative": str, "full": str},
    "web_url": URL,
    "time_stats": {
        "time_estimate": int,
        "total_time_spent": int,
        "human_time_estimate": (str, NULL),
        "human_total_time_spent": (str, NULL),
    },
    "squash": bool,
    "squash_on_merge": bool,
    "task_completion_status": {"count": int, "completed_count": int},
    "has_conflicts": bool,
    "blocking_discussions_resolved": bool,
}
MR_DETAIL = {
    **MR,
    "subscribed": bool,
    "changes_count": (str, NULL),
    "latest_build_started_at": (TIME, NULL),
    "latest_build_finished_at": (TIME, NULL),
    "first_deployed_to_production_at": (TIME, NULL),
    "pipeline": (dict, NULL),
    "head_pipeline": (dict, NULL),
    "diff_refs": ({"base_sha": SHA, "head_sha": SHA, "start_sha": SHA}, NULL),
    "merge_error": (str, NULL),
    "user": {"can_merge": bool},
}
APPROVALS = {
    "id": int,
    "iid": int,
    "project_id": int,
    "title": str,
    "description": (str, NULL),
    "state": str,
    "created_at": TIME,
    "updated_at": TIME,
    "merge_status": str,
    "approved": bool,
    "approvals_required": int,
    "approvals_left": int,
    "approved_by": [{"user": USER, "approved_at": Opt(TIME)}],
}
PROJECT_APPROVALS = {
    "approvers": list,
    "approver_groups": list,
    "approvals_before_merge": int,
    "reset_approvals_on_push": bool,
    "selective_code_owner_removals": bool,
    "disable_overriding_approvers_per_merge_request": bool,
    "merge_requests_author_approval": bool,
    "merge_requests_disable_committers_approval": bool,
    "require_password_to_approve": bool,
}
VERSION = {
    "id": int,
    "head_commit_sha": SHA,
    "base_commit_sha": SHA,
    "start_commit_sha": SHA,
    "created_at": TIME,
    "merge_request_id": int,
    "state": str,
    "real_size": str,
    "patch_id_sha": (str, NULL),
}
NOTE = {
    "id": int,
    "type": (str, NULL),
    "body": str,
    "attachment": (str, NULL),
    "author": USER,
    "created_at": TIME,
    "updated_at": TIME,
    "system": bool,
    "noteable_id": int,
    "noteable_type": {"MergeRequest"},
    "noteable_iid": int,
    "project_id": int,
    "resolvable": bool,
    "confidential": bool,
    "internal": bool,
}
PIPELINE = {
    "id": int,
    "iid": int,
    "project_id": int,
    "sha": SHA,
    "ref": str,
    "status": str,
    "source": str,
    "created_at": TIME,
    "updated_at": TIME,
    "web_url": URL,
    "before_sha": SHA,
    "tag": bool,
    "yaml_errors": (str, NULL),
    "user": USER,
    "started_at": (TIME, NULL),
    "finished_at": (TIME, NULL),
    "committed_at": (TIME, NULL),
    "duration": (int, NULL),
    "queued_duration": (float, NULL),
    "coverage": (str, NULL),
    "detailed_status": {"icon": str, "text": str, "label": str, "group": str, "has_details": bool},
}
PIPELINE_BASIC = {
    "id": int,
    "iid": int,
    "project_id": int,
    "sha": SHA,
    "ref": str,
    "status": str,
    "source": str,
    "created_at": TIME,
    "updated_at": TIME,
    "web_url": URL,
}
PIPELINE_VARIABLE = {"key": str, "variable_type": {"env_var", "file"}, "value": str}
ERROR = OneOf({"message": (str, list, dict)}, {"error": str})

SHAPES: dict[str, Any] = {
    "project": PROJECT,
    "users": [USER],
    "current_user": CURRENT_USER,
    "mr_commits": [MR_COMMIT],
    "branch": BRANCH,
    "file": FILE,
    "commit_created": COMMIT_CREATED,
    "merge_requests": [MR],
    "merge_request": MR_DETAIL,
    "approvals": APPROVALS,
    "project_approvals": PROJECT_APPROVALS,
    "versions": [VERSION],
    "note": NOTE,
    "notes": [NOTE],
    "pipeline": PIPELINE,
    "pipelines": [PIPELINE_BASIC],
    "pipeline_variables": [PIPELINE_VARIABLE],
    "error": ERROR,
    "empty": NULL,
}


# --- state ---------------------------------------------------------------------------------------


@dataclass
class User:
    id: int
    username: str
    name: str
    role: int | None  # access level in the project; None = not a member
    email: str = ""


@dataclass
class Token:
    user: User
    scopes: tuple[str, ...] = ("api",)


@dataclass
class Version:
    id: int
    head: str
    base: str
    start: str
    created_at: str
    commits: list[str]


@dataclass
class Approval:
    user: User
    approved_at: str
    head: str  # the merge request's head when the approval was given


@dataclass
class Note:
    id: int
    body: str
    author: User
    created_at: str
    system: bool = False


@dataclass
class MergeRequest:
    id: int
    iid: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    author: User
    created_at: str
    updated_at: str
    sha: str
    labels: list[str] = field(default_factory=list)
    reviewers: list[User] = field(default_factory=list)
    state: str = "opened"
    merged_by: User | None = None
    merged_at: str | None = None
    closed_by: User | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    force_remove_source_branch: bool = False
    should_remove_source_branch: bool | None = None
    versions: list[Version] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


@dataclass
class Pipeline:
    id: int
    iid: int
    ref: str
    sha: str
    source: str
    user: User
    created_at: str
    variables: list[tuple[str, str]]


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    body: Any
    headers: dict[str, str]
    times: int
    delay: float
    release: threading.Event | None = None  # a hang: hold the request until this is set (heal())


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def message(status: int, text: str = "") -> ApiError:
    names = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
    }
    base = f"{status} {names.get(status, '')}".strip()
    return ApiError(status, {"message": f"{base} - {text}" if text and status == 403 else text or base})


# --- the server ----------------------------------------------------------------------------------


class FakeGitLab:
    """One project (`acme/approvals`, id 1, private, default branch main, main protected) and its users.

    Users and tokens (`<name>-token`, scope api): alice (Developer: gitgate's bot), bob and carol
    (Maintainers), dave (Developer), rita (Reporter); eve is not a member; `alice-readonly` has only
    the read_api scope.
    """

    def __init__(
        self,
        root: Path,
        *,
        project: str = "acme/approvals",
        signing_key: str = "",
        gnupg_home: str = "",
        prefix: str = "",
        max_per_page: int = 100,
        approved_at: bool = True,
        reset_approvals_on_push: bool = False,
        author_approval: bool = False,
        committers_approval: bool = True,
        pipeline_variables_role: int = DEVELOPER,
        trigger_tokens: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.project_path = project
        self.git_dir = root / (project.replace("/", "-") + ".git")
        self.signing_key = signing_key
        self.gnupg_home = gnupg_home
        self.prefix = prefix.rstrip("/")
        self.max_per_page = max_per_page
        self.approved_at = approved_at
        self.reset_approvals_on_push = reset_approvals_on_push
        self.author_approval = author_approval
        self.committers_approval = committers_approval
        self.pipeline_variables_role = pipeline_variables_role
        self.trigger_tokens = set(trigger_tokens)
        self.default_branch = "main"
        self.protected = {"main"}
        self.lock = threading.RLock()
        self.violations: list[str] = []
        self.unhandled: list[str] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self._faults: list[Fault] = []
        self.arrivals: list[tuple[str, str]] = []  # (method, path after /api/v4) as they arrive
        self.held = 0  # requests hung right now
        self._stop = threading.Event()
        self._last_time = datetime.now(UTC) - timedelta(seconds=1)
        self._ids = {"mr": 100, "note": 500, "version": 700, "pipeline": 900}
        self.users = {
            u.username: u
            for u in [
                User(1, "alice", "Alice Bot", DEVELOPER),
                User(2, "bob", "Bob Reviewer", MAINTAINER),
                User(3, "carol", "Carol Maintainer", MAINTAINER),
                User(4, "dave", "Dave Developer", DEVELOPER),
                User(5, "rita", "Rita Reporter", REPORTER),
                User(6, "eve", "Eve Outsider", None),
            ]
        }
        for user in self.users.values():
            user.email = f"{user.username}@example.test"
        self.tokens = {f"{name}-token": Token(user) for name, user in self.users.items()}
        self.tokens["alice-readonly"] = Token(self.users["alice"], ("read_api",))
        self.mrs: dict[int, MergeRequest] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.created_at = self._now()
        self._init_repo()
        self.app = self._make_app()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sockets: dict[int, Any] = {}
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGitLab:
        self._server = waitress.create_server(
            self.app, map=self._sockets, host="127.0.0.1", port=0, threads=16, ident="fake-gitlab"
        )
        self.port = self._server.effective_port
        server, sockets, stop = self._server, self._sockets, self._stop

        def loop() -> None:
            while not stop.is_set():
                server.asyncore.loop(timeout=0.05, map=sockets, use_poll=True, count=1)

        self._thread = threading.Thread(target=loop, name="fake-gitlab", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._server is not None:
            self._server.task_dispatcher.shutdown()
            for dispatcher in list(self._sockets.values()):
                dispatcher.close()

    def __enter__(self) -> FakeGitLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What a client gives as the GitLab address (python-gitlab adds /api/v4)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def web_url(self) -> str:
        return f"{self.url}/{self.project_path}"

    def fail(
        self,
        method: str,
        path: str,
        status: int | None = 500,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests (-1: all) whose method matches (`*`: any) and whose path (after
        /api/v4, as sent, percent-encoded) matches the regex `path` with `status` and `body` (default:
        GitLab's error body)."""
        if body is None and status is not None:
            body = message(status).body if status != 500 else {"message": "500 Internal Server Error"}
        with self.lock:
            self._faults.append(
                Fault(method.upper(), re.compile(path), status, body, dict(headers or {}), times, delay)
            )

    def hang(self, method: str, path: str, *, times: int = 1, then: int | None = None) -> None:
        """Accept the next `times` matching requests (-1: all) and answer nothing until heal(); then
        answer `then` (a status), or with None serve them as if nothing had happened."""
        body = None if then is None else message(then).body
        with self.lock:
            self._faults.append(Fault(method.upper(), re.compile(path), then, body, {}, times, 0.0, threading.Event()))

    def heal(self) -> None:
        """GitLab is well again: drop every fault and let hung requests go on."""
        with self.lock:
            for fault in self._faults:
                if fault.release is not None:
                    fault.release.set()
            self._faults.clear()

    def hits(self, method: str | None = None, path: str = "") -> int:
        """How many requests matching `method` and the regex `path` have arrived so far."""
        with self.lock:
            return sum(1 for m, p in self.arrivals if (method is None or m == method.upper()) and re.search(path, p))

    def requests_to(self, method: str, path: str) -> list[int]:
        """The statuses answered to requests matching `method` and the regex `path`."""
        with self.lock:
            return [s for m, p, s in self.log if m == method.upper() and re.search(path, p)]

    # --- git --------------------------------------------------------------------------------------

    def git(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args],
            input=stdin,
            capture_output=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode().strip()

    def rev(self, ref: str) -> str | None:
        """A branch name or commit -> its commit id, or None."""
        for candidate in (f"refs/heads/{ref}", ref):
            out = self.git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False)
            if out:
                return out
        return None

    def show(self, ref: str, path: str) -> bytes | None:
        sha = self.rev(ref)
        if sha is None:
            return None
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "cat-file", "blob", f"{sha}:{path}"],
            capture_output=True,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def _init_repo(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.git_dir)], check=True)
        commit = self._write_commit(
            None,
            [{"action": "create", "file_path": "README.md", "content": "approvals\n"}],
            "initial",
            self.users["carol"],
        )
        self.git("update-ref", "refs/heads/main", commit, ZERO)

    def _ident(self, user: User) -> dict[str, str]:
        env = {
            "GIT_AUTHOR_NAME": user.name,
            "GIT_AUTHOR_EMAIL": user.email,
            "GIT_COMMITTER_NAME": user.name,
            "GIT_COMMITTER_EMAIL": user.email,
        }
        if self.gnupg_home:
            env["GNUPGHOME"] = self.gnupg_home
        return env

    def _commit_tree(self, tree: str, parents: list[str], text: str, user: User) -> str:
        sign = [f"-S{self.signing_key}"] if self.signing_key else []
        args = ["commit-tree", tree, *[a for p in parents for a in ("-p", p)], *sign]
        return self.git(*args, env=self._ident(user), stdin=text.encode())

    def _write_commit(self, parent: str | None, actions: list[dict[str, Any]], text: str, user: User) -> str:
        """One commit on `parent` applying commits-API `actions`; raises ApiError like GitLab on bad ones."""
        paths = set(self.git("ls-tree", "-r", "--name-only", parent).splitlines()) if parent else set()
        with tempfile.TemporaryDirectory(prefix="fake-gitlab-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git("read-tree", parent, env=env)
            for action in actions:
                kind, path = action.get("action"), action.get("file_path")
                if not isinstance(path, str) or not path:
                    raise ApiError(400, {"error": "actions[file_path] is missing"})
                if kind == "create" and path in paths:
                    raise ApiError(400, {"message": "A file with this name already exists"})
                if kind in ("update", "delete") and path not in paths:
                    raise ApiError(400, {"message": "A file with this name doesn't exist"})
                if kind in ("create", "update"):
                    content = action.get("content") or ""
                    data = base64.b64decode(content) if action.get("encoding") == "base64" else content.encode()
                    blob = self.git("hash-object", "-w", "--stdin", stdin=data)
                    self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
                    paths.add(path)
                elif kind == "delete":
                    self.git("update-index", "--force-remove", path, env=env)
                    paths.discard(path)
                else:
                    raise ApiError(400, {"error": "actions[action] does not have a valid value"})
            tree = self.git("write-tree", env=env)
        return self._commit_tree(tree, [parent] if parent else [], text, user)

    def _set_branch(self, branch: str, new: str, old: str | None) -> None:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "update-ref", f"refs/heads/{branch}", new, old or ZERO],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ApiError(400, {"message": f"Could not update {branch}. Please refresh and try again."})
        self._pushed(branch, new)

    def _pushed(self, branch: str, head: str) -> None:
        """A new head on `branch`: open merge requests from it get a new version (and lose approvals, when
        the project resets them on push)."""
        for mr in self.mrs.values():
            if mr.state == "opened" and mr.source_branch == branch and mr.sha != head:
                mr.sha = head
                mr.versions.append(self._version(mr))
                mr.updated_at = self._now()
                if self.reset_approvals_on_push:
                    mr.approvals.clear()

    def _version(self, mr: MergeRequest) -> Version:
        start = self.rev(mr.target_branch) or mr.sha
        base = self.git("merge-base", start, mr.sha, check=False) or start
        commits = self.git("rev-list", f"{start}..{mr.sha}").split()
        return Version(self._next("version"), mr.sha, base, start, self._now(), commits)

    # --- small things -------------------------------------------------------------------------------

    def _now(self) -> str:
        """GitLab's timestamps (milliseconds, UTC), strictly increasing so that order is never a tie."""
        with self.lock:
            moment = max(datetime.now(UTC), self._last_time + timedelta(milliseconds=1))
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if moment <= self._last_time:
                moment = self._last_time + timedelta(milliseconds=1)
            self._last_time = moment
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _user_json(self, user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.url}/{user.username}",
        }

    def _commit_json(self, sha: str) -> dict[str, Any]:
        fmt = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        fields = self.git("show", "-s", f"--format={fmt}", sha).split("\x00")
        text = fields[8]
        return {
            "id": fields[0],
            "short_id": fields[0][:8],
            "title": text.splitlines()[0] if text else "",
            "message": text + "\n" if text and not text.endswith("\n") else text,
            "author_name": fields[2],
            "author_email": fields[3],
            "authored_date": fields[4],
            "committer_name": fields[5],
            "committer_email": fields[6],
            "committed_date": fields[7],
            "created_at": fields[7],
            "parent_ids": fields[1].split(),
            "web_url": f"{self.web_url}/-/commit/{fields[0]}",
            "trailers": {},
            "extended_trailers": {},
        }

    def _branch_json(self, name: str, sha: str, user: User) -> dict[str, Any]:
        protected = name in self.protected
        return {
            "name": name,
            "merged": False,
            "protected": protected,
            "default": name == self.default_branch,
            "developers_can_push": not protected,
            "developers_can_merge": not protected,
            "can_push": (user.role or 0) >= (MAINTAINER if protected else DEVELOPER),
            "web_url": f"{self.web_url}/-/tree/{name}",
            "commit": self._commit_json(sha),
        }

    def _mr_json(self, mr: MergeRequest, viewer: User | None = None, *, detail: bool = True) -> dict[str, Any]:
        reference = f"!{mr.iid}"
        out: dict[str, Any] = {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": 1,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": mr.created_at,
            "updated_at": mr.updated_at,
            "merged_by": self._user_json(mr.merged_by) if mr.merged_by else None,
            "merge_user": self._user_json(mr.merged_by) if mr.merged_by else None,
            "merged_at": mr.merged_at,
            "closed_by": self._user_json(mr.closed_by) if mr.closed_by else None,
            "closed_at": mr.closed_at,
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "user_notes_count": len([n for n in mr.notes if not n.system]),
            "upvotes": 0,
            "downvotes": 0,
            "author": self._user_json(mr.author),
            "assignee": None,
            "assignees": [],
            "reviewers": [self._user_json(u) for u in mr.reviewers],
            "source_project_id": 1,
            "target_project_id": 1,
            "labels": list(mr.labels),
            "draft": False,
            "work_in_progress": False,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable" if mr.state == "opened" else "not_open",
            "sha": mr.sha,
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": mr.should_remove_source_branch,
            "force_remove_source_branch": mr.force_remove_source_branch,
            "prepared_at": mr.created_at,
            "reference": reference,
            "references": {"short": reference, "relative": reference, "full": f"{self.project_path}{reference}"},
            "web_url": f"{self.web_url}/-/merge_requests/{mr.iid}",
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "squash": False,
            "squash_on_merge": False,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
            "approvals_before_merge": None,
        }
        if detail:
            version = mr.versions[-1] if mr.versions else None
            can_merge = viewer is not None and (viewer.role or 0) >= self._merge_role(mr.target_branch)
            out.update(
                {
                    "subscribed": False,
                    "changes_count": "1",
                    "latest_build_started_at": None,
                    "latest_build_finished_at": None,
                    "first_deployed_to_production_at": None,
                    "pipeline": None,
                    "head_pipeline": None,
                    "diff_refs": {"base_sha": version.base, "head_sha": version.head, "start_sha": version.start}
                    if version
                    else None,
                    "merge_error": None,
                    "first_contribution": False,
                    "user": {"can_merge": can_merge},
                }
            )
        return out

    def _approvals_json(self, mr: MergeRequest) -> dict[str, Any]:
        approved_by = []
        for approval in mr.approvals:
            entry: dict[str, Any] = {"user": self._user_json(approval.user)}
            if self.approved_at:
                entry["approved_at"] = approval.approved_at
            approved_by.append(entry)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": 1,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": mr.created_at,
            "updated_at": mr.updated_at,
            "merge_status": "can_be_merged",
            "approved": True,
            "approvals_required": 0,
            "approvals_left": 0,
            "approved_by": approved_by,
            "suggested_approvers": [],
            "approvers": [],
            "approver_groups": [],
            "user_has_approved": False,
            "user_can_approve": True,
            "has_approval_rules": False,
        }

    def _note_json(self, mr: MergeRequest, note: Note) -> dict[str, Any]:
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "attachment": None,
            "author": self._user_json(note.author),
            "created_at": note.created_at,
            "updated_at": note.created_at,
            "system": note.system,
            "noteable_id": mr.id,
            "noteable_type": "MergeRequest",
            "noteable_iid": mr.iid,
            "project_id": 1,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "commands_changes": {},
        }

    def _pipeline_json(self, p: Pipeline, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": p.id,
            "iid": p.iid,
            "project_id": 1,
            "sha": p.sha,
            "ref": p.ref,
            "status": "created",
            "source": p.source,
            "created_at": p.created_at,
            "updated_at": p.created_at,
            "web_url": f"{self.web_url}/-/pipelines/{p.id}",
        }
        if detail:
            out.update(
                {
                    "before_sha": ZERO,
                    "tag": False,
                    "yaml_errors": None,
                    "user": self._user_json(p.user),
                    "started_at": None,
                    "finished_at": None,
                    "committed_at": None,
                    "duration": None,
                    "queued_duration": None,
                    "coverage": None,
                    "detailed_status": {
                        "icon": "status_created",
                        "text": "created",
                        "label": "created",
                        "group": "created",
                        "tooltip": "created",
                        "has_details": True,
                        "details_path": f"/{self.project_path}/-/pipelines/{p.id}",
                        "illustration": None,
                        "favicon": "/assets/ci_favicons/favicon_status_created.png",
                    },
                }
            )
        return out

    def _merge_role(self, branch: str) -> int:
        return MAINTAINER if branch in self.protected else DEVELOPER

    # --- HTTP -------------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask("fake-gitlab")

        @app.route("/", defaults={"_rest": ""}, methods=METHODS)
        @app.route("/<path:_rest>", methods=METHODS)
        def handle(_rest: str) -> Response:
            return self._handle()

        return app

    def _send(self, payload: Any, shape: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        problems = check_shape(payload, SHAPES[shape])
        if problems:
            with self.lock:
                self.violations += [f"{request.method} {request.path} ({shape}): {p}" for p in problems]
            payload, status = {"message": f"fake GitLab sent a malformed {shape}: {problems[0]}"}, 500
        text = "" if payload is None else json.dumps(payload)
        response = Response(text, status=status, headers=headers or {})
        response.headers["Content-Type"] = "application/json"
        return response

    def _handle(self) -> Response:
        raw = request.environ.get("REQUEST_URI", request.path).split("?", 1)[0]
        api = f"{self.prefix}/api/v4"
        path = raw[len(api) :] if raw.startswith(api + "/") else None
        try:
            if path is None:
                raise ApiError(404, {"error": "404 Not Found"})
            with self.lock:
                self.arrivals.append((request.method, path))
            fault = self._fault(request.method, path)
            if fault is not None and fault.release is not None:
                while not (fault.release.is_set() or self._stop.is_set()):
                    fault.release.wait(0.05)
                with self.lock:
                    self.held -= 1
            if fault is not None:
                self._stop.wait(fault.delay)
                if fault.status is not None:
                    raise ApiError(fault.status, fault.body, fault.headers)
            response = self._route(request.method, path)
        except ApiError as e:
            response = self._send(
                e.body, "error" if e.status >= 400 else self._fault_shape(e.body), e.status, e.headers
            )
        with self.lock:
            self.log.append((request.method, path or raw, response.status_code))
        return response

    @staticmethod
    def _fault_shape(body: Any) -> str:
        return "merge_requests" if isinstance(body, list) else "error"

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.times != 0 and fault.method in (method, "*") and fault.pattern.search(path):
                    if fault.times > 0:
                        fault.times -= 1
                    if fault.release is not None:
                        self.held += 1
                    return fault
        return None

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {k: v for k, v in request.args.items()}
        for key in request.args:
            values = request.args.getlist(key)
            if key.endswith("[]") or len(values) > 1:
                params[key.removesuffix("[]")] = values
        params.update(request.form.to_dict())
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
        return params

    def _caller(self) -> Token:
        token = request.headers.get("PRIVATE-TOKEN") or ""
        auth = request.headers.get("Authorization", "")
        if not token and auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        found = self.tokens.get(token)
        if found is None:
            raise ApiError(401, {"message": "401 Unauthorized"})
        return found

    def _route(self, method: str, path: str) -> Response:
        parts = path.strip("/").split("/")
        if parts == ["users"] and method == "GET":
            self._caller()
            return self._users()
        if parts == ["user"] and method == "GET":
            me = self._caller().user
            return self._send(
                {**self._user_json(me), "email": me.email, "commit_email": me.email, "public_email": me.email},
                "current_user",
            )
        if len(parts) >= 2 and parts[0] == "projects":
            if parts[2:] == ["trigger", "pipeline"] and method == "POST":
                return self._trigger()
            token = self._caller()
            with self.lock:
                self._project(unquote(parts[1]), token.user)
                return self._project_route(method, [unquote(p) for p in parts[2:]], token)
        with self.lock:
            self.unhandled.append(f"{method} {path}")
        raise ApiError(404, {"error": "404 Not Found"})

    def _project(self, ident: str, user: User) -> None:
        if ident not in ("1", self.project_path) or user.role is None:
            raise ApiError(404, {"message": "404 Project Not Found"})

    def _require(self, token: Token, role: int, *, write: bool = True) -> None:
        if write and "api" not in token.scopes:
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api",
                },
            )
        if (token.user.role or 0) < role:
            raise message(403)

    def _project_route(self, method: str, rest: list[str], token: Token) -> Response:
        user = token.user
        match (method, rest):
            case ("GET", []):
                return self._send(self._project_json(user), "project")
            case ("GET", ["repository", "branches", branch]):
                sha = self.rev(branch) if self._is_branch(branch) else None
                if sha is None:
                    raise ApiError(404, {"message": "404 Branch Not Found"})
                return self._send(self._branch_json(branch, sha, user), "branch")
            case ("DELETE", ["repository", "branches", branch]):
                self._require(token, DEVELOPER)
                if not self._is_branch(branch):
                    raise ApiError(404, {"message": "404 Branch Not Found"})
                if branch in self.protected or branch == self.default_branch:
                    raise message(403)
                self.git("update-ref", "-d", f"refs/heads/{branch}")
                return self._send(None, "empty", 204)
            case ("GET", ["repository", "files", file_path]):
                return self._file(file_path)
            case ("POST", ["repository", "commits"]):
                self._require(token, DEVELOPER)
                return self._create_commit(user)
            case ("GET", ["repository", "commits", sha, "merge_requests"]):
                return self._commit_mrs(sha)
            case ("GET", ["merge_requests"]):
                return self._list_mrs()
            case ("POST", ["merge_requests"]):
                self._require(token, DEVELOPER)
                return self._create_mr(user)
            case ("GET", ["merge_requests", iid]):
                return self._send(self._mr_json(self._mr(iid), user), "merge_request")
            case ("PUT", ["merge_requests", iid]):
                self._require(token, DEVELOPER)
                return self._update_mr(self._mr(iid), user)
            case ("PUT", ["merge_requests", iid, "merge"]):
                self._require(token, DEVELOPER)
                return self._merge(self._mr(iid), user)
            case ("POST", ["merge_requests", iid, "approve"]):
                self._require(token, GUEST)
                return self._approve(self._mr(iid), user)
            case ("GET", ["merge_requests", iid, "approvals"]):
                return self._send(self._approvals_json(self._mr(iid)), "approvals")
            case ("GET", ["merge_requests", iid, "commits"]):
                mr = self._mr(iid)
                shas = mr.versions[-1].commits if mr.versions else []
                return self._page([self._mr_commit_json(sha) for sha in shas], "mr_commits")
            case ("GET", ["merge_requests", iid, "versions"]):
                mr = self._mr(iid)
                return self._page([self._version_json(mr, v) for v in reversed(mr.versions)], "versions")
            case ("GET", ["merge_requests", iid, "notes"]):
                mr = self._mr(iid)
                return self._page([self._note_json(mr, n) for n in reversed(mr.notes)], "notes")
            case ("POST", ["merge_requests", iid, "notes"]):
                self._require(token, REPORTER)
                return self._add_note(self._mr(iid), user)
            case ("GET", ["approvals"]):
                return self._send(self._project_approvals_json(), "project_approvals")
            case ("POST", ["pipeline"]):
                self._require(token, DEVELOPER)
                return self._create_pipeline(user, "api", self._api_variables())
            case ("GET", ["pipelines"]):
                ref = self._params().get("ref")
                found = [p for p in reversed(self.pipelines.values()) if ref in (None, p.ref)]
                return self._page([self._pipeline_json(p, detail=False) for p in found], "pipelines")
            case ("GET", ["pipelines", pid, "variables"]):
                pipeline = self.pipelines.get(int(pid)) if pid.isdigit() else None
                if pipeline is None:
                    raise ApiError(404, {"message": "404 Not found"})
                variables = [{"key": k, "variable_type": "env_var", "value": v} for k, v in pipeline.variables]
                return self._send(variables, "pipeline_variables")
        self.unhandled.append(f"{method} /projects/:id/{'/'.join(rest)}")
        raise ApiError(404, {"error": "404 Not Found"})

    def _is_branch(self, name: str) -> bool:
        return bool(self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False))

    def _mr(self, iid: str) -> MergeRequest:
        found = self.mrs.get(int(iid)) if iid.isdigit() else None
        if found is None:
            raise ApiError(404, {"message": "404 Not found"})
        return found

    def _page(self, items: list[Any], shape: str) -> Response:
        params = self._params()
        per_page = max(1, min(int(params.get("per_page", 20)), self.max_per_page))
        page = max(1, int(params.get("page", 1)))
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        raw = request.environ.get("REQUEST_URI", request.path).split("?", 1)[0]
        base = f"http://127.0.0.1:{self.port}{raw}"
        query = [(k, v) for k in request.args for v in request.args.getlist(k) if k != "page"]

        def link(n: int) -> str:
            return f"{base}?{urlencode([*query, ('page', str(n))])}"

        links = []
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        return self._send(chunk, shape, 200, headers)

    # --- endpoints --------------------------------------------------------------------------------

    def _users(self) -> Response:
        params = self._params()
        name, search = params.get("username"), str(params.get("search") or "")
        found = [u for u in self.users.values() if name is None or u.username.lower() == str(name).lower()]
        if "@" in search:  # an email: exact match on public emails (every user's here is public)
            found = [u for u in found if u.email.lower() == search.lower()]
        elif search:
            found = [u for u in found if search.lower() in u.username.lower() or search.lower() in u.name.lower()]
        return self._page([self._user_json(u) for u in found], "users")

    def _mr_commit_json(self, sha: str) -> dict[str, Any]:
        full = self._commit_json(sha)
        return {key: full[key] for key in (*MR_COMMIT, "trailers")}

    def push_as(self, branch: str, path: str, text: str, *, name: str, email: str) -> str:
        """A push to `branch` of one commit changing `path`, with the identity someone's own git gives it."""
        with self.lock:
            parent = self.rev(branch)
            assert parent is not None, branch
            action = "update" if self.show(parent, path) is not None else "create"
            someone = User(0, "", name, None, email)
            actions = [{"action": action, "file_path": path, "content": text}]
            sha = self._write_commit(parent, actions, f"Edit {path}\n", someone)
            self._set_branch(branch, sha, parent)
            return sha

    def _project_json(self, user: User) -> dict[str, Any]:
        group, _, name = self.project_path.rpartition("/")
        return {
            "id": 1,
            "description": "gitgate approvals",
            "name": name,
            "name_with_namespace": f"{group} / {name}",
            "path": name,
            "path_with_namespace": self.project_path,
            "created_at": self.created_at,
            "default_branch": self.default_branch,
            "visibility": "private",
            "web_url": self.web_url,
            "http_url_to_repo": f"{self.web_url}.git",
            "ssh_url_to_repo": f"git@127.0.0.1:{self.project_path}.git",
            "archived": False,
            "empty_repo": False,
            "namespace": {"id": 7, "name": group, "path": group, "kind": "group", "full_path": group},
            "permissions": {
                "project_access": {"access_level": user.role or 0, "notification_level": 3},
                "group_access": None,
            },
        }

    def _project_approvals_json(self) -> dict[str, Any]:
        return {
            "approvers": [],
            "approver_groups": [],
            "approvals_before_merge": 0,
            "reset_approvals_on_push": self.reset_approvals_on_push,
            "selective_code_owner_removals": False,
            "disable_overriding_approvers_per_merge_request": False,
            "merge_requests_author_approval": self.author_approval,
            "merge_requests_disable_committers_approval": not self.committers_approval,
            "require_password_to_approve": False,
        }

    def _version_json(self, mr: MergeRequest, version: Version) -> dict[str, Any]:
        return {
            "id": version.id,
            "head_commit_sha": version.head,
            "base_commit_sha": version.base,
            "start_commit_sha": version.start,
            "created_at": version.created_at,
            "merge_request_id": mr.id,
            "state": "collected",
            "real_size": str(len(version.commits)),
            "patch_id_sha": None,
        }

    def _file(self, file_path: str) -> Response:
        ref = self._params().get("ref")
        if not ref:
            raise ApiError(400, {"error": "ref is missing"})
        sha = self.rev(str(ref))
        if sha is None:
            raise ApiError(404, {"message": "404 Commit Not Found"})
        data = self.show(sha, file_path)
        if data is None:
            raise ApiError(404, {"message": "404 File Not Found"})
        blob = self.git("rev-parse", f"{sha}:{file_path}")
        last = self.git("log", "-1", "--format=%H", sha, "--", file_path)
        return self._send(
            {
                "file_name": file_path.rsplit("/", 1)[-1],
                "file_path": file_path,
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
                "content_sha256": hashlib.sha256(data).hexdigest(),
                "ref": str(ref),
                "blob_id": blob,
                "commit_id": sha,
                "last_commit_id": last,
                "execute_filemode": False,
            },
            "file",
        )

    def _create_commit(self, user: User) -> Response:
        params = self._params()
        branch, text, actions = params.get("branch"), params.get("commit_message"), params.get("actions")
        for key, value in (("branch", branch), ("commit_message", text), ("actions", actions)):
            if not value:
                raise ApiError(400, {"error": f"{key} is missing"})
        assert isinstance(branch, str) and isinstance(text, str) and isinstance(actions, list)
        start_branch, start_sha = params.get("start_branch"), params.get("start_sha")
        force = params.get("force") in (True, "true")
        if start_branch and start_sha:
            raise ApiError(400, {"error": "start_branch, start_sha are mutually exclusive"})
        existing = self.rev(branch) if self._is_branch(branch) else None
        different = bool(start_sha) or (bool(start_branch) and start_branch != branch)
        if existing and different and not force:
            raise ApiError(
                400,
                {
                    "message": f"A branch called '{branch}' already exists. Switch to that branch in order to make changes"
                },
            )
        if branch in self.protected and (user.role or 0) < MAINTAINER:
            raise message(403, "You are not allowed to push into this branch")
        if start_sha:
            parent = self.rev(str(start_sha))
            if parent is None:
                raise ApiError(400, {"message": f"Cannot find start_sha '{start_sha}'"})
        elif start_branch:
            parent = self.rev(str(start_branch)) if self._is_branch(str(start_branch)) else None
            if parent is None:
                raise ApiError(400, {"message": "You can only create or edit files when you are on a branch"})
        elif existing:
            parent = existing
        else:
            raise ApiError(400, {"message": "You can only create or edit files when you are on a branch"})
        sha = self._write_commit(parent, actions, text if text.endswith("\n") else text + "\n", user)
        self._set_branch(branch, sha, existing)
        stat = self.git("diff", "--numstat", parent, sha).splitlines()
        added = sum(int(line.split()[0]) for line in stat if line.split()[0].isdigit())
        deleted = sum(int(line.split()[1]) for line in stat if line.split()[1].isdigit())
        payload = {
            **self._commit_json(sha),
            "stats": {"additions": added, "deletions": deleted, "total": added + deleted},
            "status": None,
            "project_id": 1,
            "last_pipeline": None,
        }
        return self._send(payload, "commit_created", 201)

    def _commit_mrs(self, sha: str) -> Response:
        full = self.rev(sha)
        if full is None:
            raise ApiError(404, {"message": "404 Commit Not Found"})
        related = [
            mr
            for mr in self.mrs.values()
            if full == mr.merge_commit_sha or (mr.versions and full in mr.versions[-1].commits)
        ]
        return self._page([self._mr_json(mr, detail=False) for mr in related], "merge_requests")

    def _list_mrs(self) -> Response:
        params = self._params()
        state = params.get("state", "all")
        found = [
            mr
            for mr in sorted(self.mrs.values(), key=lambda m: m.iid, reverse=True)
            if state in ("all", mr.state)
            and params.get("source_branch") in (None, mr.source_branch)
            and params.get("target_branch") in (None, mr.target_branch)
        ]
        return self._page([self._mr_json(mr, detail=False) for mr in found], "merge_requests")

    def _create_mr(self, user: User) -> Response:
        params = self._params()
        for key in ("source_branch", "target_branch", "title"):
            if not params.get(key):
                raise ApiError(400, {"error": f"{key} is missing"})
        source, target = str(params["source_branch"]), str(params["target_branch"])
        head = self.rev(source) if self._is_branch(source) else None
        if head is None or not self._is_branch(target):
            missing = source if head is None else target
            raise ApiError(422, {"message": [f'Branch "{missing}" does not exist']})
        for other in self.mrs.values():
            if other.state == "opened" and other.source_branch == source and other.target_branch == target:
                raise ApiError(
                    409,
                    {"message": [f"Another open merge request already exists for this source branch: !{other.iid}"]},
                )
        labels = params.get("labels") or []
        if isinstance(labels, str):
            labels = [label for label in labels.split(",") if label]
        reviewer_ids = params.get("reviewer_ids") or []
        if isinstance(reviewer_ids, str):
            reviewer_ids = [int(i) for i in reviewer_ids.split(",") if i]
        by_id = {u.id: u for u in self.users.values()}
        now = self._now()
        iid = max(self.mrs, default=0) + 1
        mr = MergeRequest(
            id=self._next("mr"),
            iid=iid,
            title=str(params["title"]),
            description=str(params.get("description") or ""),
            source_branch=source,
            target_branch=target,
            author=user,
            created_at=now,
            updated_at=now,
            sha=head,
            labels=[str(label) for label in labels],
            reviewers=[by_id[int(i)] for i in reviewer_ids if int(i) in by_id],
            force_remove_source_branch=params.get("remove_source_branch") in (True, "true"),
        )
        mr.versions.append(self._version(mr))
        self.mrs[iid] = mr
        return self._send(self._mr_json(mr, user), "merge_request", 201)

    def _update_mr(self, mr: MergeRequest, user: User) -> Response:
        params = self._params()
        event = params.get("state_event")
        if event == "close" and mr.state == "opened":
            mr.state, mr.closed_by, mr.closed_at = "closed", user, self._now()
            mr.notes.append(Note(self._next("note"), "closed", user, mr.closed_at, system=True))
        elif event == "reopen" and mr.state == "closed":
            mr.state, mr.closed_by, mr.closed_at = "opened", None, None
        for key in ("title", "description"):
            if key in params:
                setattr(mr, key, str(params[key]))
        mr.updated_at = self._now()
        return self._send(self._mr_json(mr, user), "merge_request")

    def _approve(self, mr: MergeRequest, user: User) -> Response:
        sha = self._params().get("sha")
        if mr.state != "opened" or (user.role or 0) < DEVELOPER:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if sha and sha != mr.sha:
            raise ApiError(409, {"message": f"SHA does not match HEAD of source branch: {mr.sha}"})
        if (user == mr.author and not self.author_approval) or any(a.user == user for a in mr.approvals):
            raise ApiError(401, {"message": "401 Unauthorized"})
        if not self.committers_approval:
            commits = mr.versions[-1].commits if mr.versions else []
            committed = {self.git("show", "-s", "--format=%ce", c).lower() for c in commits}
            if user.email.lower() in committed:
                raise ApiError(401, {"message": "401 Unauthorized"})
        now = self._now()
        mr.approvals.append(Approval(user, now, mr.sha))
        mr.notes.append(Note(self._next("note"), "approved this merge request", user, now, system=True))
        return self._send(self._approvals_json(mr), "approvals", 201)

    def _merge(self, mr: MergeRequest, user: User) -> Response:
        params = self._params()
        if mr.state != "opened":
            raise ApiError(405, {"message": "405 Method Not Allowed"})
        if (user.role or 0) < self._merge_role(mr.target_branch):
            raise ApiError(401, {"message": "401 Unauthorized"})
        sha = params.get("sha")
        if sha and sha != mr.sha:
            raise ApiError(409, {"message": f"SHA does not match HEAD of source branch: {mr.sha}"})
        base = self.rev(mr.target_branch)
        assert base is not None
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "merge-tree", "--write-tree", base, mr.sha],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ApiError(406, {"message": "Branch cannot be merged"})
        tree = proc.stdout.decode().split()[0]
        text = params.get("merge_commit_message") or (
            f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'\n\n{mr.title}\n\n"
            f"See merge request {self.project_path}!{mr.iid}\n"
        )
        commit = self._commit_tree(tree, [base, mr.sha], str(text), user)
        self._set_branch(mr.target_branch, commit, base)
        now = self._now()
        mr.state, mr.merged_by, mr.merged_at, mr.merge_commit_sha, mr.updated_at = "merged", user, now, commit, now
        remove = params.get("should_remove_source_branch")
        if remove is not None:
            mr.should_remove_source_branch = remove in (True, "true")
        if mr.should_remove_source_branch or mr.force_remove_source_branch:
            self.git("update-ref", "-d", f"refs/heads/{mr.source_branch}")
        return self._send(self._mr_json(mr, user), "merge_request")

    def _add_note(self, mr: MergeRequest, user: User) -> Response:
        text = self._params().get("body")
        if not text:
            raise ApiError(400, {"error": "body is missing"})
        note = Note(self._next("note"), str(text), user, self._now())
        mr.notes.append(note)
        return self._send(self._note_json(mr, note), "note", 201)

    def _api_variables(self) -> list[tuple[str, str]]:
        raw = self._params().get("variables") or []
        if not isinstance(raw, list) or not all(isinstance(v, dict) and "key" in v for v in raw):
            raise ApiError(400, {"error": "variables is invalid"})
        return [(str(v["key"]), str(v.get("value", ""))) for v in raw]

    def _create_pipeline(self, user: User, source: str, variables: list[tuple[str, str]]) -> Response:
        ref = self._params().get("ref")
        if not ref:
            raise ApiError(400, {"error": "ref is missing"})
        sha = self.rev(str(ref)) if self._is_branch(str(ref)) else None
        if sha is None:
            raise ApiError(400, {"message": {"base": ["Reference not found"]}})
        if variables and (user.role or 0) < self.pipeline_variables_role:
            raise ApiError(400, {"message": {"base": ["Insufficient permissions to set pipeline variables"]}})
        pid = self._next("pipeline")
        pipeline = Pipeline(pid, len(self.pipelines) + 1, str(ref), sha, source, user, self._now(), variables)
        self.pipelines[pid] = pipeline
        return self._send(self._pipeline_json(pipeline), "pipeline", 201)

    def _trigger(self) -> Response:
        params = self._params()
        if params.get("token") not in self.trigger_tokens:
            raise ApiError(404, {"message": "404 Not Found"})
        raw = params.get("variables") or {}
        if not isinstance(raw, dict):
            raise ApiError(400, {"error": "variables is invalid"})
        with self.lock:
            return self._create_pipeline(self.users["carol"], "trigger", [(str(k), str(v)) for k, v in raw.items()])


@contextlib.contextmanager
def running(root: Path, **kwargs: Any) -> Iterator[FakeGitLab]:
    """A started fake GitLab; on exit it is stopped, and any shape violation or call it does not serve fails."""
    fake = FakeGitLab(root, **kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
    assert not fake.violations, fake.violations
    assert not fake.unhandled, f"the fake GitLab was asked for what it does not serve: {fake.unhandled}"
