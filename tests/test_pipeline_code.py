"""`core.augment.spec_to_python`: the pipeline as Python code that calls core.augment, from the spec alone."""
from __future__ import annotations

import numpy as np
import pytest

from core import augment as aug
from core.images import decode_image, encode_png
from tests.conftest import gradient_image
from tests.test_app_augmentation import README_SPEC

EVERY_OPERATOR = aug.PipelineSpec(tuple(aug.default_op(name, 0.5) for name in aug.OPERATORS))


def run(code: str, name: str = "pipeline") -> dict:
    namespace = {"__name__": name}
    exec(compile(code, "augmentation.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("spec", [aug.default_pipeline(), aug.spec_from_dict(README_SPEC), EVERY_OPERATOR],
                         ids=["default", "readme", "every operator"])
def test_the_code_holds_the_same_spec_and_gives_the_same_draws(spec):
    namespace = run(aug.spec_to_python(spec, count=4, seed=3))
    assert namespace["SPEC"] == spec
    image = gradient_image(96, 128)
    for (ours, our_draws), (theirs, their_draws) in zip(namespace["augmented"](image), aug.augment_many(image, spec, 4, 3)):
        assert np.array_equal(ours, theirs) and our_draws == their_draws


def test_run_as_a_script_it_writes_the_draws_of_a_photo(tmp_path, monkeypatch, capsys):
    photo = gradient_image(700, 600)
    (tmp_path / "photo.png").write_bytes(encode_png(photo))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["augmentation.py", "photo.png"])
    run(aug.spec_to_python(aug.default_pipeline(), count=2, seed=5, max_side=512), "__main__")
    expected = aug.augment_many(decode_image(encode_png(photo), max_side=512), aug.default_pipeline(), 2, 5)
    for number, (image, _) in enumerate(expected, start=1):
        assert np.array_equal(decode_image((tmp_path / f"draw_{number}.png").read_bytes()), image)
    assert capsys.readouterr().out.startswith("draw_1.png [{'op': 'motion_blur'")


def test_an_empty_pipeline_is_code_too():
    namespace = run(aug.spec_to_python(aug.PipelineSpec(), count=1))
    image = gradient_image()
    assert namespace["SPEC"] == aug.PipelineSpec()
    assert np.array_equal(namespace["augmented"](image)[0][0], image)
