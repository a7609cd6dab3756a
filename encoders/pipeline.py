"""scikit-learn preprocessing in front of a supported model, encoded exactly.

A fitted :class:`~sklearn.pipeline.Pipeline` (with :class:`~sklearn.compose.ColumnTransformer`,
nested pipelines, scalers, encoders) is walked step by step. Every intermediate column is a
*signal* over MILP columns, of one of two kinds:

``_Num``
    a monotone function ``fn(x)`` of one numeric MILP column ``x``. ``fn`` replays sklearn's
    own float64 operations in sklearn's order (``(x - mean_) / scale_`` for a dense
    StandardScaler, ``x * (1 / scale_)`` for a sparse one, ...), so a tree split on the
    scaled value is turned into raw-unit bounds that route exactly as the model does
    (:meth:`encoders.inputs.NumericInput.cut`); ``a x + b`` is its affine form for linear rows.
``_Levels``
    one value per level of a discrete feature, the level being chosen by indicator
    expressions (exactly one is 1). Encoders (``OneHotEncoder``, ``OrdinalEncoder``) map
    levels to levels: the value of every output column at every level is computed by the
    fitted step itself, so sklearn's handling of unknown, infrequent and dropped categories
    is reproduced by construction rather than re-implemented.

At the end the signals, in the final estimator's input order, become model inputs
(:class:`~encoders.inputs.NumericInput`, :class:`~encoders.inputs.DiscreteInput`) and the
estimator is encoded by its family's reader and formulation (:func:`encoders.encode_model`'s
dispatch), so every family (linear, trees, boosting, ReLU networks) works behind a pipeline.
Before that, the encoding is checked against the pipeline's own ``transform`` on probe rows
(exact float equality), so a mistake in column order or arithmetic cannot pass silently.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import UnsupportedModelError, _family, model_input_names
from .inputs import CategoryInput, Cut, DiscreteInput, Encoding, ModelInput, NumericInput
from .milp import MILP, LinExpr

SUPPORTED_STEPS = (
    "Pipeline", "ColumnTransformer (column names, indices, slices, masks; 'passthrough', 'drop', "
    "remainder, transformer_weights)", "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler",
    "OneHotEncoder", "OrdinalEncoder", "SimpleImputer (missing_values NaN/None: the schema admits no "
    "missing values, so it is the identity)", "PCA (linear models and MLPs only)",
    "FunctionTransformer(func=None)", "'passthrough'", "None",
)
# an encoder applied to an integer column enumerates its values; beyond this many it refuses
MAX_ENUMERATED_VALUES = 1024

_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "sub": np.subtract, "add": np.add, "mul": np.multiply, "div": np.divide,
}


# ---- signals ----------------------------------------------------------------------------

@dataclass
class _Num:
    """``fn(x)`` of the numeric MILP column ``var``; ``fn`` = ``base`` then ``ops`` in order."""

    var: int
    lb: float
    ub: float
    integer: bool
    name: str
    a: float = 1.0
    b: float = 0.0
    base: Callable[[np.ndarray], np.ndarray] | None = None
    ops: tuple = ()

    def fn(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64)
        if self.base is not None:
            z = np.asarray(self.base(z), dtype=np.float64)
        for op, c in self.ops:
            z = _OPS[op](z, c)
        return z

    def then(self, op: str, c: float) -> "_Num":
        c = np.float64(c)
        a, b = self.a, self.b
        if op == "sub":
            b = b - float(c)
        elif op == "add":
            b = b + float(c)
        elif op == "mul":
            a, b = a * float(c), b * float(c)
        else:
            a, b = a / float(c), b / float(c)
        return replace(self, a=a, b=b, ops=self.ops + ((op, c),))

    @property
    def is_identity(self) -> bool:
        return self.base is None and not self.ops and self.a == 1.0 and self.b == 0.0


@dataclass
class _Levels:
    """``values[l]`` when ``indicators[l]`` is 1; values may be labels (object) or numbers."""

    values: np.ndarray
    indicators: list[LinExpr]
    name: str


@dataclass
class _Affine:
    """A linear combination of several columns (PCA): exact in real arithmetic only, so it
    serves models that are affine in their inputs (linear, ReLU networks), not tree splits."""

    expr: LinExpr
    name: str


_Signal = _Num | _Levels | _Affine


def _affine(sig: _Signal, path: str, cls: str) -> LinExpr:
    if isinstance(sig, _Affine):
        return sig.expr
    if isinstance(sig, _Num):
        return LinExpr([sig.var], [sig.a], sig.b)
    v = _numeric_values(sig)
    if v is None:
        raise UnsupportedModelError(f"pipeline step {path!r} ({cls}) receives column {sig.name!r} of text "
                                    "levels; encode it first (OneHotEncoder / OrdinalEncoder)")
    return LinExpr.sum(ind * float(x) for ind, x in zip(sig.indicators, v))


class AffineInput:
    """Model input ``expr`` (a linear combination of MILP columns, e.g. a PCA component).

    Linear models and ReLU networks read ``expr``; a tree split on it is not a split on one
    column, so :meth:`right_of` refuses.
    """

    def __init__(self, expr: LinExpr, name: str = "") -> None:
        self._expr, self.name = expr, name

    @property
    def expr(self) -> LinExpr:
        return self._expr

    def right_of(self, t: float, strict: bool = False, float32: bool = True) -> LinExpr:
        raise UnsupportedModelError(
            f"input {self.name!r} is a linear combination of several columns (PCA); a tree split on it "
            "cannot be encoded exactly — use PCA only in front of linear models or MLPs")


def _numeric_values(sig: _Levels) -> np.ndarray | None:
    """The level values as float64, or None for labels (text stays text, even "1")."""
    if any(isinstance(v, (str, bytes)) for v in sig.values):
        return None
    try:
        return np.asarray(sig.values, dtype=np.float64)
    except (TypeError, ValueError):
        return None


# ---- the walk ---------------------------------------------------------------------------

@dataclass
class _Walk:
    """One pass over a pipeline's steps, adding to ``milp`` what enumerations need."""

    milp: MILP
    links: list = field(default_factory=list)  # (var, raw values, binaries) of enumerated columns

    # -- dispatch
    def step(self, est: Any, path: str, sigs: list[_Signal], sparse: bool) -> tuple[list[_Signal], bool]:
        if est is None or (isinstance(est, str) and est == "passthrough"):
            return sigs, sparse
        if isinstance(est, str):
            raise UnsupportedModelError(f"pipeline step {path!r} is the string {est!r}; "
                                        f"supported steps: {', '.join(SUPPORTED_STEPS)}")
        cls = type(est).__name__
        n_in = getattr(est, "n_features_in_", None)
        if n_in is not None and n_in != len(sigs):
            raise ValueError(f"pipeline step {path!r} ({cls}) takes {n_in} columns but receives {len(sigs)}")
        if cls == "Pipeline":
            for name, sub in est.steps:
                sigs, sparse = self.step(sub, f"{path}/{name}", sigs, sparse)
            return sigs, sparse
        if cls == "ColumnTransformer":
            return self.column_transformer(est, path, sigs, sparse)
        if cls in ("StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler"):
            return self.scaler(est, path, sigs, sparse), sparse
        if cls in ("OneHotEncoder", "OrdinalEncoder"):
            return self.encoder(est, path, sigs)
        if cls == "SimpleImputer":
            return self.imputer(est, path, sigs), sparse
        if cls == "PCA":
            return self.pca(est, path, sigs), False
        if cls == "FunctionTransformer" and est.func is None:
            return sigs, sparse  # what ColumnTransformer makes of 'passthrough'
        raise UnsupportedModelError(
            f"pipeline step {path!r} ({cls}) is not supported; supported steps: {', '.join(SUPPORTED_STEPS)}")

    # -- ColumnTransformer: the output is the transformers' outputs side by side, in the
    # order of transformers_ (remainder last), 'drop' and empty selections left out
    def column_transformer(self, ct: Any, path: str, sigs: list[_Signal], sparse: bool):
        index = getattr(ct, "_transformer_to_input_indices", None)
        if index is None:
            raise UnsupportedModelError(f"pipeline step {path!r} (ColumnTransformer): this scikit-learn "
                                        "version does not expose the fitted column selection")
        weights = ct.transformer_weights or {}
        out: list[_Signal] = []
        for name, trans, _ in ct.transformers_:
            if isinstance(trans, str) and trans == "drop":
                continue
            cols = list(index[name])
            if not cols:
                continue
            sub, _ = self.step(trans, f"{path}/{name}", [sigs[i] for i in cols], sparse)
            w = weights.get(name)
            if w is not None:
                sub = [_apply(s, "mul", float(w), f"{path}/{name}", "transformer_weights") for s in sub]
            out.extend(sub)
        return out, bool(getattr(ct, "sparse_output_", False))

    # -- scalers: elementwise float64 operations in sklearn's order; on sparse input the
    # division becomes a multiplication by the reciprocal (sklearn's inplace_column_scale)
    def scaler(self, est: Any, path: str, sigs: list[_Signal], sparse: bool) -> list[_Signal]:
        cls = type(est).__name__
        ops: list[list[tuple[str, float]]] = [[] for _ in sigs]
        clip: tuple[float, float] | None = None
        for j in range(len(sigs)):
            if cls == "StandardScaler":
                if sparse:
                    if est.scale_ is not None:
                        ops[j].append(("mul", (1 / est.scale_)[j]))
                else:
                    if est.with_mean:
                        ops[j].append(("sub", est.mean_[j]))
                    if est.with_std:
                        ops[j].append(("div", est.scale_[j]))
            elif cls == "RobustScaler":
                if sparse:
                    if est.with_scaling:
                        ops[j].append(("mul", (1.0 / est.scale_)[j]))
                else:
                    if est.with_centering:
                        ops[j].append(("sub", est.center_[j]))
                    if est.with_scaling:
                        ops[j].append(("div", est.scale_[j]))
            elif cls == "MinMaxScaler":
                ops[j] += [("mul", est.scale_[j]), ("add", est.min_[j])]
                if est.clip:
                    clip = (float(est.feature_range[0]), float(est.feature_range[1]))
            else:  # MaxAbsScaler
                ops[j].append(("mul", (1.0 / est.scale_)[j]) if sparse else ("div", est.scale_[j]))
                if getattr(est, "clip", False):
                    clip = (-1.0, 1.0)
        out = []
        for sig, seq in zip(sigs, ops):
            for op, c in seq:
                sig = _apply(sig, op, c, path, cls)
            if clip is not None:
                sig = _clip(sig, clip, path, cls)
            out.append(sig)
        return out

    # -- encoders: each output column's value at each level, computed by the step itself
    def encoder(self, est: Any, path: str, sigs: list[_Signal]) -> tuple[list[_Signal], bool]:
        cls = type(est).__name__
        for s in sigs:
            if isinstance(s, _Affine):
                raise UnsupportedModelError(f"pipeline step {path!r} ({cls}) encodes the combined column "
                                            f"{s.name!r} (PCA output); that is not a discrete column")
        levels = [s if isinstance(s, _Levels) else self.enumerate(s, path, cls) for s in sigs]
        if cls == "OneHotEncoder":
            widths = list(getattr(est, "_n_features_outs", None) or _onehot_widths(est))
        else:
            widths = [1] * len(levels)
        try:
            names = [str(n) for n in est.get_feature_names_out()]
        except Exception:  # noqa: BLE001 -- names are cosmetic
            names = [f"{path}[{k}]" for k in range(sum(widths))]
        out: list[_Signal] = []
        at = 0
        for j, sig in enumerate(levels):
            _check_known(est, path, cls, j, sig)
            Z = _probe(est, levels, j, path, cls)
            if Z.shape[1] != sum(widths):
                raise ArithmeticError(f"pipeline step {path!r} ({cls}): expected {sum(widths)} output "
                                      f"columns, transform gave {Z.shape[1]}")
            block = Z[:, at:at + widths[j]]
            if not np.all(np.isfinite(block)):
                bad = [sig.values[i] for i in np.nonzero(~np.isfinite(block).all(axis=1))[0]]
                raise UnsupportedModelError(
                    f"pipeline step {path!r} ({cls}) encodes levels {bad} of column {sig.name!r} as missing "
                    "values (NaN); the model would have to handle missing values")
            for k in range(widths[j]):
                out.append(_Levels(block[:, k].copy(), sig.indicators, names[at + k]))
            at += widths[j]
        sparse = cls == "OneHotEncoder" and bool(getattr(est, "sparse_output", False))
        return out, sparse

    def pca(self, est: Any, path: str, sigs: list[_Signal]) -> list[_Signal]:
        """``(X @ components_.T - mean_ @ components_.T) / sqrt(explained_variance_)`` (whiten)."""
        xs = [_affine(s, path, "PCA") for s in sigs]
        C = np.asarray(est.components_, dtype=np.float64)
        shift = np.asarray(est.mean_, dtype=np.float64).reshape(1, -1) @ C.T
        scale = np.ones(C.shape[0])
        if est.whiten:
            scale = np.sqrt(np.asarray(est.explained_variance_, dtype=np.float64))
            scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        return [_Affine((LinExpr.sum(x * float(c) for x, c in zip(xs, C[k]) if c != 0.0) - float(shift[0, k]))
                        * (1.0 / float(scale[k])), f"{path}[{k}]") for k in range(C.shape[0])]

    def enumerate(self, sig: _Num, path: str, cls: str) -> _Levels:
        """An integer column as levels: one new binary per value, tied to the column."""
        if not sig.integer:
            raise UnsupportedModelError(
                f"pipeline step {path!r} ({cls}) encodes column {sig.name!r}, which the schema declares "
                "real-valued; declare it categorical, ordinal or integer")
        raw = np.arange(math.ceil(sig.lb), math.floor(sig.ub) + 1, dtype=np.float64)
        if raw.size > MAX_ENUMERATED_VALUES:
            raise UnsupportedModelError(
                f"pipeline step {path!r} ({cls}) encodes integer column {sig.name!r} with {raw.size} values; "
                f"at most {MAX_ENUMERATED_VALUES} are enumerated — declare it categorical or narrow its bounds")
        bins = self.milp.add_binaries(raw.size, name=f"{sig.name}.value")
        self.milp.add_eq(LinExpr(bins, np.ones(raw.size)), 1.0, name=f"{sig.name}.value.one")
        self.milp.add_eq(LinExpr(np.r_[sig.var, bins], np.r_[1.0, -raw]), 0.0, name=f"{sig.name}.value.link")
        self.links.append((sig.var, raw, bins))
        return _Levels(sig.fn(raw), [LinExpr.var(int(b)) for b in bins], sig.name)

    # -- SimpleImputer: the schema admits no missing values, so imputing NaN/None is the
    # identity; columns the imputer dropped at fit (all missing) are dropped here too
    def imputer(self, est: Any, path: str, sigs: list[_Signal]) -> list[_Signal]:
        mv = est.missing_values
        nan_like = mv is None or (isinstance(mv, float) and math.isnan(mv)) or repr(mv) == "<NA>"
        if not nan_like:
            raise UnsupportedModelError(
                f"pipeline step {path!r} (SimpleImputer) treats the value {mv!r} as missing and replaces "
                "it, which the encoding does not support; supported: missing_values=np.nan/None")
        if est.add_indicator:
            raise UnsupportedModelError(f"pipeline step {path!r} (SimpleImputer) with add_indicator=True "
                                        "is not supported")
        if est.keep_empty_features:
            return sigs
        stats = np.asarray(est.statistics_, dtype=object)
        keep = [not (s is None or (isinstance(s, float) and math.isnan(s))) for s in stats]
        return [s for s, k in zip(sigs, keep) if k]


def _apply(sig: _Signal, op: str, c: float, path: str, cls: str) -> _Signal:
    if isinstance(sig, _Num):
        return sig.then(op, c)
    if isinstance(sig, _Affine):
        c = float(c)
        e = sig.expr
        e = e - c if op == "sub" else e + c if op == "add" else e * c if op == "mul" else e * (1.0 / c)
        return _Affine(e, sig.name)
    v = _numeric_values(sig)
    if v is None:
        raise UnsupportedModelError(f"pipeline step {path!r} ({cls}) receives column {sig.name!r} of text "
                                    "levels; encode it first (OneHotEncoder / OrdinalEncoder)")
    return _Levels(_OPS[op](v, np.float64(c)), sig.indicators, sig.name)


def _clip(sig: _Signal, rng: tuple[float, float], path: str, cls: str) -> _Signal:
    """Clipping is exact on levels; on a numeric column only when it never bites."""
    if isinstance(sig, _Levels):
        return _Levels(np.clip(np.asarray(sig.values, dtype=np.float64), *rng), sig.indicators, sig.name)
    if isinstance(sig, _Affine):
        raise UnsupportedModelError(f"pipeline step {path!r} ({cls}, clip=True) clips the combined column "
                                    f"{sig.name!r}; use clip=False")
    lo, hi = sig.fn(np.array([sig.lb, sig.ub]))
    lo, hi = min(lo, hi), max(lo, hi)
    if lo < rng[0] or hi > rng[1]:
        raise UnsupportedModelError(
            f"pipeline step {path!r} ({cls}, clip=True) clips column {sig.name!r}: over its bounds "
            f"[{sig.lb:g}, {sig.ub:g}] the output spans [{lo:g}, {hi:g}], outside {list(rng)}; "
            "a clipped value is not an affine function — use clip=False or narrow the bounds")
    return sig


def _onehot_widths(est: Any) -> list[int]:
    """Output columns per input feature (categories, minus the dropped one, infrequent grouped)."""
    widths = [len(c) for c in est.categories_]
    infrequent = getattr(est, "infrequent_categories_", None) or [None] * len(widths)
    for j, inf in enumerate(infrequent):
        if inf is not None and len(inf):
            widths[j] -= len(inf) - 1
    drop = getattr(est, "drop_idx_", None)
    if drop is not None:
        widths = [w - (d is not None) for w, d in zip(widths, drop)]
    return widths


def _same(u: Any, v: Any) -> bool:
    if isinstance(u, (int, float, np.number)) and isinstance(v, (int, float, np.number)) \
            and not isinstance(u, bool) and not isinstance(v, bool):
        return float(u) == float(v)
    return u == v


def _check_known(est: Any, path: str, cls: str, j: int, sig: _Levels) -> None:
    """Refuse schema levels the encoder was not fitted on when it would raise on them."""
    if est.handle_unknown != "error":
        return
    cats = list(est.categories_[j])
    unknown = [v for v in sig.values if not any(_same(v, c) for c in cats)]
    if unknown:
        fix = "handle_unknown='ignore'" if cls == "OneHotEncoder" else "handle_unknown='use_encoded_value'"
        raise UnsupportedModelError(
            f"pipeline step {path!r} ({cls}, handle_unknown='error') was not fitted on levels {unknown} of "
            f"column {sig.name!r}, which the schema allows; use {fix}, or remove those levels from the schema")


def _probe(est: Any, levels: list[_Levels], j: int, path: str, cls: str) -> np.ndarray:
    """``est.transform`` of rows holding every level of column ``j`` (a known category elsewhere)."""
    n = len(levels[j].values)
    cols = []
    for i, sig in enumerate(levels):
        cols.append(np.asarray(sig.values, dtype=object) if i == j
                    else np.full(n, est.categories_[i][0], dtype=object))
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        import pandas as pd
        X = pd.DataFrame({str(c): _column(v) for c, v in zip(names, cols)})
    else:
        X = np.column_stack([_column(v) for v in cols]) if cols else np.zeros((n, 0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Z = est.transform(X)
    except Exception as exc:  # noqa: BLE001 -- re-raised with the step and column named
        raise UnsupportedModelError(f"pipeline step {path!r} ({cls}) cannot encode the levels "
                                    f"{list(levels[j].values)} of column {levels[j].name!r}: {exc}") from exc
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
    return np.asarray(Z, dtype=np.float64)


def _column(v: np.ndarray) -> np.ndarray:
    """Numbers as float64 (as sklearn's validation would make them), labels as objects."""
    try:
        if all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in v):
            return np.asarray(v, dtype=np.float64)
    except TypeError:
        pass
    return np.asarray(v, dtype=object)


# ---- inputs in, inputs out --------------------------------------------------------------

def _signal(inp: ModelInput, name: str) -> _Signal:
    if isinstance(inp, NumericInput):
        base = inp.transform
        if base is None and not (inp.a == 1.0 and inp.b == 0.0):
            a, b = inp.a, inp.b
            base = lambda x: a * x + b  # noqa: E731
        return _Num(inp.var, inp.lb, inp.ub, inp.integer, name, inp.a, inp.b, base)
    if isinstance(inp, DiscreteInput):
        return _Levels(np.asarray(inp.values, dtype=np.float64), list(inp.indicators), name)
    if isinstance(inp, CategoryInput):
        return _Levels(np.asarray(list(inp.labels), dtype=object), list(inp.indicators), name)
    raise TypeError(f"column {name!r}: cannot feed a {type(inp).__name__} into a pipeline")


@dataclass
class _Mirror:
    """A decreasing map ``fn(x)`` encoded as the increasing ``fn(-x')`` of ``x' = -x``."""

    var: int
    neg: int


def _model_input(milp: MILP, sig: _Signal, model: str, mirrors: list[_Mirror]) -> ModelInput:
    if isinstance(sig, _Affine):
        return AffineInput(sig.expr, name=sig.name)
    if isinstance(sig, _Levels):
        v = _numeric_values(sig)
        if v is None:
            raise UnsupportedModelError(
                f"column {sig.name!r} reaches the model ({model}) as text levels; add a OneHotEncoder or "
                "OrdinalEncoder step for it")
        return DiscreteInput(v, sig.indicators, name=sig.name)
    if sig.a > 0:
        return NumericInput(sig.var, sig.lb, sig.ub, sig.integer, sig.a, sig.b,
                            None if sig.is_identity else sig.fn, name=sig.name)
    if sig.a == 0:  # a constant column (e.g. a zero transformer weight)
        return DiscreteInput(sig.fn(np.array([sig.lb])), [LinExpr.constant(1.0)], name=sig.name)
    # decreasing: feed x' = -x, for which the map is increasing; tree cuts are mirrored back
    # onto x after encoding so that decoding snaps x itself onto the exact side
    neg = milp.add_var(-sig.ub, -sig.lb, sig.integer, name=f"{sig.name}.negated")
    milp.add_eq(LinExpr([sig.var, neg], [1.0, 1.0]), 0.0, name=f"{sig.name}.negated")
    mirrors.append(_Mirror(sig.var, neg))
    return NumericInput(neg, -sig.ub, -sig.lb, sig.integer, -sig.a, sig.b, lambda v: sig.fn(-np.asarray(v)),
                        name=f"{sig.name}(negated)")


def _mirror_cuts(milp: MILP, enc: Encoding, mirrors: list[_Mirror]) -> None:
    """Cut on ``x' = -x`` with binary ``y`` (1: ``x' >= R``) is a cut on ``x`` with ``1 - y``."""
    by_neg = {m.neg: m.var for m in mirrors}
    for cut in list(enc.cuts):
        if cut.var not in by_neg:
            continue
        w = milp.add_binaries(1, name=f"{milp.col_names[cut.var]}.mirror")[0]
        milp.add_eq(LinExpr([int(w), cut.right], [1.0, 1.0]), 1.0, name="mirror")
        enc.cuts.append(Cut(by_neg[cut.var], -cut.right_min, -cut.left_max, int(w)))


def _split(model: Any, path: str = "") -> tuple[list[tuple[str, Any]], Any, str]:
    """(transformer steps with their paths, final estimator, its path) of a Pipeline."""
    cls = type(model).__name__
    if cls == "ColumnTransformer":
        raise UnsupportedModelError("a ColumnTransformer only transforms; put it in a Pipeline that ends "
                                    "in a classifier")
    steps = list(model.steps)
    name, final = steps[-1]
    here = [(f"{path}{n}", s) for n, s in steps[:-1]]
    if final is None or isinstance(final, str):
        raise UnsupportedModelError(f"pipeline step {path + name!r} is {final!r}; a pipeline must end in a "
                                    "classifier")
    if type(final).__name__ == "Pipeline":
        inner, final, fpath = _split(final, f"{path}{name}/")
        return here + inner, final, fpath
    return here, final, f"{path}{name}"


def pipeline_inputs(milp: MILP, model: Any, inputs: Mapping[str, ModelInput],
                    columns: Sequence[str]) -> tuple[Any, list[ModelInput], list[_Mirror]]:
    """The final estimator of ``model`` and its inputs as model inputs, in its input order.

    ``inputs`` maps each raw frame column to its model input; ``columns`` are the raw
    columns in frame order (used when the pipeline was fitted without column names).
    Raises :class:`UnsupportedModelError` naming any step that cannot be encoded.
    """
    check_steps(model)  # names the first unsupported step before anything is built
    steps, final, fpath = _split(model)
    order = model_input_names(model, columns)
    missing = [c for c in order if c not in inputs]
    if missing:
        raise ValueError(f"the pipeline expects columns {missing} that the schema does not define")
    walk = _Walk(milp)
    sigs: list[_Signal] = [_signal(inputs[c], c) for c in order]
    raw = list(sigs)
    sparse = False
    for path, step in steps:
        sigs, sparse = walk.step(step, path, sigs, sparse)
    n_in = getattr(final, "n_features_in_", None)
    if n_in is not None and n_in != len(sigs):
        raise ArithmeticError(f"the pipeline's steps give {len(sigs)} columns but its final estimator "
                              f"{fpath!r} takes {n_in}")
    _self_check(milp, steps, model, order, raw, sigs, walk.links)
    label = f"{fpath!r} ({type(final).__name__})"
    mirrors: list[_Mirror] = []
    return final, [_model_input(milp, s, label, mirrors) for s in sigs], mirrors


_STEP_CLASSES = {"Pipeline", "ColumnTransformer", "StandardScaler", "MinMaxScaler", "RobustScaler",
                 "MaxAbsScaler", "OneHotEncoder", "OrdinalEncoder", "SimpleImputer", "FunctionTransformer", "PCA"}
# final estimators that only ever see their inputs through linear expressions
_AFFINE_FAMILIES = ("LogisticRegression", "LogisticRegressionCV", "LinearSVC", "SGDClassifier", "RidgeClassifier",
                    "RidgeClassifierCV", "Perceptron", "PassiveAggressiveClassifier", "MLPClassifier")


def check_steps(model: Any) -> None:
    """Raise :class:`UnsupportedModelError` naming the first step (name and class) that cannot
    be encoded, and the final estimator's type if its family is not supported.

    A structural check (no MILP is built): steps that are supported only for some settings
    (clipping scalers, encoders meeting unknown levels) are refused when encoded, with the
    column named.
    """
    steps, final, fpath = _split(model)

    def visit(est: Any, path: str) -> None:
        if est is None or (isinstance(est, str) and est in ("passthrough", "drop")):
            return
        cls = type(est).__name__
        if cls not in _STEP_CLASSES or (cls == "FunctionTransformer" and est.func is not None):
            raise UnsupportedModelError(
                f"pipeline step {path!r} ({cls}) is not supported; supported steps: {', '.join(SUPPORTED_STEPS)}")
        if cls == "PCA" and type(final).__name__ not in _AFFINE_FAMILIES:
            raise UnsupportedModelError(
                f"pipeline step {path!r} (PCA) is supported only in front of linear models and MLPs, not "
                f"{type(final).__name__}: its splits on a combination of columns cannot be encoded exactly")
        if cls == "Pipeline":
            for n, sub in est.steps:
                visit(sub, f"{path}/{n}")
        elif cls == "ColumnTransformer":
            items = getattr(est, "transformers_", None) or est.transformers
            for n, sub, _ in items:
                visit(sub, f"{path}/{n}")

    for path, step in steps:
        visit(step, path)
    try:
        _family(final)
    except UnsupportedModelError as exc:
        raise UnsupportedModelError(f"pipeline step {fpath!r}: {exc}") from exc


def encode_pipeline(milp: MILP, model: Any, inputs: Mapping[str, ModelInput], columns: Sequence[str],
                    name: str = "model", **options) -> Encoding:
    """Encode a fitted Pipeline ending in a supported classifier (see :data:`SUPPORTED_STEPS`).

    The preprocessing becomes exact model inputs over the raw columns' MILP columns (new
    columns only where an encoder enumerates an integer column or a map is decreasing);
    the final estimator is encoded by its family's formulation with ``options``.
    """
    with milp.block(name):
        final, model_inputs, mirrors = pipeline_inputs(milp, model, inputs, columns)
        read, encode = _family(final)
        enc = encode(milp, read(final), model_inputs, name=name, **options)
        if mirrors:
            _mirror_cuts(milp, enc, mirrors)
    return enc


# ---- self-check against sklearn's own transform -------------------------------------------

def _self_check(milp: MILP, steps: list, model: Any, order: list[str], raw: list[_Signal],
                out: list[_Signal], links: list) -> bool:
    """Probe rows through ``transform`` and through the signals: they must agree exactly.

    Returns False (skipped) only when the probe cannot be built or sklearn refuses it; a
    disagreement is a bug in this module and raises.
    """
    n_rows = min(max([5] + [len(s.values) for s in raw if isinstance(s, _Levels)]), 64)
    X = np.zeros((n_rows, milp.n_vars))
    frame: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for j, sig in enumerate(raw):
        if isinstance(sig, _Num):
            if sig.var in seen:
                return False
            seen.add(sig.var)
            frac = np.r_[0.0, 1.0, (np.arange(2, n_rows) * 0.6180339887 + j * 0.4142135) % 1.0][:n_rows]
            x = sig.lb + frac * (sig.ub - sig.lb)
            x = np.round(x) if sig.integer else x
            X[:, sig.var] = x
            frame[order[j]] = sig.fn(x)
        else:
            vars_ = [int(e.idx[0]) if e.idx.size == 1 and e.coef[0] == 1.0 and e.const == 0.0 else -1
                     for e in sig.indicators]
            if min(vars_, default=-1) < 0 or seen & set(vars_):
                return False
            seen.update(vars_)
            pick = (np.arange(n_rows) + j) % len(vars_)
            X[np.arange(n_rows), np.asarray(vars_)[pick]] = 1.0
            frame[order[j]] = np.asarray(sig.values, dtype=object)[pick]
    for var, values, bins in links:
        X[:, bins] = (X[:, [var]] == values[None, :])
    try:
        if getattr(model, "feature_names_in_", None) is not None:
            import pandas as pd
            Z = pd.DataFrame({c: _column(frame[c]) for c in order})
        else:
            Z = np.column_stack([_column(frame[c]) for c in order])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _, step in steps:
                if step is not None and not isinstance(step, str):
                    Z = step.transform(Z)
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
        Z = np.asarray(Z, dtype=np.float64)
    except Exception:  # noqa: BLE001 -- the check is a safety net, not a requirement
        return False
    for k, sig in enumerate(out):
        if isinstance(sig, _Affine):  # real arithmetic: equal up to rounding
            mine = sig.expr.const + X[:, sig.expr.idx] @ sig.expr.coef
            tol = 1e-9 * (1.0 + np.abs(sig.expr.coef).sum() * max(1.0, float(np.abs(X).max())))
            if not np.allclose(mine, Z[:, k], rtol=1e-9, atol=tol):
                raise ArithmeticError(f"pipeline encoding disagrees with the pipeline's transform at output "
                                      f"column {k} ({sig.name!r}): {mine[:5]} vs {Z[:5, k]}; please report this")
            continue
        if isinstance(sig, _Num):
            mine = sig.fn(X[:, sig.var])
        else:
            v = _numeric_values(sig)
            if v is None:
                continue  # text reaching the model: refused later with a clear message
            if all(e.idx.size == 1 and e.coef[0] == 1.0 and e.const == 0.0 for e in sig.indicators):
                ind = X[:, [int(e.idx[0]) for e in sig.indicators]]
            else:
                ind = np.array([[e.value(x) for e in sig.indicators] for x in X])
            mine = v[np.argmax(ind, axis=1)]
        if not np.array_equal(mine, Z[:, k]):
            raise ArithmeticError(f"pipeline encoding disagrees with the pipeline's transform at output column "
                                  f"{k} ({sig.name!r}): {mine[:5]} vs {Z[:5, k]}; please report this")
    return True


__all__ = ["encode_pipeline", "pipeline_inputs", "check_steps", "AffineInput", "SUPPORTED_STEPS",
           "MAX_ENUMERATED_VALUES"]
