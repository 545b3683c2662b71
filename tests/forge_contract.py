"""The contract every forge adapter passes (local, fake GitHub, fake GitLab).

A test module imports these tests and provides a `harness` fixture: the adapter under test plus
the few things only its world can do (a reviewer approving and merging, reading the real git repo
behind the forge). Nothing here knows which forge it talks to.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

import yaml

from gitgate.forges.base import Forge, approved_by_others
from gitgate.model import CanaryRef, Hook
from gitgate.request import RequestRef, RequestSpec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GATES = "gates"


class Harness(Protocol):
    forge: Forge

    def file_on(self, ref: str, path: str) -> bytes | None:
        """A file as the forge's git repo has it on branch `ref` (None if absent)."""
        ...

    def changed_files(self, branch: str) -> list[str]:
        """Paths the request branch changes against the base branch."""
        ...

    def approve_and_merge(self, request: RequestRef, *, reviewer: str) -> str:
        """A reviewer (not the requester) approves the request and merges it; the base branch's new head."""
        ...

    def push_to_base(self, path: str, text: str) -> str:
        """A commit straight onto the base branch, bypassing any request; its id."""
        ...


def spec(hook: Hook = Hook.CONFIRM_PROMOTION, checksum: str = "85d557f47b", **kw: object) -> RequestSpec:
    return RequestSpec(
        canary=CanaryRef("test", "podinfo"),
        hook=hook,
        checksum=checksum,
        phase="Progressing",
        message="Halt podinfo.test advancement waiting for approval approve-promotion",
        waiting_since=NOW - timedelta(minutes=3),
        **kw,  # type: ignore[arg-type]
    )


def test_a_request_is_one_branch_changing_one_gate_file(harness: Harness) -> None:
    ref = harness.forge.open_request(spec(expires_in=timedelta(hours=24)), gates_path=GATES, now=NOW)
    assert ref.created
    assert ref.branch == "gitgate/test/podinfo/confirm-promotion/85d557f47b"
    assert ref.url and str(ref.number) in ref.url
    assert harness.changed_files(ref.branch) == ["gates/test/podinfo.yaml"]
    doc = yaml.safe_load(harness.file_on(ref.branch, "gates/test/podinfo.yaml") or b"")
    assert doc["metadata"] == {"name": "podinfo", "namespace": "test"}
    [approval] = doc["spec"]["approvals"]
    assert approval["hook"] == "confirm-promotion"
    assert approval["checksum"] == "85d557f47b"
    assert approval["expires"] == "2026-11-24T12:00:00Z"
    [listed] = [r for r in harness.forge.open_requests() if r.branch == ref.branch]
    assert listed.number == ref.number
    assert listed.title == "Approve confirm-promotion of test/podinfo (85d557f47b)"


def test_asking_again_finds_the_same_request(harness: Harness) -> None:
    first = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    again = harness.forge.open_request(spec(), gates_path=GATES, now=NOW + timedelta(minutes=1))
    assert (again.number, again.url, again.created) == (first.number, first.url, False)
    other = harness.forge.open_request(spec(checksum="0000000aaa"), gates_path=GATES, now=NOW)
    assert other.number != first.number
    assert len([r for r in harness.forge.open_requests() if r.branch.startswith("gitgate/test/podinfo/")]) == 2


def test_racing_callers_get_one_request(harness: Harness) -> None:
    results: list[RequestRef] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(harness.forge.open_request(spec(hook=Hook.CONFIRM_ROLLOUT), gates_path=GATES, now=NOW))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({r.number for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len([r for r in harness.forge.open_requests() if "/confirm-rollout/" in r.branch]) == 1


def test_closing_a_request_with_a_comment(harness: Harness) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert harness.forge.close_request(ref.branch, "Canary test/podinfo succeeded with another revision.")
    assert ref.branch not in {r.branch for r in harness.forge.open_requests()}
    assert not harness.forge.close_request(ref.branch, "again")
    reopened = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert reopened.created and reopened.number != ref.number


def test_a_merged_request_approves_on_the_base_branch_and_tells_its_review(harness: Harness) -> None:
    harness.push_to_base(
        "gates/test/podinfo.yaml",
        yaml.safe_dump(
            {
                "apiVersion": "gitgate/v1",
                "kind": "Gate",
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {
                    "default": "closed",
                    "approvals": [
                        {"hook": "confirm-promotion", "checksum": "old", "expires": "2026-01-01T00:00:00Z"},
                        {"hook": "confirm-rollout", "checksum": "keep"},
                    ],
                },
            }
        ),
    )
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    head = harness.approve_and_merge(ref, reviewer="bob")
    doc = yaml.safe_load(harness.file_on("main", "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["default"] == "closed"
    assert [(a["hook"], a["checksum"]) for a in doc["spec"]["approvals"]] == [
        ("confirm-rollout", "keep"),
        ("confirm-promotion", "85d557f47b"),
    ]
    review = harness.forge.review(head)
    assert review is not None and review.number == ref.number
    assert "bob" in {a.login for a in review.approvals if a.commit == review.head}
    assert review.author != "bob"
    # The request's own commit is tied to its opener (gitgate), so the reviewer's approval counts.
    assert "bob" not in {c.casefold() for c in review.committers} and review.unattributed == ()
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by bob")
    assert ref.branch not in {r.branch for r in harness.forge.open_requests()}


def test_a_commit_that_came_from_no_request_has_no_review(harness: Harness) -> None:
    direct = harness.push_to_base(
        "gates/test/other.yaml",
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata: {name: other, namespace: test}\nspec: {}\n",
    )
    assert harness.forge.review(direct) is None


def test_a_revocation_request_removes_the_hooks_approvals(harness: Harness) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    harness.approve_and_merge(ref, reviewer="bob")
    revoke = harness.forge.open_request(spec(revoke=True), gates_path=GATES, now=NOW)
    assert revoke.branch == "gitgate/revoke/test/podinfo/confirm-promotion/85d557f47b"
    doc = yaml.safe_load(harness.file_on(revoke.branch, "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["approvals"] == []
