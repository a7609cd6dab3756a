"""Many individuals: serially or in parallel through joblib."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import status as st


def _explain_rows(rec, X: pd.DataFrame, desired_class: Any) -> list[dict]:
    out = []
    for i in range(len(X)):
        row = X.iloc[[i]]
        try:
            ex = rec.explain(row, desired_class)
            cf = ex.counterfactual.iloc[0].to_dict() if ex.counterfactual is not None else {}
            rec_row = {**{c: cf.get(c, np.nan) for c in X.columns}, **ex.summary()}
        except (ValueError, TypeError) as exc:  # bad row: report it, keep going
            rec_row = {**{c: np.nan for c in X.columns}, "status": st.ERROR, "message": str(exc)}
        out.append(rec_row)
    return out


def explain_frame(rec, X: pd.DataFrame, desired_class: Any = None, n_jobs: int = 1) -> pd.DataFrame:
    """One output row per input row (same index): counterfactual columns plus status columns."""
    if n_jobs == 1 or len(X) < 2:
        rows = _explain_rows(rec, X, desired_class)
    else:
        from joblib import Parallel, delayed
        chunks = np.array_split(np.arange(len(X)), min(len(X), 4 * abs(n_jobs)))
        parts = Parallel(n_jobs=n_jobs)(delayed(_explain_rows)(rec, X.iloc[c], desired_class)
                                        for c in chunks if len(c))
        rows = [r for part in parts for r in part]
    return pd.DataFrame(rows, index=X.index)
