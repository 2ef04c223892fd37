"""Tests for core.archive: reading class-folder zips safely and writing augmented copies.

Every archive is built in memory with zipfile.
"""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

import core.archive as archive_module
from core.archive import ClassArchive, ClassImage, augment_archive, read_class_zip, write_class_zip
from core.augment import OpSpec, PipelineSpec, default_op
from core.errors import DatasetError, UserError
from core.images import encode_png

_CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback|<|>")


def small_png(value: int, height: int = 6, width: int = 8) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = value
    image[..., 1] = np.arange(width, dtype=np.uint8)[None, :] * 10
    return encode_png(image)


def make_zip(entries: dict[str, bytes | None], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip from name -> bytes; a value of None makes a directory entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, payload in entries.items():
            if payload is None:
                archive.writestr(zipfile.ZipInfo(name if name.endswith("/") else name + "/"), b"")
            else:
                archive.writestr(name, payload)
    return buffer.getvalue()


def good_entries(prefix: str = "") -> dict[str, bytes | None]:
    return {
        f"{prefix}sad/": None,
        f"{prefix}sad/s1.png": small_png(10),
        f"{prefix}happy/": None,
        f"{prefix}happy/h2.png": small_png(20),
        f"{prefix}happy/h1.png": small_png(30),
        f"{prefix}happy/h3.png": small_png(40),
    }


def dataset_error(data: bytes) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        read_class_zip(data)
    error = info.value
    assert isinstance(error, UserError)
    text = str(error)
    assert text and text != error.key
    assert not _CLASS_NAME.search(text), text
    assert error.message("zh") != text
    return error


# --------------------------------------------------------------------------- good archives


def test_good_zip_classes_sorted_with_counts():
    result = read_class_zip(make_zip(good_entries()))
    assert isinstance(result, ClassArchive)
    assert result.classes == ("happy", "sad")
    assert result.counts() == {"happy": 3, "sad": 1}
    assert [item.label for item in result.images] == ["happy", "happy", "happy", "sad"]
    # images come sorted by name within a class, decoded to RGB uint8
    assert [item.name for item in result.images] == ["happy/h1.png", "happy/h2.png", "happy/h3.png", "sad/s1.png"]
    assert [int(item.image[0, 0, 0]) for item in result.images] == [30, 20, 40, 10]
    for item in result.images:
        assert item.image.shape == (6, 8, 3) and item.image.dtype == np.uint8


def test_good_zip_without_directory_entries():
    entries = {name: data for name, data in good_entries().items() if data is not None}
    assert read_class_zip(make_zip(entries)).counts() == {"happy": 3, "sad": 1}


def test_one_common_top_folder_is_skipped():
    entries = {"data/": None, **good_entries("data/")}
    result = read_class_zip(make_zip(entries))
    assert result.classes == ("happy", "sad")
    assert result.counts() == {"happy": 3, "sad": 1}


def test_brief_example_with_top_folder():
    result = read_class_zip(make_zip({"data/happy/a.png": small_png(1), "data/sad/b.png": small_png(2)}))
    assert result.classes == ("happy", "sad")
    assert result.counts() == {"happy": 1, "sad": 1}


def test_os_clutter_is_ignored():
    entries = good_entries() | {
        "__MACOSX/": None,
        "__MACOSX/happy/._h1.png": b"\x00\x05\x16\x07 resource fork",
        "happy/.DS_Store": b"junk",
        "sad/Thumbs.db": b"junk",
        "happy/._h1.png": b"junk",
        "desktop.ini": b"[.ShellClassInfo]",
    }
    assert read_class_zip(make_zip(entries)).counts() == {"happy": 3, "sad": 1}


def test_other_image_formats_and_upper_case_suffix():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (5, 4), (1, 2, 3)).save(buffer, format="BMP")
    entries = {"a/x.BMP": buffer.getvalue(), "b/y.PnG": small_png(5)}
    result = read_class_zip(make_zip(entries))
    assert result.counts() == {"a": 1, "b": 1}
    assert result.images[0].image.shape == (4, 5, 3)


def test_stored_zip_works():
    assert read_class_zip(make_zip(good_entries(), zipfile.ZIP_STORED)).counts() == {"happy": 3, "sad": 1}


def test_progress_is_reported():
    calls = []
    read_class_zip(make_zip(good_entries()), on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


# --------------------------------------------------------------------------- hostile archives


@pytest.mark.parametrize("name", [
    "../evil.png",
    "/abs/x.png",
    "happy/../../x.png",
    "C:\\x.png",
    "C:/x.png",
    "happy\\..\\..\\x.png",
    "happy/./../../x.png",
    "\\\\server\\share\\x.png",
])
def test_zip_slip_is_rejected(name):
    entries = good_entries() | {name: small_png(1)}
    assert dataset_error(make_zip(entries)).key == "err_zip_unsafe_path"


def test_unsafe_directory_entry_is_rejected():
    entries = good_entries() | {"../outside/": None}
    assert dataset_error(make_zip(entries)).key == "err_zip_unsafe_path"


def test_zip_bomb_is_rejected_fast():
    entries = good_entries() | {"happy/bomb.png": bytes(20 * 2**20)}
    data = make_zip(entries)
    assert len(data) < 200_000  # 20 MB of zeros compresses far beyond 200:1
    error = dataset_error(data)
    assert error.key == "err_zip_bomb"
    assert "happy/bomb.png" in str(error)


def test_total_size_limit(monkeypatch):
    data = make_zip(good_entries())
    total = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    monkeypatch.setattr(archive_module, "MAX_TOTAL_BYTES", total - 1)
    assert dataset_error(data).key == "err_zip_too_large"
    monkeypatch.setattr(archive_module, "MAX_TOTAL_BYTES", total)
    assert read_class_zip(data).counts() == {"happy": 3, "sad": 1}


def test_too_many_files():
    entries = {f"happy/{i}.png": small_png(i) for i in range(3)} | {f"sad/{i}.png": small_png(i) for i in range(3)}
    with pytest.raises(DatasetError) as info:
        read_class_zip(make_zip(entries), max_files=5)
    assert info.value.key == "err_zip_too_many_files"
    assert "6" in str(info.value) and "5" in str(info.value)


def test_file_limit_is_inclusive():
    entries = {f"happy/{i}.png": small_png(i) for i in range(2)} | {f"sad/{i}.png": small_png(i) for i in range(2)}
    assert read_class_zip(make_zip(entries), max_files=4).counts() == {"happy": 2, "sad": 2}


def test_non_image_file_is_rejected():
    entries = good_entries() | {"happy/notes.txt": b"remember to smile"}
    error = dataset_error(make_zip(entries))
    assert error.key == "err_zip_not_image"
    assert "happy/notes.txt" in str(error)


def test_broken_image_is_rejected():
    entries = good_entries() | {"sad/broken.png": b"\x89PNG\r\n\x1a\n not really"}
    error = dataset_error(make_zip(entries))
    assert error.key == "err_zip_not_image"
    assert "sad/broken.png" in str(error)


def test_corrupt_member_crc_is_rejected():
    payload = small_png(77)
    data = bytearray(make_zip({"happy/a.png": small_png(1), "sad/b.png": payload}, zipfile.ZIP_STORED))
    start = data.index(payload)
    data[start + len(payload) - 20] ^= 0xFF  # flip a byte inside the stored member
    error = dataset_error(bytes(data))
    assert error.key == "err_zip_member"
    assert "sad/b.png" in str(error)


def test_corrupt_deflate_stream_is_rejected():
    payload = bytes(range(256)) * 64
    data = bytearray(make_zip({"happy/a.png": small_png(1), "sad/b.png": payload}, zipfile.ZIP_DEFLATED))
    compressed_start = data.index(b"sad/b.png") + len("sad/b.png")
    for offset in range(5, 40):
        data[compressed_start + offset] ^= 0x5A  # scramble the deflate stream itself
    assert dataset_error(bytes(data)).key in ("err_zip_member", "err_zip_not_image")


def test_total_decoded_pixels_are_bounded(monkeypatch):
    monkeypatch.setattr(archive_module, "MAX_TOTAL_PIXELS", 100)
    assert dataset_error(make_zip(good_entries())).key == "err_zip_too_many_pixels"


def test_empty_class_folder_is_rejected():
    entries = {"happy/": None, "happy/a.png": small_png(1), "sad/": None}
    error = dataset_error(make_zip(entries))
    assert error.key == "err_zip_empty_class"
    assert "sad" in str(error)


def test_file_at_top_level_is_rejected():
    entries = good_entries() | {"readme.png": small_png(3)}
    error = dataset_error(make_zip(entries))
    assert error.key == "err_zip_flat_file"
    assert "readme.png" in str(error)


@pytest.mark.parametrize("entries", [
    {"happy/a.png": small_png(1), "happy/b.png": small_png(2)},
    {"data/happy/a.png": small_png(1), "data/happy/b.png": small_png(2)},
])
def test_only_one_class_is_rejected(entries):
    assert dataset_error(make_zip(entries)).key == "err_zip_one_class"


def test_empty_zip_has_no_classes():
    assert dataset_error(make_zip({})).key == "err_zip_no_classes"


@pytest.mark.parametrize("data", [b"", b"definitely not a zip", small_png(1), b"PK\x03\x04" + bytes(40)])
def test_not_a_zip(data):
    assert dataset_error(data).key == "err_zip_not_zip"


# --------------------------------------------------------------------------- writing and augmenting


def test_write_class_zip_round_trip():
    images = [("cats", "a.png", np.full((3, 4, 3), 9, np.uint8)), ("dogs", "b.png", np.full((5, 2, 3), 200, np.uint8))]
    result = read_class_zip(write_class_zip(images))
    assert result.classes == ("cats", "dogs")
    np.testing.assert_array_equal(result.images[0].image, images[0][2])
    np.testing.assert_array_equal(result.images[1].image, images[1][2])


def _small_spec() -> PipelineSpec:
    return PipelineSpec((default_op("hflip", 0.5), default_op("color"), OpSpec("crop", 1.0, {"size": 16})))


def test_augment_archive_adds_copies():
    source = read_class_zip(make_zip(good_entries()))
    calls = []
    data = augment_archive(source, _small_spec(), copies=2, seed=3, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    assert len(names) == 3 * len(source.images)
    assert len(set(names)) == len(names)
    assert {name.split("/")[0] for name in names} == {"happy", "sad"}
    assert all(name.count("/") == 1 and name.endswith(".png") for name in names)
    result = read_class_zip(data)
    assert result.classes == source.classes
    assert result.counts() == {label: 3 * count for label, count in source.counts().items()}
    # the originals are kept unchanged; the copies are augmented (cropped to 16x16)
    by_name = {item.name: item.image for item in result.images}
    for index, item in enumerate(source.images, start=1):
        stem = f"{item.label}/{index:05d}_{item.name.split('/')[-1][:-4]}"
        np.testing.assert_array_equal(by_name[f"{stem}.png"], item.image)
        assert by_name[f"{stem}_aug1.png"].shape == (16, 16, 3)
        assert by_name[f"{stem}_aug2.png"].shape == (16, 16, 3)


def test_augment_archive_refuses_too_many_images_before_any_work():
    source = read_class_zip(make_zip(good_entries()))  # 4 images
    calls = []
    with pytest.raises(DatasetError) as info:
        augment_archive(source, _small_spec(), copies=4, seed=0, on_progress=lambda d, t: calls.append(d), max_images=19)
    assert info.value.key == "err_augment_too_many" and "20" in str(info.value) and calls == []
    assert augment_archive(source, _small_spec(), copies=4, seed=0, max_images=20)


def test_augment_archive_names_unique_for_same_file_names():
    # the same file name in two classes, and twice in one class, still gives unique names
    image = np.zeros((8, 8, 3), np.uint8)
    source = ClassArchive(("a", "b"), (ClassImage("a", "x/img.png", image), ClassImage("a", "y/img.png", image),
                                       ClassImage("b", "img.png", image)))
    data = augment_archive(source, _small_spec(), copies=1, seed=0)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    assert len(names) == 6 and len(set(names)) == 6


def test_augment_archive_is_reproducible():
    source = read_class_zip(make_zip(good_entries()))
    first = read_class_zip(augment_archive(source, _small_spec(), copies=1, seed=5))
    second = read_class_zip(augment_archive(source, _small_spec(), copies=1, seed=5))
    for a, b in zip(first.images, second.images):
        assert a.name == b.name
        np.testing.assert_array_equal(a.image, b.image)


def test_augment_archive_zero_copies_is_the_originals():
    source = read_class_zip(make_zip(good_entries()))
    result = read_class_zip(augment_archive(source, _small_spec(), copies=0, seed=0))
    assert result.counts() == source.counts()


# --------------------------------------------------------------------------- split folders (train/, val/, test/)


def split_entries(prefix: str = "") -> dict[str, bytes | None]:
    return {f"{prefix}train/happy/h1.png": small_png(1), f"{prefix}train/happy/h2.png": small_png(2),
            f"{prefix}train/sad/s1.png": small_png(3), f"{prefix}train/sad/s2.png": small_png(4),
            f"{prefix}val/happy/h3.png": small_png(5), f"{prefix}val/sad/s3.png": small_png(6),
            f"{prefix}test/sad/s4.png": small_png(7)}


@pytest.mark.parametrize("prefix", ["", "faces/"])
def test_split_folders_are_parts_and_train_names_the_classes(prefix):
    result = read_class_zip(make_zip(split_entries(prefix)))
    assert result.classes == ("happy", "sad") and result.has_split_folders
    assert [(item.part, item.label, item.name.removeprefix(prefix)) for item in result.images] == [
        ("train", "happy", "train/happy/h1.png"), ("train", "happy", "train/happy/h2.png"),
        ("train", "sad", "train/sad/s1.png"), ("train", "sad", "train/sad/s2.png"),
        ("val", "happy", "val/happy/h3.png"), ("val", "sad", "val/sad/s3.png"), ("test", "sad", "test/sad/s4.png")]


def test_split_folder_names_in_other_spellings():
    entries = {"Training/a/1.png": small_png(1), "Training/b/2.png": small_png(2), "Validation/a/3.png": small_png(3),
               "TESTING/b/4.png": small_png(4), "Training/": None, "Validation/a/": None}
    assert [item.part for item in read_class_zip(make_zip(entries)).images] == ["train", "train", "val", "test"]


def test_a_plain_zip_has_no_split_folders():
    result = read_class_zip(make_zip(good_entries()))
    assert not result.has_split_folders and {item.part for item in result.images} == {"train"}
    # class folders that happen to be called train and test hold their images directly: they are classes
    assert read_class_zip(make_zip({"train/a.png": small_png(1), "test/b.png": small_png(2)})).classes == ("test", "train")


def test_a_val_class_that_train_lacks_is_rejected():
    error = dataset_error(make_zip(split_entries() | {"val/angry/a1.png": small_png(8)}))
    assert error.key == "split_err_class_not_in_train"
    assert '"angry"' in str(error) and "val/" in str(error)
    assert dataset_error(make_zip(split_entries() | {"test/angry/a1.png": small_png(8)})).key == \
        "split_err_class_not_in_train"


def test_split_folders_without_train_are_rejected():
    entries = {"val/happy/a.png": small_png(1), "test/sad/b.png": small_png(2)}
    assert dataset_error(make_zip(entries)).key == "split_err_no_train_folder"


def test_an_empty_class_under_a_split_folder_is_named_with_its_folder():
    error = dataset_error(make_zip(split_entries() | {"val/happy/": None, "test/happy/": None}))
    assert error.key == "err_zip_empty_class" and '"test/happy"' in str(error)


@pytest.mark.parametrize("name", ["val/happy/../../../x.png", "val/../../x.png", "test\\sad\\..\\..\\..\\x.png"])
def test_paths_that_escape_from_split_folders_are_rejected(name):
    assert dataset_error(make_zip(split_entries() | {name: small_png(1)})).key == "err_zip_unsafe_path"


def test_augmenting_keeps_the_split_folders():
    source = read_class_zip(make_zip(split_entries()))
    result = read_class_zip(augment_archive(source, _small_spec(), copies=1, seed=0))
    assert [(item.part, item.label) for item in result.images][::2] == [(item.part, item.label) for item in source.images]
