"""`fleetops --help` answers from click alone: no database library, no Dagster, no drivers.

A behaviour guard, not a timing test: the help lists every command group without importing one,
so it stays as quick as the interpreter's start-up whatever the groups themselves load.
"""

import inspect
import json
import subprocess
import sys

from cli.main import GROUPS, cli

HEAVY = ("sqlalchemy", "dagster", "redis", "psycopg", "requests", "alembic")
HELP_IN_A_FRESH_INTERPRETER = """
import json, sys
heavy = set(sys.argv[1:])
from cli.main import main
sys.argv = ["fleetops", "--help"]
try:
    main()
except SystemExit as exit:
    code = exit.code
loaded = sorted({name.split(".")[0] for name in sys.modules} & heavy)
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_help_imports_no_database_library_nor_dagster() -> None:
    done = subprocess.run([sys.executable, "-c", HELP_IN_A_FRESH_INTERPRETER, *HEAVY], capture_output=True, text=True,
                          check=True, timeout=60)
    *help_lines, verdict = done.stdout.strip().splitlines()
    outcome = json.loads(verdict)
    assert outcome == {"code": 0, "loaded": []}
    listed = {line.split()[0] for line in help_lines if line.startswith("  ") and line.strip()}
    assert set(GROUPS) <= listed


def test_help_describes_each_group_as_its_own_docstring_does() -> None:
    for name, lazy in GROUPS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        first_paragraph = " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())
        assert lazy.help == first_paragraph, name


COMMAND_IN_A_FRESH_INTERPRETER = """
import gc, json, sys
from cli.main import main
sys.argv = ["fleetops", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "collecting": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_a_command_collects_its_own_garbage_and_leaves_the_control_database_closed(tmp_path) -> None:
    """The collector is paused while a command loads, never for the command itself (a `--watch` loop
    runs for hours), and the control database is closed by the command, not by the interpreter's
    exit, which no longer walks what was loaded: no write-ahead log is left beside it."""
    env = {"PATH": "/usr/bin:/bin", "FLEETOPS_HOME": str(tmp_path)}
    outcomes = []
    for command in (["init"], ["project", "list"]):
        done = subprocess.run([sys.executable, "-c", COMMAND_IN_A_FRESH_INTERPRETER, *command], capture_output=True,
                              text=True, check=True, timeout=60, env=env)
        outcomes.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert [outcome["code"] for outcome in outcomes] == [0, 0]
    assert all(outcome["collecting"] and outcome["frozen"] > 10_000 for outcome in outcomes), outcomes
    assert (tmp_path / "fleetops.db").exists() and not (tmp_path / "fleetops.db-wal").exists()
