"""Smoke test of the benchmark runner on a small slice (the full run is not a unit test)."""

import numpy as np
import pandas as pd
import pytest

from benchmarks import datasets
from benchmarks.run import Config, main, run

pytestmark = pytest.mark.skipif(not datasets.available(name="compas"), reason="raw COMPAS data not found")


def test_quick_slice_writes_report_and_is_never_beaten(tmp_path):
    cfg = Config(datasets=["compas"], models=["lr", "dt"], norms=["l0", "l1"], scenarios=["unconstrained", "realistic"],
                 peers=["mo"], n=4, time_limit=60, out=tmp_path)
    rows = run(cfg, log=lambda m: None)
    ours = rows[rows.method == "mipcf"]
    assert len(ours) == 2 * 2 * 2 * 4
    assert ours.valid.all() and (ours.status == "optimal").all()
    # every MO answer is a feasible point, so a proven optimum can never be farther away
    mo = rows[rows.method == "mo"].set_index(["model", "scenario", "norm", "individual"]).distance
    opt = ours.set_index(["model", "scenario", "norm", "individual"]).distance
    common = opt.index.intersection(mo.dropna().index)
    assert len(common) > 0 and (opt[common] <= mo[common] + 1e-9).all()
    text = (tmp_path / "report.md").read_text()
    assert "| compas | dt | realistic | l1 | mipcf | 4 |" in text
    mipcf_dt = [ln for ln in text.splitlines() if ln.startswith("| compas | dt | realistic | l1 | mipcf |")]
    assert "MACE mean s" in text and mipcf_dt[0].endswith("| 9-35 |")  # MACE's time beside ours
    assert (tmp_path / "rows.csv").exists()


def test_cli_rejects_missing_data_dir(tmp_path, capsys):
    assert main(["run", "--quick", "--data-dir", str(tmp_path / "nowhere")]) == 2


def test_report_merges_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, model in ((a, "lr"), (b, "dt")):
        run(Config(datasets=["compas"], models=[model], norms=["l1"], scenarios=["unconstrained"], peers=["mo"],
                   n=2, time_limit=60, out=out), log=lambda m: None)
    assert main(["report", str(a / "rows.csv"), str(b / "rows.csv"), str(a / "rows.csv"),
                 "--out", str(tmp_path / "m"), "--note", "merged"]) == 0
    text = (tmp_path / "m" / "report.md").read_text()
    assert "merged" in text and "| compas | lr |" in text and "| compas | dt |" in text
    assert "| compas | lr | unconstrained | l1 | mipcf | 2 |" in text  # a rerun replaces, not adds


def test_quick_mode_cli_on_one_cell(tmp_path):
    """--quick's own settings (20 people, peers on 5, 3 s limit, a worker per core) through
    the CLI, on one cell so that it stays a unit test; the whole quick run is timed in the
    benchmark report, not here."""
    out = tmp_path / "q"
    assert main(["run", "--quick", "--datasets", "compas", "--models", "lr", "--norms", "l1",
                 "--scenarios", "realistic", "--peers", "mo", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "rows.csv")
    ours = rows[rows.method == "mipcf"]
    assert len(ours) == 20 and ours.valid.all() and (ours.status == "optimal").all()
    assert sorted(ours.individual) == list(range(20))
    assert "time limit 3 s" in (out / "report.md").read_text()


def test_skip_continues_a_cell(tmp_path):
    """--skip K runs the people after the first K, numbered as in the whole cell."""
    kw = dict(datasets=["compas"], models=["dt"], norms=["l1"], scenarios=["unconstrained"], peers=["mo"],
              time_limit=60)
    whole = run(Config(n=4, out=tmp_path / "w", **kw), log=lambda m: None)
    tail = run(Config(n=2, skip=2, out=tmp_path / "t", **kw), log=lambda m: None)
    for method in ("mipcf", "mo"):
        w = whole[whole.method == method].set_index("individual").distance
        t = tail[tail.method == method].set_index("individual").distance
        assert list(t.index) == [2, 3]
        assert np.allclose(t.values, w.loc[[2, 3]].values)


def test_peers_only_run_merges_with_an_earlier_mipcf_run(tmp_path):
    """--peers-only reruns the peers on more people without re-solving; merged, the report
    keeps the earlier mipcf rows and still checks that no peer beats them."""
    kw = dict(datasets=["compas"], models=["dt"], norms=["l1"], scenarios=["unconstrained"], peers=["mo"],
              time_limit=60)
    run(Config(n=2, out=tmp_path / "a", **kw), log=lambda m: None)
    assert main(["run", "--peers-only", "--n", "3", "--datasets", "compas", "--models", "dt", "--norms", "l1",
                 "--scenarios", "unconstrained", "--peers", "mo", "--out", str(tmp_path / "b")]) == 0
    peers = pd.read_csv(tmp_path / "b" / "rows.csv")
    assert set(peers.method) == {"mo"} and sorted(peers.individual) == [0, 1, 2]
    assert main(["report", str(tmp_path / "a" / "rows.csv"), str(tmp_path / "b" / "rows.csv"),
                 "--out", str(tmp_path / "m")]) == 0
    text = (tmp_path / "m" / "report.md").read_text()
    assert "| compas | dt | unconstrained | l1 | mipcf | 2 |" in text
    assert "| compas | dt | unconstrained | l1 | mo | 3 |" in text
