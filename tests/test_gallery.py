"""The example photos that ship with the app: each one is an RGB photo with its title and credit line in every
language, and the detector finds the faces it is there to show."""
from __future__ import annotations

import numpy as np
import pytest

from core.faces import detect_faces
from core.gallery import GALLERY, example_photo, thumbnail
from core.i18n import LANGUAGES, strings


def test_there_are_several_photos_one_with_several_faces_and_one_without():
    faces = [photo.faces for photo in GALLERY]
    assert len(GALLERY) >= 4 and max(faces) >= 3 and 0 in faces


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_photo_has_a_title_and_a_credit_line(language):
    catalog = strings(language)
    for photo in GALLERY:
        assert f"gallery_{photo.name}" in catalog and f"gallery_credit_{photo.name}" in catalog


@pytest.mark.parametrize("photo", GALLERY, ids=[photo.name for photo in GALLERY])
def test_the_detector_finds_the_faces_each_photo_is_there_to_show(photo):
    image = example_photo(photo.name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert len(detect_faces(image)) == photo.faces


def test_an_unknown_photo_is_a_clear_error():
    with pytest.raises(ValueError, match="no example photo 'dog'"):
        example_photo("dog")


def test_a_thumbnail_fits_its_card_whatever_the_photo_s_shape():
    wide = np.zeros((100, 400, 3), np.uint8)
    card = thumbnail(wide, 160, 120)
    assert card.shape == (120, 160, 3)
    assert (card[:40] == 255).all() and (card[-40:] == 255).all() and (card[40:80] == 0).all()
