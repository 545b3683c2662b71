"""Shared fixtures: an isolated git/gpg environment, real signing keys, real repos, real services."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from fakes.github import GitHubOpenAPI, OpenAPIMissing, github_openapi
from helpers import Approvals, Keys, make_keys

# One private HOME for the whole run: no developer config, keyring or identity leaks into tests.
_HOME = Path(tempfile.mkdtemp(prefix="gitgate-test-home-"))
(_HOME / ".gitconfig").write_text(
    "[user]\n\tname = Test Operator\n\temail = operator@example.test\n[init]\n\tdefaultBranch = main\n"
)
os.environ.update(
    HOME=str(_HOME),
    GIT_CONFIG_GLOBAL=str(_HOME / ".gitconfig"),
    GIT_CONFIG_NOSYSTEM="1",
    GNUPGHOME=str(_HOME / "gnupg-user"),
    TZ="UTC",
)
for var in [k for k in os.environ if k.startswith("GITGATE_")]:
    del os.environ[var]
(_HOME / "gnupg-user").mkdir(mode=0o700)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """alice (SSH) and carol (GPG) are trusted; mallory (SSH) and dave (GPG) are not."""
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def approvals(tmp_path: Path, keys: Keys) -> Approvals:
    """An approvals repo: a bare remote plus a working clone, first commit signed by alice."""
    return Approvals.create(tmp_path / "approvals", keys)


@pytest.fixture(scope="session")
def openapi() -> GitHubOpenAPI:
    """GitHub's published OpenAPI description, loaded once a run; the fake GitHub checks every
    answer against it. Missing: fail, saying how to install it (never skip)."""
    try:
        return github_openapi()
    except OpenAPIMissing as e:
        missing = str(e)
    pytest.fail(missing, pytrace=False)
