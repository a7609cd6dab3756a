"""How each model input (a column the fitted model sees) is expressed in MILP columns.

A model input is either driven by a single numeric MILP column through a monotone map
(identity, or a scaler), or takes one value out of a finite list, each selected by an
indicator expression over binaries (categorical and ordinal features).

Tree models compare ``float32(z) <= t`` (sklearn, LightGBM) or ``float32(z) < t``
(XGBoost). :meth:`NumericInput.cut` turns such a split into a pair of raw-unit bounds
``x <= left_max`` / ``x >= right_min`` that reproduce the model's own routing exactly,
including any float rounding inside the input's transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .milp import LinExpr


def largest_float32_at_most(t: float, strict: bool = False) -> np.float32:
    """The largest float32 value ``v`` with ``v <= t`` (``v < t`` when ``strict``)."""
    v = np.float32(t)
    while float(v) > t or (strict and float(v) >= t):
        v = np.nextafter(v, np.float32(-np.inf))
    return v


def float64_left_max(level: float) -> float:
    """Largest float64 ``x`` whose float32 rounding is ``<= level`` (a float32 value).

    Rounding is to nearest, ties to even, so the boundary is the midpoint between ``level``
    and the next float32, or one float64 step below it when the tie rounds up.
    """
    l32 = np.float32(level)
    mid = (float(l32) + float(np.nextafter(l32, np.float32(np.inf)))) / 2.0
    return mid if np.float32(mid) <= l32 else float(np.nextafter(mid, -np.inf))


def _ordered(x: float) -> int:
    """Map floats to integers preserving order (for bisection over representable values)."""
    i = np.array(x, dtype=np.float64).view(np.int64)
    return int(i) if i >= 0 else int(-(i & 0x7FFFFFFFFFFFFFFF))


def _unordered(i: int) -> float:
    bits = i if i >= 0 else (-i) | (1 << 63)
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


@dataclass
class NumericInput:
    """Model input ``z = transform(x)`` of one MILP column ``x``.

    ``a`` and ``b`` give the affine form ``z = a x + b`` used in linear rows; ``transform``
    (vectorised, float64) is the model's exact computation, used for tree cuts. Both default
    to the identity. The transform must be increasing (``a > 0``).
    """

    var: int
    lb: float
    ub: float
    integer: bool = False
    a: float = 1.0
    b: float = 0.0
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.a > 0:
            raise ValueError(f"input {self.name!r}: only increasing transforms are supported")

    @property
    def expr(self) -> LinExpr:
        return LinExpr([self.var], [self.a], self.b)

    def forward(self, x: float) -> float:
        if self.transform is None:
            return self.a * x + self.b
        return float(np.asarray(self.transform(np.array([x], dtype=float))).ravel()[0])

    def cut(self, t: float, strict: bool = False, float32: bool = True) -> tuple[float, float]:
        """Raw-unit bounds for the split ``float32(z) <= t`` (``<`` when ``strict``).

        Returns ``(left_max, right_min)``: raw float64 values ``x <= left_max`` go left and
        ``x >= right_min`` go right, with ``right_min`` the next float64 (next integer for
        integer columns), so every raw value, the factual included, is on a known side.
        With ``float32=False`` the model compares the float64 ``z`` itself (LightGBM on
        float64 data).
        """
        if float32:
            level = float(largest_float32_at_most(t, strict))
            goes_left = lambda x: float(np.float32(self.forward(x))) <= level  # noqa: E731
        else:
            level = float(np.nextafter(t, -np.inf)) if strict else float(t)
            goes_left = lambda x: self.forward(x) <= level  # noqa: E731
        if self.transform is None and self.a == 1.0 and self.b == 0.0:
            left_max = float64_left_max(level) if float32 else level
        else:
            left_max = self._last_left(goes_left, level)
        right_min = float(np.nextafter(left_max, np.inf))
        if self.integer:
            left_max, right_min = float(math.floor(left_max)), float(math.floor(left_max) + 1)
            if not goes_left(left_max) or goes_left(right_min):
                raise ArithmeticError(f"input {self.name!r}: split {t} is not monotone on integers")
        return left_max, right_min

    def _last_left(self, goes_left: Callable[[float], bool], level: float) -> float:
        """Largest float64 raw value routed left, by bisection on representable floats."""
        guess = (level - self.b) / self.a
        span = max(abs(guess), 1.0)
        lo, hi = guess - span, guess + span
        while not goes_left(lo):
            lo -= 2 * (hi - lo)
        while goes_left(hi):
            hi += 2 * (hi - lo)
        a, b = _ordered(lo), _ordered(hi)  # invariant: a goes left, b goes right
        while b - a > 1:
            m = (a + b) // 2
            if goes_left(_unordered(m)):
                a = m
            else:
                b = m
        return _unordered(a)


@dataclass
class DiscreteInput:
    """Model input equal to ``values[l]`` when ``indicators[l]`` is 1 (exactly one is)."""

    values: np.ndarray
    indicators: Sequence[LinExpr]
    name: str = ""

    @property
    def expr(self) -> LinExpr:
        return LinExpr.sum(ind * float(v) for ind, v in zip(self.indicators, self.values))

    def right_of(self, t: float, strict: bool = False, float32: bool = True) -> LinExpr:
        """Indicator expression (0/1) of ``float32(z) > t`` (``>=`` when ``strict``).

        With ``float32=False`` the float64 value itself is compared (LightGBM).
        """
        if float32:
            level = float(largest_float32_at_most(t, strict))
            z = np.asarray(self.values, dtype=np.float32).astype(float)
        else:
            level = float(np.nextafter(t, -np.inf)) if strict else float(t)
            z = np.asarray(self.values, dtype=float)
        return LinExpr.sum(ind for ind, v in zip(self.indicators, z) if v > level)


@dataclass
class CategoryInput:
    """A column of category labels (text): ``labels[l]`` when ``indicators[l]`` is 1.

    Models compute on numbers, so only an encoding step in front of the model (a
    ``OneHotEncoder`` or ``OrdinalEncoder`` in a Pipeline, see :mod:`encoders.pipeline`)
    can consume it; a model fed with it directly raises :class:`UnsupportedModelError`.
    """

    labels: Sequence
    indicators: Sequence[LinExpr]
    name: str = ""

    def _refuse(self):
        from . import UnsupportedModelError
        return UnsupportedModelError(
            f"column {self.name!r} holds text levels; the model needs numbers — wrap it in a "
            "Pipeline with a OneHotEncoder/OrdinalEncoder, or one-hot encode the column in the data")

    @property
    def expr(self) -> LinExpr:
        raise self._refuse()

    def right_of(self, t: float, strict: bool = False, float32: bool = True) -> LinExpr:
        raise self._refuse()


ModelInput = NumericInput | DiscreteInput | CategoryInput


@dataclass
class Cut:
    """A split of a numeric column used to snap solver output onto the exact side."""

    var: int
    left_max: float
    right_min: float
    right: int  # binary column: 1 when the column lies right of the split


@dataclass
class Encoding:
    """What an encoder returns: class scores over MILP columns and how to decide on them.

    ``scores[c]`` is the model's score for ``classes[c]``; the prediction is the first
    class with the maximal score (sklearn's argmax). ``margin`` is the safe gap required
    whenever a strict comparison is needed, chosen well above solver tolerances.
    """

    scores: list[LinExpr]
    classes: np.ndarray
    margin: float
    cuts: list[Cut] = field(default_factory=list)
    name: str = "model"
    # var -> (left_max, right_min, split binaries), ascending: columns the model uses only
    # through these splits, so a separable cost can be written on the split binaries
    levels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    # tree models: (leaf columns, lo, hi) with per-leaf boxes over the inputs (raw units of
    # the column for numeric inputs, model units for discrete ones); lets a caller switch off
    # leaves that cannot be reached within a budget
    leaf_boxes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # tree models: (tree index, node id in that tree of the definition) per leaf column, in
    # the order of leaf_boxes[0]; lets a caller relate leaf columns to the model's own leaves
    leaf_nodes: tuple[np.ndarray, np.ndarray] | None = None
    inputs: list = field(default_factory=list)
    # scores are sums of constants picked by integral binaries (trees), so a tie in the MILP
    # is a tie in the model, which argmax gives to the earlier class: rows against later
    # classes may then be met with equality instead of the margin
    exact_ties: bool = False
    # per-person bound tightening: called with the person's column bounds (lb, ub), may
    # tighten them in place (e.g. fix ReLU neurons that are stable over that box)
    tighten: Callable[[np.ndarray, np.ndarray], None] | None = None
    # "class c has probability >= p" as one linear row: called with (c, p), returns
    # (expr, rhs) meaning expr >= rhs; raises NotImplementedError where the model's
    # probability is not monotone in one linear expression (multi-class softmax)
    probability_row: Callable[[int, float], tuple[LinExpr, float]] | None = None
    # True when expr is a sum of constants picked by integral binaries (forest averages),
    # so expr == rhs in the MILP is expr == rhs in the model; else a margin is added
    probability_exact: bool = False

    def class_index(self, label: object) -> int:
        hits = [i for i, c in enumerate(self.classes) if c == label or str(c) == str(label)]
        if not hits:
            raise ValueError(f"class {label!r} is not one of the model's classes {list(self.classes)}")
        return hits[0]

    def wins(self, c: int) -> list[LinExpr]:
        """Expressions that must all be >= 0 for class index ``c`` to be predicted."""
        rows = []
        for k in range(len(self.scores)):
            if k != c:
                rows.append(self.scores[c] - self.scores[k] - self.margin)
        return rows
