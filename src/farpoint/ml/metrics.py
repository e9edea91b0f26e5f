"""Classification and per-group metrics for evaluations (binary labels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import numpy as np

__all__ = ["classification_metrics", "demographic_parity_difference", "group_metrics"]


def _array(values: Any, name: str) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationFailed(f"{name} must be one-dimensional, got shape {arr.shape}")
    if len(arr) == 0:
        raise ValidationFailed(f"{name} is empty: there is nothing to evaluate")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValidationFailed(f"inputs have different lengths: {lengths}")


def _rate(numerator: int, denominator: int) -> float:
    # A group with no positives (or negatives) has no TPR (FPR); 0.0 keeps JSON NaN-free.
    return numerator / denominator if denominator else 0.0


def classification_metrics(
    y_true: Sequence[Any], y_pred: Sequence[Any], y_score: Sequence[float], *, pos_label: Any = 1
) -> dict[str, float]:
    """accuracy, precision, recall, f1 and roc_auc; `y_score` is P(`pos_label`)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    t, p = _array(y_true, "y_true"), _array(y_pred, "y_pred")
    s = _array(y_score, "y_score").astype(np.float64)
    _same_length(y_true=t, y_pred=p, y_score=s)
    t_pos, p_pos = t == pos_label, p == pos_label
    if t_pos.all() or not t_pos.any():
        raise ValidationFailed(
            f"ROC AUC needs both classes in the true labels; found only {np.unique(t).tolist()} "
            f"(positive label {pos_label!r}): evaluate on data with positives and negatives"
        )
    if not np.all(np.isfinite(s)):
        raise ValidationFailed("y_score contains NaN or infinite values")
    tp = int((t_pos & p_pos).sum())
    precision = _rate(tp, int(p_pos.sum()))
    recall = _rate(tp, int(t_pos.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float((t == p).mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": float(roc_auc_score(t_pos, s)),
    }


def group_metrics(
    y_true: Sequence[Any], y_pred: Sequence[Any], groups: Sequence[Any], *, pos_label: Any = 1
) -> dict[str, dict[str, float]]:
    """Per group value (as str): count, selection_rate, accuracy, TPR and FPR."""
    t, p, g = _array(y_true, "y_true"), _array(y_pred, "y_pred"), _array(groups, "groups")
    _same_length(y_true=t, y_pred=p, groups=g)
    t_pos, p_pos = t == pos_label, p == pos_label
    result: dict[str, dict[str, float]] = {}
    for key, mask in _group_masks(g):
        tp, pp = t_pos[mask], p_pos[mask]
        result[key] = {
            "count": float(mask.sum()),
            "selection_rate": float(pp.mean()),
            "accuracy": float((t[mask] == p[mask]).mean()),
            "true_positive_rate": _rate(int((tp & pp).sum()), int(tp.sum())),
            "false_positive_rate": _rate(int((~tp & pp).sum()), int((~tp).sum())),
        }
    return result


def demographic_parity_difference(
    y_pred: Sequence[Any], groups: Sequence[Any], *, pos_label: Any = 1
) -> float:
    """Largest minus smallest selection rate (share predicted `pos_label`) across groups."""
    p, g = _array(y_pred, "y_pred"), _array(groups, "groups")
    _same_length(y_pred=p, groups=g)
    selected = p == pos_label
    rates = [float(selected[mask].mean()) for _, mask in _group_masks(g)]
    return max(rates) - min(rates)


def _group_masks(groups: np.ndarray) -> list[tuple[str, np.ndarray]]:
    # Keys are strings because they become JSON object keys; sorted for a stable order.
    import numpy as np

    keys = np.asarray([str(v) for v in groups.tolist()], dtype=object)
    return [(key, keys == key) for key in sorted(set(keys.tolist()))]
