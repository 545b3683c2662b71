"""Flagger's webhook payload, parsed once at the edge. Pure: bytes in, a CheckRequest or a 4xx out."""

from __future__ import annotations

import json
from typing import Any, NotRequired, TypedDict

from gitgate.model import CanaryRef, CheckRequest, Hook
from gitgate.schema import valid_ref

MAX_BODY = 64 * 1024


class FlaggerPayload(TypedDict):
    """What Flagger POSTs to every webhook (pkg/controller/webhook.go)."""

    name: str
    namespace: str
    phase: NotRequired[str]
    checksum: NotRequired[str]
    metadata: NotRequired[dict[str, str]]


def _short(value: str, limit: int = 80) -> str:
    """Caller input quoted back in an answer: bounded, one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _unicode(text: str) -> bool:
    """Text that can be written out again: no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BadRequest(Exception):
    """The caller sent something gitgate will not read; answered with `status` and the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_payload(body: bytes) -> FlaggerPayload:
    if len(body) > MAX_BODY:
        raise BadRequest(f"body is {len(body)} bytes; the limit is {MAX_BODY}", 413)
    if not body.strip():
        raise BadRequest('empty body; send Flagger\'s JSON payload: {"name": ..., "namespace": ..., "checksum": ...}')
    try:
        raw: Any = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BadRequest(f"body is not JSON: {str(e)[:120]}") from e
    if not isinstance(raw, dict):
        raise BadRequest(f"body must be a JSON object, not {type(raw).__name__}")
    for key in ("name", "namespace"):
        if key not in raw:
            raise BadRequest(f"missing {key!r}: Flagger's payload names the canary with name and namespace")
        if not isinstance(raw[key], str) or not raw[key]:
            raise BadRequest(f"{key!r} must be a non-empty string")
    if not valid_ref(raw["namespace"], raw["name"]):
        raise BadRequest(f"{_short(raw['namespace'])}/{_short(raw['name'])} is not a Kubernetes namespace/name")
    for key in ("phase", "checksum"):
        if raw.get(key) is not None and not (isinstance(raw[key], str) and raw[key].isprintable()):
            raise BadRequest(f"{key!r} must be a string of printable characters on one line")
    meta = raw.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise BadRequest("'metadata' must be a JSON object of strings")
    payload: FlaggerPayload = {"name": raw["name"], "namespace": raw["namespace"]}
    if raw.get("phase") is not None:
        payload["phase"] = raw["phase"]
    if raw.get("checksum") is not None:
        payload["checksum"] = raw["checksum"]
    if meta:
        if "hook" in meta and not isinstance(meta["hook"], str):
            raise BadRequest("'metadata.hook' must be a string naming the hook")
        if not all(_unicode(k) and (_unicode(v) if isinstance(v, str) else True) for k, v in meta.items()):
            # JSON may escape half a UTF-16 pair ("\ud800"); kept, it breaks every page that shows it.
            raise BadRequest("'metadata' holds a lone surrogate (\\ud800-\\udfff); send valid Unicode text")
        payload["metadata"] = {str(k): v for k, v in meta.items() if isinstance(v, str)}
    return payload


def check_request(payload: FlaggerPayload, hook: Hook | None) -> CheckRequest:
    """`hook` comes from the URL path; None means `/gate/check`: metadata.hook, else "*"."""
    if hook is None:
        named = payload.get("metadata", {}).get("hook")
        if named is None:
            hook = Hook.ANY
        else:
            try:
                hook = Hook(named)
            except ValueError:
                allowed = ", ".join(h.value for h in Hook)
                raise BadRequest(f"metadata.hook {_short(named)} is not one of {allowed}") from None
    return CheckRequest(
        canary=CanaryRef(payload["namespace"], payload["name"]),
        hook=hook,
        checksum=payload.get("checksum") or None,
        phase=payload.get("phase"),
    )
