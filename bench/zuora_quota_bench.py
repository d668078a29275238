"""Benchmark: a large tenant's first sync under Zuora's hourly quota, over successive runs, on the local Zuora server.

Run: .venv/bin/python bench/zuora_quota_bench.py [--workflows 20000] [--quota 5000] [--hour-seconds 60]
     [--requests-per-minute 24000] [--concurrency 10]

Starts `python -m sandbox.zuora_server` in its own process group with one tenant of
`--workflows` workflows (0-3 tasks each) whose quota is `--quota` requests per "hour" — a window
of `--hour-seconds` real seconds, so an hour of Zuora's quota passes in a minute (the server's
windows are plain seconds; its `RateLimit-Reset` counts real seconds too). Then:

- baseline, the naive loop (list, then each export in turn, no
  rate-limit handling) for one run: it stops at its first 429 and, having no memory of what it
  stored, would start from the first workflow again next hour, so it never completes;
- fleetops: `sync_workflows` + `sync_tasks` as a zuora_sync run does, run again whenever the
  previous run stopped at the quota, not before the moment it said the quota returns (a
  retry budget of 1 s, so a run stops instead of waiting out the window).

It prints runs, requests, 429s and exports as the tenant counted them, and asserts the claims:
the first sync completes, no 429 at all, and every export is downloaded exactly once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throwaway import throwaway_database
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.zuora.client import RetrySettings, TokenCache
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from tests.harness.zuora import running_zuora_server

REPO = Path(__file__).resolve().parents[1]
STOP_AT_THE_QUOTA = RetrySettings(budget=1.0)  # wait for no reset within a run: the next run continues


def seed_loop(url: str, client_id: str, secret: str) -> tuple[int, int]:
    """The seed's loop until its first refusal; (exports downloaded, HTTP status that stopped it)."""
    token = requests.post(f"{url}/oauth/token", data={"client_id": client_id, "client_secret": secret,
                                                     "grant_type": "client_credentials"}, timeout=60).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    exports, page = 0, 1
    while True:
        listing = requests.get(f"{url}/workflows?page={page}&page_length=50", headers=headers, timeout=60)
        if listing.status_code != 200:
            return exports, listing.status_code
        body = listing.json()
        for item in body["data"]:
            answer = requests.get(f"{url}/workflows/{item['id']}/export", headers=headers, timeout=60)
            if answer.status_code != 200:
                return exports, answer.status_code
            exports += 1
        if not body["pagination"].get("next_page") or not body["data"]:
            return exports, 200
        page += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=20_000)
    parser.add_argument("--quota", type=int, default=5_000)
    parser.add_argument("--hour-seconds", type=float, default=60.0)
    parser.add_argument("--requests-per-minute", type=int, default=24_000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    quota = [[args.quota, args.hour_seconds]]
    with tempfile.TemporaryDirectory(prefix="fleetops-zuora-quota-") as tmp, running_zuora_server(Path(tmp)) as server:
        url, admin = server.url, server.admin
        client_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
        admin.add_tenant("bench", client_id, secret, workflows=args.workflows, max_tasks=3, quota=quota)

        base_exports, base_status = seed_loop(url, client_id, secret)
        base_stats = admin.stats("bench")
        admin.settings("bench", quota=quota)  # a fresh window for fleetops
        admin.reset_stats("bench")

        secret_box = SecretBox(new_key())
        with throwaway_database("sqlite") as throwaway:
            db = ControlDatabase(throwaway.url)
            db.migrate()
            CustomerRegistry(db, secret_box).add(CustomerSpec(
                name="bench", base_url=url, client_id=client_id, client_secret=secret,
                max_concurrency=args.concurrency, requests_per_minute=args.requests_per_minute))
            tokens = TokenCache()
            started = time.perf_counter()
            runs: list[tuple[str, int, str | None]] = []
            while len(runs) < 4 * args.workflows // args.quota + 4:
                result = sync_workflows(db, secret_box, "bench", retry=STOP_AT_THE_QUOTA, tokens=tokens)
                sync_tasks(db, secret_box, "bench")
                runs.append((result.status, result.exported, result.until))
                print(f"  run {len(runs)}: {result.status}, {result.exported} exported, "
                      f"{result.list_calls} list calls" + (f", quota back at {result.until}" if result.until
                                                            else ""), flush=True)
                if result.status == "complete":
                    break
                assert result.status == "failed" and result.until, result.stats()
                time.sleep(max(0.0, (datetime.fromisoformat(result.until) - datetime.now(UTC)).total_seconds()))
            elapsed = time.perf_counter() - started
            db.dispose()
        stats = admin.stats("bench")
    exports, refused = stats["by_kind"].get("export", 0), stats["by_status"].get("429", 0)
    print(f"zuora first sync under a quota: {args.workflows:,} workflows, {args.quota:,} requests per "
          f"{args.hour_seconds:g} s window ('an hour')")
    print(f"  baseline (naive loop): stopped by HTTP {base_status} after {base_exports:,} exports "
          f"({base_stats['by_status'].get('429', 0)} 429s); it restarts from the first workflow every run: never "
          f"completes")
    print(f"  fleetops: {runs[-1][0]} after {len(runs)} runs ({elapsed:.0f} s), {stats['requests']:,} requests, "
          f"{exports:,} exports, {refused} 429s")
    assert runs[-1][0] == "complete" and refused == 0 and exports == args.workflows
    print(f"| Zuora first sync, {args.workflows:,} workflows, quota {args.quota:,}/hour "
          f"| `.venv/bin/python bench/zuora_quota_bench.py` | complete in {len(runs)} runs (hours), {refused} 429s, "
          f"{exports:,} exports | seed loop: 429 after {base_exports:,} exports, never completes | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
