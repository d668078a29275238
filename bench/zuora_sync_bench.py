"""Benchmark: one customer's Zuora sync against the seed's sequential loop, on the local Zuora server.

Run: .venv/bin/python bench/zuora_sync_bench.py [--workflows 1000] [--latency-ms 20] [--concurrency 10]
     [--requests-per-minute 24000] [--engine sqlite|postgresql]

Starts `python -m sandbox.zuora_server` in its own process group with one tenant of
`--workflows` workflows (0-40 tasks each) answering every call after `--latency-ms`. Then:

- baseline, the naive loop: one token, the list pages one after
  another, and for each listed workflow in turn its export download, the upsert of its row and
  of its tasks (the same upsert statement fleetops uses, one transaction per workflow), then the
  stale deletion; a plain HTTP call per request, as Laravel's Http facade makes;
- fleetops: `sync_workflows` + `sync_tasks` (what one zuora_sync run does), for a customer
  registered with `--concurrency` and `--requests-per-minute`, and again with the default
  concurrency of 4 at the same pace;
- fleetops resync with nothing changed: it must make only the list calls.

Both sides write into their own throwaway control database and the results are compared. The
tenant's own counters (requests by kind, peak requests in any one second, peak requests in
flight) show that the configured limits held. It prints the times and the ratio; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throwaway import throwaway_database
from resources.common.control.database import ControlDatabase
from resources.common.control.id_lists import chunks
from resources.common.control.models import Task, Workflow, utcnow
from resources.common.control.upsert import upsert
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.zuora.client import TokenCache
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.records import export_tasks, parse_listing
from tests.harness.zuora import running_zuora_server

WORKFLOWS, TASKS = Workflow.__table__, Task.__table__
REPO = Path(__file__).resolve().parents[1]


def baseline(db: ControlDatabase, customer_id: int, url: str, client_id: str, secret: str) -> float:
    """The seed's sequential loop; returns seconds."""
    started = time.perf_counter()
    token = requests.post(f"{url}/oauth/token", data={"client_id": client_id, "client_secret": secret,
                                                     "grant_type": "client_credentials"}, timeout=60).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    seen, page = set(), 1
    while True:
        body = requests.get(f"{url}/workflows?page={page}&page_length=50", headers=headers, timeout=60).json()
        for item in body["data"]:
            listing = parse_listing(item)
            seen.add(listing.zuora_id)
            export = requests.get(f"{url}/workflows/{listing.zuora_id}/export", headers=headers, timeout=60).json()
            _store(db, customer_id, listing.columns(), export)
        if not body.get("pagination", {}).get("next_page") or not body["data"]:
            break
        page += 1
    with db.engine.begin() as conn:
        stored = set(conn.execute(sa.select(WORKFLOWS.c.zuora_id).where(WORKFLOWS.c.customer_id == customer_id))
                     .scalars())
        for chunk in chunks(stored - seen):
            conn.execute(WORKFLOWS.delete().where(WORKFLOWS.c.customer_id == customer_id,
                                                  WORKFLOWS.c.zuora_id.in_(chunk)))
    return time.perf_counter() - started


def _store(db: ControlDatabase, customer_id: int, listing: dict[str, Any], export: dict[str, Any]) -> None:
    """One workflow's upsert and then its tasks', row by row, as a naive sync does."""
    now = utcnow()
    with db.engine.begin() as conn:
        upsert(conn, WORKFLOWS, [{"customer_id": customer_id, **listing, "json_export": export,
                                  "exported_updated_on": listing["updated_on"],
                                  "exported_version_id": listing["active_version_id"], "last_synced_at": now,
                                  "created_at": now, "updated_at": now}],
               keys=("customer_id", "zuora_id"), update=[*listing, "json_export", "last_synced_at", "updated_at"])
        workflow_id = conn.execute(sa.select(WORKFLOWS.c.id).where(
            WORKFLOWS.c.customer_id == customer_id, WORKFLOWS.c.zuora_id == listing["zuora_id"])).scalar_one()
        rows = [{"workflow_id": workflow_id, **t.columns(), "created_at": now, "updated_at": now}
                for t in export_tasks(export)]
        if rows:
            upsert(conn, TASKS, rows, keys=("workflow_id", "zuora_id"),
                   update=[c for c in rows[0] if c not in ("workflow_id", "zuora_id", "created_at")])


def snapshot(db: ControlDatabase) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The synced state: export per workflow id, and (workflow id, task id) pairs."""
    with db.engine.connect() as conn:
        exports = dict(conn.execute(sa.select(WORKFLOWS.c.zuora_id, WORKFLOWS.c.json_export)).all())
        tasks = set(conn.execute(sa.select(WORKFLOWS.c.zuora_id, TASKS.c.zuora_id).join(
            TASKS, TASKS.c.workflow_id == WORKFLOWS.c.id)).all())
    return exports, tasks


def register(db: ControlDatabase, secret_box: SecretBox, url: str, client_id: str, secret: str, concurrency: int,
             per_minute: int) -> int:
    CustomerRegistry(db, secret_box).add(CustomerSpec(name="bench", base_url=url, client_id=client_id,
                                               client_secret=secret, max_concurrency=concurrency,
                                               requests_per_minute=per_minute))
    return CustomerRegistry(db, secret_box).id_of("bench")


def fleetops_sync(db: ControlDatabase, secret_box: SecretBox, tokens: TokenCache) -> tuple[float, Any]:
    """What one zuora_sync run does: the workflows, then the tasks; returns seconds and the workflow result."""
    started = time.perf_counter()
    result = sync_workflows(db, secret_box, "bench", tokens=tokens)
    sync_tasks(db, secret_box, "bench")
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--requests-per-minute", type=int, default=24_000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    limit_per_second = args.requests_per_minute / 60
    with tempfile.TemporaryDirectory(prefix="fleetops-zuora-bench-") as tmp, running_zuora_server(Path(tmp)) as server:
        url, admin = server.url, server.admin
        client_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
        admin.add_tenant("bench", client_id, secret, workflows=args.workflows, max_tasks=40)
        admin.faults("bench", latency_ms=args.latency_ms)
        secret_box = SecretBox(new_key())
        figures: dict[str, Any] = {}
        with throwaway_database(args.engine) as base_db, throwaway_database(args.engine) as ours_db, \
                throwaway_database(args.engine) as four_db:
            dbs = {name: ControlDatabase(d.url) for name, d in
                   (("baseline", base_db), ("fleetops", ours_db), ("four", four_db))}
            for db in dbs.values():
                db.migrate()
            base_id = register(dbs["baseline"], secret_box, url, client_id, secret, 1, 50_000)
            register(dbs["fleetops"], secret_box, url, client_id, secret, args.concurrency, args.requests_per_minute)
            register(dbs["four"], secret_box, url, client_id, secret, 4, args.requests_per_minute)

            admin.reset_stats("bench")
            figures["baseline"] = baseline(dbs["baseline"], base_id, url, client_id, secret)
            figures["baseline_stats"] = admin.stats("bench")
            admin.reset_stats("bench")
            tokens = TokenCache()  # one process: the resync below reuses the token, as a CLI --all would
            figures["fleetops"], full = fleetops_sync(dbs["fleetops"], secret_box, tokens)
            figures["fleetops_stats"] = admin.stats("bench")
            assert full.status == "complete" and full.created == args.workflows, full.summary()
            figures["workflows_only"] = full.seconds
            assert snapshot(dbs["fleetops"]) == snapshot(dbs["baseline"]), "fleetops and the seed disagree"
            admin.reset_stats("bench")
            figures["four"], _ = fleetops_sync(dbs["four"], secret_box, TokenCache())
            figures["four_stats"] = admin.stats("bench")
            admin.reset_stats("bench")
            figures["resync"], again = fleetops_sync(dbs["fleetops"], secret_box, tokens)
            figures["resync_stats"] = admin.stats("bench")
            for db in dbs.values():
                db.dispose()
    report(args, figures, again, limit_per_second)
    return 0


def report(args: argparse.Namespace, figures: dict[str, Any], again: Any, limit_per_second: float) -> None:
    ours, four, base = figures["fleetops_stats"], figures["four_stats"], figures["baseline_stats"]
    resync = figures["resync_stats"]["by_kind"]
    print(f"zuora sync, {args.workflows} workflows, {args.latency_ms:g} ms latency, {args.engine}")
    print(f"  baseline (naive loop): {figures['baseline']:.2f} s, {base['by_kind']}, "
          f"peak {base['peak_per_second']}/s, {base['max_in_flight']} in flight")
    for label, seconds, stats, concurrency in (("fleetops", figures["fleetops"], ours, args.concurrency),
                                               ("fleetops", figures["four"], four, 4)):
        print(f"  {label} ({concurrency} concurrent, limit {args.requests_per_minute}/min = {limit_per_second:g}/s): "
              f"{seconds:.2f} s, x{figures['baseline'] / seconds:.1f}, {stats['by_kind']}, "
              f"peak {stats['peak_per_second']}/s, {stats['max_in_flight']} in flight")
    print(f"  of which the workflows (listing, exports, upserts): {figures['workflows_only']:.2f} s; "
          f"the tasks re-extraction the rest")
    print(f"  resync, nothing changed: {figures['resync']:.2f} s, list calls {again.list_calls}, "
          f"export calls {again.export_calls}; server saw {resync}")
    assert ours["peak_per_second"] <= limit_per_second and four["peak_per_second"] <= limit_per_second
    assert ours["max_in_flight"] <= args.concurrency and four["max_in_flight"] <= 4
    assert again.export_calls == 0 and resync.get("export", 0) == 0 and resync.get("list") == again.list_calls
    ratio = figures["baseline"] / figures["fleetops"]
    print(f"| Zuora full sync, {args.workflows:,} workflows at {args.latency_ms:g} ms "
          f"| `.venv/bin/python bench/zuora_sync_bench.py` "
          f"| {figures['fleetops']:.1f} s ({args.concurrency} concurrent), peak {ours['peak_per_second']}/s "
          f"of {limit_per_second:g}/s | {figures['baseline']:.1f} s | x{ratio:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
