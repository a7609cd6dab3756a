"""Feature schema: types, bounds, actionability, and validation of incoming rows."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

TYPES = ("real", "integer", "binary", "categorical", "ordinal")
ACTIONABILITY = ("actionable", "increase_only", "decrease_only", "not_actionable", "immutable")
FORMAT = "mipcf.schema/1"


class SchemaError(ValueError):
    """The schema itself, or data checked against it, is invalid; the message names the feature."""


@dataclass
class Feature:
    """One feature as the user knows it.

    Numeric features (real / integer / binary) are one frame column with ``lower``/``upper``
    bounds. Categorical and ordinal features take one of ``levels`` (ordinal: in order); they
    live in one frame column holding the level, or, when ``columns`` maps each level to a
    frame column, in a one-hot group of 0/1 columns.
    """

    name: str
    type: str
    lower: float | None = None
    upper: float | None = None
    levels: list[Any] | None = None
    actionability: str = "actionable"
    columns: dict[Any, str] | None = None
    labels: list[str] | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise SchemaError(f"feature {self.name!r}: type {self.type!r} is not one of {TYPES}")
        if self.actionability not in ACTIONABILITY:
            raise SchemaError(f"feature {self.name!r}: actionability {self.actionability!r} "
                              f"is not one of {ACTIONABILITY}")
        if self.type == "binary":
            self.lower = 0.0 if self.lower is None else self.lower
            self.upper = 1.0 if self.upper is None else self.upper
        if self.is_numeric:
            if self.lower is None or self.upper is None:
                raise SchemaError(f"feature {self.name!r}: numeric features need lower and upper bounds")
            self.lower, self.upper = float(self.lower), float(self.upper)
            if not (math.isfinite(self.lower) and math.isfinite(self.upper)) or self.lower > self.upper:
                raise SchemaError(f"feature {self.name!r}: bounds [{self.lower}, {self.upper}] are not a "
                                  "finite interval")
            if self.type in ("integer", "binary"):
                self.lower, self.upper = float(math.ceil(self.lower)), float(math.floor(self.upper))
        else:
            if not self.levels:
                raise SchemaError(f"feature {self.name!r}: {self.type} features need levels")
            if len(set(map(_key, self.levels))) != len(self.levels):
                raise SchemaError(f"feature {self.name!r}: levels repeat")
            if self.type == "categorical" and self.actionability in ("increase_only", "decrease_only"):
                raise SchemaError(f"feature {self.name!r}: a categorical feature has no direction; "
                                  "use ordinal for ordered levels")
            if self.columns is not None:
                missing = [lv for lv in self.levels if lv not in self.columns]
                if missing:
                    raise SchemaError(f"feature {self.name!r}: no one-hot column for levels {missing}")

    @property
    def is_numeric(self) -> bool:
        return self.type in ("real", "integer", "binary")

    @property
    def frame_columns(self) -> list[str]:
        if self.columns is not None:
            return [self.columns[lv] for lv in self.levels]
        return [self.name]

    def level_index(self, value: Any) -> int:
        for i, lv in enumerate(self.levels):
            if _key(lv) == _key(value):
                return i
        raise SchemaError(f"feature {self.name!r}: unknown category {_plain(value)!r}; "
                          f"known levels are {self.levels}")

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.is_numeric:
            d.update(lower=_plain(self.lower), upper=_plain(self.upper))
        else:
            d["levels"] = [_plain(v) for v in self.levels]
            if self.labels:
                d["labels"] = list(self.labels)
            if self.columns is not None:
                d["columns"] = {str(_plain(k)): v for k, v in self.columns.items()}
        d["actionability"] = self.actionability
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Feature":
        unknown = set(d) - {"name", "type", "lower", "upper", "levels", "actionability", "columns", "labels"}
        if unknown:
            raise SchemaError(f"feature {d.get('name')!r}: unknown keys {sorted(unknown)}")
        columns = d.get("columns")
        levels = d.get("levels")
        if columns is not None and levels is not None:
            by_str = {str(k): v for k, v in columns.items()}
            columns = {lv: by_str[str(lv)] for lv in levels if str(lv) in by_str}
        return cls(name=d["name"], type=d["type"], lower=d.get("lower"), upper=d.get("upper"),
                   levels=levels, actionability=d.get("actionability", "actionable"),
                   columns=columns, labels=d.get("labels"))


def dump_json(d: Mapping[str, Any], path: str | Path | None = None) -> str:
    """``d`` as indented JSON text, also written to ``path`` when given (the to_json of
    schemas, SCMs and audits)."""
    text = json.dumps(d, indent=2)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text


def _key(v: Any) -> Any:
    """Comparable key so that 1, 1.0 and np.int64(1) name the same level."""
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return v


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


LINK_KINDS = ("implies", "moves_with")


@dataclass(frozen=True)
class Link:
    """A constraint between two features' changes.

    ``kind="implies"``: if ``source`` changes, ``target`` must change too (for a real
    ``target``, by at least ``min_change``; integer, binary, ordinal and categorical targets
    change by at least one step). ``kind="moves_with"``: ``target`` moves with ``source``,
    ``x'_target - x_target = factor * (x'_source - x_source)`` (numeric features; a
    ``not_actionable`` target may move this way). One-hot groups and ordinal levels are
    consistent by construction and need no link.
    """

    source: str
    target: str
    kind: str = "implies"
    factor: float = 1.0
    min_change: float | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"source": self.source, "target": self.target, "kind": self.kind}
        if self.kind == "moves_with":
            d["factor"] = _plain(self.factor)
        if self.min_change is not None:
            d["min_change"] = _plain(self.min_change)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Link":
        unknown = set(d) - {"source", "target", "kind", "factor", "min_change"}
        if unknown:
            raise SchemaError(f"link {d.get('source')!r} -> {d.get('target')!r}: unknown keys {sorted(unknown)}")
        return cls(d["source"], d["target"], d.get("kind", "implies"), float(d.get("factor", 1.0)),
                   None if d.get("min_change") is None else float(d["min_change"]))


def _check_link(link: Link, by_name: Mapping[str, "Feature"]) -> None:
    where = f"link {link.source!r} -> {link.target!r}"
    if link.kind not in LINK_KINDS:
        raise SchemaError(f"{where}: kind {link.kind!r} is not one of {LINK_KINDS}")
    for n in (link.source, link.target):
        if n not in by_name:
            raise SchemaError(f"{where}: no feature named {n!r}")
    if link.source == link.target:
        raise SchemaError(f"{where}: a feature cannot be linked to itself")
    src, tgt = by_name[link.source], by_name[link.target]
    if link.kind == "moves_with":
        if not (src.is_numeric and tgt.is_numeric):
            raise SchemaError(f"{where}: moves_with needs two numeric features")
        if not math.isfinite(link.factor) or link.factor == 0:
            raise SchemaError(f"{where}: factor must be finite and non-zero, got {link.factor}")
    elif tgt.type == "real" and not (link.min_change is not None and link.min_change > 0):
        raise SchemaError(f"{where}: {link.target!r} is real, so 'changes' needs a positive min_change")
    elif tgt.actionability in ("immutable", "not_actionable"):
        raise SchemaError(f"{where}: {link.target!r} is {tgt.actionability} and cannot change")


@dataclass
class Schema:
    """An ordered list of :class:`Feature` objects (see :meth:`from_frame`), plus :class:`Link` s."""

    features: list[Feature] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.links = [lk if isinstance(lk, Link) else Link.from_dict(lk) for lk in self.links]
        by_name = {f.name: f for f in self.features}
        for lk in self.links:
            _check_link(lk, by_name)
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SchemaError(f"features repeat: {dup}")
        cols = self.columns
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise SchemaError(f"frame columns claimed twice: {dup}")

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, categorical: Iterable[str] | Mapping[str, Sequence[str]] = (),
                   ordinal: Mapping[str, Sequence[Any]] | Iterable[str] = (), integer: Iterable[str] = (),
                   real: Iterable[str] = (), immutable: Iterable[str] = (), not_actionable: Iterable[str] = (),
                   increase_only: Iterable[str] = (), decrease_only: Iterable[str] = (),
                   bounds: Mapping[str, tuple[float, float]] | None = None) -> "Schema":
        """Infer a schema from a frame, with overrides.

        ``categorical`` lists single-column categoricals, or maps a feature name to its one-hot
        columns (``{"workclass": ["workclass_Private", ...]}``, the level being the column name
        minus the ``feature_`` prefix). ``ordinal`` maps names to ordered levels (or lists
        names whose sorted distinct values are the levels). pandas ``category``/``object``/
        ``string``/``bool`` columns are categorical (bool: binary); integral values are integer;
        0/1 integers are binary.
        """
        bounds = dict(bounds or {})
        onehot = dict(categorical) if isinstance(categorical, Mapping) else {c: None for c in categorical}
        ordinal = dict(ordinal) if isinstance(ordinal, Mapping) else {c: None for c in ordinal}
        action = _actionability_map(immutable=immutable, not_actionable=not_actionable,
                                    increase_only=increase_only, decrease_only=decrease_only)
        named = set(onehot) | set(ordinal) | set(integer) | set(real) | set(action) | set(bounds)
        grouped = {c for cols in onehot.values() if cols for c in cols}
        known = (set(df.columns) - grouped) | {k for k, v in onehot.items() if v}
        unknown = sorted(named - known)
        if unknown:
            raise SchemaError(f"columns {unknown} named in the schema options are not in the frame")
        features = []
        for col in df.columns:
            if col in grouped:
                owner = next(k for k, v in onehot.items() if v and col in v)
                if col == onehot[owner][0]:
                    features.append(_onehot_feature(df, owner, list(onehot[owner]), action))
                continue
            features.append(_infer_feature(df[col], col, onehot, ordinal, set(integer), set(real),
                                           action, bounds))
        return cls(features)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Schema":
        if d.get("format", FORMAT) != FORMAT:
            raise SchemaError(f"unsupported schema format {d.get('format')!r}; expected {FORMAT!r}")
        return cls([Feature.from_dict(f) for f in d["features"]], [Link.from_dict(lk) for lk in d.get("links", [])])

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> "Schema":
        """Read a schema from a JSON file path or a JSON string."""
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text()
        try:
            return cls.from_dict(json.loads(text))
        except (KeyError, json.JSONDecodeError) as exc:
            raise SchemaError(f"invalid schema JSON: {exc}") from exc

    def to_dict(self) -> dict:
        d = {"format": FORMAT, "features": [f.to_dict() for f in self.features]}
        if self.links:
            d["links"] = [lk.to_dict() for lk in self.links]
        return d

    def link(self, source: str, target: str, kind: str | None = None, factor: float | None = None,
             min_change: float | None = None) -> "Schema":
        """A copy with one more :class:`Link`: ``link("debt", "payment", factor=0.05)`` makes
        payment move with debt; ``link("job", "hours")`` makes a job change require an hours change."""
        kind = kind or ("moves_with" if factor is not None else "implies")
        new = Link(source, target, kind, 1.0 if factor is None else float(factor), min_change)
        return Schema(list(self.features), list(self.links) + [new])

    def to_json(self, path: str | Path | None = None) -> str:
        return dump_json(self.to_dict(), path)

    # ---- access --------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        """The frame columns, in schema order (one-hot groups expanded)."""
        return [c for f in self.features for c in f.frame_columns]

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature named {name!r}")

    def __len__(self) -> int:
        return len(self.features)

    def with_actionability(self, **groups: Iterable[str]) -> "Schema":
        """A copy with actionability changed: ``with_actionability(immutable=["sex"])``."""
        action = _actionability_map(**groups)
        missing = sorted(set(action) - set(self.names))
        if missing:
            raise SchemaError(f"unknown features {missing}")
        feats = [Feature(**{**f.__dict__, "actionability": action.get(f.name, f.actionability)})
                 for f in self.features]
        return Schema(feats, list(self.links))

    # ---- validation ----------------------------------------------------------------
    def validate_frame(self, df: pd.DataFrame, check_bounds: bool = True) -> None:
        """Raise :class:`SchemaError` naming the first offending column and row."""
        if not isinstance(df, pd.DataFrame):
            raise SchemaError(f"expected a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise SchemaError(f"missing columns {missing} (the schema expects {self.columns})")
        extra = [c for c in df.columns if c not in self.columns]
        if extra:
            raise SchemaError(f"unexpected columns {extra} are not in the schema")
        na = df.isna().to_numpy().any(axis=0)  # one pass for every column, then name the first
        if na.any():
            col = df.columns[np.nonzero(na)[0][0]]
            row = df.index[df[col].isna().to_numpy()][0]
            raise SchemaError(f"column {col!r} has a missing value (NaN) in row {row!r}")
        for f in self.features:
            _validate_feature(f, df, check_bounds)

    # ---- encoding between frames and per-feature values -----------------------------
    def row_values(self, row: pd.Series) -> dict[str, Any]:
        """Per-feature value of one validated row (level for categoricals)."""
        out = {}
        for f in self.features:
            if f.columns is not None:
                hot = [lv for lv in f.levels if float(row[f.columns[lv]]) == 1.0]
                out[f.name] = hot[0]
            else:
                out[f.name] = row[f.name]
        return out

    def frame_from_values(self, values: Mapping[str, Any], like: pd.DataFrame) -> pd.DataFrame:
        """A one-row frame with ``like``'s columns, dtypes and index, holding ``values``."""
        data: dict[str, Any] = {}
        for f in self.features:
            v = values[f.name]
            if f.columns is not None:
                for lv in f.levels:
                    data[f.columns[lv]] = _cast(1 if _key(lv) == _key(v) else 0, like[f.columns[lv]].dtype)
            else:
                dtype = like[f.name].dtype
                v = _cast(v, dtype)
                if isinstance(dtype, pd.CategoricalDtype) and v in list(dtype.categories):
                    v = pd.Categorical([v] * len(like), dtype=dtype)  # stays a category column
                data[f.name] = v
        # one constructor call, not a column assignment per feature: this runs several times
        # per person (incumbent repair, every verification)
        return pd.DataFrame({c: data[c] if c in data else like[c] for c in like.columns},
                            index=like.index)


def _cast(v: Any, dtype) -> Any:
    if pd.api.types.is_bool_dtype(dtype):
        return bool(v)
    if pd.api.types.is_integer_dtype(dtype):
        return int(round(float(v)))
    if pd.api.types.is_float_dtype(dtype):
        return float(v)
    return v


def _actionability_map(**groups: Iterable[str]) -> dict[str, str]:
    action: dict[str, str] = {}
    for kind, names in groups.items():
        if kind not in ACTIONABILITY:
            raise SchemaError(f"unknown actionability {kind!r}")
        for n in names:
            if n in action and action[n] != kind:
                raise SchemaError(f"feature {n!r} is both {action[n]} and {kind}")
            action[n] = kind
    return action


def _onehot_feature(df: pd.DataFrame, name: str, cols: list[str], action: dict) -> Feature:
    prefix = f"{name}_"
    levels = [c[len(prefix):] if c.startswith(prefix) else c for c in cols]
    return Feature(name, "categorical", levels=levels, columns=dict(zip(levels, cols)),
                   actionability=action.get(name, "actionable"))


def _infer_feature(s: pd.Series, col: str, onehot: dict, ordinal: dict, integer: set, real: set,
                   action: dict, bounds: dict) -> Feature:
    act = action.get(col, "actionable")
    if col in ordinal:
        levels = list(ordinal[col]) if ordinal[col] is not None else sorted(s.dropna().unique().tolist())
        return Feature(col, "ordinal", levels=levels, actionability=act)
    is_cat = (col in onehot or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object
              or pd.api.types.is_string_dtype(s.dtype))
    if is_cat and col not in integer and col not in real:
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels = list(s.cat.categories)
        else:
            levels = sorted(s.dropna().unique().tolist(), key=str)
        return Feature(col, "categorical", levels=levels, actionability=act)
    if pd.api.types.is_bool_dtype(s.dtype):
        return Feature(col, "binary", 0, 1, actionability=act)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).all():
        raise SchemaError(f"column {col!r} has no numeric values to infer bounds from")
    lo, hi = bounds.get(col, (np.nanmin(values), np.nanmax(values)))
    integral = col in integer or (col not in real and np.all(np.mod(values[~np.isnan(values)], 1) == 0))
    if integral and col not in integer and set(np.unique(values[~np.isnan(values)])) <= {0.0, 1.0} \
            and col not in bounds:
        return Feature(col, "binary", 0, 1, actionability=act)
    return Feature(col, "integer" if integral else "real", lo, hi, actionability=act)


def _validate_feature(f: Feature, df: pd.DataFrame, check_bounds: bool) -> None:
    if f.columns is not None:
        try:
            block = df[f.frame_columns].to_numpy(dtype=float)
        except (TypeError, ValueError):  # text in a one-hot column: what parses counts
            block = df[f.frame_columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isin(block, (0.0, 1.0)).all(axis=1) & (block.sum(axis=1) == 1))
        if bad.any():
            raise SchemaError(f"one-hot columns of {f.name!r} must hold exactly one 1 per row "
                              f"(row {df.index[np.nonzero(bad)[0][0]]!r})")
        return
    s = df[f.name]
    if not f.is_numeric:
        for v in pd.unique(s):
            f.level_index(v)
        return
    if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
        raise SchemaError(f"column {f.name!r} must be numeric ({f.type}) but has dtype {s.dtype}")
    v = s.to_numpy(dtype=float)
    if f.type in ("integer", "binary") and np.any(np.mod(v, 1) != 0):
        row = df.index[np.nonzero(np.mod(v, 1) != 0)[0][0]]
        raise SchemaError(f"column {f.name!r} is {f.type} but row {row!r} holds a fraction")
    if check_bounds:
        out = (v < f.lower) | (v > f.upper)
        if out.any():
            i = np.nonzero(out)[0][0]
            raise SchemaError(f"column {f.name!r}: value {v[i]:g} in row {df.index[i]!r} is outside "
                              f"the bounds [{f.lower:g}, {f.upper:g}]")
