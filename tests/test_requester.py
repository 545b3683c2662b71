"""The service's background requester, on the real local forge, with its clock in the test's hands."""

from __future__ import annotations

from datetime import UTC, datetime

from forge_contract import spec
from helpers import Approvals

from gitgate.forges.local import LocalForge
from gitgate.requester import NEW_PER_MINUTE, REVALIDATE, Requester


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def requester(approvals: Approvals, clock: Clock) -> tuple[Requester, LocalForge]:
    forge = LocalForge(repo=approvals.remote, user="gitgate")
    r = Requester(forge=forge, gates_path="gates", monotonic=clock, clock=lambda: datetime(2026, 11, 23, tzinfo=UTC))
    r.start()
    return r, forge


def test_asking_many_times_opens_one_request(approvals: Approvals) -> None:
    clock = Clock()
    r, forge = requester(approvals, clock)
    for _ in range(20):
        r.want(spec())
    r.drain()
    assert len(forge.open_requests()) == 1
    assert r.url_for(spec()) == forge.open_requests()[0].url
    r.stop()


def test_a_request_closed_by_someone_is_opened_again_after_a_while(approvals: Approvals) -> None:
    clock = Clock()
    r, forge = requester(approvals, clock)
    r.want(spec())
    r.drain()
    [first] = forge.open_requests()
    forge.close_request(first.branch, "not now")
    r.want(spec())
    r.drain()
    assert forge.open_requests() == []  # not at once: a closed request is someone's decision
    clock.now += REVALIDATE + 1
    r.want(spec())
    r.drain()
    [second] = forge.open_requests()
    assert second.number != first.number
    assert r.url_for(spec()) == second.url
    r.stop()


def test_new_requests_are_rate_limited(approvals: Approvals) -> None:
    clock = Clock()
    r, forge = requester(approvals, clock)
    for i in range(NEW_PER_MINUTE + 5):
        r.want(spec(checksum=f"sum{i}"))
    r.drain(timeout=60)
    assert len(forge.open_requests()) == NEW_PER_MINUTE
    clock.now += 61
    r.want(spec(checksum="sum-late"))
    r.drain()
    assert len(forge.open_requests()) == NEW_PER_MINUTE + 1
    r.stop()
