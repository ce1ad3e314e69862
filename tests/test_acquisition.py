"""Site effects: sampled once, applied deterministically, one effect at a time or all together."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from medlab import phantoms
from medlab.phantoms import (EFFECTS, SITES, Acquisition, Site, apply_blur, apply_contrast, apply_gamma, apply_noise,
                             apply_shading, apply_site, blur_sigma, chest_radiographs, sample_acquisition)
from medlab.phantoms.acquisition import acquire_radiographs
from medlab.phantoms.fields import smooth_field


def reference_acquire(images, sites, rng):
    """Sampling and applying in one pass, as acquire_radiographs did before the split."""
    out = np.empty_like(images)
    n = len(images)
    shade_all = smooth_field(rng, images.shape[1:], batch=n, knots=4)
    noise_all = rng.standard_normal(images.shape, dtype=np.float32)
    for name in sorted(set(sites)):
        site = SITES[name]
        idx = np.array([i for i, s in enumerate(sites) if s == name])
        x = images[idx]
        mean = x.mean(axis=(1, 2), keepdims=True)
        x = mean + site.contrast * (x - mean)
        if site.gamma != 1.0:
            x = np.exp(site.gamma * np.log(np.clip(x, 1e-4, 1.0)))
        x = x * np.exp(site.inhomogeneity * shade_all[idx])
        sigma = float(np.hypot(site.blur, 0.3 * (1.0 / site.resolution - 1.0)))
        if sigma > 0:
            x = ndi.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")
        x = x + site.noise * (0.5 + 0.5 * np.sqrt(np.clip(x, 0, 1))) * noise_all[idx]
        out[idx] = np.clip(x, 0.0, 1.0)
    return out


def clean_images(n=4, h=40, w=48, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, h, w)).astype(dtype)


def high_frequency_energy(images):
    spectrum = np.abs(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True))) ** 2
    fy = np.abs(np.fft.fftfreq(images.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(images.shape[2]))[None, :]
    return float(spectrum[:, np.maximum(fy, fx) > 0.25].sum())


@pytest.fixture
def acquisition():
    return sample_acquisition(np.random.default_rng(3), (4, 40, 48))


# --- sampling then applying is acquire_radiographs ----------------------------------------------

@pytest.mark.parametrize("sites", [["A"] * 4, ["C", "A", "B", "C"], ["B", "B", "C", "C"], ["C"] * 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_acquire_radiographs_is_unchanged_by_the_split(sites, dtype):
    images = clean_images(dtype=dtype)
    for seed in (0, 1, 17):
        expected = reference_acquire(images.copy(), sites, np.random.default_rng(seed))
        got = acquire_radiographs(images.copy(), sites, np.random.default_rng(seed))
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_array_equal(got, expected)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(sorted(SITES)), min_size=1, max_size=5), st.integers(0, 2**31),
       st.integers(8, 24), st.integers(8, 24))
def test_sample_then_apply_site_is_acquire_radiographs(sites, seed, h, w):
    images = clean_images(len(sites), h, w, seed=seed % 1000)
    acquisition = sample_acquisition(np.random.default_rng(seed), images.shape)
    composed = np.empty_like(images)
    for i, name in enumerate(sites):
        composed[i] = apply_site(images[i:i + 1], name, acquisition[i])[0]
    np.testing.assert_array_equal(composed, acquire_radiographs(images, sites, np.random.default_rng(seed)))
    np.testing.assert_array_equal(composed, reference_acquire(images, sites, np.random.default_rng(seed)))


def test_sample_acquisition_draws_shading_then_noise():
    acquisition = sample_acquisition(np.random.default_rng(5), (3, 20, 24))
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(acquisition.shading, smooth_field(rng, (20, 24), batch=3, knots=4))
    np.testing.assert_array_equal(acquisition.noise, rng.standard_normal((3, 20, 24), dtype=np.float32))
    assert acquisition.shape == (3, 20, 24) and len(acquisition) == 3
    assert acquisition.shading.dtype == acquisition.noise.dtype == np.float32
    np.testing.assert_allclose(acquisition.shading.std(axis=(1, 2)), 1, atol=1e-3)
    assert repr(acquisition) == "Acquisition(shape=(3, 20, 24))"


def test_acquisition_selects_images():
    acquisition = sample_acquisition(np.random.default_rng(0), (4, 16, 16))
    part = acquisition[[3, 1]]
    assert part.shape == (2, 16, 16)
    np.testing.assert_array_equal(part.noise, acquisition.noise[[3, 1]])
    np.testing.assert_array_equal(acquisition[2].shading, acquisition.shading[2:3])
    np.testing.assert_array_equal(acquisition[1:3].noise, acquisition.noise[1:3])
    with pytest.raises(AttributeError):
        acquisition.noise = acquisition.shading


def test_site_c_effects_bring_a_site_a_radiograph_towards_site_c():
    """Site C's effects on a site-A radiograph move its spread of intensities towards that of the
    same patients imaged at site C."""
    a = chest_radiographs(2, seed=4, size=64, sites="A", pneumonia=0.0, nodules=0.0).images[:, 0]
    c = chest_radiographs(2, seed=4, size=64, sites="C", pneumonia=0.0, nodules=0.0).images[:, 0]
    acquisition = sample_acquisition(np.random.default_rng(0), a.shape)
    shifted = apply_site(a, "C", acquisition)
    assert abs(float(shifted.std() - c.std())) < abs(float(a.std() - c.std()))


# --- each effect alone ---------------------------------------------------------------------------

def test_contrast_scales_deviations_about_the_mean():
    x = clean_images(dtype=np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    for contrast in (0.0, 0.5, 0.75, 1.0, 1.3):
        y = apply_contrast(x, contrast=contrast)
        np.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean, atol=1e-12)
        np.testing.assert_allclose(y - mean, contrast * (x - mean), atol=1e-12)
    np.testing.assert_allclose(apply_contrast(x, contrast=1.0), x, atol=1e-12)


def test_gamma_one_is_the_identity_and_gamma_is_a_power():
    x = clean_images()
    np.testing.assert_array_equal(apply_gamma(x, gamma=1.0), x)
    np.testing.assert_allclose(apply_gamma(x, gamma=2.0), x.astype(np.float64) ** 2, rtol=1e-5)
    np.testing.assert_allclose(apply_gamma(np.full((1, 2, 2), 0.25), gamma=0.5), 0.5)
    assert (apply_gamma(x, gamma=1.2) < x).all()


def test_shading_of_strength_zero_is_the_identity(acquisition):
    x = clean_images()
    np.testing.assert_array_equal(apply_shading(x, acquisition.shading, strength=0.0), x)
    shaded = apply_shading(x, acquisition.shading, strength=0.18)
    np.testing.assert_allclose(shaded / x, np.exp(0.18 * acquisition.shading), rtol=1e-5)


def test_blur_lowers_high_frequency_energy():
    x = clean_images()
    np.testing.assert_array_equal(apply_blur(x, blur=0.0, resolution=1.0), x)
    energies = [high_frequency_energy(apply_blur(x, blur=b)) for b in (0.0, 0.6, 1.1)]
    assert energies[0] > 3 * energies[1] > 3 * energies[2]
    assert high_frequency_energy(apply_blur(x, blur=0.6, resolution=0.7)) < energies[1]
    np.testing.assert_allclose(apply_blur(x, blur=0.9).mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-3)
    assert blur_sigma(blur=0.6) == pytest.approx(0.6)
    assert blur_sigma(blur=0.0, resolution=0.5) == pytest.approx(0.3)
    np.testing.assert_array_equal(apply_blur(x[:1], blur=0.9)[0], apply_blur(x, blur=0.9)[0])  # images stay apart


@pytest.mark.parametrize("intensity, factor", [(0.0, 0.5), (0.25, 0.75), (1.0, 1.0)])
def test_noise_standard_deviation_matches_the_level(intensity, factor):
    x = np.full((4, 128, 128), intensity, dtype=np.float32)
    noise = sample_acquisition(np.random.default_rng(1), x.shape).noise
    y = apply_noise(x, noise, level=0.04)
    assert float((y - x).std()) == pytest.approx(0.04 * factor, rel=0.02)
    np.testing.assert_allclose(y - x, 0.04 * factor * noise, atol=1e-6)
    np.testing.assert_array_equal(apply_noise(x, noise, level=0.0), x)


def test_site_noise_is_ordered_a_below_b_below_c():
    x = np.full((2, 64, 64), 0.5, dtype=np.float32)
    acquisition = sample_acquisition(np.random.default_rng(2), x.shape)
    spread = {name: float((apply_site(x, name, acquisition, effects=("noise",)) - x).std()) for name in SITES}
    assert spread["A"] < spread["B"] < spread["C"]
    assert spread["C"] / spread["A"] == pytest.approx(SITES["C"].noise / SITES["A"].noise, rel=1e-4)


def test_apply_site_applies_exactly_the_named_effects(acquisition):
    x = clean_images()
    site = SITES["C"]
    alone = {
        "contrast": apply_contrast(x, contrast=site.contrast),
        "gamma": apply_gamma(x, gamma=site.gamma),
        "shading": apply_shading(x, acquisition.shading, strength=site.inhomogeneity),
        "blur": apply_blur(x, blur=site.blur, resolution=site.resolution),
        "noise": apply_noise(x, acquisition.noise, level=site.noise),
    }
    for name, expected in alone.items():
        np.testing.assert_array_equal(apply_site(x, "C", acquisition, effects=(name,)), np.clip(expected, 0, 1))
    np.testing.assert_array_equal(apply_site(x, "C", effects="blur"), np.clip(alone["blur"], 0, 1))
    np.testing.assert_array_equal(apply_site(x, "C", acquisition, effects=("noise", "blur")),
                                  apply_site(x, "C", acquisition, effects=("blur", "noise")))
    np.testing.assert_array_equal(apply_site(x, "C", acquisition, effects=()), x)
    np.testing.assert_array_equal(apply_site(x, "C", acquisition), apply_site(x, SITES["C"], acquisition))
    assert EFFECTS == ("contrast", "gamma", "shading", "blur", "noise")


def test_a_custom_site_is_applied():
    x = clean_images()
    plain = Site("no degradation", noise=0.0, blur=0.0, inhomogeneity=0.0, resolution=1.0, gamma=1.0,
                 contrast=1.0, ct_noise_hu=0.0)
    acquisition = sample_acquisition(np.random.default_rng(0), x.shape)
    np.testing.assert_allclose(apply_site(x, plain, acquisition), x, atol=1e-6)


def test_effects_are_deterministic_and_leave_their_inputs_alone(acquisition):
    x = clean_images()
    before, state = x.copy(), np.random.get_state()[1].copy()
    fields = acquisition.shading.copy(), acquisition.noise.copy()
    first = apply_site(x, "C", acquisition)
    for function, kwargs in [(apply_contrast, {"contrast": 0.5}), (apply_gamma, {"gamma": 1.0}),
                             (apply_blur, {"blur": 0.0})]:
        assert function(x, **kwargs) is not x
    np.testing.assert_array_equal(apply_site(x.copy(), "C", acquisition), first)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(acquisition.shading, fields[0])
    np.testing.assert_array_equal(acquisition.noise, fields[1])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_the_package_exports_the_site_effects():
    for name in ("EFFECTS", "Acquisition", "sample_acquisition", "apply_site", "apply_contrast", "apply_gamma",
                 "apply_shading", "apply_blur", "apply_noise", "blur_sigma"):
        assert name in phantoms.__all__ and hasattr(phantoms, name)


# --- bad arguments --------------------------------------------------------------------------------

X = np.full((2, 8, 8), 0.5, dtype=np.float32)
FIELD = np.zeros((2, 8, 8), dtype=np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda: apply_contrast(X[0], contrast=1.0), r"images must be an array of shape \(N, H, W\)"),
    (lambda: apply_contrast(np.zeros((0, 8, 8)), contrast=1.0), r"N, H, W >= 1; got shape \(0, 8, 8\)"),
    (lambda: apply_contrast(X.astype(np.uint8), contrast=1.0), "floating-point intensities; got dtype uint8"),
    (lambda: apply_contrast(np.full((1, 2, 2), np.nan), contrast=1.0), "images must be finite"),
    (lambda: apply_contrast(X, contrast=-0.5), "contrast must be a number >= 0; got -0.5"),
    (lambda: apply_contrast(X, contrast="high"), "contrast must be a number"),
    (lambda: apply_gamma(X, gamma=0.0), "gamma must be a number > 0; got 0"),
    (lambda: apply_gamma(X, gamma=float("inf")), "gamma must be a number > 0; got inf"),
    (lambda: apply_shading(X, FIELD[:1], strength=0.1), r"field must have the images' shape \(2, 8, 8\)"),
    (lambda: apply_shading(X, FIELD, strength=-1), "strength must be a number >= 0"),
    (lambda: apply_blur(X, blur=-1.0), "blur must be a number >= 0"),
    (lambda: apply_blur(X, blur=1.0, resolution=0.0), r"resolution must be a number in \(0, 1\]; got 0"),
    (lambda: apply_blur(X, blur=1.0, resolution=1.5), r"resolution must be a number in \(0, 1\]; got 1.5"),
    (lambda: apply_noise(X, FIELD[:, :4], level=0.1), "noise must have the images' shape"),
    (lambda: apply_noise(X, FIELD, level=-0.1), "level must be a number >= 0"),
    (lambda: apply_site(X, "Z", effects=("blur",)), "unknown site 'Z'"),
    (lambda: apply_site(X, "C", effects=("blurr",)), "unknown effect 'blurr': effects are named among contrast"),
    (lambda: apply_site(X, "C", effects=("blur", "blur")), "each effect at most once"),
    (lambda: apply_site(X, "C"), "'shading' and 'noise' need random fields: pass acquisition=sample_acquisition"),
    (lambda: apply_site(X, "C", effects=("noise",)), "the effect 'noise' needs a random field: pass acquisition="),
    (lambda: apply_site(X, "C", FIELD), "acquisition must be an Acquisition"),
    (lambda: apply_site(X, "C", sample_acquisition(np.random.default_rng(0), (3, 8, 8))),
     r"acquisition is for images of shape \(3, 8, 8\); got images of shape \(2, 8, 8\)"),
    (lambda: sample_acquisition(np.random.default_rng(0), (8, 8)), r"shape must be 3 integers >= 1 \(N, H, W\)"),
    (lambda: sample_acquisition(0, (2, 8, 8)), "rng must be a numpy.random.Generator"),
    (lambda: Acquisition(shading=FIELD, noise=FIELD[:1]), "must have one shape"),
    (lambda: acquire_radiographs(X, ["A"], np.random.default_rng(0)), r"one site name per image \(2\)"),
    (lambda: acquire_radiographs(X, "AA", np.random.default_rng(0)), "one site name per image"),
    (lambda: acquire_radiographs(X, ["A", "Q"], np.random.default_rng(0)), "unknown site 'Q'"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
