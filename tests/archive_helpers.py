"""Build small tar and zip archives for the archive and registry tests."""

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

GOOD = {"Set/readme.txt": b"hello", "Set/A/1.txt": b"one", "Set/B/2.txt": b"two"}
"""A small dataset: three files in two folders under one top-level folder."""


def tar_entry(name: str, kind: str = "file", data: bytes = b"", *, link: str = "", size: int | None = None):
    """A ``(TarInfo, data)`` pair; ``kind`` is file, dir, sym, hard, fifo, chr, blk or a raw type byte."""
    info = tarfile.TarInfo(name)
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}
    info.type = types.get(kind, kind.encode() if isinstance(kind, str) else kind)
    info.linkname = link
    info.size = len(data) if size is None else size
    return info, data


def build_tar(path: Path, entries, *, format=tarfile.GNU_FORMAT) -> Path:
    """Write ``entries`` (pairs from :func:`tar_entry`) as a tar, gzip-compressed for .gz/.tgz names."""
    mode = "w:gz" if path.name.endswith(("gz", ".tgz")) else "w"
    with tarfile.open(path, mode, format=format) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return path


def files_tar(path: Path, files: dict) -> Path:
    """A tar (or .tar.gz) holding the regular files ``files`` (name -> bytes)."""
    return build_tar(path, [tar_entry(name, "file", data) for name, data in files.items()])


ZIP_MODES = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755, "sym": stat.S_IFLNK | 0o777,
             "fifo": stat.S_IFIFO | 0o644, "chr": stat.S_IFCHR | 0o644, "blk": stat.S_IFBLK | 0o644,
             "sock": stat.S_IFSOCK | 0o644, "plain": 0}


def build_zip(path: Path, entries) -> Path:
    """Write ``entries`` (``(name, kind, data)``; kind a key of :data:`ZIP_MODES`) as a zip."""
    import warnings

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are what some tests are about
        for name, kind, data in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = ZIP_MODES[kind] << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def files_zip(path: Path, files: dict) -> Path:
    """A zip holding the regular files ``files`` (name -> bytes)."""
    return build_zip(path, [(name, "file", data) for name, data in files.items()])


def tree(folder: Path) -> dict:
    """Everything under ``folder`` (not following links): relative path -> bytes, 'dir' or 'other'."""
    found = {}
    for top, dirs, files in os.walk(folder):  # os.walk lists links to folders but never enters them
        for name in dirs + files:
            path = Path(top, name)
            mode = path.lstat().st_mode
            rel = path.relative_to(folder).as_posix()
            found[rel] = "dir" if stat.S_ISDIR(mode) else path.read_bytes() if stat.S_ISREG(mode) else "other"
    return found
