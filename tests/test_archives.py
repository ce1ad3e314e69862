import gzip
import io
import os
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from archive_helpers import GOOD, build_tar, build_zip, files_tar, files_zip, tar_entry, tree
from medlab import archives
from medlab.archives import (
    ArchiveError,
    ArchiveTooLargeError,
    CorruptArchiveError,
    Member,
    UnsafeArchiveError,
    extract,
)


@pytest.fixture
def area(tmp_path):
    """A folder that receives the extraction, beside a sentinel file that must never change."""
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "sentinel.txt").write_bytes(b"original")
    return tmp_path / "area"


def assert_untouched(area: Path):
    assert tree(area) == {"sentinel.txt": b"original"}


# --- what a good archive gives ------------------------------------------------------------


@pytest.mark.parametrize("name", ["good.tar", "good.tar.gz", "good.tgz", "good.zip"])
def test_a_good_archive_extracts_once(tmp_path, name):
    archive = (files_zip if name.endswith(".zip") else files_tar)(tmp_path / name, GOOD)
    dest = tmp_path / "out"
    assert extract(archive, dest) == dest
    assert tree(dest) == {**GOOD, "Set": "dir", "Set/A": "dir", "Set/B": "dir", archives.EXTRACTED_MARKER: name.encode() + b"\n"}
    (dest / "Set" / "A" / "1.txt").write_bytes(b"edited")
    archive.unlink()
    assert extract(archive, dest) == dest  # complete already: nothing is read or rewritten
    assert (dest / "Set" / "A" / "1.txt").read_bytes() == b"edited"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary folder left behind


def test_names_are_normalised_and_folders_made_as_needed(tmp_path):
    archive = build_tar(tmp_path / "a.tar", [tar_entry("./", "dir"), tar_entry("./Set//A/./1.txt", "file", b"one"),
                                            tar_entry("Set/A", "dir"), tar_entry("Set/A/", "dir")])
    dest = extract(archive, tmp_path / "out")
    assert tree(dest) == {"Set": "dir", "Set/A": "dir", "Set/A/1.txt": b"one", archives.EXTRACTED_MARKER: b"a.tar\n"}


def test_stored_permissions_are_ignored(tmp_path):
    info, data = tar_entry("setuid.sh", "file", b"#!/bin/sh\n")
    info.mode = 0o6777
    dest = extract(build_tar(tmp_path / "m.tar", [(info, data)]), tmp_path / "out")
    mode = (dest / "setuid.sh").stat().st_mode
    assert stat.S_ISREG(mode) and mode & 0o7111 == 0 and mode & 0o002 == 0


def test_member_parts_tells_files_from_folders():
    with pytest.raises(ValueError, match="ends with '/'"):
        archives.member_parts("a/b/")
    assert archives.member_parts("a/b/", is_dir=True) == ("a", "b")
    assert archives.member_parts("./", is_dir=True) == ()


# --- links: the CVE-2025-4517 chain and every other kind ----------------------------------


def path_max_chain(path: Path) -> Path:
    """Symlinks through folders with 247-character names, past PATH_MAX, then out and through a hard link."""
    long, steps, entries, prefix = "d" * 247, "abcdefghijklmnop", [], ""
    for step in steps:
        entries += [tar_entry(os.path.join(prefix, long), "dir"), tar_entry(os.path.join(prefix, step), "sym", link=long)]
        prefix = os.path.join(prefix, long)
    deep = os.path.join(*steps, "l" * 254)
    entries += [
        tar_entry(deep, "sym", link="../" * len(steps)),
        tar_entry("escape", "sym", link=deep + "/.."),
        tar_entry("sentinel_link", "hard", link="escape/sentinel.txt"),
        tar_entry("sentinel_link", "file", b"OVERWRITTEN"),
        tar_entry("escape/evil.txt", "file", b"new file outside"),
    ]
    return build_tar(path, entries)


def test_the_path_max_symlink_chain_cannot_escape(tmp_path, area):
    archive = path_max_chain(tmp_path / "chain.tar")
    with pytest.raises(UnsafeArchiveError, match=r"chain.tar: member 'a' is a symbolic link.*nothing was extracted"):
        extract(archive, area / "out")
    assert_untouched(area)


def test_a_link_chain_through_dot_is_refused_before_anything_is_written(tmp_path, area):
    archive = build_tar(tmp_path / "dots.tar", [tar_entry("ok.txt", "file", b"fine"), tar_entry("l2", "sym", link="."),
                                                tar_entry("l1", "sym", link="l2/.."), tar_entry("l1/evil.txt", "file", b"x")])
    with pytest.raises(UnsafeArchiveError, match="'l2' is a symbolic link"):
        extract(archive, area / "out")
    assert_untouched(area)


@pytest.mark.parametrize("entry, what", [
    (tar_entry("Set/A/link.txt", "sym", link="../B/2.txt"), "symbolic link"),  # even one that stays inside
    (tar_entry("Set/hard", "hard", link="Set/B/2.txt"), "hard link"),
    (tar_entry("Set/pipe", "fifo"), "device or FIFO"),
    (tar_entry("Set/tty", "chr"), "device or FIFO"),
    (tar_entry("Set/disk", "blk"), "device or FIFO"),
    (tar_entry("Set/volume", "V"), "tar type b'V'"),
    (tar_entry("Set/folder", "dir", b"data"), None),  # a folder with data: refused as damaged or unsafe
])
def test_anything_but_files_and_folders_is_refused_in_a_tar(tmp_path, area, entry, what):
    archive = build_tar(tmp_path / "bad.tar", [tar_entry(n, "file", d) for n, d in GOOD.items()] + [entry])
    with pytest.raises(ArchiveError, match=f"bad.tar: .*{what or ''}") as caught:
        extract(archive, area / "out")
    assert "nothing was extracted" in str(caught.value).lower()
    assert_untouched(area)


@pytest.mark.parametrize("kind", ["sym", "fifo", "chr", "blk", "sock"])
def test_zip_links_and_devices_are_refused(tmp_path, area, kind):
    archive = build_zip(tmp_path / "bad.zip", [("Set/ok.txt", "file", b"ok"), ("Set/x", kind, b"../../outside")])
    with pytest.raises(UnsafeArchiveError, match="bad.zip: member 'Set/x' is a (symbolic link|device)"):
        extract(archive, area / "out")
    assert_untouched(area)


def test_zip_entries_whose_name_and_mode_disagree_are_refused(tmp_path, area):
    for entry in [("Set/", "file", b""), ("Set", "dir", b"")]:
        archive = build_zip(tmp_path / "odd.zip", [entry])
        with pytest.raises(UnsafeArchiveError, match="disagree on whether it is a folder"):
            extract(archive, area / "out")
    assert_untouched(area)


def test_encrypted_zip_members_are_refused(tmp_path, area):
    archive = files_zip(tmp_path / "secret.zip", {"a.txt": b"a"})
    raw = bytearray(archive.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.index(signature) + flag_at
        raw[at] |= 0x1
    archive.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="'a.txt' is encrypted"):
        extract(archive, area / "out")
    assert_untouched(area)


# --- names and layout ---------------------------------------------------------------------


@pytest.mark.parametrize("name, what", [
    ("../evil.txt", "'..'"),
    ("Set/../../evil.txt", "'..'"),
    ("/tmp/evil.txt", "absolute path"),
    ("C:/evil.txt", "drive letter"),
    ("C:evil.txt", "drive letter"),
    ("Set\\..\\..\\evil.txt", "backslash"),
    ("Set/new\nline.txt", "control character"),
    ("Set/" + "x" * 256, "longer than 255 bytes"),
    ("/".join(["abcdefghij"] * 100), "path longer than 1024 bytes"),
    (archives.EXTRACTED_MARKER, "keeps for its own marker"),
    ("Set/not-a-folder/", "ends with '/'"),
    ("Set/\udcff.txt", "not valid UTF-8"),
])
def test_unsafe_names_are_refused_in_a_tar(tmp_path, area, name, what):
    archive = build_tar(tmp_path / "bad.tar", [tar_entry(n, "file", d) for n, d in GOOD.items()]
                        + [tar_entry(name, "file", b"x")])
    with pytest.raises(UnsafeArchiveError, match=f"bad.tar: member .*{what}.*nothing was extracted"):
        extract(archive, area / "out")
    assert_untouched(area)


def test_nul_in_a_pax_name_is_refused(tmp_path, area):
    info, data = tar_entry("Set/a.txt", "file", b"x")
    info.pax_headers = {"path": "Set/a\x00.txt"}
    archive = build_tar(tmp_path / "nul.tar", [(info, data)], format=tarfile.PAX_FORMAT)
    with pytest.raises(UnsafeArchiveError, match="control character"):
        extract(archive, area / "out")
    assert_untouched(area)


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "Set\\..\\..\\evil.txt", "D:\\evil.txt"])
def test_unsafe_zip_names_are_refused(tmp_path, area, member):
    archive = build_zip(tmp_path / "bad.zip", [("Set/ok.txt", "file", b"ok"), (member, "plain", b"x")])
    with pytest.raises(UnsafeArchiveError, match="bad.zip: member"):
        extract(archive, area / "out")
    assert_untouched(area)


@pytest.mark.parametrize("names, what", [
    (["Set/a.txt", "Set/a.txt"], "appears twice"),
    (["Set/a.txt", "./Set//a.txt"], "appears twice"),
    (["Set/a", "Set/a/b.txt"], "lies inside 'Set/a', which is a file"),
    (["Set/a/b.txt", "Set/a"], "both a file and a folder"),
])
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_duplicates_and_file_folder_conflicts_are_refused(tmp_path, area, names, what, kind):
    if kind == "tar":
        archive = build_tar(tmp_path / "dup.tar", [tar_entry(n, "file", n.encode()) for n in names])
    else:
        archive = build_zip(tmp_path / "dup.zip", [(n, "file", n.encode()) for n in names])
    with pytest.raises(UnsafeArchiveError, match=what):
        extract(archive, area / "out")
    assert_untouched(area)


def test_a_folder_entry_over_a_file_is_refused(tmp_path, area):
    archive = build_tar(tmp_path / "dup.tar", [tar_entry("Set/a", "file", b"x"), tar_entry("Set/a", "dir")])
    with pytest.raises(UnsafeArchiveError, match="both a file and a folder"):
        extract(archive, area / "out")
    assert_untouched(area)


# --- size limits --------------------------------------------------------------------------


def zeros_tar_gz(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tf.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_a_small_archive_that_unpacks_to_much_more_is_refused_by_default(tmp_path, area, monkeypatch):
    monkeypatch.setattr(archives, "MIN_BYTES_LIMIT", 1 << 20)  # a 1 MiB floor keeps the test small
    archive = zeros_tar_gz(tmp_path / "bomb.tar.gz", 4 << 20)
    assert archive.stat().st_size < 40 << 10  # 4 MiB of zeros compress more than 100 times
    with pytest.raises(ArchiveTooLargeError, match=rf"bomb.tar.gz: .*add up to {4 << 20} bytes.*pass max_bytes={4 << 20}"):
        extract(archive, area / "out")
    assert_untouched(area)
    assert extract(archive, area / "out", max_bytes=4 << 20) == area / "out"  # once raised, it unpacks
    assert (area / "out" / "zeros.bin").stat().st_size == 4 << 20


def test_the_default_limit_follows_the_archive_size():
    assert archives.default_max_bytes(10) == archives.MIN_BYTES_LIMIT
    assert archives.default_max_bytes(1 << 30) == archives.MAX_EXPANSION << 30


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_too_many_members_are_refused(tmp_path, area, kind):
    files = {f"Set/{i}.txt": b"x" for i in range(6)}
    archive = files_tar(tmp_path / "many.tar", files) if kind == "tar" else files_zip(tmp_path / "many.zip", files)
    with pytest.raises(ArchiveTooLargeError, match="more than 5 members.*max_members="):
        extract(archive, area / "out", max_members=5)
    assert_untouched(area)
    extract(archive, area / "out", max_members=6)
    assert len(os.listdir(area / "out" / "Set")) == 6


class Lying(io.BytesIO):
    """A member's bytes, whatever its header said."""


def test_bytes_are_counted_while_writing_whatever_the_headers_say(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    member = Member(("a.bin",), False, 10, None)
    with pytest.raises(ArchiveTooLargeError, match="more bytes than its header says"):
        archives.write_members(tmp_path / "x.tar", [member], root, lambda m: Lying(bytes(1000)), max_bytes=100)
    root2 = tmp_path / "root2"
    root2.mkdir()
    with pytest.raises(CorruptArchiveError, match="holds 3 bytes, but its header says 10"):
        archives.write_members(tmp_path / "x.tar", [member], root2, lambda m: Lying(b"abc"), max_bytes=100)


def test_a_zip_member_shorter_than_its_header_is_refused(tmp_path, area):
    archive = files_zip(tmp_path / "short.zip", {"a.txt": b"abc"})
    raw = bytearray(archive.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 24:central + 28] = (30).to_bytes(4, "little")  # uncompressed size: 30, not 3
    archive.write_bytes(bytes(raw))
    with pytest.raises(CorruptArchiveError, match="'a.txt' holds 3 bytes, but its header says 30"):
        extract(archive, area / "out")
    assert_untouched(area)


# --- damaged archives ---------------------------------------------------------------------


def good_bytes(tmp_path, name):
    files = {"Set/a.bin": os.urandom(3000), "Set/b.bin": os.urandom(3000), "Set/c.txt": b"c" * 600}
    return (files_zip if name.endswith(".zip") else files_tar)(tmp_path / ("src-" + name), files).read_bytes()


def damaged(raw: bytes, how: str, name: str) -> bytes:
    if how == "garbage":
        return b"this is not an archive\n" * 50
    if how == "empty":
        return b""
    if how == "truncated":
        return raw[: len(raw) // 2]
    if how == "second header":  # the header of the second member, in a plain tar
        raw = bytearray(raw)
        raw[512 * 7 + 100] ^= 0x40
        return bytes(raw)
    if how == "at a header boundary":
        return raw[: 512 * 7]  # the first member's header and data, nothing after
    if how == "trailing data":
        return raw + b"more data after the end"
    if how == "gzip trailer":
        return raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:-4]) + raw[-4:]
    if how == "zip data":
        at = raw.index(b"PK\x03\x04") + 30 + len("Set/a.bin") + 10
        return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]
    raise AssertionError(how)


@pytest.mark.parametrize("name, how", [
    ("d.tar", "garbage"), ("d.tar", "empty"), ("d.tar", "truncated"), ("d.tar", "second header"),
    ("d.tar", "at a header boundary"), ("d.tar", "trailing data"),
    ("d.tar.gz", "garbage"), ("d.tar.gz", "truncated"), ("d.tar.gz", "gzip trailer"),
    ("d.zip", "garbage"), ("d.zip", "truncated"), ("d.zip", "zip data"),
])
def test_damaged_archives_raise_a_medlab_error_and_extract_nothing(tmp_path, area, name, how):
    archive = tmp_path / name
    archive.write_bytes(damaged(good_bytes(tmp_path, name), how, name))
    with pytest.raises(CorruptArchiveError, match=f"{archive}: .*(truncated|damaged)"):
        extract(archive, area / "out")
    assert_untouched(area)


def test_a_tar_gz_cut_inside_its_compressed_stream_is_refused(tmp_path, area):
    raw = gzip.compress(tarfile_bytes({"a.bin": os.urandom(20000)}))
    archive = tmp_path / "cut.tgz"
    archive.write_bytes(raw[: len(raw) - 200])
    with pytest.raises(CorruptArchiveError, match="cut.tgz"):
        extract(archive, area / "out")
    assert_untouched(area)


def tarfile_bytes(files: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- interruptions, destinations and races ------------------------------------------------


def test_an_interrupted_extraction_leaves_nothing_and_can_be_retried(tmp_path, monkeypatch):
    archive = files_tar(tmp_path / "good.tar", GOOD)
    dest = tmp_path / "new" / "deeper" / "out"
    calls = []

    def fail(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write(*args, **kwargs)

    write = archives._write_file
    monkeypatch.setattr(archives, "_write_file", fail)
    with pytest.raises(OSError, match="No space left") as caught:
        extract(archive, dest)
    assert any("good.tar" in note and "nothing was extracted" in note for note in caught.value.__notes__)
    assert sorted(os.listdir(tmp_path)) == ["good.tar"]  # the folders it made are gone too
    monkeypatch.undo()
    extract(archive, dest)
    assert (dest / "Set" / "B" / "2.txt").read_bytes() == b"two"


def test_an_interrupt_from_the_keyboard_also_cleans_up(tmp_path, monkeypatch):
    archive = files_tar(tmp_path / "good.tar", GOOD)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(archives, "_write_file", interrupt)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["good.tar"]


def test_two_extractions_at_once_both_succeed(tmp_path):
    archive = files_tar(tmp_path / "good.tar", {f"Set/{i}.txt": bytes([i]) * 1000 for i in range(50)})
    dest, results = tmp_path / "out", []

    def run():
        try:
            results.append(extract(archive, dest))
        except BaseException as exc:  # the assertion below shows what went wrong
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [dest, dest]
    assert len(os.listdir(dest / "Set")) == 50
    assert sorted(os.listdir(tmp_path)) == ["good.tar", "out"]


def test_extract_will_not_merge_into_a_foreign_folder(tmp_path):
    archive = files_tar(tmp_path / "good.tar", GOOD)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="move or delete it"):
        extract(archive, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["mine.txt"]


def test_an_empty_destination_folder_is_used(tmp_path):
    (tmp_path / "out").mkdir()
    extract(files_zip(tmp_path / "good.zip", GOOD), tmp_path / "out")
    assert (tmp_path / "out" / "Set" / "readme.txt").read_bytes() == b"hello"


def test_extract_refuses_files_that_are_not_archives(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="cannot unpack"):
        extract(tmp_path / "data.bin", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no archive at"):
        extract(tmp_path / "missing.tar", tmp_path / "out")
