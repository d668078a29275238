"""Horizon supervisors generated from the registry, so a Redis connection added to the fleet gets its workers.

For every enabled project with the Horizon flag, one PHP file `{dir}/{project}.php` returns
the supervisors for its registered, enabled Redis connections, one per connection, named
`fleetops-{connection}`:

    return [
        'fleetops-cache' => [
            'connection' => 'redis',        // the Laravel queue connection (see below)
            'queue' => ['default', 'mail'], // connection option `queues`, else ['default']
            'balance' => 'auto', 'autoScalingStrategy' => 'time', 'minProcesses' => 1,
            'maxProcesses' => 10, 'maxTime' => 0, 'maxJobs' => 0, 'memory' => 128,
            'tries' => 1, 'timeout' => 60, 'nice' => 0,
        ],
    ];

The app includes it from config/horizon.php (`'environments' => ['production' => require
'/path/shop.php']`). Supervisor settings are Horizon 5's defaults (config/horizon.php
`defaults`, with the production `maxProcesses` of 10) overridden by the connection option
`horizon` (a mapping of the same keys). The Laravel queue connection is the option
`queue_connection`, else the name of the project's queue connection whose DSN points at the
same host, port and database, else the registered connection's own name (what a
DynamicRedisServiceProvider registering one connection per registry row would use).

A file is written only when its text changes, atomically (a temporary file in the same
directory, checked, then renamed over the old one), so the app never includes half a file. It
is checked twice before the rename: structurally in Python, and, when `php` is on the PATH,
with `php -l` and by `require`-ing it in PHP and comparing the array it returns with the one
intended. The file holds connection and queue names only, never a password.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from resources.common import dsn
from resources.common.control.database import ControlDatabase
from resources.common.control.models import Project, RedisConnection
from resources.common.errors import FleetopsError, ValidationError, first_line
from resources.common.identifiers import QUEUE_NAME
from resources.common.secrets import SecretBox

SUPERVISOR_DEFAULTS: dict[str, Any] = {
    "balance": "auto", "autoScalingStrategy": "time", "minProcesses": 1, "maxProcesses": 10, "maxTime": 0,
    "maxJobs": 0, "memory": 128, "tries": 1, "timeout": 60, "nice": 0,
}
BALANCES = ("auto", "simple", False)
SCALING = ("time", "size")
PHP_CHECK_SECONDS = 30


@dataclass
class RenderedConfig:
    project: str
    path: Path
    text: str
    supervisors: dict[str, dict[str, Any]]
    before: str | None = None  # the file's text before, None when it did not exist
    checked_with: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.before

    def diff(self) -> str:
        """Unified diff from the file on disk to the new text (empty when unchanged)."""
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(keepends=True), self.text.splitlines(keepends=True),
            fromfile=f"{self.path.name} (before)" if self.before is not None else "/dev/null",
            tofile=self.path.name,
        ))


# ---------------------------------------------------------------------------------------------
# What the supervisors are


def supervisors_for(project: Project, connections: list[RedisConnection], secret_box: SecretBox) -> dict[str, dict]:
    """The supervisors of one Horizon project, one per registered connection, in name order."""
    supervisors = {}
    for row in sorted(connections, key=lambda r: r.name):
        options = row.options or {}
        supervisors[supervisor_name(row.name)] = {
            "connection": options.get("queue_connection") or _queue_connection(project, row, secret_box) or row.name,
            "queue": list(options.get("queues") or ["default"]),
            **supervisor_settings(options.get("horizon"), f"Redis connection {row.name}"),
        }
    check_supervisors(supervisors)
    return supervisors


def supervisor_name(connection: str) -> str:
    """The supervisor fleetops generates for a registered Redis connection."""
    return f"fleetops-{connection}"


def supervisor_settings(overrides: Any, where: str) -> dict[str, Any]:
    """Horizon's defaults with a connection's `horizon` option over them (unknown keys refused)."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ValidationError(f"{where}: option horizon must be a mapping of Horizon supervisor settings")
    unknown = sorted(set(overrides) - set(SUPERVISOR_DEFAULTS))
    if unknown:
        raise ValidationError(f"{where}: unknown Horizon setting {unknown[0]!r} "
                              f"(known: {', '.join(SUPERVISOR_DEFAULTS)})")
    return {**SUPERVISOR_DEFAULTS, **overrides}


def _queue_connection(project: Project, row: RedisConnection, secret_box: SecretBox) -> str | None:
    """The project's Laravel queue connection whose Redis DSN is this server and database."""
    for name, stored in sorted((project.queue_connections or {}).items()):
        try:
            value = secret_box.reveal(stored)
            if dsn.kind_of(value) != "redis":
                continue
            parts = urlsplit(value)
            same = (parts.hostname, parts.port or 6379, int(parts.path.strip("/") or 0)) == (row.host, row.port, row.db)
        except (FleetopsError, ValueError):  # an unset env var or an odd DSN: no match, not an error
            continue
        if same:
            return name
    return None


def check_supervisors(supervisors: dict[str, dict[str, Any]]) -> None:
    """Refuse anything Horizon would misread: the structural half of the validation."""
    for name, options in supervisors.items():
        where = f"supervisor {name}"
        if not isinstance(options.get("connection"), str) or not options["connection"]:
            raise ValidationError(f"{where}: connection must be a non-empty string")
        queues = options.get("queue")
        if not isinstance(queues, list) or not queues or not all(isinstance(q, str) and QUEUE_NAME.match(q)
                                                                 for q in queues):
            raise ValidationError(f"{where}: queue must be a non-empty list of queue names")
        if options["balance"] not in BALANCES:
            raise ValidationError(f"{where}: balance must be auto, simple or false")
        if options["autoScalingStrategy"] not in SCALING:
            raise ValidationError(f"{where}: autoScalingStrategy must be time or size")
        for key in ("minProcesses", "maxProcesses", "maxTime", "maxJobs", "memory", "tries", "timeout", "nice"):
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (-20 if key == "nice" else 0):
                raise ValidationError(f"{where}: {key} must be a whole number, got {value!r}")
        if not 1 <= options["minProcesses"] <= options["maxProcesses"]:
            raise ValidationError(f"{where}: need 1 <= minProcesses <= maxProcesses")


# ---------------------------------------------------------------------------------------------
# PHP


def render_php(project: str, supervisors: dict[str, dict[str, Any]], path: Path) -> str:
    """The file's text; no timestamp, so the same registry renders the same bytes."""
    body = php_value(supervisors, 0)
    return (
        "<?php\n\n"
        f"// Generated by fleetops (asset horizon_supervisors) for project {project}. Do not edit: it is rewritten.\n"
        f"// Include it from config/horizon.php: 'environments' => ['production' => require '{path}'],\n"
        "// Reload after a change: php artisan horizon:terminate (the process manager starts Horizon again).\n\n"
        f"return {body};\n"
    )


def php_value(value: Any, depth: int) -> str:
    """A PHP literal for str, int, bool, list and dict (arrays in var_export's layout)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | dict):
        if not value:
            return "[]"
        pad = "    " * (depth + 1)
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        lines = [pad + (f"{php_value(k, 0)} => " if k is not None else "") + php_value(v, depth + 1) + ","
                 for k, v in items]
        return "[\n" + "\n".join(lines) + "\n" + "    " * depth + "]"
    raise ValidationError(f"cannot render {type(value).__name__} as PHP")


def php_check(path: Path, expected: dict[str, Any]) -> list[str]:
    """`php -l`, then `require` the file in PHP and compare its array with `expected`; what was done."""
    php = shutil.which("php")
    if php is None:
        return []
    lint = _run([php, "-l", str(path)])
    if lint.returncode != 0:
        raise ValidationError(f"php -l refused the generated file: {_first_line(lint)}")
    loaded = _run([php, "-r", "echo json_encode(require $argv[1]);", "--", str(path)])
    if loaded.returncode != 0:
        raise ValidationError(f"PHP could not require the generated file: {_first_line(loaded)}")
    if (json.loads(loaded.stdout or "null") or {}) != json.loads(json.dumps(expected)):
        raise ValidationError("the generated file returns a different array than intended")
    return ["php -l", "php require"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=PHP_CHECK_SECONDS, check=False)


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else f"exit {done.returncode}"


def write_atomically(path: Path, text: str, check: Callable[[Path], None]) -> None:
    """Write `text` to a temporary file beside `path`, `check` it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        temporary.chmod(0o644)
        check(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write(rendered: RenderedConfig) -> None:
    def check(temporary: Path) -> None:
        rendered.checked_with = ["structure", *php_check(temporary, rendered.supervisors)]

    write_atomically(rendered.path, rendered.text, check)


# ---------------------------------------------------------------------------------------------
# The whole fleet


@dataclass
class HorizonConfigRun:
    written: list[RenderedConfig] = field(default_factory=list)
    unchanged: list[RenderedConfig] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # project -> why its file was not written
    stale: list[Path] = field(default_factory=list)  # files of projects no longer running Horizon


def generate(db: ControlDatabase, secret_box: SecretBox, out_dir: Path) -> HorizonConfigRun:
    """Render, check and write the file of every Horizon project; one bad project does not stop the others."""
    run = HorizonConfigRun()
    with db.session() as session:
        projects = list(session.scalars(sa.select(Project).where(Project.horizon, Project.enabled)
                                        .order_by(Project.key)))
        rows = list(session.scalars(sa.select(RedisConnection).where(RedisConnection.enabled)))
        for project in projects:
            path = out_dir / f"{project.key}.php"
            try:
                supervisors = supervisors_for(project, [r for r in rows if r.project_key == project.key], secret_box)
                rendered = RenderedConfig(project.key, path, render_php(project.key, supervisors, path), supervisors,
                                          before=path.read_text(encoding="utf-8") if path.exists() else None)
                if rendered.changed:
                    _write(rendered)
                    run.written.append(rendered)
                else:
                    run.unchanged.append(rendered)
            except (FleetopsError, OSError, subprocess.SubprocessError) as exc:
                run.errors[project.key] = first_line(exc)
    current = {f"{p.key}.php" for p in projects}
    run.stale = sorted(p for p in out_dir.glob("*.php") if p.name not in current) if out_dir.is_dir() else []
    return run
