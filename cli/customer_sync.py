"""`fleetops customer sync`: sync customers' Zuora workflows now, through Dagster or in this process."""

from __future__ import annotations

import os
import sys

import click
from tqdm import tqdm

from cli.context import CliContext, pass_context, quiet_dagster
from resources.common.errors import ValidationError
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.task_extraction import TaskExtractionResult

EXIT_INCOMPLETE = 1


class _ExportBar:
    """A tqdm bar over one customer's exports; its total grows as listed pages reveal work."""

    def __init__(self, customer: str) -> None:
        self.bar = tqdm(total=0, desc=f"{customer}: exports", unit="export", file=sys.stderr, leave=False,
                        disable=None)  # shown on a terminal only

    def scheduled(self, exports: int) -> None:
        self.bar.total += exports
        self.bar.refresh()

    def exported(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def chosen_customers(ctx: CliContext, name: str | None, all_: bool) -> list[str]:
    """NAME or, with --all, every enabled customer; an unknown NAME is an error."""
    if bool(name) == all_:
        raise ValidationError("give a customer NAME or --all")
    if name:
        ctx.customers.get(name)  # NotFoundError for an unknown name
        return [name]
    return [c["name"] for c in ctx.customers.list() if c["enabled"]]


@click.command("sync")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every enabled customer.")
@click.option("--full", is_flag=True, help="Download every export, not only new and changed workflows.")
@click.option("--wait", is_flag=True, help="Wait for the runs to finish and print their outcome.")
@click.option("--in-process", is_flag=True, help="Sync here and now, without Dagster (like the seed's --sync).")
@pass_context
def sync(ctx: CliContext, name: str | None, all_: bool, full: bool, wait: bool, in_process: bool) -> None:
    """Sync customer NAME's Zuora workflows and tasks (or --all): queue Dagster runs (one per batch of
    customers, as the hourly schedule does), or run --in-process.

    Exit 1 when a sync failed or finished with errors.
    """
    customers = chosen_customers(ctx, name, all_)
    if not customers:
        click.echo("no enabled customers")
        return
    ok = _in_process(ctx, customers, full) if in_process else _launch(ctx, customers, full, wait)
    if not ok:
        sys.exit(EXIT_INCOMPLETE)


def _in_process(ctx: CliContext, customers: list[str], full: bool) -> bool:
    ok = True
    for customer in customers:
        bar = _ExportBar(customer)
        try:
            result = sync_workflows(ctx.db, ctx.secret_box, customer, full=full, progress=bar)
        finally:
            bar.close()
        click.echo(f"{customer}: workflows {result.status}: {result.summary()}")
        for error in result.errors[:10]:
            click.echo(f"  {error.workflow or '(listing)'}: {error.error}", err=True)
        if result.status == "failed":
            ok = False
            continue
        tasks_ok = report_tasks(sync_tasks(ctx.db, ctx.secret_box, customer))
        ok = ok and not result.errors and tasks_ok
    return ok


def report_tasks(tasks: TaskExtractionResult) -> bool:
    """Print a task extraction's outcome (the exports it could not read on stderr); False when there were some."""
    click.echo(f"{tasks.customer}: tasks: {tasks.summary()}")
    for error in tasks.errors[:10]:
        click.echo(f"  {error.workflow}: {error.error}", err=True)
    return not tasks.errors


def _launch(ctx: CliContext, customers: list[str], full: bool, wait: bool) -> bool:
    if not os.environ.get("DAGSTER_HOME"):
        raise ValidationError("DAGSTER_HOME is not set: runs are queued on a Dagster instance "
                              "(or sync here with --in-process)")
    quiet_dagster()
    from dagster import DagsterInstance, DagsterRunStatus

    from orchestration.common.fleet_cycle import batch_run_requests, cycle_key
    from orchestration.common.partitions import sync_partitions
    from orchestration.common.submission import submit_tagged_runs, wait_for_runs
    from orchestration.zuora.jobs import zuora_sync_job
    from orchestration.zuora.schedules import zuora_sync_batches
    from resources.common.control.models import utcnow

    with DagsterInstance.get() as instance:
        sync_partitions(instance, ctx.db)  # a customer added without DAGSTER_HOME has no partition yet
        config = {"ops": {"zuora_customer_sync": {"config": {"full": True}}}} if full else None
        chunks = zuora_sync_batches(instance, customers)
        requests = batch_run_requests(chunks, f"zuora:{cycle_key(utcnow())}")
        runs = submit_tagged_runs(instance, zuora_sync_job.name,
                                  [{**r.tags, "fleetops/trigger": "cli"} for r in requests], run_config=config)
        covered = {run.run_id: chunk for run, chunk in zip(runs, chunks, strict=True)}
        for run in runs:
            click.echo(f"{', '.join(covered[run.run_id])}: queued run {run.run_id}")
        if not wait:
            return True
        with tqdm(total=len(runs), desc="runs finished", unit="run", file=sys.stderr, leave=False,
                  disable=None) as bar:
            def changed(run) -> None:
                bar.write(f"run {run.run_id} ({len(covered[run.run_id])} customer(s)): {run.status.value.lower()}",
                          file=sys.stderr)
                if run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                    bar.update(1)

            statuses = wait_for_runs(instance, [run.run_id for run in runs], on_change=changed)
    customer_of = {customer: run_id for run_id, chunk in covered.items() for customer in chunk}
    ok = True
    for customer, run_id in customer_of.items():
        view = ctx.customers.get(customer)
        stats = view["last_sync_stats"] or {}
        click.echo(f"{customer}: run {statuses[run_id].value.lower()}, last sync {view['last_sync_status']}: "
                   + ", ".join(f"{stats.get(k, 0)} {k}" for k in ("created", "updated", "unchanged", "deleted",
                                                                   "errors")))
        ok = ok and statuses[run_id] == DagsterRunStatus.SUCCESS and view["last_sync_status"] == "complete"
    return ok
