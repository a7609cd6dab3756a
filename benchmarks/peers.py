"""Uniform adapters for the peer counterfactual tools the benchmarks compare mipcf with.

Every peer follows one protocol::

    peer = available_peers()["dice-random"]()          # factory -> Peer
    peer.fit(model, X_train, y_train, schema, desired_class)
    result = peer.explain(x)                            # x: one-row frame like X_train
    result.counterfactual  # one-row frame, same columns/dtypes/index as x, or None
    result.seconds         # wall-clock time of this explain call
    result.message         # why there is no counterfactual, or a caveat

``schema`` is the project's JSON schema dict (``mipcf.schema/1``). Frames are numeric: a
one-hot categorical is a group of 0/1 columns (``columns``: level -> column), an ordinal is
one column of codes. Adapters map these to each tool's own notion of continuous and
categorical features and of actionability, as far as the tool allows (see each class).
No adapter checks validity of what a tool returns: the benchmark does, with the model's own
``predict``. Each tool is asked for exactly one counterfactual.

Peers and what they need (``requirements-bench.txt``):

* ``mo``: MACE's "minimum observable" baseline, implemented here (numpy only).
* ``dice-random`` / ``dice-genetic`` / ``dice-kdtree``: DiCE (``dice-ml``), backend "sklearn".
* ``ar``: actionable-recourse (``recourse``), linear binary classifiers only; CBC via
  python-mip by default, CPLEX Community Edition if asked for.
* ``ocean``: OCEAN (``oceanpy``, import ``ocean``), tree ensembles, OR-Tools CP-SAT back-end.
  oceanpy needs Python >= 3.12 (PEP 695 syntax) and pins ``ortools==9.14.6206``, so it is not
  installable in the project's Python 3.11 environment; the adapter is there for when it is.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import random
import sys
import time
import types
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "PeerResult", "Peer", "available_peers", "peer_status", "feature_distance",
    "MinimumObservable", "DicePeer", "ActionableRecoursePeer", "OceanPeer",
]


@dataclass
class PeerResult:
    counterfactual: pd.DataFrame | None  # one row, same columns/dtypes/index as the factual
    seconds: float
    message: str = ""


class Peer(Protocol):
    name: str

    def fit(self, model, X_train: pd.DataFrame, y_train, schema: dict, desired_class) -> None: ...

    def explain(self, x: pd.DataFrame) -> PeerResult: ...


# =====================================================================================
# Schema helpers (self-contained: the JSON dict is the contract, not mipcf's classes)
# =====================================================================================

FIXED = ("not_actionable", "immutable")


def _key(v: Any) -> Any:
    """1, 1.0, np.int64(1) and True name the same level."""
    if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
        return float(v)
    return v


@dataclass(frozen=True)
class _Feat:
    name: str
    type: str
    lower: float | None
    upper: float | None
    levels: tuple | None
    onehot: tuple[str, ...] | None  # frame columns in level order, for one-hot groups
    actionability: str

    @property
    def numeric(self) -> bool:
        return self.type in ("real", "integer", "binary")

    @property
    def cols(self) -> list[str]:
        return list(self.onehot) if self.onehot else [self.name]

    @property
    def fixed(self) -> bool:
        return self.actionability in FIXED

    @property
    def direction(self) -> int:
        """+1 increase only, -1 decrease only, 0 free (categoricals have none)."""
        if self.type == "categorical":
            return 0
        return {"increase_only": 1, "decrease_only": -1}.get(self.actionability, 0)

    @property
    def contiguous_int_levels(self) -> bool:
        """Ordinal levels 0..k (or a..a+k) in one column: usable as an integer feature."""
        if self.onehot or not self.levels:
            return False
        try:
            vals = np.array([float(v) for v in self.levels])
        except (TypeError, ValueError):
            return False
        return bool(np.all(np.mod(vals, 1) == 0) and np.all(np.diff(vals) == 1))

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Level index of each row (-1 for an unknown value); categoricals/ordinals only."""
        if self.onehot:
            block = frame[list(self.onehot)].to_numpy(dtype=float)
            idx = block.argmax(axis=1)
            idx[block.max(axis=1) <= 0.5] = -1
            return idx
        lookup = {_key(v): i for i, v in enumerate(self.levels)}
        return np.array([lookup.get(_key(v), -1) for v in frame[self.name].tolist()], dtype=int)

    def order_values(self, frame: pd.DataFrame) -> np.ndarray:
        """Values along which increase/decrease-only is judged: the number, or level index."""
        if self.numeric:
            return frame[self.name].to_numpy(dtype=float)
        return self.codes(frame).astype(float)


def _features(schema: dict, columns: Sequence[str] | None = None) -> list[_Feat]:
    if schema.get("format", "mipcf.schema/1") != "mipcf.schema/1":
        raise ValueError(f"unsupported schema format {schema.get('format')!r}")
    out = []
    for d in schema["features"]:
        typ = d["type"]
        levels = tuple(d["levels"]) if d.get("levels") is not None else None
        onehot = None
        if d.get("columns"):
            by_str = {str(k): v for k, v in d["columns"].items()}
            onehot = tuple(by_str[str(lv)] for lv in levels)
        lower, upper = d.get("lower"), d.get("upper")
        if typ == "binary":
            lower = 0.0 if lower is None else lower
            upper = 1.0 if upper is None else upper
        out.append(_Feat(d["name"], typ, None if lower is None else float(lower),
                         None if upper is None else float(upper), levels, onehot,
                         d.get("actionability", "actionable")))
    if columns is not None:
        have = [c for f in out for c in f.cols]
        missing = sorted(set(columns) - set(have))
        if missing:
            raise ValueError(f"frame columns {missing} are not described by the schema")
        absent = sorted(set(have) - set(columns))
        if absent:
            raise ValueError(f"schema columns {absent} are not in the frame")
    return out


def _numeric_bounds(f: _Feat, X: pd.DataFrame | None = None) -> tuple[float, float]:
    if f.lower is not None and f.upper is not None:
        return f.lower, f.upper
    if f.levels and f.contiguous_int_levels:
        return float(f.levels[0]), float(f.levels[-1])
    col = X[f.name].to_numpy(dtype=float)
    return float(col.min()), float(col.max())


def _cast_like(values: dict[str, Any] | pd.Series, like: pd.DataFrame) -> pd.DataFrame:
    """A one-row frame with ``like``'s columns, dtypes and index holding ``values``."""
    out = like.copy()
    for c in like.columns:
        v = values[c]
        dt = like[c].dtype
        if pd.api.types.is_bool_dtype(dt):
            v = bool(round(float(v)))
        elif pd.api.types.is_integer_dtype(dt):
            v = int(round(float(v)))
        elif pd.api.types.is_float_dtype(dt):
            v = float(v)
        out[c] = pd.Series([v], index=like.index).astype(dt)
    return out[list(like.columns)]


def _class_index(model, desired_class) -> int:
    classes = list(getattr(model, "classes_", [0, 1]))
    for i, c in enumerate(classes):
        if _key(c) == _key(desired_class):
            return i
    raise ValueError(f"desired class {desired_class!r} is not one of the model's classes {classes}")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet():
    """Silence a tool's prints, progress bars and warnings (Python-level only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


# =====================================================================================
# Distances (for MO): vectorised counterpart of mipcf.costs with scale="range"
# =====================================================================================

def feature_distance(schema: dict, norm: str | dict[str, float] = "l1",
                     weights: dict[str, float] | None = None) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """``distance(x, C) -> (len(C),)`` with mipcf's per-feature changes.

    Per feature: numeric ``|delta| / (upper - lower)``; categorical 1 if the level changes;
    ordinal ``k / (K - 1)``; times ``weights[name]`` (default 1). ``norm`` is "l0", "l1",
    "linf" or a dict of their weights, as in ``mipcf.costs``.
    """
    feats = _features(schema)
    mix = {norm: 1.0} if isinstance(norm, str) else dict(norm)
    unknown = set(mix) - {"l0", "l1", "linf"}
    if unknown:
        raise ValueError(f"unknown norms {sorted(unknown)}")
    weights = dict(weights or {})

    def distance(x: pd.DataFrame, C: pd.DataFrame) -> np.ndarray:
        D = np.zeros((len(C), len(feats)))
        for j, f in enumerate(feats):
            if f.numeric:
                lo, hi = _numeric_bounds(f, C)
                scale = 1.0 / (hi - lo) if hi > lo else 1.0
                D[:, j] = np.abs(C[f.name].to_numpy(dtype=float) - float(x[f.name].iloc[0])) * scale
            elif f.type == "categorical":
                D[:, j] = (f.codes(C) != f.codes(x)[0]).astype(float)
            else:
                k = max(len(f.levels) - 1, 1)
                D[:, j] = np.abs(f.codes(C) - f.codes(x)[0]) / k
            D[:, j] *= weights.get(f.name, 1.0)
        total = np.zeros(len(C))
        if mix.get("l0"):
            total += mix["l0"] * (D > 0).sum(axis=1)
        if mix.get("l1"):
            total += mix["l1"] * D.sum(axis=1)
        if mix.get("linf"):
            total += mix["linf"] * (D.max(axis=1) if D.shape[1] else 0.0)
        return total

    return distance


# =====================================================================================
# MO: minimum observable (MACE's baseline)
# =====================================================================================

class MinimumObservable:
    """Among the candidate rows predicted as the desired class that respect actionability
    (immutable / not-actionable features equal to the factual, increase-only >=, decrease-only
    <=, ordinals by level order), the one closest to the factual under ``distance``.

    ``candidates`` default to ``X_train`` (MACE uses the test set: pass it). ``distance(x, C)``
    returns one number per row of ``C``; default :func:`feature_distance` (l1, range-scaled).
    Model predictions on the candidates are computed once, in :meth:`fit`.
    """

    name = "mo"

    def __init__(self, candidates: pd.DataFrame | None = None,
                 distance: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray] | None = None):
        self.candidates = candidates
        self.distance = distance

    def fit(self, model, X_train: pd.DataFrame, y_train, schema: dict, desired_class) -> None:
        C = self.candidates if self.candidates is not None else X_train
        C = C[list(X_train.columns)].reset_index(drop=True)
        self._columns = list(X_train.columns)
        self._feats = _features(schema, self._columns)
        self._dist = self.distance or feature_distance(schema)
        pred = np.asarray(model.predict(C))
        keep = np.array([_key(p) == _key(desired_class) for p in pred], dtype=bool)
        self._C = C[keep].reset_index(drop=True)
        # per-feature arrays over the kept candidates, for the actionability filters
        self._fixed = [(f, self._C[f.cols].to_numpy(dtype=float)) for f in self._feats if f.fixed]
        self._directed = [(f, f.order_values(self._C)) for f in self._feats
                          if not f.fixed and f.direction]

    def explain(self, x: pd.DataFrame) -> PeerResult:
        t0 = time.perf_counter()
        x = x[self._columns]
        mask = np.ones(len(self._C), dtype=bool)
        for f, block in self._fixed:
            ref = x[f.cols].to_numpy(dtype=float)[0]
            mask &= np.all(np.isclose(block, ref, rtol=0.0, atol=1e-9), axis=1)
        for f, vals in self._directed:
            ref = f.order_values(x)[0]
            mask &= (vals >= ref - 1e-12) if f.direction > 0 else (vals <= ref + 1e-12)
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return PeerResult(None, time.perf_counter() - t0,
                              "no candidate is predicted as the desired class and respects actionability")
        d = np.asarray(self._dist(x, self._C.iloc[idx]), dtype=float)
        best = self._C.iloc[idx[int(np.argmin(d))]]
        cf = _cast_like(best, x)
        return PeerResult(cf, time.perf_counter() - t0, "")


# =====================================================================================
# DiCE
# =====================================================================================

class _DiceCodec:
    """Project frame <-> DiCE frame.

    real -> continuous float; integer / binary -> continuous int (DiCE keeps ints integral);
    ordinal with consecutive integer levels in one column -> continuous int; other ordinals and
    all categoricals (one-hot groups collapsed into one column) -> DiCE categorical with
    ``str(level)`` values.
    """

    def __init__(self, feats: list[_Feat], X: pd.DataFrame):
        self.feats = feats
        self.columns = list(X.columns)
        self.dtypes = X.dtypes
        self.continuous: list[str] = []
        self.categorical: list[str] = []
        self.bounds: dict[str, tuple[float, float]] = {}
        for f in feats:
            if f.numeric or (f.type == "ordinal" and f.contiguous_int_levels):
                self.continuous.append(f.name)
                self.bounds[f.name] = _numeric_bounds(f, X)
            else:
                self.categorical.append(f.name)
        self.names = [f.name for f in feats]
        self.labels = {f.name: [str(v) for v in f.levels] for f in feats if f.name in self.categorical}
        for n, lab in self.labels.items():
            if len(set(lab)) != len(lab):
                raise ValueError(f"feature {n!r}: levels are not distinct as strings: {lab}")

    @staticmethod
    def integral(f: _Feat) -> bool:
        return f.type != "real"

    def to_dice(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for f in self.feats:
            if f.name in self.continuous:
                v = frame[f.name].to_numpy(dtype=float)
                out[f.name] = np.rint(v).astype(np.int64) if self.integral(f) else v.astype(np.float64)
            else:
                codes = f.codes(frame)
                if (codes < 0).any():
                    bad = frame.index[np.flatnonzero(codes < 0)[0]]
                    raise ValueError(f"feature {f.name!r}: row {bad!r} holds no known level")
                out[f.name] = np.array(self.labels[f.name], dtype=object)[codes]
        return pd.DataFrame(out, index=frame.index)[self.names]

    def from_dice(self, df) -> pd.DataFrame:
        if not isinstance(df, pd.DataFrame):
            df = pd.DataFrame(np.asarray(df), columns=self.names)
        n = len(df)
        out = {}
        for f in self.feats:
            if f.name in self.continuous:
                out[f.name] = pd.to_numeric(df[f.name], errors="coerce").to_numpy(dtype=float)
                continue
            lookup = {lab: i for i, lab in enumerate(self.labels[f.name])}
            codes = np.array([lookup.get(str(s), -1) for s in df[f.name].tolist()], dtype=int)
            if (codes < 0).any():
                raise ValueError(f"DiCE returned an unknown level for {f.name!r}")
            if f.onehot:
                hot = np.zeros((n, len(f.onehot)))
                hot[np.arange(n), codes] = 1.0
                for j, c in enumerate(f.onehot):
                    out[c] = hot[:, j]
            else:
                out[f.name] = np.array(f.levels, dtype=object)[codes]
        frame = pd.DataFrame(out, index=df.index)[self.columns]
        for c in self.columns:
            dt = self.dtypes[c]
            if pd.api.types.is_integer_dtype(dt) or pd.api.types.is_bool_dtype(dt):
                frame[c] = np.rint(pd.to_numeric(frame[c]).to_numpy(dtype=float)).astype(dt)
            elif pd.api.types.is_float_dtype(dt):
                frame[c] = pd.to_numeric(frame[c]).astype(dt)
        return frame

    def permitted_range(self, x: pd.DataFrame) -> dict[str, list]:
        """Per-query ranges: schema bounds, narrowed by increase/decrease-only."""
        pr: dict[str, list] = {}
        for f in self.feats:
            if f.name in self.continuous:
                lo, hi = self.bounds[f.name]
                v = float(x[f.name].iloc[0])
                if f.direction > 0 and not f.fixed:
                    lo = max(lo, v)
                elif f.direction < 0 and not f.fixed:
                    hi = min(hi, v)
                if f.fixed:  # DiCE insists a fixed feature's range holds the factual's value
                    lo, hi = min(lo, v), max(hi, v)
                elif lo > hi:  # factual outside the schema bounds in the allowed direction
                    lo = hi = v
                if self.integral(f):
                    lo, hi = int(np.ceil(lo - 1e-9)), int(np.floor(hi + 1e-9))
                pr[f.name] = [lo, hi]
            else:
                labs = self.labels[f.name]
                k = int(f.codes(x)[0])
                if f.fixed:
                    pr[f.name] = [labs[k]]
                elif f.direction > 0:
                    pr[f.name] = labs[k:]
                elif f.direction < 0:
                    pr[f.name] = labs[:k + 1]
                else:
                    pr[f.name] = list(labs)
        return pr


class _DiceModel:
    """What DiCE's sklearn backend calls: decodes DiCE's frame, then asks the real model."""

    def __init__(self, model, codec: _DiceCodec):
        self.model = model
        self.codec = codec
        self.classes_ = getattr(model, "classes_", None)

    def predict_proba(self, df):
        return self.model.predict_proba(self.codec.from_dice(df))

    def predict(self, df):
        return self.model.predict(self.codec.from_dice(df))


class DicePeer:
    """DiCE (``dice-ml``), sklearn backend, methods "random", "genetic" or "kdtree".

    Mapping: immutable / not-actionable features are left out of ``features_to_vary``;
    increase/decrease-only narrow ``permitted_range`` to [x, upper] / [lower, x] (categorical
    ordinals: the allowed levels); every other feature gets its schema bounds. One-hot groups
    become one DiCE categorical feature and the model is wrapped to re-encode DiCE's rows.
    ``total_CFs=1``; other ``generate_counterfactuals`` keywords may be passed as ``**options``.
    ``seed`` makes runs repeatable: passed as ``random_seed`` to the random method, and used to
    seed Python's and numpy's global RNGs before the genetic / kdtree methods (DiCE draws from
    them; the random method seeds numpy's global RNG itself).
    """

    METHODS = ("random", "genetic", "kdtree")
    OUTCOME = "__dice_outcome__"

    def __init__(self, method: str = "random", seed: int | None = 0, **options):
        if method not in self.METHODS:
            raise ValueError(f"method {method!r} is not one of {self.METHODS}")
        self.method = method
        self.seed = seed
        self.options = options
        self.name = f"dice-{method}"

    def fit(self, model, X_train: pd.DataFrame, y_train, schema: dict, desired_class) -> None:
        import dice_ml

        self._columns = list(X_train.columns)
        feats = _features(schema, self._columns)
        self._codec = _DiceCodec(feats, X_train)
        self._desired = _class_index(model, desired_class)
        classes = [_key(c) for c in model.classes_]
        df = self._codec.to_dice(X_train)
        df[self.OUTCOME] = [classes.index(_key(v)) for v in np.asarray(y_train).tolist()]
        self._vary = [f.name for f in feats if not f.fixed]
        with _quiet():
            data = dice_ml.Data(dataframe=df, continuous_features=list(self._codec.continuous),
                                outcome_name=self.OUTCOME)
            wrapped = dice_ml.Model(model=_DiceModel(model, self._codec), backend="sklearn",
                                    model_type="classifier")
            self._explainer = dice_ml.Dice(data, wrapped, method=self.method)

    def explain(self, x: pd.DataFrame) -> PeerResult:
        t0 = time.perf_counter()
        x = x[self._columns]
        if not self._vary:
            return PeerResult(None, time.perf_counter() - t0, "no feature may change")
        kwargs = dict(total_CFs=1, desired_class=self._desired, features_to_vary=list(self._vary),
                      permitted_range=self._codec.permitted_range(x), verbose=False)
        if self.method == "random" and self.seed is not None:
            kwargs["random_seed"] = self.seed
        elif self.seed is not None:  # genetic / kdtree draw from the global RNGs, unseeded
            random.seed(self.seed)
            np.random.seed(self.seed)
        kwargs.update(self.options)
        try:
            query = self._codec.to_dice(x)
            with _quiet():
                res = self._explainer.generate_counterfactuals(query, **kwargs)
            cfs = res.cf_examples_list[0].final_cfs_df
        except Exception as exc:  # DiCE raises when it finds nothing, and on config problems
            msg = _short(exc)
            if "randrange" in msg:
                msg += " (DiCE genetic: its population of 10*total_CFs collapsed to one distinct row)"
            return PeerResult(None, time.perf_counter() - t0, msg)
        seconds = time.perf_counter() - t0
        if cfs is None or len(cfs) == 0:
            return PeerResult(None, seconds, "DiCE found no counterfactual")
        row = self._codec.from_dice(cfs[self._codec.names].iloc[[0]])
        return PeerResult(_cast_like(row.iloc[0], x), seconds, "")


# =====================================================================================
# actionable-recourse
# =====================================================================================

class _NumpyCompat(types.ModuleType):
    """numpy with the aliases removed in NumPy 2.0 that actionable-recourse 1.0.1 still uses
    (``np.float_`` in RecourseBuilder.x and Flipset, ``np.float`` in RecourseBuilder.score).
    Installed only into the ``recourse`` modules; numpy itself is not touched."""

    def __init__(self):
        super().__init__("numpy")

    def __getattr__(self, name):
        if name == "float_":
            return np.float64
        if name == "float":
            return float
        return getattr(np, name)


def _import_recourse():
    import recourse
    import recourse.builder
    import recourse.flipset

    for mod in (recourse.builder, recourse.flipset):
        if not isinstance(mod.np, _NumpyCompat) and not hasattr(np, "float_"):
            mod.np = _NumpyCompat()
    builder = recourse.builder.RecourseBuilder
    if not getattr(builder._get_mip_build_info, "_mipcf_unchecked", False):
        builder._get_mip_build_info = _without_self_check(builder._get_mip_build_info)
    return recourse


def _without_self_check(get_info):
    """actionable-recourse asserts that a feature's action costs are pairwise distinct; when
    many training rows share a value (Adult's capital_gain is 0 for 92 %), percentile steps
    tie and every person fails with a bare AssertionError. Ties are harmless to its MIP (the
    cost is a one-hot sum over the grid), so the build runs without that self-check; every
    answer is still checked with the model's predict by the benchmark."""

    def build_info(self, cost_function_type="percentile", validate=True):
        return get_info(self, cost_function_type, validate=False)

    build_info._mipcf_unchecked = True
    return build_info


def _ar_solvers() -> list[str]:
    try:
        from recourse.defaults import SUPPORTED_SOLVERS
    except Exception:  # noqa: BLE001
        return []
    return list(SUPPORTED_SOLVERS)


class ActionableRecoursePeer:
    """actionable-recourse (Ustun, Spangher & Liu), for binary linear classifiers.

    Mapping: immutable / not-actionable -> ``actionable = False``; increase/decrease-only ->
    ``step_direction = +1 / -1`` (numbers and single-column ordinals); schema bounds ->
    absolute ``custom_bounds``; an actionable one-hot group -> ``subset_limit`` constraint with
    exactly one column on. Its grid and "max percentile shift" cost are the tool's own.
    Limitations: a one-hot *ordinal* with a direction is treated as unordered (message says
    so); models without ``coef_``/``intercept_`` (e.g. pipelines, forests) are unsupported.

    Workarounds for actionable-recourse 1.0.1 (2020) on NumPy 2: ``np.float_`` is provided to
    the ``recourse`` modules only (see :class:`_NumpyCompat`); its cost-uniqueness self-check
    is skipped (see :func:`_without_self_check`); coefficients are passed as
    ``coefficients=``/``intercept=`` (its ``float(intercept_)`` of a 1-element array fails);
    the one-hot groups are put first in the variable order, because its ``subset_limit``
    constraint indexes a list of actionable variables by the position among all variables.
    ``solver``: "python-mip" (CBC, default when installed) or "cplex" (Community Edition,
    limited to 1000 variables and constraints).
    """

    name = "ar"

    def __init__(self, solver: str | None = None, cost_type: str | None = None,
                 time_limit: float | None = None):
        self.solver = solver
        self.cost_type = cost_type
        self.time_limit = time_limit

    def fit(self, model, X_train: pd.DataFrame, y_train, schema: dict, desired_class) -> None:
        recourse = _import_recourse()
        self._columns = list(X_train.columns)
        feats = _features(schema, self._columns)
        self.unsupported = ""
        coef = getattr(model, "coef_", None)
        classes = list(getattr(model, "classes_", []))
        if coef is None or getattr(model, "intercept_", None) is None:
            self.unsupported = f"actionable-recourse needs a linear model; got {type(model).__name__}"
            return
        if np.asarray(coef).shape[0] != 1 or len(classes) != 2:
            self.unsupported = "actionable-recourse handles binary classifiers only"
            return
        solvers = _ar_solvers()
        solver = self.solver or ("python-mip" if "python-mip" in solvers else (solvers or ["cplex"])[0])
        if solver not in solvers:
            self.unsupported = f"solver {solver!r} not available (have {solvers})"
            return
        self._solver = solver
        y_desired = 1 if _class_index(model, desired_class) == 1 else -1
        w = dict(zip(self._columns, np.asarray(model.coef_, dtype=float).ravel()))
        self._intercept = float(np.asarray(model.intercept_, dtype=float).ravel()[0])

        groups = [f for f in feats if f.onehot and not f.fixed]
        first = [c for f in groups for c in f.onehot]
        self._order = first + [c for c in self._columns if c not in first]
        self._w = np.array([w[c] for c in self._order])
        self._notes = []
        bounds = {}
        for f in feats:
            if f.onehot:
                bounds.update({c: (0, 1, "absolute") for c in f.onehot})
            else:
                lo, hi = _numeric_bounds(f, X_train)
                bounds[f.name] = (lo, hi, "absolute")
        with _quiet():
            A = recourse.ActionSet(X_train[self._order], y_desired=y_desired, custom_bounds=bounds,
                                   print_flag=False)
            for f in feats:
                for c in f.cols:
                    if f.fixed:
                        A[c].actionable = False
                    elif f.direction and not f.onehot:
                        A[c].step_direction = f.direction
                if f.onehot and not f.fixed:
                    A.add_constraint("subset_limit", names=list(f.onehot), lb=1, ub=1)
                    if f.direction:
                        self._notes.append(f"{f.name}: one-hot ordinal direction not enforced")
        self._A = A

    def explain(self, x: pd.DataFrame) -> PeerResult:
        t0 = time.perf_counter()
        if self.unsupported:
            return PeerResult(None, 0.0, "unsupported: " + self.unsupported)
        from recourse import RecourseBuilder

        x = x[self._columns]
        xv = x[self._order].to_numpy(dtype=float).ravel()
        note = "; ".join(self._notes)
        try:
            with _quiet():
                kw = dict(action_set=self._A, x=xv, coefficients=self._w, intercept=self._intercept,
                          solver=self._solver, print_flag=False)
                if self.cost_type:
                    kw["mip_cost_type"] = self.cost_type
                rb = RecourseBuilder(**kw)
                if self._solver == "python-mip":
                    rb.mip.verbose = 0
                info = rb.fit(time_limit=self.time_limit)
        except Exception as exc:  # noqa: BLE001
            return PeerResult(None, time.perf_counter() - t0, _short(exc))
        seconds = time.perf_counter() - t0
        if not info.get("feasible"):
            return PeerResult(None, seconds, f"no recourse (status {info.get('status')!r})"
                              + (f"; {note}" if note else ""))
        values = dict(zip(self._order, xv + np.asarray(info["actions"], dtype=float)))
        return PeerResult(_cast_like(values, x), seconds, note)


# =====================================================================================
# OCEAN (oceanpy >= 2, Python >= 3.12)
# =====================================================================================

class OceanPeer:
    """OCEAN (Parmentier & Vidal), optimal counterfactuals for sklearn tree ensembles.

    Uses ``ocean.ConstraintProgrammingExplainer`` (OR-Tools CP-SAT, open source) by default;
    ``backend="mip"`` uses gurobipy (pip's size-limited licence) and ``"maxsat"`` python-sat.
    Features: real -> continuous (interval of the trees' thresholds, bounds from the schema);
    integer / single-column ordinal or categorical -> discrete; binary -> binary; one-hot
    groups -> one-hot encoded (they must be contiguous in the frame). OCEAN has no
    actionability of its own: for the CP back-end the adapter adds per-query constraints on
    OCEAN's feature variables (fixed / at-least / at-most the factual's interval or value);
    other back-ends ignore actionability (message says so). The objective is OCEAN's L1 in
    raw (unscaled) feature units.
    """

    name = "ocean"

    def __init__(self, backend: str = "cp", max_time: int = 60, num_workers: int | None = 1,
                 norm: int = 1):
        self.backend = backend
        self.max_time = max_time
        self.num_workers = num_workers
        self.norm = norm

    def fit(self, model, X_train: pd.DataFrame, y_train, schema: dict, desired_class) -> None:
        import ocean
        from ocean.abc import Mapper
        from ocean.feature import Feature

        self._columns = list(X_train.columns)
        feats = _features(schema, self._columns)
        self.unsupported = ""
        for f in feats:
            if not f.numeric and not f.onehot and not all(
                    isinstance(v, (int, float, np.integer, np.floating)) for v in f.levels):
                self.unsupported = f"feature {f.name!r}: OCEAN needs numeric codes in a single column"
                return
        col_owner = {c: f for f in feats for c in f.cols}
        # mapper keys must follow column order, one-hot groups contiguous
        order, tuples, mapping = [], [], {}
        for c in self._columns:
            f = col_owner[c]
            if f.name in mapping:
                if order[-1] != f.name:
                    self.unsupported = f"one-hot columns of {f.name!r} are not contiguous in the frame"
                    return
            else:
                order.append(f.name)
                if f.onehot:
                    mapping[f.name] = Feature(Feature.Type.ONE_HOT_ENCODED,
                                              codes=[str(lv) for lv in f.levels])
                elif f.type == "binary":
                    mapping[f.name] = Feature(Feature.Type.BINARY)
                elif f.type == "real":
                    lo, hi = _numeric_bounds(f, X_train)
                    mapping[f.name] = Feature(Feature.Type.CONTINUOUS, levels=(lo - 0.5, hi + 0.5))
                else:  # like ocean.feature.parse_features: the values seen, plus the bounds
                    if f.numeric:
                        levels = set(X_train[f.name].to_numpy(dtype=float)) | set(_numeric_bounds(f, X_train))
                    else:
                        levels = {float(v) for v in f.levels}
                    mapping[f.name] = Feature(Feature.Type.DISCRETE, levels=sorted(levels), thresholds=[])
            if f.onehot:
                level = f.levels[list(f.onehot).index(c)]
                tuples.append((f.name, str(level)))
            else:
                tuples.append((f.name, ""))
        self._feats = {f.name: f for f in feats}
        self._oh_codes = {f.name: [str(lv) for lv in f.levels] for f in feats if f.onehot}
        self._desired = _class_index(model, desired_class)
        cls = {"cp": ocean.ConstraintProgrammingExplainer,
               "mip": ocean.MixedIntegerProgramExplainer,
               "maxsat": ocean.MaxSATExplainer}[self.backend]
        try:
            mapper = Mapper(mapping, columns=pd.MultiIndex.from_tuples(tuples))
            with _quiet():
                self._explainer = cls(model, mapper=mapper)
        except Exception as exc:  # noqa: BLE001  (e.g. a model OCEAN cannot parse)
            self.unsupported = _short(exc)

    def _actionability(self, x: pd.DataFrame) -> None:
        """Query-specific constraints, registered as OCEAN 'garbage' so cleanup removes them."""
        ex = self._explainer
        vars_ = ex.mapper
        xv = x.to_numpy(dtype=float).ravel()
        col = {name: i for i, name in enumerate(vars_.names) if name not in self._oh_codes}
        for name, f in self._feats.items():
            if not (f.fixed or f.direction):
                continue
            v = vars_[name]
            cons = []
            if f.onehot:
                if f.fixed:
                    code = self._oh_codes[name][int(f.codes(x)[0])]
                    cons.append(ex.Add(v.xget(code) == 1))
                # direction on one-hot ordinals: not expressed
            else:
                q = float(xv[col[name]])
                var = v.xget()
                if v.is_binary:
                    q = int(round(q))
                    if f.fixed:
                        cons.append(ex.Add(var == q))
                    elif f.direction > 0:
                        cons.append(ex.Add(var >= q))
                    else:
                        cons.append(ex.Add(var <= q))
                elif v.is_continuous:
                    levels = np.asarray(v.levels, dtype=float)
                    j = 0
                    while j + 2 < len(levels) and q > levels[j + 1]:
                        j += 1
                    if f.fixed:
                        cons.append(ex.Add(var == j))
                    elif f.direction > 0:
                        cons.append(ex.Add(var >= j))
                    else:
                        cons.append(ex.Add(var <= j))
                else:  # discrete: var holds a value near a threshold; stay in / beyond q's region
                    t = np.asarray(v.thresholds, dtype=float)
                    if t.size == 0:
                        continue  # the trees never test it: OCEAN returns the factual's value
                    r = int(np.searchsorted(t, q, side="left"))
                    low = int(np.floor(t[r - 1])) + 1 if r > 0 else None   # var > t[r-1]
                    high = int(np.floor(t[r])) if r < t.size else None     # var <= t[r]
                    if (f.fixed or f.direction > 0) and low is not None:
                        cons.append(ex.Add(var >= low))
                    if (f.fixed or f.direction < 0) and high is not None:
                        cons.append(ex.Add(var <= high))
            if cons:
                ex.add_garbage(*cons)

    def explain(self, x: pd.DataFrame) -> PeerResult:
        t0 = time.perf_counter()
        if self.unsupported:
            return PeerResult(None, 0.0, "unsupported: " + self.unsupported)
        x = x[self._columns]
        xv = x.to_numpy(dtype=float).ravel()
        note = ""
        try:
            with _quiet():
                if self.backend == "cp":
                    self._actionability(x)
                    if any(f.onehot and f.direction and not f.fixed for f in self._feats.values()):
                        note = "one-hot ordinal direction not enforced"
                    exp = self._explainer.explain(xv, y=self._desired, norm=self.norm,
                                                  max_time=self.max_time, num_workers=self.num_workers)
                else:
                    note = f"actionability not enforced by the {self.backend} back-end"
                    exp = self._explainer.explain(xv, y=self._desired, norm=self.norm,
                                                  max_time=self.max_time)
        except Exception as exc:  # noqa: BLE001
            return PeerResult(None, time.perf_counter() - t0, _short(exc))
        seconds = time.perf_counter() - t0
        if exp is None:
            return PeerResult(None, seconds, "OCEAN found no counterfactual" + (f"; {note}" if note else ""))
        values = dict(zip(self._columns, np.asarray(exp.x, dtype=float)))
        return PeerResult(_cast_like(values, x), seconds, note)


# =====================================================================================
# Registry
# =====================================================================================

_STATUS: dict[str, str] | None = None
_OK: dict[str, bool] = {}


def _probe() -> dict[str, str]:
    """name -> "ok <versions>" or the reason the peer cannot run here."""
    global _STATUS
    if _STATUS is not None:
        return _STATUS
    status: dict[str, str] = {"mo": f"ok (numpy {np.__version__})"}
    try:
        with _quiet():
            importlib.import_module("dice_ml")
        st = f"ok (dice-ml {_version('dice-ml')})"
        ok = True
    except Exception as exc:  # noqa: BLE001
        st, ok = f"unavailable: {_short(exc)}", False
    for m in DicePeer.METHODS:
        status[f"dice-{m}"], _OK[f"dice-{m}"] = st, ok
    try:
        with _quiet():
            _import_recourse()
        solvers = _ar_solvers()
        if solvers:
            extra = ", ".join(f"{d} {_version(d)}" for d in ("mip", "cplex") if _version(d))
            status["ar"], _OK["ar"] = (f"ok (actionable-recourse {_version('actionable-recourse')}; "
                                       f"solvers {solvers}; {extra})"), True
        else:
            status["ar"], _OK["ar"] = "unavailable: no MIP solver (install mip or cplex)", False
    except Exception as exc:  # noqa: BLE001
        status["ar"], _OK["ar"] = f"unavailable: {_short(exc)}", False
    if sys.version_info < (3, 12):
        status["ocean"], _OK["ocean"] = (f"unavailable: oceanpy requires Python >= 3.12 "
                                         f"(this is {sys.version_info.major}.{sys.version_info.minor})"), False
    else:
        try:
            with _quiet():
                importlib.import_module("ocean")
            status["ocean"], _OK["ocean"] = f"ok (oceanpy {_version('oceanpy')})", True
        except Exception as exc:  # noqa: BLE001
            status["ocean"], _OK["ocean"] = f"unavailable: {_short(exc)}", False
    _OK["mo"] = True
    _STATUS = status
    return status


def peer_status() -> dict[str, str]:
    """Every known peer -> "ok (versions)" or "unavailable: <reason>"."""
    return dict(_probe())


def available_peers() -> dict[str, Callable[..., Peer]]:
    """name -> factory (keyword options of the adapter class), only for peers that import."""
    _probe()
    factories: dict[str, Callable[..., Peer]] = {
        "mo": MinimumObservable,
        "dice-random": lambda **kw: DicePeer("random", **kw),
        "dice-genetic": lambda **kw: DicePeer("genetic", **kw),
        "dice-kdtree": lambda **kw: DicePeer("kdtree", **kw),
        "ar": ActionableRecoursePeer,
        "ocean": OceanPeer,
    }
    return {name: f for name, f in factories.items() if _OK.get(name)}


if __name__ == "__main__":  # python benchmarks/peers.py : what runs here
    for name, st in peer_status().items():
        print(f"{name:13s} {st}")
