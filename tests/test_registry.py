import hashlib
import io
import os
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from medlab import registry
from medlab.registry import DatasetInfo, DownloadError, UnsafeArchiveError

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


def make_info(path: Path, *, algorithm="sha256", **changes) -> DatasetInfo:
    digest = hashlib.new(algorithm, path.read_bytes()).hexdigest()
    info = DatasetInfo(
        name="tiny", title="Tiny test file", url=path.as_uri(), checksum=f"{algorithm}:{digest}",
        size_bytes=path.stat().st_size, filename=path.name, licence="CC0", citation="nobody",
        homepage="https://example.org", description="bytes", layout="medmnist-npz",
    )
    return replace(info, **changes)


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    path = folder / "tiny.bin"
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the registered datasets --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(registry.DATASETS))
def test_every_registered_dataset_is_complete(name):
    info = registry.DATASETS[name]
    assert info.name == name
    assert info.url.startswith("https://")
    algorithm, digest = registry.parse_checksum(info.checksum)
    assert len(digest) == registry.DIGEST_LENGTHS[algorithm] and int(digest, 16) >= 0
    assert info.licence and info.citation and info.title and info.description and info.homepage
    assert info.layout in registry.LAYOUTS
    assert "/" not in info.filename


def test_registered_entries_match_their_publishers():
    # Values as published in MONAI's monai/apps/datasets.py and medmnist's info.py.
    mednist = registry.DATASETS["mednist"]
    assert mednist.checksum == "md5:0bc7306e7427e00ad1c5526a6677552d" and mednist.is_archive
    assert registry.DATASETS["task09_spleen"].url.endswith("/Task09_Spleen.tar")
    assert registry.DATASETS["task04_hippocampus"].checksum == "md5:9d24dba78a72977dbd1d2e110310f31b"
    pneumonia = registry.DATASETS["pneumoniamnist"]
    assert pneumonia.checksum == "md5:28209eda62fecd6e6a2d98b1501bb15f" and not pneumonia.is_archive
    assert pneumonia.filename == "pneumoniamnist.npz" and pneumonia.licence == "CC BY 4.0"
    assert {i.layout for i in registry.DATASETS.values()} == {"medmnist-npz", "mednist-folders", "decathlon"}


@pytest.mark.parametrize("checksum", ["abc", "sha1:" + "0" * 40, "md5:" + "0" * 31, "sha256:" + "g" * 64])
def test_malformed_checksums_are_refused(checksum):
    with pytest.raises(ValueError, match="checksum"):
        registry.parse_checksum(checksum)


@pytest.mark.parametrize("changes, message", [
    ({"filename": "../escape.bin"}, "plain file name"),
    ({"url": "ftp://example.org/x"}, "https://"),
    ({"layout": "csv"}, "layout"),
    ({"size_bytes": -1}, "size_bytes"),
])
def test_dataset_info_checks_its_fields(source, changes, message):
    with pytest.raises(ValueError, match=message):
        make_info(source, **changes)


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(KeyError, match="registered: .*mednist"):
        registry.download("no-such-set")


def test_compute_checksum_matches_hashlib(source):
    assert registry.compute_checksum(source) == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert registry.compute_checksum(source, algorithm="md5") == "md5:" + hashlib.md5(PAYLOAD).hexdigest()


# --- data_dir -----------------------------------------------------------------------------


def test_data_dir_prefers_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.DATA_ENV, str(tmp_path / "env"))
    assert registry.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert registry.data_dir() == tmp_path / "env"
    monkeypatch.delenv(registry.DATA_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert registry.data_dir() == tmp_path / "home" / ".cache" / "medlab"


def test_download_honours_medlab_data_dir(source, cache, monkeypatch):
    monkeypatch.setenv(registry.DATA_ENV, str(cache))
    path = registry.download(make_info(source), progress=False)
    assert path == cache / "tiny.bin" and path.read_bytes() == PAYLOAD


# --- download -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_download_checks_and_places_the_file(source, cache, algorithm, capsys):
    path = registry.download(make_info(source, algorithm=algorithm), data_dir=cache, progress=True)
    assert path == cache / "tiny.bin"
    assert path.read_bytes() == PAYLOAD
    assert listing(cache) == ["tiny.bin"]
    assert "tiny.bin" in capsys.readouterr().err  # the progress bar names the file


def test_a_cached_file_is_not_downloaded_again(source, cache, monkeypatch):
    info = make_info(source)
    registry.download(info, data_dir=cache, progress=False)
    calls = []
    monkeypatch.setattr(registry, "_open_url", lambda url: calls.append(url))
    source.unlink()  # the "server" is gone too
    assert registry.download(info, data_dir=cache, progress=False).read_bytes() == PAYLOAD
    assert calls == []


def test_a_corrupt_cached_file_is_replaced(source, cache, capsys):
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"truncated")
    path = registry.download(make_info(source), data_dir=cache, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert "downloading it again" in capsys.readouterr().out


def test_checksum_mismatch_raises_and_leaves_nothing(source, cache):
    info = make_info(source, checksum="sha256:" + "0" * 64)
    with pytest.raises(DownloadError) as caught:
        registry.download(info, data_dir=cache, progress=False)
    message = str(caught.value)
    assert info.url in message and "0" * 64 in message
    assert hashlib.sha256(PAYLOAD).hexdigest() in message
    assert str(cache / "tiny.bin") in message  # where to put it by hand
    assert listing(cache) == []


def test_size_mismatch_raises_and_leaves_nothing(source, cache):
    info = make_info(source, size_bytes=len(PAYLOAD) + 1)
    with pytest.raises(DownloadError, match=f"gave {len(PAYLOAD)} bytes.*published size is {len(PAYLOAD) + 1}"):
        registry.download(info, data_dir=cache, progress=False)
    assert listing(cache) == []


class BrokenStream(io.BytesIO):
    """A response that delivers some bytes, then fails like a dropped connection."""

    def read(self, size=-1):
        if self.tell() >= 4096:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(size, 4096))


def test_an_interrupted_download_leaves_no_file(source, cache, monkeypatch):
    info = make_info(source)
    monkeypatch.setattr(registry, "_open_url", lambda url: BrokenStream(PAYLOAD))
    with pytest.raises(DownloadError, match="connection reset.*save it as .*tiny.bin"):
        registry.download(info, data_dir=cache, progress=False)
    assert listing(cache) == []


def test_an_interrupt_from_the_keyboard_also_cleans_up(source, cache, monkeypatch):
    class Interrupted(BrokenStream):
        def read(self, size=-1):
            if self.tell() >= 4096:
                raise KeyboardInterrupt
            return super().read(size)

    monkeypatch.setattr(registry, "_open_url", lambda url: Interrupted(PAYLOAD))
    with pytest.raises(KeyboardInterrupt):
        registry.download(make_info(source), data_dir=cache, progress=False)
    assert listing(cache) == []


def test_an_unreachable_url_explains_the_manual_route(source, cache):
    info = make_info(source, url=(source.parent / "missing.bin").as_uri())
    with pytest.raises(DownloadError, match="Could not download 'tiny'.*yourself.*checksum sha256:"):
        registry.download(info, data_dir=cache, progress=False)
    assert listing(cache) == []


# --- extract ------------------------------------------------------------------------------


def build_tar(path: Path, members: dict, *, links: dict = (), hardlinks: dict = (), fifo: str | None = None):
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for kind, table in ((tarfile.SYMTYPE, dict(links)), (tarfile.LNKTYPE, dict(hardlinks))):
            for name, target in table.items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tf.addfile(info)
        if fifo:
            info = tarfile.TarInfo(fifo)
            info.type = tarfile.FIFOTYPE
            tf.addfile(info)
    return path


GOOD = {"Set/readme.txt": b"hello", "Set/A/1.txt": b"one", "Set/B/2.txt": b"two"}


@pytest.mark.parametrize("name", ["good.tar", "good.tar.gz", "good.tgz", "good.zip"])
def test_a_good_archive_extracts_once(tmp_path, name):
    archive = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w") as zf:
            for member, data in GOOD.items():
                zf.writestr(member, data)
    else:
        build_tar(archive, GOOD, links={"Set/A/link.txt": "../B/2.txt"})
    dest = tmp_path / "out"
    assert registry.extract(archive, dest) == dest
    assert (dest / "Set" / "A" / "1.txt").read_bytes() == b"one"
    assert (dest / "Set" / "readme.txt").read_bytes() == b"hello"
    assert (dest / registry.EXTRACTED_MARKER).read_text().strip() == name
    if not name.endswith(".zip"):
        assert (dest / "Set" / "A" / "link.txt").read_bytes() == b"two"  # a link inside is fine
    assert registry.dataset_root(dest) == dest / "Set"
    (dest / "Set" / "A" / "1.txt").write_bytes(b"edited")
    archive.unlink()
    assert registry.extract(archive, dest) == dest  # complete already: nothing is read or rewritten
    assert (dest / "Set" / "A" / "1.txt").read_bytes() == b"edited"
    assert listing(tmp_path) == ["out"]  # no temporary folder left behind


@pytest.mark.parametrize("kwargs, what", [
    ({"members": {**GOOD, "../evil.txt": b"x"}}, "'../evil.txt'"),
    ({"members": {**GOOD, "Set/../../evil.txt": b"x"}}, "'..'"),
    ({"members": {**GOOD, "/tmp/evil.txt": b"x"}}, "absolute path"),
    ({"members": GOOD, "links": {"Set/escape": "../../outside.txt"}}, "outside the destination"),
    ({"members": GOOD, "links": {"Set/abs": "/etc/passwd"}}, "absolute path '/etc/passwd'"),
    ({"members": GOOD, "hardlinks": {"Set/hard": "../outside.txt"}}, "outside the destination"),
    ({"members": GOOD, "fifo": "Set/pipe"}, "device or FIFO"),
])
def test_unsafe_tar_members_are_refused_and_nothing_is_extracted(tmp_path, kwargs, what):
    archive = build_tar(tmp_path / "bad.tar", **kwargs)
    dest = tmp_path / "area" / "out"
    with pytest.raises(UnsafeArchiveError, match=what):
        registry.extract(archive, dest)
    assert listing(tmp_path / "area") == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "Set\\..\\..\\evil.txt"])
def test_unsafe_zip_members_are_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Set/ok.txt", b"ok")
        zf.writestr(zipfile.ZipInfo(member), b"x")
    with pytest.raises(UnsafeArchiveError):
        registry.extract(archive, tmp_path / "area" / "out")
    assert listing(tmp_path / "area") == []


def test_zip_symlinks_pointing_outside_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("Set/escape")
        link.external_attr = 0o120777 << 16  # a symbolic link, as zip tools store one
        zf.writestr(link, "../../outside")
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        registry.extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_interrupted_extraction_is_not_mistaken_for_a_complete_one(tmp_path, monkeypatch):
    archive = build_tar(tmp_path / "good.tar", GOOD)
    dest = tmp_path / "out"

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tarfile.TarFile, "extractall", fail)
    with pytest.raises(OSError, match="disk full"):
        registry.extract(archive, dest)
    assert listing(tmp_path) == ["good.tar"]
    monkeypatch.undo()
    registry.extract(archive, dest)
    assert (dest / "Set" / "B" / "2.txt").read_bytes() == b"two"


def test_extract_will_not_merge_into_a_foreign_folder(tmp_path):
    archive = build_tar(tmp_path / "good.tar", GOOD)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="move or delete it"):
        registry.extract(archive, tmp_path / "out")
    assert listing(tmp_path / "out") == ["mine.txt"]


def test_extract_refuses_files_that_are_not_archives(tmp_path, source):
    with pytest.raises(ValueError, match="cannot unpack"):
        registry.extract(source, tmp_path / "out")


# --- fetch --------------------------------------------------------------------------------


def test_fetch_downloads_extracts_and_returns_the_dataset_folder(tmp_path, cache, monkeypatch):
    archive = build_tar(tmp_path / "Set.tar.gz", GOOD)
    info = make_info(archive, algorithm="md5", name="set", layout="mednist-folders")
    folder = registry.fetch(info, data_dir=cache, progress=False)
    assert folder == cache / "set" / "Set"
    assert sorted(p.name for p in folder.iterdir()) == ["A", "B", "readme.txt"]
    (cache / "Set.tar.gz").unlink()  # once unpacked, the archive is no longer needed
    monkeypatch.setattr(registry, "_open_url", lambda url: pytest.fail("fetch went to the network"))
    assert registry.fetch(info, data_dir=cache, progress=False) == folder


def test_fetch_returns_a_single_file_as_is(source, cache):
    path = registry.fetch(make_info(source), data_dir=cache, progress=False)
    assert path == cache / "tiny.bin" and os.path.getsize(path) == len(PAYLOAD)
