"""The ReLU scaling study's runner on its smallest configuration (the study itself is a benchmark)."""

import pandas as pd
import pytest

from benchmarks import datasets
from benchmarks.relu_scaling import configs, main

pytestmark = pytest.mark.skipif(not datasets.available(name="adult"), reason="raw Adult data not found")


def test_configs_cover_depths_at_width_10_then_widths_at_depth_2():
    assert configs((1, 2, 3), (10, 20)) == [(10,), (10, 10), (10, 10, 10), (20, 20)]


def test_study_runs_verifies_and_resumes(tmp_path, capsys):
    out = tmp_path / "relu.md"
    args = ["--n", "2", "--time-limit", "30", "--depths", "1", "--widths", "", "--bounds", "interval",
            "--out", str(out)]
    assert main(args) == 0
    rows = pd.read_csv(out.with_suffix(".csv"), dtype={"hidden": str})
    assert list(rows.hidden) == ["10"] and rows["valid %"].iloc[0] == 100 and rows["invalid found"].iloc[0] == 0
    assert "| 10 | interval |" in out.read_text()
    capsys.readouterr()
    assert main(args) == 0  # a rerun finds the configuration done and trains nothing
    assert "optimal" not in capsys.readouterr().err
    assert len(pd.read_csv(out.with_suffix(".csv"))) == 1


def test_an_interrupted_configuration_resumes_from_its_last_person(tmp_path):
    from benchmarks.relu_scaling import _journal_path

    out = tmp_path / "relu.md"
    journal = _journal_path(out, (10,), "interval", 2, 30)
    # a first person "already solved" with a time no real solve here takes: the rerun must keep it
    pd.DataFrame([{"status": "optimal", "seconds": 1000.0, "nodes": 7, "cost": 0.1, "valid": True,
                   "fixed": 0}]).to_csv(journal, index=False)
    assert main(["--n", "2", "--time-limit", "30", "--depths", "1", "--widths", "", "--bounds", "interval",
                 "--out", str(out)]) == 0
    row = pd.read_csv(out.with_suffix(".csv"), dtype={"hidden": str}).iloc[0]
    assert row["n"] == 2 and 500 < row["median s"] < 530 and row["valid %"] == 100
    assert not journal.exists()
