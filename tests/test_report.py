"""docs/results.md and the README's results table are what benchmarks/report.py makes of
benchmarks/results/*.json (under a second: JSON and text only)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_results_are_current(report):
    assert report.main(["--check"]) == 0, "run `python benchmarks/report.py` and commit"


def test_every_result_file_is_in_the_results_page(report):
    page = report.render_results()
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        assert f"`{path.name}`" in page, path.name


def test_check_fails_on_a_stale_page(report, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "results.md"
    stale.write_text(report.render_results().replace("64.5", "65.5", 1), encoding="utf8")
    monkeypatch.setattr(report, "RESULTS_MD", stale)
    assert report.main(["--check"]) == 1
    assert "docs" not in str(stale) and "results.md" in capsys.readouterr().err
    assert "65.5" in stale.read_text(encoding="utf8")  # --check writes nothing
