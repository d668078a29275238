"""Runs the real `fleetops` click command against a throwaway control database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from resources.common.secrets import new_key


@dataclass
class Fleetops:
    home: Path
    env: dict[str, str | None] = field(default_factory=dict)

    def __call__(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, env={**self.env, **env}, catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def state_bytes(self) -> bytes:
        """Every byte of the SQLite control database, WAL included."""
        return b"".join(p.read_bytes() for p in sorted(self.home.glob("fleetops.db*")))


@pytest.fixture(params=["sqlite", "postgresql"])
def fleetops(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleetops]:
    """An initialised control database on SQLite (the default) or PostgreSQL, and a secret key."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    runner = Fleetops(
        home=tmp_path / "home",
        env={
            "FLEETOPS_HOME": str(tmp_path / "home"),
            "FLEETOPS_DATABASE_URL": url,
            "FLEETOPS_SECRET_KEY": new_key(),
            "DAGSTER_HOME": None,
        },
    )
    runner.ok("init")
    yield runner


@pytest.fixture
def fleetops_sqlite(tmp_path: Path) -> Fleetops:
    runner = Fleetops(
        home=tmp_path / "home",
        env={"FLEETOPS_HOME": str(tmp_path / "home"), "FLEETOPS_DATABASE_URL": None,
             "FLEETOPS_SECRET_KEY": new_key(), "DAGSTER_HOME": None},
    )
    runner.ok("init")
    return runner
