"""The array-built MILP as a Pyomo model, for users who add constraints or pick any solver.

One Pyomo ``Block`` per top-level :class:`~encoders.milp.Block` of the MILP (features, the
embedded model, decision, cost ... in the manner of OMLT's one block per embedded model);
every column is ``model.x[j]`` (names in ``model.col_names``), every row a constraint of the
block that added it. Rows are stored as ``(lo, body, hi)`` so that per-person bounds change
without rebuilding the expressions.
"""

from __future__ import annotations

import numpy as np

from .milp import MILPArrays

try:  # pyomo is a dependency of the distribution, but encoders itself does not need it
    import pyomo.environ as pyo
except ImportError:  # pragma: no cover
    pyo = None


def _top_level(blocks, n: int, attr: str) -> np.ndarray:
    """Index of the outermost block holding each column/row (-1: none)."""
    owner = np.full(n, -1, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    for k, b in enumerate(blocks):
        r = getattr(b, attr)
        if len(r) == 0:
            continue
        seg = slice(r.start, r.stop)
        take = size[seg] < len(r)
        owner[seg] = np.where(take, k, owner[seg])
        size[seg] = np.where(take, len(r), size[seg])
    return owner


def _bound(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def to_pyomo(arrays: MILPArrays, blocks=(), objective_offset: float = 0.0):
    """A ``pyomo.environ.ConcreteModel`` equal to ``arrays`` (minimise ``c.x + offset``)."""
    if pyo is None:  # pragma: no cover
        raise ImportError("to_pyomo needs pyomo (pip install pyomo)")
    from pyomo.core.expr.numeric_expr import LinearExpression

    m = pyo.ConcreteModel(name="mipcf")
    n = arrays.lb.size
    m.x = pyo.Var(range(n))
    for j in range(n):
        v = m.x[j]
        v.domain = pyo.Integers if arrays.integer[j] else pyo.Reals
        v.setlb(_bound(arrays.lb[j]))
        v.setub(_bound(arrays.ub[j]))
    m.col_names = list(arrays.col_names)
    A = arrays.A.tocsr()
    owner = _top_level(blocks, A.shape[0], "rows")
    names = [b.name for b in blocks]
    pyo_blocks: dict[int, object] = {}
    m.rows = {}  # row index -> ConstraintData, for bound updates
    for i in range(A.shape[0]):
        k = int(owner[i])
        if k not in pyo_blocks:
            blk = pyo.Block(concrete=True)
            m.add_component(_component_name(m, names[k] if k >= 0 else "other"), blk)
            blk.rows = pyo.ConstraintList()
            pyo_blocks[k] = blk
        lo, hi = arrays.row_lo[i], arrays.row_hi[i]
        seg = slice(A.indptr[i], A.indptr[i + 1])
        body = LinearExpression(constant=0.0, linear_coefs=[float(a) for a in A.data[seg]],
                                linear_vars=[m.x[int(j)] for j in A.indices[seg]])
        m.rows[i] = pyo_blocks[k].rows.add((None, body, 0.0))
        _set_row(m.rows[i], lo, hi)
    nz = np.nonzero(arrays.c)[0]
    m.obj = pyo.Objective(expr=sum(float(arrays.c[j]) * m.x[int(j)] for j in nz) + float(objective_offset),
                          sense=pyo.minimize)
    return m


def _component_name(m, name: str) -> str:
    # prefixed: Pyomo reserves some names ("model", "name", ...) for its own attributes
    base = "b_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    out, k = base, 1
    while m.component(out) is not None:
        k += 1
        out = f"{base}_{k}"
    return out


def set_bounds(m, lb: np.ndarray, ub: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray,
               previous: tuple | None = None) -> None:
    """Give the Pyomo model new column and row bounds (only the ones that changed)."""
    for j in range(lb.size) if previous is None else np.nonzero((lb != previous[0]) | (ub != previous[1]))[0]:
        m.x[int(j)].setlb(_bound(lb[j]))
        m.x[int(j)].setub(_bound(ub[j]))
    rows = range(row_lo.size) if previous is None else \
        np.nonzero((row_lo != previous[2]) | (row_hi != previous[3]))[0]
    for i in rows:
        _set_row(m.rows[int(i)], row_lo[i], row_hi[i])


def _set_row(con, lo: float, hi: float) -> None:
    """Bounds of one row; a row free on both sides is switched off (Pyomo needs a bound)."""
    if not (np.isfinite(lo) or np.isfinite(hi)):
        con.deactivate()
        return
    con.set_value((_bound(lo), con.body, _bound(hi)))
    con.activate()
