"""Classification metrics as the lecture defines them, from labels and predictions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: np.ndarray  # rows: true class, columns: predicted class

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {name: vars(m) for name, m in self.per_class.items()},
            "confusion_matrix": self.confusion.tolist(),
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    flat = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def metrics_from_confusion(confusion: np.ndarray, classes: tuple[str, ...] | list[str]) -> Metrics:
    """precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R); 0 where undefined."""
    confusion = np.asarray(confusion, dtype=np.int64)
    true_pos = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(actual > 0, true_pos / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {name: ClassMetrics(float(p), float(r), float(f), int(s))
                 for name, p, r, f, s in zip(classes, precision, recall, f1, actual)}
    total = confusion.sum()
    present = actual > 0
    return Metrics(float(true_pos.sum() / total) if total else 0.0,
                   float(f1[present].mean()) if present.any() else 0.0, per_class, confusion)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...] | list[str]) -> Metrics:
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(classes)), classes)


def cell_examples(y_true: np.ndarray, probabilities: np.ndarray, true_class: int, predicted_class: int,
                  limit: int | None = None) -> np.ndarray:
    """The indices of the images in one cell of the confusion matrix (true `true_class`, predicted
    `predicted_class`, the prediction being the highest score), the most confident first: off the diagonal,
    the most confident mistakes."""
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    in_cell = np.flatnonzero((y_true == true_class) & (probabilities.argmax(axis=1) == predicted_class))
    order = in_cell[np.argsort(-probabilities[in_cell, predicted_class], kind="stable")]
    return order if limit is None else order[:limit]


def smooth(values: list[float] | np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Exponential moving average with bias correction, as loss curves are usually shown."""
    out, running = np.empty(len(values)), 0.0
    for index, value in enumerate(values):
        running = weight * running + (1 - weight) * value
        out[index] = running / (1 - weight ** (index + 1))
    return out
