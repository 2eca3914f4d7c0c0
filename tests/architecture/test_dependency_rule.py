"""The layers of docs/ARCHITECTURE.md hold: the import contract is kept, and it really bites.

``make test`` runs ``lint-imports`` before pytest; these tests prove the
contract fails on an upward import, on an import cycle inside a package, and
that no function hides a project import from it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("base", "calendars", "tickets", "escalation", "slackbot", "reports", "ops", "slabuddy")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(tmp_path: Path) -> Path:
    """The packages and the contract, without tests, in a scratch folder."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, timeout=120)


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n" + code + "\n")


def test_the_contract_is_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "code", "arrow"), [
    ("tickets/timeline.py", "from escalation import arming  # noqa", "tickets.timeline -> escalation.arming"),
    ("base/outbox.py", "import tickets.models  # noqa", "base.outbox -> tickets.models"),
    ("escalation/firing.py",
     "def _dodge():\n    from slackbot.replies import bot_reply_post  # noqa",
     "escalation.firing -> slackbot.replies"),
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, code, arrow):
    tree = _copy_tree(tmp_path)
    _append(tree / module, code)
    result = _lint(tree)
    assert result.returncode == 1
    assert "BROKEN" in result.stdout and arrow in result.stdout


def test_an_import_cycle_inside_a_package_breaks_the_contract(tmp_path):
    tree = _copy_tree(tmp_path)
    # escalation.policy is imported by escalation.arming; importing back closes a circle.
    _append(tree / "escalation" / "policy.py", "from escalation import arming  # noqa")
    result = _lint(tree)
    assert result.returncode == 1
    assert "No import cycles between the modules of a package BROKEN" in result.stdout


def _function_level_project_imports(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names = []
            if isinstance(inner, ast.Import):
                names = [alias.name for alias in inner.names]
            elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names = [inner.module]
            for name in names:
                if name.split(".")[0] in PACKAGES:
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} imports {name}")
    return found


def test_no_function_imports_a_project_module():
    """Imports inside functions used to dodge cycles; the layers make them unnecessary."""
    offenders = [
        line
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line in _function_level_project_imports(path)
    ]
    assert offenders == []


def test_the_contract_runs_in_the_test_command():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:"):makefile.index("\ntest:")]
    assert "lint-imports" in lint
    assert "test: lint" in makefile
