"""Schema inference, JSON round trip, costs, and every bad input named in the core issue."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

import mipcf
from mipcf import SchemaError
from mipcf.costs import make_cost

DATA = Path(__file__).resolve().parents[1] / "data"


def frame():
    rng = np.random.default_rng(0)
    n = 120
    return pd.DataFrame({
        "age": rng.integers(18, 70, n),
        "income": rng.gamma(3, 1000, n),
        "owner": rng.integers(0, 2, n),
        "city": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "job": rng.choice(["x", "y"], n).astype(object),
        "grade": rng.integers(0, 4, n),
    })


def test_inference_types_and_bounds():
    df = frame()
    s = mipcf.Schema.from_frame(df, ordinal={"grade": [0, 1, 2, 3]}, immutable=["owner"],
                                increase_only=["age"], bounds={"income": (0, 10000)})
    kinds = {f.name: f.type for f in s.features}
    assert kinds == {"age": "integer", "income": "real", "owner": "binary", "city": "categorical",
                     "job": "categorical", "grade": "ordinal"}
    assert s["age"].lower == df.age.min() and s["age"].upper == df.age.max()
    assert (s["income"].lower, s["income"].upper) == (0.0, 10000.0)
    assert s["city"].levels == ["a", "b", "c"]
    assert s["owner"].actionability == "immutable" and s["age"].actionability == "increase_only"


def test_json_round_trip(tmp_path):
    df = frame()
    s = mipcf.Schema.from_frame(df, ordinal={"grade": [0, 1, 2, 3]}, not_actionable=["job"])
    path = tmp_path / "s.json"
    s.to_json(path)
    back = mipcf.Schema.from_json(path)
    assert back.to_dict() == s.to_dict()
    assert json.loads(path.read_text())["format"] == "mipcf.schema/1"


@pytest.mark.parametrize("name", ["adult", "compas", "credit"])
def test_dataset_specifications_load(name):
    s = mipcf.Schema.from_json(DATA / f"{name}.json")
    assert len(s) > 3


def test_one_hot_group():
    df = pd.DataFrame({"h_rent": [1, 0, 0], "h_own": [0, 1, 0], "h_free": [0, 0, 1], "x": [1.0, 2.0, 3.0]})
    s = mipcf.Schema.from_frame(df, categorical={"h": ["h_rent", "h_own", "h_free"]})
    assert s["h"].levels == ["rent", "own", "free"] and s.columns == ["h_rent", "h_own", "h_free", "x"]
    bad = df.copy()
    bad.loc[0, "h_own"] = 1
    with pytest.raises(SchemaError, match="exactly one 1"):
        s.validate_frame(bad)


def test_contradicting_actionability_is_an_error():
    with pytest.raises(SchemaError, match="age"):
        mipcf.Schema.from_frame(frame(), immutable=["age"], increase_only=["age"])


def test_directed_categorical_is_an_error():
    with pytest.raises(SchemaError, match="city"):
        mipcf.Schema.from_frame(frame(), increase_only=["city"])


def test_unknown_option_column_is_named():
    with pytest.raises(SchemaError, match="salary"):
        mipcf.Schema.from_frame(frame(), immutable=["salary"])


# ---- costs ------------------------------------------------------------------------------

def test_costs_by_hand():
    df = frame()
    s = mipcf.Schema.from_frame(df, ordinal={"grade": [0, 1, 2, 3]})
    before = s.row_values(df.iloc[0])
    after = dict(before, income=before["income"] + 500.0, grade=(before["grade"] + 2) % 4,
                 city="b" if before["city"] != "b" else "c")
    span = s["income"].upper - s["income"].lower
    d_income, d_grade = 500.0 / span, abs(after["grade"] - before["grade"]) / 3
    assert make_cost(s, "l1").evaluate(s, before, after) == pytest.approx(d_income + d_grade + 1.0)
    assert make_cost(s, "l0").evaluate(s, before, after) == 3
    assert make_cost(s, "linf").evaluate(s, before, after) == pytest.approx(1.0)
    mix = make_cost(s, {"l0": 2.0, "l1": 0.5})
    assert mix.evaluate(s, before, after) == pytest.approx(6.0 + 0.5 * (d_income + d_grade + 1.0))
    mace = make_cost(s, "linf", normalize="mace")
    assert mace.evaluate(s, before, after) == pytest.approx(1.0 / len(s))
    w = make_cost(s, "l1", scale={"income": 0.01})
    assert w.evaluate(s, before, after) == pytest.approx(5.0 + abs(after["grade"] - before["grade"]) / 3 + 1.0)


def test_mad_scale_needs_data_and_matches_numpy():
    df = frame()
    s = mipcf.Schema.from_frame(df)
    with pytest.raises(ValueError, match="data"):
        make_cost(s, "l1", scale="mad")
    c = make_cost(s, "l1", scale="mad", data=df)
    v = df.income.to_numpy()
    assert c.weights["income"] == pytest.approx(1.0 / np.median(np.abs(v - np.median(v))))


@pytest.mark.parametrize("bad", ["l2", {"l3": 1}, {"l1": -1}, {"l1": 0}])
def test_bad_cost_is_named(bad):
    with pytest.raises(ValueError, match="cost"):
        make_cost(mipcf.Schema.from_frame(frame()), bad)


# ---- bad rows through the Python API -----------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.integers(0, 10, 200), "b": rng.normal(0, 1, 200),
                      "c": rng.choice(["u", "v", "w"], 200)})
    Xn = X.assign(c=X.c.map({"u": 0, "v": 1, "w": 2}))
    y = (Xn.a / 10 + Xn.b + 0.5 * Xn.c + rng.normal(0, 0.3, 200) > 1.2).astype(int)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xn, y)
    schema = mipcf.Schema.from_frame(Xn, categorical=["c"])
    return Xn, model, schema


def _row(fitted, **changes):
    X, _, _ = fitted
    row = X.iloc[[0]].copy()
    for k, v in changes.items():
        row[k] = row[k].astype(object) if isinstance(v, str) else row[k]
        row[k] = v
    return row


def test_missing_column_named(fitted):
    X, model, schema = fitted
    with pytest.raises(SchemaError, match="'b'"):
        mipcf.Recourse(model, schema).explain(X.iloc[[0]].drop(columns=["b"]))


def test_extra_column_named(fitted):
    X, model, schema = fitted
    with pytest.raises(SchemaError, match="extra_col"):
        mipcf.Recourse(model, schema).explain(X.iloc[[0]].assign(extra_col=1))


def test_nan_named(fitted):
    _, model, schema = fitted
    with pytest.raises(SchemaError, match="'b'.*NaN"):
        mipcf.Recourse(model, schema).explain(_row(fitted, b=np.nan))


def test_unknown_category_named(fitted):
    _, model, schema = fitted
    with pytest.raises(SchemaError, match="unknown category 7"):
        mipcf.Recourse(model, schema).explain(_row(fitted, c=7))


def test_out_of_bounds_named(fitted):
    _, model, schema = fitted
    with pytest.raises(SchemaError, match="'a'.*outside the bounds"):
        mipcf.Recourse(model, schema).explain(_row(fitted, a=99))


def test_wrong_dtype_named(fitted):
    _, model, schema = fitted
    with pytest.raises(SchemaError, match="'b' must be numeric"):
        mipcf.Recourse(model, schema).explain(_row(fitted, b="high"))


def test_fraction_in_integer_column_named(fitted):
    _, model, schema = fitted
    with pytest.raises(SchemaError, match="'a' is integer"):
        mipcf.Recourse(model, schema).explain(_row(fitted, a=2.5))


def test_unsupported_model_lists_supported(fitted):
    X, y = fitted[0], fitted[1].predict(fitted[0])
    with pytest.raises(TypeError, match="KNeighborsClassifier.*LogisticRegression"):
        mipcf.Recourse(KNeighborsClassifier().fit(X, y), fitted[2])


def test_contradictory_constraints_are_certified_infeasible():
    """Everything immutable but one increase-only feature already at its upper bound."""
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.integers(0, 10, 100), "b": rng.integers(0, 10, 100)})
    y = (X.a + X.b > 9).astype(int)
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X, immutable=["a"], increase_only=["b"])
    x = pd.DataFrame({"a": [0], "b": [9]})
    assert model.predict(x)[0] == 0
    ex = mipcf.Recourse(model, schema).explain(x, desired_class=1)
    assert ex.status == "infeasible" and ex.counterfactual is None and "no counterfactual" in ex.message


def test_bad_rows_do_not_lose_good_ones(fitted):
    X, model, schema = fitted
    batch = X[model.predict(X) == 0].head(3).copy()
    batch.iloc[1, batch.columns.get_loc("b")] = np.nan
    res = mipcf.Recourse(model, schema).explain_many(batch, desired_class=1)
    assert list(res.status) == ["optimal", "error", "optimal"]
    assert "'b'" in res.message.iloc[1]
