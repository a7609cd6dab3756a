"""mipcf: provably nearest actionable counterfactuals by mixed-integer programming."""

from . import status
from .causal import SCM, SCMError
from .audit import AuditResult
from .costs import CostSpec, TableCost, make_cost
from .diversity import Explanations
from .explanation import Explanation
from .plausibility import IsolationForestConstraint, LeafSupportConstraint, SupportConstraint
from .recourse import Recourse
from .schema import Feature, Link, Schema, SchemaError

__version__ = "0.1.0"
__all__ = ["Schema", "Feature", "SchemaError", "Recourse", "Explanation", "CostSpec", "make_cost", "status",
           "SCM", "SCMError", "IsolationForestConstraint", "SupportConstraint", "LeafSupportConstraint",
           "Explanations", "AuditResult", "Link", "TableCost"]
