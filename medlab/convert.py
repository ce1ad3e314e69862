"""Convert folders of DICOM series to resampled NIfTI, one process or many, with Dask.

:func:`convert_series` is the work for one series: read it (:func:`medlab.dicom.read_series`),
resample it to a common spacing (:func:`medlab.transforms.resample`) and write it as
``.nii.gz`` (:func:`medlab.io.save_nifti`), keeping its origin and direction. :func:`convert_all`
runs it over many series: in this process, or as one task per series on a Dask cluster
(:func:`local_cluster` for the cores of this machine; ``distributed.Client("tcp://host:8786")``
for a cluster's scheduler, or ``dask_jobqueue.SLURMCluster`` on Slurm). A series that cannot be
read is reported in :attr:`Conversion.failures` with the reason, and the others go on.

Dask is used rather than Ray because it is a pure-Python install from PyPI, a cluster of two
local worker processes starts in seconds, and the same ``Client`` API reaches an HPC scheduler
(dask-jobqueue) or Kubernetes; Ray brings its own object store and daemons, which a laptop
course does not need. Both would do the job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlab import arguments
from medlab.errors import reason


@dataclass
class Conversion:
    """What :func:`convert_all` did: one record per written file, in the order of the sources,
    and ``failures``: source folder -> why it was not converted.

    A record is a dictionary: ``source``, ``output`` (paths as strings), ``shape`` ``(z, y, x)``,
    ``spacing`` ``(z, y, x)`` in mm reached, ``seconds`` spent on it.

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def output_path(source: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Where :func:`convert_all` writes ``source``: ``out_dir / "<folder name>.nii.gz"``.

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """
    return Path(out_dir) / f"{Path(source).name}.nii.gz"


def convert_series(source: str | os.PathLike, output: str | os.PathLike, *,
                   target_spacing: Sequence[float], threads: int | None = None) -> dict[str, Any]:
    """Read the DICOM series in folder ``source``, resample it to ``target_spacing`` ``(z, y, x)``
    mm (linear) and write it to ``output`` (``.nii.gz``) with the series' origin and direction.

    ``threads``, if given, sets torch's threads in the process that runs it (one per Dask
    worker keeps two workers from fighting over two cores). Raises :class:`medlab.dicom.DicomError` for a
    series that cannot be read. Returns the record described in :class:`Conversion`; the
    output is the same bytes wherever it runs.

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """
    import torch

    from medlab.dicom import read_series
    from medlab.io import save_nifti
    from medlab.transforms import resample

    if threads is not None:
        torch.set_num_threads(arguments.integer(threads, "threads", minimum=1))
    start = time.perf_counter()
    series = read_series(source)
    volume, reached = resample(series.volume[None], spacing=series.spacing, target_spacing=target_spacing)
    path = save_nifti(volume[0], output, spacing=reached, origin=series.origin, direction=series.direction)
    return {"source": str(source), "output": str(path), "shape": tuple(volume.shape[1:]),
            "spacing": reached, "seconds": time.perf_counter() - start}


def local_cluster(*, workers: int, threads_per_worker: int = 1):
    """A Dask ``distributed.Client`` on a ``LocalCluster`` of ``workers`` processes on this
    machine (no dashboard; the workers' logs silenced, since a failed task is reported by
    :func:`convert_all`). Close it with ``client.close()`` and
    ``client.cluster.close()``, or use it as a context manager.

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """
    import logging

    from distributed import Client, LocalCluster

    workers = arguments.integer(workers, "workers", minimum=1)
    threads_per_worker = arguments.integer(threads_per_worker, "threads_per_worker", minimum=1)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                           dashboard_address=None, silence_logs=logging.CRITICAL)
    return Client(cluster)


def warm_up(client) -> None:
    """Import what :func:`convert_series` needs on every worker of ``client``, so that timings
    count conversions, not imports (a fresh process spends seconds importing torch and MONAI).

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """
    client.run(_import_libraries)


def _import_libraries() -> None:
    import numpy as np

    from medlab.transforms import resample

    resample(np.zeros((1, 4, 4, 4), np.float32), spacing=(1.0, 1.0, 1.0), target_spacing=(2.0, 2.0, 2.0))


def _progress(total: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def convert_all(sources: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                target_spacing: Sequence[float], client: Any = None, workers: Sequence[str] | None = None,
                progress: bool = True) -> Conversion:
    """Convert every series folder in ``sources`` into ``out_dir`` (see :func:`output_path`).

    Without ``client`` the series are converted one after another in this process; with a
    Dask ``Client`` each is one task, run on whichever worker is free (or only on the worker
    addresses in ``workers``, e.g. ``list(client.nthreads())[:1]`` for one). A series that fails
    (unreadable, or its worker died) goes to ``failures`` with the reason; the rest are
    converted. ``seconds`` is the wall time of the whole conversion.

    Taught in lab 10, section 6 (Preprocessing in parallel with Dask).
    """
    sources = [Path(s) for s in sources]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spacing = arguments.positive_triple(target_spacing, "target_spacing")
    result, start = Conversion(), time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    with _progress(len(sources), progress, "series") as bar:
        if client is None:
            for source in sources:
                try:
                    records[str(source)] = convert_series(source, output_path(source, out_dir), target_spacing=spacing)
                except Exception as exc:  # noqa: BLE001 - one bad series must not stop the others
                    result.failures[str(source)] = reason(exc)
                bar.update()
        else:
            _gather(client, workers, sources, out_dir, spacing, records, result.failures, bar)
    result.records = [records[str(s)] for s in sources if str(s) in records]
    result.seconds = time.perf_counter() - start
    return result


def _gather(client, workers, sources, out_dir, spacing, records, failures, bar) -> None:
    from distributed import as_completed

    threads = min(client.nthreads().values(), default=1)  # torch threads per task: the workers' own
    futures = {client.submit(convert_series, source, output_path(source, out_dir), target_spacing=spacing,
                             threads=threads, workers=workers, pure=False): str(source) for source in sources}
    for future in as_completed(futures):
        source = futures[future]
        error = future.exception()
        if error is None:
            records[source] = future.result()
        else:
            failures[source] = reason(error)
        bar.update()
