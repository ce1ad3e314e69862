"""Property-based tests of :func:`medlab.registry.extract` and :func:`medlab.registry.download`.

Archives are generated with random members (unsafe names, links and link chains, devices,
duplicates, file/folder conflicts, sizes past the limit, headers that lie), or made from a good
archive by cutting it short or flipping bytes. The property: ``extract`` either produces exactly
the expected regular files inside the destination, or raises a medlab :class:`ArchiveError`
naming the archive, and then nothing in or outside the destination has changed. Downloads use
fake streams that fail or corrupt at random points; nothing here touches the network.
"""

import hashlib
import io
import os
import re
import stat
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from archive_helpers import ZIP_MODES, tree
from medlab import registry
from medlab.registry import ArchiveError, DatasetInfo, DownloadError

MAX_BYTES = 600  # the limits every generated archive is unpacked with
MAX_MEMBERS = 6


def fuzz_settings(examples: int):
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@contextmanager
def sandbox():
    """A folder with ``outside/sentinel.txt`` and an empty ``area/`` that receives ``area/out``."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "outside").mkdir()
        (tmp / "outside" / "sentinel.txt").write_bytes(b"original")
        (tmp / "area").mkdir()
        yield tmp


# --- generated members --------------------------------------------------------------------

SAFE = ["a", "b", "A", "c.txt", "\u00e9.nii"]
RISKY = ["..", ".", "", "x\\y", "C:", "D:x", "nul\x00x", "new\nline", "d" * 256, "e" * 200,
         registry.EXTRACTED_MARKER, " sp", "\udcff"]


def paths(components, *, prefixes=("", "", "", "./"), suffixes=("",)):
    return st.builds(lambda prefix, parts, suffix: prefix + "/".join(parts) + suffix, st.sampled_from(prefixes),
                     st.lists(components, min_size=1, max_size=4), st.sampled_from(suffixes))


def mostly(safe, risky):
    """``safe`` four times in five, else ``risky``: archives unpack about as often as they are refused."""
    return st.tuples(st.integers(0, 4), safe, risky).map(lambda t: t[2] if t[0] == 0 else t[1])


safe_parts = st.lists(st.sampled_from(SAFE), min_size=1, max_size=3)
# A risky name is a safe one with one thing wrong, so that each check in turn is what refuses it.
risky_names = st.one_of(
    st.builds(lambda parts, bad, at: "/".join(parts[:at] + [bad] + parts[at:]), safe_parts, st.sampled_from(RISKY),
              st.integers(0, 3)),
    st.builds(lambda prefix, parts: prefix + "/".join(parts), st.sampled_from(["/", "//", "../", "C:", "C:/"]), safe_parts),
    safe_parts.map(lambda parts: "/".join(parts) + "/"),
)
names = mostly(paths(st.sampled_from(SAFE)), risky_names)
LINK_TARGETS = [".", "..", "../..", "l2/..", "a", "a/../..", "/etc/passwd", "{OUT}", "{OUT}/sentinel.txt", "b/c.txt"]
link_targets = st.one_of(st.sampled_from(LINK_TARGETS), names)
data = mostly(st.binary(max_size=64), st.integers(0, MAX_BYTES + 50).map(lambda n: bytes([n % 251]) * n))
tar_entries = st.tuples(names, mostly(st.sampled_from(["file", "file", "dir", "cont"]),
                                      st.sampled_from(["sym", "hard", "fifo", "chr", "blk", "unknown", "liar"])),
                        data, link_targets)
zip_entries = st.tuples(names, mostly(st.sampled_from(["file", "file", "dir", "plain"]),
                                      st.sampled_from(["sym", "fifo", "chr", "blk", "sock", "dir-as-file"])),
                        data, link_targets)

_TAR_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
              "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "cont": tarfile.CONTTYPE,
              "unknown": b"V", "liar": tarfile.REGTYPE}


def write_tar(path: Path, entries, *, outside: Path, tar_format) -> None:
    """Write generated entries; a "liar" declares far more bytes than follow its header."""
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w", format=tar_format) as tf:
        for name, kind, payload, target in entries:
            info = tarfile.TarInfo(name)
            info.type = _TAR_TYPES[kind]
            info.linkname = target.replace("{OUT}", str(outside)) if kind in ("sym", "hard") else ""
            body = payload if kind in ("file", "cont", "liar") else b""
            info.size = len(body)
            if kind == "liar":
                info.size = 10 ** 11
                header = info.tobuf(tf.format, tf.encoding, tf.errors)
                padded = body + bytes(-len(body) % tarfile.BLOCKSIZE)
                tf.fileobj.write(header + padded)
                tf.offset += len(header) + len(padded)
                continue
            tf.addfile(info, io.BytesIO(body) if body else None)


def write_zip(path: Path, entries, *, outside: Path) -> None:
    import warnings

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, kind, payload, target in entries:
            if kind in ("dir", "dir-as-file"):
                name, payload = name.rstrip("/") + "/", b""
            info = zipfile.ZipInfo(name)
            info.external_attr = ZIP_MODES["file" if kind == "dir-as-file" else kind] << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, target.replace("{OUT}", str(outside)).encode() if kind == "sym" else payload)


# --- what a careful unpacker should make of an archive -------------------------------------


def acceptable_name(name: str, is_dir: bool):
    """The path a member should land at, as a tuple of names, or ``None`` if it must be refused."""
    if re.search(r"[\x00-\x1f\x7f\\]", name) or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None
    if name.endswith("/") and not is_dir:
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts or (not parts and not is_dir) or parts == (registry.EXTRACTED_MARKER,):
        return None
    try:
        sizes = [len(p.encode("utf-8")) for p in parts]
    except UnicodeEncodeError:
        return None
    if any(size > 255 for size in sizes) or sum(sizes) + len(sizes) - 1 > 1024:
        return None
    return parts


def expected_tree(members, *, marker: str):
    """``members`` as ``(name, 'file' | 'dir' | 'other', bytes)``: the tree they should unpack to, or ``None``."""
    if len(members) > MAX_MEMBERS or any(kind == "other" for _, kind, _ in members):
        return None
    files, folders = {}, set()
    for name, kind, payload in members:
        parts = acceptable_name(name, kind == "dir")
        if parts is None or (kind == "file" and parts in files):
            return None
        if kind == "file":
            files[parts] = payload
        else:
            folders.add(parts)
    for parts in list(files) + list(folders):
        folders.update(parts[:i] for i in range(1, len(parts)))
    if any(parts in folders for parts in files) or sum(len(p) for p in files.values()) > MAX_BYTES:
        return None
    result = {"/".join(p): "dir" for p in folders if p}
    result.update({"/".join(p): payload for p, payload in files.items()})
    result[registry.EXTRACTED_MARKER] = marker.encode() + b"\n"
    return result


def tar_listing(path: Path):
    with tarfile.open(path) as tf:
        return [(m.name, "dir" if m.isdir() else "file" if m.isreg() else "other",
                 tf.extractfile(m).read() if m.isreg() else b"") for m in tf.getmembers()]


def zip_listing(path: Path):
    listing = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16)
            is_dir = info.filename.endswith("/")
            disagree = kind and (kind == stat.S_IFDIR) != is_dir
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or disagree or (is_dir and info.file_size):
                listing.append((info.filename, "other", b""))
            else:
                listing.append((info.filename, "dir" if is_dir else "file", b"" if is_dir else zf.read(info)))
    return listing


def refusal(exc: ArchiveError) -> str:
    """A short label for why an archive was refused, for hypothesis's statistics."""
    reason = re.sub(r"'[^']*'|\(.*?\)|/\S+|\d+", "", str(exc).split(";")[0].split(". ")[0])
    return f"refused ({type(exc).__name__}):{' '.join(reason.split())[:70]}"


def check_extract(tmp: Path, archive: Path, expected, *, dest_exists: bool) -> bool:
    """Run ``extract`` and check the property; return whether it unpacked."""
    dest = tmp / "area" / "out"
    if dest_exists:
        dest.mkdir()
    before = tree(tmp)
    try:
        registry.extract(archive, dest, max_bytes=MAX_BYTES, max_members=MAX_MEMBERS)
    except ArchiveError as exc:
        event(refusal(exc))
        assert str(archive) in str(exc), str(exc)
        assert expected is None, f"a good archive was refused: {exc}"
        assert tree(tmp) == before, "a refused archive changed something"
        return False
    event("unpacked")
    assert expected is not None, f"an archive that must be refused was unpacked: {tree(dest)}"
    assert tree(dest) == expected
    after = {k: v for k, v in tree(tmp).items() if not k.startswith("area/out/")}
    assert after == {**{k: v for k, v in before.items()}, "area/out": "dir"}
    return True


# --- generated archives -------------------------------------------------------------------


@fuzz_settings(150)
@given(entries=st.lists(tar_entries, max_size=MAX_MEMBERS + 1), gz=st.booleans(),
       pax=st.booleans(), dest_exists=st.booleans())
def test_generated_tar_archives_unpack_exactly_or_not_at_all(entries, gz, pax, dest_exists):
    with sandbox() as tmp:
        archive = tmp / ("fuzz.tar.gz" if gz else "fuzz.tar")
        try:
            write_tar(archive, entries, outside=tmp / "outside",
                      tar_format=tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT)
        except (ValueError, UnicodeError):
            assume(False)  # a member tarfile itself cannot write
        liar = any(kind == "liar" for _, kind, _, _ in entries)
        expected = None if liar else expected_tree(tar_listing(archive), marker=archive.name)
        check_extract(tmp, archive, expected, dest_exists=dest_exists)


@fuzz_settings(120)
@given(entries=st.lists(zip_entries, max_size=MAX_MEMBERS + 1), dest_exists=st.booleans())
def test_generated_zip_archives_unpack_exactly_or_not_at_all(entries, dest_exists):
    with sandbox() as tmp:
        archive = tmp / "fuzz.zip"
        try:
            write_zip(archive, entries, outside=tmp / "outside")
        except UnicodeError:
            assume(False)  # a name zipfile itself cannot write
        check_extract(tmp, archive, expected_tree(zip_listing(archive), marker=archive.name), dest_exists=dest_exists)


# --- damaged archives ---------------------------------------------------------------------

safe_files = st.dictionaries(st.sampled_from(["a", "b.txt", "\u00e9.nii", "Set/a", "Set/b.txt", "Set/A/c", "Set/A/d.nii"]),
                             st.binary(max_size=200), min_size=1, max_size=4)
damage = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=3)),
)


def damaged_copy(raw: bytes, how) -> bytes:
    kind, arg = how
    if kind == "cut":
        return raw[: int(arg * len(raw))]
    raw = bytearray(raw)
    for where, xor in arg:
        raw[min(int(where * len(raw)), len(raw) - 1)] ^= xor
    return bytes(raw)


@fuzz_settings(150)
@given(files=safe_files, suffix=st.sampled_from([".tar", ".tar.gz", ".zip"]), how=damage)
def test_damaged_archives_are_refused_or_unpack_only_what_they_hold(files, suffix, how):
    with sandbox() as tmp:
        good = tmp / ("good" + suffix)
        if suffix == ".zip":
            write_zip(good, [(n, "file", d, "") for n, d in files.items()], outside=tmp)
        else:
            write_tar(good, [(n, "file", d, "") for n, d in files.items()], outside=tmp, tar_format=tarfile.GNU_FORMAT)
        archive = tmp / ("damaged" + suffix)
        archive.write_bytes(damaged_copy(good.read_bytes(), how))
        good.unlink()
        dest = tmp / "area" / "out"
        before = tree(tmp)
        try:
            registry.extract(archive, dest, max_bytes=MAX_BYTES * 4, max_members=MAX_MEMBERS)
        except ArchiveError as exc:
            event(refusal(exc))
            assert str(archive) in str(exc)
            assert tree(tmp) == before
            return
        event("unpacked")
        got = {k: v for k, v in tree(dest).items() if k != registry.EXTRACTED_MARKER}
        assert all(v != "other" for v in got.values())
        got_files = {k: v for k, v in got.items() if v != "dir"}
        if suffix == ".tar":  # a plain tar has no checksum over its data: only the bytes can differ
            assert {k: len(v) for k, v in got_files.items()} == {k: len(v) for k, v in files.items()}
        else:  # gzip and zip check a CRC: what unpacks is exactly what was packed
            assert got_files == files
        assert {k: v for k, v in tree(tmp).items() if not k.startswith("area/out/")} == {**before, "area/out": "dir"}


# --- downloads ----------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    """A response that sends ``chunk`` bytes at a time and fails at byte ``fail_at`` (if given)."""

    def __init__(self, payload: bytes, *, chunk: int, fail_at: int | None):
        super().__init__(payload)
        self.chunk, self.fail_at = chunk, fail_at

    def read(self, size=-1):
        if self.fail_at is not None and self.tell() >= self.fail_at:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(size, self.chunk))


@fuzz_settings(60)
@given(payload=st.binary(min_size=1, max_size=5000), chunk=st.integers(1, 2048),
       fail_at=st.one_of(st.none(), st.integers(0, 5000)), spoil=st.one_of(st.none(), st.integers(0, 4999)),
       existing=st.sampled_from(["none", "good", "bad"]), publish_size=st.booleans())
def test_downloads_end_with_the_right_file_or_none(payload, chunk, fail_at, spoil, existing, publish_size):
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        checksum = "sha256:" + hashlib.sha256(payload).hexdigest()
        info = DatasetInfo(name="fuzz", title="t", url="https://example.org/fuzz.bin", checksum=checksum,
                           size_bytes=len(payload) if publish_size else None, filename="fuzz.bin", licence="CC0",
                           citation="-", homepage="https://example.org", description="-", layout="medmnist-npz")
        sent = bytearray(payload)
        if spoil is not None and spoil < len(sent):
            sent[spoil] ^= 0xFF
        if existing != "none":
            (cache / "fuzz.bin").write_bytes(payload if existing == "good" else payload[:-1] + b"?")
        calls = []

        def fake_open(url):
            calls.append(url)
            return FakeResponse(bytes(sent), chunk=chunk, fail_at=fail_at)

        original = registry._open_url
        registry._open_url = fake_open
        try:
            path = registry.download(info, data_dir=cache, progress=False)
        except DownloadError as exc:
            assert info.url in str(exc) or "fuzz.bin" in str(exc)
            path = None
        finally:
            registry._open_url = original
        listing = sorted(os.listdir(cache))
        fails = (fail_at is not None and fail_at <= len(payload)) or bytes(sent) != payload
        if existing == "good":
            assert path == cache / "fuzz.bin" and calls == []
        elif fails:
            assert path is None and "fuzz.bin" not in listing
        else:
            assert path == cache / "fuzz.bin" and path.read_bytes() == payload
        assert not [n for n in listing if n.endswith((".part", ".checking"))]
        bad = [n for n in listing if n.endswith(".bad")]
        assert len(bad) == (existing == "bad")
        if bad:
            assert (cache / bad[0]).read_bytes() == payload[:-1] + b"?"  # set aside, never lost
