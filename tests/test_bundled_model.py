"""The bundled expression model: its test accuracy is what the model card says."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.checkpoint import BUNDLED_CHECKPOINT, load_checkpoint
from core.data import fer2013_path, load_npz
from core.evaluate import evaluate_checkpoint

CARD = Path(__file__).resolve().parents[1] / "models" / "README.md"


def card_test_accuracy() -> float:
    """The figure on the card's line 'Test accuracy (PrivateTest): NN.NN%'."""
    match = re.search(r"Test accuracy \(PrivateTest\): \*\*(\d+\.\d+)%\*\*", CARD.read_text())
    assert match, "the model card states the test accuracy"
    return float(match.group(1)) / 100


def test_checkpoint_is_small_and_ours():
    assert BUNDLED_CHECKPOINT.stat().st_size <= 20 * 2**20
    checkpoint = load_checkpoint(BUNDLED_CHECKPOINT)
    assert checkpoint.meta["arch"] == "face_vgg"
    assert checkpoint.classes == ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")


def test_test_accuracy_matches_the_model_card():
    path = fer2013_path()
    if path is None or not path.exists():
        pytest.skip("FER2013 is not available: set FACELAB_DATA_DIR to the folder holding fer2013.npz")
    metrics = evaluate_checkpoint(load_checkpoint(BUNDLED_CHECKPOINT), load_npz(path).test)
    assert metrics.accuracy == pytest.approx(card_test_accuracy(), abs=0.005)
