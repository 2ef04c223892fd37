"""Training data: FER2013 from an .npz (with its own labels or FER+ votes), or a user's zip or folder
of class folders.

Images are kept in memory as one uint8 array (N, C, H, W); batches are converted to the
network's input on the training device.

A class-folder data set is split into training and validation images in one of three ways
(`SPLIT_RULES`): at random within each class; by groups of files whose names share a prefix (one
person, one video), so that no group straddles the split; or by the archive's own val/ folder.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.archive import MAX_FILES, ClassArchive, read_class_zip
from core.classes import EXPRESSION_KEYS, FER2013_KEYS, expression_key
from core.errors import DatasetError
from core.settings import settings

SPLIT_RULES = ("random", "prefix", "folders")
MAX_SEPARATOR = 8
FER2013_FILE = "fer2013.npz"
FERPLUS_FILE = "ferplus.npz"  # FER+ votes, row by row beside fer2013.npz
NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val")
LABEL_SOURCES = ("fer2013", "ferplus")


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # uint8, (N, C, H, W)
    y: np.ndarray  # int64 class indices
    classes: tuple[str, ...]
    targets: np.ndarray | None = None  # float32 (N, classes) label distributions (FER+ votes), else None

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=len(self.classes))

    def subset(self, indices: np.ndarray) -> Dataset:
        targets = self.targets[indices] if self.targets is not None else None
        return Dataset(self.x[indices], self.y[indices], self.classes, targets)


@dataclass(frozen=True)
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset | None
    source: str

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes


def data_dir() -> Path | None:
    """The server's data folder (the FACELAB_DATA_DIR setting), if set."""
    value = settings().data_dir
    return Path(value).expanduser() if value else None


def data_file(folder: str, name: str = FER2013_FILE) -> Path | None:
    """`name` inside a folder typed by a person, or None when it is not there. A folder that cannot
    exist (a name too long, a NUL byte) is a DatasetError, not an OSError. The path is resolved, so
    every spelling of one folder is one cache entry."""
    if not folder.strip():
        return None
    try:
        path = (Path(folder.strip()).expanduser() / name).resolve()
        return path if path.is_file() else None
    except (OSError, ValueError, RuntimeError):
        raise DatasetError("err_data_folder_bad") from None


def fer2013_path(folder: Path | None = None) -> Path | None:
    folder = folder if folder is not None else data_dir()
    return folder / FER2013_FILE if folder is not None else None


def _fer_split(data: np.lib.npyio.NpzFile, split: str, remap: np.ndarray) -> Dataset:
    x = np.asarray(data[f"x_{split}"])
    y = np.asarray(data[f"y_{split}"]).astype(np.int64)
    if x.dtype != np.uint8 or x.ndim != 3 or len(x) != len(y) or y.min(initial=0) < 0 or y.max(initial=0) >= len(remap):
        raise DatasetError("err_data_bad_npz", path=split)
    return Dataset(np.ascontiguousarray(x[:, None]), remap[y], FER2013_KEYS)


def ferplus_labels(votes: np.ndarray, columns: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER+ votes as (rows kept, majority labels, vote distributions) over our 8 expressions.

    The "majority" rule of FER+ `src/ferplus.py`: single votes are dropped as outliers, and a row's
    label is the column with more than half of the remaining votes. Rows whose label would be
    unknown, not-a-face or no label at all are left out, as FER+ training does. The distribution
    is the remaining emotion votes, normalised: the soft target of FER+'s "probability" mode.
    """
    counted = np.where(votes > 1, votes, 0).astype(np.float32)
    majority = counted.argmax(axis=1)
    labelled = counted.max(axis=1) > counted.sum(axis=1) / 2
    emotion_columns = [columns.index(key) for key in EXPRESSION_KEYS]
    keep = np.flatnonzero(labelled & np.isin(majority, emotion_columns))
    emotions = counted[keep][:, emotion_columns]
    return keep, emotions.argmax(axis=1).astype(np.int64), emotions / emotions.sum(axis=1, keepdims=True)


def _ferplus_splits(splits: Splits, path: Path) -> Splits:
    """Replace FER2013's labels by FER+ votes read from `path` (rows aligned to fer2013.npz)."""
    if not path.exists():
        raise DatasetError("err_data_ferplus_missing", file=path.name)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        raise DatasetError("err_data_bad_ferplus", file=path.name) from None

    def relabelled(split: str, dataset: Dataset | None) -> Dataset | None:
        if dataset is None:
            return None
        votes = np.asarray(data[f"votes_{split}"]) if f"votes_{split}" in data else np.zeros(0)
        if votes.dtype.kind not in "iu" or votes.shape != (len(dataset), len(columns)) or \
                any(name not in columns for name in EXPRESSION_KEYS):
            raise DatasetError("err_data_bad_ferplus", file=path.name)
        keep, y, targets = ferplus_labels(votes, columns)
        return Dataset(dataset.x[keep], y, EXPRESSION_KEYS, targets)

    with data:
        columns = [str(name) for name in data["columns"]] if "columns" in data else []
        return Splits(relabelled("train", splits.train), relabelled("val", splits.val),
                      relabelled("test", splits.test), splits.source)


def load_npz(path: str | Path, labels: str = "fer2013") -> Splits:
    """FER2013-style splits; labels are remapped from the file's class order to ours. With
    labels="ferplus", the labels are FER+ votes from ferplus.npz in the same folder."""
    if labels not in LABEL_SOURCES:
        raise DatasetError("err_data_labels", labels=labels, known=", ".join(LABEL_SOURCES))
    path = Path(path)
    if not path.exists():
        raise DatasetError("err_data_missing", path=str(path))
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        raise DatasetError("err_data_bad_npz", path=str(path)) from None
    with data:
        if any(key not in data for key in NPZ_KEYS + ("classes",)):
            raise DatasetError("err_data_bad_npz", path=str(path))
        keys = [expression_key(str(name)) for name in data["classes"]]
        if None in keys or sorted(keys) != sorted(FER2013_KEYS):
            raise DatasetError("err_data_bad_npz", path=str(path))
        remap = np.array([FER2013_KEYS.index(key) for key in keys], dtype=np.int64)
        test = _fer_split(data, "test", remap) if "x_test" in data else None
        splits = Splits(_fer_split(data, "train", remap), _fer_split(data, "val", remap), test, str(path))
    return _ferplus_splits(splits, path.with_name(FERPLUS_FILE)) if labels == "ferplus" else splits


def to_input(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Any RGB or grey image as (channels, size, size) uint8: centre square, then resize."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top:top + side, left:left + side]
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    if channels == 1:
        grey = resized if resized.ndim == 2 else cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
        return grey[None]
    rgb = resized if resized.ndim == 3 else cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _class_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """Expression folders (happy, Happiness, ...) map to our keys and order; other names stay."""
    keys = [expression_key(name) for name in names]
    if None not in keys and len(set(keys)) == len(keys):
        return tuple(key for key in EXPRESSION_KEYS if key in keys)
    return names


def dataset_from_archive(archive: ClassArchive, size: int, channels: int) -> Dataset:
    classes = _class_order(archive.classes)
    keyed = {name: (expression_key(name) if classes != archive.classes else name) for name in archive.classes}
    x = np.stack([to_input(item.image, size, channels) for item in archive.images])
    y = np.array([classes.index(keyed[item.label]) for item in archive.images], dtype=np.int64)
    return Dataset(x, y, classes)


def held_out_count(count: int, val_fraction: float) -> int:
    """How many of a class's `count` images validation should hold: `val_fraction` of them, at least one,
    leaving at least one for training."""
    return min(max(1, round(count * val_fraction)), count - 1)


def stratified_split(y: np.ndarray, classes: tuple[str, ...], val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation images: `val_fraction` of each class held out (at least one
    image), keeping at least one for training."""
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for label, count in enumerate(np.bincount(y, minlength=len(classes))):
        if count < 2:
            raise DatasetError("err_data_too_small", name=classes[label], count=int(count), minimum=2)
        indices = rng.permutation(np.flatnonzero(y == label))
        held = held_out_count(count, val_fraction)
        val_parts.append(indices[:held])
        train_parts.append(indices[held:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def name_groups(names: list[str] | tuple[str, ...], separator: str) -> tuple[np.ndarray, int]:
    """Each file's group: its name (without folders and suffix) up to the first `separator`, so
    `anna_003.jpg` is in group `anna`; and how many names lack the separator (each is a group of its own).

    The separator is plain text, not a pattern, so any text a visitor types is safe to match."""
    if not 1 <= len(separator) <= MAX_SEPARATOR or any(c in "/\\" or not c.isprintable() for c in separator):
        raise DatasetError("split_err_separator", limit=MAX_SEPARATOR)
    stems = [posixpath.splitext(posixpath.basename(name))[0] for name in names]
    unmatched = sum(separator not in stem for stem in stems)
    if unmatched == len(stems):
        raise DatasetError("split_err_no_match", separator=separator)
    return np.array([stem.split(separator, 1)[0] for stem in stems]), unmatched


def group_split(y: np.ndarray, groups: np.ndarray, n_classes: int, val_fraction: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation images, holding out whole groups only.

    Groups are held out one at a time: each time one that brings every class's validation count
    closest to its target (`held_out_count`, by a chi-square-like distance; the seed picks among those
    within 10 % of the closest), as long as that helps and leaves every class a training image. Groups
    with the same images per class are alike to this rule, so it weighs each kind of group once and
    takes the groups of a kind in a random order. A class whose images are all one group gets no
    validation images."""
    keys, group_of = np.unique(groups, return_inverse=True)
    if len(keys) < 2:
        raise DatasetError("split_err_one_group", group=str(keys[0]))
    rng = np.random.default_rng(seed)
    row = np.argsort(rng.permutation(len(keys)))[group_of]  # groups in a random order
    per_group = np.zeros((len(keys), n_classes), np.int64)
    np.add.at(per_group, (row, y), 1)
    kinds, kind_of = np.unique(per_group, axis=0, return_inverse=True)
    available, taken = np.bincount(kind_of, minlength=len(kinds)), np.zeros(len(kinds), np.int64)
    counts = per_group.sum(axis=0)
    target = np.array([held_out_count(count, val_fraction) if count >= 2 else 0 for count in counts])
    scale = np.maximum(target, 1)
    held, distance = np.zeros(n_classes, np.int64), float(((target ** 2) / scale).sum())
    while True:
        trial = held + kinds
        cost = (((trial - target) ** 2) / scale).sum(axis=1)
        cost[(taken == available) | np.any((trial >= counts) & (kinds > 0), axis=1)] = np.inf
        best = int((cost * rng.uniform(1, 1.1, len(cost))).argmin())
        if cost[best] >= distance:
            break
        held, distance, taken[best] = trial[best], float(cost[best]), taken[best] + 1
    by_kind = np.argsort(kind_of, kind="stable")  # rows of each kind, in the random order
    rank = np.empty(len(keys), np.int64)
    rank[by_kind] = np.arange(len(keys)) - np.repeat(np.cumsum(available) - available, available)
    chosen = rank < taken[kind_of]
    return np.flatnonzero(~chosen[row]), np.flatnonzero(chosen[row])


@dataclass(frozen=True)
class ClassFolders:
    """A zip or folder of class folders at the network's input size, before it is split: each image's
    path in the archive, and the split folder it came from (train, val or test; train when it has none)."""

    dataset: Dataset
    names: tuple[str, ...]
    parts: np.ndarray  # str, one per image
    source: str

    @property
    def has_val_folder(self) -> bool:
        return bool(np.any(self.parts == "val"))

    def splits(self, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Splits:
        """The data set's images at these indices as training, validation and (when any) test sets."""
        return Splits(self.dataset.subset(train), self.dataset.subset(val),
                      self.dataset.subset(test) if len(test) else None, self.source)


def split_indices(folders: ClassFolders, split: str = "auto", val_fraction: float = 0.2, seed: int = 0,
                  separator: str = "_") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the training, validation and test images by one of `SPLIT_RULES`; "auto" is the
    archive's val/ folder when it has one, else random. A test/ folder is always the test set, never
    trained on. With "random" or "prefix", a val/ folder's images join the pool that the rule splits."""
    rule = ("folders" if folders.has_val_folder else "random") if split == "auto" else split
    if rule not in SPLIT_RULES:
        raise DatasetError("split_err_rule", rule=split, known=", ".join(SPLIT_RULES))
    parts, test = folders.parts, np.flatnonzero(folders.parts == "test")
    if rule == "folders":
        if not folders.has_val_folder:
            raise DatasetError("split_err_no_val_folder")
        return np.flatnonzero(parts == "train"), np.flatnonzero(parts == "val"), test
    pool = np.flatnonzero(parts != "test")
    labels, classes = folders.dataset.y[pool], folders.dataset.classes
    if rule == "random":
        train, val = stratified_split(labels, classes, val_fraction, seed)
    else:
        groups, _ = name_groups([folders.names[index] for index in pool], separator)
        train, val = group_split(labels, groups, len(classes), val_fraction, seed)
    return pool[train], pool[val], test


def group_counts(folders: ClassFolders, train: np.ndarray, val: np.ndarray, separator: str) -> tuple[int, int, int]:
    """How many file-name groups (see `name_groups`) the training and the validation images hold, and how
    many of their names lack the separator."""
    groups, unmatched = name_groups([folders.names[index] for index in np.concatenate([train, val])], separator)
    return len(np.unique(groups[:len(train)])), len(np.unique(groups[len(train):])), unmatched


def subsample(dataset: Dataset, per_class: int, seed: int) -> Dataset:
    """At most `per_class` images of each class, for quick demonstrations."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(dataset.y == label))[:per_class] for label in range(len(dataset.classes))]
    return dataset.subset(np.sort(np.concatenate(keep)))


def _folder_archive(folder: Path) -> ClassArchive:
    """A folder of class folders read like an uploaded zip, with the same checks."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
            elif path.is_dir():
                archive.writestr(path.relative_to(folder).as_posix() + "/", b"")
    return read_class_zip(buffer.getvalue())


def read_class_folders(source: str | Path | bytes, size: int, channels: int,
                       max_files: int = MAX_FILES) -> ClassFolders:
    """A zip (path or bytes) or folder of class folders, read in memory, at the network's input size."""
    if isinstance(source, (bytes, bytearray)):
        archive, name = read_class_zip(bytes(source), max_files=max_files), "upload.zip"
    else:
        path = Path(source)
        if not path.exists():
            raise DatasetError("err_data_missing", path=str(path))
        archive = _folder_archive(path) if path.is_dir() else read_class_zip(path.read_bytes(), max_files=max_files)
        name = str(path)
    return ClassFolders(dataset_from_archive(archive, size, channels), tuple(item.name for item in archive.images),
                        np.array([item.part for item in archive.images]), name)


def load_class_folders(source: str | Path | bytes, size: int, channels: int, val_fraction: float = 0.2,
                       seed: int = 0, max_files: int = MAX_FILES, split: str = "auto", separator: str = "_") -> Splits:
    """A zip (path or bytes) or folder of class folders, split by `split` (see `split_indices`)."""
    folders = read_class_folders(source, size, channels, max_files)
    return folders.splits(*split_indices(folders, split, val_fraction, seed, separator))


def load_data(source: str | Path | bytes, size: int, channels: int, val_fraction: float = 0.2,
              seed: int = 0, labels: str = "fer2013", split: str = "auto", separator: str = "_") -> Splits:
    """An .npz (FER2013 layout, with its own labels or FER+ votes, and its own splits) or a zip/folder of
    class folders, split by `split` (see `split_indices`)."""
    if isinstance(source, (str, Path)) and str(source).endswith(".npz"):
        return load_npz(source, labels)
    if labels != "fer2013":
        raise DatasetError("err_data_labels_npz" if labels in LABEL_SOURCES else "err_data_labels", labels=labels,
                           known=", ".join(LABEL_SOURCES))
    return load_class_folders(source, size, channels, val_fraction, seed, split=split, separator=separator)


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights with mean 1 over present classes (rare classes count more)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = 1.0 / counts[present]
    weights[present] /= weights[present].mean()
    return weights


def sample_weights(labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-image weights for a sampler that draws every class equally often."""
    return 1.0 / np.asarray(counts, dtype=np.float64)[labels]
