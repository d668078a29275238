"""`make demo`'s script on a fresh home: UI up, demo projects as partitions, sensor live in a real daemon.

Zuora: the three demo customers are synced on start; with the real daemon running, a customer
registered later gets its first sync by itself and `fleetops customer sync --wait` queues a run the
daemon executes. The stack (tests/harness/demo_stack.py) is shared with test_ui_browser.py, which
drives the same UI in headless Chromium: the Launchpad, and a backfill over two customers.
"""

import json
import sqlite3
import uuid

import pytest

from sandbox.zuora_server.admin import FakeZuoraAdmin
from tests.harness.demo_stack import DemoStack
from tests.harness.processes import wait_until

pytestmark = pytest.mark.e2e


def test_demo_serves_the_ui_with_the_demo_fleet(demo_stack: DemoStack) -> None:
    demo = demo_stack
    assert f"Dagster UI at {demo.url}" in demo.log.read_text()
    assert demo.project_partitions() == ["billing", "crm", "shop"]
    # materialized on start, with numbers the UI plots
    assert demo.latest_numbers("failed_jobs", "shop")["total"] == 1200
    assert demo.latest_numbers("queue_state")["shop/pending"] == 40
    # the demo's Launchpad action released crm's 4 stuck jobs; an operator launches another one
    (demo_action,) = [row for row in demo.spool_rows() if row["requested_by"] == "demo"]
    assert demo_action["result"]["released"] == 4 and demo_action["source"] == "launchpad"
    run_id = demo.launch("spool_request_job", {"ops": {"request_spool_action": {"config": {
        "project": "shop", "action": "release-stuck"}}}})
    wait_until(lambda: demo.run_status(run_id) in ("SUCCESS", "FAILURE"), timeout=120, interval=1,
               what="the Launchpad spool run")
    assert demo.run_status(run_id) == "SUCCESS"
    from_launchpad = next(row for row in demo.spool_rows() if row["run_id"] == run_id)
    assert from_launchpad["status"] == "completed" and from_launchpad["result"]["released"] == 2
    assert "processed" in demo.run_logs(run_id)
    # the fleet at a glance and the spool, materialized on start (the minute sweep refreshes them)
    overview = demo.latest_numbers("fleet_overview")
    assert (overview["project_count"], overview["shop/failed_total"], overview["redis_down"]) == (3, 1200, 1)
    assert demo.latest_numbers("spool_actions")["completed_last_24h"] >= 1
    assert "Checking for new runs for sensor" not in demo.log.read_text(), "the terminal is quiet at INFO"
    assert demo.latest_numbers("failure_groups")["groups"] == 7
    # the three demo customers synced on start: 1,200, 1 and 0 workflows; acme twice, around edits in Zuora
    acme = demo.latest_numbers("zuora_workflows", "acme")
    assert (acme["total"], acme["updated"], acme["deleted"], acme["errors"]) == (1199, 4, 1, 0)
    assert demo.materialization_count("zuora_workflows", "acme") == 2
    assert demo.latest_numbers("zuora_workflows", "globex")["total"] == 1
    assert demo.latest_numbers("zuora_workflows", "initech")["total"] == 0
    assert demo.latest_numbers("zuora_tasks", "acme")["total"] > 10_000
    # Redis: the local server up, the unreachable one down, with history and a recorded alert
    local = demo.latest_numbers("redis_health", "demo-local")
    assert local["status_level"] == 2 and local["used_memory"] > 0 and local["pending"] == 8
    down = demo.observations("redis_health", "demo-unreachable", limit=10)  # observed: a down server is not green
    probes = [o for o in down if {"label": "status_level", "intValue": 0} in o["metadataEntries"]]
    assert len(probes) >= 3 and any(e["label"] == "error" for o in down for e in o["metadataEntries"])
    assert demo.materializations("redis_health", "demo-unreachable") == []
    # failed by the demo's start, then by the probe run the sweep's first tick asks for (in progress meanwhile)
    red = {"materialized": ["demo-local"], "failed": ["demo-unreachable"]}
    wait_until(lambda: demo.partition_statuses("redis_health") == red, timeout=120, interval=1,
               what="demo-unreachable's partition failed")
    with sqlite3.connect(demo.home / "fleetops.db") as control:
        alerts = control.execute("SELECT connection, from_status, to_status, reason FROM redis_alerts").fetchall()
    assert alerts == [("demo-unreachable", "up", "down", "refused")]
    assert "fleetops-demo-local" in (demo.home / "horizon" / "billing.php").read_text()

    # Registered without telling Dagster (no DAGSTER_HOME): the daemon's sensor must add it.
    demo.fleetops("project", "add", "late", "--failed-db", "sqlite:////srv/late.sqlite")
    # A Zuora customer registered the same way gets its partition and its first sync by itself.
    client_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
    FakeZuoraAdmin(demo.zuora_url).add_tenant("latecomer", client_id, secret, workflows=30)
    demo.fleetops("customer", "add", "latecomer", "--base-url", demo.zuora_url, "--client-id", client_id,
                  "--client-secret-stdin", input=secret)
    # `customer sync --wait` queues a run on the instance; the daemon runs it.
    waited = demo.fleetops("customer", "sync", "acme", "--wait", dagster=True, timeout=300, check=False)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "acme: run success, last sync complete: 0 created, 0 updated, 1199 unchanged" in waited.stdout

    wait_until(lambda: "late" in demo.project_partitions(), timeout=120, interval=2,
               what="registry_partitions_sensor to add the new project")
    wait_until(lambda: demo.materialization_count("zuora_workflows", "latecomer"), timeout=240, interval=3,
               what="zuora_first_sync_sensor to sync the new customer")
    assert demo.latest_numbers("zuora_workflows", "latecomer")["created"] == 30
    customers = json.loads(demo.fleetops("customer", "list", "--json").stdout)
    assert all(c["last_sync_status"] == "complete" for c in customers)
    assert secret not in demo.log.read_text()
