"""The GitLab forge: approval requests as merge requests, through python-gitlab (gitlab.com or self-managed).

A request is branch `gitgate/<namespace>/<name>/<hook>/<checksum>` with one commit (made with the
commits API, one action) that changes only the gate file, and one open merge request from it into
the base branch. Any number of callers converge on that one merge request: a caller that loses a
race (the branch exists: 400; the merge request exists: 409) finds and returns the winner's. A
branch without an open request (a crashed caller's, one left over from a closed or merged request,
or anyone else's) is rewritten (`force`) to hold exactly this request's change on the current base.

How a commit was reviewed (`review`, for --require-approvals) comes from
`GET /projects/:id/repository/commits/:sha/merge_requests` (the merged MR whose merge or squash
commit it is) and `GET .../merge_requests/:iid/approvals`. GitLab does not say on which head commit
an approval was given; what it does give, and what this adapter reads:
- `approved_by[].approved_at` (newer GitLab versions) together with the MR's diff versions
  (`GET .../merge_requests/:iid/versions`, one per push, each with `head_commit_sha` and
  `created_at`): an approval was given on the head of the last version created before it. GitLab
  creates a version shortly *after* a push, so an approval in that gap is counted on the older head:
  the mistake, if any, is on the strict side.
- Without `approved_at`: when the project resets approvals on push (`reset_approvals_on_push` in
  `GET /projects/:id/approvals`, GitLab Premium), every approval GitLab still lists was given on the
  final head. Otherwise the head is unknown (`Approver.commit` is empty) and the approval does not
  count toward --require-approvals (fail closed).

Who added commits (`Review.committers`, whose approvals do not count): the author and committer
emails of `GET .../merge_requests/:iid/commits`, tied to users by what GitLab shows a token: the
token's own user (`GET /user`: its email, commit email and public email; gitgate's bot), GitLab's
no-reply addresses (`<id>-<username>@users.noreply.<host>`), and public emails (`GET
/users?search=<email>`). An email tied to nobody (a private one) leaves the commit unattributed, and
then no approval counts -- unless the project has "Prevent approvals by users who add commits" on
(`merge_requests_disable_committers_approval`), in which case GitLab, which knows every user's
confirmed emails, has already refused the approvals of whoever committed.

Errors: every python-gitlab and transport error is wrapped in a ForgeError subclass whose message
says what to do. 5xx answers, refused connections and timeouts are retried `retries` times, 0.1 s,
0.2 s, ... apart (or after the answer's Retry-After when that is at most RETRY_SLEEP_CAP); a longer
Retry-After, and any 429, is not slept on but raised (ForgeUnavailable / ForgeRateLimited with
`retry_after`) for the caller to schedule. python-gitlab's own retries are off: they sleep for as
long as a Retry-After says, an hour if it says so, on the thread that asked.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import gitlab
import gitlab.exceptions
import requests
from gitlab.v4.objects import CurrentUserManager, Project, ProjectMergeRequest

from gitgate.errors import UsageError
from gitgate.forges.base import (
    Approver,
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgePermissionError,
    ForgeRateLimited,
    ForgeUnavailable,
    OpenRequest,
    Review,
)
from gitgate.request import (
    BRANCH_PREFIX,
    RequestRef,
    RequestSpec,
    body,
    branch_name,
    change,
    dispatch_fields,
    gate_file,
    title,
)

T = TypeVar("T")

DEFAULT_API_URL = "https://gitlab.com"
DEFAULT_RETRY_AFTER = 60.0
TRANSIENT = frozenset(gitlab.const.RETRYABLE_TRANSIENT_ERROR_CODES)
RETRY_SLEEP_CAP = 2.0  # the longest sleep between two tries inside one call
# GitLab's no-reply commit email names the user: 1234-octocat@users.noreply.gitlab.com.
_NOREPLY = re.compile(r"\d+-([^@\s]+)@users\.noreply\.[^@\s]+", re.IGNORECASE)
ACCESS_NEEDED = (
    "a GitLab token with the `api` scope whose user (or project/group access token bot) has at least the "
    "Developer role in the project"
)


class _Refused(ForgeError):
    """GitLab refused a request as invalid or conflicting (400, 409, 422): callers recognise races by it."""

    def __init__(self, message: str, code: int, detail: str) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


class _Client(gitlab.Gitlab):
    """python-gitlab with gitgate's retry policy: at most `retries` retries of 5xx answers, timeouts and
    refused connections, with short sleeps (never more than RETRY_SLEEP_CAP), and no sleeping on 429 or
    on a long Retry-After (the caller gets the error, with the wait, and decides)."""

    def __init__(self, *args: Any, retries: int, last_headers: Callable[[], Mapping[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gitgate_retries = retries
        self.last_headers = last_headers

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.update(max_retries=0, obey_rate_limit=False, retry_transient_errors=False)
        tries = 0
        while True:
            try:
                return super().http_request(verb, path, *args, **kwargs)
            except gitlab.exceptions.GitlabHttpError as e:
                if e.response_code not in TRANSIENT or tries >= self.gitgate_retries:
                    raise
                asked = _asked_wait(self.last_headers())
                if asked is not None and asked > RETRY_SLEEP_CAP:
                    raise  # not slept on here: the caller schedules the next try
                wait = 0.1 * 2**tries if asked is None else asked
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout):
                if tries >= self.gitgate_retries:
                    raise
                wait = 0.1 * 2**tries
            tries += 1
            time.sleep(wait)


class GitLabForge:
    name = "gitlab"

    def __init__(
        self,
        *,
        project: str,
        token: str,
        api_url: str = DEFAULT_API_URL,
        base_branch: str = "main",
        timeout: float = 10.0,
        retries: int = 2,
        trigger_token: str | None = None,
    ) -> None:
        project = project.strip().strip("/")
        if not project or ("/" not in project and not project.isdigit()):
            raise UsageError(f"--forge-repo {project!r}: give the GitLab project as group/project (or its number)")
        if retries < 0:
            raise UsageError(f"retries must be 0 or more, not {retries}")
        self.project_path = project
        self.base = base_branch
        self.api_url = _base_url(api_url)
        self.timeout = timeout
        self.retries = retries
        self.trigger_token = trigger_token
        self._local = threading.local()
        self._lock = threading.Lock()
        self._project_obj: Project | None = None
        self._me: tuple[str, frozenset[str]] | None = None  # the token's user: username, emails
        session = requests.Session()
        session.hooks["response"].append(self._remember)
        self._gl = _Client(
            self.api_url,
            private_token=token,
            timeout=timeout,
            retries=retries,
            last_headers=lambda: getattr(self._local, "headers", None) or {},
            per_page=100,
            session=session,
            user_agent="gitgate",
        )

    def close(self) -> None:
        """Close the HTTP connections this forge holds."""
        self._gl.session.close()

    def __repr__(self) -> str:
        return f"GitLabForge(project={self.project_path!r}, api_url={self.api_url!r}, base_branch={self.base!r})"

    # --- the Forge protocol -------------------------------------------------------------------

    def open_request(self, spec: RequestSpec, *, gates_path: str, now: datetime) -> RequestRef:
        branch = branch_name(spec)
        found = self._open_mr(branch)
        if found is not None:
            return _ref(found, created=False)
        project = self._project()
        reviewer_ids = self._user_ids(spec.reviewers)
        path = gate_file(spec, gates_path)
        base_sha = self._head(self.base)
        current = self._read(path, base_sha)
        commit: dict[str, Any] = {
            "branch": branch,
            "start_sha": base_sha,
            "commit_message": f"{title(spec)}\n\nChanges only {path}; opened by gitgate.\n",
            "actions": [
                {
                    "action": "create" if current is None else "update",
                    "file_path": path,
                    "content": base64.b64encode(change(current, spec, now)).decode(),
                    "encoding": "base64",
                }
            ],
        }
        try:
            self._call(f"creating branch {branch}", lambda: project.commits.create(commit))
        except _Refused as e:
            if e.code != 400 or "already exists" not in e.detail:
                raise
            found = self._take_over(branch, commit)
            if found is not None:
                return _ref(found, created=False)
        return self._create_mr(spec, branch, gates_path=gates_path, now=now, reviewer_ids=reviewer_ids)

    def close_request(self, branch: str, comment: str) -> bool:
        mr = self._open_mr(branch)
        if mr is None:
            return False
        self._call(f"commenting on merge request !{mr.iid}", lambda: mr.notes.create({"body": comment}))
        mr.state_event = "close"
        self._call(f"closing merge request !{mr.iid}", mr.save)
        with contextlib.suppress(ForgeNotFound):  # already gone: GitLab or a person deleted it
            self._call(f"deleting branch {branch}", lambda: self._project().branches.delete(branch))
        return True

    def open_requests(self) -> list[OpenRequest]:
        project = self._project()

        def listing() -> list[OpenRequest]:
            mrs = project.mergerequests.list(state="opened", target_branch=self.base, iterator=True)
            return [
                OpenRequest(mr.web_url, mr.iid, mr.source_branch, mr.title, mr.author["username"])
                for mr in mrs
                if mr.source_branch.startswith(BRANCH_PREFIX)
            ]

        return self._call("listing open merge requests", listing)

    def review(self, commit: str) -> Review | None:
        project = self._project()
        doing = f"finding the merge request of commit {commit[:12]}"
        try:
            related: list[dict[str, Any]] = list(project.commits.get(commit, lazy=True).merge_requests(get_all=True))
        except gitlab.exceptions.GitlabError as e:
            if e.response_code == 404 and "commit" in str(e.error_message).lower():
                return None  # GitLab does not know the commit: it came from no merge request there
            raise self._error(e, doing) from e
        except requests.RequestException as e:
            raise self._error(e, doing) from e
        chosen = next((m for m in related if _produced(m, commit, self.base)), None)
        if chosen is None:
            return None
        mr = self._call(f"reading merge request !{chosen['iid']}", lambda: project.mergerequests.get(chosen["iid"]))
        approvals = self._approvers(mr)
        committers, unattributed = self._committers(mr)
        return Review(
            number=mr.iid,
            url=mr.web_url,
            author=mr.author["username"],
            head=mr.sha,
            approvals=approvals,
            committers=committers,
            unattributed=unattributed,
        )

    def dispatch(self, spec: RequestSpec) -> None:
        if spec.revoke:
            raise ForgeError(
                f"a revocation of {spec.hook_word} for {spec.canary} cannot be dispatched: the request job runs "
                "`gitgate request`, which opens approvals; use --request-via open for revocations"
            )
        variables = {f"GITGATE_{key.upper()}": value for key, value in dispatch_fields(spec).items()}
        project = self._project()
        doing = f"starting the request pipeline on {self.base}"
        if self.trigger_token:
            token = self.trigger_token
            self._call(doing, lambda: project.trigger_pipeline(self.base, token, variables=variables))
        else:
            data = {"ref": self.base, "variables": [{"key": k, "value": v} for k, v in variables.items()]}
            self._call(doing, lambda: project.pipelines.create(data))

    # --- steps ----------------------------------------------------------------------------------

    def _project(self) -> Project:
        with self._lock:
            if self._project_obj is None:
                self._project_obj = self._call(
                    f"reading project {self.project_path}", lambda: self._gl.projects.get(self.project_path)
                )
            return self._project_obj

    def _open_mr(self, branch: str) -> ProjectMergeRequest | None:
        project = self._project()
        mrs = self._call(
            f"looking for the merge request of {branch}",
            lambda: project.mergerequests.list(
                state="opened", source_branch=branch, target_branch=self.base, get_all=True
            ),
        )
        return min(mrs, key=lambda m: m.iid, default=None)

    def _head(self, branch: str) -> str:
        found = self._call(f"reading branch {branch}", lambda: self._project().branches.get(branch))
        sha: str = found.commit["id"]
        return sha

    def _read(self, path: str, ref: str) -> bytes | None:
        project = self._project()
        try:
            found = project.files.get(file_path=path, ref=ref)
        except gitlab.exceptions.GitlabError as e:
            if e.response_code == 404 and "file" in str(e.error_message).lower():
                return None
            raise self._error(e, f"reading {path} at {ref[:12]}") from e
        except requests.RequestException as e:
            raise self._error(e, f"reading {path} at {ref[:12]}") from e
        return base64.b64decode(found.content)

    def _user_ids(self, usernames: Iterable[str]) -> list[int]:
        ids = []
        for raw in usernames:
            name = raw.strip().lstrip("@")
            users = self._call(f"looking up reviewer {name}", functools.partial(self._users, name))
            match = [u for u in users if str(u.username).lower() == name.lower()]
            if not match:
                raise ForgeNotFound(
                    f"--reviewers: GitLab at {self.api_url} has no user {name!r}; give usernames as in @mentions"
                )
            ids.append(int(match[0].id))
        return ids

    def _users(self, username: str) -> list[Any]:
        return list(self._gl.users.list(username=username, get_all=True))

    def _take_over(self, branch: str, commit: dict[str, Any]) -> ProjectMergeRequest | None:
        """The branch exists: return its open request if it has one. Otherwise the branch is another
        caller's (racing us, or crashed), or left over from a closed or merged request, or someone
        else's: rewrite it to hold exactly this request's change on the current base."""
        found = self._open_mr(branch)
        if found is not None:
            return found
        project = self._project()
        forced = {**commit, "force": True}
        self._call(f"rewriting branch {branch} on {self.base}", lambda: project.commits.create(forced))
        return None

    def _create_mr(
        self, spec: RequestSpec, branch: str, *, gates_path: str, now: datetime, reviewer_ids: list[int]
    ) -> RequestRef:
        project = self._project()
        data: dict[str, Any] = {
            "source_branch": branch,
            "target_branch": self.base,
            "title": title(spec),
            "description": body(spec, gates_path, now),
            "remove_source_branch": True,
            "squash": False,
        }
        if spec.labels:
            data["labels"] = list(spec.labels)
        if reviewer_ids:
            data["reviewer_ids"] = reviewer_ids
        try:
            mr = self._call(f"opening the merge request of {branch}", lambda: project.mergerequests.create(data))
        except _Refused as e:
            if e.code not in (400, 409, 422) or "already exists" not in e.detail:
                raise
            # Lost the race for the merge request: return the winner's.
            for pause in (0.0, 0.2, 0.5, 1.0):
                time.sleep(pause)
                found = self._open_mr(branch)
                if found is not None:
                    return _ref(found, created=False)
            raise
        return _ref(mr, created=True)

    def _approvers(self, mr: ProjectMergeRequest) -> tuple[Approver, ...]:
        state = self._call(f"reading the approvals of merge request !{mr.iid}", mr.approvals.get)
        entries: list[dict[str, Any]] = list(state.attributes.get("approved_by") or [])
        versions: list[tuple[datetime, str]] | None = None
        resets: bool | None = None
        approvers = []
        for entry in entries:
            login = str((entry.get("user") or {}).get("username") or "")
            if not login:
                continue
            at = _time(entry.get("approved_at"))
            if at is not None:
                if versions is None:
                    versions = self._versions(mr)
                commit = _head_at(versions, at)
            else:
                if resets is None:
                    resets = self._resets_approvals_on_push()
                commit = mr.sha if resets else ""
            approvers.append(Approver(login, commit))
        return tuple(approvers)

    def _versions(self, mr: ProjectMergeRequest) -> list[tuple[datetime, str]]:
        diffs = self._call(f"reading the pushes of merge request !{mr.iid}", lambda: mr.diffs.list(get_all=True))
        found = []
        for diff in diffs:
            at = _time(diff.attributes.get("created_at"))
            if at is not None and diff.attributes.get("head_commit_sha"):
                found.append((at, str(diff.attributes["head_commit_sha"])))
        return sorted(found)

    def _resets_approvals_on_push(self) -> bool:
        return bool(self._approval_settings().get("reset_approvals_on_push"))

    def _approval_settings(self) -> dict[str, Any]:
        project = self._project()
        try:
            settings = self._call("reading the project's approval settings", project.approvals.get)
        except (ForgeNotFound, ForgePermissionError):
            return {}  # GitLab Free has no approval settings: approvals are not reset on push
        return dict(settings.attributes)

    def _committers(self, mr: ProjectMergeRequest) -> tuple[frozenset[str], tuple[str, ...]]:
        """The users tied to the emails of the merge request's commits (authors and committers), and
        the commits whose email is tied to nobody gitgate can see."""
        commits = self._call(f"reading the commits of merge request !{mr.iid}", lambda: list(mr.commits()))
        by_email: dict[str, list[str]] = {}
        for c in commits:
            data = c.attributes
            for role in ("author", "committer"):
                email = str(data.get(f"{role}_email") or "").strip()
                said = f"{str(data.get('id') or '')[:12]} by {data.get(f'{role}_name') or ''} <{email}>"
                by_email.setdefault(email.casefold(), []).append(said)
        usernames: set[str] = set()
        nobody: list[str] = []
        for email, commits_of in by_email.items():
            found = self._users_with_email(email)
            usernames |= found
            if not found:
                nobody += commits_of
        if nobody and self._approval_settings().get("merge_requests_disable_committers_approval"):
            nobody = []  # GitLab has refused the approvals of everyone who committed, by every confirmed email
        return frozenset(usernames), tuple(dict.fromkeys(nobody))

    def _users_with_email(self, email: str) -> set[str]:
        """The usernames a commit email is tied to, as far as this token can see; empty for none."""
        if "@" not in email:
            return set()
        me, mine = self._whoami()
        if email in mine:
            return {me}
        noreply = _NOREPLY.fullmatch(email)
        if noreply:
            return {noreply.group(1)}
        found = self._call(
            f"looking up who has the public email {email}",
            lambda: list(self._gl.users.list(search=email, get_all=True)),
        )
        return {str(u.username) for u in found}

    def _whoami(self) -> tuple[str, frozenset[str]]:
        """The token's own user (gitgate's bot): its username and every email GitLab shows it."""
        with self._lock:
            if self._me is None:
                user = self._call("reading the token's user", lambda: CurrentUserManager(self._gl).get())
                data = user.attributes
                emails = {str(data.get(k) or "").strip().casefold() for k in ("email", "commit_email", "public_email")}
                self._me = (str(data.get("username") or ""), frozenset(e for e in emails if "@" in e))
            return self._me

    # --- errors -----------------------------------------------------------------------------

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.headers = response.headers

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (gitlab.exceptions.GitlabError, requests.RequestException) as e:
            raise self._error(e, doing) from e

    def _error(self, e: Exception, doing: str) -> ForgeError:
        where = f"GitLab project {self.project_path} at {self.api_url}"
        if isinstance(e, requests.Timeout):
            return ForgeUnavailable(
                f"{where} did not answer within {self.timeout:g}s while {doing} ({self.retries} retries); "
                "GitLab is slow or unreachable: try again later"
            )
        if isinstance(e, requests.RequestException):
            return ForgeUnavailable(
                f"cannot reach GitLab at {self.api_url} while {doing}: {e.__class__.__name__}; "
                "check --api-url and the network, then try again"
            )
        if not isinstance(e, gitlab.exceptions.GitlabError):
            return ForgeError(f"GitLab call failed while {doing}: {e}")
        code = e.response_code or 0
        detail = _detail(e)
        if isinstance(e, gitlab.exceptions.RedirectError):
            return ForgeError(f"GitLab redirected a write while {doing}: give --api-url as the final https URL ({e})")
        if isinstance(e, gitlab.exceptions.GitlabParsingError) or (code == 0 and not detail):
            return ForgeError(
                f"{self.api_url} did not answer like GitLab's API while {doing}: check --api-url "
                "(the GitLab address, e.g. https://gitlab.example.com)"
            )
        if code == 401:
            return ForgeAuthError(
                f"GitLab at {self.api_url} rejected the token while {doing} ({detail}): it is missing, wrong, "
                f"expired or revoked. Pass {ACCESS_NEEDED}, as --token or GITLAB_TOKEN"
            )
        if code == 403:
            if "scope" in detail.lower():
                need = "the token has too narrow a scope (read_api or read_repository): give it the `api` scope"
            else:
                need = f"give {ACCESS_NEEDED} (Maintainer to write to a protected branch)"
            return ForgePermissionError(f"{where} refused {doing} ({detail}): {need}")
        if code == 404:
            if "project" in detail.lower() or doing.startswith("reading project"):
                return ForgeNotFound(
                    f"{where} was not found while {doing}: check --forge-repo (group/project, as in the project's "
                    "URL) and --api-url; a private project also answers 404 when the token's user is not a member"
                )
            return ForgeNotFound(f"{where}: {detail} while {doing}")
        if code == 429:
            wait = _retry_after(getattr(self._local, "headers", None) or {})
            return ForgeRateLimited(
                f"{where} rate-limited {doing}; retry in {wait:.0f}s (or give gitgate a token with its own limit)",
                wait,
            )
        if code >= 500:
            asked_wait = _asked_wait(getattr(self._local, "headers", None) or {})
            asked = (
                f" (it asks to wait {asked_wait:.0f}s)"
                if asked_wait is not None
                else f", also after {self.retries} retries"
            )
            return ForgeUnavailable(
                f"{where} answered {code} while {doing}{asked}; GitLab is having trouble: try again later", asked_wait
            )
        if code == 400 and "pipeline variables" in detail.lower():
            return ForgePermissionError(
                f"{where} refused {doing} ({detail}): let the token's role set pipeline variables (Settings > CI/CD "
                "> Variables > Minimum role to use pipeline variables: Developer), or use a pipeline trigger token"
            )
        return _Refused(f"{where} refused {doing}: {code} {detail}", code, detail)


# --- helpers ------------------------------------------------------------------------------------


def _base_url(api_url: str) -> str:
    url = (api_url or DEFAULT_API_URL).strip().rstrip("/")
    if url.endswith("/api/v4"):
        url = url[: -len("/api/v4")]
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--api-url {api_url!r}: give the GitLab address, e.g. https://gitlab.example.com")
    return url


def _ref(mr: ProjectMergeRequest, *, created: bool) -> RequestRef:
    return RequestRef(url=mr.web_url, number=mr.iid, branch=mr.source_branch, created=created)


def _produced(mr: Mapping[str, Any], commit: str, base: str) -> bool:
    """Whether merged request `mr` put `commit` on `base`: as its merge or squash commit, or (a
    fast-forward merge, which makes neither) as its head."""
    if mr.get("state") != "merged" or mr.get("target_branch") != base:
        return False
    merge, squash = mr.get("merge_commit_sha"), mr.get("squash_commit_sha")
    if commit in (merge, squash):
        return True
    return not merge and not squash and mr.get("sha") == commit


def _head_at(versions: list[tuple[datetime, str]], at: datetime) -> str:
    """The head of the last version (push) created at or before `at`; '' if none."""
    head = ""
    for created, sha in versions:
        if created <= at:
            head = sha
    return head


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _detail(e: gitlab.exceptions.GitlabError) -> str:
    message: Any = e.error_message
    if isinstance(message, list):
        return "; ".join(str(m) for m in message)
    if isinstance(message, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in message.items())
    return str(message or "").strip()


def _asked_wait(headers: Mapping[str, str]) -> float | None:
    """The answer's Retry-After in seconds (it may be seconds or an HTTP date); None without one."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: Retry-After, else RateLimit-Reset (a Unix time), else a minute."""
    asked = _asked_wait(headers)
    if asked is not None:
        return asked
    reset = headers.get("RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return DEFAULT_RETRY_AFTER
