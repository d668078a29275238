"""Horizon supervisor files: rendered from the registry, checked by real PHP, written atomically, diffed."""

import json
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from orchestration.common.resources import ControlDatabaseResource
from orchestration.horizon.assets import horizon_supervisors
from resources.common.control.database import ControlDatabase
from resources.common.control.models import RedisConnection
from resources.common.errors import ValidationError
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.horizon.supervisors import check_supervisors, generate, php_check, php_value, write_atomically
from tests.harness.laravel import require_php


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ControlDatabase, SecretBox]:
    require_php()
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    db = ControlDatabase()
    db.migrate()
    secret_box = SecretBox(key)
    projects, connections = ProjectRegistry(db, secret_box), RedisRegistry(db, secret_box)
    projects.add(ProjectSpec(key="billing", failed_db="sqlite:////srv/billing.sqlite", horizon=True,
                             redis_prefix="billing_database_",
                             queue_connections={"redis": "redis://:q-pw@10.0.0.5:6379/0"}))
    projects.add(ProjectSpec(key="shop", failed_db="sqlite:////srv/shop.sqlite"))
    connections.add(RedisSpec(name="main", url="redis://:main-pw@10.0.0.5:6379/0", project="billing",
                              options={"queues": ["default", "mail"], "horizon": {"maxProcesses": 4}}))
    connections.add(RedisSpec(name="reports", url="redis://10.0.0.6:6380/1", project="billing",
                              options={"queue_connection": "reports-redis", "queues": ["reports:pdf"]}))
    connections.add(RedisSpec(name="cache", url="redis://10.0.0.7:6379/0", project="shop"))
    yield db, secret_box
    db.dispose()


def php_require(path: Path) -> dict:
    done = subprocess.run(["php", "-r", "echo json_encode(require $argv[1]);", "--", str(path)],
                          capture_output=True, text=True, check=True, timeout=30)
    return json.loads(done.stdout)


def test_each_horizon_project_gets_a_file_php_loads_as_the_intended_supervisors(fleet, tmp_path: Path) -> None:
    db, secret_box = fleet
    out = tmp_path / "horizon"
    run = generate(db, secret_box, out)
    assert run.errors == {} and [r.project for r in run.written] == ["billing"]
    assert sorted(p.name for p in out.iterdir()) == ["billing.php"]  # no temp file left, shop has no Horizon
    loaded = php_require(out / "billing.php")
    assert loaded == {
        "fleetops-main": {"connection": "redis", "queue": ["default", "mail"], "balance": "auto",
                          "autoScalingStrategy": "time", "minProcesses": 1, "maxProcesses": 4, "maxTime": 0,
                          "maxJobs": 0, "memory": 128, "tries": 1, "timeout": 60, "nice": 0},
        "fleetops-reports": {"connection": "reports-redis", "queue": ["reports:pdf"], "balance": "auto",
                             "autoScalingStrategy": "time", "minProcesses": 1, "maxProcesses": 10, "maxTime": 0,
                             "maxJobs": 0, "memory": 128, "tries": 1, "timeout": 60, "nice": 0},
    }
    assert run.written[0].checked_with == ["structure", "php -l", "php require"]
    text = (out / "billing.php").read_text()
    assert "horizon:terminate" in text and "main-pw" not in text and "q-pw" not in text


def test_unchanged_files_are_left_alone_and_changes_come_with_a_diff(fleet, tmp_path: Path) -> None:
    db, secret_box = fleet
    out = tmp_path / "horizon"
    generate(db, secret_box, out)
    before = (out / "billing.php").stat()
    again = generate(db, secret_box, out)
    assert again.written == [] and [r.project for r in again.unchanged] == ["billing"]
    assert (out / "billing.php").stat().st_ino == before.st_ino and (out / "billing.php").stat().st_mtime_ns == (
        before.st_mtime_ns)
    RedisRegistry(db, secret_box).remove("reports")
    (changed,) = generate(db, secret_box, out).written
    diff = changed.diff()
    assert "-    'fleetops-reports' => [" in diff
    assert [line for line in diff.splitlines() if line.startswith("+")] == ["+++ billing.php"]  # only removals
    assert (out / "billing.php").stat().st_ino != before.st_ino  # replaced by rename, never rewritten in place
    assert "fleetops-reports" not in php_require(out / "billing.php")


def test_a_bad_project_keeps_its_old_file_and_does_not_stop_the_others(fleet, tmp_path: Path) -> None:
    db, secret_box = fleet
    out = tmp_path / "horizon"
    generate(db, secret_box, out)
    good = (out / "billing.php").read_text()
    with db.session() as session:
        row = session.query(RedisConnection).filter_by(name="main").one()
        row.options = {**row.options, "horizon": {"balance": "sideways"}}
    ProjectRegistry(db, secret_box).add(ProjectSpec(key="crm", failed_db="sqlite:////srv/crm.sqlite", horizon=True))
    run = generate(db, secret_box, out)
    assert run.errors == {"billing": "supervisor fleetops-main: balance must be auto, simple or false"}
    assert [r.project for r in run.written] == ["crm"] and php_require(out / "crm.php") == []
    assert (out / "billing.php").read_text() == good
    assert sorted(p.name for p in out.iterdir()) == ["billing.php", "crm.php"]


def test_php_that_does_not_load_is_never_renamed_into_place(tmp_path: Path) -> None:
    require_php()
    target = tmp_path / "app.php"
    target.write_text("<?php return ['kept' => true];\n")

    def lint(path: Path) -> None:
        php_check(path, {"x": 1})

    with pytest.raises(ValidationError, match="php -l refused"):
        write_atomically(target, "<?php return [;\n", lint)
    with pytest.raises(ValidationError, match="different array"):
        write_atomically(target, "<?php return ['x' => 2];\n", lint)
    assert target.read_text() == "<?php return ['kept' => true];\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.php"]


@pytest.mark.parametrize(("value", "php"), [
    ("it's \\ fine", "'it\\'s \\\\ fine'"), (False, "false"), (3, "3"), ([], "[]"),
    (["a"], "[\n    'a',\n]"),
])
def test_php_literals(value, php: str) -> None:
    assert php_value(value, 0) == php


def test_structure_is_checked_before_php_sees_it() -> None:
    base = {"connection": "redis", "queue": ["default"], "balance": "auto", "autoScalingStrategy": "time",
            "minProcesses": 1, "maxProcesses": 2, "maxTime": 0, "maxJobs": 0, "memory": 128, "tries": 1,
            "timeout": 60, "nice": 0}
    check_supervisors({"s": base})
    for bad, message in [({"queue": []}, "queue must be"), ({"queue": ["a b"]}, "queue must be"),
                         ({"tries": "3"}, "tries must be"), ({"minProcesses": 3}, "minProcesses <= maxProcesses"),
                         ({"connection": ""}, "connection must be")]:
        with pytest.raises(ValidationError, match=message):
            check_supervisors({"s": {**base, **bad}})


def test_the_asset_reports_the_diff_and_a_check(fleet, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = {"ops": {"horizon_supervisors": {"config": {"output_dir": str(out)}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize([horizon_supervisors], instance=instance, run_config=config,
                                resources={"control_db": ControlDatabaseResource()})
        metadata = result.asset_materializations_for_node("horizon_supervisors")[0].metadata
        assert (metadata["written"].value, metadata["failed"].value) == (1, 0)
        assert "```diff" in metadata["diff"].value and "+    'fleetops-main' => [" in metadata["diff"].value
        assert result.get_asset_check_evaluations()[0].passed
        again = dg.materialize([horizon_supervisors], instance=instance, run_config=config,
                               resources={"control_db": ControlDatabaseResource()})
        metadata = again.asset_materializations_for_node("horizon_supervisors")[0].metadata
        assert (metadata["written"].value, metadata["unchanged"].value, metadata["diff"].value) == (
            0, 1, "_no changes_")
