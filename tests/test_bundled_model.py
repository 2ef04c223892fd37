"""The bundled expression model: its test accuracies are what the model card says."""
from __future__ import annotations

import pytest

from core.checkpoint import BUNDLED_CARD, BUNDLED_CHECKPOINT, card_test_accuracy, load_checkpoint
from core.classes import EXPRESSION_KEYS
from core.data import FERPLUS_FILE, fer2013_path, load_npz
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


@pytest.mark.parametrize("labels, card_name", [("ferplus", "FER+ majority"), ("fer2013", "FER2013 PrivateTest")])
def test_test_accuracy_matches_the_model_card(labels, card_name):
    path = fer2013_path()
    if path is None or not path.exists() or not path.with_name(FERPLUS_FILE).exists():
        pytest.skip("FER2013 and FER+ are not available: set FACELAB_DATA_DIR to the folder holding both")
    metrics = evaluate_checkpoint(load_checkpoint(BUNDLED_CHECKPOINT), load_npz(path, labels).test)
    assert metrics.accuracy == pytest.approx(card_accuracy(card_name), abs=0.005)
