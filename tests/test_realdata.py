import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from medlab import realdata

# --- MedMNIST -----------------------------------------------------------------------------


def write_medmnist(path: Path, *, colour=False, multilabel=False, drop=()) -> dict:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 5), ("val", 3), ("test", 4)):
        shape = (n, 28, 28, 3) if colour else (n, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 14) if multilabel else (n, 1), dtype=np.uint8)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if k not in drop})
    return arrays


def test_load_medmnist_returns_the_published_arrays(tmp_path):
    arrays = write_medmnist(tmp_path / "pneumoniamnist.npz")
    for split, n in (("train", 5), ("val", 3), ("test", 4)):
        images, labels = realdata.load_medmnist(tmp_path / "pneumoniamnist.npz", split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        np.testing.assert_array_equal(images, arrays[f"{split}_images"])
        np.testing.assert_array_equal(labels, arrays[f"{split}_labels"][:, 0])


def test_multilabel_sets_keep_one_column_per_finding(tmp_path):
    arrays = write_medmnist(tmp_path / "chestmnist.npz", multilabel=True)
    _, labels = realdata.load_medmnist(tmp_path / "chestmnist.npz", "val")
    assert labels.shape == (3, 14) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, arrays["val_labels"])
    label = realdata.MedMNISTDataset(tmp_path / "chestmnist.npz", "val")[2]["label"]
    assert label.shape == (14,) and label.dtype == torch.int64
    assert label.tolist() == arrays["val_labels"][2].tolist()


def test_medmnist_dataset_gives_channel_first_floats(tmp_path):
    arrays = write_medmnist(tmp_path / "grey.npz")
    ds = realdata.MedMNISTDataset(tmp_path / "grey.npz", "train")
    assert len(ds) == 5
    sample = ds[1]
    assert set(sample) == {"image", "label"}
    image, label = sample["image"], sample["label"]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.from_numpy(arrays["train_images"][1]).float() / 255)
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    assert label.shape == () and label.dtype == torch.int64 and int(label) == arrays["train_labels"][1, 0]
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["image"].shape == (5, 1, 28, 28) and batch["label"].shape == (5,)


def test_colour_sets_and_transforms(tmp_path):
    arrays = write_medmnist(tmp_path / "colour.npz", colour=True)
    ds = realdata.MedMNISTDataset(tmp_path / "colour.npz", "test", transform=lambda d: {**d, "image": d["image"] * 2})
    image = ds[3]["image"]
    assert image.shape == (3, 28, 28)
    expected = torch.from_numpy(arrays["test_images"][3]).permute(2, 0, 1).float() / 255 * 2
    assert torch.allclose(image, expected)


def test_medmnist_errors_name_the_file_and_what_is_wrong(tmp_path):
    path = tmp_path / "partial.npz"
    write_medmnist(path, drop=("val_labels",))
    with pytest.raises(ValueError, match=r"partial\.npz has no val_labels.*train_images"):
        realdata.load_medmnist(path, "val")
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test', got 'valid'"):
        realdata.load_medmnist(path, "valid")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz.*fetch"):
        realdata.load_medmnist(tmp_path / "missing.npz", "train")
    np.savez(tmp_path / "floats.npz", train_images=np.zeros((2, 28, 28)), train_labels=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="float64 .*expected uint8"):
        realdata.load_medmnist(tmp_path / "floats.npz", "train")
    np.savez(tmp_path / "short.npz", train_images=np.zeros((2, 28, 28), np.uint8), train_labels=np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"2 images but labels of shape \(3,\)"):
        realdata.load_medmnist(tmp_path / "short.npz", "train")


# --- MedNIST ------------------------------------------------------------------------------


@pytest.fixture
def mednist(tmp_path):
    root = tmp_path / "MedNIST"
    values = {}
    for label, cls in enumerate(["HeadCT", "CXR", "AbdomenCT", "ChestCT"]):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            value = 40 * label + 100 * i
            Image.fromarray(np.full((8, 6), value, np.uint8)).save(root / cls / f"{i:06d}.png")
            values[(cls, i)] = value
    (root / "CXR" / "._000000.png").write_bytes(b"macOS metadata")  # hidden: ignored
    (root / "CXR" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root, values


def test_mednist_items_sorts_classes_and_files(mednist):
    root, _ = mednist
    items, classes = realdata.mednist_items(root)
    assert classes == ["AbdomenCT", "CXR", "ChestCT", "HeadCT"]  # Python's sort: 'X' < 'h'
    assert [(p.parent.name, p.name, label) for p, label in items] == [
        ("AbdomenCT", "000000.png", 0), ("AbdomenCT", "000001.png", 0),
        ("CXR", "000000.png", 1), ("CXR", "000001.png", 1),
        ("ChestCT", "000000.png", 2), ("ChestCT", "000001.png", 2),
        ("HeadCT", "000000.png", 3), ("HeadCT", "000001.png", 3),
    ]


def test_mednist_dataset_reads_grey_images_in_unit_range(mednist):
    root, values = mednist
    ds = realdata.MedNISTDataset(root)
    assert len(ds) == 8 and ds.classes[3] == "HeadCT"
    image, label = ds[7]["image"], ds[7]["label"]  # HeadCT/000001.png
    assert image.shape == (1, 8, 6) and image.dtype == torch.float32
    assert int(label) == 3 and label.dtype == torch.int64
    assert torch.allclose(image, torch.full((1, 8, 6), values[("HeadCT", 1)] / 255))


def test_mednist_reads_rgb_jpeg_as_grey(tmp_path):
    (tmp_path / "Hand").mkdir()
    Image.new("RGB", (4, 4), (90, 90, 90)).save(tmp_path / "Hand" / "a.jpeg", quality=100)
    sample = realdata.MedNISTDataset(tmp_path, transform=lambda d: {**d, "image": d["image"][:, :2]})[0]
    image, label = sample["image"], sample["label"]
    assert image.shape == (1, 2, 4) and int(label) == 0
    assert abs(float(image.mean()) - 90 / 255) < 2 / 255


def test_mednist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch\\('mednist'\\)"):
        realdata.mednist_items(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="has no class folders"):
        realdata.mednist_items(tmp_path)
    (tmp_path / "Hand").mkdir()
    (tmp_path / "Hand" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"class folder .*Hand holds no images"):
        realdata.MedNISTDataset(tmp_path)


# --- Medical Segmentation Decathlon -------------------------------------------------------


def write_nifti(path: Path, data: np.ndarray, zooms) -> None:
    affine = np.diag([*zooms, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms if data.ndim == 3 else (*zooms, 1.0))
    nib.save(img, str(path))


@pytest.fixture
def decathlon(tmp_path):
    root = tmp_path / "Task99_Toy"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (root / sub).mkdir(parents=True)
    volumes = {}
    for case in ("toy_1", "toy_2"):
        xyz = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2) + (100 if case == "toy_2" else 0)
        label = (xyz % 3).astype(np.uint8)
        write_nifti(root / "imagesTr" / f"{case}.nii.gz", xyz, (0.8, 0.9, 2.5))
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", label, (0.8, 0.9, 2.5))
        volumes[case] = (xyz, label)
    write_nifti(root / "imagesTs" / "toy_3.nii.gz", np.zeros((4, 3, 2), np.int16), (1.0, 1.0, 3.0))
    # The published dataset.json format (relative "./" paths; test images as plain strings).
    (root / "dataset.json").write_text(json.dumps({
        "name": "Toy", "description": "Toy segmentation", "reference": "MedLab tests",
        "licence": "CC-BY-SA 4.0", "release": "1.0", "tensorImageSize": "3D",
        "modality": {"0": "CT"}, "labels": {"0": "background", "1": "organ", "2": "lesion"},
        "numTraining": 2, "numTest": 1,
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                     for c in ("toy_1", "toy_2")],
        "test": ["./imagesTs/toy_3.nii.gz"],
    }))
    return root, volumes


def test_decathlon_items_lists_existing_files_in_order(decathlon):
    root, _ = decathlon
    items = realdata.decathlon_items(root)
    assert items == [
        {"image": root / "imagesTr" / "toy_1.nii.gz", "label": root / "labelsTr" / "toy_1.nii.gz"},
        {"image": root / "imagesTr" / "toy_2.nii.gz", "label": root / "labelsTr" / "toy_2.nii.gz"},
    ]
    assert realdata.decathlon_items(root, "test") == [{"image": root / "imagesTs" / "toy_3.nii.gz"}]
    props = realdata.decathlon_properties(root)
    assert props["labels"] == {"0": "background", "1": "organ", "2": "lesion"} and props["numTraining"] == 2
    assert "training" not in props


def test_decathlon_dataset_reads_volumes_as_z_y_x(decathlon):
    root, volumes = decathlon
    ds = realdata.DecathlonDataset(root)
    assert len(ds) == 2
    sample = ds[1]
    xyz, label = volumes["toy_2"]
    assert sample["case"] == "toy_2"
    assert sample["image"].shape == (1, 2, 3, 4) and sample["image"].dtype == torch.float32
    assert sample["label"].shape == (1, 2, 3, 4) and sample["label"].dtype == torch.int64
    # voxel (x=3, y=1, z=0) of the file is image[0, z, y, x]
    assert float(sample["image"][0, 0, 1, 3]) == float(xyz[3, 1, 0]) == 3 * 6 + 1 * 2 + 0 + 100
    np.testing.assert_array_equal(sample["image"][0].numpy(), xyz.transpose(2, 1, 0))
    np.testing.assert_array_equal(sample["label"][0].numpy(), label.transpose(2, 1, 0))
    assert sample["spacing"].tolist() == pytest.approx([2.5, 0.9, 0.8])
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 1, 2, 3, 4) and batch["spacing"].shape == (2, 3)
    assert batch["case"] == ["toy_1", "toy_2"]


def test_decathlon_test_section_has_no_labels_and_transforms_apply(decathlon):
    root, _ = decathlon
    sample = realdata.DecathlonDataset(root, "test", transform=lambda d: {**d, "seen": True})[0]
    assert "label" not in sample and sample["seen"] and sample["case"] == "toy_3"
    assert sample["spacing"].tolist() == pytest.approx([3.0, 1.0, 1.0])


def test_multichannel_volumes_put_channels_first(tmp_path):
    root = tmp_path / "Task98_Multi"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    xyzc = np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32)
    write_nifti(root / "imagesTr" / "m_1.nii.gz", xyzc, (1.0, 1.0, 2.0))
    write_nifti(root / "labelsTr" / "m_1.nii.gz", np.ones((4, 3, 2), np.uint8), (1.0, 1.0, 2.0))
    (root / "dataset.json").write_text(json.dumps(
        {"training": [{"image": "./imagesTr/m_1.nii.gz", "label": "./labelsTr/m_1.nii.gz"}]}))
    sample = realdata.DecathlonDataset(root)[0]
    assert sample["image"].shape == (2, 2, 3, 4) and sample["label"].shape == (1, 2, 3, 4)
    np.testing.assert_allclose(sample["image"].numpy(), xyzc.transpose(3, 2, 1, 0))


def test_decathlon_errors(decathlon, tmp_path):
    root, _ = decathlon
    with pytest.raises(ValueError, match="has no 'validation' list; it has 'training', 'test'"):
        realdata.decathlon_items(root, "validation")
    (root / "labelsTr" / "toy_2.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"lists .*labelsTr/toy_2\.nii\.gz, which does not exist \(1 "):
        realdata.DecathlonDataset(root)
    with pytest.raises(FileNotFoundError, match="no dataset.json in .*Task04_Hippocampus"):
        realdata.decathlon_items(tmp_path / "empty")
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid dataset.json"):
        realdata.decathlon_items(root)


def test_mismatched_image_and_label_shapes_are_named(decathlon):
    root, _ = decathlon
    write_nifti(root / "labelsTr" / "toy_1.nii.gz", np.zeros((4, 3, 5), np.uint8), (0.8, 0.9, 2.5))
    with pytest.raises(ValueError, match=r"toy_1\.nii\.gz has shape \(z, y, x\) \(5, 3, 4\) .*\(2, 3, 4\)"):
        realdata.DecathlonDataset(root)[0]


# --- DICOM study folders ------------------------------------------------------------------


def test_dicom_series_folders_finds_every_folder_with_files(tmp_path):
    for folder in ("patient2/study1/series1", "patient1/study1/series2", "patient1/study1/series1",
                   "patient1/empty", ".hidden/series"):
        (tmp_path / folder).mkdir(parents=True)
    for folder in ("patient2/study1/series1", "patient1/study1/series2", "patient1/study1/series1",
                   ".hidden/series"):
        (tmp_path / folder / "IM0001.dcm").write_bytes(b"not read")
    (tmp_path / "DICOMDIR").write_bytes(b"index")
    (tmp_path / "patient1" / ".DS_Store").write_bytes(b"")
    found = realdata.dicom_series_folders(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "patient1/study1/series1", "patient1/study1/series2", "patient2/study1/series1",
    ]
    (tmp_path / "loose.dcm").write_bytes(b"x")
    assert realdata.dicom_series_folders(tmp_path)[0] == tmp_path
    with pytest.raises(FileNotFoundError, match="no folder at"):
        realdata.dicom_series_folders(tmp_path / "nowhere")


def test_find_medmnist_takes_the_file_the_folder_or_a_sized_copy(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    write_medmnist(published / "pneumoniamnist.npz")
    write_medmnist(published / "pneumoniamnist_64.npz")
    assert realdata.find_medmnist(published, "pneumoniamnist") == published / "pneumoniamnist.npz"
    assert realdata.find_medmnist(published / "pneumoniamnist_64.npz", "pneumoniamnist").name == "pneumoniamnist_64.npz"
    sized = tmp_path / "sized"
    sized.mkdir()
    write_medmnist(sized / "breastmnist_dev.npz")
    assert realdata.find_medmnist(sized, "breastmnist").name == "breastmnist_dev.npz"


def test_find_medmnist_names_what_it_found_instead(tmp_path):
    write_medmnist(tmp_path / "breastmnist_64.npz")
    write_medmnist(tmp_path / "breastmnist_128.npz")
    with pytest.raises(realdata.DataError, match="several breastmnist files.*breastmnist_128.npz"):
        realdata.find_medmnist(tmp_path, "breastmnist")
    with pytest.raises(FileNotFoundError, match="no pneumoniamnist.npz in .*breastmnist_128.npz"):
        realdata.find_medmnist(tmp_path, "pneumoniamnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        realdata.find_medmnist(tmp_path / "absent", "pneumoniamnist")


# --- ISBI 2012 EM membranes ---------------------------------------------------------------


def write_isbi2012(root: Path, n: int = 3, *, size=(6, 8)) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sections as ``root/image/N.png`` and ``root/label/N.png`` (0 membrane, 255 cell)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *size), dtype=np.uint8)
    labels = np.where(rng.random((n, *size)) < 0.3, 0, 255).astype(np.uint8)
    for kind, stack in (("image", images), ("label", labels)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for k, pixels in enumerate(stack):
            Image.fromarray(pixels).save(root / kind / f"{k}.png")
    return images, labels


def test_load_isbi2012_returns_sections_in_order_and_membranes_where_the_label_is_0(tmp_path):
    images, labels = write_isbi2012(tmp_path, 12)
    (tmp_path / "image" / ".DS_Store").write_bytes(b"")
    loaded, membranes = realdata.load_isbi2012(tmp_path)
    assert loaded.shape == (12, 6, 8) and loaded.dtype == np.uint8
    assert membranes.shape == (12, 6, 8) and membranes.dtype == bool
    np.testing.assert_array_equal(loaded, images)  # 10.png and 11.png after 9.png, not after 1.png
    np.testing.assert_array_equal(membranes, labels == 0)
    assert 0 < membranes.mean() < 1


def test_load_isbi2012_names_a_missing_label_or_section(tmp_path):
    write_isbi2012(tmp_path)
    (tmp_path / "label" / "1.png").unlink()
    with pytest.raises(realdata.DataError, match=r"image/1\.png has no label: .*label/1\.png is missing"):
        realdata.load_isbi2012(tmp_path)
    (tmp_path / "image" / "1.png").unlink()
    with pytest.raises(realdata.DataError, match=r"holds sections 0 to 2 but not 1\.png"):
        realdata.load_isbi2012(tmp_path)
    (tmp_path / "label").rename(tmp_path / "labels")
    with pytest.raises(realdata.DataError, match=r"has no label/ folder"):
        realdata.load_isbi2012(tmp_path)
    with pytest.raises(FileNotFoundError, match="no folder at"):
        realdata.load_isbi2012(tmp_path / "absent")


def test_load_isbi2012_names_a_section_of_another_size(tmp_path):
    write_isbi2012(tmp_path)
    Image.fromarray(np.full((6, 9), 255, np.uint8)).save(tmp_path / "label" / "2.png")
    with pytest.raises(realdata.DataError, match=r"label/2\.png is 6 × 9 pixels but .*image/0\.png is 6 × 8"):
        realdata.load_isbi2012(tmp_path)


def test_load_isbi2012_names_a_file_that_is_not_a_grey_png(tmp_path):
    write_isbi2012(tmp_path)
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "image" / "1.png", format="JPEG")
    with pytest.raises(realdata.DataError, match=r"image/1\.png is not a PNG \(Pillow reads it as JPEG\)"):
        realdata.load_isbi2012(tmp_path)
    (tmp_path / "image" / "1.png").write_bytes(b"not an image")
    with pytest.raises(realdata.DataError, match=r"image/1\.png is not a readable image"):
        realdata.load_isbi2012(tmp_path)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "image" / "1.png")
    with pytest.raises(realdata.DataError, match=r"image/1\.png is a PNG of mode 'RGB'"):
        realdata.load_isbi2012(tmp_path)
    (tmp_path / "image" / "1.png").unlink()
    (tmp_path / "image" / "1.tif").write_bytes(b"")
    with pytest.raises(realdata.DataError, match=r"image/1\.tif does not belong in"):
        realdata.load_isbi2012(tmp_path)


def test_load_isbi2012_refuses_labels_that_are_not_0_or_255(tmp_path):
    write_isbi2012(tmp_path)
    Image.fromarray(np.full((6, 8), 128, np.uint8)).save(tmp_path / "label" / "0.png")
    with pytest.raises(realdata.DataError, match=r"label/0\.png holds values \[128\]"):
        realdata.load_isbi2012(tmp_path)
