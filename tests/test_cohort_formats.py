"""The cohort written in each real dataset's published format reads back through the loaders
that a learner with the real data would use: one code path for synthetic and real data."""

import json

import numpy as np
import pytest
from PIL import Image

from medlab import dicom, phantoms, realdata
from medlab.io import save_nifti


@pytest.fixture(scope="module")
def radiographs():
    return phantoms.render_radiographs(phantoms.make_cohort(8, seed=3), size=56)


def test_medmnist_npz(tmp_path, radiographs):
    images = (radiographs.images[:, 0, ::2, ::2] * 255).round().astype(np.uint8)  # 28 x 28, as MedMNIST
    labels = radiographs.labels[:, None]
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(path, train_images=images[:6], train_labels=labels[:6], val_images=images[6:7],
             val_labels=labels[6:7], test_images=images[7:], test_labels=labels[7:])
    got_images, got_labels = realdata.load_medmnist(path, "train")
    np.testing.assert_array_equal(got_images, images[:6])
    np.testing.assert_array_equal(np.ravel(got_labels), radiographs.labels[:6])
    sample = realdata.MedMNISTDataset(path, "test")[0]
    image, label = sample["image"], sample["label"]
    assert tuple(image.shape) == (1, 28, 28) and float(image.max()) <= 1.0 and int(label) == radiographs.labels[7]


def test_mednist_folders(tmp_path, radiographs):
    for i, (image, label) in enumerate(zip(radiographs.images[:, 0], radiographs.labels)):
        folder = tmp_path / ("Pneumonia" if label else "Normal")
        folder.mkdir(exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    items, classes = realdata.mednist_items(tmp_path)
    assert classes == ["Normal", "Pneumonia"] and len(items) == len(radiographs)
    dataset = realdata.MedNISTDataset(tmp_path)
    for (path, label), (image, got) in zip(items, ((s["image"], s["label"]) for s in dataset)):
        i = int(path.stem)
        assert int(got) == radiographs.labels[i]
        np.testing.assert_allclose(image[0].numpy(), radiographs.images[i, 0], atol=1 / 255)


def test_decathlon_layout(tmp_path):
    ct = phantoms.ct_volume(seed=2, shape=(12, 40, 40), spacing=(6.0, 4.0, 4.0))
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    save_nifti(ct.image, tmp_path / "imagesTr" / "case_001.nii.gz", spacing=ct.spacing)
    save_nifti(ct.labels, tmp_path / "labelsTr" / "case_001.nii.gz", spacing=ct.spacing)
    (tmp_path / "dataset.json").write_text(json.dumps({
        "name": "MedLab cohort", "modality": {"0": "CT"},
        "labels": {str(i): name for i, name in enumerate(phantoms.CT_LABELS)},
        "training": [{"image": "./imagesTr/case_001.nii.gz", "label": "./labelsTr/case_001.nii.gz"}], "test": [],
    }))
    sample = realdata.DecathlonDataset(tmp_path)[0]
    np.testing.assert_allclose(np.asarray(sample["image"])[0], ct.image, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(sample["label"])[0], ct.labels)
    np.testing.assert_allclose(sample["spacing"], ct.spacing)


def test_dicom_study_folders(tmp_path):
    records = phantoms.make_cohort(2, seed=4, images_per_patient=(1, 1))
    volumes = [phantoms.ct_volume(seed=r.image_seed, patient_seed=r.patient_seed, site=r.site, shape=(6, 32, 32),
                                  spacing=(5.0, 5.0, 5.0)) for r in records]
    for r, v in zip(records, volumes):
        dicom.write_ct_series(v.image, tmp_path / r.patient_id / "CT", spacing=v.spacing, patient={"PatientID": r.patient_id})
    folders = realdata.dicom_series_folders(tmp_path)
    assert [f.parent.name for f in folders] == [r.patient_id for r in records]
    for folder, volume in zip(folders, volumes):
        series = dicom.read_series(folder)
        np.testing.assert_array_equal(series.volume, np.clip(np.round(volume.image), -1024, None))
        assert series.metadata["PatientID"] == folder.parent.name
