"""Errors a user can cause. Each carries a catalog key so the app can show it in any language."""
from __future__ import annotations

from core.i18n import translate


class UserError(Exception):
    """Base class: `str(error)` is the English message, `message(lang)` any language."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str) -> str:
        """The message in `lang`; a nested error (the reason for this one) is translated too."""
        params = {name: value.message(lang) if isinstance(value, UserError) else value
                  for name, value in self.params.items()}
        return translate(self.key, lang, **params)


class ImageError(UserError):
    """Uploaded bytes that cannot become an RGB image."""


class DatasetError(UserError):
    """An uploaded archive or data set that cannot be used."""


class SpecError(UserError):
    """An augmentation spec that is not valid."""


class CheckpointError(UserError):
    """A file that is not one of our checkpoints."""


class TrainingError(UserError):
    """A training request that cannot run as asked."""


class RateLimitError(UserError):
    """A visitor who asked for more than the server allows per time window."""
