"""The state dir: the last verified commit (and what it was verified against), written atomically.

Layout of --state-dir:
  state.json        last verified commit, repo, branch
  parsed.jsonl      parsed gate files by (path, blob id): a restart need not parse them again
  repo.git/         gitgate's own bare clone of the approvals repo
  gnupg/            private keyring built from --trust-gpg at every start
  trust/            trust roots written by `gitgate init` for the embedded default
  keys/             the local operator's SSH signing key (embedded default)
  lock              held by the one process that uses this state dir
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from gitgate.errors import GitgateError

STATE_VERSION = 1


@dataclass(frozen=True)
class Verified:
    repo: str
    branch: str
    commit: str
    signer: str
    committed_at: int
    verified_at: str


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None

    @property
    def mirror_dir(self) -> Path:
        return self.path / "repo.git"

    @property
    def gnupg_dir(self) -> Path:
        return self.path / "gnupg"

    @property
    def trust_dir(self) -> Path:
        return self.path / "trust"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    def ensure(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise GitgateError(f"--state-dir {self.path}: cannot create it ({e.strerror})") from e

    def lock(self) -> None:
        """One process per state dir: two would race on the clone and the verified commit."""
        self.ensure()
        handle = (self.path / "lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.close()
            raise GitgateError(
                f"--state-dir {self.path} is in use by another gitgate process; give each replica its own --state-dir"
            ) from e
        self._lock_file = handle

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def load(self) -> Verified | None:
        file = self.path / "state.json"
        try:
            raw: Any = json.loads(file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise GitgateError(
                f"{file}: unreadable state ({e}); move it away to start over (the head will be verified again)"
            ) from e
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise GitgateError(f"{file}: not a gitgate state file of version {STATE_VERSION}")
        try:
            return Verified(**{k: raw[k] for k in Verified.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise GitgateError(f"{file}: missing field {e}; move it away to start over") from e

    def save(self, verified: Verified) -> None:
        """Write-then-rename with fsync: a crash leaves the old state or the new, never half."""
        self.ensure()
        data = json.dumps({"version": STATE_VERSION, **asdict(verified)}, indent=2).encode()
        file = self.path / "state.json"
        try:
            write_atomic(file, data)
        except OSError as e:  # disk full, quota, read-only: the old state stays whole
            raise GitgateError(
                f"{file}: cannot record commit {verified.commit[:12]} as verified ({e.strerror}); "
                f"answers stay on the commit it records until it can be written: free space in {self.path}"
            ) from e

    @property
    def parsed_file(self) -> Path:
        return self.path / "parsed.jsonl"


def write_atomic(file: Path, data: bytes) -> None:
    """Write-then-rename with fsync: a crash leaves the old content or the new, never half."""
    tmp = file.with_name(file.name + ".tmp")
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dirfd = os.open(file.parent, os.O_DIRECTORY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
