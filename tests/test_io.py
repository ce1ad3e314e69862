import gzip
import warnings

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medlab import dicom, io
from medlab.io import NiftiError

SPACING = (2.0, 0.5, 0.75)  # (z, y, x) mm
ORIGIN = (10.0, 20.0, 30.0)  # LPS mm


def ramp(shape=(5, 6, 7)):
    z, y, x = np.indices(shape)
    return (100 * z + 10 * y + x).astype(np.float32)


@pytest.fixture(scope="module")
def load_image():
    """MONAI's ``LoadImage(image_only=True, **kwargs)``, imported once (it is slow to import)."""
    monai_transforms = pytest.importorskip("monai.transforms")

    def make(**kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI notes optional GPU decoders it cannot find
            return monai_transforms.LoadImage(image_only=True, **kwargs)

    return make


def test_round_trip_keeps_volume_spacing_and_axes(tmp_path):
    path = io.save_nifti(ramp(), tmp_path / "out" / "ramp.nii.gz", spacing=SPACING, origin=ORIGIN)
    volume, spacing, affine = io.load_nifti(path)
    assert path == tmp_path / "out" / "ramp.nii.gz"
    assert volume.dtype == np.float32 and volume.shape == (5, 6, 7)
    np.testing.assert_array_equal(volume, ramp())
    assert spacing == SPACING
    assert affine.shape == (4, 4)
    image = nib.load(path)  # on disk the axes are NIfTI's (i, j, k) = (x, y, z)
    assert image.shape == (7, 6, 5) and image.header.get_zooms() == (0.75, 0.5, 2.0)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert int(image.header["sform_code"]) == int(image.header["qform_code"]) == 1
    assert image.get_fdata()[4, 3, 2] == ramp()[2, 3, 4] == 234


def test_a_known_voxel_lands_at_its_ras_coordinate(tmp_path):
    path = io.save_nifti(ramp(), tmp_path / "ramp.nii", spacing=SPACING, origin=ORIGIN)
    _, _, affine = io.load_nifti(path)
    # voxel volume[k=3, j=4, i=5] lies at LPS origin + (5*0.75, 4*0.5, 3*2.0) = (13.75, 22, 36)
    np.testing.assert_allclose(affine @ [5, 4, 3, 1], [-13.75, -22.0, 36.0, 1.0], atol=1e-5)
    assert nib.aff2axcodes(affine) == ("L", "P", "S")  # x grows to the patient's left, etc.


def test_direction_rows_become_affine_columns(tmp_path):
    direction = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])  # sagittal
    affine = io.affine_from_geometry(spacing=SPACING, origin=ORIGIN, direction=direction)
    lps = io.LPS_TO_RAS @ affine @ [1, 0, 0, 1]  # one step along x (a row) ...
    np.testing.assert_allclose(lps[:3] - ORIGIN, 0.75 * direction[0])  # ... moves along the row cosine
    lps = io.LPS_TO_RAS @ affine @ [0, 0, 2, 1]  # two slices on
    np.testing.assert_allclose(lps[:3] - ORIGIN, 2 * 2.0 * direction[2])
    path = io.save_nifti(ramp(), tmp_path / "sag.nii.gz", spacing=SPACING, origin=ORIGIN, direction=direction)
    np.testing.assert_allclose(io.load_nifti(path)[2], affine, atol=1e-6)
    assert nib.aff2axcodes(affine) == ("P", "I", "R")


def test_a_dicom_series_saved_as_nifti_keeps_its_positions(tmp_path):
    volume = ramp((4, 6, 7)) - 1000
    paths = dicom.write_ct_series(volume, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    series = dicom.read_series(tmp_path / "ct")
    path = io.save_nifti(series.volume, tmp_path / "ct.nii.gz", spacing=series.spacing, origin=series.origin,
                         direction=series.direction)
    loaded, spacing, affine = io.load_nifti(path)
    np.testing.assert_array_equal(loaded, volume)
    assert spacing == SPACING
    for k, file in enumerate(paths):  # the first voxel of every slice sits at its ImagePositionPatient
        ipp = [float(v) for v in pydicom.dcmread(file).ImagePositionPatient]
        np.testing.assert_allclose(io.LPS_TO_RAS @ affine @ [0, 0, k, 1], [*ipp, 1], atol=1e-5)


def test_monai_reads_our_nifti_as_x_y_z_with_the_same_affine(tmp_path, load_image):
    path = io.save_nifti(ramp(), tmp_path / "ramp.nii.gz", spacing=SPACING, origin=ORIGIN)
    image = load_image()(str(path))
    # MONAI keeps NIfTI's axis order (x, y, z) and adds no channel: ours transposed.
    assert tuple(image.shape) == (7, 6, 5)
    np.testing.assert_array_equal(np.asarray(image), ramp().transpose(2, 1, 0))
    np.testing.assert_allclose(np.asarray(image.affine), io.load_nifti(path)[2], atol=1e-6)


def world_of_each_value(volume_xyz, affine):
    """RAS position (mm) of every voxel, keyed by its (unique) value."""
    index = np.indices(volume_xyz.shape).reshape(3, -1)
    world = (affine @ np.vstack([index, np.ones(index.shape[1])]))[:3].T
    return dict(zip(volume_xyz.reshape(-1).tolist(), np.round(world, 4).tolist()))


@pytest.mark.parametrize(
    "orientation, row, col, step",
    [("axial", (1, 0, 0), (0, 1, 0), (0, 0, 2.0)), ("sagittal", (0, 1, 0), (0, 0, -1), (2.0, 0, 0))],
)
def test_monais_dicom_reader_puts_every_voxel_where_we_do(
    tmp_path, load_image, orientation, row, col, step
):
    volume = ramp((4, 6, 7)) - 1000
    paths = dicom.write_ct_series(volume, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [*row, *col]
        ds.ImagePositionPatient = list(np.add(ORIGIN, np.multiply(step, k)))
        ds.save_as(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dicom.DicomWarning)
        series = dicom.read_series(tmp_path / "ct")
    assert series.metadata["orientation"] == orientation
    image = load_image(reader="PydicomReader")(str(tmp_path / "ct"))
    ours = io.affine_from_geometry(spacing=series.spacing, origin=series.origin, direction=series.direction)
    # The two readers may stack the slices in opposite orders; the anatomy must not move.
    assert world_of_each_value(np.asarray(image), np.asarray(image.affine)) == world_of_each_value(
        series.volume.transpose(2, 1, 0), ours
    )
    if orientation == "axial":  # here both choose the same order
        np.testing.assert_array_equal(np.asarray(image), series.volume.transpose(2, 1, 0))


def test_dtypes_are_kept_or_made_float32(tmp_path):
    mask = ramp() > 300
    io.save_nifti(mask, tmp_path / "mask.nii.gz", spacing=SPACING)
    io.save_nifti(ramp().astype(np.int16), tmp_path / "int.nii.gz", spacing=SPACING)
    io.save_nifti(ramp().astype(np.float64), tmp_path / "f64.nii.gz", spacing=SPACING)
    assert nib.load(tmp_path / "mask.nii.gz").get_data_dtype() == np.uint8
    assert nib.load(tmp_path / "int.nii.gz").get_data_dtype() == np.int16
    assert nib.load(tmp_path / "f64.nii.gz").get_data_dtype() == np.float32
    np.testing.assert_array_equal(io.load_nifti(tmp_path / "mask.nii.gz")[0], mask)


def test_2d_and_singleton_4d_files_load_as_volumes(tmp_path):
    nib.save(
        nib.Nifti1Image(np.arange(12, dtype=np.float32).reshape(4, 3), np.eye(4)), tmp_path / "flat.nii"
    )
    volume, spacing, _ = io.load_nifti(tmp_path / "flat.nii")
    assert volume.shape == (1, 3, 4) and volume[0, 2, 1] == 1 * 3 + 2 and spacing == (1.0, 1.0, 1.0)
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2, 1), np.float32), np.eye(4)), tmp_path / "t1.nii")
    assert io.load_nifti(tmp_path / "t1.nii")[0].shape == (2, 3, 4)
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2, 5), np.float32), np.eye(4)), tmp_path / "t5.nii")
    with pytest.raises(NiftiError, match=r"t5.nii holds a 4-D image of shape \(4, 3, 2, 5\)"):
        io.load_nifti(tmp_path / "t5.nii")


def test_channel_first_reads_one_volume_per_channel(tmp_path):
    xyzc = np.arange(4 * 3 * 2 * 2, dtype=np.int16).reshape(4, 3, 2, 2)
    image = nib.Nifti1Image(xyzc, np.diag([0.8, 0.9, 2.5, 1.0]))
    image.header.set_zooms((0.8, 0.9, 2.5, 1.0))
    nib.save(image, tmp_path / "two.nii.gz")
    volume, spacing, affine = io.load_nifti(tmp_path / "two.nii.gz", channel_first=True)
    assert volume.dtype == np.float32 and volume.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(volume, xyzc.transpose(3, 2, 1, 0))
    assert volume[1, 0, 2, 3] == xyzc[3, 2, 0, 1] == 3 * 12 + 2 * 4 + 0 * 2 + 1
    assert spacing == pytest.approx((2.5, 0.9, 0.8))
    np.testing.assert_allclose(affine, np.diag([0.8, 0.9, 2.5, 1.0]), atol=1e-6)
    with pytest.raises(NiftiError, match=r"two.nii.gz holds a 4-D image .*with channel_first=True"):
        io.load_nifti(tmp_path / "two.nii.gz")
    # A 3-D file gets one channel, and the same volume as without channel_first.
    path = io.save_nifti(ramp(), tmp_path / "ramp.nii.gz", spacing=SPACING, origin=ORIGIN)
    single, spacing, _ = io.load_nifti(path, channel_first=True)
    assert single.shape == (1, 5, 6, 7) and spacing == SPACING
    np.testing.assert_array_equal(single[0], io.load_nifti(path)[0])
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2, 1, 5), np.float32), np.eye(4)), tmp_path / "t5.nii")
    with pytest.raises(NiftiError, match=r"holds a 5-D image of shape \(4, 3, 2, 1, 5\); .*3-D volumes"):
        io.load_nifti(tmp_path / "t5.nii", channel_first=True)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(NiftiError, match="missing.nii.gz does not exist"):
        io.load_nifti(tmp_path / "missing.nii.gz")
    with pytest.raises(NiftiError, match=r"does not exist \(it is a folder\)"):
        io.load_nifti(tmp_path)
    (tmp_path / "junk.nii.gz").write_bytes(b"this is not a NIfTI file")
    with pytest.raises(NiftiError, match="junk.nii.gz is not a readable NIfTI file"):
        io.load_nifti(tmp_path / "junk.nii.gz")
    good = io.save_nifti(ramp(), tmp_path / "good.nii", spacing=SPACING)
    (tmp_path / "cut.nii").write_bytes(good.read_bytes()[:500])
    with pytest.raises(NiftiError, match="cut.nii: its header promises .* truncated"):
        io.load_nifti(tmp_path / "cut.nii")
    assert issubclass(NiftiError, ValueError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(volume=np.zeros((2, 2))), "3-D array"),
        (dict(spacing=(1.0, 0.0, 1.0)), "spacing must be positive"),
        (dict(spacing=(1.0, 1.0)), "three numbers"),
        (dict(path="volume.nrrd"), "ends with .nii or .nii.gz"),
        (dict(direction=np.ones((3, 3))), "orthonormal rows"),
    ],
)
def test_save_nifti_checks_its_arguments(tmp_path, kwargs, match):
    arguments = dict(volume=ramp(), spacing=SPACING, path="v.nii.gz") | kwargs
    arguments["path"] = tmp_path / arguments["path"]
    direction = arguments.pop("direction", None)
    with pytest.raises(NiftiError, match=match):
        io.save_nifti(arguments["volume"], arguments["path"], spacing=arguments["spacing"], direction=direction)


def _damaged(tmp_path, name, change):
    """A small valid NIfTI file with ``change(image)`` applied to its header before saving."""
    image = nib.Nifti1Image(np.ones((5, 6, 7), np.float32), np.diag([2.0, 2.0, 3.0, 1.0]))
    change(image)
    path = tmp_path / name
    nib.save(image, path)
    return path


def _nan_pixdim(image):
    image.header["pixdim"][2] = np.nan


def _nan_affine(image):
    affine = image.affine.copy()
    affine[0, 3] = np.nan
    image.set_sform(affine, code=1)
    image.set_qform(None, code=0)


def _flat_affine(image):
    affine = np.diag([2.0, 2.0, 0.0, 1.0])
    image.set_sform(affine, code=1)
    image.set_qform(None, code=0)


@pytest.mark.parametrize("change, match", [
    (_nan_pixdim, r"voxel sizes \(pixdim\) .*nan"),
    (_nan_affine, "affine that is not finite"),
    (_flat_affine, "maps voxels onto a plane"),
])
def test_damaged_geometry_is_refused(tmp_path, change, match):
    path = _damaged(tmp_path, "bad.nii.gz", change)
    with pytest.raises(NiftiError, match=match):
        io.load_nifti(path)


def test_a_header_promising_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    raw = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    raw.header.set_data_shape((32767, 32767, 4000))  # 16 TiB of float32 in a file of 200 bytes
    path = tmp_path / "huge.nii.gz"
    path.write_bytes(gzip.compress(raw.header.binaryblock + b"\0" * 104))
    with pytest.raises(NiftiError, match=r"huge.nii.gz: its header promises an image of shape \(32767, 32767, 4000\)"):
        io.load_nifti(path)


def test_an_empty_image_is_refused(tmp_path):
    raw = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    raw.header.set_data_shape((0, 4, 4))
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(gzip.compress(raw.header.binaryblock + b"\0" * 4))
    with pytest.raises(NiftiError, match=r"empty.nii.gz has an empty image of shape \(0, 4, 4\)"):
        io.load_nifti(path)
