"""Horizon supervisor files generated from the registry, one per Horizon project."""

from pathlib import Path

import dagster as dg

from orchestration.common.formatting import markdown_table
from orchestration.common.resources import ControlDatabaseResource
from resources.common import settings
from resources.common.secrets import SecretBox
from resources.horizon.supervisors import HorizonConfigRun, generate


class HorizonConfig(dg.Config):
    output_dir: str | None = None
    """Directory of the generated files; default $FLEETOPS_HORIZON_CONFIG_DIR, else $FLEETOPS_HOME/horizon."""


@dg.asset(
    group_name="horizon",
    kinds={"laravel", "php"},
    check_specs=[dg.AssetCheckSpec("horizon_configs_valid", asset="horizon_supervisors")],
    description="Per Horizon project, a PHP file returning its supervisors (one per registered Redis connection, "
    "its queues and balance settings) for config/horizon.php to include; checked with php -l and by loading it, "
    "written atomically and only when it changes, the diff in the metadata. The app reloads it with "
    "`php artisan horizon:terminate`.",
)
def horizon_supervisors(
    context: dg.AssetExecutionContext, config: HorizonConfig, control_db: ControlDatabaseResource
) -> dg.MaterializeResult:
    out_dir = settings.horizon_config_dir() if config.output_dir is None else Path(config.output_dir).resolve()
    run = generate(control_db.database(), SecretBox.from_env(), out_dir)
    for rendered in run.written:
        context.log.info("wrote %s (%d supervisors); the app reloads it with `php artisan horizon:terminate`",
                         rendered.path, len(rendered.supervisors))
    for project, error in run.errors.items():
        context.log.error("project %s: %s", project, error)
    return dg.MaterializeResult(metadata=horizon_metadata(run, out_dir),
                                check_results=[dg.AssetCheckResult(**valid_fields(run))])


def horizon_metadata(run: HorizonConfigRun, out_dir: Path) -> dict:
    """Files written and unchanged, their diff and the projects whose file could not be written."""
    diffs = "\n\n".join(f"**{r.project}** `{r.path}`\n\n```diff\n{r.diff()}```" for r in run.written)
    files = [{"project": r.project, "path": str(r.path), "supervisors": len(r.supervisors),
              "changed": r.changed, "checked_with": ", ".join(r.checked_with) or "-"}
             for r in sorted(run.written + run.unchanged, key=lambda r: r.project)]
    return {
        "written": len(run.written),
        "unchanged": len(run.unchanged),
        "failed": len(run.errors),
        "output_dir": str(out_dir),
        "files": dg.MetadataValue.md(markdown_table(files, ["project", "path", "supervisors", "changed",
                                                            "checked_with"])),
        "diff": dg.MetadataValue.md(diffs or "_no changes_"),
        "errors": dg.MetadataValue.md(markdown_table(
            [{"project": p, "error": e} for p, e in run.errors.items()], ["project", "error"])),
        "stale_files": ", ".join(str(p) for p in run.stale) or "-",
    }


def valid_fields(run: HorizonConfigRun) -> dict:
    """The horizon_configs_valid verdict of one generation."""
    return {"check_name": "horizon_configs_valid", "passed": not run.errors,
            "metadata": {"failed_projects": ", ".join(run.errors) or "-"}}
