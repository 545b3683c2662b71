"""Webhook authenticity, with the test vector GitHub publishes for X-Hub-Signature-256."""

from __future__ import annotations

from gitgate.webhooks import github_signature_ok, gitlab_token_ok, pushed_branch

VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_published_test_vector() -> None:
    assert github_signature_ok("It's a Secret to Everybody", b"Hello, World!", VECTOR)


def test_any_change_to_secret_body_or_signature_is_refused() -> None:
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World?", VECTOR)
    assert not github_signature_ok("it's a secret to everybody", b"Hello, World!", VECTOR)
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World!", VECTOR[:-1] + "0")
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World!", VECTOR.replace("sha256=", "sha1="))
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World!", None)
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World!", "")


def test_gitlab_token_is_the_secret_itself() -> None:
    assert gitlab_token_ok("s3cret", "s3cret")
    assert not gitlab_token_ok("s3cret", "s3cret ")
    assert not gitlab_token_ok("s3cret", None)


def test_only_branch_pushes_name_a_branch() -> None:
    assert pushed_branch(b'{"ref": "refs/heads/main"}') == "main"
    assert pushed_branch(b'{"ref": "refs/tags/v1"}') is None
    assert pushed_branch(b"[1, 2]") is None
    assert pushed_branch(b"not json") is None
