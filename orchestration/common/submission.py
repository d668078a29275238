"""Runs submitted to the Dagster instance from the CLI, queued for the daemon exactly like a launch from the UI.

The code location is loaded in this process under the name the workspace gives it
(`fleetops`, workspace.yaml), so the run carries the same origin the daemon resolves when
it dequeues and launches the run in its own code server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

LOCATION_NAME = "fleetops"  # as workspace.yaml names it
REPOSITORY_NAME = "__repository__"  # the repository of a Definitions object
REPO_ROOT = Path(__file__).resolve().parents[2]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@contextmanager
def _workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceRequestContext]:
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions",
                             working_directory=str(REPO_ROOT)),
        location_name=LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process:
        yield process.create_request_context()


def submit_tagged_runs(
    instance: dg.DagsterInstance, job_name: str, tags_of_runs: Sequence[Mapping[str, str]], *,
    run_config: Mapping[str, Any] | None = None,
) -> list[dg.DagsterRun]:
    """Create and submit one run of `job_name` per set of tags (a partition, or a range of them, as a
    schedule's RunRequest carries); the run coordinator queues them."""
    runs = []
    with _workspace(instance) as workspace:
        location: CodeLocation = workspace.get_code_location(LOCATION_NAME)
        repository = location.get_repository(REPOSITORY_NAME)
        job = repository.get_full_job(job_name)
        plan = location.get_execution_plan(job, dict(run_config or {}), step_keys_to_execute=None, known_state=None,
                                           instance=instance).execution_plan_snapshot
        for tags in tags_of_runs:
            run = instance.create_run(
                job_name=job_name, run_id=None, run_config=dict(run_config or {}), status=None,
                tags={**job.tags, **tags}, root_run_id=None, parent_run_id=None,
                step_keys_to_execute=plan.step_keys_to_execute, execution_plan_snapshot=plan,
                job_snapshot=job.job_snapshot, parent_job_snapshot=job.parent_job_snapshot, asset_selection=None,
                asset_check_selection=None, resolved_op_selection=job.resolved_op_selection, op_selection=None,
                remote_job_origin=job.get_remote_origin(), job_code_origin=job.get_python_origin(),
                asset_graph=repository.asset_graph,
            )
            runs.append(instance.submit_run(run.run_id, workspace))
    return runs


def wait_for_runs(
    instance: dg.DagsterInstance, run_ids: Sequence[str], *, on_change: Callable[[dg.DagsterRun], None],
    poll: float = 1.0, timeout: float | None = None,
) -> dict[str, dg.DagsterRunStatus]:
    """Poll until every run has finished; `on_change` sees each status change. Returns the final statuses."""
    seen: dict[str, dg.DagsterRunStatus] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            if run is not None and seen.get(run_id) != run.status:
                seen[run_id] = run.status
                on_change(run)
        if all(seen.get(run_id) in FINISHED for run_id in run_ids):
            return seen
        if deadline is not None and time.monotonic() > deadline:
            return seen
        time.sleep(poll)
