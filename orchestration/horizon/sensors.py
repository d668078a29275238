"""Horizon every 5 minutes by one sensor, without a run: the supervisor files and Horizon's own metrics.

Each tick re-renders the supervisor files (a file is rewritten only when it changes) and reads
every Horizon project's metrics and supervisors from its Redis. `horizon_supervisors`, each
project's `horizon_metrics` partition and the `horizon_running` verdict are reported when what
they say changed, else hourly (orchestration.common.ledger).
"""

import time

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.ledger import Ledger
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.horizon.assets import horizon_metadata, horizon_supervisors, valid_fields
from orchestration.horizon.checks import running_evaluation
from orchestration.horizon.metrics import materialization, said
from resources.common import settings
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.horizon.readings import read_projects
from resources.horizon.supervisors import generate


def _supervisor_events(db: ControlDatabase, secret_box: SecretBox, ledger: Ledger, now: float) -> list:
    out_dir = settings.horizon_config_dir()
    run = generate(db, secret_box, out_dir)
    if not ledger.due("horizon_supervisors", [[str(r.path) for r in run.written], run.errors], now):
        return []
    return [dg.AssetMaterialization(asset_key=horizon_supervisors.key, metadata=horizon_metadata(run, out_dir)),
            dg.AssetCheckEvaluation(asset_key=horizon_supervisors.key, **valid_fields(run))]


def _metrics_events(db: ControlDatabase, secret_box: SecretBox, ledger: Ledger, now: float) -> list:
    readings = read_projects(db, secret_box, now=now)
    events: list = [materialization(r) for r in readings if ledger.due(f"horizon:{r.project}", said(r), now)]
    if ledger.due("horizon_running", [[r.project, r.problems()] for r in readings], now):
        events.append(running_evaluation(readings))
    return events


@dg.sensor(
    name="horizon_supervisors_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes, without a run: re-render the Horizon supervisor files (a file is rewritten "
    "only when it changes) and read each Horizon project's metrics; horizon_supervisors, horizon_metrics and "
    "horizon_running are reported when they changed, else hourly.",
)
@skip_on_error
def horizon_supervisors_sensor(context: dg.SensorEvaluationContext,
                               control_db: ControlDatabaseResource) -> dg.SensorResult | dg.SkipReason:
    ledger, now = Ledger(context.cursor), time.time()
    db, secret_box = control_db.database(), SecretBox.from_env()
    events = _supervisor_events(db, secret_box, ledger, now) + _metrics_events(db, secret_box, ledger, now)
    if not events:
        return dg.SkipReason("nothing changed in the supervisor files or in Horizon")
    known = set(context.instance.get_dynamic_partitions(projects_partitions.name))
    new = sorted({e.partition for e in events if isinstance(e, dg.AssetMaterialization) and e.partition} - known)
    return dg.SensorResult(
        asset_events=events, cursor=ledger.cursor(),
        dynamic_partitions_requests=[projects_partitions.build_add_request(new)] if new else None,
    )
