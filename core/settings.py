"""Where the app runs: on someone's own machine (open) or as a hosted demo that many visitors share.

Hosted mode is on when the environment variable FACELAB_HOSTED is 1 (or true/yes/on), or when the
`[facelab]` table of `.streamlit/secrets.toml` says `hosted = true`. That table can also change any
limit below, by the field's name. Locally every limit is off except what the machine itself imposes.
"""
from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

HOSTED_VARIABLE = "FACELAB_HOSTED"
DATA_DIR_VARIABLE = "FACELAB_DATA_DIR"
SECRETS_FILE = Path(__file__).resolve().parents[1] / ".streamlit" / "secrets.toml"
SECRETS_TABLE = "facelab"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
ICE_SCHEMES = ("stun", "turn", "turns")


@dataclass(frozen=True)
class Settings:
    hosted: bool = False
    data_dir: str = ""  # the folder holding fer2013.npz; a visitor can change it only locally
    # jobs (None: no limit)
    max_epochs: int | None = None
    max_job_minutes: float | None = None
    max_parameters: int | None = None  # network size
    max_batch_mb: float | None = None  # one training step's estimated memory
    max_dataset_images: int = 5000  # images in an uploaded class-folder zip
    max_augmented_images: int = 50_000  # images x copies of the data-set augmenter
    # uploads and rate limits, per session (the REST route: per client address)
    max_photos: int = 20
    max_photo_side: int = 2048  # photos are shrunk to this right after decoding
    max_megapixels_per_run: float = 80.0  # all photos of one prediction run, after shrinking
    predictions_per_minute: int | None = None
    training_starts_per_hour: int | None = None
    api_requests_per_minute: int | None = None
    max_live_streams: int | None = None  # live camera streams at once, on the whole server
    # the live camera's STUN/TURN servers, as WebRTC's RTCIceServer: {urls, username, credential}
    ice_servers: tuple[dict, ...] = ()


HOSTED_DEFAULTS = {
    "max_epochs": 30, "max_job_minutes": 30.0, "max_parameters": 25_000_000, "max_batch_mb": 4096.0,
    "max_dataset_images": 2000, "max_augmented_images": 5000, "max_photos": 10, "max_megapixels_per_run": 40.0,
    "predictions_per_minute": 30, "training_starts_per_hour": 4, "api_requests_per_minute": 120,
    "max_live_streams": 2,
}


def _checked(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
    elif kind is str and isinstance(value, str):
        return value
    elif kind is tuple and isinstance(value, list) and all(_is_ice_server(server) for server in value):
        return tuple(value)
    elif (kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
          and (kind is float or float(value).is_integer())):
        return kind(value)
    if kind is tuple:  # the value is not shown: it may hold a TURN credential
        raise ValueError(f"[{SECRETS_TABLE}] {name} is not a valid list of ICE servers: each one is a table "
                         f"{{urls = ..., username = ..., credential = ...}} with {', '.join(ICE_SCHEMES)} URLs")
    raise ValueError(f"[{SECRETS_TABLE}] {name} = {value!r} is not a valid {kind.__name__}")


def _is_ice_server(server: Any) -> bool:
    """A WebRTC RTCIceServer: `urls` (one stun:/turn:/turns: URL or a list of them), and for TURN a
    `username` and `credential`."""
    if not isinstance(server, dict) or "urls" not in server or set(server) - {"urls", "username", "credential"}:
        return False
    urls = [server["urls"]] if isinstance(server["urls"], str) else server["urls"]
    return (isinstance(urls, list) and bool(urls)
            and all(isinstance(url, str) and url.split(":", 1)[0] in ICE_SCHEMES for url in urls)
            and all(isinstance(server.get(key, ""), str) for key in ("username", "credential")))


def _field_types() -> dict[str, type]:
    kinds = {"bool": bool, "str": str, "int": int, "float": float, "int | None": int, "float | None": float,
             "tuple[dict, ...]": tuple}
    return {f.name: kinds[f.type] for f in fields(Settings)}


def load_settings(environ: Mapping[str, str], table: Mapping[str, Any]) -> Settings:
    """Settings from environment variables and the secrets file's [facelab] table (which wins).
    Unknown or badly typed entries raise ValueError, so a typo in the host's file is not ignored."""
    types = _field_types()
    unknown = set(table) - set(types)
    if unknown:
        raise ValueError(f"[{SECRETS_TABLE}] has unknown setting(s): {', '.join(sorted(unknown))}")
    given = {name: _checked(name, value, types[name]) for name, value in table.items()}
    hosted = given.get("hosted", _checked("hosted", environ.get(HOSTED_VARIABLE, ""), bool))
    base = replace(Settings(), **HOSTED_DEFAULTS) if hosted else Settings()
    data_dir = environ.get(DATA_DIR_VARIABLE, "").strip()
    return replace(base, **({"data_dir": data_dir} | given | {"hosted": hosted}))


def read_secrets_table(path: Path = SECRETS_FILE) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as file:
        table = tomllib.load(file).get(SECRETS_TABLE, {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [{SECRETS_TABLE}] must be a table")
    return table


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """This server's settings, read once per process."""
    return load_settings(os.environ, read_secrets_table())
