"""ReLU networks (sklearn ``MLPClassifier``): reader and big-M formulation with tight bounds.

Reader: :func:`read_mlp` turns a fitted ``MLPClassifier`` into a :class:`NetworkDef` (the
affine layers, the hidden activation, the output rule) that predicts by itself exactly like
the model.

Formulation (:func:`encode_relu`), layer by layer:

1. bounds on every pre-activation ``a = W h + b``: interval arithmetic from the column bounds
   (aware of exactly-one groups of binaries such as one-hot categoricals), then optionally
   LP-based bound tightening (two small LPs per neuron over the LP relaxation of the layers
   below, each bound certified from the LP's dual so that solver tolerances cannot make it
   invalid);
2. neurons stable over the box become cheap: always active (``lo >= 0``) -> ``h = a``, no
   binary; always inactive (``hi <= 0``) -> the neuron vanishes;
3. every other neuron gets a pre-activation column ``a`` in ``[L, U]``, a post-activation
   column ``h`` in ``[0, U]`` and one binary ``z`` (1 = active) with the big-M rows
   ``h >= a``, ``h <= a - L (1 - z)``, ``h <= U z``.

The class scores are affine expressions of the last hidden layer. The compiled MILP is
shared by every person; :class:`ReluBounds` (the encoding's ``tighten`` hook) re-propagates
the intervals over one person's box (with ``person_bounds="lp"`` also LPs) and fixes the
binaries of the neurons that are stable there. With training data, ``mipcf.Recourse`` also
calls it on the box that a verified incumbent's cost allows, which fixes far more of them.

Typical use goes through ``mipcf.Recourse(model, schema, encoder_options={...})`` with the
options of :func:`encode_relu` (``bound_tightening``, ``person_bounds``, ``margin``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from .inputs import Encoding, ModelInput
from .quiet import quiet_stdout
from .milp import MILP, LinExpr

ACTIVATIONS = ("relu", "identity")
BOUND_TIGHTENING = ("lp", "interval")
# neurons whose bound on one side is this small relative to the other side are treated as
# stable (the tiny error is accounted for in the margin): a big-M row with a coefficient of
# 1e-12 is numerically meaningless for the solver
_NEAR_STABLE = 1e-10
# relative widening of every computed bound, against rounding in the bound arithmetic itself
_WIDEN = 1e-9


class _Unsupported(TypeError):
    pass


def _unsupported(message: str) -> Exception:
    try:  # the package's error type (encoders/__init__ is loaded before this module)
        from . import UnsupportedModelError
        return UnsupportedModelError(message)
    except ImportError:  # pragma: no cover - only when this file is used on its own
        return _Unsupported(message)


# ---------------------------------------------------------------------------------------
# reader


@dataclass
class NetworkDef:
    """A feed-forward network ``a_l = h_{l-1} @ W_l + b_l``, ``h_l = act(a_l)``.

    ``layers`` holds ``(W, b)`` with ``W`` of shape ``(n_in, n_out)`` (sklearn's ``coefs_``
    layout, so the arithmetic is the model's own); the last layer gives the output scores.
    ``activation`` is the hidden activation (``"relu"`` or ``"identity"``). ``output`` is
    ``"logistic"`` (one score; class 1 iff ``expit(score) > 0.5``, i.e. score > 0) or
    ``"softmax"`` (one score per class; the first class with the largest probability).
    """

    layers: list[tuple[np.ndarray, np.ndarray]]
    activation: str
    classes: np.ndarray
    output: str

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise _unsupported(f"hidden activation {self.activation!r} is not piecewise linear; "
                               f"supported: {', '.join(ACTIVATIONS)}")
        if self.output not in ("logistic", "softmax"):
            raise _unsupported(f"output {self.output!r} is not supported (logistic or softmax)")
        for k in range(1, len(self.layers)):
            if self.layers[k][0].shape[0] != self.layers[k - 1][0].shape[1]:
                raise ValueError(f"layer {k} takes {self.layers[k][0].shape[0]} inputs but layer {k - 1} "
                                 f"gives {self.layers[k - 1][0].shape[1]}")

    @property
    def n_inputs(self) -> int:
        return int(self.layers[0][0].shape[0])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(W.shape[1]) for W, _ in self.layers[:-1]]

    def pre_activations(self, Z: np.ndarray) -> list[np.ndarray]:
        """Every layer's pre-activation for the rows of ``Z`` (the last one: the scores)."""
        h = np.asarray(Z, dtype=float)
        out = []
        for k, (W, b) in enumerate(self.layers):
            a = h @ W
            a += b
            out.append(a)
            if k < len(self.layers) - 1:
                h = np.maximum(a, 0.0) if self.activation == "relu" else a
        return out

    def decision_function(self, Z: np.ndarray) -> np.ndarray:
        """The output layer's scores (logits), shape ``(n, n_outputs)``."""
        return self.pre_activations(Z)[-1]

    def predict(self, Z: np.ndarray) -> np.ndarray:
        s = self.decision_function(Z)
        if self.output == "logistic":  # sklearn thresholds predict_proba at 0.5
            return self.classes[(expit(s[:, 0]) > 0.5).astype(int)]
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return self.classes[np.argmax(p, axis=1)]


def read_mlp(model: object) -> NetworkDef:
    """Read a fitted sklearn ``MLPClassifier`` (hidden activation ``relu`` or ``identity``)."""
    if not hasattr(model, "coefs_"):
        raise ValueError(f"{type(model).__name__} is not fitted (no coefs_)")
    activation = str(getattr(model, "activation", "relu"))
    if activation not in ACTIVATIONS:
        raise _unsupported(
            f"{type(model).__name__} with activation={activation!r} cannot be encoded exactly in a MILP: "
            f"only piecewise-linear hidden activations ({', '.join(map(repr, ACTIVATIONS))}) are supported")
    out = str(getattr(model, "out_activation_", ""))
    n_out = int(getattr(model, "n_outputs_", model.coefs_[-1].shape[1]))
    if out == "logistic" and n_out == 1:
        output = "logistic"
    elif out == "softmax":
        output = "softmax"
    else:
        raise _unsupported(f"{type(model).__name__} with output activation {out!r} and {n_out} outputs "
                           "(multi-label) is not supported; binary (logistic) and multi-class (softmax) are")
    layers = [(np.asarray(W, dtype=float), np.asarray(b, dtype=float))
              for W, b in zip(model.coefs_, model.intercepts_)]
    return NetworkDef(layers, activation, np.asarray(model.classes_), output)


# ---------------------------------------------------------------------------------------
# bounds


def _safe_dot(M: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``M @ v`` with ``0 * inf = 0`` (a column with no weight does not matter)."""
    with np.errstate(invalid="ignore"):
        return np.where(M != 0.0, M * v, 0.0).sum(axis=1)


def affine_bounds(M: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  groups: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of ``M v + c`` over ``lo <= v <= hi``.

    Each of ``groups`` lists positions of binaries of which exactly one is 1 (one-hot
    levels): their joint contribution is the best / worst single member still allowed by
    the box, not the sum of every member's best.
    """
    M = np.asarray(M, dtype=float)
    free = np.ones(M.shape[1], dtype=bool)
    for g in groups:
        free[g] = False
    Mf = M[:, free]
    pos, neg = np.clip(Mf, 0.0, None), np.clip(Mf, None, 0.0)
    low = c + _safe_dot(pos, lo[free]) + _safe_dot(neg, hi[free])
    high = c + _safe_dot(pos, hi[free]) + _safe_dot(neg, lo[free])
    for g in groups:
        allowed = hi[g] >= 0.5
        forced = lo[g] >= 0.5
        if forced.any():
            allowed = forced
        if not allowed.any():  # empty box: nothing is feasible, keep the plain bounds valid
            allowed = np.ones(g.size, dtype=bool)
        sub = M[:, g[allowed]]
        low = low + sub.min(axis=1)
        high = high + sub.max(axis=1)
    return low, high


def _widen(lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eps = _WIDEN * (1.0 + scale)
    return lo - eps, hi + eps


def _exactly_one_groups(milp: MILP, cols: np.ndarray) -> list[np.ndarray]:
    """Groups of binary columns (global ids) tied by a row ``sum = 1``, touching ``cols``."""
    if milp.n_rows == 0:
        return []
    arr = milp.arrays()
    A = arr.A
    integer = arr.integer
    want = set(int(c) for c in cols)
    taken: set[int] = set()
    groups = []
    for r in np.nonzero((arr.row_lo == 1.0) & (arr.row_hi == 1.0))[0]:
        s, e = A.indptr[r], A.indptr[r + 1]
        members, vals = A.indices[s:e], A.data[s:e]
        if members.size < 2 or not np.all(vals == 1.0) or not np.all(integer[members]):
            continue
        if np.any(arr.lb[members] < 0.0) or np.any(arr.ub[members] > 1.0):
            continue
        ms = set(int(m) for m in members)
        if ms & taken or not ms & want:
            continue
        taken |= ms
        groups.append(np.sort(members).astype(np.int64))
    return groups


class _BoundLP:
    """The LP relaxation of (part of) the MILP, re-solved for one neuron objective at a time.

    Bounds are certified with the LP dual: for any multipliers ``y``, ``c.x >= sum of
    y_r * (row bound) + sum of d_j * (column bound)`` with ``d = c - A^T y``, each bound
    taken on the side the sign asks for. That holds whatever the solver's tolerances did,
    so an inexact LP solution can only loosen a bound, never cut off a feasible point.
    """

    def __init__(self, milp: MILP, rows: np.ndarray) -> None:
        import highspy

        arr = milp.arrays()
        self.A = arr.A[rows].tocsr()
        self.row_lo, self.row_hi = arr.row_lo[rows], arr.row_hi[rows]
        self.lb, self.ub = arr.lb, arr.ub
        n, m = self.lb.size, self.A.shape[0]
        with quiet_stdout():
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", "off")  # keep the basis between objectives (hot starts)
        lp = highspy.HighsLp()
        csc = sp.csc_matrix(self.A) if m else sp.csc_matrix((0, n))
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_, lp.col_upper_ = self.lb, self.ub
        lp.row_lower_, lp.row_upper_ = self.row_lo, self.row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data
        h.passModel(lp)
        self._h = h
        self._ok = highspy.HighsModelStatus.kOptimal
        self.n_solves = 0

    def set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        """Use these column bounds (one person's box) from now on."""
        self.lb, self.ub = np.asarray(lb, dtype=float).copy(), np.asarray(ub, dtype=float).copy()
        idx = np.arange(self.lb.size, dtype=np.int32)
        self._h.changeColsBounds(idx.size, idx, self.lb, self.ub)

    def minimum(self, cols: np.ndarray, coef: np.ndarray, const: float) -> float:
        """A certified lower bound of ``coef . x[cols] + const`` (``-inf`` if none is found)."""
        h = self._h
        idx = cols.astype(np.int32)
        h.changeColsCost(idx.size, idx, coef.astype(float))
        h.run()
        self.n_solves += 1
        status = h.getModelStatus()
        y = np.asarray(h.getSolution().row_dual, dtype=float) if status == self._ok else None
        h.changeColsCost(idx.size, idx, np.zeros(idx.size))
        if y is None or y.size != self.A.shape[0]:
            return -np.inf
        # a multiplier on a row bound that is infinite would give -inf: drop it (any y is valid)
        y = np.where(((y > 0) & ~np.isfinite(self.row_lo)) | ((y < 0) & ~np.isfinite(self.row_hi)), 0.0, y)
        c = np.zeros(self.lb.size)
        np.add.at(c, cols, coef)
        d = c - self.A.T @ y
        with np.errstate(invalid="ignore"):
            row_terms = np.where(y > 0, y * self.row_lo, np.where(y < 0, y * self.row_hi, 0.0))
            col_terms = np.where(d > 0, d * self.lb, np.where(d < 0, d * self.ub, 0.0))
        total = const + row_terms.sum() + col_terms.sum()
        if not np.isfinite(total):
            return -np.inf
        slack = 1e-12 * (abs(const) + np.abs(row_terms).sum() + np.abs(col_terms).sum())
        return float(total - slack)


# ---------------------------------------------------------------------------------------
# formulation


@dataclass
class ReluLayer:
    """One hidden layer as encoded: ``a = M v + c`` over the columns ``inputs``.

    Per neuron: ``lo``/``hi`` are its pre-activation bounds over the compiled box, ``pre``
    its pre-activation column (-1 if it vanished), ``post`` the column of its output
    (the pre-activation column itself when always active, -1 when it vanished), ``z`` its
    binary (-1 when stable). ``state`` is 1 always active, 0 always inactive, -1 unstable.
    """

    M: np.ndarray
    c: np.ndarray
    inputs: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    interval_lo: np.ndarray
    interval_hi: np.ndarray
    state: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    z: np.ndarray
    groups: list[np.ndarray] = field(default_factory=list)  # local positions in ``inputs``


class ReluBounds:
    """Per-person bound tightening for an encoded network (the encoding's ``tighten`` hook).

    Called with one person's column bounds, it propagates intervals through the network
    from that box (intersected with the compiled bounds, which may come from LPs), fixes
    the binary of every neuron that is stable over the box and tightens the pre- and
    post-activation columns, in place. The result for the last few boxes is cached.
    """

    def __init__(self, layers: list[ReluLayer], lb: np.ndarray, ub: np.ndarray, relu: bool = True,
                 cache_size: int = 64, lp_factory=None) -> None:
        self.layers = layers
        self.relu = relu
        # person_bounds="lp": builds the LP relaxation of the network (and its exactly-one
        # rows) once; each new box then re-solves the still unstable neurons over it
        self._lp_factory = lp_factory
        self._lp: _BoundLP | None = None
        self.person_lp_solves = 0
        self._glb, self._gub = lb.copy(), ub.copy()
        self._key_cols = layers[0].inputs
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}
        self.cache_size = cache_size
        self.hits = 0
        self.lp_solves = 0       # LPs solved for the compiled bounds
        self.safe_margin = 0.0   # the margin derived from the solver tolerance
        self.fixed_last = 0  # binaries fixed for the last box (for reports)

    def bounds(self, lb: np.ndarray, ub: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pre-activation bounds of every hidden layer over the box ``lb <= x <= ub``."""
        out = []
        vlo = np.maximum(lb[self._key_cols], self._glb[self._key_cols])
        vhi = np.minimum(ub[self._key_cols], self._gub[self._key_cols])
        for k, ly in enumerate(self.layers):
            if k > 0:
                prev = self.layers[k - 1]
                plo, phi = out[-1]
                alive = prev.post >= 0
                vlo, vhi = plo[alive], phi[alive]
                if self.relu:
                    uns = prev.state[alive] < 0
                    vlo, vhi = np.where(uns, np.maximum(vlo, 0.0), vlo), np.where(uns, np.maximum(vhi, 0.0), vhi)
            lo, hi = affine_bounds(ly.M, ly.c, vlo, vhi, ly.groups)
            lo, hi = _widen(lo, hi, np.abs(ly.M) @ np.maximum(np.abs(vlo), np.abs(vhi)) + np.abs(ly.c))
            lo, hi = np.maximum(lo, ly.lo), np.minimum(hi, ly.hi)
            hi = np.maximum(hi, lo)  # an empty interval only arises from an infeasible box
            out.append((lo, hi))
        return out

    def __call__(self, lb: np.ndarray, ub: np.ndarray) -> None:
        key = lb[self._key_cols].tobytes() + ub[self._key_cols].tobytes()
        hit = self._cache.get(key)
        if hit is None:
            hit = self._compute(lb, ub)
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = hit
        else:
            self.hits += 1
        idx, new_lb, new_ub, self.fixed_last = hit
        lb[idx] = np.maximum(lb[idx], new_lb)
        ub[idx] = np.minimum(ub[idx], new_ub)

    def _person_lp(self, lb: np.ndarray, ub: np.ndarray,
                   bounds: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Tighten ``bounds`` layer by layer with certified LPs over the person's box."""
        if self._lp is None:
            self._lp = self._lp_factory()
        lp = self._lp
        n = lp.lb.size
        blo, bhi = lb[:n].copy(), ub[:n].copy()
        out = []
        for k, (ly, (lo, hi)) in enumerate(zip(self.layers, bounds)):
            if k > 0:  # layer 1 is affine in the box: its interval bound is already exact
                lp.set_bounds(blo, bhi)  # the person's box, layers below as tightened so far
                scale = np.abs(ly.M) @ np.maximum(np.abs(_finite(blo[ly.inputs])), np.abs(_finite(bhi[ly.inputs]))) \
                    + np.abs(ly.c)
                todo = np.nonzero(ly.state < 0)[0] if self.relu else np.arange(ly.lo.size)
                before = lp.n_solves
                lo, hi = lo.copy(), hi.copy()
                sub_lo, sub_hi, _ = _lp_tighten_rows(lp, ly.M[todo], ly.c[todo], ly.inputs, lo[todo], hi[todo],
                                                     scale[todo], self.relu)
                lo[todo], hi[todo] = sub_lo, sub_hi
                self.person_lp_solves += lp.n_solves - before
            out.append((lo, hi))
            alive = ly.pre >= 0
            blo[ly.pre[alive]] = np.maximum(blo[ly.pre[alive]], lo[alive])
            bhi[ly.pre[alive]] = np.minimum(bhi[ly.pre[alive]], hi[alive])
            if self.relu:
                uns = np.nonzero(ly.state < 0)[0]
                on, off = lo[uns] >= 0.0, hi[uns] <= 0.0
                off &= ~on
                blo[ly.z[uns[on]]] = 1.0
                bhi[ly.z[uns[off]]] = 0.0
                blo[ly.post[uns]] = np.maximum(blo[ly.post[uns]], np.maximum(lo[uns], 0.0))
                bhi[ly.post[uns]] = np.minimum(bhi[ly.post[uns]], np.maximum(hi[uns], 0.0))
        return out

    def _compute(self, lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        idx, nlb, nub = [], [], []
        fixed = 0
        bounds = self.bounds(lb, ub)
        if self._lp_factory is not None and len(self.layers) > 1:
            bounds = self._person_lp(lb, ub, bounds)
        for ly, (lo, hi) in zip(self.layers, bounds):
            alive = ly.pre >= 0
            idx.append(ly.pre[alive])
            nlb.append(lo[alive])
            nub.append(hi[alive])
            uns = np.nonzero(ly.state < 0)[0]
            if not self.relu or uns.size == 0:
                continue
            on = lo[uns] >= 0.0
            off = (hi[uns] <= 0.0) & ~on  # both only for a neuron pinned at exactly 0: call it on
            fixed += int(on.sum() + off.sum())
            z = ly.z[uns]
            idx.append(z)
            nlb.append(np.where(on, 1.0, 0.0))
            nub.append(np.where(off, 0.0, 1.0))
            idx.append(ly.post[uns])
            nlb.append(np.maximum(lo[uns], 0.0))
            nub.append(np.maximum(hi[uns], 0.0))
        return np.concatenate(idx), np.concatenate(nlb), np.concatenate(nub), fixed


def _first_layer(inputs: Sequence[ModelInput], W: np.ndarray, b: np.ndarray,
                 milp: MILP) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """First-layer pre-activations ``M x + c`` over the MILP columns the inputs use."""
    exprs = [inp.expr.merged() for inp in inputs]  # raises for inputs a network cannot take (text levels)
    used = np.unique(np.concatenate([e.idx for e in exprs])) if exprs else np.zeros(0, dtype=np.int64)
    groups = _exactly_one_groups(milp, used)
    cols = np.unique(np.concatenate([used] + groups)) if groups else used
    pos = {int(c): i for i, c in enumerate(cols)}
    E = np.zeros((len(exprs), cols.size))
    e0 = np.zeros(len(exprs))
    for k, e in enumerate(exprs):
        for i, v in zip(e.idx, e.coef):
            E[k, pos[int(i)]] += v
        e0[k] = e.const
    M = W.T @ E
    c = W.T @ e0 + b
    local_groups = [np.array([pos[int(m)] for m in g], dtype=np.int64) for g in groups]
    return M, c, cols, local_groups


def encode_relu(milp: MILP, definition: NetworkDef, inputs: Sequence[ModelInput], name: str = "relu",
                bound_tightening: str = "interval", person_bounds: str = "interval", feasibility_tol: float = 1e-7,
                margin: float | None = None, retry_factor: float = 1e4) -> Encoding:
    """Encode ``definition`` over ``inputs`` (one per network input, in order).

    Parameters
    ----------
    bound_tightening : ``"interval"`` (default) or ``"lp"``: interval bounds, then two
        certified LPs per neuron over the relaxation of the layers below. LP bounds are far
        tighter in deep layers (Adult 5x10: last layer 20x narrower) yet did not make the
        solves faster on Adult, where the incumbent's cost box and per-person intervals do
        most of the work (benchmarks/results/relu_scaling.md), so they are opt-in
    person_bounds : how :class:`ReluBounds` tightens per person: ``"interval"`` (default)
        propagates intervals over the person's box; ``"lp"`` then re-solves the LPs of the
        neurons still unstable there (two per neuron and person)
    feasibility_tol : the solver's primal / integrality tolerance the decision margin must
        survive (HiGHS and SCIP are run at 1e-7)
    margin : override the decision margin (default: derived from the tolerance, see below)
    retry_factor : the widest margin multiplier the caller retries with when the model
        rejects a solver point (``mipcf.recourse.MARGIN_RETRIES[-1]``)

    The margin comes from a first-order bound on how far the model's scores at a point the
    solver accepts can be from the scores in the MILP: rows and column bounds may be violated
    by ``feasibility_tol`` and binaries may be off integral by as much; the error enters at
    every row and every binary (scaled by that neuron's big-M) and is carried through ``|W|``
    layer by layer. Twice the bound with integral binaries is the first margin; it is raised
    so that ``retry_factor`` times it covers twice the full bound, so the caller's last retry
    is provably safe (``ReluBounds.safe_margin`` holds that full-bound margin). The full
    bound on the first try would cost optimality: big-M times 1e-7 is far from negligible for
    raw money features (Credit: 0.1 in logit units).
    """
    if bound_tightening not in BOUND_TIGHTENING:
        raise ValueError(f"bound_tightening {bound_tightening!r} is not one of {BOUND_TIGHTENING}")
    if person_bounds not in BOUND_TIGHTENING:
        raise ValueError(f"person_bounds {person_bounds!r} is not one of {BOUND_TIGHTENING}")
    if len(inputs) != definition.n_inputs:
        raise ValueError(f"{name}: the network takes {definition.n_inputs} inputs but {len(inputs)} were given")
    relu = definition.activation == "relu"
    hidden = definition.layers[:-1]
    tol = float(feasibility_tol)
    first_row = milp.n_rows
    W0, b0 = (hidden[0] if hidden else definition.layers[-1])
    M, c, vcols, groups = _first_layer(inputs, W0, b0, milp)
    group_rows = _group_rows(milp, vcols, groups)
    vlo, vhi = milp.lb[vcols], milp.ub[vcols]
    # error bounds with integral binaries (err) and with binaries off by tol as well (err_int);
    # decoded inputs differ from the solver's values by its tolerance
    err = np.full(vcols.size, tol)
    err_int = err.copy()
    err_matrix = np.abs(M)
    layers: list[ReluLayer] = []
    n_lp = 0
    for k, (W, b) in enumerate(hidden):
        if k > 0:
            prev = layers[-1]
            alive = prev.post >= 0
            M, c, vcols, groups = W.T[:, alive], b.copy(), prev.post[alive], []
            vlo, vhi = _post_bounds(prev, relu)
            err_matrix = np.abs(W.T)
        if not (np.all(np.isfinite(vlo)) and np.all(np.isfinite(vhi))):
            bad = [milp.col_names[int(v)] for v in vcols[~(np.isfinite(vlo) & np.isfinite(vhi))]]
            raise ValueError(f"{name}: network inputs need finite bounds for big-M rows; unbounded columns {bad[:5]}")
        ilo, ihi = affine_bounds(M, c, vlo, vhi, groups)
        scale = np.abs(M) @ np.maximum(np.abs(vlo), np.abs(vhi)) + np.abs(c)
        ilo, ihi = _widen(ilo, ihi, scale)
        lo, hi = ilo.copy(), ihi.copy()
        # layer 1 is affine in the inputs, and the LP would only see the box and the exactly-one
        # rows, over which the group-aware interval bound is already exact
        if bound_tightening == "lp" and k > 0:
            lo, hi, used = _lp_tighten(milp, np.r_[group_rows, np.arange(first_row, milp.n_rows)],
                                       M, c, vcols, lo, hi, scale, relu)
            n_lp += used
        layers.append(_encode_layer(milp, M, c, vcols, lo, hi, ilo, ihi, groups, relu, f"{name}.L{k}"))
        err = _propagate_error(layers[-1], err_matrix @ err + tol, tol, 0.0, relu)
        err_int = _propagate_error(layers[-1], err_matrix @ err_int + tol, tol, tol, relu)

    W, b = definition.layers[-1]
    if hidden:
        last = layers[-1]
        alive = last.post >= 0
        Wout, cols = W[alive], last.post[alive]
        rows = [LinExpr(cols, Wout[:, j], float(b[j])).merged() for j in range(W.shape[1])]
        out_err, out_err_int = np.abs(W).T @ err, np.abs(W).T @ err_int
    else:  # no hidden layer: a linear model
        rows = [LinExpr(vcols, M[j], float(c[j])).merged() for j in range(M.shape[0])]
        out_err, out_err_int = np.abs(M) @ err, np.abs(M) @ err_int
    scores = [LinExpr(), rows[0]] if definition.output == "logistic" else rows
    mags = [max(abs(v) for v in s.bounds(milp.lb, milp.ub)) for s in rows]
    magnitude = max(mags) if mags else 0.0
    fp = 1e-12 * (1.0 + magnitude)  # the model's own float64 arithmetic
    rows_safe = 2.0 * (tol + 2.0 * float(np.max(out_err, initial=0.0)) + fp)
    safe = 2.0 * (tol + 2.0 * float(np.max(out_err_int, initial=0.0)) + fp)
    # first try: safe when the binaries come back integral (HiGHS returned them exact in every
    # solve we inspected); the last widened retry (x retry_factor) is safe unconditionally
    auto = max(1e-6, rows_safe, safe / retry_factor)
    enc = Encoding(scores, definition.classes, auto if margin is None else float(margin), name=name,
                   inputs=list(inputs))
    if layers:
        factory = None
        if person_bounds == "lp":
            lp_rows = np.r_[group_rows, np.arange(first_row, milp.n_rows)]
            factory = lambda: _BoundLP(milp, lp_rows)  # noqa: E731 - built on first use
        enc.tighten = ReluBounds(layers, milp.lb, milp.ub, relu, lp_factory=factory)
        enc.tighten.lp_solves = n_lp
        enc.tighten.safe_margin = safe
    return enc


def _group_rows(milp: MILP, cols: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Row ids of the exactly-one rows behind ``groups`` (kept in the bound LPs)."""
    if not groups:
        return np.zeros(0, dtype=np.int64)
    arr = milp.arrays()
    A = arr.A
    want = {tuple(sorted(int(cols[i]) for i in g)) for g in groups}
    out = []
    for r in np.nonzero((arr.row_lo == 1.0) & (arr.row_hi == 1.0))[0]:
        if tuple(sorted(int(v) for v in A.indices[A.indptr[r]:A.indptr[r + 1]])) in want:
            out.append(int(r))
    return np.array(out, dtype=np.int64)


def _lp_tighten(milp: MILP, rows: np.ndarray, M: np.ndarray, c: np.ndarray, vcols: np.ndarray,
                lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, relu: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Certified LP bounds of each ``M_i v + c_i``, intersected with ``[lo, hi]``.

    Only rows that do not change between persons are in the LP (exactly-one groups and the
    network's own rows): rows such as ``x - up + down = x0`` carry a person's factual and
    would make the bounds wrong for everyone else.
    """
    lp = _BoundLP(milp, rows)
    lo, hi, _ = _lp_tighten_rows(lp, M, c, vcols, lo, hi, scale, relu)
    return lo, hi, lp.n_solves


def _finite(v: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(v), v, 0.0)


def _lp_tighten_rows(lp: "_BoundLP", M: np.ndarray, c: np.ndarray, vcols: np.ndarray, lo: np.ndarray,
                     hi: np.ndarray, scale: np.ndarray, relu: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Max then min of each ``M_i v + c_i`` over ``lp``, intersected with ``[lo, hi]``."""
    lo, hi = lo.copy(), hi.copy()
    eps = _WIDEN * (1.0 + scale)
    for i in range(M.shape[0]):
        if relu and hi[i] <= 0.0:
            continue  # already known inactive: its bounds no longer matter
        nz = M[i] != 0.0
        if not nz.any():
            continue
        up = -lp.minimum(vcols[nz], -M[i, nz], -c[i])
        hi[i] = min(hi[i], up + eps[i])
        if relu and hi[i] <= 0.0:
            continue
        down = lp.minimum(vcols[nz], M[i, nz], c[i])
        lo[i] = max(lo[i], down - eps[i])
    hi = np.maximum(hi, lo)
    return lo, hi, lp.n_solves


def _encode_layer(milp: MILP, M: np.ndarray, c: np.ndarray, vcols: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  ilo: np.ndarray, ihi: np.ndarray, groups: list[np.ndarray], relu: bool, name: str) -> ReluLayer:
    n = M.shape[0]
    span = np.maximum(np.abs(lo), np.abs(hi))
    if relu:
        state = np.full(n, -1)
        state[lo >= -_NEAR_STABLE * (1.0 + span)] = 1
        state[hi <= _NEAR_STABLE * (1.0 + span)] = 0
        state[(lo >= 0.0)] = 1  # exactly stable wins over "nearly"
        state[(hi <= 0.0)] = 0
    else:
        state = np.ones(n, dtype=int)
    alive = np.nonzero(state != 0)[0]
    pre = np.full(n, -1, dtype=np.int64)
    post = np.full(n, -1, dtype=np.int64)
    z = np.full(n, -1, dtype=np.int64)
    if alive.size:
        a = milp.add_vars(alive.size, lo[alive], hi[alive], name=f"{name}.pre")
        pre[alive] = a
        Ma = M[alive]
        r, j = np.nonzero(Ma)
        rows = np.r_[np.arange(alive.size), r]
        cols = np.r_[a, vcols[j]]
        vals = np.r_[np.ones(alive.size), -Ma[r, j]]
        milp.add_rows(rows, cols, vals, c[alive], c[alive], n_rows=alive.size, name=f"{name}.affine")
        post[alive] = a
    uns = np.nonzero(state < 0)[0]
    if uns.size:
        m = uns.size
        h = milp.add_vars(m, 0.0, hi[uns], name=f"{name}.post")
        zz = milp.add_binaries(m, name=f"{name}.active")
        a = pre[uns]
        L, U = lo[uns], hi[uns]
        k = np.arange(m)
        # h - a >= 0
        milp.add_rows(np.r_[k, k], np.r_[h, a], np.r_[np.ones(m), -np.ones(m)], 0.0, np.inf, n_rows=m,
                      name=f"{name}.above_pre")
        # h <= a - L (1 - z)  <=>  h - a - L z <= -L
        milp.add_rows(np.r_[k, k, k], np.r_[h, a, zz], np.r_[np.ones(m), -np.ones(m), -L], -np.inf, -L,
                      n_rows=m, name=f"{name}.off_bigM")
        # h <= U z
        milp.add_rows(np.r_[k, k], np.r_[h, zz], np.r_[np.ones(m), -U], -np.inf, 0.0, n_rows=m,
                      name=f"{name}.on_bigM")
        post[uns] = h
        z[uns] = zz
    return ReluLayer(M, c, vcols, lo, hi, ilo, ihi, state, pre, post, z, groups)


def _post_bounds(ly: ReluLayer, relu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the live outputs of a layer (what the solver's columns may hold)."""
    alive = ly.post >= 0
    lo, hi = ly.lo[alive], ly.hi[alive]
    if relu:
        uns = ly.state[alive] < 0  # post-activation column in [0, max(U, 0)]
        lo, hi = np.where(uns, np.maximum(lo, 0.0), lo), np.where(uns, np.maximum(hi, 0.0), hi)
    return lo, hi


def _propagate_error(ly: ReluLayer, pre_err: np.ndarray, tol: float, int_tol: float, relu: bool) -> np.ndarray:
    """First-order bound on |model's output - solver's output| of every neuron of a layer.

    ``pre_err`` bounds the pre-activation error (``|W| err + tol``: the defining row may be
    off by ``tol``). Unstable neurons add ``3 tol`` (their three rows) plus
    ``max(|L|, U) int_tol``: a binary off by ``int_tol`` moves a big-M row by ``M int_tol``. Nearly-stable neurons treated as stable add the part of
    their bound they ignore; vanished neurons are 0 in the MILP and at most ``max(U, 0)``
    in the model.
    """
    if not relu:
        return pre_err
    err = pre_err.copy()
    uns = ly.state < 0
    err[uns] += 3.0 * tol + np.maximum(-ly.lo[uns], ly.hi[uns]) * int_tol
    on = ly.state == 1
    err[on] += np.maximum(-ly.lo[on], 0.0)
    off = ly.state == 0
    err[off] = np.maximum(ly.hi[off], 0.0)
    return err


__all__ = ["NetworkDef", "read_mlp", "encode_relu", "affine_bounds", "ReluBounds", "ReluLayer",
           "ACTIVATIONS", "BOUND_TIGHTENING"]
