"""In-process verification of git's SSH commit signatures (OpenSSH "SSHSIG"): a fast path for git.

git checks an SSH-signed commit by starting `ssh-keygen -Y find-principals` and then
`ssh-keygen -Y verify`, one commit after another; for many commits that is most of the cost. This
module answers the same question without starting anything, but only where it is certain. Its
answer is either "good, trusted: this principal, this fingerprint" (`Good`) or "don't know" (None),
never "bad". Every commit it does not positively verify is verified by git exactly as before, so
git remains the authority for every refusal and this module can only save verifier runs: it is
never more permissive than git.

Certain means all of this holds, and anything else is "don't know":
- the commit object is SHA-1 and has exactly one `gpgsig` header; the payload is cut from it the
  way git's `parse_buffer_signed_by_header` cuts it;
- the signature is one `-----BEGIN SSH SIGNATURE-----` armor holding canonical base64 and nothing
  else; the SSHSIG blob in it is version 1, namespace "git", an empty reserved field, hash sha256 or
  sha512, with no trailing bytes;
- the key is ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (modulus of 2048 bits or more,
  signed with rsa-sha2-256 or rsa-sha2-512), in canonical encoding; the signature verifies;
- every line of the allowed_signers file parses strictly as `PRINCIPALS [namespaces="LIST"] KEYTYPE
  BASE64 [comment]` with plain principals (no quotes, no patterns) and keys of those types (else the
  whole file is left to ssh-keygen, which may stop at a line it cannot read); the signing key is on
  exactly one line, and that line allows namespace "git".

The signer reported is the line's first principal, as git reports it (%GS); the fingerprint is the
key's SHA256 fingerprint as ssh-keygen prints it (%GF).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_MAGIC = b"SSHSIG"
_NAMESPACE = b"git"
_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_END = b"-----END SSH SIGNATURE-----"
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_PAYLOAD_HASHES = {b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}
_RSA_HASHES: dict[bytes, type[hashes.SHA256] | type[hashes.SHA512]] = {
    b"rsa-sha2-256": hashes.SHA256,
    b"rsa-sha2-512": hashes.SHA512,
}
_RSA_BITS = (2048, 16384)  # OpenSSH refuses more than 16384; fewer than 2048 is left to ssh-keygen


@dataclass(frozen=True, slots=True)
class _Curve:
    name: bytes  # the curve's name inside the key blob
    curve: ec.EllipticCurve
    hash: type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]
    size: int  # bytes per coordinate
    order_bits: int


_CURVES = {
    b"ecdsa-sha2-nistp256": _Curve(b"nistp256", ec.SECP256R1(), hashes.SHA256, 32, 256),
    b"ecdsa-sha2-nistp384": _Curve(b"nistp384", ec.SECP384R1(), hashes.SHA384, 48, 384),
    b"ecdsa-sha2-nistp521": _Curve(b"nistp521", ec.SECP521R1(), hashes.SHA512, 66, 521),
}
_KEY_TYPES = frozenset({"ssh-ed25519", "ssh-rsa", *(name.decode() for name in _CURVES)})

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class _Malformed(Exception):
    """Input this module does not read with certainty."""


class _Reader:
    """SSH wire format (RFC 4251): uint32, string, mpint; strict."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise _Malformed("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def string(self) -> bytes:
        return self.take(self.u32())

    def mpint(self) -> int:
        """A positive integer in its one canonical encoding (no needless leading zero byte)."""
        data = self.string()
        if not data or data[0] & 0x80:
            raise _Malformed("zero or negative mpint")
        if data[0] == 0 and (len(data) == 1 or data[1] < 0x80):
            raise _Malformed("mpint with a needless leading zero byte")
        return int.from_bytes(data, "big")

    def done(self) -> None:
        if self._pos != len(self._data):
            raise _Malformed("trailing bytes")


@dataclass(frozen=True, slots=True)
class Good:
    """A signature verified in process: signed by a key the allowed_signers file trusts for git."""

    principal: str
    fingerprint: str


def fingerprint(blob: bytes) -> str:
    """The key's fingerprint as ssh-keygen and git (%GF) print it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _b64decode(text: bytes) -> bytes:
    """Strict base64: only the alphabet, correct padding, and the one encoding of its bytes."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise _Malformed("bad base64") from e
    if base64.b64encode(data) != text:
        raise _Malformed("non-canonical base64")
    return data


def _public_key(blob: bytes) -> tuple[str, _PublicKey]:
    """The key in a public key blob of a supported type, checked as OpenSSH checks it on reading."""
    r = _Reader(blob)
    kind = r.string()
    key: _PublicKey
    if kind == b"ssh-ed25519":
        raw = r.string()
        if len(raw) != 32:
            raise _Malformed("ed25519 key is not 32 bytes")
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    elif kind in _CURVES:
        curve = _CURVES[kind]
        if r.string() != curve.name:
            raise _Malformed("curve does not match the key type")
        point = r.string()
        if len(point) != 1 + 2 * curve.size or point[0] != 4:
            raise _Malformed("not an uncompressed point")
        x = int.from_bytes(point[1 : 1 + curve.size], "big")
        y = int.from_bytes(point[1 + curve.size :], "big")
        # OpenSSH (sshkey_ec_validate_public) refuses points with small coordinates.
        if x.bit_length() <= curve.order_bits // 2 or y.bit_length() <= curve.order_bits // 2:
            raise _Malformed("point refused by OpenSSH")
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve.curve, point)
    elif kind == b"ssh-rsa":
        e = r.mpint()
        n = r.mpint()
        if not _RSA_BITS[0] <= n.bit_length() <= _RSA_BITS[1]:
            raise _Malformed("RSA modulus size")
        key = rsa.RSAPublicNumbers(e, n).public_key()
    else:
        raise _Malformed("unsupported key type")
    r.done()
    return kind.decode(), key


def _check(kind: str, key: _PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` (an SSH signature blob) by `key` is good over `data`."""
    r = _Reader(signature)
    sig_type = r.string()
    raw = r.string()
    r.done()
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if sig_type != b"ssh-ed25519" or len(raw) != 64:
                return False
            key.verify(raw, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if sig_type != kind.encode():
                return False
            inner = _Reader(raw)
            rr, ss = inner.mpint(), inner.mpint()
            inner.done()
            key.verify(encode_dss_signature(rr, ss), data, ec.ECDSA(_CURVES[sig_type].hash()))
        else:
            if sig_type not in _RSA_HASHES or len(raw) != (key.key_size + 7) // 8:
                return False  # never a SHA-1 ("ssh-rsa") signature
            key.verify(raw, data, padding.PKCS1v15(), _RSA_HASHES[sig_type]())
    except InvalidSignature:
        return False
    return True


def _dearmor(text: bytes) -> bytes:
    """The SSHSIG blob in exactly one armor, as git stores it (one trailing newline)."""
    lines = text.split(b"\n")
    if len(lines) < 4 or lines[0] != _BEGIN or lines[-2] != _END or lines[-1] != b"":
        raise _Malformed("not one SSH signature armor")
    body = lines[1:-2]
    if not all(_BASE64_LINE.fullmatch(line) for line in body):
        raise _Malformed("not base64 lines")
    return _b64decode(b"".join(body))


@dataclass(frozen=True, slots=True)
class _Signature:
    key: bytes  # the signer's public key blob
    hash_algorithm: bytes
    signature: bytes

    def signed_data(self, payload: bytes) -> bytes:
        """What the key signed: the SSHSIG preamble over the payload's hash (PROTOCOL.sshsig)."""
        digest = _PAYLOAD_HASHES[self.hash_algorithm](payload).digest()
        return _MAGIC + b"".join(
            len(part).to_bytes(4, "big") + part for part in (_NAMESPACE, b"", self.hash_algorithm, digest)
        )


def _parse_signature(blob: bytes) -> _Signature:
    """An SSHSIG blob made for git, or _Malformed."""
    r = _Reader(blob)
    if r.take(len(_MAGIC)) != _MAGIC or r.u32() != 1:
        raise _Malformed("not an SSHSIG version 1 blob")
    key, namespace, reserved, hash_algorithm, signature = r.string(), r.string(), r.string(), r.string(), r.string()
    r.done()
    # OpenSSH verifies over an empty reserved field whatever the blob holds: only an empty one is certain.
    if namespace != _NAMESPACE or reserved != b"" or hash_algorithm not in _PAYLOAD_HASHES:
        raise _Malformed("not a git signature with sha256 or sha512")
    return _Signature(key, hash_algorithm, signature)


def _split_commit(raw: bytes) -> tuple[bytes, bytes]:
    """(payload, signature) of a SHA-1 commit object, cut as git's commit.c
    `parse_buffer_signed_by_header` cuts them: `gpgsig ` header lines and their continuation lines
    (one leading space dropped) are the signature; other `gpgsig*` headers and their continuation
    lines are dropped; the rest, and everything from the first empty line on, is the payload.
    _Malformed unless there is exactly one `gpgsig` header."""
    payload: list[bytes] = []
    signature: list[bytes] = []
    headers = 0
    in_signature = other_signature = False
    pos, end = 0, len(raw)
    while pos < end:
        newline = raw.find(b"\n", pos)
        nxt = end if newline < 0 else newline + 1
        line = raw[pos:nxt]
        part: bytes | None = None
        if in_signature and line.startswith(b" "):
            part = line[1:]
        elif line.startswith(b"gpgsig "):
            part = line[len(b"gpgsig ") :]
            other_signature = False
            headers += 1
        elif line.startswith(b"gpgsig"):
            other_signature = True
        elif other_signature and not line.startswith(b" "):
            other_signature = False
        if part is not None:
            signature.append(part)
            in_signature = True
        else:
            if line.startswith(b"\n"):
                nxt = end  # the message: kept whole
                line = raw[pos:]
            if not other_signature:
                payload.append(line)
            in_signature = False
        pos = nxt
    if headers != 1:
        raise _Malformed("not exactly one gpgsig header")
    return b"".join(payload), b"".join(signature)


# --- allowed_signers ------------------------------------------------------------------------------

_PLAIN = r"[^\s\"'*?!=\\#,]+"  # one principal or namespace: no quotes, patterns, escapes or separators
_SIGNERS_LINE = re.compile(
    rf"(?P<principals>{_PLAIN}(?:,{_PLAIN})*)[ \t]+"
    rf'(?:namespaces="(?P<namespaces>{_PLAIN}(?:,{_PLAIN})*)"[ \t]+)?'
    r"(?P<keytype>\S+)[ \t]+(?P<key>[A-Za-z0-9+/]+={0,2})(?:[ \t].*)?"
)
_PRINTABLE = re.compile(r"[\t\n\x20-\x7e]*")


@dataclass(frozen=True)
class AllowedSigners:
    """The keys an allowed_signers file trusts for git with certainty: key blob -> the principal
    git reports for it, and the key itself."""

    trusted: Mapping[bytes, str]
    _keys: Mapping[bytes, tuple[str, _PublicKey]]

    @classmethod
    def parse(cls, text: bytes) -> AllowedSigners | None:
        """None unless every line parses strictly (see the module's docstring)."""
        try:
            decoded = text.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not _PRINTABLE.fullmatch(decoded):
            return None  # CR, NUL and other control characters: left to ssh-keygen
        seen: dict[bytes, int] = {}
        usable: dict[bytes, str] = {}
        keys: dict[bytes, tuple[str, _PublicKey]] = {}
        for line in decoded.split("\n"):
            stripped = line.lstrip(" \t")
            if not stripped or stripped.startswith("#"):
                continue
            match = _SIGNERS_LINE.fullmatch(stripped)
            if match is None or match["keytype"] not in _KEY_TYPES:
                return None
            try:
                blob = _b64decode(match["key"].encode())
                kind, key = _public_key(blob)
            except (_Malformed, ValueError, TypeError):
                return None
            if kind != match["keytype"]:
                return None
            keys[blob] = (kind, key)
            seen[blob] = seen.get(blob, 0) + 1
            namespaces = match["namespaces"]
            if namespaces is None or "git" in namespaces.split(","):
                usable[blob] = match["principals"].split(",")[0]
        trusted = {blob: who for blob, who in usable.items() if seen[blob] == 1}
        return cls(MappingProxyType(trusted), MappingProxyType({blob: keys[blob] for blob in trusted}))

    def verify_commit(self, raw: bytes) -> Good | None:
        """Good if the SHA-1 commit object `raw` carries a good signature by a trusted key; None
        ("don't know": ask git) for anything else."""
        try:
            payload, armored = _split_commit(raw)
            sig = _parse_signature(_dearmor(armored))
            principal = self.trusted.get(sig.key)
            if principal is None:
                return None
            kind, key = self._keys[sig.key]
            if not _check(kind, key, sig.signature, sig.signed_data(payload)):
                return None
        except Exception:  # whatever went wrong, the answer is "don't know", never "good"
            return None
        return Good(principal, fingerprint(sig.key))


_cache: dict[Path, tuple[bytes, AllowedSigners | None]] = {}
_cache_lock = threading.Lock()


def load_allowed_signers(path: Path) -> AllowedSigners | None:
    """The allowed_signers file at `path` as it is now (None: unreadable, or not strictly
    parseable). The file is read on every call, as git reads it on every run; parsing is cached by
    content, so an edit takes effect at once, even one of the same size within the same clock tick."""
    try:
        text = path.read_bytes()
    except OSError:
        return None
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == text:
        return hit[1]
    parsed = AllowedSigners.parse(text)
    with _cache_lock:
        _cache[path] = (text, parsed)
    return parsed
