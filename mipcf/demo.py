"""The built-in demo: a synthetic credit-scoring data set, generated deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import Schema

HOUSING = ("rent", "mortgage", "own")
EDUCATION = ("none", "secondary", "bachelor", "master")


def credit_data(n: int = 600, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """Applicants and loan decisions; housing is one-hot, education an ordinal code."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 70, n)
    sex = rng.integers(0, 2, n)
    education = rng.choice(len(EDUCATION), n, p=[0.15, 0.45, 0.3, 0.1])
    income = np.round(rng.gamma(4.0, 700.0, n) + 400 * education + 20 * (age - 20), 0)
    debt = np.round(rng.gamma(2.0, 2500.0, n), 0)
    late = rng.poisson(1.0, n)
    years = np.minimum(rng.integers(0, 30, n), age - 18)
    housing = rng.choice(len(HOUSING), n, p=[0.4, 0.4, 0.2])
    score = (income / 1000.0 - debt / 6000.0 - 0.9 * late + 0.08 * years + 0.3 * education
             + 0.4 * (housing == 2) + rng.normal(0, 0.6, n))
    y = (score > np.median(score)).astype(int)
    X = pd.DataFrame({"age": age, "sex": sex, "education": education, "income": income.astype(float),
                      "debt": debt.astype(float), "late_payments": late, "years_employed": years})
    for k, name in enumerate(HOUSING):
        X[f"housing_{name}"] = (housing == k).astype(int)
    return X, y


def credit_schema(X: pd.DataFrame) -> Schema:
    return Schema.from_frame(
        X, categorical={"housing": [f"housing_{h}" for h in HOUSING]},
        ordinal={"education": list(range(len(EDUCATION)))},
        immutable=["sex"], increase_only=["age", "education", "years_employed"],
        decrease_only=["late_payments"], bounds={"income": (0.0, 20000.0), "debt": (0.0, 60000.0)})


def credit_model(X: pd.DataFrame, y: np.ndarray):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(X, y)
