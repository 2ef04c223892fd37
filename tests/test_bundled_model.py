"""The bundled expression model: its test accuracies are what the model card says."""
from __future__ import annotations

import pytest

from core.checkpoint import BUNDLED_CARD, BUNDLED_CHECKPOINT, card_test_accuracy, load_checkpoint
from core.classes import EXPRESSION_KEYS
from core.data import fer2013_path, load_npz
from core.evaluate import evaluate_checkpoint

pytestmark = pytest.mark.slow  # scores the bundled model on whole test splits


def card_accuracy(labels: str) -> float:
    figures = card_test_accuracy(BUNDLED_CARD.read_text())
    assert labels in figures, f"the model card states the test accuracy on {labels} labels"
    return figures[labels]


def test_checkpoint_is_small_and_ours():
    assert BUNDLED_CHECKPOINT.stat().st_size <= 20 * 2**20
    checkpoint = load_checkpoint(BUNDLED_CHECKPOINT)
    assert checkpoint.meta["arch"] == "face_vgg"
    assert checkpoint.classes == EXPRESSION_KEYS and "contempt" in checkpoint.classes
    assert checkpoint.meta["config"]["labels"] == "ferplus"


def test_the_fer2013_test_accuracy_matches_the_model_card():
    """On FER2013's own labels. The FER+ figure is checked by tests/test_model_card.py, which scores the
    FER+ test split once for the card's whole confusion matrix (and the card's accuracy is its trace)."""
    path = fer2013_path()
    if path is None or not path.exists():
        pytest.skip("FER2013 is not available: set FACELAB_DATA_DIR to the folder holding it")
    metrics = evaluate_checkpoint(load_checkpoint(BUNDLED_CHECKPOINT), load_npz(path, "fer2013").test)
    assert metrics.accuracy == pytest.approx(card_accuracy("FER2013 PrivateTest"), abs=0.005)
