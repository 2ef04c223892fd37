"""Tests for scoring a network on a data set (core.evaluate): the engine's validation and the CLI's metrics."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import torch

from core.classes import EXPRESSION_KEYS, FER2013_KEYS
from core.evaluate import evaluate_model, predict, shared_class_predictions, validation_sample
from models.registry import build_model
from tests.test_train import pattern_dataset

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


def test_evaluation_does_not_need_the_training_engine():
    """Imports flow one way: core.train uses core.evaluate, never the reverse."""
    code = "import sys, core.evaluate; print('core.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_predict_gives_probabilities_and_the_mean_loss():
    dataset = pattern_dataset(2, seed=0)
    torch.manual_seed(0)
    model = build_model("face_vgg", 7, width=4, blocks=2, depth=1, hidden=16)
    probabilities, loss = predict(model, "face_vgg", dataset, CPU, batch_size=5)
    assert probabilities.shape == (14, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    expected = -np.log(probabilities[np.arange(14), dataset.y]).mean()
    assert abs(loss - expected) < 1e-4
    assert predict(model, "face_vgg", dataset, CPU, with_loss=False)[1] == 0.0


def test_scoring_on_the_classes_two_label_sets_share():
    """An 8-class model on 7 labels ignores contempt; a 7-class model on 8 labels misses contempt faces."""
    eight = np.array([[0.15, 0.6, 0.1, 0.0, 0.05, 0.1, 0.0, 0.0],  # contempt most likely, then anger
                      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.7]])
    assert shared_class_predictions(eight, EXPRESSION_KEYS, FER2013_KEYS).tolist() == [0, 6]
    seven = np.array([[0.0, 0.0, 0.0, 0.9, 0.1, 0.0, 0.0]])
    assert shared_class_predictions(seven, FER2013_KEYS, EXPRESSION_KEYS).tolist() == [EXPRESSION_KEYS.index("happiness")]


def test_validation_checks_stop_between_batches():
    dataset = pattern_dataset(4, seed=0)  # 28 images
    model, stop = build_model("face_vgg", 7, width=8), threading.Event()
    model.register_forward_hook(lambda *_: stop.set())  # Stop pressed while the first batch runs
    metrics, _, scored = evaluate_model(model, "face_vgg", dataset, CPU, batch_size=4, stop=stop)
    assert scored == 4 and sum(m.support for m in metrics.per_class.values()) == 4


def test_a_validation_sample_spans_every_class():
    dataset = pattern_dataset(4, seed=0)  # sorted by class
    sample = validation_sample(dataset, 7)
    assert len(sample) == 7 and set(sample.y.tolist()) == set(range(7))
    assert validation_sample(dataset, 100) is dataset
