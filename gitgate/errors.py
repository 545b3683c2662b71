"""The one error hierarchy. Every message says what failed, where, and what to do."""

from __future__ import annotations


class GitgateError(Exception):
    """A failure explained in one message; the CLI prints it and exits 1."""


class UsageError(GitgateError):
    """Bad flags or arguments; the CLI exits 2."""


class GitError(GitgateError):
    """A git command failed."""

    def __init__(self, cmd: tuple[str, ...], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        err = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = " / ".join(err[-2:]) if err else "no output"
        super().__init__(f"git failed ({' '.join(cmd[:4])} ... exit {returncode}): {detail}")


class TrustError(GitgateError):
    """Trust roots are missing or unreadable."""


class InvalidFiles(GitgateError):
    """One or more gate/policy files are invalid. Carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0].render() if problems else "invalid files"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


class Problem:
    """One thing wrong with one file: where (file, line, key path) and what."""

    __slots__ = ("file", "key", "line", "message")

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self.render()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self.render() == other.render()

    def __hash__(self) -> int:
        return hash(self.render())
