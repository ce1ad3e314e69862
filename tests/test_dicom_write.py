"""medlab.dicom.write: synthetic CT series and radiographs, fictitious patients."""

import numpy as np
import pydicom
import pytest
from dicom_helpers import SPACING, ramp, read_quietly, write

from medlab import dicom
from medlab.dicom import DicomError, DicomWarning

# --------------------------------------------------------------------------- round trips


def test_hu_are_rounded_and_clipped_to_the_stored_range(tmp_path):
    volume = np.zeros((2, 2, 3))
    volume[0, 0] = [-3000.0, 12.5, 12.6]
    volume[0, 1] = [70000.0, -1024.4, 13.5]
    write(tmp_path / "ct", volume)
    got = read_quietly(tmp_path / "ct").volume
    np.testing.assert_array_equal(got[0, 0], [-1024, 12, 13])  # halves round to even
    np.testing.assert_array_equal(got[0, 1], [dicom.CT_STORED_MAX_HU, -1024, 14])
    assert dicom.CT_STORED_MAX_HU == 64511


def test_written_files_carry_the_dicom_geometry_and_patient(tmp_path):
    paths = write(tmp_path / "ct", patient={"PatientName": "Tester^Tina"}, series_description="Ramp")
    ds = pydicom.dcmread(paths[3])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in ds.ImagePositionPatient] == [-10.0, 5.5, 100.0 + 3 * 2.5]
    assert float(ds.SliceLocation) == 107.5 and ds.InstanceNumber == 4
    assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.8]  # row spacing (y) first
    assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 2.5
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (
        32,
        32,
        16,
        16,
        0,
    )
    assert (float(ds.RescaleIntercept), float(ds.RescaleSlope), ds.RescaleType) == (-1024, 1, "HU")
    assert list(ds.WindowCenterWidthExplanation) == ["MEDIASTINUM", "LUNG"]
    assert str(ds.PatientName) == "Tester^Tina" and ds.SeriesDescription == "Ramp"
    fake = dicom.fake_patient(0)
    assert (ds.PatientID, ds.PatientBirthDate, ds.AccessionNumber) == (
        fake["PatientID"],
        fake["PatientBirthDate"],
        fake["AccessionNumber"],
    )
    assert ds.Manufacturer == "MedLab" and ds.InstitutionName == fake["InstitutionName"]
    block = ds.private_block(0x0009, "MEDLAB")
    assert "synthetic" in block[0x01].value
    others = [pydicom.dcmread(p) for p in paths]
    assert {o.SeriesInstanceUID for o in others} == {ds.SeriesInstanceUID}
    assert len({o.SOPInstanceUID for o in others}) == 6


def test_the_same_call_writes_the_same_bytes(tmp_path):
    first = write(tmp_path / "a")
    second = write(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other = write(tmp_path / "c", seed=1)
    a, c = pydicom.dcmread(first[0]), pydicom.dcmread(other[0])
    assert a.StudyInstanceUID != c.StudyInstanceUID and a.SeriesInstanceUID != c.SeriesInstanceUID
    assert a.PatientID != c.PatientID


def test_radiograph_round_trip(tmp_path):
    image = np.linspace(0.0, 1.0, 20 * 30).reshape(20, 30)
    path = dicom.write_radiograph(image, tmp_path / "xr" / "chest.dcm", pixel_spacing=(0.2, 0.25))
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == pydicom.uid.DigitalXRayImageStorageForPresentation
    assert (ds.Modality, ds.ViewPosition, ds.BodyPartExamined, ds.PhotometricInterpretation) == (
        "DX",
        "PA",
        "CHEST",
        "MONOCHROME2",
    )
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 12, 11)
    assert (
        [float(v) for v in ds.PixelSpacing] == [float(v) for v in ds.ImagerPixelSpacing] == [0.2, 0.25]
    )
    with pytest.warns(DicomWarning) as record:
        series = dicom.read_series(path)
    assert [str(w.message) for w in record] == series.warnings and len(series.warnings) == 2
    assert "projection image" in series.warnings[0] and "z spacing set to 1.0 mm" in series.warnings[1]
    assert series.volume.shape == (1, 20, 30)
    np.testing.assert_array_equal(series.volume[0], np.rint(image * 4095))
    assert series.volume.max() == 4095 and series.volume.min() == 0
    assert series.spacing[1:] == (0.2, 0.25)
    # PatientOrientation L\F: rows run to the patient's left, columns to the feet: coronal.
    np.testing.assert_array_equal(series.direction, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    assert series.metadata["orientation"] == "coronal"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "volume, spacing, match",
    [
        (np.zeros((4, 4)), SPACING, "3-D array"),
        (np.full((1, 2, 2), np.nan), SPACING, "NaN"),
        (np.zeros((1, 2, 2)), (1.0, -1.0, 1.0), "three positive numbers"),
    ],
)
def test_write_ct_series_checks_its_arguments(tmp_path, volume, spacing, match):
    with pytest.raises(DicomError, match=match):
        dicom.write_ct_series(volume, tmp_path, spacing=spacing)


def test_write_ct_series_refuses_to_mix_with_older_slices(tmp_path):
    write(tmp_path / "ct")
    write(tmp_path / "ct")  # the same files again: fine
    with pytest.raises(DicomError, match="already holds slice_0004.dcm, slice_0005.dcm"):
        write(tmp_path / "ct", ramp((4, 32, 32)))
    with pytest.raises(DicomError, match="'PatientNmae' is not a DICOM keyword"):
        write(tmp_path / "other", patient={"PatientNmae": "X"})


def test_write_radiograph_checks_the_range(tmp_path):
    with pytest.raises(DicomError, match=r"values in \[0, 1\]; got \[0, 2\]"):
        dicom.write_radiograph(np.array([[0.0, 2.0]]), tmp_path / "x.dcm")


def test_fake_patient_is_deterministic_and_plausible():
    first, again, other = dicom.fake_patient(3), dicom.fake_patient(3), dicom.fake_patient(4)
    assert first == again and first != other
    assert all(pydicom.datadict.tag_for_keyword(k) is not None for k in first)
    birth, study = first["PatientBirthDate"], first["StudyDate"]
    years = int(study[:4]) - int(birth[:4]) - (study[4:] < birth[4:])
    assert first["PatientAge"] == f"{years:03d}Y" and 25 <= years <= 85
    assert first["PatientSex"] in ("F", "M") and first["PatientTelephoneNumbers"].startswith("555-01")
