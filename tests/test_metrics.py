"""Tests for core.metrics against examples computed by hand.

Five classes a..e; true and predicted labels chosen so that class e is in the truth but never
predicted, and class d is predicted once but absent from the truth:

    y_true = a a a b b c c c e e
    y_pred = a a b b a c c d a a

Confusion matrix (rows true, columns predicted):

         a  b  c  d  e
    a  [ 2  1  0  0  0 ]
    b  [ 1  1  0  0  0 ]
    c  [ 0  0  2  1  0 ]
    d  [ 0  0  0  0  0 ]
    e  [ 2  0  0  0  0 ]

    a: TP 2, predicted 5, actual 3 -> P 2/5, R 2/3, F1 = 2·(2/5)(2/3)/(2/5+2/3) = 1/2
    b: TP 1, predicted 2, actual 2 -> P 1/2, R 1/2, F1 1/2
    c: TP 2, predicted 2, actual 3 -> P 1,   R 2/3, F1 4/5
    d: TP 0, predicted 1, actual 0 -> P 0,   R 0 (undefined), F1 0, support 0
    e: TP 0, predicted 0, actual 2 -> P 0 (undefined), R 0, F1 0
    accuracy 5/10; macro-F1 over the classes present in y_true (a, b, c, e) = 1.8/4 = 0.45
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.metrics import compute_metrics, confusion_matrix, metrics_from_confusion

CLASSES = ("a", "b", "c", "d", "e")
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 4, 4])
Y_PRED = np.array([0, 0, 1, 1, 0, 2, 2, 3, 0, 0])
CONFUSION = np.array([
    [2, 1, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [0, 0, 2, 1, 0],
    [0, 0, 0, 0, 0],
    [2, 0, 0, 0, 0],
])
EXPECTED = {  # precision, recall, f1, support
    "a": (2 / 5, 2 / 3, 0.5, 3),
    "b": (0.5, 0.5, 0.5, 2),
    "c": (1.0, 2 / 3, 0.8, 3),
    "d": (0.0, 0.0, 0.0, 0),
    "e": (0.0, 0.0, 0.0, 2),
}


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    matrix = confusion_matrix(Y_TRUE, Y_PRED, len(CLASSES))
    np.testing.assert_array_equal(matrix, CONFUSION)
    assert matrix.sum() == len(Y_TRUE)
    np.testing.assert_array_equal(matrix.sum(axis=1), [3, 2, 3, 0, 2])  # supports
    np.testing.assert_array_equal(matrix.sum(axis=0), [5, 2, 2, 1, 0])  # times predicted


def test_per_class_precision_recall_f1_support():
    metrics = compute_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert list(metrics.per_class) == list(CLASSES)
    for name, (precision, recall, f1, support) in EXPECTED.items():
        values = metrics.per_class[name]
        assert values.precision == pytest.approx(precision), name
        assert values.recall == pytest.approx(recall), name
        assert values.f1 == pytest.approx(f1), name
        assert values.support == support, name


def test_class_never_predicted_has_zero_precision_and_f1_not_nan():
    values = compute_metrics(Y_TRUE, Y_PRED, CLASSES).per_class["e"]
    assert (values.precision, values.recall, values.f1) == (0.0, 0.0, 0.0)
    assert not any(np.isnan([values.precision, values.recall, values.f1]))


def test_class_absent_from_truth_has_zero_support_and_is_left_out_of_macro_f1():
    metrics = compute_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert metrics.per_class["d"].support == 0
    assert metrics.per_class["d"].precision == 0.0  # predicted once, never right
    assert metrics.macro_f1 == pytest.approx((0.5 + 0.5 + 0.8 + 0.0) / 4)
    assert metrics.macro_f1 == pytest.approx(0.45)


def test_accuracy():
    assert compute_metrics(Y_TRUE, Y_PRED, CLASSES).accuracy == pytest.approx(0.5)


def test_perfect_predictions():
    y = np.array([0, 1, 2, 2, 1, 0])
    metrics = compute_metrics(y, y, ("x", "y", "z"))
    assert metrics.accuracy == 1.0 and metrics.macro_f1 == 1.0
    assert all(m.precision == m.recall == m.f1 == 1.0 for m in metrics.per_class.values())
    np.testing.assert_array_equal(metrics.confusion, np.diag([2, 2, 2]))


def test_f1_is_harmonic_mean_of_precision_and_recall():
    metrics = compute_metrics(Y_TRUE, Y_PRED, CLASSES)
    for values in metrics.per_class.values():
        if values.precision + values.recall:
            assert values.f1 == pytest.approx(2 * values.precision * values.recall / (values.precision + values.recall))


def test_metrics_from_confusion_matches_compute_metrics():
    direct = metrics_from_confusion(CONFUSION, CLASSES)
    from_labels = compute_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert direct.to_dict() == from_labels.to_dict()


def test_empty_input_gives_zeros_not_errors():
    metrics = compute_metrics(np.array([], dtype=np.int64), np.array([], dtype=np.int64), ("x", "y"))
    assert metrics.accuracy == 0.0 and metrics.macro_f1 == 0.0
    assert metrics.confusion.shape == (2, 2) and metrics.confusion.sum() == 0


def test_to_dict_is_json_with_the_documented_keys():
    data = compute_metrics(Y_TRUE, Y_PRED, CLASSES).to_dict()
    decoded = json.loads(json.dumps(data))
    assert set(decoded) == {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert decoded["confusion_matrix"] == CONFUSION.tolist()
    assert decoded["per_class"]["c"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
                                         "support": 3}


def test_cell_examples_are_one_cells_images_most_confident_first():
    from core.metrics import cell_examples

    y_true = np.array([0, 0, 1, 1, 0, 0])
    scores = np.array([[.2, .8], [.9, .1], [.3, .7], [.6, .4], [.1, .9], [.4, .6]])
    assert cell_examples(y_true, scores, 0, 1).tolist() == [4, 0, 5]  # the surest mistakes first
    assert cell_examples(y_true, scores, 0, 1, limit=2).tolist() == [4, 0]
    assert cell_examples(y_true, scores, 1, 0).tolist() == [3]
    assert cell_examples(y_true, scores, 1, 1).tolist() == [2]
    assert cell_examples(np.array([], int), np.empty((0, 2)), 0, 1).tolist() == []


def test_a_data_set_image_is_shown_upscaled_in_colour():
    from core.images import upscaled

    grey = np.arange(48 * 48, dtype=np.uint8).reshape(1, 48, 48)
    picture = upscaled(grey)
    assert picture.shape == (96, 96, 3) and picture.dtype == np.uint8
    assert (picture[0, 0] == grey[0, 0, 0]).all() and (picture[1, 1] == grey[0, 0, 0]).all()  # sharp pixels
    assert upscaled(np.zeros((3, 48, 48), np.uint8)).shape == (96, 96, 3)
