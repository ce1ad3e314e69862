"""medlab.dicom.read and medlab.dicom.geometry: series into volumes, geometry traps, bad input."""

import math
import os
import shutil
import threading
import tracemalloc
import warnings

import numpy as np
import pydicom
import pytest
import scipy.ndimage as ndi
from dicom_helpers import ORIGIN, SPACING, edit, ramp, read_quietly, write, write_tilted
from pydicom.data import get_testdata_file
from real_data_helpers import real_data

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
    assert meta["WindowCenter"] == [WINDOWS["mediastinum"]["center"], WINDOWS["lung"]["center"]]
    assert meta["WindowWidth"] == [WINDOWS["mediastinum"]["width"], WINDOWS["lung"]["width"]]
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


def test_a_dicomdir_index_is_skipped_and_named_whatever_its_file_name(tmp_path):
    write(tmp_path / "ct")
    shutil.copy(get_testdata_file("DICOMDIR"), tmp_path / "ct" / "DIRFILE")  # as Philips names it
    with pytest.warns(DicomWarning, match=r"skipped 1 file\(s\) .*: DIRFILE \(a DICOMDIR index\)"):
        series = dicom.read_series(tmp_path / "ct")
    np.testing.assert_array_equal(series.volume, ramp())
    assert len(series.paths) == 6 and len(series.warnings) == 1


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
    with pytest.raises(DicomError, match="GantryDetectorTilt is 12 degrees.*shear the anatomy.*tilt='correct'"):
        dicom.read_series(tmp_path / "ct")


# --------------------------------------------------------------------------- gantry tilt corrected

WHOLE_PIXEL_TILT = math.degrees(math.atan(SPACING[1] / SPACING[0]))  # each slice one row further


def read_noting_tilt(path, **kwargs):
    """read_series(path, tilt="correct") and its DicomWarnings, which must say what was done."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = dicom.read_series(path, tilt="correct", **kwargs)
    assert [str(w.message) for w in caught] == series.warnings
    assert all(w.category is DicomWarning for w in caught)
    return series


def first_row(series):
    """Row of the straightened grid where the first slice's pixel [0, 0] lies."""
    offset = (np.asarray(ORIGIN) - series.origin) @ series.direction[1] / series.spacing[1]
    assert abs(offset - round(offset)) < 1e-6
    return int(round(offset))


@pytest.mark.parametrize("sign", [1, -1])
def test_gantry_tilt_is_corrected_onto_the_straight_grid_of_the_slices(tmp_path, sign):
    truth = ramp()  # (6, 32, 32): plane k of the tilted gantry, every voxel its own value
    paths, shifts = write_tilted(tmp_path / "ct", truth, tilt_deg=sign * WHOLE_PIXEL_TILT)
    np.testing.assert_allclose(shifts, sign * np.arange(6), atol=1e-12)
    with pytest.raises(DicomError, match=f"GantryDetectorTilt is {sign * WHOLE_PIXEL_TILT:g} degrees"):
        dicom.read_series(tmp_path / "ct")
    series = read_noting_tilt(tmp_path / "ct")
    t = math.radians(sign * WHOLE_PIXEL_TILT)
    assert series.volume.shape == (6, 32 + 5, 32) and series.paths == paths
    np.testing.assert_allclose(series.spacing, SPACING, rtol=1e-6)  # along the normal, not the table
    np.testing.assert_allclose(series.direction, [[1, 0, 0], [0, math.cos(t), math.sin(t)],
                                                  [0, -math.sin(t), math.cos(t)]], atol=1e-6)
    assert series.metadata["tilt_deg"] == pytest.approx(WHOLE_PIXEL_TILT, abs=1e-4)
    assert series.metadata["GantryDetectorTilt"] == pytest.approx(sign * WHOLE_PIXEL_TILT)
    assert series.metadata["orientation"] == "oblique"
    first = first_row(series)
    assert first == (0 if sign > 0 else 5)
    for k in range(6):  # whole-pixel shifts: each slice copied exactly where its anatomy lies
        seen = range(k, 32) if sign > 0 else range(0, 32 - k)
        rows = np.array(seen)
        np.testing.assert_array_equal(series.volume[k, first + rows], truth[k, rows])
        elsewhere = np.setdiff1d(np.arange(37), first + rows)
        assert (series.volume[k, elsewhere] == -1024).all()
    assert f"corrected a gantry tilt of {WHOLE_PIXEL_TILT:.2f} degrees" in series.warnings[0]
    assert "from 32 x 32 to 37 x 32 pixels" in series.warnings[0] and "is oblique" in series.warnings[1]


def test_a_tilt_of_a_fraction_of_a_pixel_per_slice_is_interpolated(tmp_path):
    # a ramp is linear along the columns, so linear interpolation restores it but for rounding
    def hu(k, rows):
        return -1000.0 + 100 * k + 10 * rows[:, None] + np.arange(32)[None, :]

    paths, shifts = write_tilted(tmp_path / "ct", ramp(), tilt_deg=16.5, hu=hu)
    series = read_noting_tilt(tmp_path / "ct")
    assert shifts[-1] == pytest.approx(5 * 2.5 * math.tan(math.radians(16.5)) / 0.7)  # 5.28 rows
    assert series.volume.shape == (6, 32 + 6, 32) and first_row(series) == 0
    assert series.metadata["tilt_deg"] == pytest.approx(16.5, abs=1e-4)
    for k, shift in enumerate(shifts):
        rows = np.arange(math.ceil(shift), 31 + math.floor(shift) + 1)  # between two stored rows
        np.testing.assert_allclose(series.volume[k, rows], hu(k, rows), atol=0.5 + 1e-4)  # stored as whole HU
    assert "by up to 3.7 mm" in series.warnings[0]  # 5 x 2.5 mm x tan 16.5 degrees


def test_a_straight_series_reads_the_same_with_tilt_correct(tmp_path):
    write(tmp_path / "ct")
    straight = read_quietly(tmp_path / "ct", tilt="correct")
    np.testing.assert_array_equal(straight.volume, ramp())
    assert straight.spacing == SPACING and straight.origin == ORIGIN and straight.warnings == []
    assert straight.metadata["tilt_deg"] == 0.0
    assert read_quietly(tmp_path / "ct").metadata == straight.metadata


def test_positions_sheared_without_a_tilt_attribute_are_corrected_too(tmp_path):
    paths = write(tmp_path / "ct")  # axial slices, each 2 rows (1.4 mm) further along y
    for k, path in enumerate(paths):
        edit(path, ImagePositionPatient=[ORIGIN[0], ORIGIN[1] + 1.4 * k, ORIGIN[2] + 2.5 * k])
    series = read_noting_tilt(tmp_path / "ct")
    assert series.volume.shape == (6, 42, 32) and series.metadata["orientation"] == "axial"
    assert series.metadata["tilt_deg"] == pytest.approx(math.degrees(math.atan(1.4 / 2.5)), abs=1e-4)
    for k in range(6):
        np.testing.assert_array_equal(series.volume[k, 2 * k:2 * k + 32], ramp()[k])
    assert len(series.warnings) == 1


def test_a_tilt_recorded_in_the_orientation_needs_no_resampling(tmp_path):
    paths = write(tmp_path / "ct")  # tilted slices that step along their normal: a straight grid
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    for k, path in enumerate(paths):
        edit(path, ImageOrientationPatient=[1, 0, 0, 0, c, s], GantryDetectorTilt=20,
             ImagePositionPatient=list(np.add(ORIGIN, np.multiply((0, -s, c), 2.5 * k))))
    with pytest.raises(DicomError, match="GantryDetectorTilt is 20 degrees"):
        dicom.read_series(tmp_path / "ct")
    with pytest.warns(DicomWarning, match="is oblique"):
        series = dicom.read_series(tmp_path / "ct", tilt="correct")
    np.testing.assert_array_equal(series.volume, ramp())
    assert series.metadata["tilt_deg"] < dicom.TILT_TOLERANCE_DEG and len(series.warnings) == 1


def test_a_recorded_tilt_that_the_geometry_does_not_show_is_refused(tmp_path):
    paths = write(tmp_path / "ct")
    edit(paths[2], GantryDetectorTilt=-15)
    with pytest.raises(DicomError, match="slice_0002.dcm: GantryDetectorTilt is -15 degrees, but neither"):
        dicom.read_series(tmp_path / "ct", tilt="correct")


@pytest.mark.parametrize("tilt", ["fix", None, True])
def test_tilt_must_be_refuse_or_correct(tmp_path, tilt):
    write(tmp_path / "ct")
    with pytest.raises(DicomError, match=f"tilt must be 'refuse' .* or 'correct' .*not {tilt!r}"):
        dicom.read_series(tmp_path / "ct", tilt=tilt)


def test_a_straightened_grid_too_large_is_refused(tmp_path, monkeypatch):
    write_tilted(tmp_path / "ct", ramp(), tilt_deg=WHOLE_PIXEL_TILT)
    monkeypatch.setattr(dicom.read, "MAX_VOLUME_BYTES", 6 * 32 * 36 * 4)  # fits 6 x 32 x 32, not 6 x 37 x 32
    with pytest.raises(DicomError, match=r"a grid of 37 x 32 pixels per slice.*Read fewer slices"):
        dicom.read_series(tmp_path / "ct", tilt="correct")


# --------------------------------------------------------------------------- the real head phantom


def at_patient_points(series, points):
    """Values of ``series`` (linear interpolation, NaN outside) at ``(3, m)`` LPS points in mm."""
    index = series.direction @ (points - np.asarray(series.origin)[:, None])  # (x, y, z) in mm
    index = index[::-1] / np.asarray(series.spacing)[:, None]  # (z, y, x) in voxels
    return ndi.map_coordinates(series.volume, index, order=1, cval=np.nan)


def voxel_centres(series, step=2):
    """``(3, m)`` LPS positions (mm) of every ``step``-th voxel of ``series`` along y and x."""
    z, y, x = series.volume.shape
    grid = np.meshgrid(np.arange(z), np.arange(0, y, step), np.arange(0, x, step), indexing="ij")
    k, j, i = (a.ravel() for a in grid)
    offsets = np.stack([i * series.spacing[2], j * series.spacing[1], k * series.spacing[0]])
    return np.asarray(series.origin)[:, None] + series.direction.T @ offsets, (k, j, i)


def test_the_real_head_phantom_skips_its_dicomdir_and_reads_in_hounsfield_units():
    folder = real_data("dicom", "ct_head_phantom_philips")
    with pytest.warns(DicomWarning, match=r"skipped 1 file\(s\) in .*: DIRFILE \(a DICOMDIR index\)"):
        series = dicom.read_series(folder)
    assert series.volume.shape == (28, 512, 512) and len(series.paths) == 28
    assert series.spacing == (5.0, 0.451171875, 0.451171875) and series.metadata["orientation"] == "axial"
    assert series.metadata["tilt_deg"] < dicom.TILT_TOLERANCE_DEG
    assert -1010 <= np.median(series.volume[:, :40, :40]) <= -990  # air in the corners
    first = pydicom.dcmread(series.paths[0])
    np.testing.assert_array_equal(series.volume[0], first.pixel_array.astype(np.float32) - 1024)


def test_the_real_tilted_head_phantom_is_refused_then_corrected_to_match_an_untilted_scan():
    tilted = real_data("dicom", "ct_head_phantom_philips_tilted")
    reference = read_noting(real_data("dicom", "ct_head_phantom_philips"))  # the same phantom, untilted
    with pytest.raises(DicomError, match="I10: GantryDetectorTilt is 16.5 degrees.*tilt='correct'"):
        dicom.read_series(tilted)
    series = read_noting_tilt(tilted)
    assert series.volume.shape == (58, 612, 512)  # 57 x 2.5 mm x sin 16.5 degrees / 0.40625 mm = 99.6 rows more
    assert series.spacing == pytest.approx((2.5 * math.cos(math.radians(16.5)), 0.40625, 0.40625))
    assert series.metadata["tilt_deg"] == pytest.approx(series.metadata["GantryDetectorTilt"], abs=0.01)
    assert series.volume.min() == -1024 and series.volume.max() <= 2000
    # Both scans share one frame of reference: compare them where the untilted scan's voxels lie
    points, index = voxel_centres(reference)
    truth = reference.volume[index]
    files = [pydicom.dcmread(p) for p in series.paths]
    stacked = np.stack([pydicom.pixels.apply_rescale(ds.pixel_array, ds) for ds in files]).astype(np.float32)
    first = tuple(float(v) for v in files[0].ImagePositionPatient)
    naive = dicom.Series(stacked, series.spacing, first, series.direction, {}, series.paths)  # stacked straight
    agreement = {}
    for name, volume in (("corrected", series), ("stacked straight", naive)):
        values = at_patient_points(volume, points)
        inside = ~np.isnan(values)
        a, b = truth[inside] > -500, values[inside] > -500
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        agreement[name] = (dice, np.corrcoef(truth[inside], values[inside])[0, 1])
    assert agreement["corrected"][0] >= 0.85 and agreement["corrected"][1] >= 0.9, agreement
    assert agreement["stacked straight"][0] <= 0.5 and agreement["stacked straight"][1] <= 0.5, agreement


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


# --------------------------------------------------------------------------- damaged files


def set_raw(path, keyword, vr, value: bytes):
    """Store ``value`` as the bytes of ``keyword`` with VR ``vr``, bypassing pydicom's checks."""
    ds = pydicom.dcmread(path)
    tag = pydicom.tag.Tag(keyword)
    ds[tag] = pydicom.dataelem.RawDataElement(tag, vr, len(value), value, 0, False, True)
    ds.save_as(path)


def set_transfer_syntax(path, uid: str | None):
    """Rewrite the file meta with TransferSyntaxUID ``uid`` (``None``: without one), data unchanged."""
    data = path.read_bytes()
    end = 132 + 12 + int.from_bytes(data[140:144], "little")  # after (0002,0000) and its group
    meta = pydicom.dcmread(path).file_meta
    tag = pydicom.tag.Tag("TransferSyntaxUID")
    del meta[tag]
    if uid is not None:
        value = uid.encode() + b"\0" * (len(uid) % 2)
        meta[tag] = pydicom.dataelem.RawDataElement(tag, "UI", len(value), value, 0, False, True)
    buffer = pydicom.filebase.DicomBytesIO()
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=False)
    path.write_bytes(data[:132] + buffer.getvalue() + data[end:])


def test_an_intercept_without_a_slope_is_refused(tmp_path):
    # DICOM requires both; pydicom would skip the rescale and return values 1024 HU off
    paths = write(tmp_path / "ct")
    edit(paths[3], RescaleSlope=None)
    with pytest.raises(DicomError, match="slice_0003.dcm has RescaleIntercept '-1024' but no RescaleSlope"):
        dicom.read_series(tmp_path / "ct")
    edit(paths[3], RescaleSlope="1", RescaleIntercept=None)
    with pytest.raises(DicomError, match="slice_0003.dcm has RescaleSlope '1' but no RescaleIntercept"):
        dicom.read_series(tmp_path / "ct")


def test_a_slope_other_than_one_is_applied(tmp_path):
    paths = write(tmp_path / "ct")
    for path in paths:
        edit(path, RescaleSlope="2", RescaleIntercept="-2048")
    stored = ramp() + 1024  # write_ct_series stores HU + 1024
    np.testing.assert_array_equal(read_quietly(tmp_path / "ct").volume, 2 * stored - 2048)


@pytest.mark.parametrize(
    "keyword, value, message",
    [
        ("RescaleSlope", b"nan ", "a malformed RescaleSlope 'nan': expected 1 finite number"),
        ("RescaleSlope", b"inf ", "a malformed RescaleSlope 'inf'"),
        ("RescaleIntercept", b"-inf", "a malformed RescaleIntercept '-inf'"),
        ("RescaleSlope", b"1e39", "RescaleSlope 1e\\+39 .*must fit a float32"),
        ("RescaleSlope", b"0 ", "RescaleSlope 0 .*must be non-zero"),
        ("RescaleSlope", b"", "an empty RescaleSlope"),
        ("RescaleSlope", b"abc ", "a malformed RescaleSlope 'abc'"),
        ("RescaleSlope", b"1\\2 ", "a malformed RescaleSlope .*expected 1 finite number"),
    ],
)
def test_rescale_values_that_are_not_one_finite_number_are_refused(tmp_path, keyword, value, message):
    paths = write(tmp_path / "ct")
    set_raw(paths[2], keyword, "DS", value)
    with pytest.raises(DicomError, match=f"slice_0002.dcm has {message}"):
        dicom.read_series(tmp_path / "ct")


def test_a_rescale_that_overflows_float32_is_refused(tmp_path):
    path = write(tmp_path / "ct")[0]
    edit(path, RescaleSlope="1e36")  # finite, but 1e36 x 865 is not a float32
    with pytest.raises(DicomError, match=r"slice_0000.dcm: \d+ pixel values are NaN or infinite after"):
        dicom.read_series(path)


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"Columns": 30}, "holds 2048 bytes, but its header .*describes 1920.*sheared"),
        ({"Rows": 16}, "holds 2048 bytes, but its header .*describes 1024"),
        ({"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7}, "describes 1024"),
        ({"Columns": 33}, "is truncated: .*holds 2048 bytes, but 32 x 33 pixels of 16 bits need 2112"),
    ],
)
def test_pixel_data_must_match_the_image_size(tmp_path, attributes, message):
    paths = write(tmp_path / "ct")
    for path in paths:
        edit(path, **attributes)
    with pytest.raises(DicomError, match=f"slice_0000.dcm.*{message}"):
        dicom.read_series(tmp_path / "ct")


def test_only_the_one_padding_byte_dicom_allows_is_accepted(tmp_path):
    path = write(tmp_path / "ct", ramp((1, 32, 32)))[0]
    edit(path, Rows=3, Columns=3, BitsAllocated=8, BitsStored=8, HighBit=7)
    set_raw(path, "PixelData", "OB", bytes(range(9)) + b"\0")  # 9 bytes, padded to even
    np.testing.assert_array_equal(read_quietly(path).volume[0], np.arange(9).reshape(3, 3) - 1024)
    set_raw(path, "PixelData", "OB", bytes(range(12)))
    with pytest.raises(DicomError, match="holds 12 bytes, but its header .* describes 9"):
        dicom.read_series(path)


@pytest.mark.parametrize(
    "orientation",
    [["L", "L"], ["L", "R"], ["A", "P"], ["L"], ["L", "F", "H"], ["X", "F"]],
)
def test_patient_orientation_must_name_two_different_axes(tmp_path, orientation):
    path = dicom.write_radiograph(np.zeros((8, 8)), tmp_path / "cxr.dcm")
    edit(path, PatientOrientation=orientation)
    with pytest.raises(DicomError, match="cxr.dcm has PatientOrientation .*two different patient axes"):
        dicom.read_series(path)


def read_noting(path):
    """read_series(path) without issuing its DicomWarnings (they stay in Series.warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomWarning)
        return dicom.read_series(path)


def test_patient_orientation_uses_dominant_letters_and_falls_back_to_axial(tmp_path):
    path = dicom.write_radiograph(np.zeros((8, 8)), tmp_path / "cxr.dcm")
    series = read_noting(path)
    assert "direction comes from PatientOrientation L\\F;" in series.warnings[0]
    np.testing.assert_array_equal(series.direction, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    edit(path, PatientOrientation=["LH", "FL"])  # oblique: the first letter dominates
    oblique = read_noting(path)
    assert "PatientOrientation LH\\FL (their dominant letters)" in oblique.warnings[0]
    np.testing.assert_array_equal(oblique.direction, series.direction)
    edit(path, PatientOrientation="")
    axial = read_noting(path)
    assert "no PatientOrientation either" in axial.warnings[0]
    np.testing.assert_array_equal(axial.direction, np.eye(3))


@pytest.mark.parametrize(
    "uid, message",
    [
        ("1.2.3.4", "TransferSyntaxUID '1.2.3.4', which is not a transfer syntax pydicom knows"),
        ("", "TransferSyntaxUID '', which is not a transfer syntax"),
        (None, "has no TransferSyntaxUID in its file meta information"),
    ],
)
def test_unknown_or_missing_transfer_syntax_is_refused(tmp_path, uid, message):
    paths = write(tmp_path / "ct")
    set_transfer_syntax(paths[1], uid)
    with pytest.raises(DicomError, match=f"slice_0001.dcm.*{message}"):
        dicom.read_series(tmp_path / "ct")


@pytest.mark.parametrize(
    "keyword, vr, value, message",
    [
        ("RescaleSlope", "ZZ", b"1 ", "its RescaleSlope element cannot be parsed .*Unknown Value Repr"),
        ("Rows", "US", b"\x20\x00\x00", "its Rows element cannot be parsed .*BytesLengthException"),
        ("Rows", "SS", b"\xe0\xff", r"malformed Rows -32 \(VR SS\): expected a whole number from 1 to 65535"),
        ("Columns", "UL", (70000).to_bytes(4, "little"), "malformed Columns 70000"),
        ("Rows", "LO", b"32.5", r"malformed Rows '32.5' \(VR LO\)"),
        ("Rows", "LO", b"32", r"malformed Rows '32' \(VR LO\)"),  # pydicom could not decode it
        ("BitsStored", "US", (17).to_bytes(2, "little"), "malformed BitsStored 17 .* from 1 to 16"),
        ("PixelRepresentation", "US", (2).to_bytes(2, "little"), "malformed PixelRepresentation 2"),
        ("PhotometricInterpretation", "CS", b"", "has no PhotometricInterpretation"),
        ("BitsAllocated", "US", (0).to_bytes(2, "little"), "malformed BitsAllocated 0"),
        ("NumberOfFrames", "IS", b"-1", "malformed NumberOfFrames '-1'"),
        ("ImagePositionPatient", "DS", b"1e300\\0\\0 ", "lies more than 1e\\+06 mm from the origin"),
        ("ImageOrientationPatient", "DS", b"", "has no ImagePositionPatient/ImageOrientationPatient"),
        ("PhotometricInterpretation", "CS", b"SEPIA ", "'SEPIA', not MONOCHROME1 or MONOCHROME2"),
        ("HighBit", "US", b"\x20", "its HighBit element cannot be parsed"),
    ],
)
def test_damaged_header_values_name_the_file_and_element(tmp_path, keyword, vr, value, message):
    paths = write(tmp_path / "ct")
    set_raw(paths[4], keyword, vr, value)
    with pytest.raises(DicomError, match=f"slice_0004.dcm.*{message}"):
        dicom.read_series(tmp_path / "ct")


def test_huge_image_sizes_are_refused_before_allocating(tmp_path):
    paths = write(tmp_path / "ct")
    for path in paths:  # 6 x 65535 x 65535 float32 would be 96 GiB
        edit(path, Rows=65535, Columns=65535)
    tracemalloc.start()
    try:
        with pytest.raises(DicomError, match="slice_0000.dcm is truncated: .*65535 x 65535 pixels"):
            dicom.read_series(tmp_path / "ct")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_headers_are_checked_without_reading_the_pixel_data_twice(tmp_path, monkeypatch):
    write(tmp_path / "ct", ramp((3, 64, 64)))  # 8 KiB of pixel data per file, read once
    deferred = []
    read_deferred = pydicom.filereader.read_deferred_data_element
    monkeypatch.setattr(
        pydicom.filereader,
        "read_deferred_data_element",
        lambda *args: deferred.append(args[-1].tag) or read_deferred(*args),
    )
    np.testing.assert_array_equal(read_quietly(tmp_path / "ct").volume, ramp((3, 64, 64)))
    assert deferred == []


def test_a_compressed_slice_claiming_a_huge_size_is_refused_before_decoding(tmp_path):
    path = write(tmp_path / "ct", ramp((1, 32, 32)))[0]
    ds = pydicom.dcmread(path)
    ds.compress(pydicom.uid.RLELossless, generate_instance_uid=False)
    ds.Rows = ds.Columns = 65535  # 16 GiB as float32, from a file of a few kB
    ds.save_as(path)
    tracemalloc.start()
    try:
        with pytest.raises(DicomError, match=r"1 slice\(s\) of 65535 x 65535 pixels need 16.0 GiB"):
            dicom.read_series(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_volumes_above_the_limit_are_refused(tmp_path, monkeypatch):
    write(tmp_path / "ct")
    monkeypatch.setattr(dicom.read, "MAX_VOLUME_BYTES", 6 * 32 * 32 * 4 - 1)
    with pytest.raises(DicomError, match=r"ct: 6 slice\(s\) of 32 x 32 pixels need .*MAX_VOLUME_BYTES"):
        dicom.read_series(tmp_path / "ct")


def read_in_thread(path, seconds=10):
    """read_series(path) in a thread: ('ok', series), ('error', exception) or ('hung', None)."""
    result = []

    def target():
        try:
            result.append(("ok", dicom.read_series(path)))
        except Exception as exc:
            result.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0] if result else ("hung", None)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.dcm")
    outcome, error = read_in_thread(tmp_path / "pipe.dcm")
    assert outcome == "error" and isinstance(error, DicomError)
    assert "pipe.dcm is a FIFO (named pipe), not a regular file, so it was not read" in str(error)
    write(tmp_path / "ct")
    os.mkfifo(tmp_path / "ct" / "slice_9999.dcm")
    with pytest.warns(DicomWarning, match=r"skipped 1 file.*slice_9999.dcm \(a FIFO .*, not opened\)"):
        outcome, series = read_in_thread(tmp_path / "ct")
    assert outcome == "ok"
    np.testing.assert_array_equal(series.volume, ramp())


def test_pydicoms_warnings_become_dicom_warnings_naming_the_file(tmp_path):
    paths = write(tmp_path / "ct")
    ds = pydicom.dcmread(paths[0])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(paths[0])
    set_transfer_syntax(paths[0], pydicom.uid.ExplicitVRLittleEndian)  # but the data is implicit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = dicom.read_series(tmp_path / "ct")
    np.testing.assert_array_equal(series.volume, ramp())
    assert caught and all(w.category is DicomWarning for w in caught)
    assert series.warnings[0].startswith("pydicom warned while reading slice_0000.dcm: ")
    assert "implicit VR" in series.warnings[0]


def test_broken_links_are_skipped_and_listed(tmp_path):
    write(tmp_path / "ct")
    (tmp_path / "ct" / "slice_9999.dcm").symlink_to(tmp_path / "gone.dcm")
    with pytest.warns(DicomWarning, match=r"skipped 1 file.*slice_9999.dcm \(unreadable, not opened\)"):
        series = dicom.read_series(tmp_path / "ct")
    np.testing.assert_array_equal(series.volume, ramp())
