"""Execute claimed spool actions: the one code path behind the Dagster op and `fleetops spool process`.

Per row: claim (atomic), open the project's storage, execute with progress written as it goes,
then settle. A problem with the project's storage (database or Redis down, a missing table, an
unset env var) is a failed attempt retried with backoff. A statement the project's database refuses
for lack of a grant, and jobs Laravel itself could not retry, end the action failed at once, naming
the missing grant or the jobs. An action that ends failed is announced to the alert webhook
(FLEETOPS_ALERT_WEBHOOK_URL) and the delivery recorded in its result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.errors import FleetopsError, first_line, loaded_errors, refused_privilege
from resources.fleet.project_storage import ProjectStorage
from resources.fleet.registry.projects import ProjectRegistry
from resources.spool.actions import ActionRequest
from resources.spool.enqueue import enqueue
from resources.spool.perform import execute
from resources.spool.statuses import FAILED
from resources.spool.store import Claimed, Settled, SpoolStore

if TYPE_CHECKING:  # requests is imported only when an alert is due, not by every command that processes
    from resources.common.alerts import Delivery, WebhookSender

Log = Callable[[str], None]


def process_claimed(db: ControlDatabase, projects: ProjectRegistry, ids: list[int], run_id: str,
                    log: Log = print, alerts: WebhookSender | None = None,
                    storages: Mapping[str, ProjectStorage] | None = None) -> list[Settled]:
    """Claim `ids` for `run_id` (rows already claimed by it are kept) and carry each out. A project's
    storage the caller has open (`storages`) is used as it is and left open."""
    store = SpoolStore(db)
    held = store.claimed_by(run_id, ids)  # born claimed by this run (enqueue_and_process), or taken before
    taken = {c.id for c in held}
    rest = [i for i in ids if i not in taken]
    claimed = (store.claim(rest, run_id) if rest else []) + held
    if len(claimed) < len(ids):
        log(f"{len(ids) - len(claimed)} of {len(ids)} spool action(s) were already taken by another run")
    with ExitStack() as closing:
        opened: dict[str, ProjectStorage] = dict(storages or {})

        def storage_of(key: str) -> ProjectStorage:
            """A project's storage, opened once for all its actions here (a run carries one project's batch)."""
            if key not in opened:
                opened[key] = closing.enter_context(ProjectStorage.of(projects, key))
            return opened[key]

        return [_carry_out(store, storage_of, action, run_id, log, alerts) for action in claimed]


def enqueue_and_process(db: ControlDatabase, projects: ProjectRegistry, request: ActionRequest, *,
                        requested_by: str, source: str, log: Log = print) -> list[Settled]:
    """`fleetops spool enqueue ... --process`: the action written born claimed by this process, so no
    Dagster run or other `spool process` takes it, then carried out here.

    One storage serves both steps: the connection, the server's settings and the table's columns
    that freezing the targets needed are the ones the action starts with.
    """
    run_id = f"cli-{uuid.uuid4()}"
    with ProjectStorage.of(projects, request.project) as storage:
        done = enqueue(db, projects, request, requested_by=requested_by, source=source, claim_for=run_id,
                       storage=storage)
        return process_claimed(db, projects, [done.id], run_id, log, storages={storage.spec.key: storage})


def process_batch_then_due(db: ControlDatabase, projects: ProjectRegistry, project: str, ids: list[int], run_id: str,
                           *, per_round: int, rounds: int, log: Log = print, alerts: WebhookSender | None = None
                           ) -> list[Settled]:
    """What a spool run does: carry out its batch, then take whatever else of its project has fallen
    due meanwhile, `per_round` at a time, for at most `rounds` more rounds.

    A project has one spool run at a time (dagster.yaml). Actions enqueued while its run works
    would otherwise wait for that run to end, then for a tick, a launch and a process start of
    their own; the run already going takes them now. A run that is still queued for the project
    then finds its rows taken and ends at once. An action this run has already tried is left to a
    later run, after its backoff, even when the backoff is zero.
    """
    settled = process_claimed(db, projects, ids, run_id, log, alerts)
    tried = set(ids)
    store = SpoolStore(db)
    for _ in range(rounds):
        due = [i for i, _, _ in store.due(limit=per_round + len(tried), project=project) if i not in tried][:per_round]
        if not due:
            break
        tried.update(due)
        log(f"{len(due)} more due spool action(s) of {project}: taken by this run")
        settled += process_claimed(db, projects, due, run_id, log, alerts)
    return settled


def process_due(db: ControlDatabase, projects: ProjectRegistry, *, project: str | None = None, limit: int = 100,
                log: Log = print, alerts: WebhookSender | None = None) -> list[Settled]:
    """`fleetops spool process`: due rows (of one project, or all), executed here without Dagster."""
    store = SpoolStore(db)
    store.release_expired()
    due = [i for i, _, _ in store.due(limit=limit, project=project)]
    return process_claimed(db, projects, due, f"cli-{uuid.uuid4()}", log, alerts)


def _carry_out(store: SpoolStore, storage_of: Callable[[str], ProjectStorage], action: Claimed, run_id: str,
               log: Log, alerts: WebhookSender | None) -> Settled:
    label = f"spool #{action.id} {action.action} on {action.project} (attempt {action.attempts}/{action.max_attempts})"
    log(f"{label}: started")

    def report(progress: dict[str, Any]) -> None:
        store.progress(action.id, run_id, progress)
        log(f"{label}: {progress['processed']}/{progress['total']} processed, {progress['errors']} error(s)")

    try:
        outcome = execute(action.action, action.payload, storage_of(action.project), report, f"spool{action.id}")
    except (FleetopsError, sa.exc.SQLAlchemyError, OSError, *loaded_errors("redis", "RedisError")) as exc:
        refused = refused_privilege(exc)
        settled = store.fail(action.id, run_id, refused or f"{type(exc).__name__}: {first_line(exc)}",
                             retryable=refused is None)
    else:
        if outcome.errors:
            settled = store.fail(action.id, run_id, outcome.summary(), retryable=False, result=outcome.as_result())
        else:
            result = outcome.as_result()
            settled = store.complete(action.id, run_id, result)
            log(f"{label}: {settled.status} {result}")
            return settled
    detail = store.get(action.id)
    log(f"{label}: {settled.status}" + (f" ({detail['error']})" if detail["error"] else f" {detail['result']}"))
    if settled.status == FAILED:
        delivery = _alert(alerts, action, detail)
        store.note_alert(action.id, delivery)
        log(f"{label}: alert {'sent' if delivery.delivered else delivery.error}")
    return settled


def _alert(alerts: WebhookSender | None, action: Claimed, detail: dict[str, Any]) -> Delivery:
    """Tell a person: the action has used its attempts (or cannot succeed) and stays failed. Without
    a sender given, the one FLEETOPS_ALERT_WEBHOOK_URL configures, made (and requests imported) only
    now that an alert is due: a tenth of a second a command that ends well does not pay."""
    if alerts is None:
        from resources.common.alerts import WebhookSender

        alerts = WebhookSender.from_env()
    text = (f":rotating_light: fleetops spool #{action.id} {action.action} on {action.project} failed "
            f"after {action.attempts} attempt(s): {detail['error']}")
    return alerts.send(text, {"project": action.project, "action": action.action, "spool id": action.id,
                              "requested by": detail["requested_by"], "source": detail["source"]})

