"""The synthetic cohort: deterministic, anatomically plausible, honest about difficulty."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.filters import threshold_otsu

from medlab import phantoms
from medlab.phantoms import CT_LABELS, HU, SITES, chest_radiographs, ct_volume, make_cohort, mr_like
from medlab.phantoms.fields import ellipse_distance, smooth_field


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def radiographs():
    return chest_radiographs(48, seed=5, size=96, pneumonia=0.5, nodules=0.6, sites=["A", "B", "C"] * 16)


@pytest.fixture(scope="module")
def ct():
    return ct_volume(seed=1, shape=(40, 96, 96), spacing=(8.0, 3.7, 3.7), nodules=2, liver_lesions=1)


# --- building blocks ---------------------------------------------------------------------------

def test_smooth_field_is_normalised_and_seeded():
    f = smooth_field(np.random.default_rng(0), (32, 40), batch=3, knots=5)
    assert f.shape == (3, 32, 40) and f.dtype == np.float32
    np.testing.assert_allclose(f.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(f.std(axis=(1, 2)), 1, atol=1e-3)
    np.testing.assert_array_equal(f, smooth_field(np.random.default_rng(0), (32, 40), batch=3, knots=5))
    # smooth: neighbouring pixels are strongly correlated
    assert np.corrcoef(f[:, :, 1:].ravel(), f[:, :, :-1].ravel())[0, 1] > 0.95


def test_ellipse_distance_is_exact_for_circles():
    y, x = np.array([[0.0], [0.5]]), np.array([[0.0, 0.3]])
    d = ellipse_distance(y, x, 0.0, 0.0, 0.5, 0.5)
    np.testing.assert_allclose(d, [[0.5, 0.2], [0.0, 0.5 - np.hypot(0.5, 0.3)]], atol=1e-6)


# --- radiographs -------------------------------------------------------------------------------

def test_radiographs_have_the_documented_shapes_and_ranges(radiographs):
    b = radiographs
    assert b.images.shape == (48, 1, 96, 96) and b.images.dtype == np.float32
    assert 0.0 <= b.images.min() and b.images.max() <= 1.0
    assert b.masks.shape == (48, len(b.mask_names), 96, 96) and b.masks.dtype == bool
    assert set(b.opacity_types) <= {"none", "diffuse", "consolidated"}
    assert all((t == "none") == (lab == 0) for t, lab in zip(b.opacity_types, b.labels))


def test_radiographs_are_deterministic():
    a = chest_radiographs(10, seed=3, size=64)
    b = chest_radiographs(10, seed=3, size=64)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, chest_radiographs(10, seed=4, size=64).images)


def test_anatomy_is_plausible(radiographs):
    b = radiographs
    right, left, heart = b.mask("lung_right"), b.mask("lung_left"), b.mask("heart")
    area = right.shape[1] * right.shape[2]
    for lung in (right, left):
        assert 0.06 < lung.sum(axis=(1, 2)).mean() / area < 0.25
    # the right lung is on the image's left (radiological convention); the heart sits left of centre
    cols = np.arange(96)
    assert (right.sum(axis=1) @ cols / right.sum(axis=(1, 2))).mean() < 40
    assert (left.sum(axis=1) @ cols / left.sum(axis=(1, 2))).mean() > 56
    assert (heart.sum(axis=1) @ cols / heart.sum(axis=(1, 2))).mean() > 48
    # air-filled lungs are darker than the heart's shadow
    img = b.images[:, 0]
    assert img[right | left].mean() < img[heart].mean() - 0.15
    # lesions lie in the lungs
    lungs = right | left | heart
    assert (b.mask("nodule") & ~lungs).sum() <= 0.05 * b.mask("nodule").sum()


def test_boxes_enclose_their_nodules(radiographs):
    b = radiographs
    for i, boxes in enumerate(b.boxes):
        nodule = b.mask("nodule")[i]
        assert boxes.shape[1] == 4 and np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        covered = np.zeros_like(nodule)
        for x0, y0, x1, y1 in boxes.astype(int):
            covered[y0:y1, x0:x1] = True
        assert not (nodule & ~covered).any()
    assert sum(len(bx) for bx in b.boxes) > 20


def test_opacity_raises_lung_intensity_and_sites_differ():
    healthy = chest_radiographs(40, seed=2, size=64, pneumonia=0.0, nodules=0.0)
    sick = chest_radiographs(40, seed=2, size=64, pneumonia=1.0, nodules=0.0)
    np.testing.assert_array_equal(healthy.mask("lung_right"), sick.mask("lung_right"))
    op = sick.mask("opacity")
    assert op.any(axis=(1, 2)).mean() > 0.9
    assert (sick.images[:, 0][op] - healthy.images[:, 0][op]).mean() > 0.03
    noise = {s: np.std(np.diff(chest_radiographs(20, seed=2, size=64, sites=s, nodules=0.0, pneumonia=0.0)
                               .images[:, 0, 10:20, 30:34], axis=-1)) for s in SITES}
    assert noise["A"] < noise["C"]


def test_patient_seeds_share_anatomy():
    b = chest_radiographs(4, seed=0, size=64, patient_seeds=[7, 7, 8, 8], pneumonia=0.0, nodules=0.0)
    assert np.array_equal(b.mask("lung_left")[0], b.mask("lung_left")[1])
    assert not np.array_equal(b.mask("lung_left")[0], b.mask("lung_left")[2])


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be an integer >= 1"), ({"n": 2, "size": 8}, "size must be an integer >= 32"),
    ({"n": 2, "sites": "Z"}, "unknown site 'Z'"), ({"n": 2, "sites": ["A"]}, "1 sites given for 2 images"),
    ({"n": 2, "pneumonia": [True]}, "one 0/1 flag"), ({"n": 2, "pneumonia": 1.5}, r"pneumonia must be a number in \[0, 1\]"),
    ({"n": 2, "pneumonia": [0.5, 1]}, "got 0.5 at index 0"), ({"n": 2, "nodules": [1, -1]}, "at index 1"),
    ({"n": 2, "nodules": [1, 99]}, "integer from 0 to 10"), ({"n": 2, "nodules": float("nan")}, "nodules must be"),
    ({"n": 2.5}, "n must be an integer"), ({"n": 2, "seed": -1}, "seed must be an integer >= 0"),
    ({"n": 2, "sites": 3}, "sites must be a site name"), ({"n": 2, "patient_seeds": [1, "x"]}, "patient_seeds must hold numbers"),
    ({"n": 20_000, "size": 1024}, "make them in batches"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        chest_radiographs(**kwargs)


def test_thresholding_does_not_solve_lung_segmentation(radiographs):
    """Otsu's threshold (dark = lung) is a baseline a U-Net must clearly beat, not a solution."""
    scores = []
    for img, right, left in zip(radiographs.images[:, 0], radiographs.mask("lung_right"), radiographs.mask("lung_left")):
        scores.append(dice(img < threshold_otsu(img), right | left))
    assert 0.3 < np.mean(scores) < 0.85, np.mean(scores)


# --- CT and MR ---------------------------------------------------------------------------------

def test_ct_hounsfield_units_per_tissue(ct):
    median = {name: float(np.median(ct.image[ct.mask(name)])) for name in CT_LABELS if ct.mask(name).any()}
    assert median["background"] == pytest.approx(-1000, abs=30)
    assert median["lung"] == pytest.approx(-850, abs=60)
    assert median["fat"] == pytest.approx(-100, abs=40)
    for organ in ("soft_tissue", "liver", "kidney", "heart"):
        assert 0 < median[organ] < 90, (organ, median[organ])
    assert median["bone"] > 200 and ct.image[ct.mask("bone")].max() > 500
    assert ct.image.dtype == np.float32 and ct.labels.dtype == np.uint8 and ct.spacing == (8.0, 3.7, 3.7)


def test_ct_axes_follow_patient_coordinates(ct):
    """Index 0 is the most inferior slice (LPS z grows towards the head), like an axial DICOM
    series read in order of position."""
    per_slice = lambda name: ct.mask(name).sum(axis=(1, 2))  # noqa: E731
    lung_z = np.flatnonzero(per_slice("lung"))
    liver_z = np.flatnonzero(per_slice("liver"))
    kidney_z = np.flatnonzero(per_slice("kidney"))
    assert kidney_z.mean() < liver_z.mean() < lung_z.mean()
    # the spine and aorta are posterior (larger y), the heart anterior
    assert np.nonzero(ct.mask("heart"))[1].mean() < np.nonzero(ct.mask("aorta"))[1].mean()
    # the liver is on the patient's right, i.e. the image's left
    assert np.nonzero(ct.mask("liver"))[2].mean() < ct.image.shape[2] / 2


def test_ct_lesions_are_recorded_and_labelled(ct):
    assert {l["kind"] for l in ct.lesions} == {"nodule", "liver_lesion"}
    lesion = ct.mask("lesion")
    for l in ct.lesions:
        z, y, x = (int(round(v)) for v in l["center"])
        assert lesion[z, y, x]


def test_ct_slice_and_determinism():
    a = ct_volume(seed=4, shape=(1, 64, 64), z_range=(0.3, 0.3))
    b = ct_volume(seed=4, shape=(1, 64, 64), z_range=(0.3, 0.3))
    assert a.image.shape == (1, 64, 64) and a.mask("liver").any()
    np.testing.assert_array_equal(a.image, b.image)


def test_noise_follows_the_site():
    noise = {s: ct_volume(seed=0, shape=(4, 64, 64), site=s).image[:, 2:8, 2:8].std() for s in ("A", "C")}
    assert noise["A"] < noise["C"]


@pytest.mark.parametrize("contrast, brighter, darker", [("T1", "fat", "kidney"), ("T2", "lesion", "liver")])
def test_mr_contrasts(ct, contrast, brighter, darker):
    mr = mr_like(ct, contrast=contrast, seed=0)
    assert mr.shape == ct.image.shape and mr.min() >= 0
    assert np.median(mr[ct.mask(brighter)]) > np.median(mr[ct.mask(darker)])
    with pytest.raises(ValueError, match="unknown contrast"):
        mr_like(ct, contrast="PD")


# --- cohort ------------------------------------------------------------------------------------

def test_cohort_patients_sites_and_risk():
    records = make_cohort(600, seed=0)
    by_patient = {}
    for r in records:
        by_patient.setdefault(r.patient_id, set()).add((r.site, r.age, r.sex, r.label, r.patient_seed))
    assert len(by_patient) == 600 and len(records) > 900
    assert all(len(v) == 1 for v in by_patient.values())  # one site, one anatomy per patient
    labels = np.array([r.label for r in records])
    assert 0.3 < labels.mean() < 0.55
    site_c = np.array([r.site == "C" for r in records])
    assert labels[site_c].mean() > labels[~site_c].mean()  # confounding by site, by design
    old = np.array([r.age >= 65 for r in records])
    assert labels[old].mean() > labels[~old].mean()


def test_cohort_rendering_keeps_order_and_labels():
    records = make_cohort(6, seed=1)
    batch = phantoms.render_radiographs(records, size=64)
    assert list(batch.labels) == [r.label for r in records] and batch.sites == [r.site for r in records]
    assert [len(b) for b in batch.boxes] == [r.n_nodules for r in records]


def test_cohort_arguments_are_checked():
    with pytest.raises(ValueError, match="images_per_patient"):
        make_cohort(3, images_per_patient=(2, 1))
    with pytest.raises(ValueError, match="unknown site"):
        make_cohort(3, sites=("A", "Q"))


def test_single_slices_get_lesions_too():
    slices = [ct_volume(seed=s, shape=(1, 64, 64), z_range=(0.4, 0.4), nodules=0, liver_lesions=1) for s in range(6)]
    assert sum(any(l["kind"] == "liver_lesion" for l in v.lesions) for v in slices) >= 5
    assert all(v.mask("lesion").any() == bool(v.lesions) for v in slices)


@pytest.mark.parametrize("kwargs, message", [
    ({"prevalence": 1.0}, r"prevalence must be a number in \(0, 1\)"),
    ({"prevalence": 0.0}, "prevalence"), ({"prevalence": float("nan")}, "prevalence"),
    ({"nodule_rate": -0.1}, "nodule_rate"), ({"n_patients": 0}, "n_patients must be an integer >= 1"),
    ({"n_patients": 2.0}, "n_patients must be an integer"), ({"images_per_patient": (1,)}, "images_per_patient"),
    ({"images_per_patient": (0, 2)}, "images_per_patient"), ({"images_per_patient": (1.5, 2)}, "images_per_patient"),
    ({"sites": "A"}, "sites must be a non-empty list"), ({"sites": ()}, "sites must be a non-empty list"),
    ({"site_weights": [1, -1, 1]}, "site_weights"), ({"site_weights": [0, 0, 0]}, "site_weights"),
    ({"site_weights": [1, float("nan"), 1]}, "site_weights"), ({"site_weights": [1, 1]}, "site_weights"),
    ({"seed": -2}, "seed"),
])
def test_cohort_bad_arguments_are_named(kwargs, message):
    kwargs = {"n_patients": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_cohort(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"shape": (0, 32, 32)}, r"shape must be 3 integers >= 1 \(z, y, x\)"), ({"shape": (4, 32)}, "shape"),
    ({"shape": (4.0, 32, 32)}, "shape"), ({"shape": (2048, 1024, 1024)}, "at most"),
    ({"spacing": (-1, 1, 1)}, "spacing must be three positive numbers"), ({"spacing": (1, float("inf"), 1)}, "spacing"),
    ({"spacing": (1, 1)}, "spacing"), ({"nodules": -1}, "nodules must be an integer >= 0"),
    ({"liver_lesions": 1.5}, "liver_lesions"), ({"z_range": (0, float("nan"))}, "z_range"),
    ({"z_range": 0.3}, "z_range"), ({"site": "Q"}, "unknown site"), ({"site": ["A"]}, "unknown site"),
    ({"patient_seed": -1}, "patient_seed"),
])
def test_ct_bad_arguments_are_named(kwargs, message):
    kwargs = {"shape": (2, 16, 16), **kwargs}
    with pytest.raises(ValueError, match=message):
        ct_volume(**kwargs)


def test_mr_bad_arguments_are_named():
    ct = ct_volume(shape=(2, 16, 16))
    for kwargs, message in (({"noise": -0.1}, "noise"), ({"bias": float("nan")}, "bias"),
                            ({"contrast": ["T1"]}, "unknown contrast"), ({"seed": 1.5}, "seed")):
        with pytest.raises(ValueError, match=message):
            mr_like(ct, **kwargs)
    with pytest.raises(ValueError, match="ct must be a CTVolume"):
        mr_like(ct.image)


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=3), st.lists(st.integers(-2, 3), max_size=4))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(n=_ANY, size=st.one_of(_ANY, st.sampled_from([32, 40])), pneumonia=_ANY, nodules=_ANY, seed=_ANY)
def test_radiograph_arguments_fuzz(n, size, pneumonia, nodules, seed):
    """Any argument either gives images of the asked-for size or a ValueError that names it."""
    try:
        batch = chest_radiographs(n, size=size, pneumonia=pneumonia, nodules=nodules, seed=seed)
    except ValueError as exc:
        assert any(word in str(exc) for word in ("n ", "size", "pneumonia", "nodules", "seed", "pixels"))
        return
    assert batch.images.shape == (n, 1, size, size) and np.isfinite(batch.images).all()
    assert set(np.unique(batch.labels)) <= {0, 1}


@settings(max_examples=120, deadline=None, derandomize=True)
@given(shape=st.one_of(_ANY, st.tuples(st.integers(-1, 3), st.integers(-1, 12), st.integers(1, 12))),
       spacing=st.one_of(_ANY, st.tuples(*[st.one_of(st.floats(-2, 9), st.just(float("nan")))] * 3)), nodules=_ANY,
       z_range=st.one_of(_ANY, st.tuples(st.floats(-2, 2), st.floats(allow_nan=True))))
def test_ct_arguments_fuzz(shape, spacing, nodules, z_range):
    """Any argument either gives a finite volume of the asked-for shape or a ValueError that names it."""
    try:
        ct = ct_volume(shape=shape, spacing=spacing, nodules=nodules, z_range=z_range)
    except ValueError as exc:
        assert any(word in str(exc) for word in ("shape", "spacing", "nodules", "z_range"))
        return
    assert ct.image.shape == tuple(shape) == ct.labels.shape and np.isfinite(ct.image).all()


@settings(max_examples=120, deadline=None, derandomize=True)
@given(n=_ANY, prevalence=_ANY, nodule_rate=_ANY, low=_ANY, high=_ANY)
def test_cohort_arguments_fuzz(n, prevalence, nodule_rate, low, high):
    """Any argument either gives a cohort of ``n`` patients or a ValueError that names it."""
    try:
        records = make_cohort(n, prevalence=prevalence, nodule_rate=nodule_rate, images_per_patient=(low, high))
    except ValueError as exc:
        assert any(word in str(exc) for word in ("n_patients", "prevalence", "nodule_rate", "images_per_patient"))
        return
    assert len({r.patient_id for r in records}) == n and all(r.label in (0, 1) for r in records)
