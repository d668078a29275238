"""The Horizon supervisor files re-rendered every 5 minutes by a sensor, without a run."""

import time

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.ledger import Ledger
from orchestration.common.resources import ControlDatabaseResource
from orchestration.horizon.assets import horizon_metadata, horizon_supervisors, valid_fields
from resources.common import settings
from resources.common.secrets import SecretBox
from resources.horizon.supervisors import generate


@dg.sensor(
    name="horizon_supervisors_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes, without a run: re-render the Horizon supervisor files (a file is rewritten "
    "only when it changes); horizon_supervisors is reported when something changed, else hourly.",
)
@skip_on_error
def horizon_supervisors_sensor(context: dg.SensorEvaluationContext,
                               control_db: ControlDatabaseResource) -> dg.SensorResult | dg.SkipReason:
    out_dir = settings.horizon_config_dir()
    run = generate(control_db.database(), SecretBox.from_env(), out_dir)
    ledger = Ledger(context.cursor)
    if not ledger.due("horizon_supervisors", [[str(r.path) for r in run.written], run.errors], time.time()):
        return dg.SkipReason("no supervisor file changed")
    return dg.SensorResult(cursor=ledger.cursor(), asset_events=[
        dg.AssetMaterialization(asset_key=horizon_supervisors.key, metadata=horizon_metadata(run, out_dir)),
        dg.AssetCheckEvaluation(asset_key=horizon_supervisors.key, **valid_fields(run)),
    ])
