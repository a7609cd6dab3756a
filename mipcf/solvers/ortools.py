"""OR-Tools model builder (SCIP by default): the second back-end and the cross-check."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder as mb

from encoders.milp import MILPArrays

from .. import status as st
from .base import SolveResult, Solver, SolverOptions

_S = mb.SolveStatus
STATUS_MAP = {
    _S.OPTIMAL: st.OPTIMAL,
    _S.FEASIBLE: st.FEASIBLE,
    _S.INFEASIBLE: st.INFEASIBLE,
}


class OrtoolsSolver(Solver):
    name = "ortools"

    def __init__(self, arrays: MILPArrays, options: SolverOptions, backend: str = "scip") -> None:
        super().__init__(arrays, options)
        self.name = f"ortools-{backend}"
        self._arrays = arrays
        self._backend = backend
        self._extra_rows: list[tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = []
        if not mb.Solver(backend).solver_is_supported():
            raise RuntimeError(f"OR-Tools was built without the {backend!r} back-end")

    def _build(self, lb, ub, row_lo, row_hi, c, offset) -> mb.Model:
        a = self._arrays
        model = mb.Model()
        A = a.A
        lo, hi = row_lo, row_hi
        if self._extra_rows:
            A = sp.vstack([A] + [r[0] for r in self._extra_rows]).tocsr()
            lo = np.concatenate([lo] + [r[1] for r in self._extra_rows])
            hi = np.concatenate([hi] + [r[2] for r in self._extra_rows])
        model.helper.fill_model_from_sparse_data(np.asarray(lb, float), np.asarray(ub, float),
                                                 np.asarray(a.c if c is None else c, float),
                                                 np.asarray(lo, float), np.asarray(hi, float),
                                                 sp.csr_matrix(A))
        for j in np.nonzero(a.integer)[0]:
            model.helper.set_var_integrality(int(j), True)
        model.helper.set_objective_offset(float(offset))
        return model

    def solve(self, lb, ub, row_lo, row_hi, c=None, offset=0.0, time_limit=None, start=None) -> SolveResult:
        base_rows = self._arrays.row_lo.size
        model = self._build(lb, ub, row_lo[:base_rows], row_hi[:base_rows], c, offset)
        solver = mb.Solver(self._backend)
        solver.enable_output(bool(self.options.verbose))
        limit = time_limit if time_limit is not None else self.options.time_limit
        if limit:
            solver.set_time_limit_in_seconds(float(limit))
        params = [f"limits/gap = {self.options.mip_gap}", f"limits/absgap = {self.options.abs_gap}",
                  f"randomization/randomseedshift = {self.options.seed}",
                  f"numerics/feastol = {self.options.feasibility_tol}"]
        if self._backend == "scip":
            solver.set_solver_specific_parameters("\n".join(params))
        result = solver.solve(model)
        seconds = float(solver.wall_time)
        status = STATUS_MAP.get(result, st.ERROR)
        if status == st.ERROR:
            return SolveResult(st.ERROR, seconds=seconds, message=f"OR-Tools ended with {result.name}")
        if status == st.INFEASIBLE:
            return SolveResult(st.INFEASIBLE, seconds=seconds)
        x = np.asarray(solver.values(model.get_variables()), dtype=float)
        if status == st.FEASIBLE and x.size == 0:
            return SolveResult(st.ERROR, seconds=seconds,
                               message="time limit reached before any counterfactual was found")
        return SolveResult(status, x, float(solver.objective_value), float(solver.best_objective_bound),
                           seconds)

    def add_rows(self, A, lo, hi) -> np.ndarray:
        A = sp.csr_matrix(A)
        first = self.n_rows
        self._extra_rows.append((A, np.asarray(lo, float), np.asarray(hi, float)))
        self.n_rows += A.shape[0]
        return np.arange(first, self.n_rows)

    def remove_rows(self, rows) -> None:
        n = len(rows)
        while n > 0 and self._extra_rows:
            A, lo, hi = self._extra_rows.pop()
            n -= A.shape[0]
            self.n_rows -= A.shape[0]
