"""Safe, bounded extraction of zip / tar / 7z / rar archives into a folder (no member outside it, links
refused, no more written than the official archives need: bounds.py), with markers recording what was
extracted from which archive. Extraction into a staging folder and the move into the raw folder: staging.py.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import tarfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from hacm.cli import one_line
from hacm.fetch.bounds import (
    BoundedWriter,
    ExtractionLimits,
    check_declared_sizes,
    check_expansion,
    no_space,
)
from hacm.fetch.download import CHUNK_BYTES, progress_bar
from hacm.fetch.manifest import Archive, ArchiveInvalid, FetchError
from hacm.files import is_disk_full

# ----------------------------------------------------------------------------------------------
# extraction


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
RAR_MAGIC = b"Rar!\x1a\x07"
COMPRESSED_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
EXTERNAL_TOOLS = {  # 7z archives are read with py7zr (extract_7z)
    "rar": ("unrar", "7z", "7zz", "bsdtar"),
    "zip": ("7z", "7za", "7zz"),  # only for methods neither zipfile nor inflate64 reads (libarchive lacks them too)
}
ZIPFILE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# Large zips written on Windows often use Deflate64, which zipfile cannot read; inflate64 (installed with
# py7zr) can, so no 7z command is needed for them either.
ZIP_DEFLATE64 = 9
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then (after 22 bytes) name and extra field lengths
# Deflate64 input is fed in small pieces: inflate64 returns all the output of a piece at once, and Deflate
# expands at most 1032x, so no piece can take more than ~66 MB of memory, whatever the header claims.
DEFLATE64_INPUT_BYTES = 64 << 10
SEVEN_ZIP_LIST_SEPARATOR = "----------"


def archive_format(path: Path) -> str:
    """'zip', 'tar', '7z', 'rar' from the file's first bytes: extensions are not trustworthy here."""
    with open(path, "rb") as stream:
        head = stream.read(512)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "7z"
    if head.startswith(RAR_MAGIC):
        return "rar"
    if head.startswith(COMPRESSED_TAR_MAGIC) or head[257:262] == b"ustar":
        return "tar"
    raise ArchiveInvalid(f"{path} is not a zip, tar, 7z or rar archive (truncated or wrong file?)")


def safe_member_path(name: str, *, archive: Path) -> PurePosixPath:
    """The member's relative path; refuses absolute paths, drive letters and '..' components.
    Backslashes count as separators: some Windows packers write them."""
    relative = PurePosixPath(name.replace("\\", "/"))
    parts = relative.parts
    unsafe = (
        relative.is_absolute()
        or ".." in parts
        or (parts and len(parts[0]) >= 2 and parts[0][1] == ":")  # C:... from a Windows packer
    )
    if unsafe:
        raise ArchiveInvalid(f"{archive} holds the unsafe member path {name!r}; refusing to extract it")
    return relative


def extract_archive(path: Path, *, raw_dir: Path, workers: int, limits: ExtractionLimits = ExtractionLimits()) -> int:
    """Extract into ``raw_dir`` keeping the archive's own layout; returns the number of members. Sizes are
    checked against ``limits`` and the free space before anything is written."""
    kind = archive_format(path)
    try:
        if kind == "zip":
            return extract_zip(path, raw_dir=raw_dir, workers=workers, limits=limits)
        if kind == "tar":
            return extract_tar(path, raw_dir=raw_dir, limits=limits)
        if kind == "7z":
            return extract_7z(path, raw_dir=raw_dir, limits=limits)
        return extract_with_tool(path, raw_dir=raw_dir, kind=kind, workers=workers, limits=limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as exc:
        raise corrupt(path, exc) from None
    except OSError as exc:
        if is_disk_full(exc):  # tar and 7z writes land here; zip members name their own file
            raise no_space(path, writing=exc.filename or raw_dir) from None
        raise


def corrupt(path: Path, cause: Exception) -> ArchiveInvalid:
    return ArchiveInvalid(f"{path} is corrupt ({one_line(cause)}); delete it and download it again")


def encrypted(path: Path) -> ArchiveInvalid:
    return ArchiveInvalid(f"{path} is encrypted; hacm.fetch expects the archive as the dataset page serves it")


def extract_zip(path: Path, *, raw_dir: Path, workers: int, limits: ExtractionLimits) -> int:
    with zipfile.ZipFile(path) as archive:
        members = [(info, safe_member_path(info.filename, archive=path)) for info in archive.infolist()]
    if any(info.flag_bits & 0x1 for info, _ in members):
        raise encrypted(path)
    check_zip_layout(path, members)
    check_declared_sizes(path, [(info.filename, info.file_size, info.compress_size) for info, _ in members],
                         limits=limits, into=raw_dir)
    # Methods neither zipfile nor inflate64 reads (rare): hand the archive to a 7z command.
    if any(info.compress_type not in (*ZIPFILE_METHODS, ZIP_DEFLATE64) for info, _ in members):
        return extract_with_tool(path, raw_dir=raw_dir, kind="zip", workers=workers, limits=limits)
    files = [(info, rel) for info, rel in members if not info.is_dir()]
    for directory in {raw_dir.joinpath(*rel.parts[:-1]) for _, rel in files} | {
        raw_dir.joinpath(*rel.parts) for info, rel in members if info.is_dir()
    }:
        directory.mkdir(parents=True, exist_ok=True)
    # NTU zips hold ~57k small files: inflating them on several threads (zlib drops the GIL) pays.
    shares = [files[i::workers] for i in range(max(1, workers))]
    total = sum(info.file_size for info, _ in files)
    lock, stop = threading.Lock(), threading.Event()
    with (progress_bar(total=total, label=f"extract {path.name}") as bar,
          concurrent.futures.ThreadPoolExecutor(max_workers=len(shares)) as pool):
        jobs = [pool.submit(extract_zip_share, path, share, raw_dir=raw_dir, bar=bar, lock=lock, stop=stop)
                for share in shares]
        try:
            for job in jobs:
                job.result()
        except BaseException:
            stop.set()  # Ctrl-C or a corrupt member: let the other threads quit early
            raise
    return len(members)


def check_zip_layout(path: Path, members: list[tuple[zipfile.ZipInfo, PurePosixPath]]) -> None:
    """Links are refused (as in tar and 7z), and so is a file that another member's path runs through
    (``linkdir`` then ``linkdir/EVIL``): the archive's defect, named, before anything is written."""
    folders = {rel.parents[index] for _, rel in members for index in range(len(rel.parts) - 1)}
    folders |= {rel for info, rel in members if info.is_dir()}
    for info, relative in members:
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveInvalid(f"{path} holds a link {info.filename!r}; refusing to extract it")
        if not info.is_dir() and relative in folders:
            raise ArchiveInvalid(f"{path} holds {info.filename!r} both as a file and as a folder of other "
                                 "members; the archive is corrupt: delete it and download it again")


def extract_zip_share(path: Path, share: list, *, raw_dir: Path, bar: tqdm, lock: threading.Lock,
                      stop: threading.Event) -> None:
    with zipfile.ZipFile(path) as archive:  # one handle per thread: ZipFile reads are not thread-safe
        for info, relative in share:
            if stop.is_set():
                return
            extract_zip_member(archive, info, path=path, target_path=raw_dir.joinpath(*relative.parts))
            with lock:
                bar.update(info.file_size)


def extract_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, path: Path, target_path: Path) -> None:
    """One member, held to its declared size; a partial file is removed whatever stops it."""
    try:
        with open(target_path, "wb") as stream:
            target = BoundedWriter(stream, declared=info.file_size, name=info.filename, path=path)
            if info.compress_type == ZIP_DEFLATE64:
                inflate64_member(archive.fp, info, target, path=path)
            else:
                with archive.open(info) as source:
                    shutil.copyfileobj(source, target, CHUNK_BYTES)
            target.check_complete()
    except BaseException as exc:
        target_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise no_space(path, writing=target_path) from None
        raise


def inflate64_member(stream, info: zipfile.ZipInfo, target, *, path: Path) -> None:
    """Write a Deflate64 member's bytes to `target`, checking its CRC (zipfile's open() refuses method 9).
    `target` (a BoundedWriter) stops a stream that inflates past the member's declared size."""
    import inflate64

    stream.seek(info.header_offset)
    signature, name_length, extra_length = LOCAL_HEADER.unpack(stream.read(LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ArchiveInvalid(f"{path}: member {info.filename!r} has no local header; the archive is corrupt")
    stream.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
    inflater, remaining, crc = inflate64.Inflater(), info.compress_size, 0
    while remaining:
        chunk = stream.read(min(DEFLATE64_INPUT_BYTES, remaining))
        if not chunk:
            raise EOFError(f"{info.filename} is cut short")
        remaining -= len(chunk)
        try:
            data = inflater.inflate(chunk)
        except ValueError as error:  # inflate64's way of saying the stream is broken
            raise zlib.error(f"{info.filename}: {error}") from None
        crc = zlib.crc32(data, crc)
        target.write(data)
    if crc != info.CRC:
        raise ArchiveInvalid(f"{path}: member {info.filename!r} fails its CRC check; the archive is corrupt")


def extract_tar(path: Path, *, raw_dir: Path, limits: ExtractionLimits) -> int:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        for member in members:
            safe_member_path(member.name, archive=path)
            if member.issym() or member.islnk() or not (member.isfile() or member.isdir()):
                raise ArchiveInvalid(f"{path} holds a link or special file {member.name!r}; refusing to extract it")
        # tarfile writes exactly the size each header declares; a compressed tar is bounded as a whole.
        check_declared_sizes(path, [(member.name, member.size, None) for member in members], limits=limits,
                             into=raw_dir)
        archive.extractall(raw_dir, members=members, filter="data")
    return len(members)


def extract_7z(path: Path, *, raw_dir: Path, limits: ExtractionLimits) -> int:
    """PKU-MMD ships .7z archives: read with py7zr (a dependency of every env that fetches), so that no
    7z command is needed where the data job runs. Member paths and sizes are checked before anything is
    written; py7zr writes no more of a member than its declared size. 7z archives are mostly solid (one
    stream for many members), so the ratio is that of the whole archive."""
    import py7zr
    from py7zr.callbacks import ExtractCallback

    class Progress(ExtractCallback):  # the bytes py7zr writes, onto the progress bar
        def __init__(self, bar) -> None:
            self.bar = bar

        def report_update(self, decompressed_bytes) -> None:
            self.bar.update(int(decompressed_bytes))

        def report_start_preparation(self) -> None: ...
        def report_start(self, processing_file_path, processing_bytes) -> None: ...
        def report_end(self, processing_file_path, wrote_bytes) -> None: ...
        def report_warning(self, message) -> None: ...
        def report_postprocess(self) -> None: ...

    errors = (py7zr.exceptions.ArchiveError, py7zr.exceptions.Bad7zFile, py7zr.exceptions.CrcError,
              py7zr.exceptions.DecompressionError, py7zr.exceptions.UnsupportedCompressionMethodError,
              lzma.LZMAError, EOFError)
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            if archive.needs_password():
                raise encrypted(path)
            members = archive.list()
            for member in members:
                safe_member_path(member.filename, archive=path)
                if member.is_symlink:
                    raise ArchiveInvalid(f"{path} holds a link {member.filename!r}; refusing to extract it")
            check_declared_sizes(path, [(member.filename, member.uncompressed or 0, None) for member in members],
                                 limits=limits, into=raw_dir)
            with progress_bar(total=sum(member.uncompressed or 0 for member in members),
                              label=f"extract {path.name}") as bar:
                archive.extractall(path=raw_dir, callback=Progress(bar))
    except errors as exc:
        raise corrupt(path, exc) from None
    return len(members)


def extract_with_tool(path: Path, *, raw_dir: Path, kind: str, workers: int, limits: ExtractionLimits) -> int:
    """rar archives (and zips of a method neither zipfile nor inflate64 reads) have no Python reader here:
    list (to check paths), then extract with an external command. The listing has no sizes, so the bound
    is checked on what the command wrote (``raw_dir`` is a fresh staging folder)."""
    tool = next((found for name in EXTERNAL_TOOLS[kind] if (found := shutil.which(name))), None)
    if tool is None:
        raise FetchError(
            f"extracting {path.name} ({kind}) needs one of the commands {', '.join(EXTERNAL_TOOLS[kind])}; "
            "install one, e.g. p7zip (conda install -c conda-forge p7zip, or apt-get install p7zip-full)"
        )
    names = list_members_with_tool(tool, path=path)
    for name in names:
        safe_member_path(name, archive=path)
    run_tool(extract_command(tool, path=path, raw_dir=raw_dir, workers=workers), path=path)
    written = sum(file.stat().st_size for file in raw_dir.rglob("*") if file.is_file() and not file.is_symlink())
    check_expansion(path, written, limits=limits)
    return len(names)


def tool_name(tool: str) -> str:
    return Path(tool).name


def list_members_with_tool(tool: str, *, path: Path) -> list[str]:
    name = tool_name(tool)
    if name.startswith("7z"):
        return seven_zip_member_names(run_tool([tool, "l", "-slt", str(path)], path=path))
    if name == "unrar":
        return [line for line in run_tool([tool, "lb", str(path)], path=path).splitlines() if line]
    return [line for line in run_tool([tool, "-tf", str(path)], path=path).splitlines() if line]


def seven_zip_member_names(listing: str) -> list[str]:
    """Member paths from ``7z l -slt``: the ``Path =`` lines after the separator (the one before it
    is the archive itself)."""
    _, separator, entries = listing.partition(SEVEN_ZIP_LIST_SEPARATOR + "\n")
    return [line[len("Path = "):] for line in entries.splitlines() if separator and line.startswith("Path = ")]


def extract_command(tool: str, *, path: Path, raw_dir: Path, workers: int) -> list[str]:
    name = tool_name(tool)
    if name.startswith("7z"):
        return [tool, "x", "-y", f"-mmt={workers}", f"-o{raw_dir}", str(path)]
    if name == "unrar":
        return [tool, "x", "-o+", "-idq", str(path), f"{raw_dir}{os.sep}"]
    return [tool, "-xf", str(path), "-C", str(raw_dir)]


def run_tool(command: list[str], *, path: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ArchiveInvalid(
            f"{tool_name(command[0])} failed on {path} ({detail[-1] if detail else f'exit {result.returncode}'}); "
            "the archive may be corrupt: delete it and download it again"
        )
    return result.stdout


def folder_holds(folder: Path, pattern: str) -> bool:
    """Whether a file directly in ``folder`` is named like the content of an archive (``pattern``)."""
    regex = re.compile(pattern)
    with os.scandir(folder) as entries:
        return any(regex.fullmatch(entry.name) for entry in entries)


@dataclass(frozen=True)
class FolderListing:
    """A folder's files (directly in it): how many, their bytes, and a sha256 over each file's name, size
    and modification time, which changes when any file is added, removed or rewritten."""

    files: int
    size: int
    newest_mtime_ns: int
    sha256: str


def folder_listing(folder: Path) -> FolderListing:
    entries = []
    with os.scandir(folder) as scan:
        for entry in scan:
            if entry.is_file():
                stat = entry.stat()
                entries.append((entry.name, stat.st_size, stat.st_mtime_ns))
    entries.sort()
    digest = hashlib.sha256("\n".join(f"{name}\t{size}\t{mtime}" for name, size, mtime in entries).encode())
    return FolderListing(files=len(entries), size=sum(e[1] for e in entries),
                         newest_mtime_ns=max((e[2] for e in entries), default=0), sha256=digest.hexdigest())


def link_folder(folder: Path, *, link: Path) -> None:
    """``link`` -> ``folder`` (absolute), replacing an older link of that name."""
    temporary = link.with_name(f".{link.name}.link")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(folder.absolute(), target_is_directory=True)
    os.replace(temporary, link)


def copy_plain_file(path: Path, *, raw_dir: Path, name: str) -> int:
    temporary = raw_dir / f".{name}.tmp"
    shutil.copyfile(path, temporary)
    os.replace(temporary, raw_dir / name)
    return 1


# ----------------------------------------------------------------------------------------------
# markers: what has been extracted already


@dataclass(frozen=True)
class ExtractionMarker:
    """``<raw>/.extracted-<archive>.json``: the archive as it was when its content was extracted."""

    archive: str
    source: str
    size: int
    mtime_ns: int
    sha256: str
    members: int
    extracted_at: str


def marker_path(raw_dir: Path, name: str) -> Path:
    return raw_dir / f".extracted-{name}.json"


def read_marker(raw_dir: Path, name: str) -> ExtractionMarker | None:
    try:
        return ExtractionMarker(**json.loads(marker_path(raw_dir, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None  # absent or unreadable: extract again


def marker_is_current(marker: ExtractionMarker | None, *, archive: Archive, path: Path) -> bool:
    """The same file (size, mtime) was extracted and it met the checksums the manifest asks for now."""
    if marker is None:
        return False
    stat = path.stat()
    return (
        marker.size == stat.st_size
        and marker.mtime_ns == stat.st_mtime_ns
        and archive.size in (None, marker.size)
        and archive.sha256 in (None, marker.sha256)
    )


def write_json(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, path)
