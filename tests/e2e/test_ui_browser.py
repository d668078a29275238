"""The Dagster UI as an operator sees it, in headless Chromium, on `make demo`'s stack.

One browser visits the demo (tests/harness/demo_stack.py, shared with test_demo.py) the way a
user would: the asset graph with every asset and check the code location defines, a project's
failed-jobs snapshot and its numbers, the fleet overview's tables, the down Redis server's failed
partition, a spool action typed into the Launchpad, a stuck job `fleetops jobs list` shows
cancelled from the Launchpad, a Zuora workflow's tasks, and a backfill over two Zuora customers
picked in the materialize dialog. Every step saves a screenshot: under
$FLEETOPS_ARTIFACTS/ui-browser/ when that is set, else in pytest's temporary directory; a failing
step's screenshot is named in its error. FLEETOPS_DOCS_IMAGES=1 also saves the steps the README
shows into docs/images (never set in CI: the checkout stays clean). The last test breaks steps on
purpose and proves they fail.
"""

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from orchestration.definitions import defs
from tests.harness.browser import Ui, headless_chromium
from tests.harness.demo_stack import REPO, DemoStack

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000  # ms, for what the UI shows on its own: pages, tables, a run's first events
RUN_TIMEOUT = 120_000  # a spool run, queued and launched by the daemon on a busy 2-core machine
BACKFILL_TIMEOUT = 300_000  # two runs, each syncing a Zuora customer
SPOOL_CONFIG = """ops:
  request_spool_action:
    config:
      project: crm
      action: retry-queue
      queue: emails
"""
CANCEL_CONFIG = """ops:
  request_spool_action:
    config:
      project: {project}
      action: cancel-jobs
      ids: ["{job}"]
"""
DOCS_IMAGES = REPO / "docs" / "images"  # the README's screenshots, refreshed with FLEETOPS_DOCS_IMAGES=1


def asset_groups() -> dict[str, list[str]]:
    """Every asset of the code location by group: what the graph must show."""
    graph = defs.resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, []).append(key.to_user_string())
    return groups


def asset_checks() -> dict[str, list[str]]:
    checks: dict[str, list[str]] = {}
    for check in defs.resolve_asset_graph().asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    return checks


@pytest.fixture(scope="module")
def ui(demo_stack: DemoStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    artifacts = os.environ.get("FLEETOPS_ARTIFACTS")
    shots = Path(artifacts) / "ui-browser" if artifacts else tmp_path_factory.mktemp("ui-browser")
    images = DOCS_IMAGES if os.environ.get("FLEETOPS_DOCS_IMAGES") == "1" else None
    with headless_chromium(demo_stack.url, shots, tmp_path_factory.mktemp("chromium"), images) as browser:
        yield browser


# The steps: what a user does and sees, each a function the break-a-step test can call with a wrong expectation.

def statuses_shown(ui: Ui) -> None:
    """The graph draws its nodes first and fills in their statuses as they arrive."""
    loading = ui.page.get_by_text(re.compile(r"fetching statuses|^Loading"))
    expect(loading).to_have_count(0, timeout=TIMEOUT)


def see_groups(ui: Ui, groups: list[str]) -> None:
    """The global asset lineage: one box per asset group."""
    ui.open("/asset-groups")
    for group in groups:
        expect(ui.page.get_by_text(group, exact=True).first).to_be_visible(timeout=TIMEOUT)
    statuses_shown(ui)


def see_group_assets(ui: Ui, group: str, assets: list[str]) -> None:
    """A group's lineage: every asset's node, laid out to fit the page."""
    ui.open(f"/locations/fleetops/asset-groups/{group}")
    for asset in assets:
        expect(ui.page.get_by_text(asset, exact=True).first).to_be_visible(timeout=TIMEOUT)
    statuses_shown(ui)


def see_checks(ui: Ui, asset: str, checks: list[str], timeout: float = TIMEOUT) -> None:
    ui.open(f"/assets/{asset}?view=checks")
    expect(ui.page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible(timeout=timeout)
    for check in checks:
        expect(ui.page.get_by_text(check, exact=True).first).to_be_visible(timeout=timeout)


def open_partition(ui: Ui, asset: str, partition: str) -> None:
    """The asset's Partitions tab, one partition picked in its list: its latest materialization on the right."""
    ui.open(f"/assets/{asset}?view=partitions")
    ui.page.get_by_text(partition, exact=True).first.click(timeout=TIMEOUT)


def read_partition_metadata(ui: Ui, asset: str, partition: str, expected: dict[str, str],
                            timeout: float = TIMEOUT) -> None:
    """One partition's latest materialization: its metadata, label and value."""
    page = ui.page
    open_partition(ui, asset, partition)
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible(timeout=TIMEOUT)
    for label, value in expected.items():
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True))
        expect(row.get_by_role("cell").nth(1)).to_have_text(value, timeout=timeout)


def metadata_table(ui: Ui, label: str, timeout: float = TIMEOUT) -> tuple[Locator, list[dict[str, str]]]:
    """A table metadata entry of the page, rendered inline under its label: the entry and its rows as shown,
    each a dict by column name."""
    page = ui.page
    entry = page.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True))
    headers = entry.get_by_role("columnheader")
    expect(headers.first).to_be_visible(timeout=timeout)
    columns = headers.all_inner_texts()
    cells = entry.locator("tbody tr").evaluate_all("rows => rows.map(row => [...row.cells].map(c => c.innerText))")
    return entry, [dict(zip(columns, row, strict=True)) for row in cells]


def rows_by(rows: list[dict[str, str]], column: str) -> dict[str, dict[str, str]]:
    return {row[column]: row for row in rows}


def see_workflow_tasks(ui: Ui, customer: str, workflow: dict, tasks: list[dict], timeout: float = TIMEOUT) -> None:
    """zuora_tasks, one customer's partition: its task table lists the workflow's tasks as `zuora show` does."""
    open_partition(ui, "zuora_tasks", customer)
    entry, rows = metadata_table(ui, "task_table", timeout)
    shown = [(row["task_id"], row["name"], row["action_type"], row["call_type"], row["object"])
             for row in rows if row["workflow_id"] == workflow["zuora_id"] and row["workflow"] == workflow["name"]]
    expected = [(task["zuora_id"], task["name"], task["action_type"], task["call_type"] or "", task["object"] or "")
                for task in tasks]
    assert shown == expected, f"the task table of {customer} shows {shown} for {workflow['name']}, not {expected}"
    entry.scroll_into_view_if_needed()


def see_fleet_overview(ui: Ui, expected: dict[str, dict[str, dict[str, str]]], timeout: float = TIMEOUT) -> None:
    """fleet_overview's Events tab, its latest materialization picked: its tables (projects, redis, customers),
    a row per member of the fleet; `expected` names, per table, rows by their first column and some cells."""
    ui.open("/assets/fleet_overview?view=events")
    for label, wanted in expected.items():
        _, rows = metadata_table(ui, label, timeout)
        key = next(iter(rows[0])) if rows else None
        assert rows and set(wanted) <= set(rows_by(rows, key)), f"{label} shows {rows}"
        for name, cells in wanted.items():
            shown = rows_by(rows, key)[name]
            assert {column: shown[column] for column in cells} == cells, f"{label}: {name} is {shown}"
    metadata_table(ui, "projects", timeout)[0].scroll_into_view_if_needed()


def see_failed_node(ui: Ui, group: str, asset: str, timeout: float = TIMEOUT) -> None:
    """The group's lineage: the asset's node counts one failed partition (its footer red)."""
    ui.open(f"/locations/fleetops/asset-groups/{group}")
    node = ui.page.get_by_text(asset, exact=True).first.locator("xpath=ancestor::*[local-name()='foreignObject'][1]")
    expect(node.get_by_text(re.compile(r"^\d+% filled \(1 failed\)$"))).to_be_visible(timeout=timeout)
    statuses_shown(ui)


def see_failed_partition(ui: Ui, asset: str, failed: str, timeout: float = TIMEOUT) -> None:
    """The Partitions tab counts one failed partition, the one named, and its page says why: a red banner."""
    page = ui.page
    ui.open(f"/assets/{asset}?view=partitions")
    expect(page.get_by_text("Failed (1)", exact=True)).to_be_visible(timeout=timeout)
    page.get_by_text("Materialized (", exact=False).first.click(timeout=timeout)  # unticked: only failed ones listed
    page.get_by_text(failed, exact=True).first.click(timeout=timeout)
    banner = page.get_by_text(re.compile(r"failed, and did not materialize this asset"))
    expect(banner).to_be_visible(timeout=timeout)


def launch_from_launchpad(ui: Ui, job: str, config_yaml: str, shot: str) -> str:
    """Type the run config into the job's Launchpad (its screenshot `shot`), launch, and see the run succeed;
    returns the run id."""
    page = ui.page
    ui.open(f"/locations/fleetops/jobs/{job}/playground")
    page.locator(".CodeMirror").click()  # the config editor (CodeMirror 5) has no accessible name
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(config_yaml)
    expect(page.get_by_text("No errors", exact=True)).to_be_visible(timeout=TIMEOUT)
    ui.shot(shot)
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"), timeout=TIMEOUT)
    ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$"))  # the run's status, top left
    expect(ended).to_be_visible(timeout=RUN_TIMEOUT)
    expect(ended).to_have_text("Success")
    return page.url.rsplit("/", 1)[1]


def backfill(ui: Ui, group: str, partitions: list[str]) -> None:
    """Materialize all of a group for some partitions (the dialog's partition picker), then watch the backfill."""
    page = ui.page
    ui.open(f"/locations/fleetops/asset-groups/{group}")
    page.get_by_role("button", name=re.compile(r"Materialize all")).click()
    title = page.get_by_text(re.compile(r"^Launch runs to materialize \d+ assets$"))
    expect(title).to_be_visible(timeout=TIMEOUT)
    page.get_by_text("Select a partition or create one").click()
    for partition in partitions:
        page.get_by_title(partition, exact=True).click()
        expect(page.get_by_role("checkbox", name=partition)).to_be_checked()
    ui.shot("8-backfill-dialog", image="backfill-zuora-customers")
    title.click()  # closes the partition picker, not the dialog
    expect(page.get_by_text(f"{len(partitions)} partitions", exact=True)).to_be_visible()
    page.get_by_role("button", name="Launch backfill").click()
    expect(page.get_by_text("Created backfill")).to_be_visible(timeout=TIMEOUT)
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/b/\w+"), timeout=TIMEOUT)
    for partition in partitions:
        expect(page.get_by_text(partition, exact=True).first).to_be_visible(timeout=TIMEOUT)
    status = page.get_by_text("Status", exact=True).locator("xpath=..")  # the label and its value
    ended = re.compile(r"Succeeded|Failed|Canceled|Completed")
    expect(status).to_contain_text(ended, timeout=BACKFILL_TIMEOUT)  # the page polls on its own
    expect(status).to_contain_text("Succeeded")


def test_asset_graph_shows_every_asset_and_check(ui: Ui) -> None:
    groups, checks = asset_groups(), asset_checks()
    assert {"failed_jobs", "queue_state", "failure_groups", "zuora_workflows", "zuora_tasks",
            "redis_health"} <= {asset for assets in groups.values() for asset in assets}
    assert {"failure_spike", "snapshot_fresh", "sync_complete", "redis_up"} <= {
        check for names in checks.values() for check in names}
    with ui.step("1-global-lineage"):
        see_groups(ui, list(groups))
    for group, assets in groups.items():
        with ui.step(f"1-lineage-{group}", image="lineage-failures" if group == "failures" else None):
            see_group_assets(ui, group, assets)
    for asset, names in checks.items():
        with ui.step(f"1-checks-{asset}"):
            see_checks(ui, asset, names)


def test_failed_jobs_snapshot_of_a_project(ui: Ui) -> None:
    with ui.step("2-failed-jobs-shop", image="failed-jobs-shop"):
        read_partition_metadata(ui, "failed_jobs", "shop", {"total": "1200", "parse_errors": "0"})


def test_the_fleet_overview_tables(ui: Ui) -> None:
    """Before the spool actions below, so the numbers are the demo's own: its failed jobs per project, the down
    Redis server, the Zuora customers."""
    with ui.larger(2300, 1100), ui.step("3-fleet-overview", image="fleet-overview"):
        see_fleet_overview(ui, {
            "projects": {"shop": {"failed_total": "1200"}, "billing": {"failed_total": "350"},
                         "crm": {"failed_total": "60"}},
            "redis": {"demo-local": {"status": "up"}, "demo-unreachable": {"status": "down", "reason": "refused"}},
            "customers": {"acme": {"status": "complete"}, "globex": {"status": "complete", "workflows": "1"},
                          "initech": {"status": "complete", "workflows": "0"}},
        })


def test_the_down_redis_server_is_red(ui: Ui) -> None:
    """Red where the open-source UI shows an asset's state (it has no asset health view): the node in its group's
    lineage, and the partition."""
    with ui.step("4-redis-down-lineage", image="redis-down-lineage"):
        see_failed_node(ui, "redis", "redis_health")
    with ui.step("4-redis-down-partition", image="redis-down-partition"):
        see_failed_partition(ui, "redis_health", "demo-unreachable")


def test_spool_action_from_the_launchpad(ui: Ui, demo_stack: DemoStack) -> None:
    with ui.step("5-launchpad-run", image="launchpad-spool-run"):
        run_id = launch_from_launchpad(ui, "spool_request_job", SPOOL_CONFIG, shot="5-launchpad-config")
        done = ui.page.get_by_text(re.compile(r"retry-queue on crm .*: completed \{'retried': \d+"))
        expect(done).to_be_visible(timeout=TIMEOUT)
        shown = int(re.search(r"'retried': (\d+)", done.inner_text()).group(1))
    (row,) = [row for row in demo_stack.spool_rows() if row["run_id"] == run_id]
    assert (row["project"], row["action"], row["source"], row["status"]) == (
        "crm", "retry-queue", "launchpad", "completed")
    assert row["result"]["retried"] == shown > 0 and row["result"]["error_count"] == 0


def listed_jobs(demo_stack: DemoStack, project: str, state: str | None = None) -> list[dict]:
    """`fleetops jobs list`, read live from the project's queues."""
    args = ["jobs", "list", "--project", project, "--json", *(["--state", state] if state else [])]
    return json.loads(demo_stack.fleetops(*args).stdout)


def test_a_stuck_job_listed_by_the_cli_is_cancelled_from_the_launchpad(ui: Ui, demo_stack: DemoStack) -> None:
    # the demo's stuck job left for an operator (its reserved jobs turn stuck too, 5 minutes after the seed)
    job = next(job["id"] for job in listed_jobs(demo_stack, "billing", "stuck") if job["connection"] == "database")
    with ui.step("6-cancel-stuck-job", image="launchpad-cancel-stuck-job"):
        run_id = launch_from_launchpad(ui, "spool_request_job", CANCEL_CONFIG.format(project="billing", job=job),
                                       shot="6-cancel-config")
        done = ui.page.get_by_text(re.compile(r"cancel-jobs on billing .*: completed \{'cancelled': 1,"))
        expect(done).to_be_visible(timeout=TIMEOUT)
    assert job not in {listed["id"] for listed in listed_jobs(demo_stack, "billing")}  # gone, not released
    (row,) = [row for row in demo_stack.spool_rows() if row["run_id"] == run_id]
    assert (row["action"], row["status"], row["result"]["cancelled"]) == ("cancel-jobs", "completed", 1)


def test_a_zuora_workflows_tasks(ui: Ui, demo_stack: DemoStack) -> None:
    (workflow,) = json.loads(demo_stack.fleetops("zuora", "workflows", "globex", "--json").stdout)
    shown = json.loads(demo_stack.fleetops("zuora", "show", "globex", workflow["zuora_id"], "--json").stdout)
    assert len(shown["tasks"]) == workflow["tasks"] > 1
    with ui.step("7-zuora-workflow-tasks", image="zuora-workflow-tasks"):
        see_workflow_tasks(ui, "globex", workflow, shown["tasks"])


def test_backfill_over_two_zuora_customers(ui: Ui, demo_stack: DemoStack) -> None:
    customers = ["globex", "initech"]
    synced = {(asset, customer): demo_stack.backfilled_count(asset, customer)  # the hourly sync may tick meanwhile
              for asset in ("zuora_workflows", "zuora_tasks") for customer in customers}
    with ui.step("8-backfill-done"):
        backfill(ui, "zuora", customers)
        expect(ui.page.get_by_text("100% completed", exact=True)).to_have_count(2)
    assert {key: demo_stack.backfilled_count(*key) for key in synced} == {
        key: count + 1 for key, count in synced.items()}


BROKEN = {  # a step asked for what the page does not show, and what its failure must name
    "wrong metadata": "'1201'", "missing check": "no_such_check", "missing task": "no-such-task",
    "healthy partition": "Failed (1)",
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_step_fails(ui: Ui, demo_stack: DemoStack, broken: str) -> None:
    """The steps above are not vacuous: the same step functions, asked for what the page does not show, fail,
    and for that reason (not a slow page)."""
    started = time.monotonic()
    with pytest.raises(AssertionError) as failed, ui.step(f"9-broken-{broken.replace(' ', '-')}"):
        if broken == "wrong metadata":
            read_partition_metadata(ui, "failed_jobs", "shop", {"total": "1201"}, timeout=3_000)
        elif broken == "missing check":
            see_checks(ui, "failed_jobs", ["failure_spike", "no_such_check"], timeout=3_000)
        elif broken == "missing task":
            (workflow,) = json.loads(demo_stack.fleetops("zuora", "workflows", "globex", "--json").stdout)
            tasks = json.loads(demo_stack.fleetops("zuora", "show", "globex", workflow["zuora_id"], "--json").stdout)
            see_workflow_tasks(ui, "globex", workflow,
                               [*tasks["tasks"], {**tasks["tasks"][0], "zuora_id": "no-such-task"}], timeout=3_000)
        else:
            see_failed_partition(ui, "zuora_workflows", "globex", timeout=3_000)  # none failed, even with late projects
    assert time.monotonic() - started < 30
    assert BROKEN[broken] in str(failed.value)
    (note,) = failed.value.__notes__
    assert Path(note.rsplit(": ", 1)[1]).is_file()
