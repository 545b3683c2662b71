"""GitHub (github.com or GitHub Enterprise Server) as the forge: approval requests are pull requests.

Built on PyGithub. A request is branch `gitgate/<namespace>/<name>/<hook>/<checksum>` holding one
commit, made with the git data API on top of the base branch, that changes only the gate file;
then a pull request with labels and requested reviewers. Creating the branch and the pull request
are the two points where racing callers meet; GitHub refuses the loser (422) and the loser returns
the winner's pull request.

Every PyGithub or HTTP error leaves this module as a ForgeError subclass whose message says what to
do (`raise ... from` the original).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
import urllib3
from github import Auth, Consts, Github, GithubException, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitTree import GitTree
from github.PullRequest import PullRequest
from urllib3.util.retry import Retry

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

log = logging.getLogger("gitgate.forges.github")

DEFAULT_API_URL = "https://api.github.com"
DISPATCH_EVENT = "gitgate-request"
# What a fine-grained token (or GitHub App) needs for each kind of call; classic tokens need `repo`.
READ_CONTENTS = "contents: read"
WRITE_CONTENTS = "contents: write"
READ_PULLS = "pull-requests: read"
WRITE_PULLS = "pull-requests: write"
# Only idempotent calls are retried on 5xx; a POST that failed may have been done (the next call
# then finds the branch or pull request it made). Connection errors are retried for every method.
RETRY_STATUSES = (500, 502, 503, 504)
DEFAULT_RETRY_AFTER = 60.0
# GitHub lists at most this many commits of a pull request: the rest of a longer one cannot be read.
PULL_COMMITS_LISTED = 250

_T = TypeVar("_T")


class GitHubForge:
    """The Forge protocol on GitHub's REST API.

    `seconds_between_requests`/`seconds_between_writes` keep PyGithub's polite defaults (GitHub asks
    integrations to space out writes to stay clear of secondary rate limits); tests pass 0.
    `timeout` is per HTTP request, `retries` bounds the retries of connection errors and of 5xx
    answers to idempotent calls (0 s, 1 s, 2 s, ... apart, at most 10 s). Rate limits and Retry-After
    are never slept on here: they surface as ForgeRateLimited (or ForgeUnavailable, for a 5xx) with
    GitHub's `retry_after`, for the caller to schedule.
    """

    name = "github"

    def __init__(
        self,
        *,
        repo: str,
        token: str,
        api_url: str = DEFAULT_API_URL,
        base_branch: str = "main",
        seconds_between_requests: float = Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS,
        seconds_between_writes: float = Consts.DEFAULT_SECONDS_BETWEEN_WRITES,
        timeout: int = 15,
        retries: int = 3,
    ) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise UsageError(f"--forge-repo {repo!r}: use owner/name, e.g. acme/approvals")
        if not token:
            raise ForgeAuthError(f"no GitHub token for {repo}: set --token or GITHUB_TOKEN")
        self.repo = repo
        self.owner = owner
        self.api_url = api_url.rstrip("/")
        self.base_branch = base_branch
        self.timeout = timeout
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=0.5,
            backoff_max=10,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            retry=retry,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
            user_agent="gitgate",
            per_page=100,  # GitHub's maximum: fewest calls against the rate limit
            lazy=True,
        )
        self._repo = self._gh.get_repo(repo)

    def close(self) -> None:
        self._gh.close()

    def __repr__(self) -> str:
        return f"GitHubForge({self.repo!r} on {self.api_url}, base {self.base_branch!r})"

    # --- the Forge protocol ----------------------------------------------------------------------

    def open_request(self, spec: RequestSpec, *, gates_path: str, now: datetime) -> RequestRef:
        branch = branch_name(spec)
        found = self._open_pull(branch)
        if found is not None:
            return RequestRef(found.html_url, found.number, branch, created=False)

        base = self._base_commit()
        path = gate_file(spec, gates_path)
        current = self._read(path, base.sha)
        new = change(current, spec, now)
        if new == current:
            raise ForgeError(
                f"{path} on {self.base_branch} of {self.repo} already says what {branch} would: "
                "nothing to request (gitgate answers from it once it has verified that commit)"
            )
        tree = self._call(
            "create a tree",
            WRITE_CONTENTS,
            lambda: self._repo.create_git_tree(
                [InputGitTreeElement(path, "100644", "blob", content=new.decode())], base.tree
            ),
        )
        commit = self._call(
            "create a commit", WRITE_CONTENTS, lambda: self._repo.create_git_commit(title(spec), tree, [base])
        )
        try:
            self._call(
                f"create branch {branch}",
                WRITE_CONTENTS,
                lambda: self._repo.create_git_ref(f"refs/heads/{branch}", commit.sha),
                refused=(409, 422),
            )
        except _Refused:
            # The branch exists: a racing caller made it (its pull request may be on the way), or
            # it is left from a request closed earlier.
            found = self._open_pull(branch)
            if found is not None:
                return RequestRef(found.html_url, found.number, branch, created=False)
            self._reuse_branch(branch, commit, tree, base)

        try:
            pull = self._call(
                f"open a pull request from {branch}",
                WRITE_PULLS,
                lambda: self._repo.create_pull(
                    base=self.base_branch, head=branch, title=title(spec), body=body(spec, gates_path, now)
                ),
                refused=(422,),
            )
        except _Refused as refused:
            found = self._open_pull(branch)
            if found is not None:  # a racing caller opened it first
                return RequestRef(found.html_url, found.number, branch, created=False)
            raise self._wrap(refused.error, f"open a pull request from {branch}", WRITE_PULLS) from refused.error
        self._decorate(pull, spec)
        return RequestRef(pull.html_url, pull.number, branch, created=True)

    def close_request(self, branch: str, comment: str) -> bool:
        pull = self._open_pull(branch)
        if pull is None:
            return False
        self._call(f"comment on pull request #{pull.number}", WRITE_PULLS, lambda: pull.create_issue_comment(comment))
        self._call(f"close pull request #{pull.number}", WRITE_PULLS, lambda: pull.edit(state="closed"))
        try:  # tidy up; a closed request's branch is no use, and a new request makes it afresh
            self._call(
                f"delete branch {branch}",
                WRITE_CONTENTS,
                lambda: self._gh.requester.requestJsonAndCheck("DELETE", self._ref_url(branch)),
                refused=(422,),
            )
        except (_Refused, ForgeError) as e:
            log.warning("closed %s but could not delete branch %s: %s", pull.html_url, branch, e)
        return True

    def open_requests(self) -> list[OpenRequest]:
        pulls = self._call(
            "list open pull requests",
            READ_PULLS,
            lambda: list(self._repo.get_pulls(state="open", base=self.base_branch)),
        )
        return [
            OpenRequest(url=p.html_url, number=p.number, branch=p.head.ref, title=p.title, author=_login(p.user))
            for p in pulls
            if p.head.ref.startswith(BRANCH_PREFIX) and p.head.label == f"{self.owner}:{p.head.ref}"
        ]

    def review(self, commit: str) -> Review | None:
        doing = f"find the pull request that merged {commit[:12]}"
        try:
            pulls = self._call(
                doing, READ_PULLS, lambda: list(self._repo.get_commit(commit).get_pulls()), refused=(422,)
            )
        except _Refused as refused:
            raise ForgeNotFound(
                f"GitHub has no commit {commit} in {self.repo} ({_said(refused.error)}): "
                "is --forge-repo the repo gitgate fetches with --repo?"
            ) from refused.error
        merged = [
            p
            for p in pulls
            if p.merged_at is not None and p.merge_commit_sha == commit and p.base.ref == self.base_branch
        ]
        if not merged:
            return None
        pull = merged[0]
        reviews = self._call(
            f"read the reviews of pull request #{pull.number}", READ_PULLS, lambda: list(pull.get_reviews())
        )
        # The latest decisive review of each reviewer wins (a later comment does not undo an approval).
        latest: dict[str, tuple[str, str]] = {}
        for r in reviews:
            if r.user is not None and r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[r.user.login] = (r.state, r.commit_id or "")
        approvals = tuple(Approver(login, sha) for login, (state, sha) in latest.items() if state == "APPROVED")
        committers, unattributed = self._committers(pull)
        return Review(
            number=pull.number,
            url=pull.html_url,
            author=_login(pull.user),
            head=pull.head.sha,
            approvals=approvals,
            committers=committers,
            unattributed=unattributed,
        )

    def dispatch(self, spec: RequestSpec) -> None:
        if spec.revoke:
            raise ForgeError(
                f"repository_dispatch carries approval requests only; open the revocation of {spec.canary} "
                "directly (--request-via open)"
            )
        payload = dispatch_fields(spec)
        self._call(
            f"send repository_dispatch {DISPATCH_EVENT}",
            WRITE_CONTENTS,
            lambda: self._gh.requester.requestJsonAndCheck(
                "POST", f"{self._repo.url}/dispatches", input={"event_type": DISPATCH_EVENT, "client_payload": payload}
            ),
        )

    # --- steps ---------------------------------------------------------------------------------------

    def _committers(self, pull: PullRequest) -> tuple[frozenset[str], tuple[str, ...]]:
        """The accounts GitHub ties to the commits of `pull` (as author or committer), and the commits
        it ties to none. GitHub ties a commit email to the account that verified it (its no-reply
        address included, and `noreply@github.com` to web-flow, for the commits GitHub makes), so an
        email it ties to nobody is verified by nobody: any approver may have written that commit."""
        commits = self._call(
            f"read the commits of pull request #{pull.number}", READ_PULLS, lambda: list(pull.get_commits())
        )
        logins: set[str] = set()
        nobody: list[str] = []
        for c in commits:
            for account, person in ((c.author, c.commit.author), (c.committer, c.commit.committer)):
                login = _account(account)
                if login:
                    logins.add(login)
                elif person is not None:
                    nobody.append(f"{c.sha[:12]} by {person.name} <{person.email}>")
                else:
                    nobody.append(f"{c.sha[:12]} (no author or committer given)")
        if len(commits) >= PULL_COMMITS_LISTED:
            nobody.append(f"any commit after the first {PULL_COMMITS_LISTED}, which GitHub does not list")
        return frozenset(logins), tuple(dict.fromkeys(nobody))

    def _open_pull(self, branch: str) -> PullRequest | None:
        pulls = self._call(
            f"look for the open pull request of {branch}",
            READ_PULLS,
            lambda: list(self._repo.get_pulls(state="open", head=f"{self.owner}:{branch}", base=self.base_branch)),
        )
        return pulls[0] if pulls else None

    def _base_commit(self) -> GitCommit:
        doing = f"read branch {self.base_branch}"
        try:
            sha = self._call(
                doing,
                READ_CONTENTS,
                lambda: self._repo.get_git_ref(f"heads/{self.base_branch}").object.sha,
                refused=(404,),
            )
        except _Refused as refused:
            # 404: no such branch, or no such repo (or one the token cannot see). Ask the repo.
            default = self._call("read the repo", READ_CONTENTS, lambda: self._repo.default_branch)
            raise ForgeNotFound(
                f"branch {self.base_branch} not found in {self.repo} (its default branch is {default}): "
                "set --branch to the branch gitgate guards"
            ) from refused.error
        return self._call(doing, READ_CONTENTS, lambda: self._repo.get_git_commit(sha))

    def _read(self, path: str, ref: str) -> bytes | None:
        try:
            content = self._call(
                f"read {path}", READ_CONTENTS, lambda: self._repo.get_contents(path, ref=ref), refused=(404,)
            )
        except _Refused:
            return None
        if isinstance(content, list):
            raise ForgeError(f"{path} is a folder on {self.base_branch} of {self.repo}; a gate must be a file")
        return content.decoded_content

    def _reuse_branch(self, branch: str, commit: GitCommit, tree: GitTree, base: GitCommit) -> None:
        """Keep an existing branch that already holds this change on this base; else point it at ours."""
        doing = f"read branch {branch}"
        try:
            tip = self._call(
                doing, READ_CONTENTS, lambda: self._repo.get_git_ref(f"heads/{branch}").object.sha, refused=(404,)
            )
        except _Refused:  # deleted in between: make it again
            self._call(
                f"create branch {branch}",
                WRITE_CONTENTS,
                lambda: self._repo.create_git_ref(f"refs/heads/{branch}", commit.sha),
            )
            return
        if tip == commit.sha:
            return
        theirs = self._call(doing, READ_CONTENTS, lambda: self._repo.get_git_commit(tip))
        if theirs.tree.sha == tree.sha and [p.sha for p in theirs.parents] == [base.sha]:
            return
        self._call(
            f"update branch {branch}",
            WRITE_CONTENTS,
            lambda: self._gh.requester.requestJsonAndCheck(
                "PATCH", self._ref_url(branch), input={"sha": commit.sha, "force": True}
            ),
        )

    def _decorate(self, pull: PullRequest, spec: RequestSpec) -> None:
        """Labels and reviewers: the pull request is what matters, so failures here are only logged."""
        if spec.labels:
            self._soft(
                pull,
                "add labels",
                lambda: self._gh.requester.requestJsonAndCheck(
                    "POST", f"{pull.issue_url}/labels", input={"labels": list(spec.labels)}
                ),
            )
        users = [r for r in spec.reviewers if "/" not in r]
        teams = [r.split("/", 1)[1] for r in spec.reviewers if "/" in r]  # org/team-slug
        if users or teams:
            wanted: dict[str, Any] = {}
            if users:
                wanted["reviewers"] = users
            if teams:
                wanted["team_reviewers"] = teams
            self._soft(pull, "request reviewers", lambda: pull.create_review_request(**wanted))

    def _soft(self, pull: PullRequest, doing: str, fn: Callable[[], object]) -> None:
        try:
            self._call(f"{doing} on pull request #{pull.number}", WRITE_PULLS, fn)
        except ForgeError as e:
            log.warning("opened %s but could not %s: %s", pull.html_url, doing, e)

    def _ref_url(self, branch: str) -> str:
        return f"{self._repo.url}/git/refs/heads/{urllib.parse.quote(branch)}"

    # --- errors --------------------------------------------------------------------------------------

    def _call(self, doing: str, permission: str, fn: Callable[[], _T], *, refused: tuple[int, ...] = ()) -> _T:
        """Run one PyGithub call; statuses in `refused` come back as _Refused, all else as ForgeError."""
        try:
            return fn()
        except GithubException as e:
            if e.status in refused:
                raise _Refused(e) from e
            raise self._wrap(e, doing, permission) from e
        except requests.RequestException as e:
            if _timed_out(e):
                raise ForgeUnavailable(
                    f"GitHub ({self.api_url}) did not answer within {self.timeout}s when asked to {doing} in "
                    f"{self.repo}: retry later"
                ) from e
            raise ForgeUnavailable(
                f"cannot reach GitHub at {self.api_url} to {doing} ({_reason(e)}): check --api-url and the "
                "network, then retry"
            ) from e

    def _wrap(self, e: GithubException, doing: str, permission: str) -> ForgeError:
        status = e.status
        headers = {str(k).lower(): str(v) for k, v in (e.headers or {}).items()}
        said = _said(e)
        if status == 401:
            return ForgeAuthError(
                f"token rejected: GitHub answered 401 ({said}) when asked to {doing} in {self.repo}; "
                "set --token or GITHUB_TOKEN to a valid, unexpired token"
            )
        if status == 429 or (status == 403 and _rate_limited(headers, said)):
            wait = retry_after(headers)
            return ForgeRateLimited(
                f"GitHub rate limit hit when asked to {doing} in {self.repo} ({said}): retry after {wait:.0f}s",
                wait,
            )
        if status == 403:
            accepted = headers.get("x-accepted-github-permissions")
            hint = f" (GitHub accepts: {accepted})" if accepted else ""
            return ForgePermissionError(
                f"the token may not {doing} in {self.repo}: GitHub answered 403 ({said}); give it {permission}"
                f"{hint} on {self.repo} (a classic token needs the repo scope)"
            )
        if status == 404:
            return ForgeNotFound(
                f"repo {self.repo} not found or the token cannot see it (404 when asked to {doing} on "
                f"{self.api_url}): check --forge-repo and --api-url, and give the token access to the repo"
            )
        if status >= 500:
            asked = retry_after(headers) if "retry-after" in headers else None
            return ForgeUnavailable(
                f"GitHub answered {status} ({said}) when asked to {doing} in {self.repo}: retry later", asked
            )
        return ForgeError(f"GitHub refused to {doing} in {self.repo}: {status} {said}")


class _Refused(Exception):
    """An expected refusal (a race lost, a file absent) the caller handles itself."""

    def __init__(self, error: GithubException) -> None:
        super().__init__(str(error))
        self.error = error


def _timed_out(e: requests.RequestException) -> bool:
    """A timeout, also when urllib3 gave up retrying one (requests then says ConnectionError)."""
    if isinstance(e, requests.Timeout):
        return True
    reason = getattr(e.args[0], "reason", None) if e.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError
        return False
    return isinstance(reason, urllib3.exceptions.TimeoutError)


def _reason(e: requests.RequestException) -> str:
    reason = (getattr(e.args[0], "reason", None) if e.args else None) or e
    text = str(reason)
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return errno.group(0).strip() if errno else f"{type(reason).__name__}: {text[:200]}"


def _login(user: Any) -> str:
    return str(user.login) if user is not None else "ghost"


def _account(user: Any) -> str:
    """The login of the account GitHub ties to a commit's author or committer; '' for none (null or {})."""
    if user is None:
        return ""
    try:
        return str(user.login or "")
    except GithubException:  # {}: an object without a login or a URL to complete it from
        return ""


def _said(e: GithubException) -> str:
    """GitHub's message, with the detail of its `errors` list (or the text of a proxy's error page)."""
    data = e.data if isinstance(e.data, dict) else {}
    page = data.get("data")  # PyGithub's wrapping of a body that is not JSON
    text = " ".join(re.sub(r"<[^>]*>", " ", page).split())[:120] if isinstance(page, str) else ""
    message = str(data.get("message") or e.message or text or "no message").strip()
    details = []
    for item in data.get("errors") or []:
        detail = item.get("message") or item.get("code") if isinstance(item, dict) else item
        if detail:
            details.append(str(detail))
    return message + (f": {'; '.join(details)}" if details else "")


def _rate_limited(headers: dict[str, str], said: str) -> bool:
    lowered = said.lower()
    return (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in lowered
        or "abuse" in lowered
    )


def retry_after(headers: dict[str, str], now: float | None = None) -> float:
    """Seconds to wait, as GitHub's rate-limit documentation says: Retry-After (seconds or an HTTP
    date); else, when the primary limit is used up (X-RateLimit-Remaining: 0), until X-RateLimit-Reset;
    else (a secondary rate limit without Retry-After) a minute. The reset of a primary limit that is not
    used up says nothing about a secondary one: waiting for it could park requests for an hour."""
    now = time.time() if now is None else now
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset.isdigit() and headers.get("x-ratelimit-remaining", "").strip() == "0":
        return max(1.0, float(reset) - now)
    return DEFAULT_RETRY_AFTER
