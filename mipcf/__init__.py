"""mipcf: provably nearest actionable counterfactuals by mixed-integer programming."""

from . import status
from .causal import SCM, SCMError
from .costs import CostSpec, make_cost
from .explanation import Explanation
from .plausibility import IsolationForestConstraint, SupportConstraint
from .recourse import Recourse
from .schema import Feature, Schema, SchemaError

__version__ = "0.1.0"
__all__ = ["Schema", "Feature", "SchemaError", "Recourse", "Explanation", "CostSpec", "make_cost", "status",
           "SCM", "SCMError", "IsolationForestConstraint", "SupportConstraint"]
