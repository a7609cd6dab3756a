"""Thin solver adapters: load the compiled arrays once, then re-solve with new bounds.

In the manner of CVXPY's conic adapters, each back-end maps its own statuses into one
vocabulary (:mod:`mipcf.status`) and exchanges numpy arrays only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from encoders.milp import MILPArrays


@dataclass
class SolverOptions:
    """Options every back-end honours.

    ``mip_gap`` is relative; the absolute gap tolerance is ``abs_gap``. Optimal means the
    solver proved ``objective - bound <= max(abs_gap, mip_gap * |objective|)``.
    """

    time_limit: float | None = 60.0
    mip_gap: float = 0.0
    abs_gap: float = 1e-9
    threads: int | None = 1
    seed: int = 0
    feasibility_tol: float = 1e-7
    verbose: bool = False
    # HiGHS presolve probing and its RINS/RENS sub-MIP heuristics. Both off: on 26 budget
    # solves of Credit rf10/rf100 (l1) they took 127 s with both on, 50 s with both off; the
    # budget search already starts from a verified incumbent, so the sub-MIPs mostly look
    # for points that cost more than the cutoff
    probing: bool = False
    sub_mip_heuristics: bool = False
    # Strong branching to initialise pseudocosts (HiGHS's reliability branching). Recourse turns
    # it off for tree models: on the 12 slowest budget solves of six Credit rf100 people (l1)
    # it and the root reduced-cost sub-MIP took 102 s of CPU, against 63 s with both off (the
    # trees need tens of nodes, so the strong-branching LPs cost more than they save); on
    # ReLU networks, whose trees are deep, turning it off cost 13-43 % more time
    strong_branching: bool = True
    # HiGHS's root restart and its cut separation below the root. Recourse turns both off for
    # tree models: their root separation is 80-95 % of a solve (probing inside the implied-
    # bound separator, path aggregation), a restart repeats it on a model that is barely
    # smaller, and the trees need only tens of nodes. On dumped budget solves of sixteen Credit
    # rf100 people (l1) CPU fell to 0.83 of the default without restarts, 0.89 without node
    # cuts and 0.80 without either; end to end on ten other people 64.7 -> 50.6 s, same optima
    restarts: bool = True
    node_cuts: bool = True


@dataclass
class SolveResult:
    status: str                     # one of mipcf.status.STATUSES
    x: np.ndarray | None = None
    objective: float = float("nan")
    bound: float = float("nan")
    seconds: float = 0.0
    message: str = ""
    extra: dict = field(default_factory=dict)


class Solver(ABC):
    """A loaded problem that can be re-solved with per-query bounds."""

    name: str = "solver"

    def __init__(self, arrays: MILPArrays, options: SolverOptions) -> None:
        self.options = options
        self.n_cols = arrays.lb.size
        self.n_rows = arrays.row_lo.size

    @abstractmethod
    def solve(self, lb: np.ndarray, ub: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray,
              c: np.ndarray | None = None, offset: float = 0.0, time_limit: float | None = None,
              start: np.ndarray | None = None) -> SolveResult:
        """Solve with these bounds and objective ``c.x + offset`` (``c=None``: as loaded)."""

    @abstractmethod
    def add_rows(self, A, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Append rows (CSR over all columns); returns their row indices."""

    @abstractmethod
    def remove_rows(self, rows: np.ndarray) -> None:
        """Remove rows previously returned by :meth:`add_rows` (the last ones added)."""
