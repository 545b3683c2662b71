"""Talking to a running gitgate service from the CLI (`check --url`, `status`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from gitgate.errors import GitgateError


def call(url: str, *, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked just below
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    if not url.startswith(("http://", "https://")):
        raise GitgateError(f"{url}: only http:// and https:// service URLs are supported")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise GitgateError(f"cannot reach gitgate at {url}: {reason}; is `gitgate serve` running there?") from e
