"""Benchmark datasets (benchmarks/datasets.py): MACE's preprocessing, balancing and split.

Tests that need the public raw files are skipped when they are not found (see
``benchmarks.datasets.resolve_data_dir``); the rest run anywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mipcf  # noqa: E402
from benchmarks.datasets import (  # noqa: E402
    EXPECTED,
    NAMES,
    REALISTIC,
    available,
    load_dataset,
    load_preprocessed,
    realistic_schema,
)

needs_data = pytest.mark.skipif(not available(), reason="raw Adult/COMPAS/Credit files not found "
                                "(set MIPCF_DATA_DIR to ../shared/data/raw)")
# Share of the favourable label before balancing (../shared/data/README.md).
LABEL_ONE_SHARE = {"adult": 0.248, "compas": 0.470, "credit": 0.779}


@pytest.fixture(scope="module")
def loaded():
    """Each dataset loaded once per module: (full X, full y, schema, Dataset)."""
    if not available():
        pytest.skip("raw data not found")
    return {n: (*load_preprocessed(n), load_dataset(n)) for n in NAMES}


def _feature_columns(feature: dict) -> list[str]:
    return list(feature["columns"].values()) if "columns" in feature else [feature["name"]]


# ---- without the raw data ------------------------------------------------------------------

def test_missing_file_names_file_and_option(tmp_path):
    (tmp_path / "adult.data").write_text("")
    with pytest.raises(FileNotFoundError, match=r"adult\.test.*--data-dir.*MIPCF_DATA_DIR"):
        load_dataset("adult", tmp_path)
    assert not available(tmp_path)


def test_unknown_name():
    with pytest.raises(ValueError, match="adult, compas, credit"):
        load_dataset("german")


@pytest.mark.parametrize("name", NAMES)
def test_realistic_schema_from_committed_file(name):
    schema = json.loads((ROOT / "data" / f"{name}.json").read_text())
    real = realistic_schema(name, schema)
    kinds = {f["name"]: f["actionability"] for f in real["features"]}
    for kind, features in REALISTIC[name].items():
        assert all(kinds[f] == kind for f in features)
    changed = {f for fs in REALISTIC[name].values() for f in fs}
    assert all(k == "actionable" for f, k in kinds.items() if f not in changed)
    assert all(f["actionability"] == "actionable" for f in schema["features"])  # not mutated
    mipcf.Schema.from_dict(real)


# ---- with the raw data ---------------------------------------------------------------------

@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_row_counts_and_label_share(loaded, name):
    X, y, _, _ = loaded[name]
    assert len(X) == len(y) == EXPECTED[name]["rows"]
    assert y.mean() == pytest.approx(LABEL_ONE_SHARE[name], abs=5e-4)


@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_train_test_sizes_and_balance(loaded, name):
    _, _, _, d = loaded[name]
    assert (len(d.X_train), len(d.X_test)) == (EXPECTED[name]["train"], EXPECTED[name]["test"])
    assert (len(d.y_train), len(d.y_test)) == (len(d.X_train), len(d.X_test))
    y = np.concatenate([d.y_train, d.y_test])
    assert np.sum(y == 0) == np.sum(y == 1) and len(y) % 500 == 0  # 50/50, 250-multiples
    assert not set(d.X_train.index) & set(d.X_test.index)
    assert d.favourable == (0 if name == "compas" else 1)


@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_columns_match_schema(loaded, name):
    X, _, schema, d = loaded[name]
    assert [c for f in schema["features"] for c in _feature_columns(f)] == list(X.columns)
    assert list(d.X_train.columns) == list(d.X_test.columns) == list(X.columns)
    assert all(pd.api.types.is_integer_dtype(t) for t in X.dtypes)
    for f in schema["features"]:
        if f["type"] == "categorical":
            block = X[_feature_columns(f)]
            assert block.isin([0, 1]).all().all() and (block.sum(axis=1) == 1).all()
            assert all(c == f"{f['name']}_{lv}" for lv, c in f["columns"].items())
        elif f["type"] == "ordinal":
            assert f["levels"] == list(range(len(f["labels"])))
            assert X[f["name"]].isin(f["levels"]).all()
    mipcf.Schema.from_dict(schema).validate_frame(d.X_test)


@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_bounds_are_data_range(loaded, name):
    X, _, schema, _ = loaded[name]
    for f in schema["features"]:
        if "lower" in f:
            assert (f["lower"], f["upper"]) == (X[f["name"]].min(), X[f["name"]].max())
        assert f["actionability"] == "actionable"


@needs_data
def test_adult_education_order(loaded):
    """education_level is ordered by attainment: one level per education_num, never decreasing."""
    X, _, schema, _ = loaded["adult"]
    edu = next(f for f in schema["features"] if f["name"] == "education_level")
    assert edu["labels"][0] == "prim-middle-school" and edu["labels"][-1] == "Doctorate"
    levels = X.groupby("education_num")["education_level"].agg(["min", "max"])
    assert len(edu["levels"]) == 10 and (levels["min"] == levels["max"]).all()
    assert levels["min"].is_monotonic_increasing
    assert X["sex"].mean() == pytest.approx(0.675, abs=0.01)  # 1 = Male


@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_deterministic(loaded, name):
    first, again = loaded[name][3], load_dataset(name)
    pd.testing.assert_frame_equal(again.X_train, first.X_train)
    pd.testing.assert_frame_equal(again.X_test, first.X_test)
    assert np.array_equal(again.y_train, first.y_train) and np.array_equal(again.y_test, first.y_test)
    assert again.schema == first.schema


@needs_data
def test_sklearn_trains_on_frames(loaded):
    d = loaded["adult"][3]
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(d.X_train, d.y_train)
    assert model.score(d.X_test, d.y_test) > 0.75


@needs_data
@pytest.mark.parametrize("name", NAMES)
def test_committed_schema_files_are_current(loaded, name):
    assert json.loads((ROOT / "data" / f"{name}.json").read_text()) == loaded[name][2]
