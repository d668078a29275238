"""Dynamic partitions follow the registry: at once from the CLI, every tick from the sensor."""

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from orchestration.common.resources import ControlDatabaseResource
from orchestration.definitions import defs
from orchestration.fleet.sensors import registry_partitions_sensor
from tests.harness.cli import Fleetops

REPO = Path(__file__).resolve().parents[2]


def evaluate(instance: dg.DagsterInstance):
    context = dg.build_sensor_context(instance=instance, resources={"control_db": ControlDatabaseResource()})
    return registry_partitions_sensor(context)


def apply_requests(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def test_sensor_runs_by_default_and_is_in_the_code_location() -> None:
    sensor = defs.get_sensor_def("registry_partitions_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_sensor_makes_partitions_equal_the_registry(
    fleetops_sqlite: Fleetops, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fleetops_sqlite.env.items():
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    fleetops_sqlite.ok("project", "add", "shop", "--failed-db", "sqlite:////srv/shop.sqlite")
    fleetops_sqlite.ok("project", "add", "crm", "--failed-db", "sqlite:////srv/crm.sqlite")
    fleetops_sqlite.ok("redis", "add", "main", "--url", "redis://127.0.0.1:6379/0")
    fleetops_sqlite.ok("customer", "add", "acme", "--base-url", "https://z.example", "--client-id", "c",
                       "--client-secret-env", "ACME")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("projects", ["retired"])
        result = evaluate(instance)
        apply_requests(instance, result)
        assert sorted(instance.get_dynamic_partitions("projects")) == ["crm", "shop"]
        assert instance.get_dynamic_partitions("redis_connections") == ["main"]
        assert instance.get_dynamic_partitions("zuora_customers") == ["acme"]
        assert isinstance(evaluate(instance), dg.SkipReason)  # nothing left to do

        fleetops_sqlite.ok("project", "remove", "crm")
        apply_requests(instance, evaluate(instance))
        assert instance.get_dynamic_partitions("projects") == ["shop"]


def test_sensor_skips_with_the_reason_when_the_control_database_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOPS_DATABASE_URL", "postgresql+psycopg://postgres:pw@127.0.0.1:1/none")
    with dg.instance_for_test() as instance:
        result = evaluate(instance)
    assert isinstance(result, dg.SkipReason)
    assert "cannot use the control database" in result.skip_message
    assert ":pw@" not in result.skip_message


def test_cli_updates_partitions_at_once_when_an_instance_is_configured(
    fleetops_sqlite: Fleetops, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    fleetops_sqlite.env["DAGSTER_HOME"] = str(home)
    added = fleetops_sqlite.ok("project", "add", "shop", "--failed-db", "sqlite:////srv/shop.sqlite")
    assert "dagster partitions: + projects/shop" in added.stderr
    fleetops_sqlite.ok("redis", "add", "main", "--url", "redis://127.0.0.1:6379/0")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_dynamic_partitions("projects") == ["shop"]
        assert instance.get_dynamic_partitions("redis_connections") == ["main"]
    fleetops_sqlite.ok("project", "remove", "shop")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_dynamic_partitions("projects") == []


def test_code_location_validates() -> None:

    result = subprocess.run(
        [str(REPO / ".venv/bin/dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location fleetops" in result.stderr + result.stdout
