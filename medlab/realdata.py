"""Read real public datasets in the formats they are published in, once they are on disk.

| layout | on disk | read with |
|---|---|---|
| MedMNIST | one ``<name>.npz`` with ``train_images``, ``train_labels``, ``val_*``, ``test_*`` | :func:`find_medmnist`, :func:`load_medmnist`, :class:`MedMNISTDataset` |
| MedNIST | ``root/<Class>/*.jpeg``, one folder per class | :func:`mednist_items`, :class:`MedNISTDataset` |
| Medical Segmentation Decathlon | ``dataset.json``, ``imagesTr/``, ``labelsTr/``, ``imagesTs/`` | :func:`decathlon_items`, :class:`DecathlonDataset` |
| DICOM studies | folders of ``.dcm`` files, one series each | :func:`dicom_series_folders`, then :func:`medlab.dicom.read_series` |
| ISBI 2012 EM membranes | ``image/N.png`` and ``label/N.png``, one pair per section | :func:`load_isbi2012` |

:func:`medlab.registry.fetch` downloads these; nothing here touches the network. Every
Dataset serves dictionaries with MONAI's keys: ``"image"``, channel-first float32 scaled as
documented on the class, and ``"label"``; its ``transform``, if given, is applied to that
dictionary (a MONAI dictionary transform such as ``ScaleIntensityd(keys="image")``, or any
function of the dict).

MONAI has readers for MedNIST and the Decathlon too (``monai.apps.MedNISTDataset`` and
``DecathlonDataset`` with ``download=False``). They are not used here because they also split
the data themselves (a seeded ``val_frac`` of the training list) and expect MONAI's own folder
names under a root, where the labs need the published splits, a folder a learner points to, and
errors that name the damaged file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from medlab.errors import reason

MEDMNIST_SPLITS = ("train", "val", "test")
"""The splits a MedMNIST ``.npz`` file holds, as its publishers name them."""

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
"""File endings :func:`mednist_items` treats as images (case-insensitive)."""

DECATHLON_SECTIONS = ("training", "validation", "test")
"""Lists a Decathlon ``dataset.json`` may hold: ``training`` and ``test`` as published
(``test`` has images only); ``validation`` where a user has added one."""


class DataError(ValueError):
    """A dataset file or folder cannot be used; the message names it and the problem."""


def _hidden(path: Path) -> bool:
    """Hidden files and folders, macOS's ``._*`` copies among them, are never data."""
    return path.name.startswith(".") or path.name == "__MACOSX"


# --- MedMNIST ------------------------------------------------------------------------------


def load_medmnist(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of a MedMNIST ``.npz`` file.

    ``split`` is ``"train"``, ``"val"`` or ``"test"``. Returns ``images``, uint8, shape
    ``(N, H, W)`` for grey sets or ``(N, H, W, 3)`` for colour ones, exactly as stored; and
    ``labels``, int64, shape ``(N,)`` (stored as ``(N, 1)``) or ``(N, K)`` for multi-label sets
    such as ChestMNIST, with one 0/1 column per finding.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp, "tiny.npz")
    ...     np.savez(f, **{f"{s}_{k}": np.zeros((2, 28, 28) if k == "images" else (2, 1), np.uint8)
    ...                    for s in MEDMNIST_SPLITS for k in ("images", "labels")})
    ...     images, labels = load_medmnist(f, "val")
    >>> images.shape, labels.shape, labels.dtype
    ((2, 28, 28), (2,), dtype('int64'))

    Taught in lab 04, section 1 (The target task, with few labels).
    """
    path = Path(path)
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, MEDMNIST_SPLITS))}, got {split!r}")
    if not path.is_file():
        raise FileNotFoundError(
            f"no MedMNIST file at {path}: download it with medlab.registry.fetch('pneumoniamnist') "
            "(or another MedMNIST name) and pass the path it returns"
        )
    keys = (f"{split}_images", f"{split}_labels")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in getattr(data, "files", [])]
            if missing:
                raise DataError(
                    f"{path} has no {' or '.join(missing)}: a MedMNIST file holds "
                    f"<split>_images and <split>_labels; this one holds {sorted(getattr(data, 'files', []))}"
                )
            images, labels = data[keys[0]], data[keys[1]]
    except DataError:
        raise
    except Exception as exc:  # numpy, zipfile and zlib raise many types on damaged files
        raise DataError(
            f"{path} is not a readable MedMNIST .npz file ({reason(exc)}): it may be truncated; "
            "download it again with medlab.registry.fetch"
        ) from exc
    if images.dtype != np.uint8 or not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise DataError(
            f"{path}: {keys[0]} is {images.dtype} {images.shape}; expected uint8 (N, H, W) or "
            "(N, H, W, 3) (3D MedMNIST volumes are not read here)"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim not in (1, 2) or len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} images but labels of shape {labels.shape}")
    return images, _class_labels(labels, path, keys[1])


def find_medmnist(data_dir: str | os.PathLike, name: str) -> Path:
    """The MedMNIST file for dataset ``name`` (such as ``"pneumoniamnist"``) in ``data_dir``.

    ``data_dir`` may be the ``.npz`` file itself, or a folder holding ``<name>.npz`` (the
    published 28 × 28 file) or exactly one ``<name>_<suffix>.npz`` (MedMNIST+ sizes such as
    ``pneumoniamnist_64.npz``, or a local copy such as ``pneumoniamnist_dev.npz``).

    Taught in lab 04, section 1 (The target task, with few labels).
    """
    path = Path(data_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(
            f"DATA_DIR {path} does not exist: point it at the folder holding {name}.npz "
            f"(download it with medlab.registry.fetch({name!r}))"
        )
    exact = path / f"{name}.npz"
    if exact.is_file():
        return exact
    candidates = sorted(p for p in path.glob(f"{name}_*.npz") if p.is_file() and not _hidden(p))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise DataError(
            f"{path} holds several {name} files ({', '.join(p.name for p in candidates)}): "
            "set DATA_DIR to the one to use"
        )
    raise FileNotFoundError(
        f"no {name}.npz in {path} (it holds {', '.join(sorted(p.name for p in path.glob('*.npz'))) or 'no .npz files'}): "
        f"download it with medlab.registry.fetch({name!r}) and point DATA_DIR at its folder"
    )


def _class_labels(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    """``labels`` as int64, refusing values that are not whole non-negative numbers."""
    if labels.dtype == bool or np.issubdtype(labels.dtype, np.integer):
        bad = labels < 0
    elif np.issubdtype(labels.dtype, np.floating):
        bad = ~np.isfinite(labels) | (labels < 0) | (labels != np.round(labels)) | (labels >= 2**31)
    else:
        raise DataError(f"{path}: {key} is {labels.dtype}; MedMNIST labels are whole numbers")
    if bad.any():
        first = labels[np.nonzero(bad)][0]
        raise DataError(
            f"{path}: {key} holds {int(bad.sum())} value(s) that are not class numbers 0, 1, 2, ... "
            f"(the first is {first.item()!r}); the file is damaged or not a MedMNIST file"
        )
    return labels.astype(np.int64)


class MedMNISTDataset(Dataset):
    """One split of a MedMNIST ``.npz`` file as a torch Dataset.

    Item ``i`` is ``{"image", "label"}``: ``image`` float32 ``(C, H, W)`` in [0, 1] (C = 1 for
    grey sets, 3 for colour); ``label`` int64, a scalar, or ``(K,)`` for multi-label sets;
    ``transform``, if given, is applied to the dict. The whole split is held in memory (28x28
    sets are a few MB).
    """

    def __init__(self, path: str | os.PathLike, split: str, *, transform=None):
        self.path, self.split, self.transform = Path(path), split, transform
        self.images, self.labels = load_medmnist(path, split)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.images[index]).to(torch.float32) / 255.0
        image = image.permute(2, 0, 1) if image.ndim == 3 else image.unsqueeze(0)
        sample = {"image": image, "label": torch.as_tensor(self.labels[index])}
        return self.transform(sample) if self.transform is not None else sample


# --- MedNIST -------------------------------------------------------------------------------


def mednist_items(root: str | os.PathLike) -> tuple[list[tuple[Path, int]], list[str]]:
    """List the images of a class-per-folder dataset such as MedNIST (``root/<Class>/*.jpeg``).

    Returns ``items``, ``(path, label)`` pairs ordered by class then file name, and
    ``classes``, the folder names sorted as Python sorts text (so ``"CXR"`` comes before
    ``"ChestCT"``, as in MONAI's ``MedNISTDataset``); ``label`` indexes ``classes``.
    Images are files ending in :data:`IMAGE_SUFFIXES`; hidden files are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no folder at {root}: fetch MedNIST with medlab.registry.fetch('mednist'), or point "
            "to a folder holding one sub-folder of images per class"
        )
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not _hidden(p)), key=lambda p: p.name)
    if not folders:
        raise DataError(f"{root} has no class folders: expected {root}/<ClassName>/<image>.jpeg")
    items, classes = [], []
    for label, folder in enumerate(folders):
        files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and not _hidden(p) and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}): "
                "remove it or finish unpacking the dataset"
            )
        classes.append(folder.name)
        items.extend((f, label) for f in files)
    return items, classes


class MedNISTDataset(Dataset):
    """A class-per-folder image dataset such as MedNIST as a torch Dataset.

    Item ``i`` is ``{"image", "label"}``: ``image`` float32 ``(1, H, W)`` in [0, 1] (read with
    Pillow and converted to grey; MedNIST images are 64x64); ``label`` an int64 scalar indexing
    :attr:`classes`; ``transform``, if given, is applied to the dict.
    """

    def __init__(self, root: str | os.PathLike, *, transform=None):
        self.root, self.transform = Path(root), transform
        self.items, self.classes = mednist_items(root)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.items[index]
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError
            raise DataError(
                f"{path} is not a readable image ({reason(exc)}): it may be truncated; fetch the "
                "dataset again or delete the file"
            ) from exc
        sample = {"image": torch.from_numpy(pixels).unsqueeze(0), "label": torch.tensor(label, dtype=torch.int64)}
        return self.transform(sample) if self.transform is not None else sample


# --- Medical Segmentation Decathlon -------------------------------------------------------


def _dataset_json(root: Path) -> Path:
    path = root / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no dataset.json in {root}: point to the task folder (e.g. Task04_Hippocampus/, which "
            "holds dataset.json, imagesTr/ and labelsTr/), or fetch one with medlab.registry.fetch"
        )
    return path


def _json_entry(path: Path, key: str):
    """The value under ``key`` in a ``dataset.json`` (read by MONAI), or ``None`` if absent."""
    from monai.data import load_decathlon_properties

    try:
        return load_decathlon_properties(path, key)[key]
    except KeyError:
        return None
    except Exception as exc:  # not JSON, not UTF-8, or not a JSON object
        raise DataError(f"{path} is not a valid dataset.json ({reason(exc)}); fetch the task again") from None


def _inside_task(listed: Path, root: Path, dataset_json: Path) -> None:
    """Refuse a listed path that leads out of the task folder (``../``, an absolute path, a link)."""
    task = root.resolve()
    if not listed.resolve().is_relative_to(task):
        raise DataError(
            f"{dataset_json} lists {listed}, which lies outside the task folder {task}: a dataset.json "
            "names files inside its own folder only; this one is damaged or not trustworthy"
        )


def decathlon_properties(root: str | os.PathLike) -> dict:
    """The metadata of a Decathlon task's ``dataset.json`` that is present among ``name``,
    ``description``, ``reference``, ``licence``, ``tensorImageSize``, ``modality``, ``labels``,
    ``numTraining`` and ``numTest`` (``labels`` maps label values, as text, to names)."""
    path = _dataset_json(Path(root))
    found = {}
    for key in ("name", "description", "reference", "licence", "tensorImageSize", "modality",
                "labels", "numTraining", "numTest"):
        value = _json_entry(path, key)
        if value is not None:
            found[key] = value
    return found


def decathlon_items(root: str | os.PathLike, section: str = "training") -> list[dict[str, Path]]:
    """The cases listed in a Decathlon task's ``dataset.json``, with checked paths.

    ``section`` is ``"training"`` (each item ``{"image": Path, "label": Path}``), ``"test"``
    (``{"image": Path}``; the published test set has no labels) or ``"validation"``. Paths are
    resolved against ``root`` by MONAI's ``load_decathlon_datalist``; every file must exist.
    """
    from monai.data import load_decathlon_datalist

    root = Path(root)
    path = _dataset_json(root)
    listed = _json_entry(path, section)
    if listed is None:
        present = [s for s in DECATHLON_SECTIONS if _json_entry(path, s) is not None]
        raise DataError(
            f"{path} has no {section!r} list; it has "
            + (", ".join(map(repr, present)) if present else f"none of {', '.join(DECATHLON_SECTIONS)}")
        )
    if not listed:
        return []
    if not isinstance(listed, list) or not all(isinstance(e, (dict, str)) for e in listed):
        raise DataError(f"{path}: {section!r} must be a list of entries such as "
                        '{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}')
    try:
        raw = load_decathlon_datalist(path, is_segmentation=True, data_list_key=section, base_dir=root)
    except Exception as exc:  # MONAI raises KeyError, TypeError, ValueError on malformed entries
        raise DataError(f"{path}: the {section!r} list cannot be read ({reason(exc)}); fetch the task again") from None
    items = []
    for entry in raw:
        item = {k: Path(entry[k]) for k in ("image", "label") if isinstance(entry.get(k), (str, os.PathLike))}
        if "image" not in item or (section != "test" and "label" not in item):
            raise DataError(f"{path}: an entry of {section!r} lacks an image or label: {entry}")
        for listed_path in item.values():
            _inside_task(listed_path, root, path)
        items.append(item)
    missing = [p for item in items for p in item.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} lists {missing[0]}, which does not exist ({len(missing)} listed file(s) missing): "
            "the download or extraction may be incomplete; fetch the task again"
        )
    return items


class DecathlonDataset(Dataset):
    """One section of a Medical Segmentation Decathlon task as a torch Dataset.

    Item ``i`` is a dict:

    - ``image``: float32 ``(C, z, y, x)`` in the file's units (CT in HU; MRI arbitrary),
      C = 1 for single-modality tasks, else one channel per modality;
    - ``label``: int64 ``(1, z, y, x)`` of label values (see :func:`decathlon_properties`);
      absent for the ``test`` section;
    - ``spacing``: float64 ``(3,)``, voxel size along ``(z, y, x)`` in mm;
    - ``case``: the image's file name without ``.nii.gz``.

    Axes are the stored voxel axes reversed (nibabel reads ``(x, y, z)``), matching MedLab's
    ``(z, y, x)`` for DICOM series; volumes are not reoriented, so "z" is the file's third
    axis. ``transform``, if given, is applied to the dict. Volumes are read on access, with
    :func:`medlab.io.load_nifti`.
    """

    def __init__(self, root: str | os.PathLike, section: str = "training", *, transform=None):
        self.root, self.section, self.transform = Path(root), section, transform
        self.items = decathlon_items(root, section)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        from medlab.io import load_nifti

        item = self.items[index]
        image, spacing, _ = load_nifti(item["image"], channel_first=True)
        name = item["image"].name
        sample = {
            "image": torch.from_numpy(image),
            "spacing": torch.tensor(spacing, dtype=torch.float64),
            "case": name[:-7] if name.endswith(".nii.gz") else Path(name).stem,
        }
        if "label" in item:
            label, _, _ = load_nifti(item["label"])
            if label.shape != image.shape[1:]:
                raise DataError(
                    f"{item['label']} has shape (z, y, x) {label.shape} but {item['image']} has "
                    f"{image.shape[1:]}: the pair does not match"
                )
            sample["label"] = torch.from_numpy(np.rint(label).astype(np.int64)[None])
        if self.transform is not None:
            sample = self.transform(sample)
        return sample


# --- DICOM studies -----------------------------------------------------------------------


def dicom_series_folders(root: str | os.PathLike) -> list[Path]:
    """Every folder at or under ``root`` that directly holds files, sorted by path.

    A cheap scan for folders of DICOM studies (one series per folder, as most archives
    export them): no file is opened. Hidden files and ``DICOMDIR`` index files do not count.
    Read each folder with :func:`medlab.dicom.read_series`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder at {root}: pass the folder that holds the DICOM studies")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        if any(not f.startswith(".") and f.upper() != "DICOMDIR" for f in files):
            found.append(Path(folder))
    return sorted(found)


# --- ISBI 2012 EM membranes ---------------------------------------------------------------


ISBI2012_LABEL_VALUES = (0, 255)
"""The values of an ISBI 2012 label image: 0 on membranes, 255 inside cells."""


def load_isbi2012(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The serial electron-microscopy sections of the ISBI 2012 membrane challenge, with their
    membrane masks (Cardona et al., PLoS Biol 2010; Arganda-Carreras et al., Front. Neuroanat.
    2015; the data of Ronneberger et al.'s U-Net, 2015).

    ``folder`` holds ``image/N.png`` and ``label/N.png`` for N = 0, 1, 2, ... (the training
    stack as the U-Net's public re-implementations share it): 8-bit grey PNGs, all of one size,
    each label 255 inside cells and 0 on membranes. Returns, in section order (by N, so ``10.png``
    comes after ``9.png``):

    - ``images``: uint8 ``(N, H, W)``, the stored grey values (the published sections are
      512 × 512 pixels of 4 × 4 nm, cut 50 nm apart);
    - ``membranes``: bool ``(N, H, W)``, True on membrane pixels (label 0).

    A missing or extra label, a gap in the numbering, a file that is not an 8-bit grey PNG,
    sizes that differ, or label values other than 0 and 255 raise :class:`DataError` naming the
    file. Pillow reads the files; the folder layout is not one MONAI or torchvision reads.

    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for kind in ("image", "label"):
    ...         pathlib.Path(tmp, kind).mkdir()
    ...         for n in range(2):
    ...             Image.fromarray(np.full((4, 6), 255 if kind == "label" else 90, np.uint8)).save(
    ...                 pathlib.Path(tmp, kind, f"{n}.png"))
    ...     images, membranes = load_isbi2012(tmp)
    >>> images.shape, images.dtype, membranes.dtype, int(membranes.sum())
    ((2, 4, 6), dtype('uint8'), dtype('bool'), 0)

    Taught in lab 05, section 1 (The task: lungs and heart on chest radiographs).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no folder at {folder}: point to the folder that holds image/0.png ... and label/0.png ... "
            "of the ISBI 2012 training stack"
        )
    images, labels = _isbi2012_files(folder, "image"), _isbi2012_files(folder, "label")
    unmatched = sorted(set(images) ^ set(labels))
    if unmatched:
        present, absent = ("image", "label") if unmatched[0] in images else ("label", "image")
        name = f"{unmatched[0]}.png"
        raise DataError(f"{folder / present / name} has no {absent}: {folder / absent / name} is missing")
    numbers = sorted(images)
    if numbers != list(range(len(numbers))):
        gap = next(n for n in range(len(numbers)) if n not in images)
        raise DataError(f"{folder / 'image'} holds sections {numbers[0]} to {numbers[-1]} but not {gap}.png: "
                        "the sections are numbered 0, 1, 2, ... without gaps")
    paths = [images[n] for n in numbers] + [labels[n] for n in numbers]
    pixels = [_isbi2012_png(path) for path in paths]
    for path, array in zip(paths, pixels):
        if array.shape != pixels[0].shape:
            raise DataError(f"{path} is {array.shape[0]} × {array.shape[1]} pixels but {paths[0]} is "
                            f"{pixels[0].shape[0]} × {pixels[0].shape[1]}: every section and label has the same size")
    for path, label in zip(paths[len(numbers):], pixels[len(numbers):]):
        odd = np.setdiff1d(np.unique(label), ISBI2012_LABEL_VALUES)
        if odd.size:
            raise DataError(f"{path} holds values {odd[:5].tolist()}{' ...' if odd.size > 5 else ''}: "
                            "an ISBI 2012 label is 0 on membranes and 255 inside cells, nothing else")
    return np.stack(pixels[:len(numbers)]), np.stack(pixels[len(numbers):]) == 0


def _isbi2012_files(folder: Path, kind: str) -> dict[int, Path]:
    """``{N: path}`` of ``folder/kind/N.png``; any other visible file there is an error."""
    sub = folder / kind
    if not sub.is_dir():
        raise DataError(f"{folder} has no {kind}/ folder: the ISBI 2012 layout is image/N.png and label/N.png")
    found = {}
    for path in sorted(p for p in sub.iterdir() if not _hidden(p)):
        if not (path.is_file() and path.suffix.lower() == ".png" and path.stem.isdigit()):
            raise DataError(f"{path} does not belong in {sub}: it should hold only the sections, named 0.png, 1.png, ...")
        if int(path.stem) in found:
            raise DataError(f"{path} and {found[int(path.stem)]} are both section {int(path.stem)}: keep one")
        found[int(path.stem)] = path
    if not found:
        raise DataError(f"{sub} holds no sections: expected 0.png, 1.png, ...")
    return found


def _isbi2012_png(path: Path) -> np.ndarray:
    """The pixels of an 8-bit grey PNG, uint8 ``(H, W)``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            kind, mode = img.format, img.mode
            pixels = np.asarray(img) if kind == "PNG" and mode == "L" else None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError
        raise DataError(f"{path} is not a readable image ({reason(exc)}): it may be truncated; copy it again") from exc
    if kind != "PNG":
        raise DataError(f"{path} is not a PNG (Pillow reads it as {kind}): the sections are stored as PNG files")
    if pixels is None:
        raise DataError(f"{path} is a PNG of mode {mode!r}; the sections and labels are 8-bit grey ('L')")
    return pixels
