"""Embed trained classifiers in mixed-integer linear programs.

``encoders`` is a stand-alone library (it never imports ``mipcf``): readers turn a fitted
model into a neutral definition that predicts by itself; formulations encode a definition
into a :class:`~encoders.milp.MILP` over given model inputs and return an
:class:`~encoders.inputs.Encoding` (class scores and the rule that decides between them).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from .inputs import CategoryInput, Cut, DiscreteInput, Encoding, ModelInput, NumericInput
from .milp import MILP, LinExpr, MILPArrays

# class name -> (reader, formulation); filled lazily so optional back-ends stay optional
_FAMILIES: dict[str, tuple[str, str, str]] = {
    "LogisticRegression": ("linear", "read_linear", "encode_linear"),
    "LogisticRegressionCV": ("linear", "read_linear", "encode_linear"),
    "LinearSVC": ("linear", "read_linear", "encode_linear"),
    "SGDClassifier": ("linear", "read_linear", "encode_linear"),
    "RidgeClassifier": ("linear", "read_linear", "encode_linear"),
    "RidgeClassifierCV": ("linear", "read_linear", "encode_linear"),
    "Perceptron": ("linear", "read_linear", "encode_linear"),
    "PassiveAggressiveClassifier": ("linear", "read_linear", "encode_linear"),
    "DecisionTreeClassifier": ("trees", "read_decision_tree", "encode_trees"),
    "ExtraTreeClassifier": ("trees", "read_decision_tree", "encode_trees"),
    "RandomForestClassifier": ("trees", "read_forest", "encode_trees"),
    "ExtraTreesClassifier": ("trees", "read_forest", "encode_trees"),
    "GradientBoostingClassifier": ("boosting", "read_gradient_boosting", "encode_trees"),
    "HistGradientBoostingClassifier": ("boosting", "read_hist_gradient_boosting", "encode_trees"),
    "XGBClassifier": ("boosting", "read_xgboost", "encode_trees"),
    "LGBMClassifier": ("boosting", "read_lightgbm", "encode_trees"),
    "MLPClassifier": ("relu", "read_mlp", "encode_relu"),
}
_FORMULATION_MODULE = {"encode_linear": "linear", "encode_trees": "trees", "encode_relu": "relu"}


class UnsupportedModelError(TypeError):
    """The model (or a pipeline step) cannot be encoded; the message names it."""


def supported_models() -> list[str]:
    return sorted(_FAMILIES)


def _family(model: object) -> tuple[Callable, Callable]:
    from importlib import import_module

    name = type(model).__name__
    if name not in _FAMILIES:
        raise UnsupportedModelError(
            f"model type {name} is not supported; supported: {', '.join(supported_models())}")
    module, reader, formulation = _FAMILIES[name]
    try:
        read = getattr(import_module(f"{__name__}.{module}"), reader)
        encode = getattr(import_module(f"{__name__}.{_FORMULATION_MODULE[formulation]}"), formulation)
    except (ImportError, AttributeError) as exc:
        raise UnsupportedModelError(f"model type {name}: its encoder is not available ({exc})") from exc
    return read, encode


def check_supported(model: object) -> None:
    """Raise :class:`UnsupportedModelError` now, naming the type, if ``model`` cannot be encoded.

    Pipelines are checked step by step (:func:`encoders.pipeline.check_steps`); settings that
    only some columns break (a clipping scaler, an unknown level) are refused when encoded.
    """
    if type(model).__name__ in ("Pipeline", "ColumnTransformer"):
        from .pipeline import check_steps
        check_steps(model)  # every step by name and class, and the final estimator
        return
    _family(model)


def read_model(model: object):
    """The neutral definition of a fitted model (it predicts exactly like the model)."""
    read, _ = _family(model)
    return read(model)


def model_input_names(model: object, default: Sequence[str]) -> list[str]:
    """Column names the model was fitted on (``feature_names_in_``), else ``default``."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(c) for c in names]
    n = getattr(model, "n_features_in_", None)
    if n is not None and n != len(default):
        raise ValueError(f"the model takes {n} inputs but {len(default)} columns were given")
    return list(default)


def encode_model(milp: MILP, model: object, inputs: Mapping[str, ModelInput], columns: Sequence[str],
                 name: str = "model", **options) -> Encoding:
    """Encode ``model`` whose raw input columns are ``columns``, each given in ``inputs``.

    Pipelines (preprocessing steps in front of a supported model) are handled by
    :mod:`encoders.pipeline` when present.
    """
    if type(model).__name__ in ("Pipeline", "ColumnTransformer"):
        from .pipeline import encode_pipeline
        return encode_pipeline(milp, model, inputs, columns, name=name, **options)
    order = model_input_names(model, columns)
    missing = [c for c in order if c not in inputs]
    if missing:
        raise ValueError(f"the model expects columns {missing} that the schema does not define")
    read, encode = _family(model)
    with milp.block(name):
        return encode(milp, read(model), [inputs[c] for c in order], name=name, **options)


__all__ = ["MILP", "LinExpr", "MILPArrays", "NumericInput", "DiscreteInput", "CategoryInput", "ModelInput", "Cut",
           "Encoding", "UnsupportedModelError", "supported_models", "check_supported", "read_model", "encode_model",
           "model_input_names"]
