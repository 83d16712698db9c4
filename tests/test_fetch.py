"""hacm.fetch (hacm/fetch/): manifests, verification, file:// download, safe, bounded, idempotent extraction
that lands whole or not at all.

Nothing here touches the network: downloads use file:// URLs or a fake urlopen, and an autouse
fixture makes any other URL fail the test.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from hacm.fetch import bounds as fetch_bounds
from hacm.fetch import download as fetch_download
from hacm.fetch import extract as fetch_extract
from hacm.fetch import manifest as fetch_manifest
from hacm.fetch import staging as fetch_staging
from hacm.fetch.acquire import fetch_dataset
from hacm.fetch.manifest import ArchiveInvalid, ArchiveMissing, DatasetManifest, FetchError

REPO_ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_LISTS = REPO_ROOT / ".." / "shared" / "data" / "ntu_statistics" / "official_shahroudy"
NTU60_ZIP = "nturgbd_skeletons_s001_to_s017.zip"
NTU120_ZIP = "nturgbd_skeletons_s018_to_s032.zip"

needs_official_lists = pytest.mark.skipif(
    not (OFFICIAL_LISTS / fetch_manifest.NTU60_MISSING_SKELETONS.name).is_file(),
    reason=f"official missing-skeleton lists not found in {OFFICIAL_LISTS} (shared data folder absent)",
)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Only file:// URLs may be opened; a test reaching for the network fails loudly."""
    real_urlopen = urllib.request.urlopen

    def guarded(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if not url.startswith("file:"):
            pytest.fail(f"test tried to open {url}")
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


# ----------------------------------------------------------------------------------------------
# helpers


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def ntu_members(prefix: str = "S001") -> dict[str, bytes]:
    return {f"nturgb+d_skeletons/{prefix}C001P001R001A00{i}.skeleton": f"{i}\n".encode() * 50 for i in range(1, 4)}


def digest_of(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def pinned(manifest: DatasetManifest, **by_name: Path) -> DatasetManifest:
    """The manifest with the archives named in ``by_name`` pinned to the size and sha256 of those files."""
    def pin(archive):
        if archive.name not in by_name:
            return archive
        size, sha256 = digest_of(by_name[archive.name])
        return dataclasses.replace(archive, size=size, sha256=sha256)

    return dataclasses.replace(manifest, archives=tuple(pin(a) for a in manifest.archives))


def tarfile_directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def without_auxiliary(manifest: DatasetManifest) -> DatasetManifest:
    return dataclasses.replace(manifest, auxiliary=())


def run_cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "hacm.fetch", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------------------------------------------
# manifest


def test_manifests_name_the_archives_and_pin_only_known_checksums():
    assert [a.name for a in fetch_manifest.MANIFESTS["ntu60"].archives] == [NTU60_ZIP]
    assert [a.name for a in fetch_manifest.MANIFESTS["ntu120"].archives] == [NTU60_ZIP, NTU120_ZIP]
    assert {a.name for a in fetch_manifest.MANIFESTS["pku2"].archives} >= {"Skeleton_v2.7z", "Label_PKUMMD_v2.7z"}
    for manifest in fetch_manifest.MANIFESTS.values():
        for archive in manifest.archives:
            assert archive.sha256 is None and archive.size is None  # nothing published to check against
            assert archive.request_page in (fetch_manifest.NTU_REQUEST_PAGE, fetch_manifest.PKU_REQUEST_PAGE)
    assert fetch_manifest.MANIFESTS["ntu60"].auxiliary[0].sha256.startswith("6fd4a1254ffe69f8")
    assert fetch_manifest.MANIFESTS["ntu120"].auxiliary[0].sha256.startswith("ab14fe64e89be63d")


# ----------------------------------------------------------------------------------------------
# the command line: exit codes and messages


def test_cli_missing_archives_lists_each_with_page_and_target(tmp_path):
    result = run_cli("ntu120", "--archives", tmp_path / "archives", "--raw", tmp_path / "raw")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("hacm.fetch: error: ")
    for name in (NTU60_ZIP, NTU120_ZIP):
        assert name in result.stderr
        assert str((tmp_path / "archives" / name).absolute()) in result.stderr
    assert fetch_manifest.NTU_REQUEST_PAGE in result.stderr
    assert not (tmp_path / "raw" / "FETCHED.json").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--url", "no-equals-sign"], "FILE=URL"),
    (["--url", f"{NTU60_ZIP}=ftpx://host/x.zip"], "must start with"),
    (["--url", "typo.zip=file:///tmp/typo.zip"], "typo.zip"),
    (["--workers", "0"], "--workers"),
])
def test_cli_usage_errors_exit_2_without_traceback(tmp_path, extra, expected):
    result = run_cli("ntu60", "--archives", tmp_path, "--raw", tmp_path / "raw", *extra)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("hacm.fetch: error: ") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_unknown_dataset_and_bad_archives_dir_exit_2(tmp_path):
    unknown = run_cli("ntu999", "--archives", tmp_path, "--raw", tmp_path / "raw")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr and "ntu999" in unknown.stderr
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    bad_dir = run_cli("pku1", "--archives", not_a_dir, "--raw", tmp_path / "raw")
    assert bad_dir.returncode == 2 and "not a directory" in bad_dir.stderr
    assert "Traceback" not in bad_dir.stderr


def test_cli_corrupt_zip_exits_1_with_clear_message(tmp_path):
    path = make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
    start = first.header_offset + 30 + len(first.filename.encode())  # the member's compressed bytes
    data = bytearray(path.read_bytes())
    data[start:start + first.compress_size] = bytes(b ^ 0x5A for b in data[start:start + first.compress_size])
    path.write_bytes(bytes(data))
    never = (tmp_path / "no-list.txt").as_uri()  # keeps the run off the network even if this regressed
    result = run_cli("ntu60", "--archives", tmp_path / "archives", "--raw", tmp_path / "raw",
                     "--url", f"{fetch_manifest.NTU60_MISSING_SKELETONS.name}={never}")
    assert result.returncode == 1
    assert "corrupt" in result.stderr and "Traceback" not in result.stderr


@needs_official_lists
def test_cli_end_to_end_with_file_url_for_the_missing_skeleton_list(tmp_path):
    make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    list_url = (OFFICIAL_LISTS / fetch_manifest.NTU60_MISSING_SKELETONS.name).resolve().as_uri()
    result = run_cli("ntu60", "--archives", tmp_path / "archives", "--raw", tmp_path / "raw",
                     "--url", f"{fetch_manifest.NTU60_MISSING_SKELETONS.name}={list_url}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("hacm.fetch: ntu60 ready")
    fetched = json.loads((tmp_path / "raw" / "FETCHED.json").read_text())
    assert fetched["dataset"] == "ntu60" and fetched["archives"][0]["action"] == "extracted"
    assert (tmp_path / "raw" / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton").is_file()


# ----------------------------------------------------------------------------------------------
# verification


def test_wrong_checksum_is_a_clear_error(tmp_path):
    good = make_zip(tmp_path / "elsewhere" / "good.zip", ntu_members())
    make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members("S002"))
    manifest = without_auxiliary(pinned(fetch_manifest.MANIFESTS["ntu60"], **{NTU60_ZIP: good}))
    manifest = dataclasses.replace(manifest, archives=(dataclasses.replace(manifest.archives[0], size=None),))
    with pytest.raises(ArchiveInvalid) as error:
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    message = str(error.value)
    found = digest_of(tmp_path / "archives" / NTU60_ZIP)[1]
    assert manifest.archives[0].sha256 in message and found in message
    assert fetch_manifest.NTU_REQUEST_PAGE in message and "delete it" in message
    assert error.value.exit_code == 1
    assert not (tmp_path / "raw" / "nturgb+d_skeletons").exists()


def test_wrong_size_is_reported_before_hashing(tmp_path):
    path = make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    archive = dataclasses.replace(fetch_manifest.NTU60_SKELETONS, size=path.stat().st_size + 1)
    manifest = DatasetManifest(dataset="ntu60", title="NTU RGB+D 60", archives=(archive,))
    with pytest.raises(ArchiveInvalid, match=rf"has {path.stat().st_size} bytes, expected"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")


# ----------------------------------------------------------------------------------------------
# download


def test_file_url_download_is_verified_and_extracted(tmp_path):
    source = make_zip(tmp_path / "mirror" / "copy.zip", ntu_members())
    manifest = without_auxiliary(pinned(fetch_manifest.MANIFESTS["ntu60"], **{NTU60_ZIP: source}))
    report = fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                           urls={NTU60_ZIP: source.as_uri()})
    assert (tmp_path / "archives" / NTU60_ZIP).read_bytes() == source.read_bytes()
    assert not (tmp_path / "archives" / f"{NTU60_ZIP}.part").exists()
    assert report.archives[0].sha256 == manifest.archives[0].sha256
    assert (tmp_path / "raw" / "nturgb+d_skeletons" / "S001C001P001R001A002.skeleton").is_file()


def test_file_url_download_with_wrong_content_is_refused(tmp_path):
    expected = make_zip(tmp_path / "expected.zip", ntu_members())
    other = make_zip(tmp_path / "mirror" / "other.zip", ntu_members("S003"))
    manifest = without_auxiliary(pinned(fetch_manifest.MANIFESTS["ntu60"], **{NTU60_ZIP: expected}))
    with pytest.raises(ArchiveInvalid):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                      urls={NTU60_ZIP: other.as_uri()})


def test_unreachable_url_is_an_archive_missing_error(tmp_path):
    manifest = without_auxiliary(fetch_manifest.MANIFESTS["ntu60"])
    with pytest.raises(ArchiveMissing, match="cannot download"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                      urls={NTU60_ZIP: (tmp_path / "nowhere.zip").as_uri()})


class FakeRangeResponse(io.BytesIO):
    """What an HTTP server that honours ``Range: bytes=N-`` returns: status 206 and the tail."""

    def __init__(self, data: bytes, start: int):
        super().__init__(data[start:])
        self.status = 206 if start else 200
        self.headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {
            "Content-Length": str(len(data))}


def test_http_download_resumes_a_partial_file_with_range(tmp_path, monkeypatch):
    data = os.urandom(3000)
    target = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(data[:1234])
    seen_ranges = []

    def fake_urlopen(request, timeout):
        seen_ranges.append(request.get_header("Range"))
        start = int(request.get_header("Range").split("=")[1].rstrip("-")) if request.get_header("Range") else 0
        return FakeRangeResponse(data, start)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    digest = fetch_download.download("https://example.invalid/big.bin", target=target)
    assert seen_ranges == ["bytes=1234-"]
    assert target.read_bytes() == data
    assert digest.sha256 == hashlib.sha256(data).hexdigest() and digest.size == 3000


# ----------------------------------------------------------------------------------------------
# extraction


def test_extraction_lands_files_and_is_skipped_on_rerun(tmp_path):
    path = make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    manifest = without_auxiliary(fetch_manifest.MANIFESTS["ntu60"])
    kwargs = dict(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    first = fetch_dataset(**kwargs)
    extracted = tmp_path / "raw" / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton"
    assert first.archives[0].action == "extracted" and extracted.read_bytes() == b"1\n" * 50
    marker = json.loads((tmp_path / "raw" / f".extracted-{NTU60_ZIP}.json").read_text())
    assert (marker["size"], marker["sha256"]) == digest_of(path) and marker["members"] == 3

    extracted.unlink()  # a rerun must not even look inside the archive again
    second = fetch_dataset(**kwargs)
    assert second.archives[0].action == "already extracted" and not extracted.exists()
    assert second.archives[0].sha256 == marker["sha256"]

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # archive replaced
    assert fetch_dataset(**kwargs).archives[0].action == "extracted" and extracted.exists()


@pytest.mark.parametrize("evil", ["../escape.skeleton", "/tmp/absolute.skeleton", "a/../../escape.skeleton",
                                  "..\\windows.skeleton", "C:/drive.skeleton"])
def test_unsafe_zip_member_is_refused_before_anything_is_written(tmp_path, evil):
    make_zip(tmp_path / "archives" / NTU60_ZIP, {"ok/S001.skeleton": b"1\n", evil: b"pwned"})
    manifest = without_auxiliary(fetch_manifest.MANIFESTS["ntu60"])
    with pytest.raises(ArchiveInvalid, match="unsafe member path"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert not (tmp_path / "raw" / "ok").exists()
    assert not (tmp_path / "escape.skeleton").exists()
    assert not (tmp_path / "raw" / f".extracted-{NTU60_ZIP}.json").exists()


def test_tar_archives_are_extracted_and_unsafe_tar_members_refused(tmp_path):
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as archive:
        archive.addfile(tarfile_directory("./"))  # as `tar czf x.tgz .` writes it
        info = tarfile.TarInfo("skeletons/0001-L.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"0 0\n"))
    assert fetch_extract.archive_format(good) == "tar"
    assert fetch_extract.extract_archive(good, raw_dir=tmp_path / "raw", workers=1) == 2
    assert (tmp_path / "raw" / "skeletons" / "0001-L.txt").read_bytes() == b"0 0\n"

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as archive:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveInvalid, match="unsafe"):
        fetch_extract.extract_archive(evil, raw_dir=tmp_path / "raw", workers=1)
    assert not (tmp_path / "evil.txt").exists()


def test_rar_without_a_tool_names_the_tool_to_install(tmp_path, monkeypatch):
    path = tmp_path / "Skeleton.rar"
    path.write_bytes(fetch_extract.RAR_MAGIC + b"\x00" * 64)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FetchError) as error:
        fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=1)
    assert error.value.exit_code == 2 and "unrar" in str(error.value) and "p7zip" in str(error.value)


def make_7z(path: Path, members: dict[str, bytes]) -> Path:
    import py7zr

    path.parent.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(path, mode="w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return path


def test_7z_archives_are_extracted_without_any_7z_command(tmp_path, monkeypatch):
    """PKU-MMD's .7z archives need no external tool (py7zr): nothing is looked up on the PATH."""
    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail(f"looked for the command {name}"))
    packed = make_7z(tmp_path / "Skeleton.7z", {"PKU_Skeleton_Renew/0002-L.txt": ("0.5 " * 150 + "\n").encode()})
    assert fetch_extract.archive_format(packed) == "7z"
    assert fetch_extract.extract_archive(packed, raw_dir=tmp_path / "raw", workers=2) == 1
    assert (tmp_path / "raw" / "PKU_Skeleton_Renew" / "0002-L.txt").read_text().startswith("0.5 0.5")


def test_7z_with_an_unsafe_member_or_corrupt_bytes_is_refused_before_writing(tmp_path, monkeypatch):
    import py7zr

    evil = make_7z(tmp_path / "evil.7z", {"ok.txt": b"ok"})
    listed = py7zr.SevenZipFile.list  # py7zr will not write "../evil.txt": list it as if a packer had
    monkeypatch.setattr(py7zr.SevenZipFile, "list", lambda self: [*listed(self), dataclasses.replace(
        listed(self)[0], filename="../evil.txt")])
    with pytest.raises(ArchiveInvalid, match="unsafe member path '../evil.txt'"):
        fetch_extract.extract_archive(evil, raw_dir=tmp_path / "raw", workers=1)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "raw" / "ok.txt").exists()
    monkeypatch.undo()
    good = make_7z(tmp_path / "good.7z", {"a.txt": b"x" * 5000})
    broken = tmp_path / "broken.7z"
    broken.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ArchiveInvalid, match="corrupt"):
        fetch_extract.extract_archive(broken, raw_dir=tmp_path / "raw", workers=1)


def make_deflate64_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip whose members are marked Deflate64 (method 9). Their streams are plain Deflate, which is
    valid Deflate64 as long as no match is 258 bytes long (code 285 differs): the data has no repeats."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := raw.find(signature, start)) != -1:
            raw[start + method_at:start + method_at + 2] = (9).to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(raw))
    return path


def test_deflate64_zips_are_extracted_without_any_7z_command(tmp_path, monkeypatch):
    import base64

    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail(f"looked for the command {name}"))
    data = {f"nturgb+d_skeletons/S001C001P001R001A00{k}.skeleton": base64.b64encode(os.urandom(30_000)) for k in (1, 2)}
    path = make_deflate64_zip(tmp_path / NTU60_ZIP, data)
    assert {info.compress_type for info in zipfile.ZipFile(path).infolist()} == {9}
    assert fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=2) == 2
    for name, content in data.items():
        assert (tmp_path / "raw" / name).read_bytes() == content
    broken = bytearray(path.read_bytes())
    broken[200:260] = bytes(60)  # inside the first member's stream
    (tmp_path / "broken.zip").write_bytes(bytes(broken))
    with pytest.raises(ArchiveInvalid, match="corrupt|CRC"):
        fetch_extract.extract_archive(tmp_path / "broken.zip", raw_dir=tmp_path / "raw2", workers=1)


def test_tool_listing_is_checked_for_unsafe_paths_before_extracting(tmp_path, monkeypatch):
    listing = "--\nPath = /abs/Skeleton.7z\nType = 7z\n\n----------\nPath = ok.txt\n\nPath = ../evil.txt\n"
    assert fetch_extract.seven_zip_member_names(listing) == ["ok.txt", "../evil.txt"]
    path = make_zip(tmp_path / "deflate64.zip", {"ok.txt": b"ok"})
    monkeypatch.setattr(fetch_extract, "ZIPFILE_METHODS", ())  # as if its members were Deflate64: the 7z tool
    calls = []
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fetch_extract, "run_tool", lambda command, path: calls.append(command) or listing)
    with pytest.raises(ArchiveInvalid, match="unsafe member path '../evil.txt'"):
        fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=1)
    assert [command[1] for command in calls] == ["l"]  # listed, never extracted


def test_pku_archives_are_recognised_by_content_and_split_aliases_copied(tmp_path):
    """Whatever the extension says, a zip is extracted as a zip; a split under its official
    hyphenated name lands in <raw> under the manifest's name."""
    store = tmp_path / "archives"
    make_zip(store / "Skeleton.7z", {"PKU_Skeleton_Renew/0002-L.txt": b"0.1 " * 150 + b"\n"})
    make_zip(store / "Label_PKUMMD.7z", {"Train_Label_PKU_final/0002-L.txt": b"1,10,50,2\n"})
    (store / "cross-subject.txt").write_text("Training videos:\n0002-L, 0002-M\n")
    (store / "cross_view.txt").write_text("Training videos:\n0002-M\n")
    report = fetch_dataset(manifest=fetch_manifest.MANIFESTS["pku1"], archives_dir=store, raw_dir=tmp_path / "raw")
    raw = tmp_path / "raw"
    assert (raw / "PKU_Skeleton_Renew" / "0002-L.txt").is_file()
    assert (raw / "Train_Label_PKU_final" / "0002-L.txt").read_text() == "1,10,50,2\n"
    assert (raw / "cross_subject.txt").read_text().startswith("Training videos")
    assert [r.action for r in report.archives] == ["extracted", "extracted", "copied", "copied"]


# ----------------------------------------------------------------------------------------------
# the official missing-skeleton lists


@needs_official_lists
@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_missing_skeleton_list_is_downloaded_and_verified(tmp_path, dataset):
    manifest = fetch_manifest.MANIFESTS[dataset]
    for archive in manifest.archives:
        make_zip(tmp_path / "archives" / archive.name, {"x/S001.skeleton": b"1\n"})
    aux = manifest.auxiliary[0]
    source = (OFFICIAL_LISTS / aux.name).resolve()
    report = fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                           urls={aux.name: source.as_uri()})
    placed = tmp_path / "raw" / aux.name
    assert digest_of(placed) == (aux.size, aux.sha256)
    assert report.auxiliary[0].action == "downloaded"
    fetched = json.loads((tmp_path / "raw" / "FETCHED.json").read_text())
    assert fetched["auxiliary"][0]["sha256"] == aux.sha256
    assert [a["name"] for a in fetched["archives"]] == [a.name for a in manifest.archives]
    assert all(len(a["sha256"]) == 64 and a["size"] > 0 for a in fetched["archives"])


@needs_official_lists
def test_missing_skeleton_list_from_archives_dir_is_copied_and_a_tampered_one_refused(tmp_path):
    aux = fetch_manifest.NTU60_MISSING_SKELETONS
    manifest = DatasetManifest(dataset="ntu60", title="NTU RGB+D 60", archives=(), auxiliary=(aux,))
    store = tmp_path / "archives"
    store.mkdir()
    (store / aux.name).write_bytes((OFFICIAL_LISTS / aux.name).read_bytes())
    report = fetch_dataset(manifest=manifest, archives_dir=store, raw_dir=tmp_path / "raw")
    assert report.auxiliary[0].action == "copied"
    assert fetch_dataset(manifest=manifest, archives_dir=store, raw_dir=tmp_path / "raw").auxiliary[0].action \
        == "verified"

    (store / aux.name).write_bytes((OFFICIAL_LISTS / aux.name).read_bytes().replace(b"S001", b"S009", 1))
    (tmp_path / "raw" / aux.name).unlink()
    with pytest.raises(ArchiveInvalid, match=aux.sha256):
        fetch_dataset(manifest=manifest, archives_dir=store, raw_dir=tmp_path / "raw")


def test_missing_skeleton_list_unobtainable_says_where_to_get_it(tmp_path):
    aux = fetch_manifest.NTU120_MISSING_SKELETONS
    manifest = DatasetManifest(dataset="ntu120", title="NTU RGB+D 120", archives=(), auxiliary=(aux,))
    with pytest.raises(ArchiveMissing) as error:
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                      urls={aux.name: (tmp_path / "absent.txt").as_uri()})
    assert aux.page in str(error.value) and str(tmp_path / "archives" / aux.name) in str(error.value)


@pytest.mark.parametrize("aux", [fetch_manifest.NTU60_MISSING_SKELETONS, fetch_manifest.NTU120_MISSING_SKELETONS])
def test_the_shipped_lists_are_the_pinned_official_files(aux):
    assert digest_of(aux.shipped) == (aux.size, aux.sha256)


def test_fetch_needs_no_network_for_the_missing_skeleton_lists(tmp_path, monkeypatch):
    """Compute nodes often have no internet: with every connection refused, fetch of NTU-60 and NTU-120
    places the lists shipped with hacm, verified, and says so in FETCHED.json."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network unavailable (test)")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for dataset in ("ntu60", "ntu120"):
        manifest = fetch_manifest.MANIFESTS[dataset]
        for archive in manifest.archives:
            make_zip(tmp_path / dataset / "archives" / archive.name, {"x/S001.skeleton": b"1\n"})
        raw = tmp_path / dataset / "raw"
        report = fetch_dataset(manifest=manifest, archives_dir=tmp_path / dataset / "archives", raw_dir=raw)
        aux = manifest.auxiliary[0]
        assert report.auxiliary[0].action == "shipped"
        assert digest_of(raw / aux.name) == (aux.size, aux.sha256)
        assert json.loads((raw / "FETCHED.json").read_text())["auxiliary"][0]["action"] == "shipped"


def test_a_changed_or_absent_shipped_list_is_one_clear_error(tmp_path, monkeypatch):
    aux = fetch_manifest.NTU60_MISSING_SKELETONS
    official = aux.shipped.read_bytes()
    manifest = DatasetManifest(dataset="ntu60", title="NTU RGB+D 60", archives=(), auxiliary=(aux,))
    shipped = tmp_path / "lists"
    shipped.mkdir()
    monkeypatch.setattr(fetch_manifest, "SHIPPED_LISTS", shipped)
    with pytest.raises(ArchiveMissing, match="the copy shipped with hacm .* is missing") as error:
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert aux.page in str(error.value)
    (shipped / aux.name).write_bytes(official.replace(b"S001", b"S009", 1))
    with pytest.raises(ArchiveInvalid, match="the copy shipped with hacm was changed"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert not (tmp_path / "raw" / aux.name).exists()


def test_downloaded_list_with_wrong_content_is_removed(tmp_path):
    aux = fetch_manifest.NTU60_MISSING_SKELETONS
    fake = tmp_path / "fake.txt"
    fake.write_text("not the official list\n")
    manifest = DatasetManifest(dataset="ntu60", title="NTU RGB+D 60", archives=(), auxiliary=(aux,))
    with pytest.raises(ArchiveInvalid, match="not the official file") as error:
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw",
                      urls={aux.name: fake.as_uri()})
    assert fake.as_uri() in str(error.value) and aux.page in str(error.value)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == []  # nothing unverified left behind


# ----------------------------------------------------------------------------------------------
# URL configuration


def test_urls_come_from_yaml_config_and_are_checked(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("fetch:\n  urls:\n    Skeleton.7z: file:///data/Skeleton.7z\n")
    assert fetch_manifest.load_url_config(config) == {"Skeleton.7z": "file:///data/Skeleton.7z"}
    config.write_text("urls:\n  Skeleton.7z: gopher://x\n")
    with pytest.raises(FetchError, match="must start with"):
        fetch_manifest.load_url_config(config)
    config.write_text("urls: [a, b]\n")
    with pytest.raises(FetchError, match="must map"):
        fetch_manifest.load_url_config(config)


def test_a_missing_archive_message_lists_what_was_found_instead(tmp_path):
    """A mirror's own name for an archive: the message says what is there and what is expected."""
    store = tmp_path / "archives"
    make_zip(store / "NTU_RGBD120_skeletons_part2.zip", {"x/S018C001P008R001A061.skeleton": b"1\n"})
    (store / "notes.txt").write_text("where I got these")
    with pytest.raises(ArchiveMissing) as error:
        fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=store, raw_dir=tmp_path / "raw")
    message = str(error.value)
    assert message.splitlines()[0].endswith("found there instead: NTU_RGBD120_skeletons_part2.zip, notes.txt")
    assert NTU120_ZIP in message and NTU60_ZIP in message


# ----------------------------------------------------------------------------------------------
# data the user already extracted (MAMP's data/ layout, PKU-MMD's official folders)


def copy_matching(source: Path, target: Path, keep) -> int:
    target.mkdir(parents=True, exist_ok=True)
    names = [path.name for path in sorted(source.iterdir()) if keep(path.name)]
    for name in names:
        shutil.copy2(source / name, target / name)
    return len(names)


def prepare_ntu(dataset: str, raw: Path, out: Path, synthetic_raw: Path) -> dict:
    """hacm.prepare on `raw` with the synthetic data's own missing list; the report's only part."""
    from hacm.prepare.__main__ import main as prepare_main

    missing = synthetic_raw / "ntu" / fetch_manifest.MANIFESTS[dataset].auxiliary[0].name
    assert prepare_main([dataset, "--raw", str(raw), "--out", str(out), "--workers", "1", "--missing", str(missing)]) == 0
    return json.loads((out / "report.json").read_text())["parts"][0]


def test_ntu_folders_in_mamps_layout_are_linked_not_copied_and_prepared(tmp_path, synthetic_raw):
    """MAMP's data/nturgbd_raw/{nturgb+d_skeletons, nturgb+d_skeletons120}/: <archives> may be data/."""
    skeletons = synthetic_raw / "ntu" / "nturgb+d_skeletons"
    data = tmp_path / "data"
    part1 = copy_matching(skeletons, data / "nturgbd_raw" / "nturgb+d_skeletons", lambda n: int(n[1:4]) <= 17)
    part2 = copy_matching(skeletons, data / "nturgbd_raw" / "nturgb+d_skeletons120", lambda n: int(n[1:4]) >= 18)
    assert part1 and part2
    raw = tmp_path / "raw"
    report = fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=data, raw_dir=raw)
    assert [r.action for r in report.archives] == ["linked", "linked"]
    assert (raw / "nturgbd_skeletons_s018_to_s032").resolve() == (data / "nturgbd_raw" / "nturgb+d_skeletons120").resolve()
    assert not any(path.is_file() and path.suffix == ".skeleton" for path in raw.rglob("*"))  # nothing copied
    again = fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=data / "nturgbd_raw", raw_dir=raw)
    assert [r.action for r in again.archives] == ["already linked", "already linked"]  # <archives> one level down
    part = prepare_ntu("ntu120", raw, tmp_path / "stores", synthetic_raw)
    assert part["files_found"] == part1 + part2 and part["problems"] == []
    assert part["files_converted"] + part["files_skipped_missing_list"] == part1 + part2


def test_both_ntu_parts_in_one_folder_are_linked_once_and_a_change_is_noticed(tmp_path, synthetic_raw):
    data = tmp_path / "data"
    total = copy_matching(synthetic_raw / "ntu" / "nturgb+d_skeletons", data / "nturgb+d_skeletons", lambda n: True)
    raw = tmp_path / "raw"
    report = fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=data, raw_dir=raw)
    assert [r.action for r in report.archives] == ["linked", f"in the folder of {NTU60_ZIP}"]
    assert sorted(path.name for path in raw.iterdir() if path.is_symlink()) == ["nturgbd_skeletons_s001_to_s017"]
    part = prepare_ntu("ntu120", raw, tmp_path / "stores120", synthetic_raw)
    assert part["files_found"] == total and part["problems"] == []  # each sample read once
    part = prepare_ntu("ntu60", raw, tmp_path / "stores60", synthetic_raw)
    assert part["files_out_of_scope"] > 0 and part["problems"] == []
    (data / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton").unlink()
    report = fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=data, raw_dir=raw)
    assert report.archives[0].action == "linked"  # the listing changed: the marker is renewed


def test_a_zip_and_a_folder_holding_the_same_samples_are_refused(tmp_path, synthetic_raw):
    data = tmp_path / "data"
    copy_matching(synthetic_raw / "ntu" / "nturgb+d_skeletons", data / "nturgb+d_skeletons", lambda n: True)
    make_zip(data / NTU60_ZIP, ntu_members())
    with pytest.raises(FetchError, match="holds the files of nturgbd_skeletons_s001_to_s017.zip too.*read twice"):
        fetch_dataset(manifest=fetch_manifest.MANIFESTS["ntu120"], archives_dir=data, raw_dir=tmp_path / "raw")


def test_pku_phase_i_as_the_official_download_unpacks_and_phase_ii_in_mamps_layout(tmp_path, synthetic_raw):
    from hacm.prepare.__main__ import main as prepare_main

    data = tmp_path / "data"
    for source, target in [("skeleton", "PKUMMD/Data/PKU_Skeleton_Renew"), ("label", "PKUMMD/Label/Train_Label_PKU_final")]:
        copy_matching(synthetic_raw / "pku1" / source, data / target, lambda n: True)
    copy_matching(synthetic_raw / "pku1" / "split", data / "PKUMMD" / "Split", lambda n: True)
    (data / "PKUMMD" / "Split" / "cross_subject.txt").rename(data / "PKUMMD" / "Split" / "cross-subject.txt")
    for folder in ("skeleton", "label"):
        copy_matching(synthetic_raw / "pku2" / folder, data / "pku_raw" / "v2" / folder, lambda n: True)
    copy_matching(synthetic_raw / "pku2" / "split", data / "pku_raw" / "v2", lambda n: True)
    for dataset in ("pku1", "pku2"):
        raw = tmp_path / "raw" / dataset
        report = fetch_dataset(manifest=fetch_manifest.MANIFESTS[dataset], archives_dir=data, raw_dir=raw)
        assert [r.action for r in report.archives] == ["linked", "linked", "copied", "copied"]
        out = tmp_path / "stores" / dataset
        assert prepare_main([dataset, "--raw", str(raw), "--out", str(out), "--workers", "1"]) == 0
        part = json.loads((out / "report.json").read_text())["parts"][0]
        assert part["files_converted"] == len(list((synthetic_raw / dataset / "skeleton").iterdir()))
        assert part["problems"] == []


def test_a_layout_folder_of_the_other_phase_is_not_taken_and_the_message_says_so(tmp_path, synthetic_raw):
    v2 = tmp_path / "pku_raw" / "v2"
    for folder in ("skeleton", "label"):
        copy_matching(synthetic_raw / "pku2" / folder, v2 / folder, lambda n: True)
    with pytest.raises(ArchiveMissing) as error:
        fetch_dataset(manifest=fetch_manifest.MANIFESTS["pku1"], archives_dir=v2, raw_dir=tmp_path / "raw")
    first, *rest = str(error.value).splitlines()
    assert first.startswith("PKU-MMD phase I (pku1) needs Skeleton.7z, Label_PKUMMD.7z, cross_subject.txt, cross_view.txt")
    assert first.endswith("found there instead: label/, skeleton/")
    assert any(f"{v2 / 'skeleton'} is there but holds no file named like" in line for line in rest)


# ----------------------------------------------------------------------------------------------
# bounded extraction: bombs, lying headers, disk space (hacm/fetch/bounds.py)


ZEROS = bytes(4 << 20)  # 4 MiB of zeros: Deflate and LZMA shrink it some 1000 times, as in a zip bomb


def make_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("make", [make_zip, make_7z, make_tar_gz], ids=["zip", "7z", "tar.gz"])
def test_an_archive_bomb_is_refused_before_anything_is_written(tmp_path, make):
    bomb = make(tmp_path / "bomb", {"skeletons/0001-L.txt": b"0.1 " * 150 + b"\n", "skeletons/0002-L.txt": ZEROS})
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(ArchiveInvalid, match="more than (100|20) times .*decompression bomb"):
        fetch_extract.extract_archive(bomb, raw_dir=tmp_path / "raw", workers=2)
    assert not (tmp_path / "raw").exists()


def test_a_7z_bomb_spread_over_moderately_packed_members_is_refused(tmp_path):
    """Reliability probe 2 (N10): a 7 MB 7z expanding 34 times to 240 MB was extracted. A whole archive may
    expand at most MAX_ARCHIVE_RATIO (20) times; real skeleton archives reach 3-4."""
    import numpy as np

    rng = np.random.default_rng(0)
    members = {}
    for index in range(4):  # one random byte in 60: LZMA packs it some 30 times
        data = np.zeros(1 << 20, np.uint8)
        data[::60] = rng.integers(0, 256, len(data[::60]))
        members[f"skeletons/{index:04d}-L.txt"] = data.tobytes()
    bomb = make_7z(tmp_path / "bomb.7z", members)
    assert 20 < 4 * (1 << 20) / bomb.stat().st_size < 100
    with pytest.raises(ArchiveInvalid, match="more than 20 times"):
        fetch_extract.extract_archive(bomb, raw_dir=tmp_path / "raw", workers=2)
    assert not (tmp_path / "raw").exists()


def test_a_zip_bomb_through_the_command_line_exits_1_with_one_line(tmp_path):
    make_zip(tmp_path / "archives" / NTU60_ZIP, {**ntu_members(), "nturgb+d_skeletons/S001C001P001R001A009.skeleton": ZEROS})
    result = run_cli("ntu60", "--archives", tmp_path / "archives", "--raw", tmp_path / "raw")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "S001C001P001R001A009.skeleton" in result.stderr
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["archives", "raw"]  # no staging folder left


def declare_size(path: Path, size: int) -> Path:
    """Rewrite every member's uncompressed size in the local and central headers (a lying header)."""
    raw = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := raw.find(signature, start)) != -1:
            raw[start + size_at:start + size_at + 4] = size.to_bytes(4, "little")
            start += 4
    path.write_bytes(bytes(raw))
    return path


def test_a_deflate64_member_inflating_past_its_declared_size_is_stopped(tmp_path, monkeypatch):
    import base64

    name = "nturgb+d_skeletons/S001C001P001R001A001.skeleton"
    path = declare_size(make_deflate64_zip(tmp_path / NTU60_ZIP, {name: base64.b64encode(os.urandom(300_000))}), 100)
    assert zipfile.ZipFile(path).getinfo(name).file_size == 100
    offered = []
    real_write = fetch_extract.BoundedWriter.write
    monkeypatch.setattr(fetch_extract.BoundedWriter, "write",
                        lambda self, data: offered.append(len(data)) or real_write(self, data))
    with pytest.raises(ArchiveInvalid, match=re.escape(f"member '{name}' inflates past the 100 bytes its header")):
        fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=1)
    assert len(offered) == 1 and sum(offered) < 400_000  # stopped at the first piece, not at the stream's end
    assert not (tmp_path / "raw" / name).exists()  # the partial file is removed


def test_an_archive_larger_than_the_manifest_allows_is_refused(tmp_path, monkeypatch):
    members = {f"nturgb+d_skeletons/S001C001P001R001A00{i}.skeleton": os.urandom(3000) for i in range(1, 4)}
    make_zip(tmp_path / "archives" / NTU60_ZIP, members)
    archive = dataclasses.replace(fetch_manifest.NTU60_SKELETONS, expanded_size=2000)
    manifest = DatasetManifest(dataset="ntu60", title="NTU RGB+D 60", archives=(archive,))
    monkeypatch.setattr(fetch_bounds, "MIN_TOTAL_BYTES", 0)
    with pytest.raises(ArchiveInvalid, match="expands to 8.8 KiB, more than the 7.8 KiB its official content"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == []
    # The total rests on estimates: an official archive that outgrows them can be let through, knowingly.
    monkeypatch.setenv(fetch_bounds.TOTAL_BOUND_SWITCH, "off")
    fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert len(list((tmp_path / "raw").rglob("*.skeleton"))) == 3


def test_the_bounds_of_the_official_archives_are_generous():
    for manifest in fetch_manifest.MANIFESTS.values():
        for archive in manifest.archives:
            limits = fetch_bounds.limits_for(archive)
            if archive.unpack:
                assert archive.expanded_size and limits.max_total >= 4 * archive.expanded_size
                assert limits.max_total >= 64 << 20
            assert limits.max_ratio == 100 and limits.max_archive_ratio == 20


@pytest.mark.skipif(not (REPO_ROOT.parent / "shared" / "data" / "ntu_raw_samples").is_dir(),
                    reason="real NTU samples (shared data folder) absent")
def test_real_skeleton_files_are_far_inside_the_ratio_bound(tmp_path):
    """The rationale of MAX_RATIO: real skeleton text deflates some 2.4 times, 40 times under the bound."""
    samples = sorted((REPO_ROOT.parent / "shared" / "data" / "ntu_raw_samples").glob("*.skeleton"))
    path = make_zip(tmp_path / NTU60_ZIP, {f"nturgb+d_skeletons/{p.name}": p.read_bytes() for p in samples})
    for info in zipfile.ZipFile(path).infolist():
        assert info.file_size < fetch_bounds.MAX_RATIO / 20 * info.compress_size
    limits = fetch_bounds.limits_for(fetch_manifest.NTU60_SKELETONS)
    assert fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=2, limits=limits) == len(samples)


def test_too_little_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    monkeypatch.setattr(fetch_bounds.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10))
    with pytest.raises(FetchError, match=r"needs 300 B, but only 10 B are free on the disk of") as error:
        fetch_dataset(manifest=without_auxiliary(fetch_manifest.MANIFESTS["ntu60"]),
                      archives_dir=tmp_path / "archives", raw_dir=tmp_path / "raw")
    assert error.value.exit_code == 2
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == []


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    from hacm.fetch.__main__ import run

    make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())

    def disk_fills(self, data):
        self.target.write(data[: len(data) // 2])  # half of it made it to the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fetch_bounds.BoundedWriter, "write", disk_fills)
    assert run(["ntu60", "--archives", str(tmp_path / "archives"), "--raw", str(tmp_path / "raw"), "--workers", "1"]) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert message.startswith("hacm.fetch: error: no space left on device writing ")
    assert ".skeleton while extracting " + NTU60_ZIP in message
    assert not any(path.is_file() for path in tmp_path.rglob("*.skeleton"))  # in raw or beside it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["archives", "raw"]


# ----------------------------------------------------------------------------------------------
# extraction lands whole or not at all (hacm/fetch/staging.py)


def corrupt_member(path: Path, name: str) -> Path:
    """Flip the compressed bytes of one member: its CRC (or its stream) fails."""
    info = zipfile.ZipFile(path).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode())
    data = bytearray(path.read_bytes())
    data[start:start + info.compress_size] = bytes(b ^ 0x5A for b in data[start:start + info.compress_size])
    path.write_bytes(bytes(data))
    return path


def test_a_failed_refetch_leaves_no_partial_content_and_no_completion_mark(tmp_path):
    manifest = without_auxiliary(fetch_manifest.MANIFESTS["ntu60"])
    archive = make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    raw = tmp_path / "raw"
    fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=raw)
    old = sorted(path.name for path in (raw / "nturgb+d_skeletons").iterdir())
    assert (raw / "FETCHED.json").is_file() and len(old) == 3

    members = {f"nturgb+d_skeletons/S002C001P001R001A00{i}.skeleton": os.urandom(2000) for i in range(1, 6)}
    corrupt_member(make_zip(archive, members), "nturgb+d_skeletons/S002C001P001R001A003.skeleton")
    with pytest.raises(ArchiveInvalid, match="corrupt"):
        fetch_dataset(manifest=manifest, archives_dir=tmp_path / "archives", raw_dir=raw, workers=1)
    assert not (raw / "FETCHED.json").exists()  # no old completion mark beside the raw folder
    assert sorted(path.name for path in (raw / "nturgb+d_skeletons").iterdir()) == old  # none of the new members
    assert sorted(path.name for path in tmp_path.iterdir()) == ["archives", "raw"]  # no staging folder left


KILLED_MIDWAY = """
import os, signal, sys
from pathlib import Path
from hacm.fetch import bounds, manifest
from hacm.fetch.acquire import fetch_dataset
real_write, members = bounds.BoundedWriter.write, []
def write(self, data):
    members.append(self.name)
    if len(set(members)) == 3:  # two members written: kill -9 in the third
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(self, data)
bounds.BoundedWriter.write = write
ntu60 = manifest.MANIFESTS["ntu60"]
fetch_dataset(manifest=ntu60.__class__(ntu60.dataset, ntu60.title, ntu60.archives), archives_dir=Path(sys.argv[1]),
              raw_dir=Path(sys.argv[2]), workers=1)
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs kill -9")
def test_kill_9_mid_extraction_leaves_nothing_in_raw_and_the_next_run_cleans_up(tmp_path):
    make_zip(tmp_path / "archives" / NTU60_ZIP, ntu_members())
    raw = tmp_path / "raw"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    killed = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, tmp_path / "archives", raw], env=env,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    staging = fetch_staging.staging_dir(raw.absolute())
    assert len(list(staging.rglob("*.skeleton"))) == 3  # two written, the third begun (a kill cleans nothing)
    assert not list(raw.rglob("*.skeleton"))  # what prepare reads holds nothing of it

    report = fetch_dataset(manifest=without_auxiliary(fetch_manifest.MANIFESTS["ntu60"]),
                           archives_dir=tmp_path / "archives", raw_dir=raw)
    assert report.archives[0].action == "extracted" and not staging.exists()
    assert len(list(raw.rglob("*.skeleton"))) == 3 and (raw / "FETCHED.json").is_file()


def test_both_ntu_zips_fill_one_folder_and_a_link_in_raw_is_replaced_not_followed(tmp_path):
    store = tmp_path / "archives"
    make_zip(store / NTU60_ZIP, ntu_members("S001"))
    make_zip(store / NTU120_ZIP, ntu_members("S018"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "nturgb+d_skeletons").symlink_to(elsewhere, target_is_directory=True)
    fetch_dataset(manifest=without_auxiliary(fetch_manifest.MANIFESTS["ntu120"]), archives_dir=store, raw_dir=raw)
    assert list(elsewhere.iterdir()) == []  # nothing landed outside the raw folder
    folder = raw / "nturgb+d_skeletons"
    assert not folder.is_symlink() and len(list(folder.iterdir())) == 6


# ----------------------------------------------------------------------------------------------
# archive defects are archive errors (exit 1)


def zip_link(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16  # as `zip -y` stores a link
    return info


def test_a_zip_link_then_a_member_under_it_is_an_archive_error_naming_the_member(tmp_path):
    path = tmp_path / "archives" / NTU60_ZIP
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zip_link("linkdir", str(tmp_path)), str(tmp_path))
        archive.writestr("linkdir/EVIL", b"pwned")
    result = run_cli("ntu60", "--archives", tmp_path / "archives", "--raw", tmp_path / "raw")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "holds a link 'linkdir'; refusing to extract it" in result.stderr
    assert not (tmp_path / "EVIL").exists() and not list((tmp_path / "raw").iterdir())


def test_a_zip_member_that_is_both_a_file_and_a_folder_is_an_archive_error(tmp_path):
    path = make_zip(tmp_path / NTU60_ZIP, {"skeletons": b"a file", "skeletons/S001.skeleton": b"1\n"})
    with pytest.raises(ArchiveInvalid, match="holds 'skeletons' both as a file and as a folder"):
        fetch_extract.extract_archive(path, raw_dir=tmp_path / "raw", workers=1)


def test_the_help_lists_every_archive_of_every_dataset():
    """Issue 28: the config files said `python -m hacm.fetch --help` lists the archive names; it did not."""
    result = subprocess.run([sys.executable, "-m", "hacm.fetch", "--help"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COLUMNS": "400"})
    assert result.returncode == 0
    for manifest in fetch_manifest.MANIFESTS.values():
        for archive in manifest.archives:
            assert archive.name in result.stdout, archive.name
