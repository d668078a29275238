"""Every config file in deploy/ is accepted by Dagster's own validation, as the processes that read it would.

Instance files: Dagster's instance schema (`InstanceRef.from_dir`), then each configurable class they name
(PostgreSQL storage, run coordinator, K8sRunLauncher, CeleryRunLauncher) imported and its config processed
against that class's own schema with the environment resolved, as `ConfigurableClassData.rehydrate` does
before it constructs the object. The instances that need no cluster are opened for real by
`dagster instance info` on the local PostgreSQL; the K8sRunLauncher cannot be constructed outside a cluster
(it loads the in-cluster Kubernetes config), so its file stops at the schema. Workspace files: Dagster's
workspace loader; the code-server split is also loaded from a real `dagster code-server start`.
"""

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer
from dagster_celery.cli import get_validated_config

from tests.harness.processes import free_port, process_group, wait_until

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTANCE_FILES = sorted(DEPLOY.rglob("dagster.yaml"))
WORKSPACE_FILES = sorted(DEPLOY.rglob("workspace.yaml"))
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
DAGSTER = REPO / ".venv/bin"
SUBCOMMAND_DEPTH = {"dagster": 2, "dagster-daemon": 1, "dagster-webserver": 0}  # `dagster code-server start`

# What the files read from the environment, with values of the right type.
DEPLOY_ENV = {
    "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "postgres",
    "DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": "",
    "FLEETOPS_K8S_NAMESPACE": "fleetops",
    "FLEETOPS_CELERY_BROKER_URL": "redis://127.0.0.1:6379/15", "FLEETOPS_CELERY_BACKEND_URL": "redis://127.0.0.1:6379/15",
    "FLEETOPS_CODE_SERVER_HOST": "127.0.0.1", "FLEETOPS_CODE_SERVER_PORT": "4266",
}


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(DEPLOY)) for p in paths]


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in DEPLOY_ENV.items():
        monkeypatch.setenv(name, value)
    return DEPLOY_ENV


def class_sections(ref: InstanceRef) -> dict[str, ConfigurableClassData]:
    return {name: value for name, value in ref._asdict().items() if isinstance(value, ConfigurableClassData)}


def leaves(value: object) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [str(value)]


def test_deploy_holds_the_expected_files() -> None:
    assert ids(INSTANCE_FILES) == ["celery/dagster.yaml", "dagster.yaml", "k8s/dagster.yaml"]
    assert ids(WORKSPACE_FILES) == ["k8s/workspace.yaml", "split/workspace.yaml"]
    assert {p.suffix for p in DEPLOY.rglob("*") if p.is_file()} <= {".yaml", ".service", ".example"}


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=ids(INSTANCE_FILES))
def test_instance_file_passes_dagster_validation(path: Path, deploy_env: dict[str, str]) -> None:
    ref = InstanceRef.from_dir(str(path.parent))
    sections = class_sections(ref)
    assert sections["storage_data"].module_name == "dagster_postgres"
    for name, data in sections.items():
        klass = class_from_code_pointer(data.module_name, data.class_name)
        result = process_config(klass.config_type(), data.config_dict)  # type: ignore[attr-defined]
        assert result.success, f"{path.relative_to(REPO)} {name} ({data.class_name}): {result.errors}"
    storage = process_config(class_from_code_pointer("dagster_postgres", "DagsterPostgresStorage").config_type(),
                             sections["storage_data"].config_dict).value
    assert storage["postgres_db"]["hostname"] == "127.0.0.1" and storage["postgres_db"]["port"] == 5432


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=ids(INSTANCE_FILES))
def test_instance_file_keeps_the_run_limits_fleetops_relies_on(path: Path) -> None:
    embedded = yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    config = yaml.safe_load(path.read_text())
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == embedded
    assert config["run_monitoring"]["enabled"] is True and config["telemetry"] == {"enabled": False}
    postgres_db = dict(config["storage"]["postgres"]["postgres_db"])
    assert postgres_db.pop("scheme") == "postgresql+psycopg2", "the driver dagster-postgres is written for"
    assert all(isinstance(value, dict) and set(value) == {"env"} for value in postgres_db.values()), "details from env"
    assert not [leaf for leaf in leaves(config) if "://" in leaf or "@" in leaf], "no URL or credential in the file"


def test_a_run_launcher_the_config_does_not_fit_is_refused(deploy_env: dict[str, str], tmp_path: Path) -> None:
    """The check above can fail: a misspelt K8sRunLauncher field does not pass its schema."""
    config = yaml.safe_load((DEPLOY / "k8s/dagster.yaml").read_text())
    config["run_launcher"]["config"]["job_namespce"] = "fleetops"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    data = InstanceRef.from_dir(str(tmp_path)).run_launcher_data
    result = process_config(class_from_code_pointer(data.module_name, data.class_name).config_type(),  # type: ignore[attr-defined]
                            data.config_dict)
    assert not result.success and "job_namespce" in str(result.errors)


@pytest.fixture
def dagster_db(pg_url: str) -> str:
    return pg_url.rsplit("/", 1)[1]


@pytest.mark.parametrize("variant", ["dagster.yaml", "celery/dagster.yaml"])
def test_dagster_cli_opens_the_instance_on_postgresql(variant: str, dagster_db: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((DEPLOY / variant).read_text())
    env = {**os.environ, **DEPLOY_ENV, "DAGSTER_PG_DB": dagster_db, "DAGSTER_HOME": str(home)}
    info = subprocess.run([DAGSTER / "dagster", "instance", "info"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert info.returncode == 0, info.stdout + info.stderr
    for storage in ("PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"):
        assert f": {storage}" in info.stdout
    launcher = "CeleryRunLauncher" if variant.startswith("celery") else "DefaultRunLauncher"
    assert launcher in info.stdout
    assert not list(home.rglob("*.db")), "nothing stored in SQLite under DAGSTER_HOME"


def test_celery_worker_config_passes_dagster_celery_validation(deploy_env: dict[str, str]) -> None:
    config = get_validated_config(str(DEPLOY / "celery/worker.yaml"))
    launcher = yaml.safe_load((DEPLOY / "celery/dagster.yaml").read_text())["run_launcher"]["config"]
    assert config["broker"] == deploy_env["FLEETOPS_CELERY_BROKER_URL"] and launcher["broker"] == {
        "env": "FLEETOPS_CELERY_BROKER_URL"}


@pytest.mark.parametrize("path", WORKSPACE_FILES, ids=ids(WORKSPACE_FILES))
def test_workspace_file_passes_dagster_validation(path: Path, deploy_env: dict[str, str]) -> None:
    origins = location_origins_from_yaml_paths([str(path)])
    assert [origin.location_name for origin in origins] == ["fleetops"]


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_runs_a_command_that_takes_its_options(unit: Path) -> None:
    """Each ExecStart names an installed command, and every option it passes is one that command lists."""
    (line,) = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    program = DAGSTER / Path(argv[0]).name
    assert argv[0].startswith("/srv/fleetops/.venv/bin/") and program.exists()
    subcommand = argv[1:1 + SUBCOMMAND_DEPTH[program.name]]
    helptext = subprocess.run([program, *subcommand, "--help"], capture_output=True, text=True, timeout=60).stdout
    for option in (w.split("=")[0] for w in argv[1:] if w.startswith("-")):
        assert option in helptext, f"{unit.name}: {option} is not an option of {program.name} {' '.join(subcommand)}"
    workspaces = [w for w in argv if w.endswith("workspace.yaml")]
    assert all((REPO / Path(w).relative_to("/srv/fleetops")).exists() for w in workspaces)


@pytest.fixture
def code_server(tmp_path: Path) -> Iterator[int]:
    """The code server of deploy/systemd/fleetops-code-server.service, on a free port."""
    port = free_port()
    argv = [str(DAGSTER / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
            "-m", "orchestration.definitions", "--location-name", "fleetops"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    env["FLEETOPS_HOME"] = str(tmp_path / "home")
    with process_group(argv, env=env, cwd=REPO, log=tmp_path / "code-server.log"):
        yield port


@pytest.mark.e2e
def test_the_split_workspace_loads_fleetops_from_a_code_server(code_server: int, tmp_path: Path) -> None:
    env = {**os.environ, "FLEETOPS_CODE_SERVER_HOST": "127.0.0.1", "FLEETOPS_CODE_SERVER_PORT": str(code_server),
           "DAGSTER_HOME": str(tmp_path)}
    argv = [str(DAGSTER / "dagster"), "job", "list", "-w", str(DEPLOY / "split/workspace.yaml")]

    def listed() -> str | None:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return result.stdout if result.returncode == 0 else None

    jobs = wait_until(listed, timeout=90, interval=2, what="the code server to serve fleetops")
    assert "spool_job" in jobs and "zuora_sync" in jobs
