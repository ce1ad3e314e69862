"""medlab.dicom.read and medlab.dicom.geometry: series into volumes, geometry traps, bad input."""

import math
import shutil

import numpy as np
import pydicom
import pytest
from dicom_helpers import ORIGIN, SPACING, edit, ramp, read_quietly, write
from pydicom.data import get_testdata_file

from medlab import dicom
from medlab.dicom import DicomError, DicomWarning
from medlab.windowing import WINDOWS

# --------------------------------------------------------------------------- reading


def test_ct_series_round_trip_is_exact(tmp_path):
    paths = write(tmp_path / "ct")
    series = read_quietly(tmp_path / "ct")
    assert [p.name for p in paths] == [f"slice_{k:04d}.dcm" for k in range(6)]
    assert series.volume.dtype == np.float32 and series.volume.shape == (6, 32, 32)
    np.testing.assert_array_equal(series.volume, ramp())
    assert series.volume[2, 3, 4] == -1000 + 200 + 30 + 4
    assert series.spacing == SPACING and series.origin == ORIGIN
    np.testing.assert_array_equal(series.direction, np.eye(3))
    assert series.paths == paths and series.warnings == []
    meta = series.metadata
    assert meta["Modality"] == "CT" and meta["Manufacturer"] == "MedLab"
    assert meta["RescaleIntercept"] == -1024 and meta["RescaleSlope"] == 1
    assert meta["WindowCenter"] == [WINDOWS["mediastinum"][0], WINDOWS["lung"][0]]
    assert meta["WindowWidth"] == [WINDOWS["mediastinum"][1], WINDOWS["lung"][1]]
    assert meta["orientation"] == "axial" and meta["NumberOfSlices"] == 6
    assert meta["PatientID"] == dicom.fake_patient(0)["PatientID"]
    assert meta["SeriesDescription"] == "MedLab synthetic CT"
    assert meta["PhotometricInterpretation"] == "MONOCHROME2"
    assert len({meta["StudyInstanceUID"], meta["SeriesInstanceUID"]}) == 2
    assert "Series(CT, volume (6, 32, 32) float32, spacing (2.5, 0.7, 0.8) mm, axial" in repr(series)


def test_slices_are_sorted_by_position_not_by_name_or_instance_number(tmp_path):
    paths = write(tmp_path / "ct")
    for k, path in enumerate(paths):  # instance numbers and names now run backwards
        edit(path, InstanceNumber=6 - k)
        path.rename(tmp_path / "ct" / f"img_{5 - k}.dcm")
    series = read_quietly(tmp_path / "ct")
    np.testing.assert_array_equal(series.volume, ramp())
    assert [p.name for p in series.paths] == [f"img_{5 - k}.dcm" for k in range(6)]
    assert series.origin == ORIGIN


def test_pydicoms_ct_small_gives_hounsfield_units():
    path = get_testdata_file("CT_small.dcm")
    raw = pydicom.dcmread(path).pixel_array
    series = read_quietly(path)
    assert series.volume.shape == (1, 128, 128)
    np.testing.assert_array_equal(series.volume[0], raw.astype(np.float32) - 1024)
    assert series.metadata["RescaleIntercept"] == -1024
    assert series.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    assert series.origin == pytest.approx((-158.135803, -179.035797, -75.699997))
    assert series.volume.min() >= -1024 and series.volume.max() < 3072
    assert np.percentile(series.volume, 10) < -700  # air and lung
    assert -100 < np.median(series.volume) < 100  # soft tissue


def test_pydicoms_mr_small_keeps_its_values():
    path = get_testdata_file("MR_small.dcm")
    series = read_quietly(path)
    assert series.volume.shape == (1, 64, 64)
    np.testing.assert_array_equal(series.volume[0], pydicom.dcmread(path).pixel_array)
    assert series.spacing == (0.8, 0.3125, 0.3125)
    assert series.metadata["Modality"] == "MR" and series.metadata["RescaleSlope"] == 1.0


def test_a_single_file_is_one_slice(tmp_path):
    paths = write(tmp_path / "ct")
    series = read_quietly(paths[2])
    np.testing.assert_array_equal(series.volume[0], ramp()[2])
    assert series.spacing == SPACING and series.origin == (-10.0, 5.5, 105.0)
    edit(paths[2], SpacingBetweenSlices=None)
    assert read_quietly(paths[2]).spacing[0] == 2.5  # from SliceThickness
    edit(paths[2], SliceThickness=None)
    with pytest.warns(DicomWarning, match="z spacing set to 1.0 mm"):
        assert dicom.read_series(paths[2]).spacing == (1.0, 0.7, 0.8)


def test_files_that_are_not_dicom_are_skipped_and_listed(tmp_path):
    write(tmp_path / "ct")
    (tmp_path / "ct" / "README.txt").write_text("scanned on Tuesday")
    (tmp_path / "ct" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "ct" / "notes").mkdir()
    with pytest.warns(DicomWarning, match="skipped 2 file"):
        series = dicom.read_series(tmp_path / "ct")
    np.testing.assert_array_equal(series.volume, ramp())
    assert len(series.warnings) == 1
    assert ".DS_Store" in series.warnings[0] and "README.txt" in series.warnings[0]


# --------------------------------------------------------------------------- geometry traps


def test_several_series_in_one_folder_must_be_chosen(tmp_path):
    write(tmp_path / "mix", series_description="Ramp A")
    write(tmp_path / "b", ramp((4, 32, 32)), series_description="Ramp B", seed=1)
    for path in (tmp_path / "b").iterdir():
        shutil.copy(path, tmp_path / "mix" / f"b_{path.name}")
    uid_a = pydicom.dcmread(tmp_path / "mix" / "slice_0000.dcm").SeriesInstanceUID
    uid_b = pydicom.dcmread(tmp_path / "b" / "slice_0000.dcm").SeriesInstanceUID
    with pytest.raises(DicomError, match="holds 2 series; pass series_uid=") as error:
        dicom.read_series(tmp_path / "mix")
    message = str(error.value)
    assert (
        f"{uid_a}: CT 'Ramp A', 6 file(s)" in message and f"{uid_b}: CT 'Ramp B', 4 file(s)" in message
    )
    series = read_quietly(tmp_path / "mix", series_uid=uid_b)
    np.testing.assert_array_equal(series.volume, ramp((4, 32, 32)))
    with pytest.raises(DicomError, match="holds no series '1.2.3'"):
        dicom.read_series(tmp_path / "mix", series_uid="1.2.3")


def test_mixed_image_sizes_are_refused(tmp_path):
    write(tmp_path / "ct")
    other = write(tmp_path / "small", ramp((1, 16, 16)), seed=1)[0]
    uid = pydicom.dcmread(tmp_path / "ct" / "slice_0000.dcm").SeriesInstanceUID
    edit(other, SeriesInstanceUID=uid, ImagePositionPatient=[-10.0, 5.5, 115.0])
    shutil.copy(other, tmp_path / "ct" / "slice_0006.dcm")
    with pytest.raises(
        DicomError, match=r"image size \(Rows, Columns\).*\(16, 16\) in 1 file\(s\), e.g. slice_0006"
    ):
        dicom.read_series(tmp_path / "ct")


def test_mixed_orientations_are_refused(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[4], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(DicomError, match="do not share one ImageOrientationPatient.*slice_0004.dcm"):
        dicom.read_series(tmp_path / "ct")


def test_duplicate_positions_name_both_files(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[3], ImagePositionPatient=[-10.0, 5.5, 105.0])  # where slice 2 is
    with pytest.raises(
        DicomError, match="slice_0002.dcm and slice_0003.dcm lie at the same slice position"
    ):
        dicom.read_series(tmp_path / "ct")


def test_a_missing_slice_is_an_error_unless_allowed(tmp_path):
    paths = write(tmp_path / "ct")
    paths[3].unlink()
    with pytest.raises(
        DicomError, match="jump from 105 to 110 mm .*; 1 slice seems missing.*allow_irregular=True"
    ):
        dicom.read_series(tmp_path / "ct")
    with pytest.warns(DicomWarning, match="median spacing 2.5 mm"):
        series = dicom.read_series(tmp_path / "ct", allow_irregular=True)
    assert series.spacing == SPACING and series.volume.shape == (5, 32, 32)
    np.testing.assert_array_equal(series.volume, ramp()[[0, 1, 2, 4, 5]])
    assert "1 slice seems missing" in series.warnings[0]


def test_uneven_spacing_is_an_error(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[3], ImagePositionPatient=[-10.0, 5.5, 108.5])  # 1 mm off the grid
    with pytest.raises(DicomError, match="the step is 3.5 mm where the median step is 2.5 mm"):
        dicom.read_series(tmp_path / "ct")


def test_gantry_tilt_from_positions_is_refused(tmp_path):
    paths = write(tmp_path / "ct")
    shift = math.tan(math.radians(15)) * 2.5
    for k, path in enumerate(paths):
        edit(path, ImagePositionPatient=[-10.0, 5.5 + k * shift, 100.0 + k * 2.5])
    with pytest.raises(DicomError, match="15.00 degrees.*shear the anatomy"):
        dicom.read_series(tmp_path / "ct")


def test_gantry_tilt_attribute_is_refused(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[0], GantryDetectorTilt=12)
    with pytest.raises(DicomError, match="GantryDetectorTilt is 12 degrees.*shear the anatomy"):
        dicom.read_series(tmp_path / "ct")


def reorient(paths, row, col, step):
    for k, path in enumerate(paths):
        edit(path, ImageOrientationPatient=[*row, *col], ImagePositionPatient=list(np.multiply(step, k)))


def test_sagittal_series_is_sorted_along_its_normal_and_warns(tmp_path):
    paths = write(tmp_path / "ct")
    # rows run to posterior (+y), columns to the feet (-z): normal = row x col = -x (right)
    reorient(paths, (0, 1, 0), (0, 0, -1), (2.5, 0, 0))
    with pytest.warns(DicomWarning, match="is sagittal: the axes"):
        series = dicom.read_series(tmp_path / "ct")
    assert series.metadata["orientation"] == "sagittal"
    np.testing.assert_array_equal(series.volume, ramp()[::-1])  # the last file lies rightmost
    assert series.origin == (12.5, 0.0, 0.0)
    np.testing.assert_array_equal(series.direction, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]])
    assert series.spacing == SPACING


def test_coronal_and_oblique_series_warn(tmp_path):
    paths = write(tmp_path / "cor")
    reorient(paths, (1, 0, 0), (0, 0, -1), (0, 2.5, 0))
    with pytest.warns(DicomWarning, match="is coronal"):
        assert dicom.read_series(tmp_path / "cor").metadata["orientation"] == "coronal"
    paths = write(tmp_path / "obl")
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    reorient(paths, (1, 0, 0), (0, c, s), (0, -2.5 * s, 2.5 * c))
    with pytest.warns(DicomWarning, match="is oblique"):
        series = dicom.read_series(tmp_path / "obl")
    np.testing.assert_array_equal(series.volume, ramp())
    assert series.spacing == SPACING and series.metadata["orientation"] == "oblique"
    np.testing.assert_allclose(series.direction[2], [0, -s, c])


@pytest.mark.parametrize(
    "normal, label",
    [
        ((0, 0, 1), "axial"),
        ((0, 0, -1), "axial"),
        ((0, 1, 0), "coronal"),
        ((-1, 0, 0), "sagittal"),
        ((0, math.sin(math.radians(0.5)), math.cos(math.radians(0.5))), "axial"),
        ((0, math.sin(math.radians(5)), math.cos(math.radians(5))), "oblique"),
    ],
)
def test_orientation_label(normal, label):
    assert dicom.orientation_label(normal) == label


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    with pytest.raises(DicomError, match="nowhere.dcm does not exist"):
        dicom.read_series(tmp_path / "nowhere.dcm")


def test_a_file_that_is_not_dicom(tmp_path):
    (tmp_path / "notes.dcm").write_text("not an image")
    with pytest.raises(DicomError, match="notes.dcm is not a DICOM file"):
        dicom.read_series(tmp_path / "notes.dcm")


def test_pydicoms_truncated_file():
    with pytest.raises(DicomError, match="MR_truncated.dcm is truncated: .*8130 bytes.*need 8192"):
        dicom.read_series(get_testdata_file("MR_truncated.dcm"))


def test_a_file_cut_inside_its_header(tmp_path):
    path = write(tmp_path / "ct")[0]
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(DicomError, match="slice_0000.dcm describes no image .*truncated"):
        dicom.read_series(path)


def test_missing_pixel_data(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[1], PixelData=None)
    with pytest.raises(DicomError, match="slice_0001.dcm has no pixel data"):
        dicom.read_series(tmp_path / "ct")


def test_compressed_file_without_decoder():
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    if pydicom.pixels.get_decoder(pydicom.uid.JPEGLSLossless).is_available:
        expected = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
        np.testing.assert_array_equal(read_quietly(path).volume[0], expected)
    else:
        with pytest.raises(
            DicomError, match="compressed as JPEG-LS Lossless.*no installed decoder.*pyjpegls"
        ):
            dicom.read_series(path)


def test_compressed_file_when_no_plugin_is_installed(monkeypatch):
    path = get_testdata_file("JPEG2000.dcm")
    monkeypatch.setattr(pydicom.pixels.common.CoderBase, "is_available", property(lambda self: False))
    with pytest.raises(
        DicomError, match="JPEG2000.dcm is compressed as JPEG 2000.*decompress the file first"
    ):
        dicom.read_series(path)


def test_empty_folder_and_folder_without_dicom(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DicomError, match="empty is empty"):
        dicom.read_series(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.txt").write_text("hello")
    with pytest.raises(DicomError, match=r"docs holds no DICOM files \(not DICOM: README.txt\)"):
        dicom.read_series(tmp_path / "docs")
    write(tmp_path / "study" / "series1")
    with pytest.raises(DicomError, match=r"top level only: try a subfolder \(series1\)"):
        dicom.read_series(tmp_path / "study")


def test_dicom_error_is_a_value_error():
    assert issubclass(DicomError, ValueError) and issubclass(DicomWarning, UserWarning)
