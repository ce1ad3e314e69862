import hashlib
import io
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from archive_helpers import GOOD, build_tar, files_tar, tar_entry
from medlab import archives, paths, registry
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
    ({"name": "../outside"}, "dataset name '../outside' must be a lowercase slug"),
    ({"name": "/abs/path"}, "lowercase slug"),
    ({"name": "a/b"}, "lowercase slug"),
    ({"name": "a\\b"}, "lowercase slug"),
    ({"name": ".."}, "lowercase slug"),
    ({"name": ""}, "lowercase slug"),
    ({"name": ".hidden"}, "lowercase slug"),
    ({"name": "C:data"}, "lowercase slug"),
    ({"name": "x" * 65}, "at most 64 characters"),
    ({"url": "ftp://example.org/x"}, "https://"),
    ({"layout": "csv"}, "layout"),
    ({"size_bytes": -1}, "size_bytes"),
])
def test_dataset_info_checks_its_fields(source, changes, message):
    with pytest.raises(ValueError, match=message):
        make_info(source, **changes)


@pytest.mark.parametrize("name", ["tiny", "task04_hippocampus", "med-nist.v2", "x" * 64])
def test_slug_names_are_accepted(source, name):
    assert make_info(source, name=name).name == name


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(KeyError, match="registered: .*mednist"):
        registry.download("no-such-set")


def test_compute_checksum_matches_hashlib(source):
    assert registry.compute_checksum(source) == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert registry.compute_checksum(source, algorithm="md5") == "md5:" + hashlib.md5(PAYLOAD).hexdigest()


def test_download_honours_medlab_data_dir(source, cache, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV, str(cache))
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


def test_a_corrupt_cached_file_is_moved_aside_and_replaced(source, cache, capsys):
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"truncated")
    path = registry.download(make_info(source), data_dir=cache, progress=False)
    assert path.read_bytes() == PAYLOAD
    aside = "tiny.bin.sha256-" + hashlib.sha256(b"truncated").hexdigest()[:12] + ".bad"
    assert listing(cache) == sorted(["tiny.bin", aside])
    assert (cache / aside).read_bytes() == b"truncated"  # kept, not lost
    assert f"moved it to {aside} and downloading it again" in capsys.readouterr().out


def test_a_failed_redownload_leaves_no_corrupt_file_under_the_final_name(source, cache, monkeypatch):
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"truncated")
    monkeypatch.setattr(registry, "_open_url", lambda url: BrokenStream(PAYLOAD))
    with pytest.raises(DownloadError, match=r"connection reset.*did not have checksum .* and was moved to .*\.bad"):
        registry.download(make_info(source), data_dir=cache, progress=False)
    assert [p for p in listing(cache) if not p.endswith(".bad")] == []
    monkeypatch.undo()
    assert registry.download(make_info(source), data_dir=cache, progress=False).read_bytes() == PAYLOAD


def test_a_folder_in_the_way_is_reported(source, cache):
    (cache / "tiny.bin").mkdir(parents=True)
    with pytest.raises(DownloadError, match="exists but is not a file"):
        registry.download(make_info(source), data_dir=cache, progress=False)


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


def test_the_checksum_is_computed_on_the_file_as_written(source, cache, monkeypatch):
    info = make_info(source)
    real_copy = registry._copy_url

    def copy_then_spoil(info, out, *, progress):
        written = real_copy(info, out, progress=progress)
        out.seek(100)
        out.write(b"\0")  # the disk keeps something other than what arrived
        return written

    monkeypatch.setattr(registry, "_copy_url", copy_then_spoil)
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        registry.download(info, data_dir=cache, progress=False)
    assert listing(cache) == []


class SlowStream(io.BytesIO):
    """A response that delivers 4 KiB at a time, pausing first where ``pause`` says."""

    def __init__(self, data, pause=lambda offset: None):
        super().__init__(data)
        self.pause = pause

    def read(self, size=-1):
        self.pause(self.tell())
        return super().read(4096)


def test_two_downloads_at_once_never_leave_a_corrupt_file(tmp_path, cache, monkeypatch):
    # The first download waits halfway until the second has begun, then finishes at once while
    # the second is still writing slowly: with a shared part file, the first would rename a file
    # with a hole in it.
    payload = os.urandom(256 << 10)
    (tmp_path / "big.bin").write_bytes(payload)
    info = make_info(tmp_path / "big.bin")
    second_started = threading.Event()

    def first_pause(offset):
        if offset >= len(payload) // 2 and not second_started.is_set():
            second_started.wait(5)
            time.sleep(0.02)

    def second_pause(offset):
        second_started.set()
        time.sleep(0.002)

    streams = iter([SlowStream(payload, first_pause), SlowStream(payload, second_pause)])
    monkeypatch.setattr(registry, "_open_url", lambda url: next(streams))
    results = []

    def run():
        try:
            path = registry.download(info, data_dir=cache, progress=False)
            results.append(hashlib.sha256(path.read_bytes()).hexdigest())  # checked as soon as it returns
        except BaseException as exc:  # the assertion below shows what went wrong
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    threads[0].start()
    time.sleep(0.02)
    threads[1].start()
    for t in threads:
        t.join()
    assert results == [hashlib.sha256(payload).hexdigest()] * 2
    assert listing(cache) == ["big.bin"]


def test_an_unreachable_url_explains_the_manual_route(source, cache):
    info = make_info(source, url=(source.parent / "missing.bin").as_uri())
    with pytest.raises(DownloadError, match="Could not download 'tiny'.*yourself.*checksum sha256:"):
        registry.download(info, data_dir=cache, progress=False)
    assert listing(cache) == []


# --- fetch --------------------------------------------------------------------------------


def test_fetch_downloads_extracts_and_returns_the_dataset_folder(tmp_path, cache, monkeypatch):
    archive = files_tar(tmp_path / "Set.tar.gz", GOOD)
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


def test_fetch_refuses_an_unsafe_archive_and_unpacks_nothing(tmp_path, cache):
    archive = build_tar(tmp_path / "Set.tar", [tar_entry("Set/a.txt", "file", b"a"),
                                              tar_entry("Set/link", "sym", link="../../outside")])
    info = make_info(archive, name="set", layout="mednist-folders")
    with pytest.raises(UnsafeArchiveError, match="Set.tar: member 'Set/link' is a symbolic link"):
        registry.fetch(info, data_dir=cache, progress=False)
    assert listing(cache) == ["Set.tar"]  # the checked download stays; nothing was unpacked


def test_fetch_passes_the_limits_on(tmp_path, cache):
    archive = files_tar(tmp_path / "Set.tar", {f"Set/{i}.txt": b"x" for i in range(4)})
    info = make_info(archive, name="set", layout="mednist-folders")
    with pytest.raises(registry.ArchiveTooLargeError, match="more than 3 members"):
        registry.fetch(info, data_dir=cache, progress=False, max_members=3)
    with pytest.raises(registry.ArchiveTooLargeError, match="add up to 4 bytes"):
        registry.fetch(info, data_dir=cache, progress=False, max_bytes=3)
    assert registry.fetch(info, data_dir=cache, progress=False, max_bytes=4) == cache / "set" / "Set"


def test_the_archive_names_stay_importable_from_registry():
    assert registry.extract is archives.extract
    assert registry.UnsafeArchiveError is archives.UnsafeArchiveError
    assert issubclass(registry.UnsafeArchiveError, ValueError)
    assert registry.EXTRACTED_MARKER == archives.EXTRACTED_MARKER
    assert registry.ARCHIVE_SUFFIXES == (".tar", ".tar.gz", ".tgz", ".zip")
