"""The EAC-Net rules table, AU centres and attention maps, on hand-made landmark sets."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from core import attention as att
from core.faces import FACE_MARGIN, Face
from core.i18n import strings, translate

SCALE = 10.0  # inner eye corners 39 and 42 are this many pixels apart
# A box whose 100x100 frame (with its margin) is exactly 100 pixels wide: one frame unit is one pixel.
SIDE = 100 / (1 + 2 * FACE_MARGIN)
BOX = (50 - (SIDE - 1) / 2, 50 - (SIDE - 1) / 2, SIDE, SIDE)


def upright_landmarks() -> np.ndarray:
    """68 points on integer pixels, eyes level at y = 40, inner eye corners (39, 42) 10 pixels apart."""
    points = np.array([(10.0 + (i % 17) * 5, 70.0 + (i // 17) * 3) for i in range(68)])
    points[36:42] = [(33, 40), (36, 38), (40, 38), (45, 40), (40, 42), (36, 42)]  # 39 is (45, 40)
    points[42:48] = [(55, 40), (60, 38), (64, 38), (67, 40), (64, 42), (60, 42)]  # 42 is (55, 40)
    points[17:27] = [(28 + 5 * i, 30) for i in range(10)]  # brows
    points[48:60] = [(38, 70), (42, 68), (46, 67), (50, 67), (54, 67), (58, 68),
                     (62, 70), (58, 74), (54, 76), (50, 76), (46, 76), (42, 74)]
    points[60:68] = [(40, 70), (45, 70), (50, 70), (55, 70), (60, 70), (55, 72), (50, 72), (45, 72)]
    return points


def rotate(points: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (np.asarray(points) - centre) @ rotation.T + centre


def box_centre(box) -> tuple[float, float]:
    return box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2


# ---------------------------------------------------------------- the table


def test_table_has_ten_rows_of_two_centres_in_order():
    assert [rule.row for rule in att.RULES] == list(range(10))
    assert all(len(rule.landmarks) == 2 for rule in att.RULES)
    assert len(att.au_centres(upright_landmarks(), BOX)) == 20
    assert att.ACTION_UNITS == ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU14", "AU15", "AU17",
                                "AU23", "AU24")
    assert att.RULES[6].aus == ("AU12", "AU14", "AU15") and att.RULES[6].landmarks == (48, 54)


def test_every_au_and_rule_has_english_and_chinese_text():
    for key in [att.au_name_key(au) for au in att.ACTION_UNITS] + [rule.rule for rule in att.RULES]:
        english, chinese = strings("en")[key], strings("zh")[key]
        assert english and chinese and english != chinese
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), key
    assert att.au_label("AU12") == "AU12 Lip Corner Puller"
    assert att.au_label("AU12", "zh") == f"AU12 {translate('au12_name', 'zh')}"


def test_presets_are_the_paper_and_its_training_code():
    assert att.PRESETS["paper"] == att.Falloff(0.095, None)
    assert att.PRESETS["training_code"] == att.Falloff(0.07, 7.0)
    with pytest.raises(ValueError):
        att.Falloff(0.0)
    with pytest.raises(ValueError):
        att.Falloff(0.1, -1.0)


# ---------------------------------------------------------------- centres


def test_centres_sit_where_the_rules_say():
    landmarks = upright_landmarks()
    centres = att.au_centres(landmarks, BOX)
    expected = {  # (row, landmark): image position, the scale being 10 pixels
        (0, 21): (landmarks[21][0], 30 - 5), (0, 22): (landmarks[22][0], 30 - 5),
        (1, 18): (landmarks[18][0], 30 - 10 / 3), (1, 25): (landmarks[25][0], 30 - 10 / 3),
        (2, 19): (landmarks[19][0], 30 + 10 / 3), (2, 24): (landmarks[24][0], 30 + 10 / 3),
        (3, 41): (36, 42 + 10), (3, 46): (64, 42 + 10),
        (4, 38): (40, 38), (4, 43): (60, 38),
        (5, 49): (42, 68), (5, 53): (58, 68),
        (6, 48): (38, 70), (6, 54): (62, 70),
        (7, 51): (50, 67), (7, 57): (50, 76),
        (8, 61): (45, 70), (8, 63): (55, 70),
        (9, 56): (54, 76 + 5), (9, 58): (46, 76 + 5),
    }
    assert [(c.row, c.landmark) for c in centres] == list(expected)
    for centre in centres:
        assert centre.point == pytest.approx(expected[centre.row, centre.landmark], abs=1e-9)
        assert centre.aus == att.RULES[centre.row].aus
    # One frame unit is one pixel here and the box centre (49.5, 49.5 in the frame) is at image (50, 50).
    brow = centres[0]
    assert brow.frame_point == pytest.approx((brow.point[0] - 0.5, brow.point[1] - 0.5), abs=1e-9)
    assert centres[12].name() == "AU12 Lip Corner Puller, AU14 Dimpler, AU15 Lip Corner Depressor"


def test_centres_follow_a_tilted_face_upward_along_the_face():
    upright = upright_landmarks()
    centre = box_centre(BOX)
    tilted = rotate(upright, 25, centre)
    expected = rotate([c.point for c in att.au_centres(upright, BOX)], 25, centre)
    got = np.array([c.point for c in att.au_centres(tilted, BOX)])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # The frame itself is upright: the tilted face's centres have the same frame coordinates.
    np.testing.assert_allclose([c.frame_point for c in att.au_centres(tilted, BOX)],
                               [c.frame_point for c in att.au_centres(upright, BOX)], atol=1e-9)


def test_a_subset_of_aus_keeps_only_their_rows():
    centres = att.au_centres(upright_landmarks(), BOX, ["AU23"])
    assert [(c.row, c.landmark) for c in centres] == [(7, 51), (7, 57), (8, 61), (8, 63)]
    assert att.au_centres(upright_landmarks(), BOX, []) == []
    with pytest.raises(ValueError, match="AU 12"):
        att.au_centres(upright_landmarks(), BOX, ["AU 12"])


# ---------------------------------------------------------------- maps


def test_map_is_one_at_a_centre_and_falls_off_with_manhattan_distance():
    amap = att.attention_map(upright_landmarks(), BOX, (100, 100), ["AU12"])
    assert amap.dtype == np.float32 and amap.shape == (100, 100)
    assert amap[70, 38] == 1.0 and amap[70, 62] == 1.0
    assert amap[70 + 2, 38 - 3] == pytest.approx(1 - 0.095 * 5)
    assert amap[70 - 6, 38 + 4] == pytest.approx(1 - 0.095 * 10)
    assert amap[70, 38 - 11] == 0  # 1 - 0.095 * 11 < 0
    assert amap.min() == 0 and amap.max() == 1


def test_distance_is_measured_in_the_face_frame():
    """A box twice as large makes a frame unit two pixels, so the map is twice as wide in pixels."""
    landmarks = upright_landmarks() * 2
    box = (100 - (2 * SIDE - 1) / 2, 100 - (2 * SIDE - 1) / 2, 2 * SIDE, 2 * SIDE)
    amap = att.attention_map(landmarks, box, (200, 200), ["AU12"])
    assert amap[140, 76] == 1.0
    assert amap[140, 76 + 8] == pytest.approx(1 - 0.095 * 4)


def test_training_code_preset_cuts_off_outside_its_window():
    amap = att.attention_map(upright_landmarks(), BOX, (100, 100), ["AU12"], att.PRESETS["training_code"])
    assert amap[70, 38 - 7] == pytest.approx(1 - 0.07 * 7)
    assert amap[70 - 7, 38 - 7] == pytest.approx(1 - 0.07 * 14)
    assert amap[70, 38 - 8] == 0  # 1 - 0.07 * 8 > 0, but outside the window
    custom = att.attention_map(upright_landmarks(), BOX, (100, 100), ["AU12"], att.Falloff(0.05, 3.0))
    assert custom[70, 38 - 3] == pytest.approx(1 - 0.05 * 3) and custom[70, 38 - 4] == 0


def test_overlapping_maps_combine_by_maximum():
    landmarks = upright_landmarks()
    whole = att.attention_map(landmarks, BOX, (100, 100))
    rows = [att.attention_map(landmarks, BOX, (100, 100), [rule.aus[0]]) for rule in att.RULES]
    np.testing.assert_array_equal(whole, np.maximum.reduce(rows))
    # Between the lip corner 48 (38, 70) and the upper-lip point 49 (42, 68), both rows reach (40, 69).
    both = att.attention_map(landmarks, BOX, (100, 100), ["AU10", "AU12"])
    assert both[69, 40] == pytest.approx(max(1 - 0.095 * 3, 1 - 0.095 * 3))
    assert both[69, 41] == pytest.approx(max(1 - 0.095 * 4, 1 - 0.095 * 2))
    np.testing.assert_array_equal(att.attention_map(landmarks, BOX, (100, 100), None), whole)
    assert not att.attention_map(landmarks, BOX, (100, 100), []).any()


def test_centres_at_and_past_the_image_edge_keep_their_partial_map():
    """The paper's code `break`s out of its loop at the frame edge and loses these; ours keeps them."""
    landmarks = upright_landmarks() - (38, 0)  # lip corner 48 now on column 0
    amap = att.attention_map(landmarks, (BOX[0] - 38, *BOX[1:]), (100, 100), ["AU12"])
    assert amap[70, 0] == 1.0 and amap[70 - 5, 0] == pytest.approx(1 - 0.095 * 5)
    assert amap[70, 3] == pytest.approx(1 - 0.095 * 3)
    past = upright_landmarks() - (41, 0)  # lip corner 48 three pixels left of the image
    amap = att.attention_map(past, (BOX[0] - 41, *BOX[1:]), (100, 100), ["AU12"])
    assert amap[70, 0] == pytest.approx(1 - 0.095 * 3)
    assert amap[70 + 2, 1] == pytest.approx(1 - 0.095 * 6)
    top = upright_landmarks() - (0, 30)  # brows on row 0: AU1's centres are 5 rows above the photo
    amap = att.attention_map(top, (BOX[0], BOX[1] - 30, *BOX[2:]), (100, 100), ["AU1"])
    assert amap[0, 53] == pytest.approx(1 - 0.095 * 5)


def test_map_at_any_resolution_and_for_a_colour_shape():
    small = att.attention_map(upright_landmarks(), BOX, (100, 100))
    big = att.attention_map(upright_landmarks() * 4, tuple(v * 4 for v in BOX), (400, 400, 3))
    assert big.shape == (400, 400)
    # Pixel (4i, 4j) there is pixel (i, j) here, the same distance in the face frame.
    np.testing.assert_allclose(big[::4, ::4], small, atol=1e-6)


def test_tilted_face_map_is_the_upright_map_turned():
    upright = upright_landmarks()
    centre = box_centre(BOX)
    tilted = rotate(upright, 30, centre)
    amap = att.attention_map(tilted, BOX, (100, 100), ["AU12"])
    corner = rotate([upright[48]], 30, centre)[0]
    x, y = round(corner[0]), round(corner[1])
    d = np.abs(rotate([(x, y)], -30, centre)[0] - upright[48]).sum()  # Manhattan distance in the frame
    assert amap[y, x] == pytest.approx(1 - 0.095 * d, abs=1e-6)


# ---------------------------------------------------------------- outputs


def test_overlay_leaves_zero_weight_pixels_alone():
    photo = np.full((100, 100, 3), 120, np.uint8)
    amap = att.attention_map(upright_landmarks(), BOX, photo.shape, ["AU12"])
    shown = att.overlay(photo, amap, 0.6)
    assert shown.dtype == np.uint8 and shown.shape == photo.shape
    assert (shown[amap == 0] == 120).all()
    assert (shown[70, 38] != 120).any()


def test_downloads_round_trip():
    landmarks = upright_landmarks()
    amap = att.attention_map(landmarks, BOX, (100, 100))
    np.testing.assert_array_equal(np.load(io.BytesIO(att.map_npy(amap))), amap)
    face = Face(BOX, landmarks, 1.5)
    record = json.loads(att.centres_json(face, (100, 120, 3), ["AU12"], att.PRESETS["paper"]))
    assert record["image"] == {"width": 120, "height": 100}
    assert record["falloff"] == {"slope": 0.095, "window": None}
    assert [(c["row"], c["landmark"], c["x"], c["y"]) for c in record["centres"]] == [(6, 48, 38, 70), (6, 54, 62, 70)]
    assert record["centres"][0]["rule"] == "lip corner" and len(record["face"]["landmarks"]) == 68
