"""Forge faults: 5xx, 429 and 403 with Retry-After (and GitHub's rate-limit shapes), a forge that
accepts the connection and never answers. The service's requester, with the real GitHub and GitLab
adapters, against the stateful fake forges and their fault injection; its clock in the test's hands
so that an hour of outage takes a second. Then the real `gitgate serve` through a rate limit.

What a user must see: every answer stays closed while the forge fails, a check never waits for the
forge, the forge is asked a bounded number of times however long the outage lasts and however many
canaries wait, and each request opens (once) after the forge recovers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.github import FakeGitHub, GitHubOpenAPI
from fakes.gitlab import FakeGitLab, running
from forge_contract import spec
from helpers import Keys, Service, forge_args, wait_for

from gitgate.forges.base import Forge
from gitgate.forges.github import GitHubForge
from gitgate.forges.gitlab import GitLabForge
from gitgate.model import CanaryRef, Hook
from gitgate.request import RequestSpec, branch_name
from gitgate.requester import (
    BACKOFF_CAP,
    JITTER,
    RETRY_AFTER_CAP,
    Requester,
    Wanted,
    backoff,
    wait_after,
)

BOT = "gitgate-bot"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """One fake forge, the real adapter on it, and the requester the service would run."""

    kind: str
    forge: Forge
    fake: FakeGitHub | FakeGitLab
    clock: Clock
    requester: Requester
    retries: int  # the adapter's own retries of a 5xx or timeout inside one call

    def fail_all(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Every call answers `status` until heal()."""
        if isinstance(self.fake, FakeGitHub):
            self.fake.fail(status, times=-1, headers=headers or {}, json={"message": f"injected {status}"})
        else:
            self.fake.fail("*", "", status, {"message": f"{status} injected"}, headers=headers, times=-1)

    def hang_all(self) -> None:
        """Every call is accepted and never answered (until heal())."""
        if isinstance(self.fake, FakeGitHub):
            self.fake.hang(times=-1)
        else:
            self.fake.hang("*", "", times=-1)

    def open_branches(self) -> list[str]:
        """Branches with an open pull/merge request, as the forge itself has them."""
        if isinstance(self.fake, FakeGitHub):
            return sorted(p.head for p in self.fake.pulls.values() if p.state == "open")
        return sorted(m.source_branch for m in self.fake.mrs.values() if m.state == "opened")

    def all_requests(self) -> int:
        """Requests ever created on the forge, open or not."""
        return len(self.fake.pulls) if isinstance(self.fake, FakeGitHub) else len(self.fake.mrs)

    def ask(self, *specs: RequestSpec) -> None:
        """Denied checks for `specs`, as the server makes them; then let the worker do what it was asked."""
        for s in specs:
            self.requester.want(s)
        self.requester.drain()

    def item(self, s: RequestSpec) -> dict[str, Any]:
        [found] = [i for i in self.requester.status() if i["branch"] == branch_name(s)]
        return found


@pytest.fixture(params=["github", "gitlab"])
def world(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[World]:
    clock = Clock()
    forge: GitHubForge | GitLabForge
    if request.param == "github":
        openapi: GitHubOpenAPI = request.getfixturevalue("openapi")
        gh = FakeGitHub(tmp_path / "github", openapi=openapi)
        gh.add_user(BOT, permission="write")
        with gh:
            forge = GitHubForge(
                repo=gh.full_name,
                token=gh.token(BOT),
                api_url=gh.url,
                seconds_between_requests=0,
                seconds_between_writes=0,
                timeout=1,
                retries=1,
            )
            r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: NOW, jitter=lambda: 0.0)
            r.start()
            yield World("github", forge, gh, clock, r, retries=1)
            r.stop()
            gh.heal()
            forge.close()
        assert not gh.problems, gh.problems
    else:
        with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as gl:
            forge = GitLabForge(project="acme/approvals", token="alice-token", api_url=gl.url, timeout=1, retries=1)
            r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: NOW, jitter=lambda: 0.0)
            r.start()
            yield World("gitlab", forge, gl, clock, r, retries=1)
            r.stop()
            gl.heal()
            forge.close()


# --- the backoff itself ---------------------------------------------------------------------------


def test_the_backoff_grows_to_a_cap_and_a_retry_after_is_obeyed_within_bounds() -> None:
    assert [backoff(n) for n in range(7)] == [0, 5, 15, 45, 135, 300, 300]
    assert wait_after(40, None, 0.0) == BACKOFF_CAP
    assert backoff(10**6) == BACKOFF_CAP  # a week-long outage: still the cap, no overflow
    assert wait_after(40, None, 0.999) <= BACKOFF_CAP * (1 + JITTER)
    assert wait_after(1, 2, 0.0) == 2  # the forge's word, the first time
    assert wait_after(2, 2, 0.0) == 5  # a forge that keeps refusing is left alone for longer
    assert wait_after(1, 0, 0.0) == 1  # "Retry-After: 0" does not make a busy loop
    assert wait_after(1, 10**9, 0.0) == RETRY_AFTER_CAP  # nor does a huge one park requests for years
    assert wait_after(1, 30, 0.5) == 30 * (1 + JITTER / 2)  # replicas spread out


# --- an outage, a rate limit, a hang: against each forge -------------------------------------------


def test_an_hour_of_outage_costs_a_bounded_number_of_forge_calls(world: World) -> None:
    waiting = [spec(checksum=f"rev{i:07d}") for i in range(5)]
    world.fail_all(503)
    asks = 0
    for _ in range(360):  # five canaries, each checked every 10 s for an hour
        world.ask(*waiting)
        asks += len(waiting)
        for s in waiting:
            assert world.requester.url_for(s) is None
            assert world.item(s)["state"] == "failed"
        world.clock.now += 10
    calls = world.fake.hits()
    # One attempt per wait, for all canaries together: 5+15+45+135 s of ramp (4 attempts after the
    # first), then one per 300 s; each attempt is one call plus the adapter's own retries of it.
    attempts = 1 + 4 + (3600 - (5 + 15 + 45 + 135)) // int(BACKOFF_CAP) + 1
    assert calls <= attempts * (1 + world.retries), (calls, asks)
    assert "503" in str(world.item(waiting[0])["error"])
    assert world.open_branches() == []

    world.fake.heal()
    world.clock.now += BACKOFF_CAP * (1 + JITTER)
    world.ask(*waiting)
    world.ask(*waiting)  # those held back by the last failure of the outage (none, but it costs nothing)
    assert world.open_branches() == sorted(branch_name(s) for s in waiting)
    assert world.all_requests() == len(waiting)
    for s in waiting:
        assert world.requester.url_for(s) is not None


def test_a_rate_limit_with_retry_after_is_obeyed_and_then_the_request_opens(world: World) -> None:
    world.fail_all(429, {"Retry-After": "2"})
    world.ask(spec())
    assert world.item(spec())["retry_in"] == 2.0
    before = world.fake.hits()
    world.clock.now += 1.9
    world.ask(spec(), spec(checksum="other00001"))
    assert world.fake.hits() == before  # neither this request nor another one asks before the time
    world.clock.now += 0.2
    world.ask(spec())
    assert world.fake.hits() == before + 1  # a 429 is never retried inside the call
    assert world.item(spec())["retry_in"] == 5.0  # refused again: now the backoff, if longer

    world.fake.heal()
    world.clock.now += 5
    world.ask(spec())
    assert world.item(spec())["state"] == "opened"
    assert world.open_branches() == [branch_name(spec())]


def test_a_rejected_token_holds_every_request_not_only_the_one_that_failed(world: World) -> None:
    world.fail_all(401)
    world.ask(spec())
    assert world.fake.hits() == 1 and "token" in str(world.item(spec())["error"]).lower()
    world.ask(*[spec(checksum=f"rev{i:07d}") for i in range(5)])
    assert world.fake.hits() == 1  # the other canaries' requests wait too: the token is the forge's problem
    world.fake.heal()  # someone fixed the token
    world.clock.now += backoff(1) * (1 + JITTER)
    world.ask(spec())
    assert world.item(spec())["state"] == "opened"


def test_a_forge_that_never_answers_times_out_and_is_left_alone(world: World) -> None:
    world.hang_all()
    world.requester.want(spec())
    wait_for(lambda: world.fake.held >= 1)
    # The worker is stuck in the forge: asking again (what every denied check does) returns at once.
    for _ in range(20):
        world.requester.want(spec())
        world.requester.want(spec(checksum="other00001"))
    world.requester.drain()  # the adapter's 1 s timeout (and one retry of it) ends the call
    item = world.item(spec())
    assert item["state"] == "failed" and "did not answer within 1" in str(item["error"])
    assert item["retry_in"] == backoff(1)
    world.fake.heal()
    world.clock.now += backoff(1)
    world.ask(spec(), spec(checksum="other00001"))
    assert world.open_branches() == sorted([branch_name(spec()), branch_name(spec(checksum="other00001"))])


# --- closing the other requests of a canary that finished ----------------------------------------------

PODINFO = CanaryRef("test", "podinfo")


def listings(world: World) -> int:
    """Listings of open pull/merge requests (the adapters also look one up before closing it)."""
    return world.fake.hits("GET", r"/pulls$" if world.kind == "github" else r"/merge_requests$")


def test_a_burst_of_finished_events_lists_the_forge_once(world: World) -> None:
    """Flagger sends one event per Kubernetes event: 41 Succeeded/Failed events for two canaries,
    while the worker is busy, make one listing; each canary's latest event says what to keep."""
    for checksum in ("old0000001", "old0000002", "kept000001"):
        world.forge.open_request(spec(checksum=checksum), gates_path="gates", now=NOW)
    frontend = RequestSpec(CanaryRef("test", "frontend"), Hook.CONFIRM_PROMOTION, "old0000003")
    world.forge.open_request(frontend, gates_path="gates", now=NOW)
    busy = threading.Event()
    world.requester.later(busy.wait)
    before = listings(world)
    for _ in range(20):
        world.requester.finished(PODINFO, "old0000001", "Failed")
        world.requester.finished(PODINFO, "kept000001", "Succeeded")
    world.requester.finished(frontend.canary, "new0000003", "Succeeded")
    busy.set()
    world.requester.drain()
    assert world.open_branches() == [branch_name(spec(checksum="kept000001"))]
    assert listings(world) - before == 1 + 3  # one listing, then the adapter's lookup of each request it closed


def test_finished_events_ask_nothing_of_a_held_forge(world: World) -> None:
    old = spec(checksum="old0000001")
    world.forge.open_request(old, gates_path="gates", now=NOW)
    world.fail_all(503)
    world.ask(spec(checksum="new0000001"))  # fails: the forge is held for the backoff
    world.fake.heal()
    asked = world.fake.hits()
    world.requester.finished(PODINFO, "new0000001", "Succeeded")
    world.requester.drain()
    assert world.fake.hits() == asked and world.open_branches() == [branch_name(old)]

    # Held while the close waited for the worker (a /gate/open answered 503 meanwhile): skipped too.
    world.clock.now += backoff(1)
    busy = threading.Event()
    world.requester.later(busy.wait)
    world.requester.finished(PODINFO, "new0000001", "Succeeded")
    world.fail_all(503)
    assert world.requester.open_now(Wanted(spec(checksum="new0000002"))).state == "failed"
    world.fake.heal()
    asked = world.fake.hits()
    busy.set()
    world.requester.drain()
    assert world.fake.hits() == asked and world.open_branches() == [branch_name(old)]

    world.clock.now += backoff(2)
    world.requester.finished(PODINFO, "new0000001", "Succeeded")
    world.requester.drain()
    assert world.open_branches() == []


# --- GitHub's rate-limit shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message", "wait"),
    [
        # A secondary rate limit: 403, Retry-After.
        ({"Retry-After": "30"}, "You have exceeded a secondary rate limit.", 30),
        # A secondary rate limit without Retry-After: a minute, not the primary limit's reset an hour away.
        ({"X-RateLimit-Remaining": "4000"}, "You have exceeded a secondary rate limit.", 60),
        # The primary limit used up: until its reset.
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "+120"}, "API rate limit exceeded for user ID 1.", 120),
        # An HTTP date.
        ({"Retry-After": "date+45"}, "You have exceeded a secondary rate limit.", 45),
    ],
)
def test_github_rate_limit_shapes(
    tmp_path: Path, openapi: GitHubOpenAPI, headers: dict[str, str], message: str, wait: float
) -> None:
    now = time.time()
    for key, value in headers.items():
        if value.startswith("+"):
            headers[key] = str(int(now) + int(value[1:]))
        elif value.startswith("date+"):
            headers[key] = format_datetime(datetime.fromtimestamp(int(now) + int(value[5:]), UTC), usegmt=True)
    headers.setdefault("X-RateLimit-Reset", str(int(now) + 3600))
    clock = Clock()
    with FakeGitHub(tmp_path / "github", openapi=openapi) as gh:
        gh.add_user(BOT)
        forge = GitHubForge(
            repo=gh.full_name, token=gh.token(BOT), api_url=gh.url, seconds_between_requests=0, seconds_between_writes=0
        )
        r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: NOW, jitter=lambda: 0.0)
        gh.fail(403, method="POST", path=r"/git/trees$", headers=headers, json={"message": message})
        item = r.open_now(Wanted(spec()))
        assert item.state == "failed" and "rate limit" in item.error
        assert item.retry_at - clock.now == pytest.approx(wait, abs=2)
        assert gh.pulls == {}
        forge.close()
    assert not gh.problems, gh.problems


# --- GitLab: python-gitlab would sleep for as long as Retry-After says, on the worker ----------------


def test_gitlab_never_sleeps_on_a_long_retry_after(tmp_path: Path, keys: Keys) -> None:
    clock = Clock()
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as gl:
        forge = GitLabForge(project="acme/approvals", token="alice-token", api_url=gl.url, timeout=5, retries=2)
        later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
        for retry_after, held in [("3600", 3600.0), (later, RETRY_AFTER_CAP)]:
            r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: NOW, jitter=lambda: 0.0)
            gl.fail(
                "*", "", 503, {"message": "503 Service Unavailable"}, headers={"Retry-After": retry_after}, times=-1
            )
            done: list[Any] = []
            worker = threading.Thread(target=lambda done=done, r=r: done.append(r.open_now(Wanted(spec()))))
            worker.start()
            worker.join(timeout=20)  # a liveness bound, not a speed figure: unfixed, this sleeps an hour
            assert not worker.is_alive(), f"the forge call slept on Retry-After: {retry_after}"
            [item] = done
            assert item.state == "failed" and "503" in item.error
            assert item.retry_at - clock.now == pytest.approx(held, abs=1)
            assert gl.hits() == 1  # not retried inside the call either
            gl.heal()
            gl.arrivals.clear()
        # A short Retry-After is slept on inside the call (within RETRY_SLEEP_CAP): it then succeeds.
        gl.fail("*", "", 503, {"message": "503 Service Unavailable"}, headers={"Retry-After": "1"}, times=1)
        r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: NOW, jitter=lambda: 0.0)
        item = r.open_now(Wanted(spec()))
        assert item.state == "opened", item.error
        forge.close()


# --- the real service through a rate limit -----------------------------------------------------------


def test_the_service_answers_closed_through_a_rate_limit_and_opens_the_request_after_it(
    tmp_path: Path, keys: Keys
) -> None:
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as gl:
        args = forge_args("gitlab", gl.git_dir, "acme/approvals", gl.url, trust_gpg=keys.carol_asc, token="alice-token")
        args += ["--state-dir", str(tmp_path / "st")]
        svc = Service(args, tmp_path).start()
        try:
            gl.fail("*", "", 429, {"message": "429 Too Many Requests"}, headers={"Retry-After": "2"}, times=-1)
            answers = []
            started = time.monotonic()
            while time.monotonic() - started < 1.0:  # Flagger, impatient: a check every 0.1 s
                answers.append(svc.check("confirm-promotion", "test", "podinfo", "85d557f47b"))
                time.sleep(0.1)
            assert {a.status_code for a in answers} == {403}
            assert "to approve, add an approval to gates/test/podinfo.yaml" in answers[-1].text
            # Ten denied checks: the forge was asked at the first, then left alone as it asked.
            assert gl.hits() == 1, gl.arrivals
            [item] = svc.status()["requests"]
            assert (item["state"], item["failures"]) == ("failed", 1) and "rate-limited" in item["error"]

            gl.heal()
            url = wait_for(lambda: _url_in(svc.check("confirm-promotion", "test", "podinfo", "85d557f47b")), timeout=20)
            [mr] = gl.mrs.values()
            assert url == f"{gl.web_url}/-/merge_requests/{mr.iid}"
            assert mr.source_branch == "gitgate/test/podinfo/confirm-promotion/85d557f47b"
        finally:
            svc.stop()


def _url_in(answer: Any) -> str | None:
    assert answer.status_code == 403
    marker = "to approve, merge "
    return answer.text.split(marker, 1)[1].split()[0] if marker in answer.text else None
