"""The layers declared in pyproject.toml ([tool.importlinter]) hold, and breaking one fails.

``lint-imports`` runs in CI; these tests make sure it checks what it claims to: the project as
it is passes, and a copy of it with one forbidden import (the model importing a progress bar,
the consumer process importing the trainer's) does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streamrec", "consumers", "trainer")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's packages shadow the installed ones.
    environment = {**os.environ, "PYTHONPATH": str(project)}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The packages and pyproject.toml, without data files or caches."""
    ignored = shutil.ignore_patterns("__pycache__", "bundled", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignored)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_project_keeps_its_layers(project_copy: Path) -> None:
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("streamrec/model/voting.py", "import tqdm", "The model imports no I/O"),
        ("streamrec/model/voting.py", "import streamrec.storage", "The model imports no I/O"),
        ("consumers/dead_letter_publishing.py", "import trainer.schedule", "are independent"),
        ("streamrec/storage/codecs.py", "import streamrec.services.batch", "Storage imports"),
        ("streamrec/services/batch.py", "import consumers.dead_letter_publishing", "Layers"),
    ],
)
def test_a_forbidden_import_fails(
    project_copy: Path, module: str, forbidden_import: str, contract: str
) -> None:
    source = project_copy / module
    source.write_text(source.read_text() + f"\n{forbidden_import}  # noqa\n")
    result = lint_imports(project_copy)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
