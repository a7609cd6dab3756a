"""HiGHS through highspy, with the whole model passed in one ``passModel`` call."""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from encoders.milp import MILPArrays
from encoders.quiet import quiet_stdout

from .. import status as st
from .base import SolveResult, Solver, SolverOptions

_MS = highspy.HighsModelStatus
PROBING_RULE = 1 << 15  # presolve_rule_off bit of HiGHS's probing rule (HiGHS 1.16)
STATUS_MAP = {
    _MS.kOptimal: st.OPTIMAL,
    _MS.kInfeasible: st.INFEASIBLE,
    _MS.kTimeLimit: st.FEASIBLE,
    _MS.kInterrupt: st.FEASIBLE,
    _MS.kIterationLimit: st.FEASIBLE,
    _MS.kSolutionLimit: st.FEASIBLE,
}


class HighsSolver(Solver):
    """HiGHS, loaded once; each query either updates bounds in place or, when most columns
    are fixed (incumbent pruning fixes most of a forest), solves the reduced model.

    The reduction is exact algebra: fixed columns move into the row bounds, rows left with
    no free column are checked and dropped. It matters because HiGHS presolves the whole
    loaded model on every run — about a second for a 50k-row forest even when all but a few
    hundred columns are fixed.
    """

    name = "highs"
    REDUCE_WHEN_FIXED = 0.5  # share of fixed columns from which the reduced model is solved

    def __init__(self, arrays: MILPArrays, options: SolverOptions) -> None:
        super().__init__(arrays, options)
        self._A = sp.csc_matrix(arrays.A)
        self._c = np.asarray(arrays.c, float)
        self._integer = np.asarray(arrays.integer, bool)
        self._h = self._new_highs()
        status = self._h.passModel(self._lp(self._A, self._c, arrays.lb, arrays.ub, arrays.row_lo, arrays.row_hi,
                                            self._integer))
        if status == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS rejected the model")
        self._all_cols = np.arange(self.n_cols, dtype=np.int32)
        self._loaded_c = self._c

    def _new_highs(self) -> highspy.Highs:
        o = self.options
        with quiet_stdout():
            h = highspy.Highs()
            h.setOptionValue("output_flag", bool(o.verbose))
        h.setOptionValue("mip_rel_gap", float(o.mip_gap))
        h.setOptionValue("mip_abs_gap", float(o.abs_gap))
        h.setOptionValue("random_seed", int(o.seed))
        h.setOptionValue("mip_feasibility_tolerance", float(o.feasibility_tol))
        h.setOptionValue("primal_feasibility_tolerance", float(o.feasibility_tol))
        if o.threads:
            h.setOptionValue("threads", int(o.threads))
        if not o.probing:
            h.setOptionValue("presolve_rule_off", PROBING_RULE)
        if not o.sub_mip_heuristics:
            h.setOptionValue("mip_heuristic_run_rins", False)
            h.setOptionValue("mip_heuristic_run_rens", False)
            h.setOptionValue("mip_heuristic_run_root_reduced_cost", False)  # a sub-MIP too
        if not o.strong_branching:
            h.setOptionValue("mip_pscost_minreliable", 0)
        if not o.restarts:
            h.setOptionValue("mip_allow_restart", False)
        if not o.node_cuts:
            h.setOptionValue("mip_allow_cut_separation_at_nodes", False)
        return h

    @staticmethod
    def _lp(A: sp.csc_matrix, c, lb, ub, lo, hi, integer, offset: float = 0.0) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
        lp.col_cost_ = np.asarray(c, float)
        lp.offset_ = float(offset)
        lp.col_lower_, lp.col_upper_ = np.asarray(lb, float), np.asarray(ub, float)
        lp.row_lower_, lp.row_upper_ = np.asarray(lo, float), np.asarray(hi, float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                           for i in integer]
        return lp

    supports_cutoff = True
    supports_presolve_off = True
    _cutoff, _first, _presolve = float("inf"), False, True

    def solve(self, lb, ub, row_lo, row_hi, c=None, offset=0.0, time_limit=None, start=None,
              cutoff: float | None = None, first: bool = False, presolve: bool = True) -> SolveResult:
        """As :meth:`Solver.solve`; with ``cutoff``, 'infeasible' means no point costs <= cutoff.
        ``first``: stop at the first point within the cutoff (status ``feasible``); for when
        the caller has proved that nothing is cheaper than the cutoff's level. ``presolve=False``:
        a second opinion on an 'infeasible' that a proof rests on (HiGHS 1.16's presolve has
        called a box empty that holds a known point: Adult rf100, linf, person 27)."""
        self._cutoff = float("inf") if cutoff is None else float(cutoff)
        self._first, self._presolve = bool(first), bool(presolve)
        lb, ub = np.asarray(lb, float), np.asarray(ub, float)
        row_lo, row_hi = np.asarray(row_lo, float), np.asarray(row_hi, float)
        c = self._c if c is None else np.asarray(c, float)
        limit = time_limit if time_limit is not None else self.options.time_limit
        limit = float(limit) if limit else float("inf")
        if start is None and np.count_nonzero(lb >= ub) >= self.REDUCE_WHEN_FIXED * self.n_cols:
            return self._solve_reduced(lb, ub, row_lo, row_hi, c, offset, limit)
        h = self._h
        if c is not self._loaded_c:
            h.changeColsCost(self.n_cols, self._all_cols, c)
            self._loaded_c = c
        h.changeObjectiveOffset(float(offset))
        h.changeColsBounds(self.n_cols, self._all_cols, lb, ub)
        h.changeRowsBounds(self.n_rows, np.arange(self.n_rows, dtype=np.int32), row_lo, row_hi)
        h.setOptionValue("time_limit", limit)
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(np.asarray(start, float))
            sol.value_valid = True
            h.setSolution(sol)
        return self._run(h, lambda x: x)

    def _solve_reduced(self, lb, ub, row_lo, row_hi, c, offset, limit) -> SolveResult:
        t0 = time.perf_counter()
        lb, ub = lb.copy(), ub.copy()
        tol = self.options.feasibility_tol
        A, m = self._A, self.n_rows  # CSC: each pass reads only the free columns and nonzero fixed values
        for _ in range(3):  # fixing columns can turn rows into bounds that fix more columns
            if np.any(lb > ub + tol):
                return SolveResult(st.INFEASIBLE, seconds=time.perf_counter() - t0,
                                   message="infeasible on the fixed columns alone")
            fixed = lb >= ub
            ub = np.where(fixed, lb, ub)
            x_fixed = np.where(fixed, lb, 0.0)
            ax = _column_sums(A, np.nonzero(x_fixed)[0], x_fixed, m)
            lo, hi = row_lo - ax, row_hi - ax
            free = np.nonzero(~fixed)[0]
            F = A[:, free]
            row_of = F.indices
            count = np.bincount(row_of, minlength=m)  # free columns per row (stored entries)
            if np.any(lo[count == 0] > tol) or np.any(hi[count == 0] < -tol):
                return SolveResult(st.INFEASIBLE, seconds=time.perf_counter() - t0,
                                   message="infeasible on the fixed columns alone")
            rows = np.nonzero(count == 1)[0]
            # a row with one free column: that column is the index sum, its coefficient the row sum
            col_of = np.repeat(free, np.diff(F.indptr)).astype(float)
            cols = np.rint(np.bincount(row_of, weights=col_of, minlength=m)[rows]).astype(np.int64)
            a_free = np.bincount(row_of, weights=F.data, minlength=m)[rows]
            if not self._bounds_from_singletons(rows, cols, a_free, lo, hi, lb, ub):
                break
        keep = (count > 1) & (np.isfinite(lo) | np.isfinite(hi))
        R = sp.csc_matrix(F.tocsr()[np.nonzero(keep)[0]])
        h = self._new_highs()
        h.setOptionValue("time_limit", max(limit - (time.perf_counter() - t0), 0.01))
        lp = self._lp(R, c[free], lb[free], ub[free], lo[keep], hi[keep], self._integer[free],
                      float(offset) + float(c @ x_fixed))
        if h.passModel(lp) == highspy.HighsStatus.kError:
            return SolveResult(st.ERROR, message="HiGHS rejected the reduced model")

        def expand(x: np.ndarray) -> np.ndarray:
            full = x_fixed.copy()
            full[free] = x
            return full

        res = self._run(h, expand)
        res.seconds = time.perf_counter() - t0  # the reduction counts as solver time
        res.extra["reduced"] = (int(free.size), int(keep.sum()))
        return res

    def _bounds_from_singletons(self, rows, cols, a, lo, hi, lb, ub) -> bool:
        """Rows with one free column (``cols``, coefficient ``a``) are bounds on it: tighten
        ``lb``/``ub`` in place.

        Returns whether a column became fixed (worth another pass).
        """
        if rows.size == 0:
            return False
        with np.errstate(invalid="ignore", divide="ignore"):
            b1, b2 = lo[rows] / a, hi[rows] / a
        new_lo, new_hi = np.where(a > 0, b1, b2), np.where(a > 0, b2, b1)
        integer = self._integer[cols]
        slack = self.options.feasibility_tol
        new_lo = np.where(integer, np.ceil(new_lo - slack), new_lo)
        new_hi = np.where(integer, np.floor(new_hi + slack), new_hi)
        before = np.count_nonzero(lb >= ub)
        np.maximum.at(lb, cols, np.nan_to_num(new_lo, nan=-np.inf))
        np.minimum.at(ub, cols, np.nan_to_num(new_hi, nan=np.inf))
        return np.count_nonzero(lb >= ub) > before

    def _run(self, h: highspy.Highs, expand) -> SolveResult:
        h.setOptionValue("objective_bound", self._cutoff)
        h.setOptionValue("mip_max_improving_sols", 1 if self._first else 2**31 - 1)
        h.setOptionValue("presolve", "on" if self._presolve else "off")
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
        status = STATUS_MAP.get(ms, st.ERROR)
        if ms == _MS.kModelEmpty:  # the reduced model kept no row and no free column
            status = st.OPTIMAL
        if status == st.FEASIBLE and not has_x:
            return SolveResult(st.ERROR, seconds=seconds, bound=float(info.mip_dual_bound),
                               message="time limit reached before any counterfactual was found")
        if status == st.ERROR:
            return SolveResult(st.ERROR, seconds=seconds,
                               message=f"HiGHS ended with {h.modelStatusToString(ms)}")
        if status == st.INFEASIBLE:
            return SolveResult(st.INFEASIBLE, seconds=seconds)
        x = expand(np.asarray(h.getSolution().col_value, dtype=float))
        is_lp = info.mip_node_count < 0  # no integer columns left: HiGHS ran the LP solver
        bound = float(info.mip_dual_bound)
        if is_lp or not np.isfinite(bound):  # an LP optimum is its own proof; no MIP bound exists
            bound = float(info.objective_function_value) if status == st.OPTIMAL else float("nan")
        return SolveResult(status, x, float(info.objective_function_value), bound, seconds,
                           extra={"nodes": int(info.mip_node_count), "run_seconds": seconds})

    def add_rows(self, A, lo, hi) -> np.ndarray:
        A = sp.csr_matrix(A)
        first = self.n_rows
        self._h.addRows(A.shape[0], np.asarray(lo, float), np.asarray(hi, float), A.nnz,
                        A.indptr[:-1].astype(np.int32), A.indices.astype(np.int32), A.data)
        self._A = sp.csc_matrix(sp.vstack([self._A, A]))
        self.n_rows += A.shape[0]
        return np.arange(first, self.n_rows)

    def remove_rows(self, rows) -> None:
        rows = np.asarray(rows, dtype=np.int32)
        self._h.deleteRows(rows.size, rows)
        keep = np.setdiff1d(np.arange(self.n_rows), rows)
        self._A = sp.csc_matrix(self._A.tocsr()[keep])
        self.n_rows -= rows.size


def _column_sums(A: sp.csc_matrix, cols: np.ndarray, x: np.ndarray, m: int) -> np.ndarray:
    """``A[:, cols] @ x[cols]`` for a CSC matrix, reading only those columns."""
    S = A[:, cols]
    return np.bincount(S.indices, weights=S.data * np.repeat(x[cols], np.diff(S.indptr)), minlength=m)
