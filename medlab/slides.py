"""Whole-slide images on a laptop: written, read and analysed window by window, never whole.

A whole slide is stored as a *pyramid*: the full-resolution image (level 0) cut into square
tiles, and the same image at 1/2, 1/4, 1/8 … of the resolution (levels 1, 2, 3 …), each tiled
too, all in one BigTIFF file. A reader decodes only the tiles a region touches, so a window of
level 0 or a thumbnail of the last level costs a few MB whatever the slide's size.

- :func:`write_pyramid` streams level-0 tiles into a pyramidal BigTIFF with ``tifffile``,
  keeping only level 1 (a quarter of level 0) in memory;
- :func:`open_slide` gives a :class:`Slide`, which reads regions through ``tifffile``'s Zarr
  store (``tifffile.imread(path, aszarr=True)`` opened with ``zarr.open``): a slice of the
  Zarr array decodes only the tiles it covers;
- :func:`tissue_mask` finds the tissue on a thumbnail, :func:`window_grid` lays windows over
  it, and :func:`predict_windows` runs a model window by window and blends the outputs;
- :func:`peak_memory_mb` measures what a step really adds to the process's memory.

Why not MONAI's ``WSIReader(backend="tifffile")``: its ``TiffFileWSIReader._get_patch`` calls
``wsi.asarray(level=level)`` — it decodes the *whole level* — for every patch, then slices the
patch out, so reading a 512-pixel window of level 0 costs the full slide (192 MB for 8192²
RGB, many GB for a real slide). OpenSlide (``backend="openslide"``) and cuCIM
(``backend="cucim"``) do read regions tile by tile, but OpenSlide needs its system library
(libopenslide) and cuCIM a CUDA GPU; tifffile with Zarr needs neither.

>>> window_grid((1000, 1200), size=512, overlap=0.25)[:3].tolist()
[[0, 0], [0, 384], [0, 688]]
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medlab import arguments
from medlab.errors import reason

BACKGROUND = 255
"""The value (white glass, in each of R, G, B) that pads a region read past the border."""


class SlideError(ValueError):
    """A file that is not a readable tiled, pyramidal RGB slide, or a slide that cannot be
    written as asked."""


# --- writing ------------------------------------------------------------------------------------

def _half(image: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 → ``(h/2, w/2, 3)``: the mean of each 2 × 2 block, rounded half up.
    (Rows are paired by a reshape and added, then column pairs, which sit side by side in the
    last axis: several times faster than ``reshape(...).sum(axis=(1, 3))``.)"""
    h, w, c = image.shape
    pairs = image.reshape(h // 2, 2, w // 2, 2 * c)
    rows = pairs[:, 0].astype(np.uint16)
    rows += pairs[:, 1]
    sums = rows[..., :c] + rows[..., c:]
    sums += 2
    sums >>= 2
    return sums.astype(np.uint8)


def _half_in_strips(image: np.ndarray, rows: int = 512) -> np.ndarray:
    """:func:`_half` of a large level, ``rows`` at a time, so its temporaries stay small."""
    out = np.empty((image.shape[0] // 2, image.shape[1] // 2, image.shape[2]), np.uint8)
    for r in range(0, image.shape[0], rows):
        out[r // 2:(r + rows) // 2] = _half(image[r:r + rows])
    return out


def _pyramid_options(shape: Any, tile: Any, levels: Any) -> tuple[tuple[int, int], int, int]:
    shape = arguments.shape(shape, "shape", ndim=2, axes="(height, width) in pixels")
    tile = arguments.integer(tile, "tile", minimum=16)
    levels = arguments.integer(levels, "levels", minimum=2)
    if tile % 16:
        raise SlideError(f"tile must be a multiple of 16 pixels (the TIFF rule for tiles); got {tile}")
    unit = tile * 2 ** (levels - 1)
    if shape[0] % unit or shape[1] % unit:
        raise SlideError(f"shape {shape} must be divisible by tile × 2**(levels - 1) = {tile} × "
                         f"{2 ** (levels - 1)} = {unit}, so that every level is whole tiles")
    return shape, tile, levels


def _streamed(tiles: Iterator, level1: np.ndarray, *, shape: tuple[int, int], tile: int) -> Iterator[np.ndarray]:
    """Pass the level-0 tiles on to tifffile, checking each and adding its 2 × 2 means to ``level1``."""
    per_row, count = shape[1] // tile, (shape[0] // tile) * (shape[1] // tile)
    half = tile // 2
    for k in range(count):
        item = next(tiles, None)
        if item is None:
            raise SlideError(f"tiles ran out after {k} tiles; a {shape} slide in tiles of {tile} needs {count}")
        item = np.asarray(item)
        if item.shape != (tile, tile, 3) or item.dtype != np.uint8:
            raise SlideError(f"tile {k} must be ({tile}, {tile}, 3) uint8 RGB; got {item.dtype} {item.shape}")
        row, col = divmod(k, per_row)
        level1[row * half:(row + 1) * half, col * half:(col + 1) * half] = _half(item)
        yield item


def write_pyramid(path: str | os.PathLike, tiles: Iterable[np.ndarray], *, shape: tuple[int, int], tile: int = 512,
                  levels: int = 4, compression: str | None = None) -> Path:
    """Write a tiled, pyramidal BigTIFF of the level-0 ``tiles`` and return its path.

    ``tiles``: ``(tile, tile, 3)`` uint8 RGB arrays in row-major order (e.g.
    :func:`medlab.phantoms.slide_tiles`), covering an image of ``shape`` ``(H, W)`` pixels;
    ``shape`` must be divisible by ``tile × 2**(levels - 1)`` and ``tile`` (pixels) a multiple
    of 16. Level 0 streams from the iterator into the file (``tifffile.TiffWriter``,
    ``bigtiff=True``, ``subifds=levels - 1``); meanwhile level 1 is gathered as the rounded 2 × 2
    means of each tile — the only image held, a quarter of level 0 — and levels 2 … from it,
    each written as a reduced-resolution SubIFD (``subfiletype=1``), tiled alike. No
    compression by default: ``compression`` is passed to tifffile; ``"zlib"`` makes the 8192²
    phantom 2.7 × smaller (96 instead of 255 MiB) but is 4–5 × slower to write and 3–6 × slower
    to read on one core (about 19 s instead of 4 s to render and write it, 6–17 ms instead of
    2–3 ms to read a 512² window).

    The file is written under a temporary name next to ``path`` and renamed when complete, so
    an interrupted write leaves no partial slide.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    import tifffile

    path = Path(path)
    shape, tile, levels = _pyramid_options(shape, tile, levels)
    level1 = np.empty((shape[0] // 2, shape[1] // 2, 3), np.uint8)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    options = {"tile": (tile, tile), "photometric": "rgb", "compression": compression}
    try:
        with tifffile.TiffWriter(temporary, bigtiff=True) as tif:
            source = iter(tiles)
            tif.write(_streamed(source, level1, shape=shape, tile=tile), shape=(*shape, 3), dtype=np.uint8,
                      subifds=levels - 1, **options)
            if next(source, None) is not None:
                raise SlideError(f"tiles holds more than the {shape} slide's tiles of {tile}")
            level = level1
            for k in range(1, levels):
                tif.write(level, subfiletype=1, **options)
                level = _half_in_strips(level) if k < levels - 1 else level
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


# --- reading ------------------------------------------------------------------------------------

def _level_shapes(path: Path) -> list[tuple[int, int]]:
    """The ``(h, w)`` of each level of the file's first image series, after checking that every
    level is tiled RGB uint8 and that there is more than one."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = [level.keyframe for level in tif.series[0].levels]
            shapes = [(tuple(p.shape), p.dtype, p.is_tiled) for p in pages]
    except Exception as exc:  # tifffile raises TiffFileError, and others for damaged files
        raise SlideError(f"{path} is not a readable TIFF file ({reason(exc)})") from exc
    for k, (shape, dtype, tiled) in enumerate(shapes):
        if len(shape) != 3 or shape[2] != 3 or dtype != np.uint8:
            raise SlideError(f"{path}: level {k} is {dtype} {shape}, not (h, w, 3) uint8 RGB")
        if not tiled:
            raise SlideError(f"{path}: level {k} is stored in strips, not tiles; a slide reader needs tiles "
                             "(write one with medlab.slides.write_pyramid)")
    if len(shapes) < 2:
        raise SlideError(f"{path} holds one resolution level only, not a pyramid "
                         "(write one with medlab.slides.write_pyramid)")
    return [shape[:2] for shape, _, _ in shapes]


@dataclasses.dataclass
class Slide:
    """An open pyramidal slide (from :func:`open_slide`); close it, or use it in a ``with``.

    ``levels``: the ``(h, w)`` of each level in pixels, level 0 the full resolution.
    Coordinates are in the pixels of the level read (OpenSlide's ``read_region`` takes its
    location in level-0 pixels instead). Regions are RGB ``(h, w, 3)`` uint8.

    Taught in lab 10, section 4 (Huge images, window by window).
    """

    path: Path
    levels: list[tuple[int, int]]
    _arrays: list[Any] = dataclasses.field(repr=False)
    _store: Any = dataclasses.field(repr=False)

    def _level(self, level: Any) -> int:
        level = arguments.integer(level, "level", minimum=-len(self.levels), maximum=len(self.levels) - 1)
        return level % len(self.levels)

    def downsample(self, level: int) -> float:
        """How many level-0 pixels one pixel of ``level`` spans along each axis (2 ** level)."""
        return self.levels[0][0] / self.levels[self._level(level)][0]

    def read(self, y: int, x: int, h: int, w: int, *, level: int = 0) -> np.ndarray:
        """The region ``[y, y + h) × [x, x + w)`` of ``level`` (its pixels: row and column of
        the top-left corner, height and width), ``(h, w, 3)`` uint8. Only the tiles the region
        touches are read and decoded. Where it runs past the border (or ``y``, ``x`` are
        negative) it is padded with white glass, :data:`BACKGROUND` (255)."""
        level = self._level(level)
        y, x = arguments.integer(y, "y"), arguments.integer(x, "x")
        h, w = arguments.integer(h, "h", minimum=1), arguments.integer(w, "w", minimum=1)
        rows, cols = self.levels[level]
        out = np.full((h, w, 3), BACKGROUND, np.uint8)
        y0, y1, x0, x1 = max(y, 0), min(y + h, rows), max(x, 0), min(x + w, cols)
        if y0 < y1 and x0 < x1:
            out[y0 - y:y1 - y, x0 - x:x1 - x] = self._arrays[level][y0:y1, x0:x1]
        return out

    def thumbnail(self, level: int = -1) -> np.ndarray:
        """The whole of ``level`` (default: the last, smallest one), ``(h, w, 3)`` uint8."""
        return np.asarray(self._arrays[self._level(level)][...])

    def close(self) -> None:
        """Close the file (the Zarr store holds it open)."""
        self._store.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def open_slide(path: str | os.PathLike) -> Slide:
    """Open a tiled, pyramidal RGB TIFF (as :func:`write_pyramid` writes) for reading regions.

    Raises :class:`SlideError` naming the file if it is missing, not a TIFF, not RGB uint8, not
    tiled (stored in strips) or not a pyramid (one level only).

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    import tifffile
    import zarr

    path = Path(path)
    if not path.is_file():
        raise SlideError(f"{path}: no such file")
    levels = _level_shapes(path)
    store = tifffile.imread(path, aszarr=True)
    try:
        group = zarr.open(store, mode="r")
        arrays = [group[str(k)] for k in range(len(levels))]
    except Exception as exc:
        store.close()
        raise SlideError(f"{path}: its levels cannot be opened as Zarr arrays ({reason(exc)})") from exc
    return Slide(path, levels, arrays, store)


# --- analysis -----------------------------------------------------------------------------------

def _without_small_parts(mask: np.ndarray, area: int) -> np.ndarray:
    """``mask`` without its connected parts of fewer than ``area`` pixels (``scipy.ndimage.label``)."""
    from scipy import ndimage as ndi

    labels, _ = ndi.label(mask)
    keep = np.bincount(labels.ravel()) >= area
    keep[0] = False
    return keep[labels]


def tissue_mask(thumbnail: Any, *, min_fraction: float = 0.001, min_saturation: float = 0.05) -> np.ndarray:
    """Where the tissue is on a low-resolution RGB image of a slide, ``(h, w)`` bool.

    ``thumbnail`` ``(h, w, 3)`` uint8 (e.g. :meth:`Slide.thumbnail`). Stained tissue is
    coloured and glass is grey-white, so the HSV saturation (``skimage.color.rgb2hsv``) is
    thresholded with Otsu's method (``skimage.filters.threshold_otsu``), but never below
    ``min_saturation`` (so blank glass gives no tissue rather than splitting its noise in two).
    Specks and holes smaller than ``min_fraction`` of the image's pixels are then removed and
    filled, by labelling connected parts with ``scipy.ndimage.label`` (scikit-image's
    ``remove_small_objects`` renamed its size argument in 0.26, and MedLab supports 0.22 on;
    its ``area_opening`` does the same job 50 times slower).

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    from skimage.color import rgb2hsv
    from skimage.filters import threshold_otsu

    image = np.asarray(thumbnail)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"thumbnail must be an (h, w, 3) RGB image; got shape {image.shape}")
    min_fraction = arguments.probability(min_fraction, "min_fraction")
    min_saturation = arguments.probability(min_saturation, "min_saturation")
    saturation = rgb2hsv(image)[..., 1]
    spread = float(saturation.max() - saturation.min())
    threshold = max(threshold_otsu(saturation) if spread > 0 else 1.0, min_saturation)
    area = max(int(min_fraction * saturation.size), 1)
    objects = _without_small_parts(saturation > threshold, area)
    return ~_without_small_parts(~objects, area)


def _starts(length: int, size: int, stride: int) -> np.ndarray:
    """Window starts along one axis: every ``stride``, the last flush with the end."""
    if length <= size:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - size + 1, stride, dtype=np.int64)
    return starts if starts[-1] == length - size else np.append(starts, length - size)


def _touching(origins: np.ndarray, mask: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """Which windows overlap a ``True`` pixel of ``mask``, a lower resolution of ``shape``
    (summed-area table of the mask: four look-ups per window)."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    table[1:, 1:] = mask.cumsum(0).cumsum(1)
    bounds = []
    for axis in range(2):
        scale = mask.shape[axis] / shape[axis]
        low = np.floor(origins[:, axis] * scale).astype(np.int64).clip(0, mask.shape[axis] - 1)
        high = np.ceil((origins[:, axis] + size) * scale).astype(np.int64).clip(low + 1, mask.shape[axis])
        bounds.append((low, high))
    (r0, r1), (c0, c1) = bounds
    return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0] > 0


def window_grid(shape: tuple[int, int], *, size: int, overlap: float, mask: Any = None,
                multiple: int = 1) -> np.ndarray:
    """Top-left corners ``(N, 2)`` int64 (row, column; pixels) of ``size × size`` windows that
    cover an image of ``shape`` ``(H, W)``, in row-major order.

    Windows step by ``stride = size - round(size * overlap)`` (``overlap``: the fraction shared
    with a neighbour, in [0, 1)); the last row and column of windows are flush with the border,
    so every pixel is covered and no window runs past it (an image smaller than a window gets
    one window at 0, which runs past). With ``mask`` — ``(h, w)`` bool at any lower resolution of
    the same image, e.g. :func:`tissue_mask` of a thumbnail — only windows that overlap a
    ``True`` pixel are kept. ``multiple``: the stride, ``size`` and ``shape`` must be multiples of
    it, so that the outputs of a model with that output stride fall on one grid.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    shape = arguments.shape(shape, "shape", ndim=2, axes="(height, width) in pixels")
    size = arguments.integer(size, "size", minimum=1)
    overlap = arguments.number(overlap, "overlap", low=0.0, high=1.0, high_open=True)
    multiple = arguments.integer(multiple, "multiple", minimum=1)
    stride = size - round(size * overlap)
    if stride < 1 or stride % multiple or size % multiple or shape[0] % multiple or shape[1] % multiple:
        raise ValueError(f"the stride size - round(size * overlap) = {stride}, size {size} and shape {shape} "
                         f"must be positive multiples of multiple={multiple}")
    rows, cols = _starts(shape[0], size, stride), _starts(shape[1], size, stride)
    origins = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    if mask is None:
        return origins
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape[0] > shape[0] or mask.shape[1] > shape[1] or 0 in mask.shape:
        raise ValueError(f"mask must be (h, w) at a resolution of shape {shape} or lower; got shape {mask.shape}")
    return origins[_touching(origins, mask.astype(bool), shape, size)]


def _model_device(model: Any) -> Any:
    import torch

    parameter = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return parameter.device if parameter is not None else torch.device("cpu")


def _window_options(origins: Any, shape: Any, size: Any, out_stride: Any, blend: Any, batch_size: Any):
    shape = arguments.shape(shape, "shape", ndim=2, axes="(height, width) in pixels")
    size = arguments.integer(size, "size", minimum=1)
    out_stride = arguments.integer(out_stride, "out_stride", minimum=1)
    arguments.integer(batch_size, "batch_size", minimum=1)
    if blend not in ("gaussian", "constant"):
        raise ValueError(f"blend must be 'gaussian' or 'constant'; got {blend!r}")
    origins = np.asarray(origins)
    if origins.ndim != 2 or origins.shape[1] != 2 or len(origins) == 0 or not np.issubdtype(origins.dtype, np.integer):
        raise ValueError(f"origins must be (N, 2) integer (row, column) corners, N >= 1; got {origins.dtype} "
                         f"{origins.shape}")
    if size % out_stride or shape[0] % out_stride or shape[1] % out_stride or np.any(origins % out_stride):
        raise ValueError(f"size {size}, shape {shape} and every origin must be multiples of out_stride={out_stride} "
                         "(window_grid(..., multiple=out_stride) lays such windows)")
    return origins, shape, size, out_stride


def _as_batch(windows: list[np.ndarray], device: Any):
    """``(B, size, size, 3)`` uint8 windows → ``(B, 3, size, size)`` float32 in [0, 1] on ``device``."""
    import torch

    batch = torch.from_numpy(np.stack(windows)).to(device)
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def _accumulate(total: np.ndarray, weights: np.ndarray, output: np.ndarray, importance: np.ndarray,
                y: int, x: int) -> None:
    """Add ``importance × output`` ``(C, n, n)`` at ``(y, x)`` of the output grid, cropped to it."""
    n_y, n_x = min(output.shape[1], total.shape[1] - y), min(output.shape[2], total.shape[2] - x)
    total[:, y:y + n_y, x:x + n_x] += output[:, :n_y, :n_x] * importance[:n_y, :n_x]
    weights[y:y + n_y, x:x + n_x] += importance[:n_y, :n_x]


def predict_windows(read: Callable[..., np.ndarray], origins: Any, *, shape: tuple[int, int], size: int, model: Any,
                    out_stride: int = 1, blend: str = "gaussian", batch_size: int = 4,
                    progress: bool = True) -> np.ndarray:
    """Run ``model`` window by window over an image too large to hold, and blend the outputs.

    ``read(y, x, size, size)`` returns the window at ``origins`` ``(N, 2)`` (row, column; e.g.
    :meth:`Slide.read` and :func:`window_grid`) as ``(size, size, 3)`` uint8 RGB. Windows go to
    the model's device in batches of ``batch_size`` as ``(B, 3, size, size)`` float32 in [0, 1];
    ``model`` (put in eval mode, run under ``torch.no_grad``) returns ``(B, C, size/out_stride,
    size/out_stride)``. Each output is weighted — ``blend="gaussian"`` (σ = size/8: window
    borders, where zero padding distorts a convolution, count little) or ``"constant"`` (plain
    averaging) — and summed into an array at the output resolution only, with its weights.

    The Gaussian weights are separable: the outer product of MONAI's one-dimensional
    ``monai.data.utils.compute_importance_map`` with itself. MONAI floors its weights at 1e-3 to
    keep them positive; floored in 2D, a third of the window's area (its border band) would weigh
    1e-3 whatever its position along the border, so along the image's outer border, where every
    window covering a pixel is near its edge, the blend would fall back to a plain mean and
    show the seams. Floored per axis, the weight along one axis still tells the windows apart.

    Returns ``(C, H/out_stride, W/out_stride)`` float32 for ``shape`` ``(H, W)``: the weighted
    mean; pixels no window covered (outside the tissue windows) are NaN — ``np.isnan`` finds
    them, ``np.nan_to_num`` fills them. Memory: the output and weights, plus one batch.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    import torch
    from monai.data.utils import compute_importance_map
    from tqdm.auto import tqdm

    origins, shape, size, out_stride = _window_options(origins, shape, size, out_stride, blend, batch_size)
    n = size // out_stride
    profile = compute_importance_map((n,), mode=blend, device="cpu").numpy()
    importance = np.outer(profile, profile)
    device, total = _model_device(model), None
    weights = np.zeros((shape[0] // out_stride, shape[1] // out_stride), np.float32)
    model.eval()
    with torch.no_grad(), tqdm(total=len(origins), unit="window", disable=not progress) as bar:
        for start in range(0, len(origins), batch_size):
            corners = origins[start:start + batch_size]
            outputs = model(_as_batch([read(int(y), int(x), size, size) for y, x in corners], device))
            if outputs.ndim != 4 or tuple(outputs.shape[2:]) != (n, n) or len(outputs) != len(corners):
                raise ValueError(f"model must return (B, C, {n}, {n}) for {len(corners)} windows of {size} "
                                 f"with out_stride={out_stride}; got {tuple(outputs.shape)}")
            if total is None:
                total = np.zeros((outputs.shape[1], *weights.shape), np.float32)
            for output, (y, x) in zip(outputs.float().cpu().numpy(), corners // out_stride):
                _accumulate(total, weights, output, importance, int(y), int(x))
            bar.update(len(corners))
    np.divide(total, weights, out=total, where=weights > 0)
    total[:, weights == 0] = np.nan
    return total


# --- measuring ----------------------------------------------------------------------------------

def _release_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``), so that
    what ``fn`` reuses from earlier work shows in the RSS again. Nothing elsewhere."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def _reset_peak() -> bool:
    """Reset the kernel's record of this process's peak resident memory (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _kernel_peak() -> int:
    """The kernel's record of the peak resident memory (``VmHWM``), in bytes; 0 if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_memory_mb(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``fn(*args, **kwargs)``; return its result and the peak resident memory it added, MB.

    The resident set size (RSS: pages of this process in RAM, all of NumPy's and torch's CPU
    allocations included; not GPU memory, see ``torch.cuda.max_memory_allocated``) is read just
    before the call (the baseline) and then sampled every 2 ms from a background thread with
    ``psutil``; the peak is the largest sample minus the baseline. A spike shorter than 2 ms can
    be missed by sampling, so on Linux the kernel's own high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs`` just before the call) is taken too, which misses nothing. Memory
    freed by earlier work and reused by ``fn`` does not raise the RSS; the allocator's free
    memory is handed back to the system first (glibc's ``malloc_trim``, on Linux), but what
    other caches keep (torch's, Python's small-object pools) can still hide a little use, so
    ``fn`` can need somewhat more than reported. Memory allocated but never written
    (``np.empty``, or ``np.zeros`` before it is touched) is not resident and is not counted.

    Taught in lab 10, section 4 (Huge images, window by window).
    """
    import psutil

    process = psutil.Process()
    done = threading.Event()
    _release_free_memory()
    baseline = process.memory_info().rss
    peak = [baseline]

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], process.memory_info().rss)

    kernel = _reset_peak()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = fn(*args, **kwargs)
    finally:
        done.set()
        sampler.join()
    highest = max(peak[0], process.memory_info().rss, _kernel_peak() if kernel else 0)
    return result, max(highest - baseline, 0) / 2**20
