"""Zip archives of class folders: safe reading, and writing augmented copies.

An upload is checked before anything is inflated: every path must stay inside the archive
(no zip-slip), the total size and each member's compression ratio are bounded (no zip
bomb), and the file count is limited. Everything happens in memory.

An archive is either `class/image` files, or the same under split folders
(`train/class/image`, `val/class/image`, `test/class/image`) when the data set comes split.
"""
from __future__ import annotations

import io
import lzma
import posixpath
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.augment import PipelineSpec, augment
from core.errors import DatasetError, ImageError
from core.images import decode_image, encode_png

MAX_FILES = 5000
MAX_TOTAL_BYTES = 512 * 2**20
MAX_RATIO = 200.0
MAX_IMAGE_PIXELS = 16_000_000  # per image in an archive: training uses at most 224x224 anyway
MAX_TOTAL_PIXELS = 600_000_000  # decoded pixels of a whole archive (about 1.8 GB as RGB)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
_IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")
PARTS = ("train", "val", "test")
# the split folder names data sets use, in any case, and the part each one holds
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


@dataclass(frozen=True)
class ClassImage:
    label: str
    name: str
    image: np.ndarray
    part: str = "train"  # the split folder it came from: train, val or test


@dataclass(frozen=True)
class ClassArchive:
    """Decoded images grouped by class folder name, classes (those of the training part) in sorted order."""

    classes: tuple[str, ...]
    images: tuple[ClassImage, ...]

    def counts(self) -> dict[str, int]:
        return {label: sum(item.label == label for item in self.images) for label in self.classes}

    @property
    def has_split_folders(self) -> bool:
        return any(item.part != "train" for item in self.images)


def _safe_parts(name: str) -> list[str]:
    """Path parts of a member, or DatasetError if it could escape the extraction folder."""
    unified = name.replace("\\", "/")
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    if unified.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError("err_zip_unsafe_path", name=name)
    return parts


def _ignored(name: str) -> bool:
    base = posixpath.basename(name.rstrip("/"))
    return name.startswith(_IGNORED[0]) or base in _IGNORED or base.startswith("._")


def _check_members(members: list[zipfile.ZipInfo], max_files: int) -> None:
    if len(members) > max_files:
        raise DatasetError("err_zip_too_many_files", count=len(members), limit=max_files)
    total = sum(info.file_size for info in members)
    if total > MAX_TOTAL_BYTES:
        raise DatasetError("err_zip_too_large", size_mb=total / 2**20, limit_mb=MAX_TOTAL_BYTES / 2**20)
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > MAX_RATIO:
            raise DatasetError("err_zip_bomb", name=info.filename, ratio=ratio)


def _class_paths(members: list[zipfile.ZipInfo]) -> tuple[dict[tuple[str, str], list[zipfile.ZipInfo]],
                                                         set[tuple[str, str]]]:
    """Group files by (part, class folder). One common top folder (as zip tools make) is skipped; when
    every top folder is a split name (train/, val/, test/, ...) and every file sits in a class folder
    below one, those are the parts, else everything is training data."""
    paths = {info.filename: _safe_parts(info.filename) for info in members}
    files = [info for info in members if not info.is_dir()]
    roots = {parts[0] for parts in paths.values() if parts}
    strip = 1 if len(roots) == 1 and all(len(paths[f.filename]) >= 3 for f in files) else 0
    tops = {parts[strip] for parts in paths.values() if len(parts) > strip}
    split = bool(files) and all(top.lower() in SPLIT_FOLDERS for top in tops) and \
        all(len(paths[f.filename]) >= strip + 3 for f in files)
    classes: dict[tuple[str, str], list[zipfile.ZipInfo]] = {}
    folders = set()
    for info in members:
        parts = paths[info.filename][strip:]
        part = SPLIT_FOLDERS[parts[0].lower()] if split and parts else "train"
        parts = parts[1:] if split else parts
        if info.is_dir():
            if len(parts) == 1:
                folders.add((part, parts[0]))
            continue
        if len(parts) < 2:
            raise DatasetError("err_zip_flat_file", name=info.filename)
        classes.setdefault((part, parts[0]), []).append(info)
        folders.add((part, parts[0]))
    return classes, folders


def _check_parts(classes: dict[tuple[str, str], list[zipfile.ZipInfo]], folders: set[tuple[str, str]]) -> None:
    """Every class folder holds images, val/ and test/ only name classes that train/ has, and there are two."""
    if not folders:
        raise DatasetError("err_zip_no_classes")
    empty = sorted(folders - set(classes), key=lambda folder: (PARTS.index(folder[0]), folder[1]))
    split = any(part != "train" for part, _ in folders)
    if empty:
        raise DatasetError("err_zip_empty_class", name="/".join(empty[0]) if split else empty[0][1])
    trained = {label for part, label in folders if part == "train"}
    if split and not trained:
        raise DatasetError("split_err_no_train_folder")
    stray = sorted((part, label) for part, label in folders if label not in trained)
    if stray:
        raise DatasetError("split_err_class_not_in_train", part=stray[0][0], name=stray[0][1])
    if len(trained) < 2:
        raise DatasetError("err_zip_one_class")


def read_class_zip(data: bytes, on_progress: Callable[[int, int], None] | None = None,
                   max_files: int = MAX_FILES) -> ClassArchive:
    """Decode a zip of `class/image` files, or of `train|val|test/class/image` files (optionally under
    one top folder).

    Raises DatasetError for unsafe paths, bombs, too many files, non-images, empty classes, fewer
    than two classes, or a val/ or test/ class that train/ lacks.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DatasetError("err_zip_not_zip") from None
    with archive:
        members = [info for info in archive.infolist() if not _ignored(info.filename)]
        _check_members(members, max_files)
        classes, folders = _class_paths(members)
        _check_parts(classes, folders)
        images, pixels = [], 0
        total = sum(len(infos) for infos in classes.values())
        for part, label in sorted(classes, key=lambda folder: (PARTS.index(folder[0]), folder[1])):
            for info in sorted(classes[part, label], key=lambda i: i.filename):
                image = _decode_member(archive, info)
                pixels += image.shape[0] * image.shape[1]
                if pixels > MAX_TOTAL_PIXELS:
                    raise DatasetError("err_zip_too_many_pixels", limit_mp=MAX_TOTAL_PIXELS / 1e6)
                images.append(ClassImage(label, info.filename, image, part))
                if on_progress is not None:
                    on_progress(len(images), total)
    return ClassArchive(tuple(sorted({label for part, label in classes if part == "train"})), tuple(images))


def _decode_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    if not info.filename.lower().endswith(IMAGE_SUFFIXES):
        raise DatasetError("err_zip_not_image", name=info.filename, reason=posixpath.splitext(info.filename)[1] or "?")
    try:
        with archive.open(info) as member:
            payload = member.read(info.file_size + 1)
        return decode_image(payload, max_pixels=MAX_IMAGE_PIXELS)
    except ImageError as error:
        raise DatasetError("err_zip_not_image", name=info.filename, reason=error) from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, lzma.LZMAError, RuntimeError, NotImplementedError):
        # damaged, encrypted or compressed with a method Python cannot read
        raise DatasetError("err_zip_member", name=info.filename) from None


def write_class_zip(items: list[tuple[str, str, np.ndarray]]) -> bytes:
    """A zip of PNGs from (class folder, file name, image) triples."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for label, name, image in items:
            archive.writestr(f"{label}/{name}", encode_png(image))
    return buffer.getvalue()


def augment_archive(archive: ClassArchive, spec: PipelineSpec, copies: int, seed: int,
                    on_progress: Callable[[int, int], None] | None = None, max_images: int | None = None) -> bytes:
    """The originals plus `copies` augmented draws of each image, as a zip of class folders; a
    DatasetError before any work when that would be more than `max_images` images."""
    total = len(archive.images) * (copies + 1)
    if max_images is not None and total > max_images:
        raise DatasetError("err_augment_too_many", images=len(archive.images), copies=copies, total=total,
                           limit=max_images)
    rng = np.random.default_rng(seed)
    items = []
    for index, item in enumerate(archive.images, start=1):
        stem = posixpath.splitext(posixpath.basename(item.name))[0]
        stem = f"{index:05d}_{stem}"
        folder = f"{item.part}/{item.label}" if archive.has_split_folders else item.label
        items.append((folder, f"{stem}.png", item.image))
        for copy in range(1, copies + 1):
            image, _ = augment(item.image, spec, rng)
            items.append((folder, f"{stem}_aug{copy}.png", image))
        if on_progress is not None:
            on_progress(index, len(archive.images))
    return write_class_zip(items)
