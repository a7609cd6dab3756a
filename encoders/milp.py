"""A solver-neutral mixed-integer linear program assembled from numpy arrays.

Encoders append variables and constraint rows in bulk; solver adapters receive the
finished arrays in one call. Building rows one Python object at a time (as a Pyomo
model does) costs about ten times more for forest-sized models, so Pyomo is an export
of this structure (see :mod:`encoders.pyomo_export`) rather than the assembly medium.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

INF = float("inf")


class LinExpr:
    """An affine expression ``const + sum(coef[i] * var[idx[i]])`` over MILP columns."""

    __slots__ = ("idx", "coef", "const")

    def __init__(self, idx: Iterable[int] = (), coef: Iterable[float] = (), const: float = 0.0):
        self.idx = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx, dtype=np.int64)
        self.coef = np.asarray(list(coef) if not isinstance(coef, np.ndarray) else coef, dtype=float)
        self.const = float(const)
        if self.idx.shape != self.coef.shape:
            raise ValueError("LinExpr needs one coefficient per variable")

    @classmethod
    def var(cls, i: int, coef: float = 1.0) -> "LinExpr":
        return cls(np.array([i]), np.array([coef]))

    @classmethod
    def constant(cls, value: float) -> "LinExpr":
        return cls(const=value)

    @classmethod
    def sum(cls, exprs: Iterable["LinExpr"]) -> "LinExpr":
        exprs = list(exprs)
        if not exprs:
            return cls()
        return cls(np.concatenate([e.idx for e in exprs]), np.concatenate([e.coef for e in exprs]),
                   sum(e.const for e in exprs))

    def __add__(self, other: "LinExpr | float") -> "LinExpr":
        if isinstance(other, LinExpr):
            return LinExpr(np.concatenate([self.idx, other.idx]), np.concatenate([self.coef, other.coef]),
                           self.const + other.const)
        return LinExpr(self.idx, self.coef, self.const + float(other))

    __radd__ = __add__

    def __neg__(self) -> "LinExpr":
        return LinExpr(self.idx, -self.coef, -self.const)

    def __sub__(self, other: "LinExpr | float") -> "LinExpr":
        return self + (-other)

    def __rsub__(self, other: float) -> "LinExpr":
        return (-self) + other

    def __mul__(self, k: float) -> "LinExpr":
        return LinExpr(self.idx, self.coef * float(k), self.const * float(k))

    __rmul__ = __mul__

    def merged(self) -> "LinExpr":
        """Same expression with repeated variables summed and zero terms dropped."""
        if self.idx.size == 0:
            return self
        uniq, inv = np.unique(self.idx, return_inverse=True)
        coef = np.zeros(uniq.size)
        np.add.at(coef, inv, self.coef)
        keep = coef != 0.0
        return LinExpr(uniq[keep], coef[keep], self.const)

    def value(self, x: np.ndarray) -> float:
        return float(self.const + np.dot(self.coef, np.asarray(x)[self.idx]))

    def bounds(self, lb: np.ndarray, ub: np.ndarray) -> tuple[float, float]:
        """Interval bounds of the expression over the box ``lb <= x <= ub``."""
        lo_v, hi_v = lb[self.idx], ub[self.idx]
        pos = self.coef > 0
        with np.errstate(invalid="ignore"):
            lo = self.const + np.sum(np.where(pos, self.coef * lo_v, self.coef * hi_v))
            hi = self.const + np.sum(np.where(pos, self.coef * hi_v, self.coef * lo_v))
        return float(lo), float(hi)

    def __repr__(self) -> str:
        terms = " + ".join(f"{c:g}*v{i}" for i, c in zip(self.idx, self.coef))
        return f"LinExpr({terms or '0'} + {self.const:g})"


@dataclass
class Block:
    """A named range of columns and rows, e.g. everything one encoder added."""

    name: str
    cols: range
    rows: range


@dataclass
class MILPArrays:
    """The finished problem: ``min c.x  s.t.  row_lo <= A x <= row_hi, lb <= x <= ub``."""

    c: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_names: list[str] = field(default_factory=list)
    row_names: list[str] = field(default_factory=list)


class MILP:
    """Grows a MILP column by column and row by row, in bulk where possible."""

    def __init__(self) -> None:
        self._lb: list[np.ndarray] = []
        self._ub: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self.col_names: list[str] = []
        self._r: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []
        self.row_names: list[str] = []
        self.n_vars = 0
        self.n_rows = 0
        self.blocks: list[Block] = []
        self._lb_cache: np.ndarray | None = None
        self._ub_cache: np.ndarray | None = None

    # ---- columns -------------------------------------------------------------------
    def add_vars(self, n: int, lb: float | np.ndarray = 0.0, ub: float | np.ndarray = INF,
                 integer: bool | np.ndarray = False, name: str = "x") -> np.ndarray:
        """Append ``n`` columns; returns their indices."""
        idx = np.arange(self.n_vars, self.n_vars + n, dtype=np.int64)
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (n,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (n,)).copy())
        self._int.append(np.broadcast_to(np.asarray(integer, dtype=bool), (n,)).copy())
        self.col_names.extend(f"{name}[{k}]" for k in range(n)) if n != 1 else self.col_names.append(name)
        self.n_vars += n
        self._lb_cache = self._ub_cache = None
        return idx

    def add_var(self, lb: float = 0.0, ub: float = INF, integer: bool = False, name: str = "x") -> int:
        return int(self.add_vars(1, lb, ub, integer, name)[0])

    def add_binaries(self, n: int, name: str = "b") -> np.ndarray:
        return self.add_vars(n, 0.0, 1.0, True, name)

    @property
    def lb(self) -> np.ndarray:
        if self._lb_cache is None:
            self._lb_cache = np.concatenate(self._lb) if self._lb else np.zeros(0)
        return self._lb_cache

    @property
    def ub(self) -> np.ndarray:
        if self._ub_cache is None:
            self._ub_cache = np.concatenate(self._ub) if self._ub else np.zeros(0)
        return self._ub_cache

    def set_bounds(self, idx: np.ndarray | int, lb: float | np.ndarray | None = None,
                   ub: float | np.ndarray | None = None) -> None:
        """Tighten the build-time bounds of existing columns."""
        lbs, ubs = self.lb.copy(), self.ub.copy()
        if lb is not None:
            lbs[idx] = lb
        if ub is not None:
            ubs[idx] = ub
        self._lb, self._ub = [lbs], [ubs]
        self._lb_cache, self._ub_cache = lbs, ubs

    def is_integer(self) -> np.ndarray:
        return np.concatenate(self._int) if self._int else np.zeros(0, dtype=bool)

    # ---- rows ----------------------------------------------------------------------
    def add_rows(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                 lo: float | np.ndarray, hi: float | np.ndarray, n_rows: int | None = None,
                 name: str = "c") -> np.ndarray:
        """Append rows given as COO triplets with *local* row numbers 0..n_rows-1."""
        rows = np.asarray(rows, dtype=np.int64)
        m = int(n_rows if n_rows is not None else (rows.max() + 1 if rows.size else 0))
        ids = np.arange(self.n_rows, self.n_rows + m, dtype=np.int64)
        self._r.append(rows + self.n_rows)
        self._c.append(np.asarray(cols, dtype=np.int64))
        self._v.append(np.asarray(vals, dtype=float))
        self._lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (m,)).copy())
        self._hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (m,)).copy())
        self.row_names.extend(f"{name}[{k}]" for k in range(m)) if m != 1 else self.row_names.append(name)
        self.n_rows += m
        return ids

    def add_constraint(self, expr: LinExpr, lo: float = -INF, hi: float = INF, name: str = "c") -> int:
        """Add ``lo <= expr <= hi``; the expression's constant moves to the bounds."""
        e = expr.merged()
        return int(self.add_rows(np.zeros(e.idx.size), e.idx, e.coef, lo - e.const, hi - e.const,
                                 n_rows=1, name=name)[0])

    def add_le(self, expr: LinExpr, rhs: float = 0.0, name: str = "c") -> int:
        return self.add_constraint(expr, -INF, rhs, name)

    def add_ge(self, expr: LinExpr, rhs: float = 0.0, name: str = "c") -> int:
        return self.add_constraint(expr, rhs, INF, name)

    def add_eq(self, expr: LinExpr, rhs: float = 0.0, name: str = "c") -> int:
        return self.add_constraint(expr, rhs, rhs, name)

    def add_exprs(self, exprs: Sequence[LinExpr], lo: float | np.ndarray, hi: float | np.ndarray,
                  name: str = "c") -> np.ndarray:
        """Add ``lo[k] <= exprs[k] <= hi[k]`` for many expressions at once."""
        m = len(exprs)
        if m == 0:
            return np.zeros(0, dtype=np.int64)
        merged = [e.merged() for e in exprs]
        rows = np.concatenate([np.full(e.idx.size, k) for k, e in enumerate(merged)])
        cols = np.concatenate([e.idx for e in merged])
        vals = np.concatenate([e.coef for e in merged])
        const = np.array([e.const for e in merged])
        lo = np.broadcast_to(np.asarray(lo, dtype=float), (m,)) - const
        hi = np.broadcast_to(np.asarray(hi, dtype=float), (m,)) - const
        return self.add_rows(rows, cols, vals, lo, hi, n_rows=m, name=name)

    # ---- structure -----------------------------------------------------------------
    @contextmanager
    def block(self, name: str) -> Iterator[None]:
        """Record the columns and rows added inside the ``with`` as one named block."""
        c0, r0 = self.n_vars, self.n_rows
        yield
        self.blocks.append(Block(name, range(c0, self.n_vars), range(r0, self.n_rows)))

    def row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.concatenate(self._lo) if self._lo else np.zeros(0)
        hi = np.concatenate(self._hi) if self._hi else np.zeros(0)
        return lo, hi

    def arrays(self, c: np.ndarray | None = None) -> MILPArrays:
        """The finished problem as arrays (the matrix in CSR form)."""
        rows = np.concatenate(self._r) if self._r else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(self._c) if self._c else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(self._v) if self._v else np.zeros(0)
        A = sp.csr_matrix((vals, (rows, cols)), shape=(self.n_rows, self.n_vars))
        A.sum_duplicates()
        A.eliminate_zeros()
        lo, hi = self.row_bounds()
        cost = np.zeros(self.n_vars) if c is None else np.asarray(c, dtype=float)
        return MILPArrays(cost, self.lb.copy(), self.ub.copy(), self.is_integer(), A, lo, hi,
                          list(self.col_names), list(self.row_names))

    # ---- modelling helpers ---------------------------------------------------------
    def indicator_le(self, binary: int, expr: LinExpr, rhs: float, active: int = 1,
                     name: str = "ind") -> int | None:
        """``binary == active  =>  expr <= rhs`` as a big-M row with M from column bounds.

        Returns None when the implication always holds over the bounds (no row needed).
        Raises when the bounds are infinite, since then no valid M exists.
        """
        lo, hi = expr.bounds(self.lb, self.ub)
        slack = hi - rhs
        if slack <= 0:
            return None
        if not np.isfinite(slack):
            raise ValueError(f"{name}: cannot write an indicator on an unbounded expression")
        # active=1: expr <= rhs + M (1 - b)  <=>  expr + M b <= rhs + M
        if active == 1:
            return self.add_le(expr + LinExpr.var(binary, slack), rhs + slack, name)
        return self.add_le(expr - LinExpr.var(binary, slack), rhs, name)

    def indicator_ge(self, binary: int, expr: LinExpr, rhs: float, active: int = 1,
                     name: str = "ind") -> int | None:
        """``binary == active  =>  expr >= rhs`` (see :meth:`indicator_le`)."""
        return self.indicator_le(binary, -expr, -rhs, active, name)
