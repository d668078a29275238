"""A check over a whole fleet: one evaluation that names its failing subjects, one plot line per subject.

Dagster 1.13 shows an asset's health from the latest evaluation of each of its check keys, and
does not show checks evaluated per partition (a preview feature). So a check over many projects,
customers or connections is one ordinary check: each evaluation covers the whole fleet, fails
when any subject fails (ERROR when any fails as an error, else WARN), names the failing
subjects with their reasons, and carries each subject's numbers as `<subject>/<number>`
(`shop/new_last_hour`) so that every subject keeps its own plot line across evaluations. Each
subject's own history is its partition's (materialized, or failed by its run).

A run covers a batch of subjects: its evaluation keeps the latest evaluation's verdicts of the
subjects it did not look at (`merged`). An evaluation is written when the verdict or the failing
set changed, and at least hourly otherwise (`evaluation_due`; sensors use the Ledger), and also
by every run that materialized the asset (`run_evaluations`): the UI shows a check on the asset's
node only while its latest evaluation is the one of the asset's latest materialization (the same
run, or written after it; run-less events all share one run id, so a sensor's evaluation stays
the one of its own later run-less materializations).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

from orchestration.common.formatting import markdown_table
from orchestration.common.ledger import HEARTBEAT

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
FAILING = "failing"  # metadata: {subject: [severity, reason]} of the failing subjects
LISTED = 50  # failing subjects in the table (all are in FAILING)


@dataclass(frozen=True)
class Verdict:
    """One subject's part of a fleet check: passed (`severity` None) or failed with a severity and reason."""

    subject: str
    severity: dg.AssetCheckSeverity | None = None
    reason: str = ""
    numbers: Mapping[str, int | float] = field(default_factory=dict)


def fleet_evaluation(asset_key: dg.AssetKey, check_name: str, verdicts: Iterable[Verdict],
                     metadata: Mapping[str, object] | None = None) -> dg.AssetCheckEvaluation:
    """The check's evaluation over `verdicts` (one per subject)."""
    verdicts = sorted(verdicts, key=lambda v: v.subject)
    failing = [v for v in verdicts if v.severity is not None]
    severity = ERROR if any(v.severity == ERROR for v in failing) else WARN
    return dg.AssetCheckEvaluation(
        asset_key=asset_key, check_name=check_name, passed=not failing, severity=severity,
        metadata={
            "subjects": len(verdicts),
            "failing_subjects": len(failing),
            "failing_names": ", ".join(v.subject for v in failing) or "-",
            FAILING: dg.MetadataValue.json({v.subject: [v.severity.value, v.reason] for v in failing}),
            "failures": dg.MetadataValue.md(markdown_table(
                [{"subject": v.subject, "severity": v.severity.value, "reason": v.reason} for v in failing[:LISTED]],
                ["subject", "severity", "reason"])),
            **{f"{v.subject}/{name}": value for v in verdicts for name, value in v.numbers.items()},
            **(metadata or {}),
        })


def as_result(evaluation: dg.AssetCheckEvaluation) -> dg.AssetCheckResult:
    """The evaluation as a check function's (or an asset's own check's) result."""
    return dg.AssetCheckResult(check_name=evaluation.check_name, passed=evaluation.passed,
                               severity=evaluation.severity, metadata=evaluation.metadata)


def verdict_of(evaluation: dg.AssetCheckEvaluation) -> list:
    """What a change is measured on: passed, the severity, and each failing subject with its severity."""
    failing = evaluation.metadata.get(FAILING)
    named = sorted((subject, entry[0]) for subject, entry in (failing.value if failing else {}).items())
    return [evaluation.passed, evaluation.severity.value, named]


def latest_evaluation(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                      check_name: str) -> tuple[dg.AssetCheckEvaluation, float] | None:
    """The check's latest stored evaluation and when it was written (None: never evaluated)."""
    key = dg.AssetCheckKey(asset_key, check_name)
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=5):
        if record.evaluation is not None:
            return record.evaluation, record.create_timestamp
    return None


def evaluation_due(instance: dg.DagsterInstance, evaluation: dg.AssetCheckEvaluation,
                   now: float | None = None) -> bool:
    """True when the check never said this verdict, or said it a heartbeat ago (run-side Ledger)."""
    latest = latest_evaluation(instance, evaluation.asset_key, evaluation.check_name)
    if latest is None:
        return True
    before, written = latest
    return verdict_of(before) != verdict_of(evaluation) or (now or time.time()) - written >= HEARTBEAT


def run_evaluations(instance: dg.DagsterInstance, evaluation: dg.AssetCheckEvaluation,
                    materialized: Sequence[str]) -> list[dg.AssetCheckEvaluation]:
    """At the end of a run: its evaluation when the run materialized the asset or the verdict is due, else none."""
    return [evaluation] if materialized or evaluation_due(instance, evaluation) else []


def merged(instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_name: str, verdicts: Iterable[Verdict],
           subjects: Collection[str]) -> list[Verdict]:
    """`verdicts` (this run's subjects) with the latest evaluation's verdicts of the others of `subjects`."""
    fresh = {v.subject: v for v in verdicts}
    latest = latest_evaluation(instance, asset_key, check_name)
    if latest is None:
        return list(fresh.values())
    before = latest[0].metadata
    failing = before[FAILING].value if FAILING in before else {}
    numbers: dict[str, dict[str, int | float]] = {}
    for name, value in before.items():
        subject, slash, number = name.rpartition("/")
        if slash and subject in subjects and subject not in fresh and isinstance(value.value, int | float):
            numbers.setdefault(subject, {})[number] = value.value
    kept = [Verdict(subject, dg.AssetCheckSeverity(failing[subject][0]) if subject in failing else None,
                    failing[subject][1] if subject in failing else "", numbers.get(subject, {}))
            for subject in sorted((set(numbers) | set(failing)) & set(subjects) - set(fresh))]
    return [*fresh.values(), *kept]
