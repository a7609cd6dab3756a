"""Gradient-boosted tree ensembles: readers for sklearn, XGBoost and LightGBM.

Each reader turns a fitted classifier into a :class:`~encoders.trees.TreeEnsembleDef`
(``raw = init + sum_t weight_t * leaf_value_t``) that predicts exactly like the model and
is encoded by the shared split-level formulation :func:`~encoders.trees.encode_trees`.
What differs between the three libraries, and is reproduced here:

============  ====================  ===============  =============================  ==========
library       split goes left on    input rounding   init (margin space)            binary tie
============  ====================  ===============  =============================  ==========
sklearn GB    ``x <= t``            float32          ``init_`` (prior / 'zero')     class 1
sklearn HGB   ``x <= t``            none (float64)   ``_baseline_prediction``       class 0
XGBoost       ``x < t``             float32          base_score (logit if binary)   class 0
LightGBM      ``x <= t``            none (float64)   folded into the first tree     class 0
============  ====================  ===============  =============================  ==========

Binary models keep one raw score (``decision="sign"``); multi-class models keep one score
per class (K trees per boosting round, each feeding one class) and predict the argmax.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from .trees import TreeArrays, TreeEnsembleDef, _sklearn_tree

_EPS32 = float(np.finfo(np.float32).eps)


def _unsupported(msg: str) -> Exception:
    from . import UnsupportedModelError
    return UnsupportedModelError(msg)


def _one_class(tree: TreeArrays, k: int, n_classes: int) -> TreeArrays:
    """The tree with its single output placed in column ``k`` of ``n_classes`` scores."""
    if n_classes == 1:
        return tree
    value = np.zeros((tree.value.shape[0], n_classes))
    value[:, k] = tree.value[:, 0]
    return TreeArrays(tree.feature, tree.threshold, tree.left, tree.right, value)


def _from_nodes(nodes: Sequence[tuple[int, float, int, int, float]]) -> TreeArrays:
    """Tree arrays from ``(feature, threshold, left, right, leaf value)`` rows, node 0 the root.

    Only nodes reachable from the root are kept (XGBoost keeps pruned nodes in its arrays),
    renumbered depth first.
    """
    order, new_id, stack = [], {}, [0]
    while stack:
        n = stack.pop()
        new_id[n] = len(order)
        order.append(n)
        f, _, left, right, _ = nodes[n][:5]
        if f >= 0:
            stack.extend((right, left))
    m = len(order)
    feature, threshold = np.full(m, -1, dtype=np.int64), np.zeros(m)
    left_a, right_a, value = np.full(m, -1, dtype=np.int64), np.full(m, -1, dtype=np.int64), np.zeros((m, 1))
    for i, n in enumerate(order):
        f, t, left, right, v = nodes[n][:5]
        if f >= 0:
            feature[i], threshold[i], left_a[i], right_a[i] = f, t, new_id[left], new_id[right]
        else:
            value[i, 0] = v
    return TreeArrays(feature, threshold, left_a, right_a, value)


# ---------------------------------------------------------------------------------------
# scikit-learn GradientBoostingClassifier


def read_gradient_boosting(model: Any) -> TreeEnsembleDef:
    """sklearn ``GradientBoostingClassifier``: ``raw = init + learning_rate * sum of tree values``.

    sklearn predicts class 1 iff ``raw >= 0`` (binary) and the argmax of the K raw scores
    otherwise; trees compare ``float32(x) <= threshold``. The init must be constant in the
    inputs: ``'zero'`` or a :class:`~sklearn.dummy.DummyClassifier` (the default prior).
    """
    estimators = np.asarray(model.estimators_, dtype=object)
    n_stages, k = estimators.shape
    init = _gb_init(model, k)
    trees = [_one_class(_sklearn_tree(estimators[i, j], normalise=False), j, k)
             for i in range(n_stages) for j in range(k)]
    weights = np.full(len(trees), float(model.learning_rate))
    classes = np.asarray(model.classes_)
    loss = getattr(model, "loss", "log_loss")
    if k == 1:
        # log-loss: P(1) = expit(raw); exponential loss: P(1) = expit(2 raw)
        return TreeEnsembleDef(trees, weights, init, classes, decision="sign", tie_ok=True,
                               proba="sigmoid", proba_scale=2.0 if loss == "exponential" else 1.0,
                               extra={"library": "sklearn", "loss": loss})
    return TreeEnsembleDef(trees, weights, init, classes, decision="argmax", proba="softmax",
                           extra={"library": "sklearn", "loss": loss})


def _gb_init(model: Any, k: int) -> np.ndarray:
    init = model.init_
    if isinstance(init, str) and init == "zero":
        return np.zeros(k)
    name = type(init).__name__
    strategy = getattr(init, "strategy", None)
    # only input-independent init estimators can be encoded: their raw value is one constant
    if name != "DummyClassifier" or strategy not in ("prior", "most_frequent", "constant", "uniform"):
        raise _unsupported(
            f"GradientBoostingClassifier init estimator {name}"
            f"{'(strategy=' + repr(strategy) + ')' if strategy else ''} depends on the inputs; "
            "only init=None (the class prior), init='zero' or a constant DummyClassifier are supported")
    X0 = np.zeros((1, int(model.n_features_in_)), dtype=np.float32)
    # sklearn's own init computation (link of the clipped prior), so the constant is bitwise the same
    return np.asarray(model._raw_predict_init(X0), dtype=float)[0].copy()


def read_hist_gradient_boosting(model: Any) -> TreeEnsembleDef:
    """sklearn ``HistGradientBoostingClassifier``: ``raw = baseline + sum of leaf values``.

    Leaf values already include the learning rate. The predictor compares the float64
    input with the float64 ``num_threshold`` (``x <= t``, no float32 rounding); binary
    models predict class 1 iff ``raw > 0``. Categorical splits are not supported.
    """
    is_cat = getattr(model, "is_categorical_", None)
    is_cat = np.zeros(0, bool) if is_cat is None else np.asarray(is_cat, dtype=bool)
    if is_cat.any() or getattr(model, "_preprocessor", None) is not None:
        names = getattr(model, "feature_names_in_", None)
        cats = [str(names[j]) if names is not None else str(j) for j in np.flatnonzero(is_cat)]
        raise _unsupported(f"HistGradientBoostingClassifier with categorical features {cats} is not supported; "
                           "one-hot encode them (or pass them as numbers with categorical_features=None)")
    k = int(model.n_trees_per_iteration_)
    trees = []
    for stage in model._predictors:
        for j, predictor in enumerate(stage):
            nd = predictor.nodes
            nodes = [(-1 if nd["is_leaf"][n] else int(nd["feature_idx"][n]), float(nd["num_threshold"][n]),
                      int(nd["left"][n]), int(nd["right"][n]), float(nd["value"][n])) for n in range(nd.shape[0])]
            trees.append(_one_class(_from_nodes(nodes), j, k))
    init = np.asarray(model._baseline_prediction, dtype=float).ravel().copy()
    classes = np.asarray(model.classes_)
    extra = {"library": "sklearn-hist"}
    if k == 1:  # predict: raw > 0 ("np.argmax([0.5, 0.5]) is 0"), P(1) = expit(raw)
        return TreeEnsembleDef(trees, np.ones(len(trees)), init, classes, decision="sign", tie_ok=False,
                               float32=False, proba="sigmoid", extra=extra)
    return TreeEnsembleDef(trees, np.ones(len(trees)), init, classes, decision="argmax", float32=False,
                           proba="softmax", extra=extra)


# ---------------------------------------------------------------------------------------
# XGBoost


def read_xgboost(model: Any) -> TreeEnsembleDef:
    """``xgboost.XGBClassifier`` (``binary:logistic``, ``multi:softprob`` / ``multi:softmax``).

    Trees come from the booster's JSON model: splits go left on ``float32(x) < t``, leaf
    values are in ``split_conditions`` at leaves; base_score is stored in probability
    space for binary:logistic (converted by logit) and in margin space for multi-class.
    Predictions use ``best_iteration`` when early stopping set it, like ``predict``.
    Missing-value default directions are recorded in ``extra["default_left"]``; they never
    apply to complete data.
    """
    booster = model.get_booster()
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    objective = learner["objective"]["name"]
    if objective not in ("binary:logistic", "binary:logitraw", "multi:softprob", "multi:softmax"):
        raise _unsupported(f"XGBClassifier objective {objective!r} is not supported "
                           "(binary:logistic, binary:logitraw, multi:softprob, multi:softmax are)")
    gb = learner["gradient_booster"]
    if gb["name"] == "gbtree":
        tree_model, drop = gb["model"], None
    elif gb["name"] == "dart":
        tree_model, drop = gb["gbtree"]["model"], np.asarray(gb["weight_drop"], dtype=float)
    else:
        raise _unsupported(f"XGBClassifier booster {gb['name']!r} is not supported (gbtree, dart are)")
    param = learner["learner_model_param"]
    n_class = int(param.get("num_class", "0"))
    k = n_class if objective.startswith("multi") else 1
    if k == 2:  # XGBClassifier.predict then returns a 0/1 matrix, not labels
        raise _unsupported("XGBClassifier with a multi:* objective on two classes is not supported; "
                           "use binary:logistic")
    base = np.atleast_1d(np.asarray(json.loads(param["base_score"]) if param["base_score"].startswith("[")
                                    else float(param["base_score"]), dtype=float))
    if objective == "binary:logistic":
        base = np.log(base) - np.log1p(-base)  # probability space -> margin
    init = np.broadcast_to(base, (k,)).astype(float).copy()

    raw_trees = tree_model["trees"]
    info = np.asarray(tree_model["tree_info"], dtype=int)
    n_use = len(raw_trees)
    best = getattr(model, "best_iteration", None)  # set by early stopping; predict stops there
    lo, hi = 0, (0 if best is None else int(best) + 1)
    if hi:
        indptr = tree_model.get("iteration_indptr")
        n_use = int(indptr[hi]) if indptr is not None else hi * k * int(
            tree_model["gbtree_model_param"].get("num_parallel_tree", "1"))
    trees, default_left = [], []
    for i, t in enumerate(raw_trees[:n_use]):
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise _unsupported("XGBClassifier with multi-output trees (multi_strategy) is not supported")
        if any(int(s) != 0 for s in t.get("split_type", [])):
            feat = next(int(f) for f, s in zip(t["split_indices"], t["split_type"]) if int(s) != 0)
            raise _unsupported(f"XGBClassifier uses a categorical split on input {_xgb_name(booster, feat)}; "
                               "only numerical splits are supported (one-hot encode the column)")
        left, right = t["left_children"], t["right_children"]
        cond, feat = t["split_conditions"], t["split_indices"]
        nodes = [(int(feat[n]) if left[n] >= 0 else -1,
                  float(np.float32(cond[n])), int(left[n]), int(right[n]), float(np.float32(cond[n])))
                 for n in range(len(left))]
        trees.append(_one_class(_from_nodes(nodes), int(info[i]) if k > 1 else 0, k))
        default_left.append(np.asarray(t["default_left"], dtype=bool))
    weights = np.ones(len(trees)) if drop is None else drop[:len(trees)]
    # XGBoost sums leaves in float32: keep the decision gap above that rounding
    spread = np.sum(np.abs(init)) + sum(float(np.abs(t.value).max()) for t in trees)
    margin = 1e-6 + 8 * _EPS32 * spread
    classes = np.asarray(model.classes_)
    extra = {"library": "xgboost", "objective": objective, "default_left": default_left}
    if k == 1:
        # predict: class 1 iff float32 expit(raw) > 0.5, so raw == 0 is class 0
        d = TreeEnsembleDef(trees, weights, init, classes, decision="sign", tie_ok=False, strict=True,
                            proba="sigmoid" if objective == "binary:logistic" else None,
                            margin=margin, extra=extra)
    else:
        d = TreeEnsembleDef(trees, weights, init, classes, decision="argmax", strict=True, proba="softmax",
                            margin=margin, extra=extra)
    _check_xgb_margin(booster, d, (lo, hi))
    return d


def _xgb_name(booster: Any, f: int) -> str:
    names = booster.feature_names
    return repr(names[f]) if names else str(f)


def _check_xgb_margin(booster: Any, d: TreeEnsembleDef, iteration_range: tuple[int, int]) -> None:
    """The definition's raw score must match the booster's margin (guards format changes)."""
    import xgboost

    n = booster.num_features()
    Z = np.zeros((1, n), dtype=np.float32)
    got = np.asarray(booster.predict(xgboost.DMatrix(Z, feature_names=booster.feature_names),
                                     output_margin=True, iteration_range=iteration_range), dtype=float).ravel()
    want = d.raw_scores(Z).ravel()
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
        raise ValueError(f"XGBoost model not read faithfully: margin {got} but the trees give {want}; "
                         "please report this with your xgboost version")


# ---------------------------------------------------------------------------------------
# LightGBM

_LGB_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold


def read_lightgbm(model: Any) -> TreeEnsembleDef:
    """``lightgbm.LGBMClassifier`` (objectives binary, multiclass, multiclassova).

    Trees come from ``booster_.dump_model()``. LightGBM compares the float64 feature value
    with the float64 threshold (``x <= t``; inputs are not rounded to float32 when the
    data is float64, which is what pandas frames with int64/float64 columns become; values
    within 1e-35 of zero count as 0, see :func:`_lgb_threshold`), leaf
    values already include the shrinkage and the init score (boost_from_average), and
    ``boosting="rf"`` averages the trees. Categorical splits and linear trees are not
    supported; ``missing_type="Zero"`` is accepted only where routing zeros to the default
    side agrees with the threshold.
    """
    booster = model.booster_
    best = booster.best_iteration
    dump = booster.dump_model(num_iteration=best if best > 0 else None)
    objective = str(dump.get("objective", "")).split()
    kind = objective[0] if objective else ""
    if kind not in ("binary", "multiclass", "multiclassova", "softmax", "multiclass_ova", "ova"):
        raise _unsupported(f"LGBMClassifier objective {dump.get('objective')!r} is not supported "
                           "(binary, multiclass, multiclassova are)")
    names = dump.get("feature_names") or []
    k = int(dump["num_tree_per_iteration"])
    trees, default_left = [], []
    for i, info in enumerate(dump["tree_info"]):
        nodes: list = []
        _lgb_nodes(info["tree_structure"], nodes, names)
        trees.append(_one_class(_from_nodes(nodes), i % k, k))
        default_left.append([n[5] for n in nodes if len(n) > 5])
    n_iter = max(len(trees) // k, 1)
    weights = np.full(len(trees), 1.0 / n_iter) if dump.get("average_output") else np.ones(len(trees))
    classes = np.asarray(model.classes_)
    init = np.zeros(k)
    extra = {"library": "lightgbm", "objective": dump.get("objective"), "default_left": default_left}
    if k == 1:
        scale = 1.0
        for token in objective[1:]:
            if token.startswith("sigmoid:"):
                scale = float(token.split(":", 1)[1])
        # predict_proba gives [1 - p, p] and predict takes the argmax: raw == 0 is class 0
        return TreeEnsembleDef(trees, weights, init, classes, decision="sign", tie_ok=False, float32=False,
                               proba="sigmoid", proba_scale=scale, extra=extra)
    return TreeEnsembleDef(trees, weights, init, classes, decision="argmax", float32=False,
                           proba="softmax", extra=extra)


def _lgb_threshold(t: float) -> float:
    """The threshold ``t'`` with ``x <= t'`` equivalent to LightGBM's routing of a float64 ``x``.

    LightGBM's predictor stores rows sparsely and drops every ``|x| <= kZeroThreshold``
    (1e-35 as float32), so such values are compared as exactly 0; its own thresholds often
    sit at +-kZeroThreshold. With that snapping ``x`` goes left iff
    ``x < -kZero`` (``-kZero <= t < 0``), ``x <= kZero`` (``0 <= t <= kZero``), else ``x <= t``.
    """
    if -_LGB_ZERO <= t < 0.0:
        return float(np.nextafter(-_LGB_ZERO, -np.inf))
    if 0.0 <= t <= _LGB_ZERO:
        return _LGB_ZERO
    return t


def _lgb_nodes(node: dict, out: list, names: Sequence[str]) -> int:
    """Append ``node`` and its subtree to ``out`` depth first; returns its index."""
    me = len(out)
    if "split_feature" not in node:
        if node.get("leaf_coeff"):
            raise _unsupported("LGBMClassifier with linear_tree=True is not supported")
        out.append((-1, 0.0, -1, -1, float(node["leaf_value"])))
        return me
    f = int(node["split_feature"])
    fname = repr(names[f]) if f < len(names) else str(f)
    if node.get("decision_type", "<=") != "<=":
        raise _unsupported(f"LGBMClassifier uses a categorical split on input {fname}; only numerical "
                           "splits are supported (pass the column as numbers, not as a categorical feature)")
    t = _lgb_threshold(float(node["threshold"]))
    dl = bool(node.get("default_left", True))
    if node.get("missing_type") == "Zero":
        # values in [-1e-35, 1e-35] go to the default side instead of being compared
        consistent = t >= _LGB_ZERO if dl else t < -_LGB_ZERO
        if not consistent:
            raise _unsupported(f"LGBMClassifier split on input {fname} at {t!r} treats zero as missing and "
                               "sends it against the threshold (zero_as_missing=True); not supported")
    out.append(None)
    left = _lgb_nodes(node["left_child"], out, names)
    right = _lgb_nodes(node["right_child"], out, names)
    out[me] = (f, t, left, right, 0.0, dl)
    return me


__all__ = ["read_gradient_boosting", "read_hist_gradient_boosting", "read_xgboost", "read_lightgbm"]
