"""How fast the synthetic cohort is generated, on one CPU core.

    OMP_NUM_THREADS=1 python benchmarks/phantom_speed.py

Targets: at least 500 chest radiographs of 128 × 128 per second; a 64 × 128 × 128 CT volume in
under half a second. Prints the best of a few repeats (wall time varies between runs).
"""

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from medlab.phantoms import chest_radiographs, ct_volume, mr_like  # noqa: E402


def best_of(fn, repeats=3):
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def main():
    n = 500
    best, median = best_of(lambda: chest_radiographs(n, seed=0, size=128, sites=["A", "B", "C"] * 166 + ["A", "B"]))
    print(f"chest radiographs 128x128: {n / best:6.0f} images/s best, {n / median:6.0f} median (target >= 500)")
    best, median = best_of(lambda: ct_volume(seed=0, shape=(64, 128, 128)))
    print(f"CT volume 64x128x128:      {best:6.3f} s best, {median:6.3f} s median (target < 0.5 s)")
    ct = ct_volume(seed=0, shape=(64, 128, 128))
    best, median = best_of(lambda: mr_like(ct, contrast="T1"))
    print(f"MR-like volume from it:    {best:6.3f} s best, {median:6.3f} s median")


if __name__ == "__main__":
    main()
