"""`fleetops fleet apply/export`: declarative, idempotent, all-or-nothing."""

import json
from pathlib import Path

import yaml

from tests.harness.cli import Fleetops

FLEET = {
    "projects": {
        "shop": {"failed_db": "mysql://laravel:shop-pw@db/shop", "horizon": True,
                 "queue_connections": {"redis": "redis://127.0.0.1:6379/0"}, "redis_prefix": "shop_database_"},
        "crm": {"failed_db": "env:CRM_DB", "name": "CRM"},
    },
    "redis": {"cache": {"url": "redis://:cache-pw@127.0.0.1:6379/2", "project": "shop"}},
    "customers": {"acme": {"base_url": "https://rest.zuora.com", "client_id": "cid", "client_secret": "env:ACME"}},
}


def write(tmp_path: Path, document: dict, name: str = "fleet.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_apply_twice_changes_nothing_the_second_time(fleetops: Fleetops, tmp_path: Path) -> None:
    file = write(tmp_path, FLEET)
    first = fleetops.ok("fleet", "apply", file).stdout
    assert "+ projects shop" in first and "+ redis cache" in first and "+ customers acme" in first
    assert fleetops.ok("fleet", "apply", file).stdout.strip() == "no changes"


def test_dry_run_prints_the_plan_and_writes_nothing(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("fleet", "apply", write(tmp_path, FLEET))
    changed = json.loads(json.dumps(FLEET))
    changed["projects"]["shop"]["horizon"] = False
    changed["projects"]["shop"]["failed_db"] = "mysql://laravel:new-pw@db/shop"
    del changed["projects"]["crm"]
    changed["customers"]["beta"] = {"base_url": "https://b.example", "client_id": "b", "client_secret": "env:B"}
    plan = json.loads(fleetops.ok("fleet", "apply", write(tmp_path, changed, "b.yaml"), "--dry-run", "--json").stdout)
    assert plan["add"] == [{"section": "customers", "key": "beta"}]
    assert plan["change"] == [{"section": "projects", "key": "shop", "fields": ["failed_db", "horizon"]}]
    assert plan["remove"] == [{"section": "projects", "key": "crm"}]
    assert [p["key"] for p in json.loads(fleetops.ok("project", "list", "--json").stdout)] == ["crm", "shop"]
    fleetops.ok("fleet", "apply", write(tmp_path, changed, "b.yaml"))
    shop = json.loads(fleetops.ok("project", "show", "shop", "--json", "--include-secrets").stdout)
    assert shop["failed_db"] == "mysql://laravel:new-pw@db/shop" and shop["horizon"] is False


def test_export_round_trips_through_apply(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("fleet", "apply", write(tmp_path, FLEET))
    exported = fleetops.ok("fleet", "export").stdout
    assert "shop-pw" not in exported and "cache-pw" not in exported
    (tmp_path / "export.yaml").write_text(exported)
    assert fleetops.ok("fleet", "apply", str(tmp_path / "export.yaml")).stdout.strip() == "no changes"


def test_sections_left_out_are_untouched(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("fleet", "apply", write(tmp_path, FLEET))
    fleetops.ok("fleet", "apply", write(tmp_path, {"customers": {}}, "c.yaml"))
    assert json.loads(fleetops.ok("customer", "list", "--json").stdout) == []
    assert len(json.loads(fleetops.ok("project", "list", "--json").stdout)) == 2


def test_one_bad_entry_changes_nothing(fleetops: Fleetops, tmp_path: Path) -> None:
    fleetops.ok("fleet", "apply", write(tmp_path, FLEET))
    before = fleetops.ok("fleet", "export").stdout
    bad = json.loads(json.dumps(FLEET))
    bad["projects"]["new"] = {"failed_db": "sqlite:///n.sqlite"}
    bad["projects"]["evil"] = {"failed_db": "sqlite:///x", "failed_table": "failed_jobs; drop table x"}
    result = fleetops("fleet", "apply", write(tmp_path, bad, "bad.yaml"))
    assert result.exit_code == 2 and "invalid failed table name" in result.stderr
    assert fleetops.ok("fleet", "export").stdout == before


def test_malformed_files_are_refused_clearly(fleetops_sqlite: Fleetops, tmp_path: Path) -> None:
    cases = {
        "projects: [1, 2\n": "not valid YAML at line 2",
        "- a\n- b\n": "must be a mapping",
        "servers: {}\n": "unknown section 'servers'",
        "projects: {shop: {failed_db: 'sqlite:///x', colour: red}}\n": "projects.shop: unknown field 'colour'",
        "projects: {shop: {failed_db: 'sqlite:///x', horizon: 'yes'}}\n": "projects.shop.horizon: expected bool",
        "projects: {shop: {name: Shop}}\n": "projects.shop: ",
    }
    for text, message in cases.items():
        (tmp_path / "f.yaml").write_text(text)
        result = fleetops_sqlite("fleet", "apply", str(tmp_path / "f.yaml"))
        assert result.exit_code == 2, text
        assert message in result.stderr, (text, result.stderr)
