"""A stateful fake of GitHub's REST API, for testing the GitHub adapter through unmodified PyGithub.

What it is:
- A Flask app served by waitress on 127.0.0.1 (port 0) in a thread. `/` and `/api/v3/` (GitHub
  Enterprise Server's prefix) are both served; every URL in a response points back at the fake,
  with the prefix the request came in on, because PyGithub follows `url`/`issue_url` fields.
- Data lives in a real bare git repo: blobs, trees, commits, branches and merges are real git objects
  made with `git`. Merge commits are signed with a GPG key (GitHub's "web-flow" key; the tests use
  carol's), as github.com signs the merges it makes.
- Users are identified by token (`Authorization: token …` or `Bearer …`); each has a permission on the
  one repo: admin, write, read or none (a private repo: none sees 404, read gets 403 on writes, with
  GitHub's `X-Accepted-GitHub-Permissions` header).
- Every request and every JSON response is checked against GitHub's published OpenAPI description
  (npm `@octokit/openapi`, pinned in install_openapi.sh). Mismatches are collected in `problems`;
  a response that does not match is replaced by a 500 saying why, and the test fixture fails the test.
- Faults can be injected (`fail()`): any status, headers, body or delay for matching requests
  (status None: after the delay, the request is served normally: a slow answer). `hang()` accepts
  matching requests and answers nothing until `heal()` (which also drops every fault): a forge
  that stopped answering. `hits()` counts requests as they arrive, hung or not.

Endpoints (under /repos/{owner}/{repo}): GET itself; git: GET ref/{ref}, POST refs, PATCH/DELETE
refs/{ref}, GET/POST commits, POST trees; GET contents/{path}; pulls: GET/POST list, GET/PATCH one,
PUT merge, GET commits, GET/POST reviews, POST requested_reviewers; issues: POST labels, GET/POST
comments; GET commits/{sha}/pulls; POST dispatches. Anything else answers 404 and is recorded as a
problem.

Commit emails are tied to accounts as GitHub ties them: to the user who verified the email (each user
here has verified their no-reply address and `<login>@example.test`), and `noreply@github.com`, the
committer of the commits GitHub makes, to the `web-flow` account. Any other email is tied to none.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import waitress
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = HERE / "install_openapi.sh"
PACKAGE_DIR = HERE / ".openapi" / "node_modules" / "@octokit" / "openapi"
DESCRIPTION = PACKAGE_DIR / "generated" / "api.github.com.json"
GHE_PREFIX = "/api/v3"
ZERO = "0" * 40
WEB_FLOW = "web-flow"  # the account GitHub ties to the commits it makes (committer noreply@github.com)
WEB_FLOW_ID = 19864447


# --- GitHub's OpenAPI description ---------------------------------------------------------------


class OpenAPIMissing(Exception):
    """The pinned description is not installed; the message says how to install it."""


def pinned_version() -> str:
    match = re.search(r"^VERSION=(\S+)$", INSTALL_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"no VERSION= line in {INSTALL_SCRIPT}"
    return match.group(1)


@functools.cache
def github_openapi() -> GitHubOpenAPI:
    """Loaded once per test session (about half a second; the spec validator stays off)."""
    pin = pinned_version()
    how = f"run tests/fakes/install_openapi.sh (npm install of @octokit/openapi@{pin}; .ci/run does it)"
    if not DESCRIPTION.is_file():
        raise OpenAPIMissing(f"GitHub's OpenAPI description is not installed at {DESCRIPTION}: {how}")
    installed = json.loads((PACKAGE_DIR / "package.json").read_text()).get("version")
    if installed != pin:
        raise OpenAPIMissing(f"@octokit/openapi {installed} is installed but the tests pin {pin}: {how}")
    return GitHubOpenAPI(DESCRIPTION, pin)


class GitHubOpenAPI:
    """Checks requests and responses against api.github.com's description, operation by operation."""

    def __init__(self, path: Path, version: str) -> None:
        self.version = version
        self.doc = json.loads(path.read_bytes())
        self.api = OpenAPI.from_dict(self.doc, config=Config(spec_validator_cls=None))
        # Errors every endpoint can answer (401, 403 for rate limits, 5xx) without each operation
        # listing them: GitHub's error shape.
        self.basic_error = OAS30Validator(self.doc["components"]["schemas"]["basic-error"])

    def _request(self, call: Call) -> MockRequest:
        return MockRequest(
            "https://api.github.com",
            call.method,
            call.path,
            path_pattern=call.pattern,
            args=call.args,
            view_args=call.view_args,
            headers=call.headers,
            data=call.body,
            content_type=call.content_type,
        )

    def check_request(self, call: Call) -> list[str]:
        try:
            self.api.validate_request(self._request(call))
        except OpenAPIError as e:
            return [f"request {call.method} {call.pattern}: {_describe(e)}"]
        return []

    def check_response(self, call: Call, status: int, body: bytes, headers: dict[str, str]) -> list[str]:
        where = f"response {status} to {call.method} {call.pattern}"
        response = MockResponse(body, status_code=status, headers=headers, content_type="application/json")
        try:
            self.api.validate_response(self._request(call), response)
        except ResponseNotFound:
            if status < 400:
                return [f"{where}: the operation documents no {status} answer"]
            return self.check_error(where, body)
        except OpenAPIError as e:
            return [f"{where}: {_describe(e)}"]
        return []

    def check_error(self, where: str, body: bytes) -> list[str]:
        try:
            data = json.loads(body)
        except ValueError:
            return [f"{where}: not JSON"]
        return [f"{where}: {err.message[:300]}" for err in self.basic_error.iter_errors(data)]


def _describe(error: BaseException) -> str:
    parts = [type(error).__name__]
    for e in (error, error.__cause__):
        for sub in getattr(e, "schema_errors", None) or []:
            path = "/".join(str(p) for p in sub.absolute_path) or "(top)"
            parts.append(f"{path}: {sub.message[:300]}")
    if len(parts) == 1:
        parts.append(str(error)[:500])
    return "; ".join(parts)


@dataclass
class Call:
    """One request as the OpenAPI check sees it: the operation's path template and the values."""

    method: str
    pattern: str
    path: str
    args: dict[str, Any]
    view_args: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    content_type: str


# --- the git repo behind it -----------------------------------------------------------------------


class Git:
    """Plumbing on one bare repo. Every write goes through `git`, so objects and refs are real."""

    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.env = {**os.environ, **(env or {}), "GIT_DIR": str(path)}

    def run(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            ["git", *args], input=stdin, env={**self.env, **(env or {})}, capture_output=True, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode().strip()}")
        return proc

    def out(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout.decode().strip()

    def rev(self, name: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "-q", f"{name}^{{commit}}", check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def branch(self, name: str) -> str | None:
        return self.rev(f"refs/heads/{name}") if name else None

    def exists(self, sha: str, kind: str) -> bool:
        proc = self.run("cat-file", "-t", sha, check=False)
        return proc.returncode == 0 and proc.stdout.decode().strip() == kind

    def blob(self, data: bytes) -> str:
        return self.out("hash-object", "-w", "--stdin", stdin=data)

    def tree(self, base_tree: str | None, entries: list[tuple[str, str, str | None]]) -> str:
        """A new tree: `base_tree` with (path, mode, sha or None to delete) applied."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if base_tree:
                self.run("read-tree", base_tree, env=env)
            for path, mode, sha in entries:
                if sha is None:
                    self.run("update-index", "--force-remove", "--", path, env=env)
                else:
                    self.run("update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}", env=env)
            return self.out("write-tree", env=env)

    def commit(
        self,
        tree: str,
        parents: list[str],
        message: str,
        *,
        author: tuple[str, str, str],
        committer: tuple[str, str, str],
        signing_key: str | None = None,
        gnupg_home: str | None = None,
    ) -> str:
        env = {
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_AUTHOR_DATE": author[2],
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
            "GIT_COMMITTER_DATE": committer[2],
        }
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        if signing_key:
            args.append(f"-S{signing_key}")
            env["GNUPGHOME"] = gnupg_home or ""
        else:
            args.append("--no-gpg-sign")
        return self.out(*args, stdin=message.encode(), env=env)

    def update_ref(self, ref: str, new: str, old: str | None) -> bool:
        """Compare-and-swap: old None = any, ZERO = must not exist."""
        args = ["update-ref", ref, new] + ([old] if old is not None else [])
        return self.run(*args, check=False).returncode == 0

    def delete_ref(self, ref: str) -> bool:
        return self.run("update-ref", "-d", ref, check=False).returncode == 0

    def read_commit(self, sha: str) -> dict[str, Any]:
        raw = self.run("cat-file", "commit", sha).stdout.decode()
        head, _, message = raw.partition("\n\n")
        info: dict[str, Any] = {"parents": [], "message": message, "gpgsig": None}
        lines = head.split("\n")
        i = 0
        while i < len(lines):
            key, _, value = lines[i].partition(" ")
            if key == "gpgsig":
                sig = [value]
                while i + 1 < len(lines) and lines[i + 1].startswith(" "):
                    i += 1
                    sig.append(lines[i][1:])
                info["gpgsig"] = "\n".join(sig)
            elif key == "tree":
                info["tree"] = value
            elif key == "parent":
                info["parents"].append(value)
            elif key in ("author", "committer"):
                m = re.fullmatch(r"(.*) <(.*)> (\d+) ([+-]\d{4})", value)
                assert m, value
                when = datetime.fromtimestamp(int(m.group(3)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                info[key] = {"name": m.group(1), "email": m.group(2), "date": when}
            i += 1
        return info

    def show(self, rev: str, path: str) -> bytes | None:
        proc = self.run("cat-file", "blob", f"{rev}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def path_type(self, rev: str, path: str) -> str | None:
        proc = self.run("cat-file", "-t", f"{rev}:{path}", check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def ls_tree(self, tree: str) -> list[dict[str, Any]]:
        entries = []
        for line in self.out("ls-tree", "-l", tree).splitlines():
            meta, _, path = line.partition("\t")
            mode, kind, sha, size = meta.split()
            entries.append({"path": path, "mode": mode, "type": kind, "sha": sha, "size": size})
        return entries

    def is_ancestor(self, a: str, b: str) -> bool:
        return self.run("merge-base", "--is-ancestor", a, b, check=False).returncode == 0

    def commits_between(self, base: str, head: str) -> list[str]:
        return self.out("rev-list", f"{base}..{head}").split()

    def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The merged tree, or None on conflicts (git merge-tree --write-tree, git >= 2.38)."""
        proc = self.run("merge-tree", "--write-tree", ours, theirs, check=False)
        return proc.stdout.decode().split("\n", 1)[0].strip() if proc.returncode == 0 else None

    def numstat(self, base: str, head: str) -> tuple[int, int, int]:
        adds = dels = files = 0
        for line in self.out("diff", "--numstat", base, head).splitlines():
            a, d, _ = line.split("\t", 2)
            adds += int(a) if a.isdigit() else 0
            dels += int(d) if d.isdigit() else 0
            files += 1
        return adds, dels, files


# --- state ------------------------------------------------------------------------------------------


@dataclass
class User:
    login: str
    id: int
    token: str | None
    permission: str  # admin | write | read | none
    type: str = "User"

    @property
    def email(self) -> str:
        return f"{self.id}+{self.login}@users.noreply.github.com"

    @property
    def verified_emails(self) -> tuple[str, ...]:
        return (self.email, f"{self.login}@example.test")


@dataclass
class Review:
    id: int
    user: str
    state: str
    body: str
    commit_id: str
    submitted_at: str


@dataclass
class Comment:
    id: int
    user: str
    body: str
    created_at: str


@dataclass
class Pull:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    head: str
    base: str
    head_sha: str
    base_sha: str
    created_at: str
    updated_at: str
    state: str = "open"
    draft: bool = False
    closed_at: str | None = None
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # what the merge brought in


@dataclass
class Fault:
    status: int | None  # None: after the delay (or the hang), serve the request normally
    method: str | None = None
    path: str = ""  # regex searched in the request path (after any /api/v3 prefix)
    json: Any = None
    body: str | None = None  # a raw body instead of JSON (a proxy's HTML page)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1  # -1: every matching request
    release: threading.Event | None = None  # a hang: hold the request until this is set (heal())


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        docs: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.docs = docs or "https://docs.github.com/rest"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git_date() -> str:
    return f"{int(time.time())} +0000"


# Which fine-grained permission each write needs (GitHub's X-Accepted-GitHub-Permissions header).
CONTENTS = "contents=write"
PULLS = "pull_requests=write"
ISSUES = "issues=write; pull_requests=write"


class FakeGitHub:
    def __init__(
        self,
        root: Path,
        *,
        owner: str = "acme",
        name: str = "approvals",
        default_branch: str = "main",
        web_flow_key: str | None = None,
        gnupg_home: str | None = None,
        openapi: GitHubOpenAPI | None = None,
    ) -> None:
        self.owner = owner
        self.name = name
        self.full_name = f"{owner}/{name}"
        self.default_branch = default_branch
        self.web_flow_key = web_flow_key
        self.gnupg_home = gnupg_home
        self.openapi = openapi
        root.mkdir(parents=True, exist_ok=True)
        self.git = Git(root / f"{name}.git")
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", default_branch, str(self.git.path)], check=True, capture_output=True
        )
        self.users: dict[str, User] = {}
        self._ids = itertools.count(1001)
        self.add_user(owner, permission="admin", type="Organization")
        self.repo_id = next(self._ids)
        self.users[WEB_FLOW] = User(WEB_FLOW, WEB_FLOW_ID, None, "none")  # nobody signs in as web-flow
        self.teams: dict[str, int] = {}
        self.pulls: dict[int, Pull] = {}
        self.labels: dict[str, int] = {}
        self.dispatches: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str, int]] = []  # (method, full path, status) as answered
        self.arrivals: list[tuple[str, str]] = []  # (method, path) as they arrive, before any fault
        self.held = 0  # requests hung right now
        self.problems: list[str] = []  # OpenAPI mismatches and unexpected requests
        self.created_at = _now()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._patterns: dict[str, str] = {}
        self.app = self._build_app()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0
        # The first commit, as `git init` on the forge would leave it.
        tree = self.git.tree(None, [("README.md", "100644", self.git.blob(b"# approvals\n"))])
        first = self.git.commit(tree, [], "Initial commit\n", author=self._ident(owner), committer=self._ident(owner))
        self.git.update_ref(f"refs/heads/{default_branch}", first, ZERO)

    # --- set-up and inspection for tests --------------------------------------------------------

    def add_user(self, login: str, *, permission: str = "write", type: str = "User") -> str:
        token = None if type == "Organization" else f"ghp_{hashlib.sha256(login.encode()).hexdigest()[:36]}"
        self.users[login] = User(login, next(self._ids), token, permission, type)
        return token or ""

    def token(self, login: str) -> str:
        token = self.users[login].token
        assert token, login
        return token

    def add_team(self, slug: str) -> None:
        self.teams[slug] = next(self._ids)

    def fail(self, status: int | None, **kw: Any) -> Fault:
        """Answer matching requests with `status` (see Fault) before anything else happens."""
        fault = Fault(status, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def hang(self, method: str | None = None, path: str = "", *, times: int = 1, then: int | None = None) -> Fault:
        """Accept the next `times` matching requests (-1: all) and answer nothing until heal(); then
        answer `then` (a status), or with None serve them as if nothing had happened."""
        return self.fail(then, method=method, path=path, times=times, release=threading.Event())

    def heal(self) -> None:
        """The forge is well again: drop every fault and let hung requests go on."""
        with self._lock:
            for fault in self.faults:
                if fault.release is not None:
                    fault.release.set()
            self.faults.clear()

    def hits(self, method: str | None = None, path: str = "") -> int:
        """How many requests matching `method` and the regex `path` have arrived so far."""
        with self._lock:
            return sum(1 for m, p in self.arrivals if (method is None or m == method) and re.search(path, p))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ghe_url(self) -> str:
        return self.url + GHE_PREFIX

    def head(self, branch: str | None = None) -> str:
        sha = self.git.branch(branch or self.default_branch)
        assert sha, branch
        return sha

    def file_on(self, ref: str, path: str) -> bytes | None:
        rev = self.git.branch(ref) or self.git.rev(ref)
        return self.git.show(rev, path) if rev else None

    def changed_files(self, branch: str) -> list[str]:
        out = self.git.out("diff", "--name-only", f"refs/heads/{self.default_branch}...refs/heads/{branch}")
        return out.splitlines()

    def push_to_base(self, path: str, text: str, *, login: str | None = None, signed: bool = False) -> str:
        """A commit straight onto the default branch (an admin's push), bypassing pull requests."""
        with self._lock:
            base = self.head()
            tree = self.git.tree(self.git.read_commit(base)["tree"], [(path, "100644", self.git.blob(text.encode()))])
            who = self._ident(login or self.owner)
            sha = self.git.commit(
                tree,
                [base],
                f"Update {path}\n",
                author=who,
                committer=who,
                signing_key=self.web_flow_key if signed else None,
                gnupg_home=self.gnupg_home,
            )
            assert self.git.update_ref(f"refs/heads/{self.default_branch}", sha, base)
            return sha

    def pull(self, number: int) -> Pull:
        return self.pulls[number]

    # --- serving ------------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # racing clients queue briefly
        sockets: dict[int, Any] = {}
        self._server = waitress.create_server(
            self.app, map=sockets, host="127.0.0.1", port=0, threads=8, ident="fake-github", cleanup_interval=1
        )
        self.port = int(self._server.effective_port)
        self._sockets = sockets

        def loop() -> None:
            while not self._stopping.is_set():
                self._server.asyncore.loop(timeout=0.05, map=sockets, use_poll=True, count=1)

        self._thread = threading.Thread(target=loop, name="fake-github", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self._server is not None:
            self._server.task_dispatcher.shutdown()
            for dispatcher in list(self._sockets.values()):
                dispatcher.close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the app ----------------------------------------------------------------------------------

    def _build_app(self) -> flask.Flask:
        app = flask.Flask("fake_github")
        inner = app.wsgi_app

        def prefixed(environ: dict[str, Any], start_response: Any) -> Any:
            # GitHub Enterprise Server serves the API under /api/v3: keep it as the script root, so
            # url_root (and every URL the fake hands out) carries it.
            path = environ.get("PATH_INFO", "")
            if path == GHE_PREFIX or path.startswith(GHE_PREFIX + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + GHE_PREFIX
                environ["PATH_INFO"] = path[len(GHE_PREFIX) :] or "/"
            return inner(environ, start_response)

        app.wsgi_app = prefixed  # type: ignore[method-assign]
        app.before_request(self._inject_fault)
        app.after_request(self._check)
        app.register_error_handler(ApiError, self._error)
        app.register_error_handler(404, self._unknown)
        app.register_error_handler(405, self._unknown)
        self._routes(app)
        return app

    def _inject_fault(self) -> flask.Response | None:
        path = flask.request.path
        with self._lock:
            self.arrivals.append((flask.request.method, path))
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.times != 0
                    and (f.method is None or f.method == flask.request.method)
                    and re.search(f.path, path)
                ),
                None,
            )
            if fault is None:
                return None
            if fault.times > 0:
                fault.times -= 1
            if fault.release is not None:
                self.held += 1
        if fault.release is not None:
            while not (fault.release.is_set() or self._stopping.is_set()):
                fault.release.wait(0.05)
            with self._lock:
                self.held -= 1
        if fault.delay:
            self._stopping.wait(fault.delay)
        if fault.status is None:
            return None
        flask.g.injected = True
        if fault.body is not None:
            return flask.Response(fault.body, fault.status, headers=fault.headers, content_type="text/html")
        payload = fault.json if fault.json is not None else {"message": f"fault injected: {fault.status}"}
        return self._json(payload, fault.status, fault.headers)

    def _check(self, response: flask.Response) -> flask.Response:
        request = flask.request
        with self._lock:
            self.calls.append((request.method, request.script_root + request.path, response.status_code))
        rule = request.url_rule
        if self.openapi is None or rule is None or rule.endpoint not in self._patterns:
            return response
        if getattr(flask.g, "injected", False) and response.mimetype != "application/json":
            return response  # an injected non-JSON page stands for a proxy in front of GitHub
        call = Call(
            method=request.method.lower(),
            pattern=self._patterns[rule.endpoint],
            path=request.path,
            args=dict(request.args),
            view_args=dict(request.view_args or {}),
            headers=dict(request.headers),
            body=request.get_data(),
            content_type=request.content_type or "application/json",
        )
        if response.status_code < 400:
            self._problem(self.openapi.check_request(call))
        found = self.openapi.check_response(call, response.status_code, response.get_data(), dict(response.headers))
        if found:
            self._problem(found)
            message = "fake GitHub: this response does not match GitHub's OpenAPI description: " + "; ".join(found)
            return self._json({"message": message[:2000]}, 500)
        return response

    def _problem(self, found: list[str]) -> None:
        if found:
            with self._lock:
                self.problems.extend(found)

    def _unknown(self, error: Exception) -> flask.Response:
        request = flask.request
        self._problem([f"unexpected request: {request.method} {request.path} (the fake does not serve it)"])
        return self._json({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404)

    def _error(self, error: ApiError) -> flask.Response:
        payload: dict[str, Any] = {"message": error.message, "documentation_url": error.docs}
        if error.errors is not None:
            payload["errors"] = error.errors
        payload["status"] = str(error.status)
        return self._json(payload, error.status, error.headers)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
        response = flask.Response(
            json.dumps(payload), status, headers=headers or {}, content_type="application/json; charset=utf-8"
        )
        response.headers.setdefault("X-RateLimit-Limit", "5000")
        response.headers.setdefault("X-RateLimit-Remaining", "4999")
        response.headers.setdefault("X-RateLimit-Reset", str(int(time.time()) + 3600))
        response.headers.setdefault("X-RateLimit-Resource", "core")
        response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        return response

    # --- auth --------------------------------------------------------------------------------------

    def _caller(self, owner: str, repo: str, need: str | None) -> User:
        header = flask.request.headers.get("Authorization", "")
        match = re.fullmatch(r"(?i:token|bearer)\s+(\S+)", header)
        if not match:
            raise ApiError(401, "Requires authentication", docs="https://docs.github.com/rest")
        user = next((u for u in self.users.values() if u.token == match.group(1)), None)
        if user is None:
            raise ApiError(401, "Bad credentials", docs="https://docs.github.com/rest")
        if f"{owner}/{repo}".lower() != self.full_name.lower() or user.permission == "none":
            raise ApiError(404, "Not Found", docs="https://docs.github.com/rest/repos/repos#get-a-repository")
        if need and user.permission not in ("write", "admin"):
            raise ApiError(
                403,
                "Resource not accessible by personal access token",
                headers={"X-Accepted-GitHub-Permissions": need},
            )
        return user

    def _routes(self, app: flask.Flask) -> None:
        def route(method: str, pattern: str, need: str | None = None) -> Callable[[Callable[..., Any]], None]:
            rule = re.sub(r"\{(ref|path)\}", r"<path:\1>", pattern)
            rule = re.sub(r"\{(pull_number|issue_number)\}", r"<int:\1>", rule)
            rule = re.sub(r"\{(\w+)\}", r"<\1>", rule)

            def register(view: Callable[..., Any]) -> None:
                endpoint = f"{method} {pattern}"
                self._patterns[endpoint] = pattern

                def handle(owner: str, repo: str, **kw: Any) -> Any:
                    user = self._caller(owner, repo, need)
                    with self._lock:
                        return view(user, **kw)

                app.add_url_rule(rule, endpoint, handle, methods=[method])

            return register

        R = "/repos/{owner}/{repo}"
        route("GET", R)(self.get_repo)
        route("GET", R + "/git/ref/{ref}")(self.get_ref)
        route("POST", R + "/git/refs", CONTENTS)(self.create_ref)
        route("PATCH", R + "/git/refs/{ref}", CONTENTS)(self.update_ref)
        route("DELETE", R + "/git/refs/{ref}", CONTENTS)(self.delete_ref)
        route("GET", R + "/git/commits/{commit_sha}")(self.get_git_commit)
        route("POST", R + "/git/commits", CONTENTS)(self.create_git_commit)
        route("POST", R + "/git/trees", CONTENTS)(self.create_tree)
        route("GET", R + "/contents/{path}")(self.get_contents)
        route("GET", R + "/pulls")(self.list_pulls)
        route("POST", R + "/pulls", PULLS)(self.create_pull)
        route("GET", R + "/pulls/{pull_number}")(self.get_pull)
        route("PATCH", R + "/pulls/{pull_number}", PULLS)(self.update_pull)
        route("PUT", R + "/pulls/{pull_number}/merge", CONTENTS)(self.merge_pull)
        route("GET", R + "/pulls/{pull_number}/commits")(self.list_pull_commits)
        route("GET", R + "/pulls/{pull_number}/reviews")(self.list_reviews)
        route("POST", R + "/pulls/{pull_number}/reviews", PULLS)(self.create_review)
        route("POST", R + "/pulls/{pull_number}/requested_reviewers", PULLS)(self.request_reviewers)
        route("POST", R + "/issues/{issue_number}/labels", ISSUES)(self.add_labels)
        route("GET", R + "/issues/{issue_number}/comments")(self.list_comments)
        route("POST", R + "/issues/{issue_number}/comments", ISSUES)(self.create_comment)
        route("GET", R + "/commits/{commit_sha}/pulls")(self.commit_pulls)
        route("POST", R + "/dispatches", CONTENTS)(self.dispatch)

    # --- JSON as GitHub shapes it -----------------------------------------------------------------

    def _api(self) -> str:
        return flask.request.url_root.rstrip("/")

    def _html(self) -> str:
        return flask.request.host_url.rstrip("/")

    def _repo_api(self) -> str:
        return f"{self._api()}/repos/{self.full_name}"

    def _ident(self, login: str) -> tuple[str, str, str]:
        user = self.users[login]
        return login, user.email, _git_date()

    def _user(self, login: str) -> dict[str, Any]:
        user = self.users[login]
        api, html = self._api(), self._html()
        u = f"{api}/users/{login}"
        return {
            "login": login,
            "id": user.id,
            "node_id": base64.b64encode(f"04:User{user.id}".encode()).decode(),
            "avatar_url": f"{html}/avatars/u/{user.id}",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{html}/{login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def _association(self, login: str) -> str:
        user = self.users[login]
        if login == self.owner or user.permission == "admin":
            return "OWNER" if login == self.owner else "MEMBER"
        return "COLLABORATOR" if user.permission in ("write", "read") else "NONE"

    def _repo(self, caller: User | None = None, *, full: bool = False) -> dict[str, Any]:
        html = self._html()
        r = self._repo_api()
        data: dict[str, Any] = {
            "id": self.repo_id,
            "node_id": base64.b64encode(f"010:Repository{self.repo_id}".encode()).decode(),
            "name": self.name,
            "full_name": self.full_name,
            "owner": self._user(self.owner),
            "private": True,
            "html_url": f"{html}/{self.full_name}",
            "description": "Approvals for Flagger canaries (gitgate)",
            "fork": False,
            "url": r,
            "archive_url": f"{r}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{r}/assignees{{/user}}",
            "blobs_url": f"{r}/git/blobs{{/sha}}",
            "branches_url": f"{r}/branches{{/branch}}",
            "collaborators_url": f"{r}/collaborators{{/collaborator}}",
            "comments_url": f"{r}/comments{{/number}}",
            "commits_url": f"{r}/commits{{/sha}}",
            "compare_url": f"{r}/compare/{{base}}...{{head}}",
            "contents_url": f"{r}/contents/{{+path}}",
            "contributors_url": f"{r}/contributors",
            "deployments_url": f"{r}/deployments",
            "downloads_url": f"{r}/downloads",
            "events_url": f"{r}/events",
            "forks_url": f"{r}/forks",
            "git_commits_url": f"{r}/git/commits{{/sha}}",
            "git_refs_url": f"{r}/git/refs{{/sha}}",
            "git_tags_url": f"{r}/git/tags{{/sha}}",
            "git_url": f"git://{flask.request.host}/{self.full_name}.git",
            "issue_comment_url": f"{r}/issues/comments{{/number}}",
            "issue_events_url": f"{r}/issues/events{{/number}}",
            "issues_url": f"{r}/issues{{/number}}",
            "keys_url": f"{r}/keys{{/key_id}}",
            "labels_url": f"{r}/labels{{/name}}",
            "languages_url": f"{r}/languages",
            "merges_url": f"{r}/merges",
            "milestones_url": f"{r}/milestones{{/number}}",
            "notifications_url": f"{r}/notifications{{?since,all,participating}}",
            "pulls_url": f"{r}/pulls{{/number}}",
            "releases_url": f"{r}/releases{{/id}}",
            "ssh_url": f"git@{flask.request.host.split(':')[0]}:{self.full_name}.git",
            "stargazers_url": f"{r}/stargazers",
            "statuses_url": f"{r}/statuses/{{sha}}",
            "subscribers_url": f"{r}/subscribers",
            "subscription_url": f"{r}/subscription",
            "tags_url": f"{r}/tags",
            "teams_url": f"{r}/teams",
            "trees_url": f"{r}/git/trees{{/sha}}",
            "clone_url": f"{html}/{self.full_name}.git",
            "mirror_url": None,
            "hooks_url": f"{r}/hooks",
            "svn_url": f"{html}/{self.full_name}",
            "homepage": None,
            # GitHub's examples omit `language`, which the schema requires: a YAML repo has none.
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 1,
            "default_branch": self.default_branch,
            "open_issues_count": sum(p.state == "open" for p in self.pulls.values()),
            "open_issues": sum(p.state == "open" for p in self.pulls.values()),
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            # Required by the schema, missing from some of GitHub's own examples.
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private",
            "pushed_at": self.created_at,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "license": None,
            "allow_forking": False,
            "web_commit_signoff_required": False,
            "delete_branch_on_merge": False,
            "allow_merge_commit": True,
            "allow_squash_merge": True,
            "allow_rebase_merge": False,
        }
        if full:
            data["network_count"] = 0
            data["subscribers_count"] = 0
            data["organization"] = self._user(self.owner)
        if caller is not None:
            p = caller.permission
            data["permissions"] = {
                "admin": p == "admin",
                "maintain": p == "admin",
                "push": p in ("admin", "write"),
                "triage": p in ("admin", "write"),
                "pull": True,
            }
        return data

    def _ref(self, ref: str, sha: str) -> dict[str, Any]:
        r = self._repo_api()
        return {
            "ref": ref,
            "node_id": base64.b64encode(f"03:Ref{self.repo_id}:{ref}".encode()).decode(),
            "url": f"{r}/git/{urllib.parse.quote(ref)}",
            "object": {"type": "commit", "sha": sha, "url": f"{r}/git/commits/{sha}"},
        }

    def _git_commit(self, sha: str) -> dict[str, Any]:
        info = self.git.read_commit(sha)
        r, html = self._repo_api(), self._html()
        signature = info["gpgsig"]
        verified = bool(signature) and self.web_flow_key is not None
        return {
            "sha": sha,
            "node_id": base64.b64encode(f"06:Commit{self.repo_id}:{sha}".encode()).decode(),
            "url": f"{r}/git/commits/{sha}",
            "html_url": f"{html}/{self.full_name}/commit/{sha}",
            "author": info["author"],
            "committer": info["committer"],
            "message": info["message"].rstrip("\n"),
            "tree": {"sha": info["tree"], "url": f"{r}/git/trees/{info['tree']}"},
            "parents": [
                {"sha": p, "url": f"{r}/git/commits/{p}", "html_url": f"{html}/{self.full_name}/commit/{p}"}
                for p in info["parents"]
            ],
            "verification": {
                "verified": verified,
                "reason": "valid" if verified else "unsigned",
                "signature": signature,
                "payload": None,
                "verified_at": info["committer"]["date"] if verified else None,
            },
        }

    def _account_of(self, email: str) -> str | None:
        """The account GitHub ties a commit email to: the user who verified it, or web-flow for its own."""
        if email.casefold() == "noreply@github.com":
            return WEB_FLOW
        for user in self.users.values():
            if email.casefold() in (e.casefold() for e in user.verified_emails):
                return user.login
        return None

    def _commit(self, sha: str) -> dict[str, Any]:
        """A commit as the commits endpoints show it: the git commit, and the accounts tied to it."""
        git = self._git_commit(sha)
        r = self._repo_api()
        accounts = {role: self._account_of(git[role]["email"]) for role in ("author", "committer")}
        return {
            "url": f"{r}/commits/{sha}",
            "sha": sha,
            "node_id": git["node_id"],
            "html_url": git["html_url"],
            "comments_url": f"{r}/commits/{sha}/comments",
            "commit": {
                "url": git["url"],
                "author": git["author"],
                "committer": git["committer"],
                "message": git["message"],
                "comment_count": 0,
                "tree": git["tree"],
                "verification": git["verification"],
            },
            # An email tied to no account: GitHub sends null, which the description allows (`nullable`
            # beside `oneOf`) but its OpenAPI 3.0 validator refuses; the fake sends the description's
            # other alternative, an empty object. The adapter reads both as "no account".
            "author": self._user(accounts["author"]) if accounts["author"] else {},
            "committer": self._user(accounts["committer"]) if accounts["committer"] else {},
            "parents": git["parents"],
        }

    def _label(self, name: str) -> dict[str, Any]:
        return {
            "id": self.labels[name],
            "node_id": base64.b64encode(f"05:Label{self.labels[name]}".encode()).decode(),
            "url": f"{self._repo_api()}/labels/{urllib.parse.quote(name)}",
            "name": name,
            # GitHub sends null for a label without a description, but pull-request-simple's labels
            # declare a non-nullable string: an empty description satisfies both schemas.
            "description": "",
            "color": "ededed",
            "default": False,
        }

    def _team(self, slug: str) -> dict[str, Any]:
        team_id = self.teams[slug]
        api, html = self._api(), self._html()
        org_id = self.users[self.owner].id
        return {
            "id": team_id,
            "node_id": base64.b64encode(f"04:Team{team_id}".encode()).decode(),
            "url": f"{api}/organizations/{org_id}/team/{team_id}",
            "html_url": f"{html}/orgs/{self.owner}/teams/{slug}",
            "name": slug,
            "slug": slug,
            "description": None,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "push",
            "members_url": f"{api}/organizations/{org_id}/team/{team_id}/members{{/member}}",
            "repositories_url": f"{api}/organizations/{org_id}/team/{team_id}/repos",
            "parent": None,
            # Required by the schema, missing from GitHub's requested_teams examples.
            "type": "organization",
        }

    def _head_sha(self, pr: Pull) -> str:
        if pr.state == "open":
            tip = self.git.branch(pr.head)
            if tip:
                pr.head_sha = tip
        return pr.head_sha

    def _pull(self, pr: Pull, *, full: bool) -> dict[str, Any]:
        r, html = self._repo_api(), self._html()
        n = pr.number
        head_sha = self._head_sha(pr)
        base_sha = self.git.branch(pr.base) if pr.state == "open" else pr.base_sha
        pr.base_sha = base_sha or pr.base_sha
        page = f"{html}/{self.full_name}/pull/{n}"
        links = {
            "self": f"{r}/pulls/{n}",
            "html": page,
            "issue": f"{r}/issues/{n}",
            "comments": f"{r}/issues/{n}/comments",
            "review_comments": f"{r}/pulls/{n}/comments",
            "review_comment": f"{r}/pulls/comments{{/number}}",
            "commits": f"{r}/pulls/{n}/commits",
            "statuses": f"{r}/statuses/{head_sha}",
        }
        data: dict[str, Any] = {
            "url": links["self"],
            "id": pr.id,
            "node_id": base64.b64encode(f"011:PullRequest{pr.id}".encode()).decode(),
            "html_url": page,
            "diff_url": f"{page}.diff",
            "patch_url": f"{page}.patch",
            "issue_url": links["issue"],
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": n,
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "user": self._user(pr.user),
            "body": pr.body,
            "labels": [self._label(name) for name in pr.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pr.created_at,
            "updated_at": pr.updated_at,
            "closed_at": pr.closed_at,
            "merged_at": pr.merged_at,
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user(login) for login in pr.reviewers],
            "requested_teams": [self._team(slug) for slug in pr.teams],
            "head": {
                "label": f"{self.owner}:{pr.head}",
                "ref": pr.head,
                "sha": head_sha,
                "user": self._user(self.owner),
                "repo": self._repo(),
            },
            "base": {
                "label": f"{self.owner}:{pr.base}",
                "ref": pr.base,
                "sha": pr.base_sha,
                "user": self._user(self.owner),
                "repo": self._repo(),
            },
            "_links": {key: {"href": value} for key, value in links.items()},
            "author_association": self._association(pr.user),
            "auto_merge": None,
            "draft": pr.draft,
        }
        if full:
            merged = pr.merged_at is not None
            mergeable: bool | None = None
            if pr.state == "open":
                mergeable = self.git.merge_tree(pr.base_sha, head_sha) is not None
            adds, dels, files = self.git.numstat(self.git.out("merge-base", pr.base_sha, head_sha), head_sha)
            data.update(
                merged=merged,
                mergeable=mergeable,
                rebaseable=False,
                mergeable_state="clean" if mergeable else ("dirty" if mergeable is False else "unknown"),
                merged_by=self._user(pr.merged_by) if pr.merged_by else None,
                comments=len(pr.comments),
                review_comments=0,
                maintainer_can_modify=False,
                commits=len(pr.commits) if merged else len(self.git.commits_between(pr.base_sha, head_sha)),
                additions=adds,
                deletions=dels,
                changed_files=files,
            )
        return data

    def _review(self, pr: Pull, review: Review) -> dict[str, Any]:
        r, html = self._repo_api(), self._html()
        page = f"{html}/{self.full_name}/pull/{pr.number}#pullrequestreview-{review.id}"
        return {
            "id": review.id,
            "node_id": base64.b64encode(f"017:PullRequestReview{review.id}".encode()).decode(),
            "user": self._user(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": page,
            "pull_request_url": f"{r}/pulls/{pr.number}",
            "author_association": self._association(review.user),
            "_links": {"html": {"href": page}, "pull_request": {"href": f"{r}/pulls/{pr.number}"}},
            "submitted_at": review.submitted_at,
            "commit_id": review.commit_id,
        }

    def _comment(self, pr: Pull, comment: Comment) -> dict[str, Any]:
        r, html = self._repo_api(), self._html()
        return {
            "id": comment.id,
            "node_id": base64.b64encode(f"012:IssueComment{comment.id}".encode()).decode(),
            "url": f"{r}/issues/comments/{comment.id}",
            "html_url": f"{html}/{self.full_name}/pull/{pr.number}#issuecomment-{comment.id}",
            "body": comment.body,
            "user": self._user(comment.user),
            "created_at": comment.created_at,
            "updated_at": comment.created_at,
            "issue_url": f"{r}/issues/{pr.number}",
            "author_association": self._association(comment.user),
        }

    def _page(self, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """GitHub's pagination: per_page (max 100), page, and a Link header pointing at the fake."""
        args = flask.request.args
        per_page = max(1, min(100, int(args.get("per_page", 30))))
        page = max(1, int(args.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        links = []

        def link(number: int, rel: str) -> str:
            query = {**args.to_dict(), "per_page": str(per_page), "page": str(number)}
            return f'<{flask.request.base_url}?{urllib.parse.urlencode(query)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    def _empty(self) -> flask.Response:
        response = self._json(None, 204)
        response.set_data(b"")
        del response.headers["Content-Type"]
        return response

    def _body(self) -> Any:
        data = flask.request.get_json(silent=True)
        if data is None:
            raise ApiError(400, "Problems parsing JSON", docs="https://docs.github.com/rest")
        return data

    def _pr(self, number: int) -> Pull:
        pr = self.pulls.get(number)
        if pr is None:
            raise ApiError(404, "Not Found", docs="https://docs.github.com/rest/pulls/pulls#get-a-pull-request")
        return pr

    def _invalid(self, message: str, resource: str, field_name: str, code: str = "invalid") -> ApiError:
        return ApiError(
            422,
            message,
            errors=[{"resource": resource, "field": field_name, "code": code}],
            docs="https://docs.github.com/rest",
        )

    # --- endpoints -----------------------------------------------------------------------------------

    def get_repo(self, user: User) -> flask.Response:
        return self._json(self._repo(user, full=True))

    def get_ref(self, user: User, ref: str) -> flask.Response:
        sha = self.git.rev(f"refs/{ref}") if ref.startswith(("heads/", "tags/")) else None
        if sha is None:
            raise ApiError(404, "Not Found", docs="https://docs.github.com/rest/git/refs#get-a-reference")
        return self._json(self._ref(f"refs/{ref}", sha))

    def create_ref(self, user: User) -> flask.Response:
        data = self._body()
        ref, sha = data.get("ref", ""), data.get("sha", "")
        docs = "https://docs.github.com/rest/git/refs#create-a-reference"
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.", docs=docs)
        if not self.git.exists(sha, "commit"):
            raise ApiError(422, "Object does not exist", docs=docs)
        if not self.git.update_ref(ref, sha, ZERO):
            raise ApiError(422, "Reference already exists", docs=docs)
        return self._json(self._ref(ref, sha), 201, {"Location": f"{self._repo_api()}/git/{ref}"})

    def update_ref(self, user: User, ref: str) -> flask.Response:
        data = self._body()
        full = f"refs/{ref}"
        docs = "https://docs.github.com/rest/git/refs#update-a-reference"
        old = self.git.rev(full)
        if old is None:
            raise ApiError(422, "Reference does not exist", docs=docs)
        new = data.get("sha", "")
        if not self.git.exists(new, "commit"):
            raise ApiError(422, "Object does not exist", docs=docs)
        if not data.get("force") and not self.git.is_ancestor(old, new):
            raise ApiError(422, "Update is not a fast forward", docs=docs)
        if not self.git.update_ref(full, new, old):
            raise ApiError(422, "Reference cannot be updated", docs=docs)
        return self._json(self._ref(full, new))

    def delete_ref(self, user: User, ref: str) -> flask.Response:
        full = f"refs/{ref}"
        if self.git.rev(full) is None or not self.git.delete_ref(full):
            raise ApiError(
                422, "Reference does not exist", docs="https://docs.github.com/rest/git/refs#delete-a-reference"
            )
        # GitHub closes the open pull requests of a deleted head branch.
        if ref.startswith("heads/"):
            for pr in self.pulls.values():
                if pr.state == "open" and pr.head == ref[len("heads/") :]:
                    pr.state, pr.closed_at, pr.updated_at = "closed", _now(), _now()
        return self._empty()

    def get_git_commit(self, user: User, commit_sha: str) -> flask.Response:
        if not self.git.exists(commit_sha, "commit"):
            raise ApiError(404, "Not Found", docs="https://docs.github.com/rest/git/commits#get-a-commit-object")
        return self._json(self._git_commit(self.git.out("rev-parse", commit_sha)))

    def create_git_commit(self, user: User) -> flask.Response:
        data = self._body()
        docs = "https://docs.github.com/rest/git/commits#create-a-commit"
        tree, parents = data.get("tree", ""), data.get("parents", [])
        if not self.git.exists(tree, "tree"):
            raise ApiError(422, "Tree SHA does not exist", docs=docs)
        for parent in parents:
            if not self.git.exists(parent, "commit"):
                raise ApiError(422, "Parent SHA does not exist or is not a commit object", docs=docs)
        me = self._ident(user.login)

        def ident(given: dict[str, Any] | None) -> tuple[str, str, str]:
            if not given:
                return me
            date = given.get("date")
            stamp = f"{int(datetime.fromisoformat(date).timestamp())} +0000" if date else me[2]
            return given.get("name", me[0]), given.get("email", me[1]), stamp

        author = ident(data.get("author"))
        committer = ident(data.get("committer")) if data.get("committer") else author
        sha = self.git.commit(tree, parents, data.get("message", ""), author=author, committer=committer)
        return self._json(self._git_commit(sha), 201, {"Location": f"{self._repo_api()}/git/commits/{sha}"})

    def create_tree(self, user: User) -> flask.Response:
        data = self._body()
        docs = "https://docs.github.com/rest/git/trees#create-a-tree"
        base = data.get("base_tree")
        if base and not self.git.exists(base, "tree"):
            base_commit = self.git.rev(base)
            if base_commit is None:
                raise ApiError(422, "base_tree is not a valid tree oid", docs=docs)
            base = self.git.read_commit(base_commit)["tree"]
        entries: list[tuple[str, str, str | None]] = []
        for item in data.get("tree", []):
            path, mode = item.get("path", ""), item.get("mode", "100644")
            if "content" in item and item.get("sha"):
                raise ApiError(422, "Only one of 'content' or 'sha' may be given", docs=docs)
            if "content" in item:
                entries.append((path, mode, self.git.blob(item["content"].encode())))
            elif item.get("sha") is None:
                entries.append((path, mode, None))
            elif self.git.exists(item["sha"], item.get("type", "blob")):
                entries.append((path, mode, item["sha"]))
            else:
                raise ApiError(422, f"tree.sha {item['sha']} is not a valid {item.get('type', 'blob')}", docs=docs)
        sha = self.git.tree(base, entries)
        r = self._repo_api()
        tree = [
            {
                "path": e["path"],
                "mode": e["mode"],
                "type": e["type"],
                "sha": e["sha"],
                **({"size": int(e["size"])} if e["type"] == "blob" else {}),
                "url": f"{r}/git/{e['type']}s/{e['sha']}",
            }
            for e in self.git.ls_tree(sha)
        ]
        return self._json(
            {"sha": sha, "url": f"{r}/git/trees/{sha}", "tree": tree, "truncated": False},
            201,
            {"Location": f"{r}/git/trees/{sha}"},
        )

    def get_contents(self, user: User, path: str) -> flask.Response:
        ref = flask.request.args.get("ref") or self.default_branch
        rev = self.git.branch(ref) or self.git.rev(ref)
        docs = "https://docs.github.com/rest/repos/contents#get-repository-content"
        if rev is None:
            raise ApiError(404, f"No commit found for the ref {ref}", docs=docs)
        path = path.strip("/")
        kind = self.git.path_type(rev, path)
        r, html = self._repo_api(), self._html()

        def entry(p: str, sha: str, kind: str, size: int) -> dict[str, Any]:
            self_url = f"{r}/contents/{urllib.parse.quote(p)}?ref={urllib.parse.quote(ref)}"
            git_url = f"{r}/git/{'blobs' if kind == 'blob' else 'trees'}/{sha}"
            page = f"{html}/{self.full_name}/{'blob' if kind == 'blob' else 'tree'}/{ref}/{p}"
            return {
                "type": "file" if kind == "blob" else "dir",
                "size": size,
                "name": p.rsplit("/", 1)[-1],
                "path": p,
                "sha": sha,
                "url": self_url,
                "git_url": git_url,
                "html_url": page,
                "download_url": f"{html}/raw/{self.full_name}/{ref}/{p}" if kind == "blob" else None,
                "_links": {"self": self_url, "git": git_url, "html": page},
            }

        if kind == "blob":
            content = self.git.show(rev, path) or b""
            sha = self.git.out("rev-parse", f"{rev}:{path}")
            encoded = base64.encodebytes(content).decode()  # GitHub wraps base64 at 60-76 columns too
            return self._json({**entry(path, sha, "blob", len(content)), "content": encoded, "encoding": "base64"})
        if kind == "tree":
            items = []
            for e in self.git.ls_tree(f"{rev}:{path}"):
                size = int(e["size"]) if e["type"] == "blob" else 0
                items.append(entry(f"{path}/{e['path']}", e["sha"], e["type"], size))
            return self._json(items)
        raise ApiError(404, "Not Found", docs=docs)

    def list_pulls(self, user: User) -> flask.Response:
        args = flask.request.args
        state, head, base = args.get("state", "open"), args.get("head"), args.get("base")
        pulls = [p for p in self.pulls.values() if state in ("all", p.state)]
        if head:
            owner, _, ref = head.rpartition(":")
            pulls = [p for p in pulls if p.head == ref and (not owner or owner.lower() == self.owner.lower())]
        if base:
            pulls = [p for p in pulls if p.base == base]
        descending = args.get("direction", "desc") == "desc"
        pulls.sort(key=lambda p: p.number, reverse=descending)
        page, headers = self._page(pulls)
        return self._json([self._pull(p, full=False) for p in page], 200, headers)

    def create_pull(self, user: User) -> flask.Response:
        data = self._body()
        head = str(data.get("head", ""))
        owner, _, head_ref = head.rpartition(":")
        base = str(data.get("base", ""))
        if owner and owner.lower() != self.owner.lower():
            raise self._invalid("Validation Failed", "PullRequest", "head")
        base_sha = self.git.branch(base)
        head_sha = self.git.branch(head_ref)
        if base_sha is None:
            raise self._invalid("Validation Failed", "PullRequest", "base")
        if head_sha is None:
            raise self._invalid("Validation Failed", "PullRequest", "head")
        for pr in self.pulls.values():
            if pr.state == "open" and pr.head == head_ref and pr.base == base:
                raise ApiError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {self.owner}:{head_ref}.",
                        }
                    ],
                    docs="https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                )
        if not self.git.commits_between(base_sha, head_sha):
            raise ApiError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"No commits between {base} and {head_ref}",
                    }
                ],
                docs="https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            )
        number = max([*self.pulls, 0]) + 1
        now = _now()
        pr = Pull(
            number=number,
            id=next(self._ids),
            title=str(data.get("title", "")),
            body=data.get("body"),
            user=user.login,
            head=head_ref,
            base=base,
            head_sha=head_sha,
            base_sha=base_sha,
            created_at=now,
            updated_at=now,
            draft=bool(data.get("draft", False)),
        )
        self.pulls[number] = pr
        return self._json(self._pull(pr, full=True), 201, {"Location": f"{self._repo_api()}/pulls/{number}"})

    def get_pull(self, user: User, pull_number: int) -> flask.Response:
        return self._json(self._pull(self._pr(pull_number), full=True))

    def update_pull(self, user: User, pull_number: int) -> flask.Response:
        pr = self._pr(pull_number)
        data = self._body()
        if "title" in data:
            pr.title = data["title"]
        if "body" in data:
            pr.body = data["body"]
        state = data.get("state")
        if state == "closed" and pr.state == "open":
            self._head_sha(pr)
            pr.state, pr.closed_at = "closed", _now()
        elif state == "open" and pr.state == "closed" and pr.merged_at is None:
            if self.git.branch(pr.head) is None:
                raise self._invalid("Validation Failed", "PullRequest", "state")
            pr.state, pr.closed_at = "open", None
        pr.updated_at = _now()
        return self._json(self._pull(pr, full=True))

    def merge_pull(self, user: User, pull_number: int) -> flask.Response:
        pr = self._pr(pull_number)
        data = flask.request.get_json(silent=True) or {}
        docs = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
        if pr.state != "open":
            raise ApiError(405, "Pull Request is not open", docs=docs)
        head = self._head_sha(pr)
        if data.get("sha") and data["sha"] != head:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.", docs=docs)
        method = data.get("merge_method", "merge")
        if method not in ("merge", "squash"):
            raise ApiError(405, f"{method.title()} merges are not allowed on this repository.", docs=docs)
        base = self.git.branch(pr.base)
        assert base
        tree = self.git.merge_tree(base, head)
        if tree is None:
            raise ApiError(405, "Pull Request is not mergeable", docs=docs)
        title = data.get("commit_title") or (
            f"Merge pull request #{pr.number} from {self.owner}/{pr.head}"
            if method == "merge"
            else f"{pr.title} (#{pr.number})"
        )
        message = data.get("commit_message", pr.title if method == "merge" else "")
        # Merges GitHub makes are committed by "GitHub" and signed with its web-flow key.
        sha = self.git.commit(
            tree,
            [base, head] if method == "merge" else [base],
            f"{title}\n\n{message}\n" if message else f"{title}\n",
            author=self._ident(user.login),
            committer=("GitHub", "noreply@github.com", _git_date()),
            signing_key=self.web_flow_key,
            gnupg_home=self.gnupg_home,
        )
        if not self.git.update_ref(f"refs/heads/{pr.base}", sha, base):
            raise ApiError(409, "Base branch was modified. Review and try the merge again.", docs=docs)
        now = _now()
        pr.commits = self.git.commits_between(base, head)
        pr.state, pr.merged_at, pr.closed_at, pr.updated_at = "closed", now, now, now
        pr.merged_by, pr.merge_commit_sha, pr.base_sha = user.login, sha, base
        return self._json({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    def list_pull_commits(self, user: User, pull_number: int) -> flask.Response:
        """The pull request's commits, oldest first, at most 250 (as GitHub lists them)."""
        pr = self._pr(pull_number)
        if pr.merged_at is not None:
            shas = pr.commits
        else:
            base = self.git.branch(pr.base) if pr.state == "open" else pr.base_sha
            shas = self.git.commits_between(base or pr.base_sha, self._head_sha(pr))
        page, headers = self._page(list(reversed(shas))[:250])
        return self._json([self._commit(sha) for sha in page], 200, headers)

    def list_reviews(self, user: User, pull_number: int) -> flask.Response:
        pr = self._pr(pull_number)
        page, headers = self._page(pr.reviews)
        return self._json([self._review(pr, r) for r in page], 200, headers)

    def create_review(self, user: User, pull_number: int) -> flask.Response:
        pr = self._pr(pull_number)
        data = self._body()
        docs = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
        event = data.get("event")
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}.get(
            event or "", "PENDING"
        )
        if pr.state != "open":
            raise ApiError(422, "Unprocessable Entity", errors=["Can not review a closed pull request"], docs=docs)
        if state in ("APPROVED", "CHANGES_REQUESTED") and user.login == pr.user:
            verb = "approve" if state == "APPROVED" else "request changes on"
            raise ApiError(422, "Unprocessable Entity", errors=[f"Can not {verb} your own pull request"], docs=docs)
        review = Review(
            id=next(self._ids),
            user=user.login,
            state=state,
            body=data.get("body", ""),
            commit_id=data.get("commit_id") or self._head_sha(pr),
            submitted_at=_now(),
        )
        pr.reviews.append(review)
        if user.login in pr.reviewers:
            pr.reviewers.remove(user.login)
        return self._json(self._review(pr, review))

    def request_reviewers(self, user: User, pull_number: int) -> flask.Response:
        pr = self._pr(pull_number)
        data = self._body()
        users, teams = data.get("reviewers", []), data.get("team_reviewers", [])
        if pr.user in users:
            raise ApiError(422, "Review cannot be requested from pull request author.")
        unknown = [u for u in users if u not in self.users or self.users[u].permission == "none"]
        unknown += [t for t in teams if t not in self.teams]
        if unknown:
            raise ApiError(
                422,
                "Reviews may only be requested from collaborators. One or more of the users or teams you specified "
                f"is not a collaborator of the {self.full_name} repository.",
            )
        pr.reviewers += [u for u in users if u not in pr.reviewers]
        pr.teams += [t for t in teams if t not in pr.teams]
        return self._json(self._pull(pr, full=False), 201)

    def add_labels(self, user: User, issue_number: int) -> flask.Response:
        pr = self._pr(issue_number)
        data = self._body()
        names = data.get("labels", []) if isinstance(data, dict) else data
        if isinstance(names, str):
            names = [names]
        for item in names:
            name = item["name"] if isinstance(item, dict) else str(item)
            self.labels.setdefault(name, next(self._ids))  # GitHub creates labels it does not know
            if name not in pr.labels:
                pr.labels.append(name)
        return self._json([self._label(name) for name in pr.labels])

    def list_comments(self, user: User, issue_number: int) -> flask.Response:
        pr = self._pr(issue_number)
        page, headers = self._page(pr.comments)
        return self._json([self._comment(pr, c) for c in page], 200, headers)

    def create_comment(self, user: User, issue_number: int) -> flask.Response:
        pr = self._pr(issue_number)
        text = self._body().get("body")
        if not text:
            raise self._invalid("Validation Failed", "IssueComment", "body", "missing_field")
        comment = Comment(id=next(self._ids), user=user.login, body=text, created_at=_now())
        pr.comments.append(comment)
        r = self._repo_api()
        return self._json(self._comment(pr, comment), 201, {"Location": f"{r}/issues/comments/{comment.id}"})

    def commit_pulls(self, user: User, commit_sha: str) -> flask.Response:
        sha = self.git.rev(commit_sha) if re.fullmatch(r"[0-9a-f]{4,40}", commit_sha) else None
        if sha is None:
            raise ApiError(
                422, f"No commit found for SHA: {commit_sha}", docs="https://docs.github.com/rest/commits/commits"
            )
        default = self.head()
        if self.git.is_ancestor(sha, default):
            # On the default branch: the merged pull request that brought the commit in.
            found = [p for p in self.pulls.values() if p.merge_commit_sha == sha or sha in p.commits]
        else:
            found = [p for p in self.pulls.values() if sha in self.git.commits_between(p.base_sha, self._head_sha(p))]
        found.sort(key=lambda p: p.number, reverse=True)
        page, headers = self._page(found)
        return self._json([self._pull(p, full=False) for p in page], 200, headers)

    def dispatch(self, user: User) -> flask.Response:
        data = self._body()
        docs = "https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event"
        if not data.get("event_type"):
            raise ApiError(422, 'Invalid request.\n\nNo subschema in "anyOf" matched.', docs=docs)
        payload = data.get("client_payload", {})
        if not isinstance(payload, dict) or len(payload) > 10:
            raise ApiError(422, "client_payload: no more than 10 top-level properties are allowed", docs=docs)
        self.dispatches.append({"event_type": data["event_type"], "client_payload": payload, "sender": user.login})
        return self._empty()
