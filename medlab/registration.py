"""Image registration: point-based fits, SimpleITK's intensity-based registration, and the
measures a registration is judged by (target registration error, Jacobian determinant, folding).

Conventions. Images are NumPy arrays ``(y, x)`` (or ``(z, y, x)``) with a pixel ``spacing`` in
mm and the first pixel's centre at 0; points are ``(K, ndim)`` arrays in mm in the same axis
order. A transform maps a point of the *fixed* image to the point of the *moving* image that
shows the same anatomy (SimpleITK's convention), so resampling the moving image through it
lays the moving image over the fixed one. SimpleITK orders axes ``(x, y[, z])``; the helpers
here convert, so that nothing else has to.

>>> import numpy as np
>>> a = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
>>> matrix, offset = rigid_fit(a, a + [3.0, -1.0])
>>> np.round(offset, 6).tolist(), bool(np.allclose(matrix, np.eye(2)))
([3.0, -1.0], True)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from medlab import arguments
from medlab.errors import reason

TRANSFORMS = ("rigid", "similarity", "affine", "bspline")
"""The transforms :func:`register` optimises."""

METRICS = ("mean_squares", "correlation", "mattes")
"""Similarity metrics of :func:`register`: mean squared difference (one modality, same
intensities), normalised cross-correlation (one modality, linearly related intensities) and
Mattes mutual information (any modalities whose intensities are statistically related)."""


def rigid_fit(fixed_points: Any, moving_points: Any, *, scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares rotation (and, with ``scale``, isotropic scale) and translation that map
    ``fixed_points`` onto ``moving_points`` (both ``(K, ndim)`` in mm, paired row by row):
    ``matrix`` ``(ndim, ndim)`` and ``offset`` ``(ndim,)`` with ``moving ≈ fixed @ matrix.T + offset``.
    The closed form of Arun et al. (1987) and Umeyama (1991), which never returns a reflection.

    Taught in lab 09, section 2 (Landmarks: FLE, FRE and TRE).
    """
    p = arguments.points(fixed_points, "fixed_points")
    q = arguments.points(moving_points, "moving_points", ndim=p.shape[1])
    if len(p) != len(q):
        raise ValueError(f"{len(p)} fixed points but {len(q)} moving points: they must be paired")
    if len(p) < p.shape[1]:
        raise ValueError(f"a {p.shape[1]}D rigid fit needs at least {p.shape[1]} point pairs; got {len(p)}")
    mp, mq = p.mean(axis=0), q.mean(axis=0)
    a, b = p - mp, q - mq
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.ones(p.shape[1])
    d[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(d) @ vt
    factor = float((s * d).sum() / (a ** 2).sum()) if scale and (a ** 2).sum() > 0 else 1.0
    matrix = factor * rotation
    return matrix, mq - matrix @ mp


def apply_affine(points: Any, matrix: Any, offset: Any) -> np.ndarray:
    """``points @ matrix.T + offset``: points ``(K, ndim)`` mm through an affine map.

    Taught in lab 09, section 2 (Landmarks: FLE, FRE and TRE).
    """
    p = arguments.points(points, "points")
    return p @ np.asarray(matrix, dtype=np.float64).T + np.asarray(offset, dtype=np.float64)


def point_errors(true_points: Any, estimated_points: Any) -> np.ndarray:
    """Euclidean distance of each estimated point from its true position, ``(K,)`` in mm: the
    fiducial registration error at the fiducials, the target registration error (TRE) at
    targets that took no part in the fit.

    Taught in lab 09, section 2 (Landmarks: FLE, FRE and TRE).
    """
    t = arguments.points(true_points, "true_points")
    e = arguments.points(estimated_points, "estimated_points", ndim=t.shape[1])
    if len(t) != len(e):
        raise ValueError(f"{len(t)} true points but {len(e)} estimated points")
    return np.linalg.norm(e - t, axis=1)


# --- SimpleITK -----------------------------------------------------------------------------


def _sitk():
    """SimpleITK, computing on as many threads as torch (``medlab.runtime.set_threads``): ITK
    shares a metric's sums out between threads, so a fixed count gives the same result again."""
    import SimpleITK
    import torch

    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(torch.get_num_threads())
    return SimpleITK


def _image(array: Any, name: str) -> np.ndarray:
    data = np.asarray(array)
    if data.ndim not in (2, 3) or min(data.shape) < 4:
        raise ValueError(f"{name} must be a 2D (y, x) or 3D (z, y, x) image of at least 4 pixels a side; "
                         f"got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number) or not np.all(np.isfinite(data)):
        raise ValueError(f"{name} must hold finite numbers (no NaN or infinity)")
    return data


def to_sitk(image: Any, *, spacing: Any):
    """A ``SimpleITK.Image`` of a NumPy image ``(y, x)`` / ``(z, y, x)`` with its spacing in mm
    (origin 0, identity direction), float32.

    Taught in lab 09, section 1 (Transforms and resampling).
    """
    data = _image(image, "image")
    sitk = _sitk()
    out = sitk.GetImageFromArray(data.astype(np.float32))
    out.SetSpacing(tuple(reversed(arguments.spacing(spacing, ndim=data.ndim))))
    return out


def transform_points(points: Any, *, transform: Any) -> np.ndarray:
    """Map fixed-image points ``(K, ndim)`` (mm) through a SimpleITK transform to the moving
    image, ``(K, ndim)`` mm.

    Taught in lab 09, section 3 (Intensity-based registration).
    """
    p = arguments.points(points, "points")
    return np.array([tuple(reversed(transform.TransformPoint(tuple(reversed(row.tolist()))))) for row in p])


def resample(moving: Any, *, transform: Any, spacing: Any, labels: bool = False, fill: float | None = None) -> np.ndarray:
    """The moving image resampled onto its own grid through ``transform`` (fixed → moving), so
    that it lies over the fixed image: linear interpolation, or nearest neighbour for a label
    map (``labels=True``: averaging label values would invent labels). Outside the moving
    image: ``fill`` (default: its minimum). Same shape and dtype as ``moving``.

    Taught in lab 09, section 1 (Transforms and resampling).
    """
    data = _image(moving, "moving")
    sitk = _sitk()
    image = to_sitk(data, spacing=spacing)
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    fill = float(data.min()) if fill is None else arguments.number(fill, "fill")
    out = sitk.Resample(image, image, transform, interpolator, fill, sitk.sitkFloat32)
    result = sitk.GetArrayFromImage(out)
    return np.rint(result).astype(data.dtype) if labels else result.astype(data.dtype)


def displacement_field(*, transform: Any, shape: Sequence[int], spacing: Any) -> np.ndarray:
    """The displacement ``u`` ``(ndim, *shape)`` float32 in mm of a SimpleITK transform on the
    fixed grid: the transform takes ``x`` to ``x + u(x)``.

    Taught in lab 09, section 5 (Deformable registration and its sanity check).
    """
    shape = arguments.shape(shape, "shape", ndim=len(shape), minimum=1)
    spacing = arguments.spacing(spacing, ndim=len(shape))
    sitk = _sitk()
    reference = sitk.Image(tuple(reversed(shape)), sitk.sitkFloat32)
    reference.SetSpacing(tuple(reversed(spacing)))
    field = sitk.TransformToDisplacementField(transform, sitk.sitkVectorFloat64, reference.GetSize(),
                                              reference.GetOrigin(), reference.GetSpacing(), reference.GetDirection())
    u = sitk.GetArrayFromImage(field)  # (*shape, ndim) with components (x, y[, z])
    return np.moveaxis(u[..., ::-1], -1, 0).astype(np.float32)


def displacement_transform(displacement: Any, *, spacing: Any):
    """A SimpleITK displacement-field transform of ``u`` ``(ndim, *shape)`` in mm (as
    :func:`displacement_field` returns, or a network predicts), for :func:`resample` and
    :func:`transform_points`.

    Taught in lab 09, section 6 (Learned registration).
    """
    u = np.asarray(displacement, dtype=np.float64)
    if u.ndim not in (3, 4) or u.shape[0] != u.ndim - 1:
        raise ValueError(f"displacement must be (ndim, *shape) in mm; got shape {u.shape}")
    sitk = _sitk()
    field = sitk.GetImageFromArray(np.moveaxis(u, 0, -1)[..., ::-1].copy(), isVector=True)
    field.SetSpacing(tuple(reversed(arguments.spacing(spacing, ndim=u.shape[0]))))
    return sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))


def register(fixed: Any, moving: Any, *, spacing: Any, transform: str = "affine", metric: str = "mattes",
             initial: Any = None, levels: Sequence[int] = (4, 2, 1), iterations: int = 100,
             mesh_size: int = 6, learning_rate: float = 1.0, max_step_mm: float = 2.0, sampling: float = 0.25,
             seed: int = 0):
    """Intensity-based registration of ``moving`` onto ``fixed`` (NumPy images of one shape and
    ``spacing`` in mm) with SimpleITK: the ``transform`` (one of :data:`TRANSFORMS`) that
    optimises ``metric`` (one of :data:`METRICS`), by gradient descent with SimpleITK's
    automatic step scaling (L-BFGS-B for ``"bspline"``, on a control grid of ``mesh_size``
    cells per axis), over a pyramid of ``levels`` (shrink factors, smoothing of half a shrink
    factor in pixels). ``initial`` is a SimpleITK transform to start from and to compose with
    (say, an affine result before a B-spline); by default the images' centres are aligned.
    ``sampling`` is the fraction of pixels the metric sees each iteration, drawn with ``seed``.

    Returns the fitted SimpleITK transform (fixed → moving). Raises ``ValueError`` naming the
    problem for mismatched or non-finite images and unknown options, and ``RuntimeError`` with
    SimpleITK's reason when the optimiser fails (for instance, when the images stop
    overlapping).

    Taught in lab 09, section 3 (Intensity-based registration).
    """
    f, m = _image(fixed, "fixed"), _image(moving, "moving")
    if f.shape != m.shape:
        raise ValueError(f"fixed {f.shape} and moving {m.shape} must have one shape (resample one first)")
    for name, data in (("fixed", f), ("moving", m)):
        if np.ptp(data) == 0:
            raise ValueError(f"{name} is constant ({float(data.flat[0]):g} everywhere): there is nothing to align")
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}: use one of {', '.join(TRANSFORMS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    levels = [arguments.integer(v, "levels", minimum=1) for v in levels]
    iterations = arguments.integer(iterations, "iterations", minimum=1)
    mesh_size = arguments.integer(mesh_size, "mesh_size", minimum=1)
    sampling = arguments.number(sampling, "sampling", low=0.0, high=1.0, low_open=True)
    learning_rate = arguments.number(learning_rate, "learning_rate", low=0.0, low_open=True)
    max_step_mm = arguments.number(max_step_mm, "max_step_mm", low=0.0, low_open=True)
    seed = arguments.integer(seed, "seed", minimum=0)
    sitk = _sitk()
    fi, mi = to_sitk(f, spacing=spacing), to_sitk(m, spacing=spacing)
    ndim = f.ndim
    method = sitk.ImageRegistrationMethod()
    if metric == "mattes":
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    elif metric == "correlation":
        method.SetMetricAsCorrelation()
    else:
        method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, seed + 1)  # SimpleITK reads a seed of 0 as "the clock"
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel(levels)
    method.SetSmoothingSigmasPerLevel([v / 2 for v in levels])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    if transform == "bspline":
        grid = sitk.BSplineTransformInitializer(fi, [mesh_size] * ndim)
        method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations,
                                    maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=4 * iterations)
        method.SetInitialTransform(grid, inPlace=True)
        if initial is not None:
            method.SetMovingInitialTransform(initial)
    else:
        base = {"rigid": sitk.Euler2DTransform() if ndim == 2 else sitk.Euler3DTransform(),
                "similarity": sitk.Similarity2DTransform() if ndim == 2 else sitk.Similarity3DTransform(),
                "affine": sitk.AffineTransform(ndim)}[transform]
        if initial is None:  # start with the images' centres aligned
            start = sitk.CenteredTransformInitializer(fi, mi, base, sitk.CenteredTransformInitializerFilter.GEOMETRY)
        else:  # start from ``initial``: the identity about the fixed image's centre, after it
            method.SetMovingInitialTransform(initial)
            start = sitk.CenteredTransformInitializer(fi, fi, base, sitk.CenteredTransformInitializerFilter.GEOMETRY)
        method.SetOptimizerAsGradientDescent(learningRate=learning_rate, numberOfIterations=iterations,
                                             convergenceMinimumValue=1e-7, convergenceWindowSize=10,
                                             estimateLearningRate=method.EachIteration,
                                             maximumStepSizeInPhysicalUnits=max_step_mm)
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetInitialTransform(start, inPlace=False)
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # a diverging run is judged by its result, not by ITK's warnings
    try:
        result = method.Execute(fi, mi)
    except RuntimeError as exc:
        raise RuntimeError(f"SimpleITK could not register the images ({transform}, {metric}): {reason(exc)}") from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if initial is not None:
        return sitk.CompositeTransform([initial, result])
    return result


def demons(fixed: Any, moving: Any, *, spacing: Any, smoothing_mm: float = 4.0, iterations: int = 50,
           initial: Any = None):
    """Deformable registration of two images of one modality by SimpleITK's fast symmetric
    forces demons: ``iterations`` updates of a dense displacement field, each smoothed by a
    Gaussian of ``smoothing_mm`` (the regularisation: less smoothing, a field free to fold).
    ``moving`` is first resampled through ``initial`` (an affine result, say) if given. Returns
    the fixed → moving transform (``initial`` composed with the field).

    Taught in lab 09, section 5 (Deformable registration and its sanity check).
    """
    f, m = _image(fixed, "fixed"), _image(moving, "moving")
    if f.shape != m.shape:
        raise ValueError(f"fixed {f.shape} and moving {m.shape} must have one shape (resample one first)")
    smoothing_mm = arguments.number(smoothing_mm, "smoothing_mm", low=0.0)
    iterations = arguments.integer(iterations, "iterations", minimum=1)
    sitk = _sitk()
    spacing = arguments.spacing(spacing, ndim=f.ndim)
    fi = to_sitk(f, spacing=spacing)
    mi = to_sitk(resample(m, transform=initial, spacing=spacing) if initial is not None else m, spacing=spacing)
    flt = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    flt.SetNumberOfIterations(iterations)
    flt.SetSmoothDisplacementField(smoothing_mm > 0)
    flt.SetStandardDeviations(max(smoothing_mm / min(spacing), 1e-3))  # in pixels of the fixed grid
    try:
        field = flt.Execute(fi, mi)
    except RuntimeError as exc:
        raise RuntimeError(f"SimpleITK's demons could not register the images: {reason(exc)}") from None
    field.SetSpacing(fi.GetSpacing())
    deformable = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    return sitk.CompositeTransform([initial, deformable]) if initial is not None else deformable


# --- the sanity of a deformation -------------------------------------------------------------


def jacobian_determinant(displacement: Any, *, spacing: Any) -> np.ndarray:
    """``det(I + ∇u)`` at every pixel of a displacement ``u`` ``(ndim, *shape)`` in mm (central
    differences): the local change of area (volume) of ``x ↦ x + u(x)``; 1 keeps it, below 1
    compresses, at or below 0 folds (the map stops being one-to-one). ``(*shape)`` float64.

    Taught in lab 09, section 5 (Deformable registration and its sanity check).
    """
    u = np.asarray(displacement, dtype=np.float64)
    if u.ndim not in (3, 4) or u.shape[0] != u.ndim - 1 or min(u.shape[1:]) < 2:
        raise ValueError(f"displacement must be (ndim, *shape) in mm with every side >= 2; got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("displacement holds NaN or infinite values")
    ndim = u.shape[0]
    spacing = arguments.spacing(spacing, ndim=ndim)
    gradient = np.empty((ndim, ndim) + u.shape[1:])
    for i in range(ndim):
        for j in range(ndim):
            gradient[i, j] = np.gradient(u[i], spacing[j], axis=j) + (1.0 if i == j else 0.0)
    return np.linalg.det(np.moveaxis(gradient, (0, 1), (-2, -1)))


def folding_fraction(displacement: Any, *, spacing: Any, mask: Any = None) -> float:
    """The fraction of pixels (within ``mask``, if given) where the Jacobian determinant of
    ``u`` is at or below 0: where a deformation folds space. A plausible anatomical deformation
    folds nowhere.

    Taught in lab 09, section 5 (Deformable registration and its sanity check).
    """
    det = jacobian_determinant(displacement, spacing=spacing)
    where = np.ones(det.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if where.shape != det.shape:
        raise ValueError(f"mask {where.shape} must match the displacement's grid {det.shape}")
    if not where.any():
        raise ValueError("mask selects no pixel")
    return float((det[where] <= 0).mean())
