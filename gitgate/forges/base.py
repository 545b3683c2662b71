"""The forge interface every adapter implements, and the errors adapters raise.

An adapter turns a RequestSpec into one open pull/merge request (idempotently), closes requests,
lists open ones, tells how a commit was reviewed (for --require-approvals), and can ask the forge
to run the request workflow instead (--request-via dispatch). Client-library errors are wrapped in
ForgeError subclasses whose messages say what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gitgate.errors import GitgateError
from gitgate.request import RequestRef, RequestSpec


class ForgeError(GitgateError):
    """A forge call failed; the message says what to do."""


class ForgeAuthError(ForgeError):
    """The token is missing, wrong or expired (401)."""


class ForgePermissionError(ForgeError):
    """The token works but may not do this (403 without a rate limit): say which permission."""


class ForgeNotFound(ForgeError):
    """The repo (or another object) does not exist, or the token cannot see it (404)."""


class ForgeRateLimited(ForgeError):
    """Rate limited (429, or 403 with a rate-limit header); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForgeUnavailable(ForgeError):
    """The forge answered 5xx or did not answer in time; retry later (after `retry_after` seconds
    when the forge said so with a Retry-After header, else after the caller's own backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OpenRequest:
    url: str
    number: int
    branch: str
    title: str
    author: str


@dataclass(frozen=True, slots=True)
class Approver:
    login: str
    commit: str  # the head commit of the request when the approval was given


@dataclass(frozen=True, slots=True)
class Review:
    """How a commit on the base branch came to be: the merged request it came from, if any.

    `committers` are the forge identities (logins) of everyone the forge ties to a commit of the
    request, as its author or its committer: their approvals do not count. `unattributed` names the
    commits whose author or committer the adapter could tie to nobody ("1a2b3c4d5e6f by Erin
    <erin@example.com>"); while there is one, no approval counts, because any approver may have
    written it (fail closed).
    """

    number: int
    url: str
    author: str
    head: str  # the request's final head commit
    approvals: tuple[Approver, ...]
    committers: frozenset[str]
    unattributed: tuple[str, ...]


class Forge(Protocol):
    name: str

    def open_request(self, spec: RequestSpec, *, gates_path: str, now: datetime) -> RequestRef:
        """Open the request for `spec`, or return the open one with the same branch.

        Idempotent under races: the branch name is a pure function of the spec, and a caller that
        loses a race (branch or request already exists) finds and returns the winner's request.
        """
        ...

    def close_request(self, branch: str, comment: str) -> bool:
        """Close the open request of `branch` with a comment; False if there is none."""
        ...

    def open_requests(self) -> list[OpenRequest]:
        """Every open request gitgate opened (branches under gitgate/)."""
        ...

    def review(self, commit: str) -> Review | None:
        """The merged request whose merge produced `commit` on the base branch, or None."""
        ...

    def dispatch(self, spec: RequestSpec) -> None:
        """Ask the forge to run the request workflow (GitHub repository_dispatch, GitLab pipeline)."""
        ...


ForgeFactory = Callable[..., Forge]
REGISTRY: dict[str, str] = {
    "local": "gitgate.forges.local:LocalForge",
    "github": "gitgate.forges.github:GitHubForge",
    "gitlab": "gitgate.forges.gitlab:GitLabForge",
}


def approved_by_others(review: Review, *, required: int, approvers: frozenset[str] | None) -> tuple[bool, str]:
    """--require-approvals: N distinct reviewers, given on the final head, who are neither the
    request's author nor anyone who authored or committed a commit of it."""
    committers = {c.casefold() for c in review.committers}

    def wrote(login: str) -> bool:
        return login == review.author or login.casefold() in committers

    valid = {a.login for a in review.approvals if a.commit == review.head and not wrote(a.login)}
    if approvers is not None:
        valid &= approvers
    if review.unattributed:
        valid = set()
    if len(valid) >= required:
        return True, f"{len(valid)} approval(s) on the final head by {', '.join(sorted(valid))}"
    unknown = {a.login for a in review.approvals if not a.commit}
    stale = {a.login for a in review.approvals if a.commit and a.commit != review.head}
    self_ = any(a.login == review.author for a in review.approvals)
    pushed = {a.login for a in review.approvals if a.login != review.author and a.login.casefold() in committers}
    why = [f"{len(valid)} of {required} required approval(s) on the final head {review.head[:12]}"]
    if unknown:
        why.append(
            f"the forge does not say which head was approved ({', '.join(sorted(unknown))}); "
            "turn on resetting approvals when commits are added"
        )
    if stale:
        why.append(f"approvals given before a later push do not count ({', '.join(sorted(stale))})")
    if self_:
        why.append(f"the author {review.author} cannot approve their own request")
    if pushed:
        why.append(f"approvals by people who added commits to the request do not count ({', '.join(sorted(pushed))})")
    if review.unattributed:
        shown = ", ".join(review.unattributed[:3]) + (" …" if len(review.unattributed) > 3 else "")
        why.append(
            f"no approval counts while the forge ties a commit of the request to no account ({shown}): any "
            "approver may have written it; commit with an email the forge knows (GitHub: one verified on the "
            'account; GitLab: a public one, or turn on "Prevent approvals by users who add commits")'
        )
    if approvers is not None:
        why.append("only --approvers count")
    return False, "; ".join(why)
