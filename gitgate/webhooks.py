"""Push webhooks from GitHub and GitLab: authenticity and "is this a push to our branch". Pure."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: sha256=<hex HMAC of the raw body>, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def gitlab_token_ok(secret: str, header: str | None) -> bool:
    """X-Gitlab-Token is the shared secret itself, compared in constant time."""
    return header is not None and hmac.compare_digest(secret.encode(), header.encode())


def pushed_branch(body: bytes) -> str | None:
    """The branch a push event names (GitHub and GitLab both send `ref`), or None."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :]
    return None
