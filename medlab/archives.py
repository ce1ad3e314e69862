"""Unpack a dataset archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) without trusting it.

Datasets are regular files in folders, so :func:`extract` accepts nothing else: symbolic and
hard links, devices, FIFOs and unknown member types are refused, as are names that are
absolute, hold ``..``, a backslash, a drive letter or a control character, duplicates, and a
file that is also used as a folder. The whole archive is checked before anything is written:
its member list, the declared sizes against a limit (see :func:`default_max_bytes`), and its
end (a truncated or damaged archive is refused, not half unpacked). Members are then written
one by one, each into a new file that must not exist yet, inside a private temporary folder
that is renamed to the destination only once everything is written; on any failure it is
removed. Only contents are kept: permissions, owners and times stored in the archive are
ignored. ::

    from medlab.archives import extract
    folder = extract("MedNIST.tar.gz", "data/mednist")   # later calls return at once

Every refusal is an :class:`ArchiveError` that names the archive and the member.

MONAI's ``monai.apps.download_and_extract`` does a similar job and also keeps names inside the
destination, but it is not used here: it takes any non-empty destination for a finished unpack
(so an interrupted one is never completed), sets no limit on the size or number of members,
skips links without saying so, and writes into the destination directly, so a failure leaves a
partial folder behind.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
"""File endings :func:`extract` unpacks (a ``.npz`` is a zip file too, but is read as is)."""

EXTRACTED_MARKER = ".medlab-extracted"
"""File written inside a folder once :func:`extract` has unpacked an archive there completely."""

MAX_EXPANSION = 100
"""By default the unpacked members may add up to this many times the archive's size."""

MIN_BYTES_LIMIT = 64 << 20
"""The default limit on unpacked bytes is never below this (64 MiB), so small archives unpack."""

MAX_MEMBERS = 1_000_000
"""Default limit on the number of members (files and folders) in one archive."""

MAX_COMPONENT_BYTES = 255
"""Longest file or folder name, in UTF-8 bytes, that common file systems store."""

MAX_NAME_BYTES = 1024
"""Longest member path inside the archive, in UTF-8 bytes."""

_CHUNK = 1 << 20  # bytes copied at a time
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# What the standard library's readers raise on damaged input.
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                ValueError, NotImplementedError, struct.error, OverflowError)
_TRUST_HINT = "Only unpack archives from a source you trust, and check the file's checksum"


class ArchiveError(ValueError):
    """An archive cannot be unpacked: it is damaged, unsafe or too large. Nothing was extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive holds a member that is not a plain file or folder inside the destination."""


class CorruptArchiveError(ArchiveError):
    """An archive is truncated or damaged, or is not an archive of the kind its name says."""


class ArchiveTooLargeError(ArchiveError):
    """An archive unpacks to more bytes, or more members, than the limit allows."""


@dataclass(frozen=True)
class Member:
    """One member of an archive as :func:`extract` will write it.

    ``parts`` is the checked path inside the destination, one folder or file name per item;
    ``size`` is the declared size in bytes (0 for a folder); ``source`` is the ``TarInfo`` or
    ``ZipInfo`` it came from.
    """

    parts: tuple[str, ...]
    is_dir: bool
    size: int
    source: object

    @property
    def name(self) -> str:
        return "/".join(self.parts)


def default_max_bytes(archive_size: int) -> int:
    """The default limit on unpacked bytes for an archive of ``archive_size`` bytes.

    >>> default_max_bytes(1 << 30) == 100 << 30
    True
    >>> default_max_bytes(100 << 10) == MIN_BYTES_LIMIT   # a 100 KiB archive: at most 64 MiB
    True
    """
    return max(MIN_BYTES_LIMIT, MAX_EXPANSION * int(archive_size))


def member_parts(name: str, *, is_dir: bool = False) -> tuple[str, ...]:
    """Split a member's name into the names of its folders and file, refusing unsafe names.

    Empty and ``.`` components are dropped (``./Set//a.txt`` is ``Set/a.txt``); anything that
    could land outside the destination, or that file systems store differently, raises
    ``ValueError`` saying why.

    >>> member_parts("./Set//A/1.txt")
    ('Set', 'A', '1.txt')
    >>> member_parts("../evil.txt")
    Traceback (most recent call last):
    ...
    ValueError: has a '..' component and would land outside the destination
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("has a control character (such as NUL or a newline) in its name")
    if "\\" in name:
        raise ValueError("has a backslash in its name (a folder separator on Windows)")
    if name.startswith("/"):
        raise ValueError("has an absolute path and would land outside the destination")
    if _DRIVE.match(name):
        raise ValueError("starts with a drive letter and would land outside the destination")
    if not is_dir and name.endswith("/"):
        raise ValueError("is a regular file but its name ends with '/', as a folder's does")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ValueError("has a '..' component and would land outside the destination")
    if not parts and not is_dir:
        raise ValueError("is a file with an empty name")
    try:
        encoded = [p.encode("utf-8") for p in parts]
    except UnicodeEncodeError:
        raise ValueError("has a name that is not valid UTF-8 text") from None
    if any(len(p) > MAX_COMPONENT_BYTES for p in encoded):
        raise ValueError(f"has a file or folder name longer than {MAX_COMPONENT_BYTES} bytes")
    if sum(len(p) + 1 for p in encoded) > MAX_NAME_BYTES + 1:
        raise ValueError(f"has a path longer than {MAX_NAME_BYTES} bytes")
    if parts == (EXTRACTED_MARKER,):
        raise ValueError(f"uses the name {EXTRACTED_MARKER}, which extract() keeps for its own marker")
    return parts


def _shown(name: str, *, limit: int = 120) -> str:
    """``name`` quoted for a message, shortened in the middle if it is longer than ``limit``."""
    return repr(name) if len(name) <= limit else repr(name[: limit // 2]) + "..." + repr(name[-limit // 2:])


def _refuse(archive: Path, name: str, why: str, error=UnsafeArchiveError):
    raise error(f"{archive}: member {_shown(name)} {why}; nothing was extracted. {_TRUST_HINT}.")


@contextmanager
def _reading(archive: Path, what: str):
    """Turn the standard library's errors on a damaged archive into :class:`CorruptArchiveError`."""
    try:
        yield
    except ArchiveError:
        raise
    except _READ_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise CorruptArchiveError(
            f"{archive}: {what} failed ({type(exc).__name__}: {detail}); the archive is truncated or "
            "damaged, or not the kind of archive its name says. Nothing was extracted. Download it "
            "again and check its checksum."
        ) from exc


def _too_many(archive: Path, max_members: int):
    raise ArchiveTooLargeError(
        f"{archive}: holds more than {max_members} members; nothing was extracted. If you trust this "
        "archive, pass a larger max_members= to extract() or fetch()."
    )


# --- reading the member list ---------------------------------------------------------------


def _tar_kind(archive: Path, m: tarfile.TarInfo) -> bool:
    """Whether a tar member is a folder (``True``) or a regular file (``False``); refuse the rest."""
    if m.isdir():
        if m.size:
            _refuse(archive, m.name, f"is a folder that holds {m.size} bytes of data")
        return True
    if m.isreg():
        return False
    if m.issym() or m.islnk():
        kind = "a symbolic link" if m.issym() else "a hard link"
        _refuse(archive, m.name, f"is {kind} (to {_shown(m.linkname)}); datasets need no links, so extract() "
                                 "refuses them all")
    if m.isdev():
        _refuse(archive, m.name, "is a device or FIFO")
    _refuse(archive, m.name, f"has tar type {m.type!r}, which is neither a regular file nor a folder")


def _check_tar_end(archive: Path, tf: tarfile.TarFile) -> None:
    """Refuse a tar whose member list ended early: tarfile stops quietly at a damaged header."""
    with _reading(archive, "reading the end of the archive"):
        tf.fileobj.seek(tf.offset)
        block = tf.fileobj.read(tarfile.BLOCKSIZE)
        trailing = False
        while chunk := tf.fileobj.read(_CHUNK):  # to the end, so gzip checks its CRC and length
            trailing = trailing or chunk.count(0) != len(chunk)
    if block != bytes(tarfile.BLOCKSIZE):
        raise CorruptArchiveError(
            f"{archive}: has a damaged member header, or ends without tar's end-of-archive marker, after "
            f"{len(tf.members)} members; it is truncated or damaged. Nothing was extracted. Download it again."
        )
    if trailing:
        raise CorruptArchiveError(
            f"{archive}: holds data after tar's end-of-archive marker: it is damaged, or a second "
            "archive was appended. Nothing was extracted. Download it again, or unpack it with tar yourself."
        )


def tar_members(archive: Path, tf: tarfile.TarFile, *, max_members: int = MAX_MEMBERS) -> list[Member]:
    """Every member of an open tar file, checked; reads the archive to its end."""
    members = []
    while True:
        with _reading(archive, "reading the list of members"):
            m = tf.next()
        if m is None:
            break
        if len(members) >= max_members:
            _too_many(archive, max_members)
        is_dir = _tar_kind(archive, m)
        try:
            parts = member_parts(m.name, is_dir=is_dir)
        except ValueError as exc:
            _refuse(archive, m.name, str(exc))
        members.append(Member(parts, is_dir, 0 if is_dir else m.size, m))
    _check_tar_end(archive, tf)
    return members


def _zip_kind(archive: Path, info: zipfile.ZipInfo) -> bool:
    """Whether a zip member is a folder (``True``) or a regular file (``False``); refuse the rest."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        _refuse(archive, info.filename, "is a symbolic link; datasets need no links, so extract() refuses them all")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        _refuse(archive, info.filename, f"is a device, FIFO or socket (mode {mode:#o})")
    if info.flag_bits & 0x1:
        _refuse(archive, info.filename, "is encrypted", ArchiveError)
    if info.compress_type not in _ZIP_METHODS:
        _refuse(archive, info.filename, f"uses compression method {info.compress_type}, which Python "
                                        "cannot read", ArchiveError)
    is_dir = info.filename.endswith("/")
    if is_dir != (kind == stat.S_IFDIR) and kind:
        _refuse(archive, info.filename, f"has a name and a mode ({mode:#o}) that disagree on whether it "
                                        "is a folder")
    if is_dir and info.file_size:
        _refuse(archive, info.filename, f"is a folder that holds {info.file_size} bytes of data")
    return is_dir


def zip_members(archive: Path, zf: zipfile.ZipFile, *, max_members: int = MAX_MEMBERS) -> list[Member]:
    """Every member of an open zip file, checked (from its central directory)."""
    infos = zf.infolist()
    if len(infos) > max_members:
        _too_many(archive, max_members)
    members = []
    for info in infos:
        is_dir = _zip_kind(archive, info)
        try:
            parts = member_parts(info.filename, is_dir=is_dir)
        except ValueError as exc:
            _refuse(archive, info.filename, str(exc))
        members.append(Member(parts, is_dir, info.file_size, info))
    return members


def check_layout(archive: Path, members: list[Member], *, max_bytes: int) -> None:
    """Refuse duplicate files, a file that is also a folder, and more than ``max_bytes`` in all."""
    kinds: dict[tuple[str, ...], bool] = {(): True}  # path -> is a folder
    for m in members:
        for depth in range(1, len(m.parts)):
            if kinds.setdefault(m.parts[:depth], True) is False:
                _refuse(archive, m.name, f"lies inside {'/'.join(m.parts[:depth])!r}, which is a file")
        seen = kinds.get(m.parts)
        if seen is not None and (not m.is_dir or seen is False):
            why = "appears twice" if seen is m.is_dir else "is both a file and a folder"
            _refuse(archive, m.name, why)
        kinds[m.parts] = m.is_dir
    total = sum(m.size for m in members)
    if total > max_bytes:
        raise ArchiveTooLargeError(
            f"{archive}: its members add up to {total} bytes unpacked, more than the limit of {max_bytes} "
            f"bytes; nothing was extracted. If you trust this archive, pass max_bytes={total} (or more) "
            "to extract() or fetch()."
        )


# --- writing -------------------------------------------------------------------------------

_CREATE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
           | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _checked_folder(archive: Path, root: Path, parts: tuple[str, ...], made: set) -> Path:
    """Create the folders ``root/parts`` (as needed) and return it, once it resolves inside ``root``."""
    for depth in range(1, len(parts) + 1):
        if parts[:depth] not in made:
            os.mkdir(root.joinpath(*parts[:depth]))
            made.add(parts[:depth])
    folder = root.joinpath(*parts)
    real_root, real = os.path.realpath(root), os.path.realpath(folder)
    if os.path.commonpath([real_root, real]) != real_root:
        _refuse(archive, "/".join(parts), f"resolves to {real}, outside the destination")
    return folder


def _write_file(archive: Path, member: Member, path: Path, source, *, budget: int) -> int:
    """Copy one member into a new file at ``path``; return the bytes written (at most ``budget``)."""
    written = 0
    with os.fdopen(os.open(path, _CREATE, 0o666), "wb") as out:
        while True:
            with _reading(archive, f"reading member {member.name!r}"):
                chunk = source.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > budget:
                raise ArchiveTooLargeError(
                    f"{archive}: member {member.name!r} holds more bytes than its header says, past the "
                    f"limit on unpacked bytes; nothing was extracted. {_TRUST_HINT}."
                )
            out.write(chunk)
    if written != member.size:
        raise CorruptArchiveError(
            f"{archive}: member {member.name!r} holds {written} bytes, but its header says {member.size}; "
            "the archive is damaged. Nothing was extracted. Download it again."
        )
    return written


def write_members(archive: Path, members: list[Member], root: Path, open_member, *, max_bytes: int) -> None:
    """Write checked ``members`` under the empty folder ``root``.

    ``open_member(member)`` returns a binary file to read the member's bytes from. The bytes
    written are counted against ``max_bytes`` whatever the headers said.
    """
    made: set = {()}
    written = 0
    for m in members:
        if m.is_dir:
            _checked_folder(archive, root, m.parts, made)
            continue
        folder = _checked_folder(archive, root, m.parts[:-1], made)
        with _reading(archive, f"opening member {m.name!r}"):
            source = open_member(m)
        with source:
            written += _write_file(archive, m, folder / m.parts[-1], source, budget=max_bytes - written)


# --- extract -------------------------------------------------------------------------------


def _archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    raise ValueError(f"{path}: cannot unpack this file; extract() reads {', '.join(ARCHIVE_SUFFIXES)}")


@contextmanager
def open_archive(archive: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int):
    """Open ``archive``, check all its members, and yield ``(members, open_member)``."""
    if _archive_kind(archive) == "tar":
        with _reading(archive, "opening it as a tar archive"):
            handle = tarfile.open(archive, "r:*")
        with handle as tf:
            members = tar_members(archive, tf, max_members=max_members)
            check_layout(archive, members, max_bytes=max_bytes)
            yield members, lambda m: tf.extractfile(m.source)
    else:
        with _reading(archive, "opening it as a zip archive"):
            handle = zipfile.ZipFile(archive)
        with handle as zf:
            members = zip_members(archive, zf, max_members=max_members)
            check_layout(archive, members, max_bytes=max_bytes)
            yield members, lambda m: zf.open(m.source)


def _missing_parents(folder: Path) -> list[Path]:
    """The ancestors of ``folder`` (itself included) that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _move_into_place(root: Path, dest: Path) -> None:
    """Rename the finished folder ``root`` to ``dest`` (absent or empty)."""
    try:
        if dest.is_dir():
            dest.rmdir()  # a rename cannot replace a folder on every OS
        os.rename(root, dest)
    except OSError:
        if (dest / EXTRACTED_MARKER).is_file():
            return  # another extract() of this archive finished first
        raise


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders ``folders`` (deepest first) where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _unpack(archive: Path, members: list[Member], open_member, dest: Path, *, max_bytes: int) -> None:
    """Write the checked members into a private folder beside ``dest``, then rename it to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    try:
        root = staging / "unpacked"
        root.mkdir()
        write_members(archive, members, root, open_member, max_bytes=max_bytes)
        (root / EXTRACTED_MARKER).write_text(f"{archive.name}\n", encoding="utf-8")
        _move_into_place(root, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    max_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
) -> Path:
    """Unpack a ``.tar``, ``.tar.gz``, ``.tgz`` or ``.zip`` archive into the folder ``dest``.

    Every member is checked first (see the module's docstring); a refusal raises an
    :class:`ArchiveError` naming the archive and member, and nothing is extracted. At most
    ``max_bytes`` bytes are unpacked (default :func:`default_max_bytes` of the archive's size),
    checked from the headers first and counted again while writing, and at most
    ``max_members`` members. The archive is unpacked into a temporary folder beside ``dest``,
    a marker file :data:`EXTRACTED_MARKER` is written, and only then is the folder renamed to
    ``dest``; so a ``dest`` with the marker is complete, and calling again returns at once. An
    interrupted run leaves at most a hidden ``.<dest>.partial-*`` folder, which is safe to
    delete. Returns ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if (dest / EXTRACTED_MARKER).is_file():
        return dest
    if not archive.is_file():
        raise FileNotFoundError(f"no archive at {archive}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(
            f"{dest} exists but holds no complete extraction (no {EXTRACTED_MARKER} file): "
            "move or delete it, then extract again"
        )
    _archive_kind(archive)
    if max_bytes is None:
        max_bytes = default_max_bytes(archive.stat().st_size)
    with open_archive(archive, max_members=max_members, max_bytes=max_bytes) as (members, open_member):
        created = _missing_parents(dest.parent)
        try:
            _unpack(archive, members, open_member, dest, max_bytes=max_bytes)
        except BaseException as exc:
            if isinstance(exc, OSError):
                exc.add_note(f"while unpacking {archive} into {dest}; nothing was extracted")
            _remove_empty(created)
            raise
    return dest
