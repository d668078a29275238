"""Which code may import which, read from the source of every module (imports inside functions too).

The product (`orchestration/`, `resources/`, `cli/`, `sql/`) must run without the demo and test
code in `sandbox/` and `tests/`: a deployment copies the product, and a fixture reached from
production code would be a fixture in production. `resources/` stays plain Python usable from a
shell, the CLI and tests, so it never imports Dagster.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("orchestration", "resources", "cli", "sql")
NOT_PRODUCT = ("sandbox", "tests", "bench")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, and every dotted `package.module[:name]` string naming one of ours."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
            head = node.value.split(":")[0]
            if head.split(".")[0] in NOT_PRODUCT and head.replace(".", "").replace("_", "").isalnum():
                found.add(head)
    return found


def modules_of(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO / package).rglob("*.py"))


def top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", modules_of(*PRODUCT), ids=lambda p: str(p.relative_to(REPO)))
def test_the_product_never_imports_demo_or_test_code(path: Path) -> None:
    assert not {m for m in imported_modules(path) if top(m) in NOT_PRODUCT}


@pytest.mark.parametrize("path", modules_of("resources"), ids=lambda p: str(p.relative_to(REPO)))
def test_resources_never_import_dagster(path: Path) -> None:
    assert not {m for m in imported_modules(path) if top(m).startswith("dagster") or top(m) in ("orchestration", "cli")}


def test_the_guard_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from sandbox.laravel import factory\n    return 'tests.harness.cli:run'\n")
    assert imported_modules(module) == {"sandbox.laravel", "tests.harness.cli"}
