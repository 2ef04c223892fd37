"""`core.model_card`: the bundled model's FER+ test confusion matrix, read from its card, and scored again on a
test split."""
from __future__ import annotations

import numpy as np
import pytest

from core.checkpoint import BUNDLED_CARD, BUNDLED_CHECKPOINT, Checkpoint, card_test_accuracy, load_checkpoint, make_meta
from core.classes import EXPRESSION_KEYS, FER2013_KEYS
from core.data import FER2013_FILE, FERPLUS_FILE, fer2013_path
from core.errors import DatasetError
from core.model_card import bundled_card_confusion, card_confusion, main, score_test_split
from models.registry import build_model
from tests.test_data import write_fer_npz, write_ferplus_npz

TABLE = """Some text.

| true \\ predicted | a | b |
|---|---|---|
| **a** | 3 | 1 |
| **b** | 0 | 2 |

More text.
"""


def test_the_card_s_matrix_is_the_one_of_its_stated_accuracy():
    confusion = bundled_card_confusion(EXPRESSION_KEYS)
    assert confusion.shape == (8, 8) and confusion.sum() == 3152  # FER+ test faces
    accuracy = card_test_accuracy(BUNDLED_CARD.read_text(encoding="utf-8"))["FER+ majority"]
    assert confusion.trace() / confusion.sum() == pytest.approx(accuracy, abs=5e-5)


def test_a_table_is_read_only_when_its_columns_are_the_classes():
    assert card_confusion(TABLE, ["a", "b"]).tolist() == [[3, 1], [0, 2]]
    assert card_confusion(TABLE, ["b", "a"]) is None, "columns in another order are another matrix"
    assert card_confusion(TABLE, ["a", "b", "c"]) is None
    assert card_confusion("no table here", ["a", "b"]) is None
    # the card's second matrix, on FER2013's 7 labels, is not the FER+ one
    assert bundled_card_confusion(FER2013_KEYS).sum() == 3589


@pytest.fixture
def tiny_data(tmp_path):
    write_fer_npz(tmp_path / FER2013_FILE)
    write_ferplus_npz(tmp_path / FERPLUS_FILE, tmp_path / FER2013_FILE)
    return tmp_path / FER2013_FILE


def test_scoring_a_test_split_gives_a_probability_per_class_and_face(tiny_data):
    scores = score_test_split(load_checkpoint(BUNDLED_CHECKPOINT), tiny_data)
    assert scores.test.classes == EXPRESSION_KEYS and len(scores.test) > 0
    assert scores.probabilities.shape == (len(scores.test), 8)
    assert np.allclose(scores.probabilities.sum(axis=1), 1, atol=1e-5)
    assert scores.confusion.sum() == len(scores.test) and scores.seconds > 0


def test_a_model_without_the_data_s_classes_or_data_without_votes_is_refused(tiny_data):
    seven = build_model("face_vgg", len(FER2013_KEYS), width=8)
    checkpoint = Checkpoint(seven.state_dict(), make_meta("face_vgg", {"width": 8}, FER2013_KEYS))
    with pytest.raises(DatasetError) as refused:
        score_test_split(checkpoint, tiny_data)
    assert refused.value.key == "err_eval_classes"
    (tiny_data.parent / FERPLUS_FILE).unlink()
    with pytest.raises(DatasetError) as missing:
        score_test_split(load_checkpoint(BUNDLED_CHECKPOINT), tiny_data)
    assert missing.value.key == "err_data_ferplus_missing"


def test_the_command_reads_the_card_and_checks_it_against_a_scoring(tiny_data, capsys):
    assert main([]) == 0
    stated = bundled_card_confusion(EXPRESSION_KEYS)
    assert capsys.readouterr().out == \
        f"the card's matrix: {stated.trace()} of 3152 right ({stated.trace() / 3152:.2%})\n"
    assert main(["--data", str(tiny_data)]) == 1, "a tiny made-up data set gives another matrix"
    assert main(["--data", str(tiny_data.parent / "missing.npz")]) == 2


@pytest.mark.slow
def test_the_bundled_model_gives_the_card_s_matrix_on_the_fer_plus_test_split():
    path = fer2013_path()
    if path is None or not path.exists() or not path.with_name(FERPLUS_FILE).exists():
        pytest.skip("FER2013 and FER+ are not available: set FACELAB_DATA_DIR to the folder holding both")
    scores = score_test_split(load_checkpoint(BUNDLED_CHECKPOINT), path)
    assert np.array_equal(scores.confusion, bundled_card_confusion(EXPRESSION_KEYS))
