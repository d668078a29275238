"""`fleetops redis test|health|export|import` through the real command, on SQLite and PostgreSQL."""

import json
import re
import stat
from pathlib import Path

import yaml

from tests.harness.cli import Fleetops
from tests.harness.processes import free_port
from tests.harness.redis_servers import StartServer


def test_test_reports_ping_latency_version_and_role_and_fails_when_down(fleetops: Fleetops) -> None:
    fleetops.ok("redis", "add", "local", "--url", "redis://127.0.0.1:6379/0")
    fleetops.ok("redis", "add", "dead", "--url", f"redis://127.0.0.1:{free_port()}/0")
    shown = json.loads(fleetops.ok("redis", "test", "local", "--json").stdout)
    assert shown["status"] == "up" and shown["role"] == "master" and shown["version"].count(".") == 2
    assert 0 < shown["latency_ms"] < 100 and shown["address"] == "redis://127.0.0.1:6379/0"
    table = fleetops.ok("redis", "test", "local").stdout
    assert table.splitlines()[0].split()[:5] == ["NAME", "STATUS", "LATENCY", "VERSION", "ROLE"]
    assert "local  up" in table and " ms " in table
    assert re.search(r"  \d+\.\d (kB|MB|GB)\b", table), "memory as people read it"
    assert isinstance(shown["used_memory"], int) and str(shown["used_memory"]) not in table  # raw for machines
    down = fleetops("redis", "test", "dead")
    assert down.exit_code == 1 and "down" in down.stdout and "refused" in down.stdout
    assert "Connection refused" in down.stderr
    missing = fleetops("redis", "test", "nope")
    assert missing.exit_code == 2 and missing.stderr.strip() == "error: unknown Redis connection 'nope'"


def test_health_sweeps_everything_and_exits_0_with_some_down(fleetops: Fleetops, redis_servers: StartServer) -> None:
    locked = redis_servers(password="cli-pw-3141")
    fleetops.ok("redis", "add", "local", "--url", "redis://127.0.0.1:6379/0")
    fleetops.ok("redis", "add", "locked", "--url", f"redis://:cli-pw-3141@127.0.0.1:{locked.port}/0")
    fleetops.ok("redis", "add", "dead", "--url", f"redis://127.0.0.1:{free_port()}/0")
    rows = json.loads(fleetops.ok("redis", "health", "--json").stdout)
    assert [(r["connection"], r["status"], r["reason"]) for r in rows] == [
        ("dead", "down", "refused"), ("local", "up", None), ("locked", "up", None)]
    text = fleetops.ok("redis", "health").stdout
    assert len(text.strip().splitlines()) == 4 and "refused" in text and "cli-pw-3141" not in text


def test_export_leaves_passwords_out_unless_asked(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("project", "add", "shop", "--failed-db", "sqlite:////srv/shop.sqlite")
    fleetops.ok("redis", "add", "cache", "--url", "redis://:export-pw-2718@10.0.0.9:6379/2", "--project", "shop",
                "--queue", "default", "--queue", "mail")
    fleetops.ok("redis", "add", "sessions", "--url", "rediss://10.0.0.8:6380/0", "--password-env", "SESSIONS_PW")
    plain = tmp_path / "redis.yaml"
    assert "passwords left out" in fleetops.ok("redis", "export", str(plain)).stdout
    document = yaml.safe_load(plain.read_text())
    assert document == {"redis": {
        "cache": {"url": "redis://10.0.0.9:6379/2", "project": "shop", "enabled": True,
                  "options": {"queues": ["default", "mail"]}},
        "sessions": {"url": "rediss://10.0.0.8:6380/0", "project": None, "password": "env:SESSIONS_PW",
                     "enabled": True, "options": {}},
    }}
    assert "fernet:" not in plain.read_text()
    secret = tmp_path / "redis-secrets.yaml"
    fleetops.ok("redis", "export", "--include-secrets", str(secret))
    assert yaml.safe_load(secret.read_text())["redis"]["cache"]["password"] == "export-pw-2718"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_import_is_idempotent_by_name_and_keeps_stored_passwords(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("redis", "add", "cache", "--url", "redis://:import-pw-1618@10.0.0.9:6379/2")
    fleetops.ok("redis", "add", "other", "--url", "redis://10.0.0.10:6379/0")
    exported = tmp_path / "redis.yaml"
    fleetops.ok("redis", "export", str(exported))
    assert fleetops.ok("redis", "import", str(exported)).stdout.strip() == "no changes"
    shown = json.loads(fleetops.ok("redis", "show", "cache", "--json", "--include-secrets").stdout)
    assert shown["password"] == "import-pw-1618"  # an export without passwords does not wipe them
    incoming = tmp_path / "incoming.yaml"
    incoming.write_text(yaml.safe_dump({"redis": {
        "cache": {"url": "redis://10.0.0.9:6379/3"},
        "fresh": {"url": "redis://10.0.0.11:6379/0", "password": "fresh-pw-4669", "options": {"queues": ["x"]}},
    }}))
    result = fleetops.ok("redis", "import", str(incoming), "--json")
    assert json.loads(result.stdout) == {"dry_run": False, "add": [{"section": "redis", "key": "fresh"}],
                                         "change": [{"section": "redis", "key": "cache", "fields": ["db"]}],
                                         "remove": []}
    names = [r["name"] for r in json.loads(fleetops.ok("redis", "list", "--json").stdout)]
    assert names == ["cache", "fresh", "other"]  # nothing removed
    assert fleetops.ok("redis", "import", str(incoming)).stdout.strip() == "no changes"
    if fleetops.home.joinpath("fleetops.db").exists():  # the SQLite variant: the imported password is sealed
        assert b"fresh-pw-4669" not in fleetops.state_bytes()


def test_a_bad_import_changes_nothing(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("redis", "add", "cache", "--url", "redis://10.0.0.9:6379/2")
    before = fleetops.ok("redis", "list", "--json").stdout
    for document, message in [
        ({"redis": {"good": {"url": "redis://10.0.0.1:6379/0"}, "bad": {"url": "http://x"}}}, "unknown driver"),
        ({"redis": {"q": {"url": "redis://10.0.0.1:6379/0", "options": {"queues": ["a b"]}}}}, "invalid queue name"),
        ({"projects": {"p": {"failed_db": "sqlite:////x"}}}, "only a 'redis' section can be imported"),
        ({"redis": {"cache": {"url": "redis://h:1/0", "colour": "red"}}}, "unknown field 'colour'"),
        ({"redis": {"h": {"url": "redis://h:1/0", "options": {"horizon": {"balance": "sideways"}}}}},
         "balance must be auto, simple or false"),
        ({"redis": {"h": {"url": "redis://h:1/0", "options": {"horizon": {"processes": 3}}}}},
         "unknown Horizon setting 'processes'"),
    ]:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(document))
        result = fleetops("redis", "import", str(path))
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert fleetops.ok("redis", "list", "--json").stdout == before
