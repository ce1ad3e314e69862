"""Damaged and hostile dataset files: a medlab error that names the file, never a wrong answer.

Named cases first (labels that are not classes, paths out of the task folder, damaged files),
then generated ones: byte flips and truncations of valid ``.npz``, ``dataset.json``, PNG/JPEG
and NIfTI files. Each either reads as before or raises :class:`medlab.realdata.DataError` /
:class:`medlab.io.NiftiError` (both ``ValueError``) whose message names the file.
"""

import io as stdio
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from medlab import io, realdata
from medlab.io import NiftiError
from medlab.realdata import DataError

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _npz(path: Path, labels) -> Path:
    arrays = {}
    for split in realdata.MEDMNIST_SPLITS:
        arrays[f"{split}_images"] = np.zeros((len(labels), 28, 28), np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels).reshape(len(labels), -1)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("labels, shown", [
    ([[0.5], [1.0], [0.0]], "0.5"), ([[0.0], [1.7], [1.0]], "1.7"), ([[0.0], [np.nan], [1.0]], "nan"),
    ([[-1], [0], [1]], "-1"), ([[0.0], [np.inf], [1.0]], "inf"),
])
def test_medmnist_labels_that_are_not_classes_are_refused(tmp_path, labels, shown):
    path = _npz(tmp_path / "odd.npz", labels)
    with pytest.raises(DataError, match=rf"odd\.npz: val_labels holds .* not class numbers .*{shown}"):
        realdata.load_medmnist(path, "val")


def test_whole_float_labels_are_read_as_classes(tmp_path):
    _, labels = realdata.load_medmnist(_npz(tmp_path / "float.npz", [[0.0], [1.0], [2.0]]), "test")
    assert labels.tolist() == [0, 1, 2] and labels.dtype == np.int64


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x93NUMPY not an archive", b"plain text"])
def test_a_damaged_npz_names_the_file(tmp_path, content):
    path = tmp_path / "damaged.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"damaged\.npz is not a readable MedMNIST \.npz file"):
        realdata.load_medmnist(path, "train")


def test_a_damaged_image_names_the_file(tmp_path):
    for cls in ("A", "B"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / cls / "0.jpeg")
    (tmp_path / "B" / "0.jpeg").write_bytes((tmp_path / "A" / "0.jpeg").read_bytes()[:20])
    ds = realdata.MedNISTDataset(tmp_path)
    assert ds[0]["image"].shape == (1, 8, 8)
    with pytest.raises(DataError, match=r"B/0\.jpeg is not a readable image"):
        ds[1]


def _task(root: Path, training) -> Path:
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros((4, 3, 2), np.int16), np.eye(4)), root / sub / "a.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"name": "Toy", "training": training}))
    return root


@pytest.mark.parametrize("image", ["../secret/x.nii.gz", "/etc/hostname", "./imagesTr/../../outside.nii.gz"])
def test_decathlon_paths_outside_the_task_folder_are_refused(tmp_path, image):
    (tmp_path / "secret").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2), np.int16), np.eye(4)), tmp_path / "secret" / "x.nii.gz")
    shutil.copy(tmp_path / "secret" / "x.nii.gz", tmp_path / "outside.nii.gz")
    root = _task(tmp_path / "Task01_Toy", [{"image": image, "label": "./labelsTr/a.nii.gz"}])
    with pytest.raises(DataError, match=r"dataset\.json lists .* outside the task folder"):
        realdata.decathlon_items(root)


def test_a_link_out_of_the_task_folder_is_refused(tmp_path):
    (tmp_path / "secret.nii.gz").write_bytes(b"")
    root = _task(tmp_path / "Task01_Toy", [{"image": "./imagesTr/link.nii.gz", "label": "./labelsTr/a.nii.gz"}])
    (root / "imagesTr" / "link.nii.gz").symlink_to(tmp_path / "secret.nii.gz")
    with pytest.raises(DataError, match="outside the task folder"):
        realdata.decathlon_items(root)


@pytest.mark.parametrize("training", [
    "not a list", [1, 2], [{"image": 3, "label": "./labelsTr/a.nii.gz"}], [{"label": "./labelsTr/a.nii.gz"}],
])
def test_malformed_decathlon_lists_are_named(tmp_path, training):
    root = _task(tmp_path / "Task01_Toy", training)
    with pytest.raises(DataError, match=r"dataset\.json"):
        realdata.decathlon_items(root)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"null"])
def test_a_damaged_dataset_json_is_named(tmp_path, content):
    root = _task(tmp_path / "Task01_Toy", [])
    (root / "dataset.json").write_bytes(content)
    with pytest.raises(DataError, match=r"dataset\.json"):
        realdata.decathlon_items(root)


# --- generated damage --------------------------------------------------------------------------


def _damage(data: bytes, draw) -> bytes:
    """Flip some bytes, then maybe truncate."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data[:cut] if cut is not None else data)


def _valid_npz() -> bytes:
    buffer = stdio.BytesIO()
    arrays = {f"{s}_{k}": (np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) if k == "images"
                           else np.array([[0], [1]], np.uint8))
              for s in realdata.MEDMNIST_SPLITS for k in ("images", "labels")}
    np.savez(buffer, **arrays)
    return buffer.getvalue()


NPZ = _valid_npz()


@SETTINGS
@given(data=st.data())
def test_damaged_npz_files_read_or_are_named(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("npz") / "fuzz.npz"
    path.write_bytes(_damage(NPZ, data.draw))
    try:
        images, labels = realdata.load_medmnist(path, "val")
    except DataError as exc:
        assert "fuzz.npz" in str(exc)
        return
    assert images.dtype == np.uint8 and images.ndim == 3 and labels.dtype == np.int64
    assert (labels >= 0).all() and len(labels) == len(images)


def _valid_nifti() -> bytes:
    image = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(5, 4, 3), np.diag([0.8, 0.9, 2.5, 1.0]))
    return image.to_bytes()


NIFTI = _valid_nifti()


@SETTINGS
@given(data=st.data(), gz=st.booleans())
def test_damaged_nifti_files_read_or_are_named(tmp_path_factory, data, gz):
    import gzip

    path = tmp_path_factory.mktemp("nii") / ("fuzz.nii.gz" if gz else "fuzz.nii")
    damaged = _damage(NIFTI, data.draw)
    path.write_bytes(gzip.compress(damaged) if gz and data.draw(st.booleans()) else
                     (_damage(gzip.compress(NIFTI), data.draw) if gz else damaged))
    try:
        volume, spacing, affine = io.load_nifti(path)
    except NiftiError as exc:
        assert "fuzz.nii" in str(exc)
        return
    assert volume.ndim == 3 and volume.size > 0 and volume.dtype == np.float32
    assert all(np.isfinite(spacing)) and min(spacing) > 0 and np.isfinite(affine).all()


@SETTINGS
@given(data=st.data())
def test_damaged_dataset_json_reads_or_is_named(tmp_path_factory, data):
    root = _task(tmp_path_factory.mktemp("task") / "Task01_Toy",
                 [{"image": "./imagesTr/a.nii.gz", "label": "./labelsTr/a.nii.gz"}])
    path = root / "dataset.json"
    path.write_bytes(_damage(path.read_bytes(), data.draw))
    try:
        items = realdata.decathlon_items(root)
    except DataError as exc:
        assert "dataset.json" in str(exc)
        return
    except FileNotFoundError as exc:  # a damaged name that points to no file is reported as missing
        assert "dataset.json" in str(exc) or "does not exist" in str(exc)
        return
    assert all(p.resolve().is_relative_to(root.resolve()) and p.is_file() for item in items for p in item.values())


def _valid_png() -> bytes:
    buffer = stdio.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _valid_png()


@SETTINGS
@given(data=st.data())
def test_damaged_images_read_or_are_named(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("mednist")
    (root / "A").mkdir()
    (root / "A" / "fuzz.png").write_bytes(_damage(PNG, data.draw))
    try:
        image = realdata.MedNISTDataset(root)[0]["image"]
    except DataError as exc:
        assert "fuzz.png" in str(exc)
        return
    assert image.ndim == 3 and image.shape[0] == 1 and float(image.min()) >= 0 and float(image.max()) <= 1
