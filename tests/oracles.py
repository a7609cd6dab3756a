"""Independent oracles for the tests: brute force over tree leaves and integer grids.

Nothing here imports ``encoders`` or the MILP code: the oracles read the fitted sklearn
objects directly and follow sklearn's documented semantics (``float32(x) <= threshold``
goes left; a forest predicts the argmax of averaged leaf probabilities).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

ACTIONS = ("actionable", "increase_only", "decrease_only", "immutable")


def leaf_boxes(tree) -> list[tuple[int, dict[int, tuple[float, float]]]]:
    """Every leaf of a fitted sklearn tree with its box ``{feature: (lo, hi)}``.

    A point reaches the leaf iff ``lo < float32(x_f) <= hi`` for every feature ``f``.
    """
    t = tree.tree_
    out = []
    stack = [(0, {})]
    while stack:
        node, box = stack.pop()
        if t.children_left[node] < 0:
            out.append((node, box))
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        lo, hi = box.get(f, (-np.inf, np.inf))
        stack.append((int(t.children_left[node]), {**box, f: (lo, min(hi, thr))}))
        stack.append((int(t.children_right[node]), {**box, f: (max(lo, thr), hi)}))
    return out


def feature_move(x0: float, lo: float, hi: float, lower: float, upper: float, integer: bool,
                 action: str) -> float | None:
    """Smallest |x - x0| with ``lo < float32(x) <= hi``, x in [lower, upper], respecting ``action``.

    ``None`` if no such x exists. Continuous moves to a threshold are reported as the
    distance to the threshold itself (the float32 step is below the tests' tolerance).
    """
    if integer:
        a = max(np.floor(lo) + 1 if np.isfinite(lo) else -np.inf, lower)
        b = min(np.floor(hi) if np.isfinite(hi) else np.inf, upper)
        if a > b:
            return None
    else:
        if np.isfinite(lo) and not np.float32(upper) > lo:
            return None
        if np.isfinite(hi) and not np.float32(lower) <= hi:
            return None
        a, b = max(lo, lower), min(hi, upper)
    inside = (not np.isfinite(lo) or np.float32(x0) > lo) and (not np.isfinite(hi) or np.float32(x0) <= hi)
    if inside:
        return 0.0
    if x0 < a or (np.isfinite(lo) and np.float32(x0) <= lo):
        return None if action in ("decrease_only", "immutable") else max(a - x0, 0.0)
    return None if action in ("increase_only", "immutable") else max(x0 - b, 0.0)


def combine(d: np.ndarray, norm: str) -> float:
    if norm == "l0":
        return float(np.count_nonzero(d > 0))
    if norm == "l1":
        return float(d.sum())
    return float(d.max()) if d.size else 0.0


def tree_optimum(tree, x0: np.ndarray, desired_index: int, features: list, norm: str) -> float:
    """Cheapest cost to reach a leaf of class ``desired_index``: brute force over leaves.

    ``features[j]`` is ``(lower, upper, integer, action, weight)``; inf if unreachable.
    """
    best = np.inf
    values = tree.tree_.value[:, 0, :]
    for leaf, box in leaf_boxes(tree):
        if int(np.argmax(values[leaf])) != desired_index:
            continue
        d = np.zeros(len(features))
        ok = True
        for j, (lower, upper, integer, action, w) in enumerate(features):
            lo, hi = box.get(j, (-np.inf, np.inf))
            move = feature_move(float(x0[j]), lo, hi, lower, upper, integer, action)
            if move is None:
                ok = False
                break
            d[j] = w * move
        if ok:
            best = min(best, combine(d, norm))
    return best


def grid_optimum(predict, columns: list[str], x0: np.ndarray, desired, ranges: list[range],
                 actions: list[str], weights: np.ndarray, norm: str) -> tuple[float, np.ndarray | None]:
    """Cheapest point of an integer grid that ``predict`` gives ``desired``: exhaustive."""
    axes = []
    for v, r, a in zip(x0, ranges, actions):
        vals = np.array(list(r), dtype=float)
        if a == "immutable":
            vals = np.array([v])
        elif a == "increase_only":
            vals = vals[vals >= v]
        elif a == "decrease_only":
            vals = vals[vals <= v]
        axes.append(vals)
    grid = np.array(list(itertools.product(*axes)), dtype=float)
    pred = np.asarray(predict(pd.DataFrame(grid, columns=columns).astype(int)))
    ok = grid[pred == desired]
    if not len(ok):
        return np.inf, None
    d = np.abs(ok - x0) * weights
    if norm == "l0":
        c = np.count_nonzero(d > 0, axis=1).astype(float)
    elif norm == "l1":
        c = d.sum(axis=1)
    else:
        c = d.max(axis=1)
    i = int(np.argmin(c))
    return float(c[i]), ok[i]
