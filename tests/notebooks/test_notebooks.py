"""Notebooks run top to bottom against the demo warehouse (their code cells, in order)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(notebook, demo_home, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(demo_home.home))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            code = compile("".join(cell["source"]), f"{notebook.name}[{index}]", "exec")
            exec(code, namespace)  # noqa: S102 - our own notebook, run as a test
