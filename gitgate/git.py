"""The only place gitgate runs git. Every call goes through `run`, with a pinned environment."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from gitgate.errors import GitError, GitgateError

# Variables that change where or how git works; a leaked one (from a hook, a CI job, a shell)
# must never redirect gitgate's reads. Kept: transport settings a user sets on purpose.
_KEEP = {
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
    "GIT_ASKPASS",
    "GIT_HTTP_PROXY_AUTHMETHOD",
    "GIT_PROXY_COMMAND",
    "GIT_TRACE",
    "GIT_CURL_VERBOSE",
}
_AUTH_FAILURES = (
    "could not read Username",
    "Authentication failed",
    "Permission denied (publickey",
    "The requested URL returned error: 403",
    "The requested URL returned error: 401",
)
# What git says when gitgate's own clone is broken (a torn or garbled object, a truncated pack, a
# lock left by a git that was killed) rather than the remote being unreachable.
_LOCAL_DAMAGE = (
    "is corrupt",
    "is empty",
    "unable to unpack",
    "inflate:",
    "corrupt or missing",
    "bad object",
    "invalid object",
    "does not match index",
    "non-monotonic index",
    "did not send all necessary objects",
    "not a git repository",
    ".lock': File exists",
    "cannot lock ref",
)


# What git prints when it could not check a signature at all (it then says "N", not signed).
_CANNOT_CHECK = ("could not create temporary file", "failed writing detached signature", "cannot run ")


def local_damage(error: GitError) -> bool:
    """Whether a failed git command says the local clone itself is broken."""
    text = error.stderr.decode("utf-8", "replace")
    return any(marker in text for marker in _LOCAL_DAMAGE)


def clean_env(extra: Mapping[str, str] | None = None, *, isolated: bool = True) -> dict[str, str]:
    """The environment for git: no leaked GIT_* variables; with `isolated`, no user or system
    config either (gitgate's own clone follows gitgate's settings only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0")
    if isolated:
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    if extra:
        env.update(extra)
    return env


def run(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float | None = 300,
    isolated: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run git; raise GitError (command, exit code, stderr) unless `check` is False.
    `isolated=False` is for a person's own working repo, where their identity and config apply."""
    cmd = ("git", *args)
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=clean_env(env, isolated=isolated),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise GitgateError("git is not installed or not on PATH; install git 2.34 or newer") from e
    except subprocess.TimeoutExpired as e:
        raise GitError(cmd, -1, b"", f"timed out after {timeout}s".encode()) from e
    if check and proc.returncode != 0:
        raise GitError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


class TreeEntry(NamedTuple):
    mode: str
    kind: str  # blob | tree | commit
    oid: str
    path: str


# What `tree_entries` gives: a TreeEntry's fields in a plain tuple. A first build lists 100,000 and
# sends them to worker processes; a plain tuple is made and pickled in C, a NamedTuple through a
# Python call each.
PlainEntry = tuple[str, str, str, str]


_LS_TREE = re.compile(r"([0-7]{6}) (blob|tree|commit) ([0-9a-f]{40,64})\t([^\0]*)\0")


@dataclass(frozen=True, slots=True)
class CommitSignature:
    commit: str
    status: str  # git's %G?: G good, B bad, U untrusted/unknown validity, N none, E cannot check, ...
    fingerprint: str  # %GF: the signing key (hex for GPG, SHA256:... for SSH)
    primary: str  # %GP: the GPG primary key
    signer: str  # %GS: GPG user id, or the SSH principal from allowed_signers
    author: str
    committed_at: int
    subject: str


@dataclass(frozen=True, slots=True)
class CommitInfo:
    author: str
    committed_at: int
    subject: str


_SIGNATURES_PER_PROCESS = 8  # below this many commits a second git process is not worth starting


def _kind(mode: str) -> str:
    return {"040000": "tree", "160000": "commit"}.get(mode, "blob")


def _time(ct: str) -> int:
    """A commit time as git prints it (%ct); 0 where a damaged committer line has none (the commit
    is then judged on its signature like any other, not allowed to stop the reconciler)."""
    return int(ct) if ct.isdigit() and ct.isascii() else 0


def token_env(token: str | None, username: str = "x-access-token") -> dict[str, str]:
    """HTTPS credentials as a config entry in the environment: never in argv, never on disk."""
    if not token:
        return {}
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class Mirror:
    """gitgate's own bare clone of the approvals repo, inside the state dir."""

    def __init__(self, git_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.git_dir = git_dir
        self._env = dict(env or {})

    def git(
        self,
        *args: str,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float | None = 300,
    ) -> subprocess.CompletedProcess[bytes]:
        merged = {**self._env, **(env or {})}
        return run("--git-dir", str(self.git_dir), *args, env=merged, stdin=stdin, check=check, timeout=timeout)

    def exists(self) -> bool:
        return (self.git_dir / "HEAD").is_file() and (self.git_dir / "objects").is_dir()

    def create(self, url: str) -> None:
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        run("init", "--bare", "-q", str(self.git_dir))
        self.git("config", "remote.origin.url", url)
        self.git("config", "gc.auto", "0")  # never let an automatic gc race a reconcile

    def replace(self, url: str, branch: str, *, timeout: float = 120) -> None:
        """Clone `url` afresh beside the clone and swap it in only once its fetch succeeded: a
        broken clone is kept (and still read) while the remote cannot be reached."""
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        fresh = Mirror(
            Path(tempfile.mkdtemp(prefix=f"{self.git_dir.name}.new-", dir=self.git_dir.parent)), env=self._env
        )
        old = self.git_dir.with_name(f"{self.git_dir.name}.old-{os.getpid()}")
        try:
            fresh.create(url)
            fresh.fetch(branch, timeout=timeout)
            if self.git_dir.exists() or self.git_dir.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.git_dir, old)
            os.replace(fresh.git_dir, self.git_dir)
        finally:
            shutil.rmtree(fresh.git_dir, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    def remove_leftovers(self) -> list[str]:
        """Lock files a killed git left in the clone (they would fail every fetch), and half-made
        clones from `replace`. Only for the process that holds the state dir's lock, at start."""
        removed = []
        for sibling in self.git_dir.parent.glob(f"{self.git_dir.name}.*-*"):
            if sibling.is_dir() and sibling.name.split(".")[-1].startswith(("new-", "old-")):
                shutil.rmtree(sibling, ignore_errors=True)
                removed.append(sibling.name)
        if self.git_dir.is_dir():
            for lock in self.git_dir.rglob("*.lock"):
                if lock.is_file():
                    lock.unlink(missing_ok=True)
                    removed.append(str(lock.relative_to(self.git_dir)))
        return removed

    def fetch(self, branch: str, *, timeout: float = 120, depth: int | None = None) -> None:
        """`depth` 1 fetches the head alone: enough when no earlier commit is needed (nothing verified
        yet), and for a large repo with years of history a fraction of the time of a full fetch.
        Later fetches bring everything from there on, as the ancestry checks need."""
        refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
        try:
            # FETCH_HEAD is never read: not writing it saves a write (with the URL in it) per interval.
            self.git(
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-recurse-submodules",
                "--no-write-fetch-head",
                *([f"--depth={depth}"] if depth else []),
                "origin",
                refspec,
                timeout=timeout,
            )
        except GitError as e:
            text = e.stderr.decode("utf-8", "replace")
            if any(s in text for s in _AUTH_FAILURES):
                raise GitgateError(
                    "fetch failed: authentication failed; for https give a token with read access "
                    "(--token, GITHUB_TOKEN or GITLAB_TOKEN), for ssh a key the remote accepts"
                ) from e
            if "couldn't find remote ref" in text:
                raise GitgateError(f"fetch failed: branch {branch} does not exist in the remote") from e
            raise

    def object_count(self) -> int:
        """Objects in the clone (packed and loose), as `git count-objects` counts them."""
        out = self.git("count-objects", "-v").stdout.decode()
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        return int(fields.get("count", 0)) + int(fields.get("in-pack", 0))

    def rev(self, ref: str) -> str | None:
        """The commit a ref or id names, or None if there is none (or it is not a commit)."""
        proc = self.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
        out = proc.stdout.decode().strip()
        return out if proc.returncode == 0 and out else None

    def set_ref(self, ref: str, commit: str) -> None:
        self.git("update-ref", ref, commit)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if proc.returncode not in (0, 1):
            raise GitError(("git", "merge-base"), proc.returncode, proc.stdout, proc.stderr)
        return proc.returncode == 0

    def first_parent_path(self, base: str | None, head: str) -> list[str]:
        """Commits on head's first-parent chain after `base` (all of it if None), oldest first."""
        spec = [head] if base is None else [f"{base}..{head}"]
        out = self.git("rev-list", "--first-parent", "--reverse", *spec).stdout.decode()
        return out.split()

    def signatures(
        self, commits: Iterable[str], *, env: Mapping[str, str], config: Iterable[str]
    ) -> dict[str, CommitSignature]:
        """Signature facts for many commits (never %GT: it aborts git 2.39). git starts one verifier
        (gpg, ssh-keygen) per signature, one after another; that is most of the cost, so many
        commits are split over one git process per CPU, run at once."""
        ids = list(commits)
        if not ids:
            return {}
        config = list(config)
        parts = min(len(ids) // _SIGNATURES_PER_PROCESS, len(os.sched_getaffinity(0)))
        if parts > 1:
            chunks = [ids[i::parts] for i in range(parts)]
            with ThreadPoolExecutor(parts) as pool:
                found = list(pool.map(lambda chunk: self._signatures(chunk, env=env, config=config), chunks))
            return {k: v for part in found for k, v in part.items()}
        return self._signatures(ids, env=env, config=config)

    def _signatures(
        self, ids: list[str], *, env: Mapping[str, str], config: Iterable[str]
    ) -> dict[str, CommitSignature]:
        """As `signatures`, for one git process. git itself dies (SIGPIPE) on some damaged
        signatures: it feeds the payload to an `ssh-keygen` that has already given up on the
        signature, always for payloads over 64 KiB, by chance for smaller ones. Then each commit is
        checked on its own, and one that still kills git is reported as status "?" (refused). Only
        a commit git cannot read at all raises (the clone is damaged)."""
        config = list(config)
        try:
            return self._signatures_once(ids, env=env, config=config)
        except GitError as error:
            if len(ids) > 1:
                out: dict[str, CommitSignature] = {}
                for commit in ids:
                    out.update(self._signatures([commit], env=env, config=config))
                return out
            last = error
        for _ in range(2):  # a race for small payloads: asked again
            try:
                return self._signatures_once(ids, env=env, config=config)
            except GitError as error:
                last = error
        info = self.commit_info(ids)  # raises if the commit itself cannot be read
        if not info:
            raise last
        return {
            sha: CommitSignature(sha, "?", "", "", "", meta.author, meta.committed_at, meta.subject)
            for sha, meta in info.items()
        }

    def _signatures_once(
        self, ids: list[str], *, env: Mapping[str, str], config: Iterable[str]
    ) -> dict[str, CommitSignature]:
        records, err = self._log(ids, "%G?%x00%GF%x00%GP%x00%GS", env=env, config=config)
        # git reports a good signature it could not check (no temporary file for it: disk or
        # TMPDIR full or gone) as "N", not signed, and exits 0. That is no verdict on the commit.
        if any(s in err for s in _CANNOT_CHECK):
            line = next(ln for ln in err.splitlines() if any(s in ln for s in _CANNOT_CHECK))
            raise GitgateError(
                f"cannot check signatures: {line.strip()}; is the disk or TMPDIR full or missing? "
                "Nothing is refused for it; tried again next interval"
            )
        return {
            sha: CommitSignature(sha, status, fpr, primary, signer, author, _time(ct), subject)
            for sha, status, fpr, primary, signer, author, ct, subject in records
        }

    def commit_info(self, commits: Iterable[str]) -> dict[str, CommitInfo]:
        """Author, commit time and subject of many commits, as `signatures` reads them, in one git
        process. No %G placeholder: git starts no verifier."""
        ids = list(commits)
        if not ids:
            return {}
        records, _err = self._log(ids, "")
        return {sha: CommitInfo(author, _time(ct), subject) for sha, author, ct, subject in records}

    def _log(
        self, ids: list[str], placeholders: str, *, env: Mapping[str, str] | None = None, config: Iterable[str] = ()
    ) -> tuple[list[list[str]], str]:
        """One `git log` over exactly `ids`: per commit its id, `placeholders` (NUL-separated), author,
        commit time and subject; and git's stderr."""
        fields = f"%H%x00{placeholders}%x00" if placeholders else "%H%x00"
        args: list[str] = []
        for item in config:
            args += ["-c", item]
        proc = self.git(
            *args,
            "log",
            "--no-walk=unsorted",
            "--no-show-signature",
            f"--format={fields}%an <%ae>%x00%ct%x00%s%x1e",
            "--stdin",
            env=env,
            stdin="\n".join(ids).encode(),
        )
        count = fields.count("%x00") + 2  # separators in a record
        records = []
        for raw in proc.stdout.decode("utf-8", "replace").split("\x1e"):
            record = raw.strip("\n")
            if record:
                records.append(record.split("\x00", count))
        return records, proc.stderr.decode("utf-8", "replace")

    def commit_time(self, commit: str) -> int:
        out = self.git("log", "-1", "--no-show-signature", "--format=%ct", commit).stdout
        return _time(out.decode().strip())

    def tree_entries(self, commit: str, paths: Iterable[str]) -> list[PlainEntry]:
        """Every non-tree entry of `commit` at or below `paths` (the whole tree if none), in one call:
        (mode, kind, oid, path), as in TreeEntry."""
        proc = self.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths)
        text = proc.stdout.decode("utf-8", "surrogateescape")  # decoded once: 100,000 lines
        entries: list[PlainEntry] = _LS_TREE.findall(text)
        if len(entries) != text.count("\0"):  # never skip an entry git listed: it might be a gate file
            raise GitError(tuple(proc.args), 0, b"", b"git ls-tree printed an entry gitgate does not understand")
        return entries

    def changed_entries(self, old: str, new: str, paths: Iterable[str]) -> list[tuple[str, TreeEntry]]:
        """What changed from `old` to `new` at or below `paths`, in one call: (status, entry) with
        status A(dded), M(odified), T(ype changed) or D(eleted); the entry is the new one (the old
        one for D). No rename detection: a rename is a deletion and an addition."""
        out = self.git(
            "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", "--no-ext-diff", old, new, "--", *paths
        ).stdout
        items = out.split(b"\0")
        changes = []
        for meta, name in zip(items[0::2], items[1::2], strict=False):
            if not meta.startswith(b":"):
                continue
            old_mode, new_mode, old_oid, new_oid, status = meta[1:].decode().split(" ")
            path = name.decode("utf-8", "surrogateescape")
            if status == "D":
                changes.append(("D", TreeEntry(old_mode, _kind(old_mode), old_oid, path)))
            else:
                changes.append((status[0], TreeEntry(new_mode, _kind(new_mode), new_oid, path)))
        return changes

    def read_blobs(self, oids: Iterable[str], *, limit: int) -> dict[str, bytes | None]:
        """Many blobs through one `git cat-file --batch`; a blob over `limit` bytes maps to None."""
        found, other = self._cat_file(oids, kind="blob", limit=limit)
        if other:  # a tree lists only objects that are there: the clone is damaged
            oid, header = next(iter(other.items()))
            raise GitError(self._cat_file_command(), -1, b"", f"object {oid} is not a blob: {header}".encode())
        return found

    def commit_objects(self, commits: Iterable[str], *, limit: int) -> dict[str, bytes]:
        """The raw objects of many commits (as `git cat-file commit` prints them) through one
        `git cat-file --batch`. An id that names no commit, or not by its full id, and a commit over
        `limit` bytes are left out."""
        found, _ = self._cat_file(commits, kind="commit", limit=limit)
        return {oid: data for oid, data in found.items() if data is not None}

    def _cat_file_command(self) -> tuple[str, ...]:
        return ("git", "--git-dir", str(self.git_dir), "cat-file", "--batch")

    def _cat_file(
        self, oids: Iterable[str], *, kind: str, limit: int
    ) -> tuple[dict[str, bytes | None], dict[str, str]]:
        """Objects of `kind`, named by their full ids, through one `git cat-file --batch`: each one's
        content, or None if it is over `limit` bytes (read past, never held in memory); and for
        every other name (missing, another type, not a full id) the header git gave."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}, {}
        cmd = self._cat_file_command()
        with subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(self._env)
        ) as proc:
            stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
            if stdin is None or stdout is None or stderr is None:  # pragma: no cover - PIPE gives all three
                raise GitgateError("could not start git cat-file")

            def feed() -> None:
                try:
                    stdin.write("".join(f"{oid}\n" for oid in wanted).encode())
                    stdin.close()
                except BrokenPipeError:
                    pass

            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
            found: dict[str, bytes | None] = {}
            other: dict[str, str] = {}
            want = kind.encode()
            readline, read = stdout.readline, stdout.read  # the loop runs once per file of a first build
            try:
                for oid in wanted:
                    line = readline()
                    header = line.split()
                    if len(header) != 3:  # "<name> missing" or "<name> ambiguous": nothing follows
                        if not line.endswith(b"\n"):
                            raise GitError(cmd, -1, b"", f"git cat-file stopped before {oid}".encode())
                        other[oid] = line.decode("utf-8", "replace").strip()
                        continue
                    size = int(header[2])
                    ours = header[1] == want and header[0].decode() == oid
                    if ours and size <= limit:
                        data = read(size + 1)
                        if len(data) != size + 1:
                            raise GitError(cmd, -1, b"", f"git cat-file stopped inside {oid}".encode())
                        found[oid] = data[:-1]
                        continue
                    remaining = size + 1  # too large, or not what was asked for: read past it
                    while remaining:
                        chunk = read(min(remaining, 1 << 20))
                        if not chunk:
                            raise GitError(cmd, -1, b"", f"git cat-file stopped inside {oid}".encode())
                        remaining -= len(chunk)
                    if ours:
                        found[oid] = None
                    else:
                        other[oid] = line.decode("utf-8", "replace").strip()
            finally:
                writer.join()
                err = stderr.read()
                code = proc.wait()
        if code != 0:
            raise GitError(cmd, code, b"", err)
        return found, other
