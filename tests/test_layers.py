"""The import contracts in pyproject.toml: pages -> core -> models, and no Streamlit in core or models."""
import pytest

from tests.conftest import ROOT


def test_imports_flow_one_way(monkeypatch):
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is not installed")
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0
