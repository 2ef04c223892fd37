"""The import contracts in pyproject.toml: pages -> core -> models, and no Streamlit in core or models."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_imports_flow_one_way():
    pytest.importorskip("importlinter", reason="import-linter is not installed")
    # In its own process: import-linter reconfigures logging, which would hide later tests' records.
    lint = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(config_filename='pyproject.toml'))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
