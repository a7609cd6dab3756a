"""Loading models and data safely.

A pickle runs arbitrary code when loaded, so pickle/joblib files are refused unless the
caller says the file is trusted. ``.skops`` files are loaded by skops, accepting only the
types on an explicit allow-list (scikit-learn estimators, numpy, and the optional boosting
libraries' sklearn wrappers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "collections.", "xgboost.", "lightgbm.", "scipy.")


class ModelLoadError(ValueError):
    """The model file cannot be used; the message says why and what to do."""


def load_model(path: str | Path, trust_pickle: bool = False) -> Any:
    """Load a fitted classifier from ``.skops`` (safe) or pickle/joblib (only if trusted)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".skops":
        model = _load_skops(path)
    elif suffix in (".pkl", ".pickle", ".joblib"):
        if not trust_pickle:
            raise ModelLoadError(
                f"refusing to load {path.name}: pickle/joblib files can run arbitrary code when loaded. "
                "Save the model with skops (skops.io.dump) or pass --trust-pickle (trust_pickle=True) "
                "if you trust where the file came from.")
        model = _load_pickle(path)
    else:
        raise ModelLoadError(f"unknown model file type {suffix!r}; use .skops, or .pkl/.joblib with --trust-pickle")
    check_classifier(model, path.name)
    return model


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means an unreadable file
        raise ModelLoadError(f"cannot read {path.name} as a skops file: {exc}") from exc
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelLoadError(f"{path.name} contains types that are not on the trusted list: {refused}")
    return sio.load(str(path), trusted=list(untrusted))


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot unpickle {path.name}: {exc}") from exc


def check_classifier(model: Any, label: str = "model") -> None:
    """Raise unless ``model`` is a fitted classifier."""
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not (is_classifier(model) or hasattr(model, "predict") and hasattr(model, "classes_")):
        raise ModelLoadError(f"{label} holds a {type(model).__name__}, which is not a classifier")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise ModelLoadError(f"{label}: the {type(model).__name__} is not fitted") from exc
    except TypeError:
        pass


def save_model(model: Any, path: str | Path) -> None:
    import skops.io as sio

    sio.dump(model, str(path))
