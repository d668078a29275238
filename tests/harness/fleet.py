"""The demo fleet (three SQLite Laravel apps, local Redis) in a throwaway FLEETOPS_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from sandbox.demo.fleet import DemoSummary, seed_demo_fleet


@dataclass
class DemoFleet:
    home: Path
    db: ControlDatabase
    secret_box: SecretBox
    summary: DemoSummary


@pytest.fixture
def demo_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoFleet]:
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    db = ControlDatabase()
    db.migrate()
    secret_box = SecretBox(key)
    summary = seed_demo_fleet(tmp_path, db, secret_box)
    yield DemoFleet(tmp_path, db, secret_box, summary)
    db.dispose()
