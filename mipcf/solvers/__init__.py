"""Solver back-ends behind one interface (:class:`Solver`)."""

from __future__ import annotations

from encoders.milp import MILPArrays

from .base import SolveResult, Solver, SolverOptions

SOLVERS = ("highs", "ortools", "ortools-scip", "ortools-cp-sat", "pyomo:<solver>")


def make_solver(name: str, arrays: MILPArrays, options: SolverOptions, blocks=()) -> Solver:
    """Load ``arrays`` into the back-end called ``name`` (``blocks``: the MILP's named blocks)."""
    if name == "highs":
        from .highs import HighsSolver
        return HighsSolver(arrays, options)
    if name in ("ortools", "ortools-scip"):
        from .ortools import OrtoolsSolver
        return OrtoolsSolver(arrays, options, "scip")
    if name == "ortools-cp-sat":
        from .ortools import OrtoolsSolver
        return OrtoolsSolver(arrays, options, "sat")
    if name.startswith("pyomo:"):
        from .pyomo import PyomoSolver
        return PyomoSolver(arrays, options, name.split(":", 1)[1], blocks)
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")


__all__ = ["SolveResult", "Solver", "SolverOptions", "make_solver", "SOLVERS"]
