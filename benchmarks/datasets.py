"""Adult, COMPAS and Credit, loaded and preprocessed as in the MACE benchmark.

The raw files are the public ones described in ``../shared/data/README.md``; they are read
from a directory (``data_dir`` argument, else ``$MIPCF_DATA_DIR``, else the sibling
``../shared/data/raw``) and never copied into the repository.

Every dataset becomes a numeric frame that plain scikit-learn models train on directly:

* binary features: one 0/1 int column (what 1 means is in :data:`ONE_MEANS`);
* integer features: one int column;
* ordinal features: one int column of codes ``0..K-1`` (the schema's ``labels`` name them);
* categorical features: one-hot 0/1 int columns named ``<feature>_<level>``, levels sorted.

and a schema dict in the project's ``mipcf.schema/1`` format describes the columns, with
bounds taken from the full preprocessed dataset (before balancing) and every feature
``actionable`` (MACE's unconstrained scenario; :func:`realistic_schema` gives the other one).

Preprocessing choices (MACE's, see ``_data_main/`` of github.com/amirhk/mace):

* **Adult** -- adult.data + adult.test (junk first line skipped, trailing ``.`` of the test
  labels removed), rows with ``?`` dropped (45,222 left), label ``>50K`` = 1 (favourable);
  race and fnlwgt dropped; native country -> 1 = United-States, 0 = elsewhere. MACE merges
  the 16 education values into 10 levels (Preschool..8th -> "prim-middle-school",
  9th..12th -> "high-school"). MACE numbers those levels 1..10 in an order that is not the
  order of attainment (Doctorate = 7 < Assoc-voc = 8); we keep its 10 groups but order them
  by ``education-num``, so that "increase only" means "more education"::

      0 prim-middle-school  (Preschool, 1st-4th, 5th-6th, 7th-8th; education-num 1-4)
      1 high-school         (9th, 10th, 11th, 12th; 5-8)
      2 HS-grad             (9)        6 Bachelors    (13)
      3 Some-college        (10)       7 Masters      (14)
      4 Assoc-voc           (11)       8 Prof-school  (15)
      5 Assoc-acdm          (12)       9 Doctorate    (16)

  ``education_level`` is thus a function of ``education_num``; like MACE we keep both.
* **COMPAS** -- ProPublica's filters (|days_b_screening_arrest| <= 30, is_recid != -1,
  c_charge_degree != 'O', a score_text, race African-American or Caucasian): 5,278 rows;
  label two_year_recid, where 1 (re-offence) is the *unfavourable* outcome (favourable = 0).
* **Credit** -- ``credit_processed.csv`` as MACE wrote it (29,623 rows; money in USD rounded
  to tens); label "NoDefaultNextMonth (label)", favourable = 1. AgeGroup (1..4) and
  EducationLevel (1..4) become ordinal codes 0..3.

Balancing and split (MACE's ``getBalancedDataFrame`` then ``train_test_split``): each class
is undersampled to the minority count rounded down to a multiple of 250
(``Series.sample(n, random_state=54321)``, class 0 first), the result shuffled with
``sample(frac=1, random_state=54321)``, then split with
``train_test_split(train_size=0.7, random_state=54321)``. Row labels (the index) are the row
numbers in the full preprocessed dataset, so every row can be traced back.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

__all__ = [
    "DEFAULT_DATA_DIR", "NAMES", "RAW_FILES", "EXPECTED", "ONE_MEANS", "REALISTIC", "SEED",
    "Dataset", "resolve_data_dir", "available", "load_preprocessed", "load_dataset",
    "realistic_schema", "write_schema_files",
]

SEED = 54321
TRAIN_SIZE = 0.7
BALANCE_MULTIPLE = 250
SCHEMA_FORMAT = "mipcf.schema/1"
_REPO = Path(__file__).resolve().parents[1]
_SIBLING_RAW = _REPO.parent / "shared" / "data" / "raw"


def _default_data_dir() -> Path | None:
    """``$MIPCF_DATA_DIR`` if set, else the sibling shared raw-data folder if it exists."""
    env = os.environ.get("MIPCF_DATA_DIR")
    if env:
        return Path(env)
    return _SIBLING_RAW if _SIBLING_RAW.is_dir() else None


DEFAULT_DATA_DIR: Path | None = _default_data_dir()

NAMES = ("adult", "compas", "credit")
RAW_FILES = {
    "adult": ("adult.data", "adult.test"),
    "compas": ("compas-scores-two-years.csv",),
    "credit": ("credit_processed.csv",),
}
# Sizes the MACE protocol produces (../shared/data/README.md). Adult: 2 x 11,000 rows, and
# floor(0.7 * 22000) is 15,399 in floating point, hence the uneven-looking split.
EXPECTED = {
    "adult": {"rows": 45_222, "train": 15_399, "test": 6_601},
    "compas": {"rows": 5_278, "train": 3_150, "test": 1_350},
    "credit": {"rows": 29_623, "train": 9_100, "test": 3_900},
}
# What the value 1 of each binary feature means.
ONE_MEANS = {
    "adult": {"sex": "Male", "native_country": "United-States"},
    "compas": {"race": "African-American", "sex": "Male", "charge_degree": "F (felony)"},
    "credit": {"isMale": "male", "isMarried": "married",
               "HasHistoryOfOverduePayments": "at least one month overdue in the last six"},
}
# MACE's "realistic" actionability scenario (everything else stays actionable).
REALISTIC = {
    "adult": {"immutable": ["sex", "native_country"],
              "increase_only": ["age", "education_num", "education_level"]},
    "compas": {"immutable": ["race", "sex"], "increase_only": ["age_group"]},
    "credit": {"immutable": ["isMale"], "increase_only": ["AgeGroup", "EducationLevel"]},
}


@dataclass
class Dataset:
    """One balanced, split benchmark dataset.

    ``favourable`` is the label value of the good outcome (the class recourse aims for):
    1 for Adult and Credit, 0 for COMPAS.
    """

    name: str
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    schema: dict
    favourable: int


# ---- locating the raw files --------------------------------------------------------------

def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The directory to read: ``data_dir``, else ``$MIPCF_DATA_DIR`` (read now), else the
    sibling ``../shared/data/raw`` if present, else None."""
    return Path(data_dir) if data_dir is not None else _default_data_dir()


def available(data_dir: str | Path | None = None, name: str | None = None) -> bool:
    """True if the raw files of ``name`` (default: all three datasets) are readable."""
    root = resolve_data_dir(data_dir)
    names = NAMES if name is None else (_check_name(name),)
    return root is not None and all((root / f).is_file() for n in names for f in RAW_FILES[n])


def _raw_paths(name: str, data_dir: str | Path | None) -> list[Path]:
    """Paths of ``name``'s raw files, or a FileNotFoundError saying how to point at them."""
    root = resolve_data_dir(data_dir)
    hint = ("pass --data-dir DIR (data_dir=DIR in Python) or set MIPCF_DATA_DIR to the folder "
            "holding the public raw files described in ../shared/data/README.md")
    if root is None:
        raise FileNotFoundError(f"{name}: no data directory; {hint}")
    paths = [root / f for f in RAW_FILES[name]]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{name}: raw file {p.name!r} not found in {root}; {hint}")
    return paths


def _check_name(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return name


# ---- feature specifications --------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """How one feature is encoded; ``levels`` gives the order of an ordinal's labels."""

    name: str
    type: str  # binary | integer | ordinal | categorical
    levels: tuple = ()


# MACE's education groups, ordered by attainment (see the module docstring).
ADULT_EDUCATION = ("prim-middle-school", "high-school", "HS-grad", "Some-college", "Assoc-voc",
                   "Assoc-acdm", "Bachelors", "Masters", "Prof-school", "Doctorate")
_EDUCATION_GROUP = {**dict.fromkeys(("Preschool", "1st-4th", "5th-6th", "7th-8th"), "prim-middle-school"),
                    **dict.fromkeys(("9th", "10th", "11th", "12th"), "high-school")}
COMPAS_AGE = ("Less than 25", "25 - 45", "Greater than 45")
# Labels of MACE's credit codes 1..4 (process_credit_data.py); AGE 40 falls in group 3.
CREDIT_AGE = ("< 25", "25 - 39", "40 - 59", ">= 60")
CREDIT_EDUCATION = ("other", "high school", "university", "graduate school")

_SPECS = {
    "adult": (
        _Spec("sex", "binary"), _Spec("age", "integer"), _Spec("native_country", "binary"),
        _Spec("workclass", "categorical"), _Spec("education_num", "integer"),
        _Spec("education_level", "ordinal", ADULT_EDUCATION), _Spec("marital_status", "categorical"),
        _Spec("occupation", "categorical"), _Spec("relationship", "categorical"),
        _Spec("capital_gain", "integer"), _Spec("capital_loss", "integer"),
        _Spec("hours_per_week", "integer"),
    ),
    "compas": (
        _Spec("age_group", "ordinal", COMPAS_AGE), _Spec("race", "binary"), _Spec("sex", "binary"),
        _Spec("priors_count", "integer"), _Spec("charge_degree", "binary"),
    ),
    "credit": (
        _Spec("isMale", "binary"), _Spec("isMarried", "binary"),
        _Spec("AgeGroup", "ordinal", CREDIT_AGE), _Spec("EducationLevel", "ordinal", CREDIT_EDUCATION),
        *(_Spec(c, "integer") for c in (
            "MaxBillAmountOverLast6Months", "MaxPaymentAmountOverLast6Months",
            "MonthsWithZeroBalanceOverLast6Months", "MonthsWithLowSpendingOverLast6Months",
            "MonthsWithHighSpendingOverLast6Months", "MostRecentBillAmount",
            "MostRecentPaymentAmount", "TotalOverdueCounts", "TotalMonthsOverdue")),
        _Spec("HasHistoryOfOverduePayments", "binary"),
    ),
}
_FAVOURABLE = {"adult": 1, "compas": 0, "credit": 1}


# ---- reading each dataset into one column per feature (labels, not yet codes) ------------

_ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                  "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                  "hours_per_week", "native_country", "income")


def _read_adult(paths: list[Path]) -> tuple[pd.DataFrame, pd.Series]:
    """adult.data + adult.test without '?' rows; label 1 = income >50K."""
    parts = [pd.read_csv(p, header=None, names=_ADULT_COLUMNS, skiprows=skip, dtype=str,
                         skipinitialspace=True)
             for p, skip in zip(paths, (0, 1))]  # adult.test opens with a junk line
    raw = pd.concat(parts, ignore_index=True).apply(lambda s: s.str.strip())
    raw = raw[~(raw == "?").any(axis=1)].reset_index(drop=True)
    y = (raw["income"].str.rstrip(".") == ">50K").astype("int64")
    ints = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    feats = raw[ints].astype("int64").assign(
        sex=(raw["sex"] == "Male").astype("int64"),
        native_country=(raw["native_country"] == "United-States").astype("int64"),
        education_level=raw["education"].replace(_EDUCATION_GROUP),
        workclass=raw["workclass"], marital_status=raw["marital_status"],
        occupation=raw["occupation"], relationship=raw["relationship"],
    )
    return feats, y


def _read_compas(paths: list[Path]) -> tuple[pd.DataFrame, pd.Series]:
    """ProPublica's two-year-recidivism filters; label 1 = re-offence (unfavourable)."""
    raw = pd.read_csv(paths[0])
    # score_text 'NA' / 'N/A' are read as NaN by pandas, so notna() covers both spellings.
    keep = (raw["days_b_screening_arrest"].between(-30, 30) & (raw["is_recid"] != -1)
            & (raw["c_charge_degree"] != "O") & raw["score_text"].notna()
            & ~raw["score_text"].isin(["NA", "N/A"])
            & raw["race"].isin(["African-American", "Caucasian"]))
    raw = raw[keep].reset_index(drop=True)
    feats = pd.DataFrame({
        "age_group": raw["age_cat"],
        "race": (raw["race"] == "African-American").astype("int64"),
        "sex": (raw["sex"] == "Male").astype("int64"),
        "priors_count": raw["priors_count"].astype("int64"),
        "charge_degree": (raw["c_charge_degree"] == "F").astype("int64"),
    })
    return feats, raw["two_year_recid"].astype("int64")


def _read_credit(paths: list[Path]) -> tuple[pd.DataFrame, pd.Series]:
    """MACE's processed credit file; ordinal codes 1..4 turned into their labels."""
    raw = pd.read_csv(paths[0])
    y = raw.pop("NoDefaultNextMonth (label)").astype("int64")
    feats = raw.assign(
        AgeGroup=raw["AgeGroup"].map(dict(enumerate(CREDIT_AGE, start=1))),
        EducationLevel=raw["EducationLevel"].map(dict(enumerate(CREDIT_EDUCATION, start=1))),
    )
    return feats, y


_READERS: dict[str, Callable[[list[Path]], tuple[pd.DataFrame, pd.Series]]] = {
    "adult": _read_adult, "compas": _read_compas, "credit": _read_credit,
}


# ---- encoding into a numeric frame + schema ----------------------------------------------

def _encode_feature(spec: _Spec, s: pd.Series) -> tuple[pd.DataFrame, dict]:
    """Numeric column(s) for one feature and its schema entry (bounds from ``s`` itself)."""
    if spec.type in ("binary", "integer"):
        col = s.astype("int64")
        entry = {"name": spec.name, "type": spec.type, "lower": int(col.min()), "upper": int(col.max())}
        return col.to_frame(spec.name), entry
    if spec.type == "ordinal":
        codes = s.map({label: i for i, label in enumerate(spec.levels)})
        if codes.isna().any():
            raise ValueError(f"{spec.name}: values {sorted(set(s[codes.isna()]))} are not among "
                             f"the ordinal levels {list(spec.levels)}")
        entry = {"name": spec.name, "type": "ordinal", "levels": list(range(len(spec.levels))),
                 "labels": list(spec.levels)}
        return codes.astype("int64").to_frame(spec.name), entry
    levels = sorted(s.unique().tolist())  # categorical: levels present, alphabetical (as MACE)
    columns = {lv: f"{spec.name}_{lv}" for lv in levels}
    onehot = pd.DataFrame({columns[lv]: (s == lv).astype("int64") for lv in levels}, index=s.index)
    return onehot, {"name": spec.name, "type": "categorical", "levels": levels, "columns": columns}


def _encode(name: str, feats: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The numeric frame and the unconstrained (all actionable) schema dict."""
    blocks, entries = [], []
    for spec in _SPECS[name]:
        block, entry = _encode_feature(spec, feats[spec.name])
        blocks.append(block)
        entries.append({**entry, "actionability": "actionable"})
    return pd.concat(blocks, axis=1), {"format": SCHEMA_FORMAT, "features": entries}


def load_preprocessed(name: str, data_dir: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The full preprocessed dataset (before balancing): ``X, y, schema``.

    Raises ValueError if the row count differs from the MACE protocol's (:data:`EXPECTED`):
    a different file would make the benchmark incomparable with the published numbers.
    """
    _check_name(name)
    feats, y = _READERS[name](_raw_paths(name, data_dir))
    if len(feats) != EXPECTED[name]["rows"]:
        raise ValueError(f"{name}: {len(feats)} rows after preprocessing, expected "
                         f"{EXPECTED[name]['rows']}; are these the raw files of ../shared/data/README.md?")
    X, schema = _encode(name, feats)
    return X, y.to_numpy(), schema


# ---- balancing and splitting -------------------------------------------------------------

def _balanced_index(y: pd.Series, seed: int = SEED) -> pd.Index:
    """MACE's undersampling: each class down to min count // 250 * 250, then shuffled."""
    n = int(y.value_counts().min()) // BALANCE_MULTIPLE * BALANCE_MULTIPLE
    picked = pd.concat([y[y == c].sample(n, random_state=seed) for c in sorted(y.unique())])
    return picked.sample(frac=1, random_state=seed).index


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load ``name`` ("adult", "compas" or "credit"), balanced and split per MACE."""
    X, y, schema = load_preprocessed(name, data_dir)
    labels = pd.Series(y, index=X.index)
    idx = _balanced_index(labels)
    X_train, X_test, y_train, y_test = train_test_split(
        X.loc[idx], labels.loc[idx], train_size=TRAIN_SIZE, random_state=SEED)
    return Dataset(name=name, X_train=X_train, y_train=y_train.to_numpy(), X_test=X_test,
                   y_test=y_test.to_numpy(), schema=schema, favourable=_FAVOURABLE[name])


# ---- actionability scenarios and schema files --------------------------------------------

def realistic_schema(name: str, schema: dict) -> dict:
    """A copy of ``schema`` with MACE's realistic actionability (:data:`REALISTIC`)."""
    out = copy.deepcopy(schema)
    by_name = {f["name"]: f for f in out["features"]}
    for kind, names in REALISTIC[_check_name(name)].items():
        for feature in names:
            if feature not in by_name:
                raise KeyError(f"{name}: schema has no feature {feature!r} (needed for {kind})")
            by_name[feature]["actionability"] = kind
    return out


def write_schema_files(out_dir: str | Path, data_dir: str | Path | None = None) -> list[Path]:
    """Write the unconstrained schemas as ``<out_dir>/<name>.json``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NAMES:
        _, _, schema = load_preprocessed(name, data_dir)
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":  # python -m benchmarks.datasets [OUT_DIR]: refresh data/*.json
    import sys

    for p in write_schema_files(sys.argv[1] if len(sys.argv) > 1 else _REPO / "data"):
        print(p)
