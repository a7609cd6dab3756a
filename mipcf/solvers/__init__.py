"""Solver back-ends behind one interface (:class:`Solver`)."""

from __future__ import annotations

from encoders.milp import MILPArrays

from .base import SolveResult, Solver, SolverOptions

SOLVERS = ("highs", "ortools", "ortools-scip", "ortools-cp-sat")


def make_solver(name: str, arrays: MILPArrays, options: SolverOptions) -> Solver:
    """Load ``arrays`` into the back-end called ``name``."""
    if name == "highs":
        from .highs import HighsSolver
        return HighsSolver(arrays, options)
    if name in ("ortools", "ortools-scip"):
        from .ortools import OrtoolsSolver
        return OrtoolsSolver(arrays, options, "scip")
    if name == "ortools-cp-sat":
        from .ortools import OrtoolsSolver
        return OrtoolsSolver(arrays, options, "sat")
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")


__all__ = ["SolveResult", "Solver", "SolverOptions", "make_solver", "SOLVERS"]
