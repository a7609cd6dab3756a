"""The one status vocabulary every query ends in."""

OPTIMAL = "optimal"        # proven optimal: gap 0 within the stated tolerance
FEASIBLE = "feasible"      # a verified counterfactual, but the time limit stopped the proof
INFEASIBLE = "infeasible"  # certified: no counterfactual exists under the constraints
ERROR = "error"            # no answer; the message names the cause

STATUSES = (OPTIMAL, FEASIBLE, INFEASIBLE, ERROR)
