"""AppTest for the fine-tuning page's choice of validation images for an uploaded zip: random, by file name, or
by the zip's own val/ folder, with the near-duplicate warning and the per-class chart."""
from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.images import encode_png
from tests.test_app import APP
from tests.test_data import make_zip
from tests.test_near_duplicates import faces, frame_of


def people_zip(people: int = 10, frames: int = 3, folder: str = "", val_people: int = 0) -> bytes:
    """Each person has a few frames of one scene per class (person03_1.png); with `val_people`, the last ones
    are in a val/ folder and the rest in train/."""
    pictures = faces(people * 2, seed=9)
    files = {}
    for person in range(people):
        part = ("val/" if person >= people - val_people else "train/") if val_people else ""
        for label, name in enumerate(("happy", "sad")):
            for frame in range(frames):
                image = frame_of(pictures[person * 2 + label], 0.2 * frame, 1 + 0.03 * frame)[0]
                files[f"{folder}{part}{name}/person{person:02d}_{frame}.png"] = encode_png(image)
    return make_zip(files)


@pytest.fixture()
def open_with_zip(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_DATA_DIR", str(tmp_path))  # no FER2013 there: only the zip matters

    def open_page(data: bytes) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.switch_page("app_pages/finetuning.py")
        at.session_state["ft_zip_kept"] = [("faces.zip", data)]  # as kept_uploads keeps an upload
        at.run()
        at.radio(key="ft_source_en").set_value("zip").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def chart_counts(at: AppTest) -> dict[str, list[int]]:
    chart = next(c for c in at.get("plotly_chart") if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Images per class")
    return {bar["name"]: np.frombuffer(base64.b64decode(bar["y"]["bdata"]), bar["y"]["dtype"]).tolist()
            for bar in json.loads(chart.proto.spec)["data"]}


def texts(elements) -> str:
    return " ".join(element.value for element in elements)


def test_frames_across_a_random_split_are_flagged_and_a_prefix_split_keeps_people_together(open_with_zip):
    at = open_with_zip(people_zip())
    split = at.radio(key="ft_split_rule_en")
    assert split.options == ["random, within each class", "whole groups by file name"] and split.index == 0
    assert "pairs of near-identical images lie across the split" in texts(at.warning)
    assert len(at.get("image")) >= 1, "example pairs are shown"
    assert "Validation holds 20.0% of the images (12 of 60)." in texts(at.caption)
    assert chart_counts(at) == {"train": [24, 24], "validation": [6, 6]}

    split.set_value("prefix").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="ft_split_separator").value == "_"
    assert "near-identical" not in texts(at.warning) and not at.get("image")
    captions = texts(at.caption)
    assert "No near-identical images lie across the split" in captions
    assert "10 groups by file name: 8 in training, 2 in validation." in captions
    assert chart_counts(at) == {"train": [24, 24], "validation": [6, 6]}

    at.text_input(key="ft_split_separator").set_value("#").run()
    assert not at.exception and 'No file name contains "#"' in texts(at.error)
    at.text_input(key="ft_split_separator").set_value("_").run()
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert at.radio(key="ft_split_rule_zh").value == "prefix", "the choice survives a language switch"
    assert "按文件名共 10 组" in texts(at.caption)


def test_a_zip_with_a_val_folder_starts_on_it(open_with_zip):
    at = open_with_zip(people_zip(folder="faces/", val_people=3))
    split = at.radio(key="ft_split_rule_folders_en")
    assert split.value == "folders" and len(split.options) == 3
    assert chart_counts(at) == {"train": [21, 21], "validation": [9, 9]}
    assert "No near-identical images lie across the split" in texts(at.caption)
    split.set_value("random").run()
    assert not at.exception and chart_counts(at) == {"train": [24, 24], "validation": [6, 6]}


def test_a_class_without_validation_images_is_named(open_with_zip):
    with zipfile.ZipFile(io.BytesIO(people_zip(val_people=2))) as source:
        kept = {name: source.read(name) for name in source.namelist() if not name.startswith("val/sad/")}
    at = open_with_zip(make_zip(kept))
    assert "Class sadness has no validation images" in texts(at.warning)
    assert chart_counts(at)["validation"] == [6, 0]
    assert np.sum(chart_counts(at)["train"]) == 48
