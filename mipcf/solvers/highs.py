"""HiGHS through highspy, with the whole model passed in one ``passModel`` call."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

import highspy
import numpy as np
import scipy.sparse as sp

from encoders.milp import MILPArrays

from .. import status as st
from .base import SolveResult, Solver, SolverOptions

_MS = highspy.HighsModelStatus
STATUS_MAP = {
    _MS.kOptimal: st.OPTIMAL,
    _MS.kInfeasible: st.INFEASIBLE,
    _MS.kTimeLimit: st.FEASIBLE,
    _MS.kInterrupt: st.FEASIBLE,
    _MS.kIterationLimit: st.FEASIBLE,
    _MS.kSolutionLimit: st.FEASIBLE,
}


@contextmanager
def _quiet_stdout():
    """HiGHS prints a banner from C++ on its first construction; keep it off our output."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. captured): nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class HighsSolver(Solver):
    name = "highs"

    def __init__(self, arrays: MILPArrays, options: SolverOptions) -> None:
        super().__init__(arrays, options)
        with _quiet_stdout():
            h = highspy.Highs()
            h.setOptionValue("output_flag", bool(options.verbose))
        h.setOptionValue("mip_rel_gap", float(options.mip_gap))
        h.setOptionValue("mip_abs_gap", float(options.abs_gap))
        h.setOptionValue("random_seed", int(options.seed))
        h.setOptionValue("mip_feasibility_tolerance", float(options.feasibility_tol))
        h.setOptionValue("primal_feasibility_tolerance", float(options.feasibility_tol))
        if options.threads:
            h.setOptionValue("threads", int(options.threads))
        lp = highspy.HighsLp()
        A = sp.csc_matrix(arrays.A)
        lp.num_col_, lp.num_row_ = self.n_cols, self.n_rows
        lp.col_cost_ = arrays.c
        lp.col_lower_, lp.col_upper_ = arrays.lb, arrays.ub
        lp.row_lower_, lp.row_upper_ = arrays.row_lo, arrays.row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                           for i in arrays.integer]
        status = h.passModel(lp)
        if status == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS rejected the model")
        self._h = h
        self._all_cols = np.arange(self.n_cols, dtype=np.int32)

    def solve(self, lb, ub, row_lo, row_hi, c=None, offset=0.0, time_limit=None, start=None) -> SolveResult:
        h = self._h
        if c is not None:
            h.changeColsCost(self.n_cols, self._all_cols, np.asarray(c, float))
        h.changeObjectiveOffset(float(offset))
        h.changeColsBounds(self.n_cols, self._all_cols, np.asarray(lb, float), np.asarray(ub, float))
        rows = np.arange(self.n_rows, dtype=np.int32)
        h.changeRowsBounds(self.n_rows, rows, np.asarray(row_lo, float), np.asarray(row_hi, float))
        limit = time_limit if time_limit is not None else self.options.time_limit
        h.setOptionValue("time_limit", float(limit) if limit else float("inf"))
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(np.asarray(start, float))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
        status = STATUS_MAP.get(ms, st.ERROR)
        if status == st.FEASIBLE and not has_x:
            return SolveResult(st.ERROR, seconds=seconds, bound=float(info.mip_dual_bound),
                               message="time limit reached before any counterfactual was found")
        if status == st.ERROR:
            return SolveResult(st.ERROR, seconds=seconds,
                               message=f"HiGHS ended with {h.modelStatusToString(ms)}")
        if status == st.INFEASIBLE:
            return SolveResult(st.INFEASIBLE, seconds=seconds)
        x = np.asarray(h.getSolution().col_value, dtype=float)
        is_lp = info.mip_node_count < 0  # no integer columns left: HiGHS ran the LP solver
        bound = float(info.mip_dual_bound)
        if is_lp or not np.isfinite(bound):  # an LP optimum is its own proof; no MIP bound exists
            bound = float(info.objective_function_value) if status == st.OPTIMAL else float("nan")
        return SolveResult(status, x, float(info.objective_function_value), bound, seconds,
                           extra={"nodes": int(info.mip_node_count)})

    def add_rows(self, A, lo, hi) -> np.ndarray:
        A = sp.csr_matrix(A)
        first = self.n_rows
        self._h.addRows(A.shape[0], np.asarray(lo, float), np.asarray(hi, float), A.nnz,
                        A.indptr[:-1].astype(np.int32), A.indices.astype(np.int32), A.data)
        self.n_rows += A.shape[0]
        return np.arange(first, self.n_rows)

    def remove_rows(self, rows) -> None:
        rows = np.asarray(rows, dtype=np.int32)
        self._h.deleteRows(rows.size, rows)
        self.n_rows -= rows.size
