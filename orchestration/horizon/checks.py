"""Whether every Horizon project's Horizon works: one verdict over the fleet, naming the projects.

Not partitioned: one evaluation names every project with a problem (Horizon's keys not found,
no live master, a paused master or supervisor, a supervisor that should run and does not). It
warns: the queues may still be worked, by another master or by `queue:work`. The horizon sensor
evaluates it every 5 minutes when the verdict changed (else hourly); run by hand it reads every
Horizon project.
"""


import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.formatting import metadata_table
from orchestration.common.resources import ControlDatabaseResource
from orchestration.horizon.metrics import horizon_metrics
from resources.common.secrets import SecretBox
from resources.horizon.readings import HorizonReading, read_projects

PROBLEM_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("project", "string"), dg.TableColumn("horizon", "string"), dg.TableColumn("problem", "string"),
])
MAX_ROWS = 200


def running_fields(readings: list[HorizonReading]) -> dict:
    """The horizon_running verdict: passed when no Horizon project has a problem."""
    rows = [{"project": r.project, "horizon": r.status, "problem": problem}
            for r in readings for problem in r.problems()]
    failing = sorted({row["project"] for row in rows})
    return {
        "check_name": "horizon_running", "passed": not rows, "severity": dg.AssetCheckSeverity.WARN,
        "metadata": {
            "projects": len(readings), "projects_with_problems": len(failing),
            "failing": ", ".join(failing[:50]) or "-",
            "problems": metadata_table(rows[:MAX_ROWS], PROBLEM_SCHEMA),
        },
    }


def running_evaluation(readings: list[HorizonReading]) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=horizon_metrics.key, **running_fields(readings))


@dg.asset_check(
    asset=horizon_metrics, name="horizon_running",
    description="Every Horizon project has a live master and runs its supervisors, none paused or missing "
    "(warns, naming them). Evaluated every 5 minutes by horizon_supervisors_sensor, without a run.",
)
def horizon_running(control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    with failure_on_error():
        readings = read_projects(control_db.database(), SecretBox.from_env())
    return dg.AssetCheckResult(**running_fields(readings))
