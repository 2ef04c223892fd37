"""Tests for core.data on tiny generated data sets (and FER2013 itself when it is available).

FER2013's files use the label order angry, disgust, fear, happy, sad, surprise, neutral; the
app's order is anger, disgust, fear, happiness, neutral, sadness, surprise. Every image below
carries its file label in its pixels, so the remap can be checked image by image.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core.classes import EXPRESSION_KEYS, FER2013_KEYS
from core.data import (
    FERPLUS_FILE,
    Dataset,
    class_weights,
    data_file,
    fer2013_path,
    ferplus_labels,
    group_counts,
    group_split,
    load_class_folders,
    load_data,
    load_npz,
    name_groups,
    read_class_folders,
    sample_weights,
    split_indices,
    stratified_split,
    to_input,
)
from core.errors import DatasetError
from core.images import encode_png

FILE_CLASSES = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
# file label -> our label: angry 0->0, disgust 1->1, fear 2->2, happy 3->3, sad 4->5, surprise 5->6, neutral 6->4
FILE_TO_OURS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 5, 5: 6, 6: 4}


def fer_arrays(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` 48x48 images whose pixels all equal 30 × their file label."""
    labels = np.random.default_rng(seed).integers(0, 7, size=count).astype(np.int64)
    labels[:7] = np.arange(7)  # every class at least once
    images = np.broadcast_to((labels * 30).astype(np.uint8)[:, None, None], (count, 48, 48)).copy()
    return images, labels


def write_fer_npz(path, with_test: bool = True, **overrides) -> None:
    arrays = {}
    for index, split in enumerate(("train", "val", "test") if with_test else ("train", "val")):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = fer_arrays(20 + index, seed=index)
    arrays["classes"] = FILE_CLASSES
    arrays.update(overrides)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez_compressed(path, **arrays)


# --------------------------------------------------------------------------- .npz


def test_npz_labels_are_remapped_to_our_class_order(tmp_path):
    path = tmp_path / "fer.npz"
    write_fer_npz(path)
    splits = load_npz(path)
    assert splits.classes == FER2013_KEYS == ("anger", "disgust", "fear", "happiness", "neutral", "sadness",
                                               "surprise")
    for dataset in (splits.train, splits.val, splits.test):
        assert dataset.x.dtype == np.uint8 and dataset.x.shape[1:] == (1, 48, 48)
        assert dataset.y.dtype == np.int64
        file_labels = dataset.x[:, 0, 0, 0] // 30
        np.testing.assert_array_equal(dataset.y, [FILE_TO_OURS[int(label)] for label in file_labels])
    # by name: an image labelled "sad" in the file is "sadness" here, "neutral" stays "neutral"
    names = [splits.classes[label] for label in splits.train.y]
    file_names = [FILE_CLASSES[label] for label in splits.train.x[:, 0, 0, 0] // 30]
    aliases = {"angry": "anger", "happy": "happiness", "sad": "sadness"}
    assert names == [aliases.get(name, name) for name in file_names]


def test_npz_without_test_split(tmp_path):
    path = tmp_path / "fer.npz"
    write_fer_npz(path, with_test=False)
    splits = load_npz(path)
    assert splits.test is None and len(splits.train) == 20 and len(splits.val) == 21


def test_npz_class_names_in_our_order_map_to_themselves(tmp_path):
    path = tmp_path / "ours.npz"
    write_fer_npz(path, classes=np.array(FER2013_KEYS))
    splits = load_npz(path)
    np.testing.assert_array_equal(splits.train.y, splits.train.x[:, 0, 0, 0] // 30)


FERPLUS_COLUMNS = np.array(["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                            "unknown", "NF"])


def test_ferplus_majority_rule_and_soft_targets():
    """FER+ `src/ferplus.py` "majority": single votes are dropped, the label needs more than half of the
    rest; unknown, not-a-face and rows without a label are left out."""
    votes = np.array([
        [0, 0, 0, 0, 0, 0, 0, 10, 0, 0],  # contempt
        [6, 3, 0, 0, 0, 0, 0, 0, 1, 0],  # neutral; the single unknown vote is dropped
        [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],  # no majority: left out
        [5, 1, 1, 1, 1, 1, 0, 0, 0, 0],  # neutral: the five single votes are outliers
        [0, 0, 0, 0, 0, 0, 0, 0, 10, 0],  # unknown: left out
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: left out
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # votes not known: left out
        [0, 0, 3, 0, 7, 0, 0, 0, 0, 0],  # anger 0.7, surprise 0.3
    ], dtype=np.uint8)
    keep, y, targets = ferplus_labels(votes, list(FERPLUS_COLUMNS))
    np.testing.assert_array_equal(keep, [0, 1, 3, 7])
    assert [EXPRESSION_KEYS[label] for label in y] == ["contempt", "neutral", "neutral", "anger"]
    assert targets.shape == (4, 8) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(axis=1), 1)
    assert targets[1, EXPRESSION_KEYS.index("neutral")] == pytest.approx(6 / 9)
    assert targets[2, EXPRESSION_KEYS.index("neutral")] == 1
    assert targets[3, EXPRESSION_KEYS.index("surprise")] == pytest.approx(0.3)


def write_ferplus_npz(path, fer_path) -> None:
    """Votes for every row of the fake FER2013 file: its own label with 9 votes and one stray vote, except that every
    third row is contempt and every fifth not a face."""
    with np.load(fer_path) as fer:
        arrays = {}
        for split in ("train", "val", "test"):
            votes = np.zeros((len(fer[f"y_{split}"]), 10), dtype=np.uint8)
            for row, label in enumerate(fer[f"y_{split}"]):
                ours = FER2013_KEYS[FILE_TO_OURS[int(label)]]
                column = 7 if row % 3 == 0 else 9 if row % 5 == 0 else list(FERPLUS_COLUMNS).index(ours)
                votes[row, column], votes[row, (column + 1) % 10] = 9, 1
            arrays[f"votes_{split}"] = votes
    np.savez_compressed(path, columns=FERPLUS_COLUMNS, **arrays)


def test_npz_with_ferplus_votes(tmp_path):
    path = tmp_path / "fer2013.npz"
    write_fer_npz(path)
    write_ferplus_npz(tmp_path / FERPLUS_FILE, path)
    plain, voted = load_npz(path), load_data(path, 48, 1, labels="ferplus")
    assert voted.classes == EXPRESSION_KEYS and "contempt" in voted.classes
    assert voted.source == plain.source == str(path)  # the file training reads; the labels are a setting
    for split in ("train", "val", "test"):
        before, after = getattr(plain, split), getattr(voted, split)
        rows = np.array([row for row in range(len(before)) if row % 3 == 0 or row % 5 != 0])
        assert len(after) == len(rows) and after.targets.shape == (len(rows), 8)
        np.testing.assert_array_equal(after.x, before.x[rows])
        names = [after.classes[label] for label in after.y]
        expected = ["contempt" if row % 3 == 0 else before.classes[before.y[row]] for row in rows]
        assert names == expected
        np.testing.assert_allclose(after.targets.max(axis=1), 1)  # the single stray votes are dropped
    kept = voted.train.subset(np.array([0, 2]))
    np.testing.assert_array_equal(kept.targets, voted.train.targets[[0, 2]])


def test_ferplus_needs_its_file_and_an_npz(tmp_path):
    path = tmp_path / "fer2013.npz"
    write_fer_npz(path)
    with pytest.raises(DatasetError) as missing:
        load_npz(path, "ferplus")
    assert missing.value.key == "err_data_ferplus_missing" and FERPLUS_FILE in str(missing.value)
    np.savez_compressed(tmp_path / FERPLUS_FILE, columns=FERPLUS_COLUMNS, votes_train=np.zeros((3, 10), np.uint8))
    with pytest.raises(DatasetError) as wrong:
        load_npz(path, "ferplus")
    assert wrong.value.key == "err_data_bad_ferplus"
    with pytest.raises(DatasetError) as folder:
        load_data(tmp_path, 48, 1, labels="ferplus")
    assert folder.value.key == "err_data_labels_npz"
    for source in (path, tmp_path):
        with pytest.raises(DatasetError) as unknown:
            load_data(source, 48, 1, labels="votes")
        assert unknown.value.key == "err_data_labels"


def test_load_data_dispatches_npz(tmp_path):
    path = tmp_path / "fer.npz"
    write_fer_npz(path)
    assert len(load_data(str(path), 48, 1).train) == 20


@pytest.mark.parametrize("case", ["missing_key", "wrong_classes", "float_images", "label_out_of_range",
                                  "length_mismatch", "not_npz", "classes_missing"])
def test_bad_npz_raises_dataset_error(tmp_path, case):
    path = tmp_path / "bad.npz"
    x, y = fer_arrays(10, 0)
    overrides = {
        "missing_key": {"y_val": None},
        "wrong_classes": {"classes": np.array(["cat", "dog", "fear", "happy", "sad", "surprise", "neutral"])},
        "float_images": {"x_train": x.astype(np.float32)},
        "label_out_of_range": {"y_train": np.where(y == 0, 7, y), "x_train": x},
        "length_mismatch": {"x_train": x[:5], "y_train": y},
        "classes_missing": {"classes": None},
    }
    if case == "not_npz":
        path.write_bytes(b"this is not a zip file at all")
    else:
        write_fer_npz(path, **overrides[case])
    with pytest.raises(DatasetError) as info:
        load_npz(path)
    assert info.value.key == "err_data_bad_npz"
    assert "x_train" in str(info.value)  # the message says what the file needs


def test_missing_npz_raises_dataset_error(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_npz(tmp_path / "nowhere.npz")
    assert info.value.key == "err_data_missing"


# --------------------------------------------------------------------------- class folders


def coloured(height: int, width: int, value: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = value
    image[..., 1] = 255 - value
    image[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return image


SIZES = [(30, 40), (64, 64), (100, 50), (20, 20)]


def class_folder_files() -> dict[str, bytes]:
    """Two expression classes (FER2013 folder names) with images of four sizes each."""
    files = {}
    for label, value in (("happy", 200), ("sad", 40)):
        for index, (height, width) in enumerate(SIZES):
            files[f"{label}/{label}{index}.png"] = encode_png(coloured(height, width, value))
    return files


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in files.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def check_class_splits(splits, channels: int) -> None:
    assert splits.classes == ("happiness", "sadness")  # folder names mapped to our keys and order
    for dataset in (splits.train, splits.val):
        assert dataset.x.dtype == np.uint8
        assert dataset.x.shape[1:] == (channels, 48, 48)
        assert set(dataset.y.tolist()) == {0, 1}
    assert len(splits.train) + len(splits.val) == 2 * len(SIZES)
    assert splits.test is None
    # the happy images have a bright red channel, the sad ones a dark one
    for dataset in (splits.train, splits.val):
        first_channel = dataset.x[:, 0].reshape(len(dataset), -1).mean(axis=1)
        if channels == 3:
            assert np.all((first_channel > 150) == (dataset.y == 0))


@pytest.mark.parametrize("channels", [1, 3])
def test_zip_of_class_folders_with_mixed_sizes(tmp_path, channels):
    path = tmp_path / "faces.zip"
    path.write_bytes(make_zip(class_folder_files()))
    check_class_splits(load_class_folders(path, 48, channels, val_fraction=0.25, seed=0), channels)
    # the same zip as uploaded bytes
    check_class_splits(load_data(path.read_bytes(), 48, channels, 0.25, 0), channels)


def test_folder_of_class_folders_with_mixed_sizes(tmp_path):
    for name, payload in class_folder_files().items():
        target = tmp_path / "faces" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    splits = load_data(tmp_path / "faces", 48, 1, 0.25, 0)
    check_class_splits(splits, 1)


def test_other_class_names_are_kept_in_sorted_order(tmp_path):
    files = {f"{label}/{index}.png": encode_png(coloured(16, 16, 10 * index))
             for label in ("zebra", "cat") for index in range(3)}
    splits = load_data(make_zip(files), 48, 1, 0.34, 0)
    assert splits.classes == ("cat", "zebra")


def test_missing_folder_raises_dataset_error(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_data(tmp_path / "no-such-folder", 48, 1)
    assert info.value.key == "err_data_missing"


def test_to_input_centre_square_resize_and_channels():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 255  # the centre square is all white, the sides black
    grey = to_input(wide, 24, 1)
    assert grey.shape == (1, 24, 24) and grey.dtype == np.uint8
    assert grey.min() == 255
    rgb = to_input(np.full((10, 10), 77, np.uint8), 32, 3)
    assert rgb.shape == (3, 32, 32) and np.all(rgb == 77)


# --------------------------------------------------------------------------- splits and balance


def labelled(counts: list[int]) -> Dataset:
    y = np.concatenate([np.full(count, label) for label, count in enumerate(counts)]).astype(np.int64)
    x = np.arange(len(y), dtype=np.uint8)[:, None, None, None].repeat(4, axis=2).repeat(4, axis=3)
    return Dataset(x, y, tuple(f"c{index}" for index in range(len(counts))))


def split_sets(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    train, val = stratified_split(dataset.y, dataset.classes, val_fraction, seed)
    return dataset.subset(train), dataset.subset(val)


def test_stratified_split_keeps_every_class_in_both_parts():
    dataset = labelled([2, 3, 10, 50])
    train, val = split_sets(dataset, 0.2, seed=1)
    assert np.all(train.counts() >= 1) and np.all(val.counts() >= 1)
    np.testing.assert_array_equal(train.counts() + val.counts(), dataset.counts())
    np.testing.assert_array_equal(val.counts(), [1, 1, 2, 10])  # round(count × 0.2), at least 1
    # no image in both parts, none lost
    ids = np.concatenate([train.x[:, 0, 0, 0], val.x[:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(len(dataset)))
    # reproducible from the seed, different for another seed
    again, _ = split_sets(dataset, 0.2, seed=1)
    np.testing.assert_array_equal(again.x, train.x)
    other, _ = split_sets(dataset, 0.2, seed=2)
    assert not np.array_equal(other.x, train.x)


def test_stratified_split_refuses_a_class_with_one_image():
    with pytest.raises(DatasetError) as info:
        split_sets(labelled([5, 1, 5]), 0.2, seed=0)
    assert info.value.key == "err_data_too_small"
    assert '"c1"' in str(info.value) and "1 image" in str(info.value)


def test_class_weights_inverse_frequency_with_mean_one():
    counts = np.array([10, 30, 60])
    weights = class_weights(counts)
    assert weights.mean() == pytest.approx(1.0)
    # inverse frequency: weight × count is the same for every class
    np.testing.assert_allclose(weights * counts, [weights[0] * 10] * 3)
    np.testing.assert_allclose(weights, np.array([6.0, 2.0, 1.0]) / 3.0)
    assert weights[0] > weights[1] > weights[2]  # the rare class counts most


def test_class_weights_of_balanced_counts_are_ones():
    np.testing.assert_allclose(class_weights(np.array([5, 5, 5, 5])), [1.0] * 4)


def test_class_weights_ignore_absent_classes():
    weights = class_weights(np.array([10, 0, 30]))
    assert weights[1] == 0.0
    assert weights[[0, 2]].mean() == pytest.approx(1.0)
    assert weights[0] / weights[2] == pytest.approx(3.0)


def test_sample_weights_give_every_class_equal_total():
    dataset = labelled([3, 9, 1, 27])
    weights = sample_weights(dataset.y, dataset.counts())
    assert weights.shape == (len(dataset),)
    totals = np.bincount(dataset.y, weights=weights)
    np.testing.assert_allclose(totals, [1.0, 1.0, 1.0, 1.0])


# --------------------------------------------------------------------------- group-aware splits


def people_files(people: int = 10, frames: int = 3, classes: tuple[str, ...] = ("happy", "sad"),
                 folder: str = "") -> dict[str, bytes]:
    """Each person has `frames` photos in every class, named person07_2.png; the red value numbers the photo."""
    files = {}
    for person in range(people):
        for label, name in enumerate(classes):
            for frame in range(frames):
                value = (person * len(classes) + label) * frames + frame
                files[f"{folder}{name}/person{person:02d}_{frame}.png"] = encode_png(coloured(8, 8, value))
    return files


def person_of(folders, indices: np.ndarray) -> set[str]:
    return {folders.names[index].split("/")[-1].split("_")[0] for index in indices}


def test_a_prefix_split_keeps_each_person_on_one_side():
    folders = read_class_folders(make_zip(people_files(people=12)), 8, 3)
    train, val, test = split_indices(folders, "prefix", 0.2, seed=3, separator="_")
    assert len(test) == 0 and sorted(np.concatenate([train, val]).tolist()) == list(range(72))
    assert not person_of(folders, train) & person_of(folders, val)  # nobody on both sides
    assert len(val) / 72 == pytest.approx(0.2, abs=0.05)  # whole people: 2 or 3 of 12
    assert np.all(np.bincount(folders.dataset.y[val], minlength=2) > 0)
    assert group_counts(folders, train, val, "_") == (len(person_of(folders, train)), len(person_of(folders, val)), 0)
    again, _, _ = split_indices(folders, "prefix", 0.2, seed=3, separator="_")
    np.testing.assert_array_equal(again, train)
    assert any(not np.array_equal(split_indices(folders, "prefix", 0.2, seed, "_")[0], train) for seed in range(4, 8))


def test_a_random_split_is_what_it_always_was():
    folders = read_class_folders(make_zip(people_files()), 8, 3)
    train, val, _ = split_indices(folders, "random", 0.2, seed=0)
    expected = stratified_split(folders.dataset.y, folders.dataset.classes, 0.2, 0)
    np.testing.assert_array_equal(train, expected[0])
    np.testing.assert_array_equal(val, expected[1])
    assert person_of(folders, train) & person_of(folders, val), "frames of one person leak across a random split"


def test_group_split_targets_each_class_and_keeps_a_training_image():
    # class 0: groups a (3 images), b (3), c (4); class 1: only in group d, so it cannot be validated
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    groups = np.array(list("aaabbbcccc") + ["d"] * 3)
    for seed in range(6):
        train, val = group_split(y, groups, 2, 0.3, seed)
        assert set(groups[val]) in ({"a"}, {"b"}), "3 of 10 images of class 0; class 1 stays in training"
        assert set(groups[train]) >= {"c", "d"}
    # two groups of one class: one goes to validation, never both
    train, val = group_split(np.array([0, 0, 1, 1]), np.array(["a", "b", "c", "d"]), 2, 0.9, 0)
    assert len(train) == 2 and len(val) == 2 and set(np.array([0, 0, 1, 1])[train]) == {0, 1}


def test_names_group_by_the_text_before_the_first_separator():
    groups, unmatched = name_groups(["happy/anna_smith_001.jpg", "sad/anna_002.png", "x/bob-1.png", "bob_3.jpg"], "_")
    assert groups.tolist() == ["anna", "anna", "bob-1", "bob"] and unmatched == 1
    assert name_groups(["a/p1 - 001.jpg", "b/p2 - 7.jpg"], " - ")[0].tolist() == ["p1", "p2"]


@pytest.mark.parametrize("separator", ["", "/", "a\\b", "\n", "x" * 9, "\x00"])
def test_a_separator_that_cannot_split_names_is_refused(separator):
    with pytest.raises(DatasetError) as info:
        name_groups(["happy/anna_1.png"], separator)
    assert info.value.key == "split_err_separator" and info.value.message("zh") != str(info.value)


def test_a_separator_is_plain_text_never_a_pattern():
    """What a visitor types is matched as text: a pattern that would backtrack for ever is just characters."""
    names = [f"happy/{'a' * 40}{index}.png" for index in range(200)]
    with pytest.raises(DatasetError) as info:
        name_groups(names, "(a+)+$")
    assert info.value.key == "split_err_no_match" and '"(a+)+$"' in str(info.value)


def split_error(files: dict[str, bytes], split: str, separator: str = "_") -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_class_folders(make_zip(files), 8, 3, split=split, separator=separator)
    assert info.value.message("zh") != str(info.value)
    return info.value


def test_bad_inputs_for_a_split_are_clear_errors():
    people = people_files(people=4)
    assert split_error(people, "prefix", "#").key == "split_err_no_match"
    one_person = {name.replace("person0", "person"): data for name, data in people.items() if "person00" in name}
    assert split_error(one_person, "prefix", "_").key == "split_err_one_group"
    assert "person" in str(split_error(one_person, "prefix", "n"))  # "perso" is everybody's group
    assert split_error(people, "folders").key == "split_err_no_val_folder"
    assert split_error(people, "by-luck").key == "split_err_rule"
    assert split_error(people | {"angry/": b""}, "random").key == "err_zip_empty_class"
    split = people_files(people=4, folder="train/") | {"val/happy/x_1.png": encode_png(coloured(8, 8, 1)),
                                                       "val/angry/x_2.png": encode_png(coloured(8, 8, 2))}
    assert split_error(split, "auto").key == "split_err_class_not_in_train"
    assert split_error(split | {"val/../../up.png": b""}, "auto").key == "err_zip_unsafe_path"


def folder_split_files() -> dict[str, bytes]:
    return (people_files(people=6, folder="data/train/") | people_files(people=2, folder="data/val/")
            | people_files(people=3, frames=1, classes=("sad",), folder="data/test/"))


def test_a_zip_with_val_and_test_folders_is_split_by_them():
    folders = read_class_folders(make_zip(folder_split_files()), 8, 3)
    assert folders.has_val_folder
    splits = load_class_folders(make_zip(folder_split_files()), 8, 3)  # "auto": the zip's own folders
    assert splits.classes == ("happiness", "sadness")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 12, 3)
    np.testing.assert_array_equal(splits.test.counts(), [0, 3])
    train, val, test = split_indices(folders, "folders")
    assert {folders.parts[i] for i in train} == {"train"} and {folders.parts[i] for i in val} == {"val"}
    assert {folders.parts[i] for i in test} == {"test"}
    # another rule splits train/ and val/ together; test/ stays the test set
    for rule in ("random", "prefix"):
        train, val, test = split_indices(folders, rule, 0.25, seed=1)
        assert len(train) + len(val) == 48 and {folders.parts[i] for i in test} == {"test"}


def test_a_class_without_validation_images_is_allowed_in_the_zips_split():
    files = people_files(people=3, folder="train/") | people_files(people=1, classes=("happy",), folder="val/")
    splits = load_class_folders(make_zip(files), 8, 3)
    np.testing.assert_array_equal(splits.val.counts(), [3, 0])


# --------------------------------------------------------------------------- the real FER2013


def test_fer2013_published_counts():
    path = fer2013_path()
    if path is None:
        pytest.skip("FACELAB_DATA_DIR is not set")
    if not path.exists():
        pytest.skip(f"no fer2013.npz in FACELAB_DATA_DIR ({path.parent})")
    splits = load_npz(path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (28709, 3589, 3589)
    assert splits.train.x.shape == (28709, 1, 48, 48) and splits.train.x.dtype == np.uint8
    counts = dict(zip(splits.classes, splits.train.counts().tolist()))
    assert counts == {"anger": 3995, "disgust": 436, "fear": 4097, "happiness": 7215, "neutral": 4965,
                      "sadness": 4830, "surprise": 3171}
    assert dict(zip(splits.classes, splits.test.counts().tolist()))["disgust"] == 55


def test_ferplus_published_counts():
    """The majority-label counts of the shared data README, unknown and not-a-face left out."""
    path = fer2013_path()
    if path is None or not path.with_name(FERPLUS_FILE).exists():
        pytest.skip("FER+ votes are not available: set FACELAB_DATA_DIR to the folder holding ferplus.npz")
    splits = load_npz(path, "ferplus")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (25059, 3199, 3152)
    counts = dict(zip(splits.classes, splits.test.counts().tolist()))
    assert counts == {"anger": 273, "contempt": 16, "disgust": 18, "fear": 83, "happiness": 893, "neutral": 1089,
                      "sadness": 384, "surprise": 396}


def test_data_file_resolves_every_spelling_to_one_path(tmp_path):
    (tmp_path / "fer2013.npz").write_bytes(b"")
    spellings = [str(tmp_path), f"{tmp_path}/", f"{tmp_path}/../{tmp_path.name}", f"  {tmp_path}  "]
    assert {data_file(s) for s in spellings} == {(tmp_path / "fer2013.npz").resolve()}
    assert data_file("") is None and data_file(str(tmp_path / "nothing")) is None


@pytest.mark.parametrize("folder", ["x" * 5000, "a\x00b", "/" + "d/" * 3000])
def test_a_folder_that_cannot_exist_is_a_dataset_error(folder):
    with pytest.raises(DatasetError) as info:
        data_file(folder)
    assert info.value.key == "err_data_folder_bad" and info.value.message("zh") != str(info.value)
