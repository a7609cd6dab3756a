"""Any Pyomo solver (``solver="pyomo:appsi_highs"``, ``"pyomo:cbc"``, ...) through the Pyomo export.

Slower than the array adapters (Pyomo translates every row in Python) but it is the way to
use a solver mipcf has no adapter for, and the exported model (:attr:`PyomoSolver.model`) is
a plain Pyomo model users can extend.
"""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo
from pyomo.opt import TerminationCondition as TC

from encoders.milp import MILPArrays
from encoders.pyomo_export import set_bounds, to_pyomo

from .. import status as st
from .base import SolveResult, Solver, SolverOptions

STATUS_MAP = {
    TC.optimal: st.OPTIMAL,
    TC.locallyOptimal: st.OPTIMAL,
    TC.globallyOptimal: st.OPTIMAL,
    TC.maxTimeLimit: st.FEASIBLE,
    TC.infeasible: st.INFEASIBLE,
}


class PyomoSolver(Solver):
    def __init__(self, arrays: MILPArrays, options: SolverOptions, solver_name: str = "appsi_highs",
                 blocks=()) -> None:
        super().__init__(arrays, options)
        self.name = f"pyomo:{solver_name}"
        self._c = np.asarray(arrays.c, float)
        self.model = to_pyomo(arrays, blocks)
        self._opt = pyo.SolverFactory(solver_name)
        if not self._opt.available(exception_flag=False):
            raise RuntimeError(f"Pyomo solver {solver_name!r} is not available on this machine")
        self._previous: tuple | None = None
        self._cost: tuple | None = None

    def _set_objective(self, c: np.ndarray, offset: float) -> None:
        if self._cost is not None and np.array_equal(self._cost[0], c) and self._cost[1] == offset:
            return
        x = self.model.x
        nz = np.nonzero(c)[0]
        self.model.obj.set_value(sum(float(c[j]) * x[int(j)] for j in nz) + float(offset))
        self._cost = (c.copy(), float(offset))

    def solve(self, lb, ub, row_lo, row_hi, c=None, offset=0.0, time_limit=None, start=None) -> SolveResult:
        lb, ub = np.asarray(lb, float), np.asarray(ub, float)
        row_lo, row_hi = np.asarray(row_lo, float), np.asarray(row_hi, float)
        set_bounds(self.model, lb, ub, row_lo, row_hi, self._previous)
        self._previous = (lb.copy(), ub.copy(), row_lo.copy(), row_hi.copy())
        self._set_objective(self._c if c is None else np.asarray(c, float), offset)
        limit = time_limit if time_limit is not None else self.options.time_limit
        opts = {}
        if self.name == "pyomo:appsi_highs":
            opts = {"mip_rel_gap": self.options.mip_gap, "mip_abs_gap": self.options.abs_gap,
                    "random_seed": self.options.seed, "mip_feasibility_tolerance": self.options.feasibility_tol,
                    "primal_feasibility_tolerance": self.options.feasibility_tol}
            if limit:
                opts["time_limit"] = float(limit)
        t0 = time.perf_counter()
        res = self._opt.solve(self.model, load_solutions=False, options=opts)
        seconds = time.perf_counter() - t0
        tc = res.solver.termination_condition
        status = STATUS_MAP.get(tc, st.ERROR)
        if status == st.INFEASIBLE:
            return SolveResult(st.INFEASIBLE, seconds=seconds)
        if status == st.ERROR:
            return SolveResult(st.ERROR, seconds=seconds, message=f"Pyomo solver ended with {tc}")
        try:
            self.model.solutions.load_from(res)
        except (ValueError, AttributeError, KeyError):
            return SolveResult(st.ERROR, seconds=seconds, message="time limit reached before any counterfactual was found")
        x = np.array([pyo.value(self.model.x[j], exception=False) or 0.0 for j in range(self.n_cols)])
        obj = float(pyo.value(self.model.obj))
        bound = getattr(res.problem, "lower_bound", None)
        bound = float(bound) if bound is not None and np.isfinite(float(bound)) else obj
        return SolveResult(status, x, obj, bound if status == st.FEASIBLE else min(bound, obj), seconds)

    def add_rows(self, A, lo, hi) -> np.ndarray:  # pragma: no cover - cuts use the array adapters
        raise NotImplementedError("cuts (diversity) need the highs or ortools back-end")

    def remove_rows(self, rows) -> None:  # pragma: no cover
        raise NotImplementedError("cuts (diversity) need the highs or ortools back-end")
