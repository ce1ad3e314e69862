"""medlab.convert: DICOM series to resampled NIfTI, in this process and on a Dask cluster."""

import hashlib

import nibabel as nib
import numpy as np
import pytest

from medlab import phantoms
from medlab.convert import Conversion, convert_all, convert_series, local_cluster, output_path, warm_up
from medlab.dicom import read_series, write_ct_series
from medlab.io import load_nifti

SPACING = (5.0, 2.8, 2.8)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    for k in range(3):
        volume = phantoms.ct_volume(seed=k, shape=(6, 32, 32), spacing=SPACING)
        write_ct_series(volume.image, root / f"case_{k}", spacing=SPACING, origin=(10.0 * k, -5.0, 3.0), seed=k)
    damaged = root / "case_damaged"
    damaged.mkdir()
    (damaged / "slice_0000.dcm").write_bytes(b"not a DICOM file")
    return root


def sources(root):
    return sorted(p for p in root.iterdir() if p.is_dir())


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_convert_series_resamples_and_keeps_the_geometry(archive, tmp_path):
    record = convert_series(archive / "case_1", tmp_path / "out.nii.gz", target_spacing=(2.5, 2.5, 2.5))
    series = read_series(archive / "case_1")
    volume, spacing, affine = load_nifti(tmp_path / "out.nii.gz")
    assert record["shape"] == volume.shape and record["spacing"] == pytest.approx(spacing)
    assert spacing == pytest.approx((2.5, 2.5, 2.5), rel=0.05)
    # voxel [0, 0, 0] stays where the series put it (NIfTI's RAS is LPS with x and y negated)
    np.testing.assert_allclose(affine[:3, 3], np.array(series.origin) * [-1, -1, 1], atol=1e-3)
    # the field of view is kept: about the same extent in mm along each axis
    extent_in = np.array(series.volume.shape) * np.array(series.spacing)
    extent_out = np.array(volume.shape) * np.array(spacing)
    np.testing.assert_allclose(extent_out, extent_in, rtol=0.15)
    assert abs(float(volume.mean()) - float(series.volume.mean())) < 20  # HU, interpolation only


def test_convert_all_reports_a_bad_series_and_converts_the_rest(archive, tmp_path):
    result = convert_all(sources(archive), tmp_path, target_spacing=(2.5, 2.5, 2.5), progress=False)
    assert isinstance(result, Conversion)
    assert [r["source"] for r in result.records] == [str(archive / f"case_{k}") for k in range(3)]
    assert list(result.failures) == [str(archive / "case_damaged")]
    assert "case_damaged" in result.failures[str(archive / "case_damaged")]
    assert "DicomError" in result.failures[str(archive / "case_damaged")]
    for record in result.records:
        assert record["output"] == str(output_path(record["source"], tmp_path))
        assert nib.load(record["output"]).shape == tuple(reversed(record["shape"]))
    assert result.seconds > 0


def test_convert_all_checks_its_spacing(archive, tmp_path):
    with pytest.raises(ValueError, match="target_spacing"):
        convert_all(sources(archive), tmp_path, target_spacing=(2.5, 0.0, 2.5), progress=False)


def test_convert_series_leaves_torch_threads_alone_unless_asked(archive, tmp_path):
    import torch

    before = torch.get_num_threads()
    convert_series(archive / "case_0", tmp_path / "a.nii.gz", target_spacing=(5.0, 5.0, 5.0))
    assert torch.get_num_threads() == before


@pytest.mark.slow
def test_a_dask_cluster_writes_the_same_bytes_and_reports_failures(archive, tmp_path):
    serial = convert_all(sources(archive), tmp_path / "serial", target_spacing=(2.5, 2.5, 2.5), progress=False)
    with local_cluster(workers=2) as client:
        warm_up(client)
        one = list(client.nthreads())[:1]
        single = convert_all(sources(archive), tmp_path / "one", target_spacing=(2.5, 2.5, 2.5), client=client,
                             workers=one, progress=False)
        both = convert_all(sources(archive), tmp_path / "two", target_spacing=(2.5, 2.5, 2.5), client=client,
                           progress=False)
        client.cluster.close()
    for run in (single, both):
        assert list(run.failures) == list(serial.failures)
        assert [digest(r["output"]) for r in run.records] == [digest(r["output"]) for r in serial.records]
