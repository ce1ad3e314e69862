"""The public datasets the labs can use, and a careful way to download and unpack them.

Each entry of :data:`DATASETS` is a :class:`DatasetInfo`: where the file lives, its published
checksum, its licence and how to cite it. ::

    from medlab.registry import fetch
    folder = fetch("task04_hippocampus")   # downloads once, checks, unpacks; later calls are instant

Files go to :func:`medlab.paths.data_dir` (``$MEDLAB_DATA_DIR`` if set, else ``~/.cache/medlab``).
Each download is written to a file of its own, ``<file>.<random>.part``, and only renamed to
``<file>`` once the size and checksum of the file as written match, so a file under its final
name is always complete, even when two downloads of it run at once. Archives are unpacked by
:func:`medlab.archives.extract`, which refuses links, devices, names outside the destination,
damaged archives and archives that unpack to too much. Nothing here touches the network on
import; the labs' default runs never download (they use the synthetic cohort).

To read what was fetched, see :mod:`medlab.realdata`; :data:`LAYOUTS` names the loader for
each on-disk layout. MONAI's ``download_url`` is not used: it stops at an existing file whose
checksum is wrong instead of setting it aside and fetching again, and see
:mod:`medlab.archives` for its unpacking.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import secrets
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from medlab.archives import (
    ARCHIVE_SUFFIXES,
    EXTRACTED_MARKER,
    ArchiveError,
    ArchiveTooLargeError,
    CorruptArchiveError,
    UnsafeArchiveError,
    extract,
)
from medlab.paths import data_dir as _data_dir  # the functions below take a ``data_dir`` argument

__all__ = [
    "ARCHIVE_SUFFIXES", "DATASETS", "DIGEST_LENGTHS", "EXTRACTED_MARKER", "LAYOUTS",
    "ArchiveError", "ArchiveTooLargeError", "CorruptArchiveError", "DatasetInfo", "DownloadError",
    "UnsafeArchiveError", "compute_checksum", "dataset_root", "download", "extract",
    "fetch", "get_info", "parse_checksum",
]

DIGEST_LENGTHS = {"md5": 32, "sha256": 64}
"""Checksum algorithms a :class:`DatasetInfo` may use, with their length in hex digits."""

LAYOUTS = {
    "medmnist-npz": "medlab.realdata.load_medmnist / MedMNISTDataset",
    "mednist-folders": "medlab.realdata.mednist_items / MedNISTDataset",
    "decathlon": "medlab.realdata.decathlon_items / DecathlonDataset",
    "dicom-folder": "medlab.realdata.dicom_series_folders, then medlab.dicom.read_series",
}
"""On-disk layouts, each with the :mod:`medlab.realdata` function or class that reads it."""

NAME_PATTERN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
"""What a :attr:`DatasetInfo.name` looks like: a lowercase slug such as ``task04_hippocampus``."""

MAX_NAME_LENGTH = 64
"""Longest :attr:`DatasetInfo.name`, in characters."""

_CHUNK = 1 << 20  # bytes read at a time while downloading and hashing


class DownloadError(RuntimeError):
    """A dataset could not be downloaded, or what arrived is not the published file."""


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split ``"<algorithm>:<hex digest>"`` into its two parts, checking both.

    >>> parse_checksum("md5:0BC7306E7427E00AD1C5526A6677552D")
    ('md5', '0bc7306e7427e00ad1c5526a6677552d')
    """
    algorithm, sep, digest = str(checksum).partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if not sep or algorithm not in DIGEST_LENGTHS:
        raise ValueError(
            f"checksum {checksum!r} must look like 'sha256:<64 hex digits>' or 'md5:<32 hex digits>'"
        )
    expected = DIGEST_LENGTHS[algorithm]
    if len(digest) != expected or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum {checksum!r}: a {algorithm} digest is {expected} hexadecimal digits")
    return algorithm, digest


def _hasher(algorithm: str):
    # MD5 here checks integrity against the publisher's value; it is not used for security.
    return hashlib.new(algorithm, usedforsecurity=False)


def compute_checksum(path: str | os.PathLike, *, algorithm: str = "sha256") -> str:
    """The checksum of a file as ``"<algorithm>:<hex digest>"``, the form :class:`DatasetInfo` uses.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp, "hello.txt"); _ = p.write_bytes(b"hello")
    ...     compute_checksum(p, algorithm="md5")
    'md5:5d41402abc4b2a76b9719d911017c592'
    """
    if algorithm not in DIGEST_LENGTHS:
        raise ValueError(f"algorithm must be one of {sorted(DIGEST_LENGTHS)}, got {algorithm!r}")
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, lambda: _hasher(algorithm))
    return f"{algorithm}:{digest.hexdigest()}"


@dataclass(frozen=True)
class DatasetInfo:
    """Everything needed to download, check, cite and read one public dataset file.

    ``name`` is the registry key and the folder an archive unpacks into, so it must be a
    lowercase slug (:data:`NAME_PATTERN`, at most :data:`MAX_NAME_LENGTH` characters).
    ``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``: use the digest the publisher gives
    (MONAI and MedMNIST publish MD5 for their files; prefer SHA-256 for files you host).
    ``size_bytes`` is the published size, or ``None`` where none is published.
    ``filename`` is the local file name (URLs may end in a query such as ``?download=1``).
    ``layout`` is a key of :data:`LAYOUTS`: how :mod:`medlab.realdata` reads the data.
    """

    name: str
    title: str
    url: str
    checksum: str
    size_bytes: int | None
    filename: str
    licence: str
    citation: str
    homepage: str
    description: str
    layout: str

    def __post_init__(self):
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_LENGTH \
                or not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(
                f"dataset name {self.name!r} must be a lowercase slug of at most {MAX_NAME_LENGTH} "
                "characters: letters a-z and digits, joined by '_', '-' or '.' (e.g. 'task04_hippocampus'); "
                "it names the folder the dataset is unpacked into"
            )
        parse_checksum(self.checksum)
        if not self.url.startswith(("https://", "http://", "file://")):
            raise ValueError(f"dataset {self.name!r}: url {self.url!r} must be an https://, http:// or file:// URL")
        if not self.filename or self.filename != PurePosixPath(self.filename).name or "\\" in self.filename \
                or self.filename in (".", ".."):
            raise ValueError(f"dataset {self.name!r}: filename {self.filename!r} must be a plain file name")
        if self.size_bytes is not None and (not isinstance(self.size_bytes, int) or self.size_bytes < 0):
            raise ValueError(f"dataset {self.name!r}: size_bytes must be a non-negative int or None")
        if self.layout not in LAYOUTS:
            raise ValueError(f"dataset {self.name!r}: layout {self.layout!r} is not one of {sorted(LAYOUTS)}")

    @property
    def is_archive(self) -> bool:
        """Whether :func:`fetch` unpacks this file (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``)."""
        return self.filename.lower().endswith(ARCHIVE_SUFFIXES)


_MEDMNIST_HOME = "https://github.com/MedMNIST/MedMNIST/"
_MEDMNIST_CITATION = (
    "Yang J, Shi R, Wei D, Liu Z, Zhao L, Ke B, Pfister H, Ni B. MedMNIST v2 - A large-scale "
    "lightweight benchmark for 2D and 3D biomedical image classification. Scientific Data 10, 41 "
    "(2023). https://doi.org/10.1038/s41597-022-01721-8. Data: https://doi.org/10.5281/zenodo.10519652. "
    "Also cite the source dataset named in the description (listed on the MedMNIST homepage)."
)
_MSD_CITATION = (
    "Antonelli M, Reinke A, Bakas S, et al. The Medical Segmentation Decathlon. Nature "
    "Communications 13, 4128 (2022). https://doi.org/10.1038/s41467-022-30695-9; and Simpson AL, "
    "Antonelli M, Bakas S, et al. A large annotated medical image dataset for the development and "
    "evaluation of segmentation algorithms. arXiv:1902.09063 (2019)."
)
_MSD_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/{task}.tar"


def _medmnist(name: str, title: str, md5: str, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=name, title=title,
        url=f"https://zenodo.org/records/10519652/files/{name}.npz?download=1",
        checksum=f"md5:{md5}", size_bytes=None, filename=f"{name}.npz",
        licence="CC BY 4.0", citation=_MEDMNIST_CITATION, homepage=_MEDMNIST_HOME,
        description=description, layout="medmnist-npz",
    )


def _decathlon(task: str, title: str, md5: str, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=task.lower(), title=title, url=_MSD_URL.format(task=task),
        checksum=f"md5:{md5}", size_bytes=None, filename=f"{task}.tar",
        licence="CC BY-SA 4.0", citation=_MSD_CITATION, homepage="http://medicaldecathlon.com/",
        description=description, layout="decathlon",
    )


# URLs and MD5s: MedMNIST from the `medmnist` package's info.py (v3.0.2, 28x28 files);
# MedNIST and the Decathlon tasks from MONAI's monai/apps/datasets.py (the mirror MONAI uses).
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _medmnist(
            "pneumoniamnist", "PneumoniaMNIST (MedMNIST v2, 28x28)", "28209eda62fecd6e6a2d98b1501bb15f",
            "5,856 paediatric chest radiographs, pneumonia vs normal (binary); grey, 1x28x28; "
            "train/val/test 4,708/524/624. Source: a prior pediatric chest X-ray dataset.",
        ),
        _medmnist(
            "breastmnist", "BreastMNIST (MedMNIST v2, 28x28)", "750601b1f35ba3300ea97c75c52ff8f6",
            "780 breast ultrasound images, normal+benign vs malignant (binary); grey, 1x28x28; "
            "train/val/test 546/78/156. Source: a prior breast ultrasound dataset.",
        ),
        _medmnist(
            "organamnist", "OrganAMNIST (MedMNIST v2, 28x28)", "68e3f8846a6bd62f0c9bf841c0d9eacc",
            "Axial CT slices of 11 abdominal organs (multi-class), abdominal window; grey, 1x28x28; "
            "train/val/test 34,561/6,491/17,778. Source: Liver Tumor Segmentation Benchmark (LiTS).",
        ),
        DatasetInfo(
            name="mednist", title="MedNIST",
            url="https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/MedNIST.tar.gz",
            checksum="md5:0bc7306e7427e00ad1c5526a6677552d", size_bytes=None, filename="MedNIST.tar.gz",
            licence="CC BY-SA 4.0",
            citation=(
                "MedNIST, made available by Dr. Bradley J. Erickson M.D., Ph.D. (Department of Radiology, "
                "Mayo Clinic); gathered from TCIA, the RSNA Bone Age Challenge and the NIH Chest X-ray "
                "dataset. Acknowledge the source, e.g. MONAI's MedNIST tutorial (Project-MONAI/tutorials)."
            ),
            homepage="https://github.com/Project-MONAI/tutorials/blob/master/2d_classification/mednist_tutorial.ipynb",
            description=(
                "About 58,000 grey 64x64 JPEG images in six class folders: AbdomenCT, BreastMRI, CXR, "
                "ChestCT, Hand, HeadCT. Unpacks to MedNIST/<Class>/*.jpeg."
            ),
            layout="mednist-folders",
        ),
        _decathlon(
            "Task04_Hippocampus", "Medical Segmentation Decathlon, Task 04: Hippocampus",
            "9d24dba78a72977dbd1d2e110310f31b",
            "Mono-modal MRI of the brain, small crops around the hippocampus; labels anterior and "
            "posterior hippocampus. NIfTI (.nii.gz) in imagesTr/labelsTr/imagesTs with dataset.json.",
        ),
        _decathlon(
            "Task09_Spleen", "Medical Segmentation Decathlon, Task 09: Spleen",
            "410d4a301da4e5b2f6f86ec3ddba524e",
            "Abdominal CT (Memorial Sloan Kettering Cancer Center); label spleen. NIfTI (.nii.gz) in "
            "imagesTr/labelsTr/imagesTs with dataset.json.",
        ),
        _decathlon(
            "Task02_Heart", "Medical Segmentation Decathlon, Task 02: Heart",
            "06ee59366e1e5124267b774dbd654057",
            "Mono-modal cardiac MRI; label left atrium. NIfTI (.nii.gz) in imagesTr/labelsTr/imagesTs "
            "with dataset.json.",
        ),
    )
}
"""The registered public datasets, keyed by :attr:`DatasetInfo.name`."""


def get_info(name_or_info: str | DatasetInfo) -> DatasetInfo:
    """The :class:`DatasetInfo` for a registered name (a :class:`DatasetInfo` is returned as is)."""
    if isinstance(name_or_info, DatasetInfo):
        return name_or_info
    try:
        return DATASETS[name_or_info]
    except KeyError:
        raise KeyError(
            f"no dataset named {name_or_info!r}; registered: {', '.join(sorted(DATASETS))} "
            "(or pass a DatasetInfo for your own file)"
        ) from None


def _open_url(url: str):
    """Open ``url`` for reading (the one place this module reaches the network)."""
    return urllib.request.urlopen(url, timeout=60)


def _manual_hint(info: DatasetInfo, target: Path) -> str:
    return (
        f"Download {info.url} yourself (e.g. in a browser) and save it as {target}; "
        f"it must have checksum {info.checksum}"
    )


def _copy_url(info: DatasetInfo, out, *, progress: bool) -> int:
    """Copy the URL's bytes into the open binary file ``out``; return the bytes written."""
    from tqdm.auto import tqdm

    written = 0
    with _open_url(info.url) as response:
        total = info.size_bytes
        if total is None:
            length = getattr(response, "headers", {}).get("Content-Length")
            total = int(length) if length and str(length).isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=info.filename, disable=not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    return written


def _new_part_file(target: Path) -> tuple[int, Path]:
    """Create an empty file ``<target>.<random>.part`` of this download's own; return (fd, path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        part = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(part, flags, 0o666), part
        except FileExistsError:
            continue


def _has_checksum(path: Path, checksum: str) -> bool:
    """Whether the file at ``path`` exists and has ``checksum`` (``"<algorithm>:<hex>"``)."""
    algorithm, _ = checksum.split(":", 1)
    try:
        return compute_checksum(path, algorithm=algorithm) == checksum
    except FileNotFoundError:
        return False


def _set_aside(target: Path, checksum: str) -> Path | None:
    """Move a file that fails its checksum to ``<target>.<algorithm>-<digest>.bad``; return where.

    Returns ``None`` where there was nothing to move: the file vanished, or another download
    had just put the right file there (it is left in place).
    """
    holding = target.with_name(f"{target.name}.{secrets.token_hex(4)}.checking")
    try:
        os.replace(target, holding)
    except FileNotFoundError:
        return None
    algorithm, _ = checksum.split(":", 1)
    actual = compute_checksum(holding, algorithm=algorithm)
    if actual == checksum:
        os.replace(holding, target)
        return None
    aside = target.with_name(f"{target.name}.{algorithm}-{actual.split(':')[1][:12]}.bad")
    os.replace(holding, aside)
    return aside


def _fetch_file(info: DatasetInfo, target: Path, *, progress: bool, note: str) -> None:
    """Download ``info.url`` into a new part file, check it as written, and rename it to ``target``."""
    algorithm, expected = parse_checksum(info.checksum)
    fd, part = _new_part_file(target)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                written = _copy_url(info, out, progress=progress)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, ValueError, EOFError, http.client.HTTPException) as exc:
            raise DownloadError(
                f"Could not download {info.name!r} from {info.url}: {exc}.{note} {_manual_hint(info, target)}."
            ) from exc
        if info.size_bytes is not None and written != info.size_bytes:
            raise DownloadError(
                f"Download of {info.url} gave {written} bytes, but the published size is "
                f"{info.size_bytes} bytes; the file was deleted.{note} Run again, or: {_manual_hint(info, target)}."
            )
        actual = compute_checksum(part, algorithm=algorithm)  # the file as written, not the stream
        if actual != f"{algorithm}:{expected}":
            raise DownloadError(
                f"Checksum mismatch for {info.url}: expected {algorithm}:{expected}, got {actual} "
                f"({written} bytes). The file was deleted.{note} The server may have sent an error page or "
                f"a changed file; try again later, or: {_manual_hint(info, target)}."
            )
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def download(
    name_or_info: str | DatasetInfo,
    *,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Download a dataset file once, check it, and return its local path.

    A file already at ``<data dir>/<filename>`` with the right checksum is returned without
    touching the network. One with another checksum is moved aside to
    ``<filename>.<algorithm>-<digest>.bad`` (kept, never deleted) and the file is downloaded
    again. The URL (``https://``, ``http://`` or ``file://``) is streamed into a file of this
    download's own, ``<filename>.<random>.part``, with a progress bar; the size (where
    published) and the checksum of the file as written are checked, and only then is it
    renamed into place, atomically. On any failure the part file is removed, nothing is left
    under the final name, and :class:`DownloadError` says how to put the file there by hand.
    """
    info = get_info(name_or_info)
    folder = _data_dir(data_dir)
    target = folder / info.filename
    algorithm, expected = parse_checksum(info.checksum)
    checksum = f"{algorithm}:{expected}"
    note = ""
    if os.path.lexists(target):
        if not target.is_file():
            raise DownloadError(f"{target} exists but is not a file: move it away, then download {info.name!r} again.")
        if _has_checksum(target, checksum):
            return target
        aside = _set_aside(target, checksum)
        if aside is None and _has_checksum(target, checksum):
            return target
        if aside is not None:
            note = f" The file that was at {target} did not have checksum {info.checksum} and was moved to {aside}."
            print(f"{target} does not have checksum {info.checksum}; moved it to {aside.name} and downloading it again.")
    folder.mkdir(parents=True, exist_ok=True)
    _fetch_file(info, target, progress=progress, note=note)
    return target


def dataset_root(folder: str | os.PathLike) -> Path:
    """The folder an extraction's data lives in: its single top-level folder if there is one
    (``MedNIST/``, ``Task09_Spleen/``), else ``folder`` itself. Hidden entries and macOS
    ``__MACOSX`` folders are ignored."""
    folder = Path(folder)
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def fetch(
    name_or_info: str | DatasetInfo,
    *,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> Path:
    """Download a dataset (see :func:`download`) and unpack it if it is an archive.

    Returns the file itself for a single file (MedMNIST ``.npz``), or the dataset folder for
    an archive: it is unpacked into ``<data dir>/<name>/`` and, if the archive holds one
    top-level folder, that folder is returned (e.g. ``<data dir>/mednist/MedNIST``). Once
    unpacked, later calls return at once, even if the archive has since been deleted.
    ``max_bytes`` and ``max_members`` are passed to :func:`medlab.archives.extract` (its
    defaults where ``None``): raise them for a trusted archive that unpacks to more.
    """
    info = get_info(name_or_info)
    if not info.is_archive:
        return download(info, data_dir=data_dir, progress=progress)
    dest = _data_dir(data_dir) / info.name
    if not (dest / EXTRACTED_MARKER).is_file():
        limits = {"max_bytes": max_bytes} | ({} if max_members is None else {"max_members": max_members})
        extract(download(info, data_dir=data_dir, progress=progress), dest, **limits)
    return dataset_root(dest)
