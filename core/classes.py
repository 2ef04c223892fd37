"""The one class list: the 8 expressions and their Emotion-API keys (their names for people are the
`class_<key>` strings in locales/).

FER2013 labels 7 of them; FER+ adds contempt, so its models speak every key of the Emotion API.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.i18n import translate


@dataclass(frozen=True)
class Expression:
    key: str  # Microsoft Emotion API score name; FER+ uses the same names
    fer2013: str | None  # FER2013's folder / label name (FER2013 has no contempt)
    colour: str  # for boxes and bars


# Model outputs use this order (the Emotion API's, alphabetical).
EXPRESSIONS: tuple[Expression, ...] = (
    Expression("anger", "angry", "#d62728"),
    Expression("contempt", None, "#e377c2"),
    Expression("disgust", "disgust", "#8c564b"),
    Expression("fear", "fear", "#9467bd"),
    Expression("happiness", "happy", "#f2b701"),
    Expression("neutral", "neutral", "#7f7f7f"),
    Expression("sadness", "sad", "#1f77b4"),
    Expression("surprise", "surprise", "#2ca02c"),
)
EXPRESSION_KEYS: tuple[str, ...] = tuple(e.key for e in EXPRESSIONS)
FER2013_KEYS: tuple[str, ...] = tuple(e.key for e in EXPRESSIONS if e.fer2013)
_BY_NAME = {name: e for e in EXPRESSIONS for name in (e.key, e.fer2013) if name}


def expression_key(name: str) -> str | None:
    """Our key for an Emotion-API, FER+ or FER2013 class name (case-insensitive), else None."""
    found = _BY_NAME.get(name.strip().lower())
    return found.key if found else None


def colour(key: str) -> str:
    """The expression's colour; other classes get a neutral one."""
    found = _BY_NAME.get(key)
    return found.colour if found else "#17becf"


def display_name(key: str, lang: str = "en") -> str:
    """A class name for people; classes from a user's own data set keep their folder name."""
    found = _BY_NAME.get(key)
    return key if found is None else translate(f"class_{found.key}", lang)
