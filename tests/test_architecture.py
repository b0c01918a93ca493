"""The package's shape: what imports what, and who may call what.

These guard the layering that the code relies on (see README, "What is inside"):
backend <- kernels <- layers <- plan <- models, the tools (inspection, gradcheck,
plotting) on top, and no module reaching into another object's private state.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minicnn"


def imported_modules(path):
    """The minicnn modules a file imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("minicnn"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minicnn"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_file(name):
    return PACKAGE / (name.split(".", 1)[1].replace(".", "/") + ".py")


@pytest.mark.parametrize("module, must_not_import", [
    ("minicnn.saving", "minicnn.models"),            # models -> saving, never back
    ("minicnn.models", "minicnn.inspection"),        # the training loop does not load the tools
    ("minicnn.models", "minicnn.gradcheck"),
    ("minicnn.models", "minicnn.plotting"),
    ("minicnn.plan", "minicnn.models"),
    ("minicnn.kernels.reference", "minicnn.layers"),
])
def test_the_layering_has_no_upward_import(module, must_not_import):
    assert not any(name.startswith(must_not_import) for name in imported_modules(module_file(module)))


def test_no_module_shadows_the_standard_library():
    names = {path.stem for path in PACKAGE.rglob("*.py")}
    assert not names & set(sys.stdlib_module_names) - {"__init__"}


def run_python(code, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env)


def test_python_starts_inside_the_package_folder():
    # with the working directory at minicnn/, its files come first on sys.path
    result = run_python("import numpy, inspect, json; print('ok')", cwd=PACKAGE)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_star_import_loads_no_matplotlib_and_binds_no_tool_module():
    code = ("import sys; from minicnn import *; import inspect; "
            "print('matplotlib' in sys.modules, inspect.__name__, 'plotting' in dir())")
    result = run_python(code, cwd=ROOT)
    assert result.stdout.split() == ["False", "inspect", "False"], result.stderr


def private_model_calls(path):
    """Calls such as model._train_step(...) or self.model._prepare(...): a private Model method."""
    tree = ast.parse(path.read_text())
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if "model" in owner_name.lower():
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    return calls


def test_no_module_outside_models_calls_a_private_model_method():
    files = [p for folder in ("minicnn", "benchmarks", "examples") for p in (ROOT / folder).rglob("*.py")
             if p != PACKAGE / "models.py"]
    calls = [call for path in files for call in private_model_calls(path)]
    assert calls == []
