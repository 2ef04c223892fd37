"""EAC-Net attention maps: the rules table, the action-unit (AU) centres it gives, and the maps.

Li, Abtahi, Zhu, Yin, "EAC-Net: A Region-based Deep Enhancing and Cropping Approach for Facial Action
Unit Detection" (arXiv 1702.02925). Everything below derives from RULES.

Geometry: the face is mapped into a 100x100 frame, the paper's face crop (`core.faces.face_frame` with
FACE_MARGIN), as the paper's code maps the landmarks of its face crops. The frame is turned so the eyes
are level, so "above" and "below" in the rules mean toward the top or the chin of the face even when the
head is tilted. Both the scale (the distance between the inner eye corners, landmarks 39 and 42) and the
Manhattan distance `d` that the weights fall off with are measured in that frame. The centres are mapped
back to image pixels and the map is computed there, at any resolution, so a centre near or past the image
edge keeps the part of its map that falls inside.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.faces import FACE_MARGIN, Face, face_frame, transform_face, transform_points
from core.framing import frame_face
from core.i18n import translate
from core.presets import to_network_input
from models.eac import STAND_IN_ARCH, EACFeatures

FRAME_SIZE = 100
INPUT_SIZE = 224  # E-Net input: the face framed by the face template, at the paper's size


@dataclass(frozen=True)
class Rule:
    row: int
    rule: str  # catalog key of the rule's description
    landmarks: tuple[int, int]  # one centre per landmark, dlib's 0-based order
    aus: tuple[str, ...]
    offset: float  # in scales, toward the chin (negative: toward the top of the face)


RULES: tuple[Rule, ...] = (
    Rule(0, "rule_inner_brow", (21, 22), ("AU1",), -1 / 2),
    Rule(1, "rule_outer_brow", (18, 25), ("AU2",), -1 / 3),
    Rule(2, "rule_brow_centre", (19, 24), ("AU4",), 1 / 3),
    Rule(3, "rule_eye_bottom", (41, 46), ("AU6",), 1.0),
    Rule(4, "rule_eye_centre", (38, 43), ("AU7",), 0.0),
    Rule(5, "rule_upper_lip", (49, 53), ("AU10",), 0.0),
    Rule(6, "rule_lip_corner", (48, 54), ("AU12", "AU14", "AU15"), 0.0),
    Rule(7, "rule_lip_centre", (51, 57), ("AU23", "AU24"), 0.0),
    Rule(8, "rule_inner_upper_lip", (61, 63), ("AU23", "AU24"), 0.0),
    Rule(9, "rule_below_lip", (56, 58), ("AU17",), 1 / 2),
)
ACTION_UNITS: tuple[str, ...] = tuple(sorted({au for rule in RULES for au in rule.aus}, key=lambda au: int(au[2:])))
SCALE_LANDMARKS = (39, 42)  # inner eye corners


def au_name_key(au: str) -> str:
    """Catalog key of an AU's name, e.g. "au12_name" for "Lip Corner Puller"."""
    return f"{au.lower()}_name"


def au_label(au: str, lang: str = "en") -> str:
    return f"{au} {translate(au_name_key(au), lang)}"


@dataclass(frozen=True)
class Falloff:
    """w = max(0, 1 - slope * d), and 0 outside a square window of half-side `window` (None: no window)."""

    slope: float
    window: float | None = None

    def __post_init__(self) -> None:
        if self.slope <= 0 or (self.window is not None and self.window <= 0):
            raise ValueError(f"slope and window must be positive, got {self.slope}, {self.window}")

    @property
    def reach(self) -> float:
        """Half-side, in frame units, of the square outside which the weight is 0."""
        return min(1 / self.slope, self.window or math.inf)


# The paper's formula, and its training code (get_attention_map_dlib.get_map). That code loops over
# range(c - 7, c + 7), one pixel short on the far side, and `break`s at the frame edge; neither is copied.
PRESETS: dict[str, Falloff] = {"paper": Falloff(0.095), "training_code": Falloff(0.07, 7.0)}


@dataclass(frozen=True)
class AUCentre:
    rule: Rule
    landmark: int
    point: tuple[float, float]  # x, y in image pixels
    frame_point: tuple[float, float]  # x, y in the 100x100 face frame

    @property
    def row(self) -> int:
        return self.rule.row

    @property
    def aus(self) -> tuple[str, ...]:
        return self.rule.aus

    def name(self, lang: str = "en") -> str:
        """The AUs this centre stands for, with their names, e.g. "AU1 Inner Brow Raiser"."""
        return ", ".join(au_label(au, lang) for au in self.rule.aus)


def _frame(landmarks: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    return face_frame(landmarks, box, FRAME_SIZE, FACE_MARGIN)


def au_centres(landmarks: np.ndarray, box: tuple[float, ...], aus: tuple[str, ...] | list[str] | None = None
               ) -> list[AUCentre]:
    """The 20 centres (two per rule, in table order), or those of the rules that detect any of `aus`."""
    unknown = set(aus or ()) - set(ACTION_UNITS)
    if unknown:
        raise ValueError(f"EAC-Net has no centre for {sorted(unknown)}; it knows {', '.join(ACTION_UNITS)}")
    matrix = _frame(landmarks, box)
    framed = transform_points(landmarks, matrix)
    scale = float(np.linalg.norm(framed[SCALE_LANDMARKS[0]] - framed[SCALE_LANDMARKS[1]]))
    inverse = cv2.invertAffineTransform(matrix)
    centres = []
    for rule in RULES:
        if aus is not None and not set(rule.aus) & set(aus):
            continue
        for landmark in rule.landmarks:
            frame_point = framed[landmark] + (0.0, rule.offset * scale)
            point = transform_points([frame_point], inverse)[0]
            centres.append(AUCentre(rule, landmark, (float(point[0]), float(point[1])),
                                    (float(frame_point[0]), float(frame_point[1]))))
    return centres


def attention_map(landmarks: np.ndarray, box: tuple[float, ...], shape: tuple[int, ...],
                  aus: tuple[str, ...] | list[str] | None = None, preset: Falloff = PRESETS["paper"]) -> np.ndarray:
    """The attention map over an image of `shape` (landmarks and box in its pixels): float32 in [0, 1].

    Each centre's weight falls off with the Manhattan distance measured in the 100x100 face frame; where
    centres overlap the maximum wins. Only the square around each centre where it can be non-zero is computed.
    """
    height, width = shape[:2]
    result = np.zeros((height, width), np.float32)
    linear = _frame(landmarks, box)[:, :2]
    units_per_pixel = math.sqrt(abs(np.linalg.det(linear)))
    turn = (abs(linear[0, 0]) + abs(linear[0, 1])) / units_per_pixel  # |cos| + |sin| of the frame's angle
    half = preset.reach / units_per_pixel * turn  # image-axis half-extent of the frame square of half-side reach
    for centre in au_centres(landmarks, box, aus):
        cx, cy = centre.point
        x0, x1 = max(0, math.floor(cx - half)), min(width, math.ceil(cx + half) + 1)
        y0, y1 = max(0, math.floor(cy - half)), min(height, math.ceil(cy + half) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        dx_image = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
        dy_image = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
        dx = np.abs(linear[0, 0] * dx_image + linear[0, 1] * dy_image)
        dy = np.abs(linear[1, 0] * dx_image + linear[1, 1] * dy_image)
        weight = 1 - preset.slope * (dx + dy)
        if preset.window is not None:
            weight[(dx > preset.window) | (dy > preset.window)] = 0
        patch = result[y0:y1, x0:x1]
        np.maximum(patch, weight, out=patch, casting="unsafe")
    return result


def overlay(rgb: np.ndarray, amap: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """The photo with the map drawn as a jet heatmap whose opacity grows with the weight (0 leaves it as is)."""
    colours = cv2.applyColorMap(np.round(amap * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    alpha = (opacity * amap)[..., None]
    return np.round(rgb * (1 - alpha) + colours * alpha).astype(np.uint8)


def map_npy(amap: np.ndarray) -> bytes:
    """The map as .npy bytes, for download."""
    buffer = io.BytesIO()
    np.save(buffer, amap, allow_pickle=False)
    return buffer.getvalue()


def centres_json(face: Face, shape: tuple[int, ...], aus: tuple[str, ...] | list[str] | None,
                 preset: Falloff) -> str:
    """The face, its centres and the fall-off as JSON (image pixels; frame = the 100x100 face frame)."""
    record = {
        "image": {"width": shape[1], "height": shape[0]},
        "face": {"box": [round(float(v), 2) for v in face.box], "score": round(face.score, 4),
                 "landmarks": face.landmarks.round(2).tolist()},
        "falloff": {"slope": preset.slope, "window": preset.window},
        "aus": list(aus if aus is not None else ACTION_UNITS),
        "centres": [{"row": c.row, "rule": translate(c.rule.rule), "landmark": c.landmark, "aus": list(c.aus),
                     "x": round(c.point[0], 2), "y": round(c.point[1], 2),
                     "frame_x": round(c.frame_point[0], 2), "frame_y": round(c.frame_point[1], 2)}
                    for c in au_centres(face.landmarks, face.box, aus)],
    }
    return json.dumps(record, ensure_ascii=False)


@dataclass(frozen=True)
class EnhancedView:
    crop: np.ndarray  # the face framed by the face template, INPUT_SIZE x INPUT_SIZE RGB
    crop_map: np.ndarray  # its attention map, float32
    layers: tuple[str, str]  # the group's first and last conv, e.g. ("conv3_1", "conv3_3")
    before: np.ndarray  # (channels, h, w): the last conv's features
    attention: np.ndarray  # (h, w): the map max-pooled to the features' size
    after: np.ndarray  # (channels, h, w): before + first ⊙ attention

    def strongest_channel(self) -> int:
        """The channel that the attention raises most, a good one to look at first."""
        return int(np.argmax((self.after - self.before).mean(axis=(1, 2))))


def enhance_face(rgb: np.ndarray, face: Face, network: EACFeatures, group: int,
                 aus: tuple[str, ...] | list[str] | None = None, preset: Falloff = PRESETS["paper"],
                 arch: str = STAND_IN_ARCH) -> EnhancedView:
    """Frame the face with the face template, make its attention map there, and run E-Net up to `group` on
    the network `arch`'s input (the crop is resized and converted to the network's size and channels)."""
    crop, matrix = frame_face(rgb, face.landmarks, INPUT_SIZE)
    in_crop = transform_face(face, matrix)
    crop_map = attention_map(in_crop.landmarks, in_crop.box, crop.shape, aus, preset)
    image = to_network_input(torch.from_numpy(crop).permute(2, 0, 1)[None].float(), arch)
    with torch.inference_mode():
        maps = network(image, torch.from_numpy(crop_map)[None, None], until=group)[group]
    return EnhancedView(crop, crop_map, network.conv_names(group), maps.last[0].numpy(), maps.attention[0, 0].numpy(),
                        maps.enhanced[0].numpy())
