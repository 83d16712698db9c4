"""Dataset acquisition: the archives each dataset needs, and their verification, download and extraction.

NTU RGB+D and PKU-MMD are released only after registration, so nothing here can fetch them by
itself: the manifest says which files a dataset needs, where to request them and where to put
them. A file is downloaded only when the user configured a URL for it (a mirror of their own, or a
``file://`` path). The small official missing-skeleton lists are public and are always verified
against their pinned sha256.

Exit codes (carried by the exceptions, used by ``python -m hacm.fetch``):
  1  an archive or auxiliary file is missing, fails its size/sha256 check, cannot be downloaded,
     is corrupt, or holds unsafe member paths: get the file again;
  2  the command or the environment is wrong: bad arguments or config, unusable directories,
     no extraction tool for 7z/rar.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from tqdm import tqdm

from hacm.benchmarks import BENCHMARKS, DATASETS

NTU_REQUEST_PAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
PKU_REQUEST_PAGE = "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html"
SHAHROUDY_RAW = "https://raw.githubusercontent.com/shahroudy/NTURGB-D/master/Matlab/"
SHAHROUDY_PAGE = "https://github.com/shahroudy/NTURGB-D/tree/master/Matlab"

CHUNK_BYTES = 4 << 20
# Hashing a file smaller than this is instant; a bar would only add noise to the logs.
PROGRESS_MIN_BYTES = 64 << 20
DOWNLOAD_TIMEOUT_S = 60
URL_SCHEMES = ("http", "https", "ftp", "file")
FETCHED_FILE = "FETCHED.json"


# ----------------------------------------------------------------------------------------------
# errors


class FetchError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message, ``exit_code`` the status."""

    exit_code = 2


class ArchiveMissing(FetchError):
    exit_code = 1


class ArchiveInvalid(FetchError):
    exit_code = 1


# ----------------------------------------------------------------------------------------------
# manifest


@dataclass(frozen=True)
class Archive:
    """One file the user must request from the dataset's page and put at ``<archives>/<name>``."""

    name: str
    contents: str
    request_page: str
    size: int | None = None  # bytes; None where no trustworthy value is published
    sha256: str | None = None  # never guessed: None unless measured from an official copy
    aliases: tuple[str, ...] = ()  # other names the same download is known under
    unpack: bool = True  # False: a plain file, copied into <raw> under ``name``


@dataclass(frozen=True)
class AuxiliaryFile:
    """A small public file with a pinned checksum, placed at ``<raw>/<name>``."""

    name: str
    contents: str
    url: str
    page: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetManifest:
    dataset: str
    title: str
    archives: tuple[Archive, ...]
    auxiliary: tuple[AuxiliaryFile, ...] = ()

    def file_names(self) -> tuple[str, ...]:
        names = [archive.name for archive in self.archives]
        names += [alias for archive in self.archives for alias in archive.aliases]
        return tuple(names + [aux.name for aux in self.auxiliary])


# Names: NTU skeleton zips as on the NTU request page and in the MAMP / HA-CM READMEs
# (github.com/maoyunyao/MAMP README "Data Preparation"). Sizes and sha256 of the NTU and PKU-MMD
# archives are not published anywhere we could check, so they are None (measured and recorded in
# FETCHED.json instead).
NTU60_SKELETONS = Archive(
    name="nturgbd_skeletons_s001_to_s017.zip",
    contents="NTU RGB+D 60 3D skeletons, setups S001-S017 (56,880 .skeleton files)",
    request_page=NTU_REQUEST_PAGE,
)
NTU120_EXTRA_SKELETONS = Archive(
    name="nturgbd_skeletons_s018_to_s032.zip",
    contents="NTU RGB+D 120 additional 3D skeletons, setups S018-S032 (57,600 .skeleton files)",
    request_page=NTU_REQUEST_PAGE,
)

# PKU-MMD names: github.com/maoyunyao/MAMP README lists Skeleton.7z, Label_PKUMMD.7z (phase I) and
# Skeleton_v2.7z, Label_PKUMMD_v2.7z (phase II), as Data/ and Label/ of the official download; one
# downstream README calls the phase II labels Label_PKUMMD_v2.zip, accepted as an alias (the format is
# detected from the file's bytes, not its extension). The split files (Split/) are named by the
# benchmark registry, aliases included.


def _split_file(benchmark: str, contents: str) -> Archive:
    name, *aliases = BENCHMARKS[benchmark].split_files
    return Archive(name=name, contents=contents, request_page=PKU_REQUEST_PAGE, aliases=tuple(aliases), unpack=False)


PKU1_ARCHIVES = (
    Archive(
        name="Skeleton.7z",
        contents="PKU-MMD phase I skeletons (one XXXX-V.txt per video, 150 values per frame)",
        request_page=PKU_REQUEST_PAGE,
    ),
    Archive(
        name="Label_PKUMMD.7z",
        contents="PKU-MMD phase I labels (label,start,end,confidence per action)",
        request_page=PKU_REQUEST_PAGE,
    ),
    _split_file("pku1-xsub", "PKU-MMD phase I cross-subject split (Split/ folder)"),
    _split_file("pku1-xview", "PKU-MMD phase I cross-view split (Split/ folder)"),
)
PKU2_ARCHIVES = (
    Archive(
        name="Skeleton_v2.7z",
        contents="PKU-MMD phase II skeletons (one AxxNxx-V.txt per video, 150 values per frame)",
        request_page=PKU_REQUEST_PAGE,
    ),
    Archive(
        name="Label_PKUMMD_v2.7z",
        contents="PKU-MMD phase II labels (label,start,end,confidence per action)",
        request_page=PKU_REQUEST_PAGE,
        aliases=("Label_PKUMMD_v2.zip",),
    ),
    _split_file("pku2-xsub", "PKU-MMD phase II cross-subject split (Split/ folder)"),
    _split_file("pku2-xview", "PKU-MMD phase II cross-view split (Split/ folder)"),
)

# sha256 and sizes measured on byte-exact copies of shahroudy/NTURGB-D@ac2ebc87 (Matlab/).
NTU60_MISSING_SKELETONS = AuxiliaryFile(
    name=DATASETS["ntu60"].missing_list,
    contents="official list of the 302 NTU RGB+D 60 samples with missing skeletons",
    url=SHAHROUDY_RAW + DATASETS["ntu60"].missing_list,
    page=SHAHROUDY_PAGE,
    size=6554,
    sha256="6fd4a1254ffe69f8e514649b675661a9111a18c45195fb5b7fb884e1f8b75676",
)
# The 535 names of the NTU-120 list include all 302 of the NTU-60 list, so NTU-120 needs only it.
NTU120_MISSING_SKELETONS = AuxiliaryFile(
    name=DATASETS["ntu120"].missing_list,
    contents="official list of the 535 NTU RGB+D 120 samples with missing skeletons",
    url=SHAHROUDY_RAW + DATASETS["ntu120"].missing_list,
    page=SHAHROUDY_PAGE,
    size=11451,
    sha256="ab14fe64e89be63d2b08141713fcc31f6ebc7b01955009c3585d8d3367e0facc",
)

MANIFESTS: dict[str, DatasetManifest] = {
    "ntu60": DatasetManifest(
        dataset="ntu60",
        title=DATASETS["ntu60"].title,
        archives=(NTU60_SKELETONS,),
        auxiliary=(NTU60_MISSING_SKELETONS,),
    ),
    "ntu120": DatasetManifest(
        dataset="ntu120",
        title=DATASETS["ntu120"].title,
        archives=(NTU60_SKELETONS, NTU120_EXTRA_SKELETONS),
        auxiliary=(NTU120_MISSING_SKELETONS,),
    ),
    "pku1": DatasetManifest(dataset="pku1", title=DATASETS["pku1"].title, archives=PKU1_ARCHIVES),
    "pku2": DatasetManifest(dataset="pku2", title=DATASETS["pku2"].title, archives=PKU2_ARCHIVES),
}


def manifest_for(dataset: str) -> DatasetManifest:
    try:
        return MANIFESTS[dataset]
    except KeyError:
        raise FetchError(f"unknown dataset {dataset!r}; choose one of {', '.join(MANIFESTS)}") from None


# ----------------------------------------------------------------------------------------------
# URLs given by the user


def parse_url_assignment(text: str) -> tuple[str, str]:
    """``FILE=URL`` from the command line, checked for a known scheme."""
    name, sep, url = text.partition("=")
    name, url = name.strip(), url.strip()
    if not sep or not name or not url:
        raise FetchError(f"--url expects FILE=URL, got {text!r}")
    check_url(url, name=name)
    return name, url


def check_url(url: str, *, name: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in URL_SCHEMES:
        schemes = ", ".join(f"{scheme}://" for scheme in URL_SCHEMES)
        raise FetchError(f"URL for {name} must start with one of {schemes}; got {url!r}")


def load_url_config(path: Path) -> dict[str, str]:
    """The ``fetch: urls:`` (or top-level ``urls:``) mapping FILE -> URL of a YAML config."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FetchError(f"cannot read config {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(config, dict):
        raise FetchError(f"config {path} is not a mapping")
    fetch_section = config.get("fetch") or {}
    urls = (fetch_section.get("urls") if isinstance(fetch_section, dict) else None) or config.get("urls") or {}
    if not isinstance(urls, dict):
        raise FetchError(f"config {path}: 'urls' must map file names to URLs")
    for name, url in urls.items():
        if not isinstance(url, str):
            raise FetchError(f"config {path}: URL for {name} must be a string")
        check_url(url, name=str(name))
    return {str(name): url for name, url in urls.items()}


def check_url_names(urls: dict[str, str], *, manifest: DatasetManifest) -> None:
    """Catch typos: a URL given on the command line must name a file this dataset uses."""
    unknown = sorted(set(urls) - set(manifest.file_names()))
    if unknown:
        raise FetchError(
            f"--url names {', '.join(unknown)}, not a file of {manifest.dataset}; "
            f"its files are {', '.join(manifest.file_names())}"
        )


# ----------------------------------------------------------------------------------------------
# measuring and checking files


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


def sha256_of(path: Path, *, label: str | None = None) -> FileDigest:
    """Stream the file in chunks; a progress bar for large files (hidden when not on a terminal)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as stream, progress_bar(total=size, label=f"sha256 {label or path.name}") as bar:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return FileDigest(size=size, sha256=digest.hexdigest())


def progress_bar(*, total: int | None, label: str) -> tqdm:
    small = total is not None and total < PROGRESS_MIN_BYTES
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                disable=True if small else None, leave=False)


def check_digest(found: FileDigest, *, name: str, source: Path | str, size: int | None, sha256: str | None,
                 remedy: str) -> None:
    """Raise with expected vs found and what to do; ``source`` is the file or URL the bytes came from."""
    if size is not None and found.size != size:
        raise ArchiveInvalid(
            f"{source} has {found.size} bytes, expected {size} for {name} (incomplete or wrong file); {remedy}"
        )
    if sha256 is not None and found.sha256 != sha256:
        raise ArchiveInvalid(
            f"{source} has sha256 {found.sha256}, expected {sha256} for {name} (corrupt or wrong file); {remedy}"
        )


def replace_remedy(archive: Archive, *, path: Path) -> str:
    return f"delete it and request {archive.name} again at {archive.request_page}, then put it at {path}"


# ----------------------------------------------------------------------------------------------
# downloading


def download(url: str, *, target: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> FileDigest:
    """Download ``url`` (http, https, ftp or file) to ``target`` and return its size and sha256.

    Bytes go to ``<target>.part``, renamed only once complete, so an interrupted run never leaves a
    truncated file under the real name; an existing ``.part`` is resumed with an HTTP Range request
    when the server honours it, else downloaded again from the start.
    """
    part = target.with_name(target.name + ".part")
    try:
        try:
            digest = stream_to_part(url, part=part, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not part.exists():
                raise
            part.unlink()  # 416: the server rejects our Range, so the partial file is stale
            digest = stream_to_part(url, part=part, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ArchiveMissing(f"cannot download {target.name} from {url}: {reason}") from None
    os.replace(part, target)
    return digest


def stream_to_part(url: str, *, part: Path, timeout: float) -> FileDigest:
    digest, have = hash_partial(part)
    request = urllib.request.Request(url, headers={"User-Agent": "hacm.fetch"})
    if have and urllib.parse.urlsplit(url).scheme in ("http", "https"):
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if getattr(response, "status", None) != 206:  # the whole file is coming: start over
            digest, have = hashlib.sha256(), 0
        expected_total = content_total(response, already=have)
        label = f"download {part.name.removesuffix('.part')}"
        with open(part, "ab" if have else "wb") as out, progress_bar(total=expected_total, label=label) as bar:
            bar.update(have)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if expected_total is not None and have != expected_total:
        raise OSError(f"connection closed at {have} of {expected_total} bytes; rerun to resume from {part}")
    return FileDigest(size=have, sha256=digest.hexdigest())


def hash_partial(part: Path) -> tuple[object, int]:
    """sha256 state and size of an earlier partial download, so a resumed one ends with the full hash."""
    digest = hashlib.sha256()
    if not part.is_file():
        return digest, 0
    with open(part, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest, part.stat().st_size


def content_total(response, *, already: int) -> int | None:
    """Total size of the file being downloaded, from Content-Range or Content-Length if sent."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return already + int(length) if length and length.isdigit() else None


# ----------------------------------------------------------------------------------------------
# extraction


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
RAR_MAGIC = b"Rar!\x1a\x07"
COMPRESSED_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
EXTERNAL_TOOLS = {
    "7z": ("7z", "7za", "7zz", "bsdtar"),
    "rar": ("unrar", "7z", "7zz", "bsdtar"),
    "zip": ("7z", "7za", "7zz"),  # only for methods zipfile lacks (Deflate64), which libarchive lacks too
}
ZIPFILE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
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


def extract_archive(path: Path, *, raw_dir: Path, workers: int) -> int:
    """Extract into ``raw_dir`` keeping the archive's own layout; returns the number of members."""
    kind = archive_format(path)
    try:
        if kind == "zip":
            return extract_zip(path, raw_dir=raw_dir, workers=workers)
        if kind == "tar":
            return extract_tar(path, raw_dir=raw_dir)
        return extract_with_tool(path, raw_dir=raw_dir, kind=kind, workers=workers)
    except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as exc:
        raise ArchiveInvalid(
            f"{path} is corrupt ({exc}); delete it and download it again"
        ) from None


def extract_zip(path: Path, *, raw_dir: Path, workers: int) -> int:
    with zipfile.ZipFile(path) as archive:
        members = [(info, safe_member_path(info.filename, archive=path)) for info in archive.infolist()]
    if any(info.flag_bits & 0x1 for info, _ in members):
        raise ArchiveInvalid(f"{path} is encrypted; hacm.fetch expects the archive as the dataset page serves it")
    # Large zips written on Windows may use Deflate64, which zipfile cannot read: hand them to 7z.
    if any(info.compress_type not in ZIPFILE_METHODS for info, _ in members):
        return extract_with_tool(path, raw_dir=raw_dir, kind="zip", workers=workers)
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


def extract_zip_share(path: Path, share: list, *, raw_dir: Path, bar: tqdm, lock: threading.Lock,
                      stop: threading.Event) -> None:
    with zipfile.ZipFile(path) as archive:  # one handle per thread: ZipFile reads are not thread-safe
        for info, relative in share:
            if stop.is_set():
                return
            with archive.open(info) as source, open(raw_dir.joinpath(*relative.parts), "wb") as target:
                shutil.copyfileobj(source, target, CHUNK_BYTES)
            with lock:
                bar.update(info.file_size)


def extract_tar(path: Path, *, raw_dir: Path) -> int:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        for member in members:
            safe_member_path(member.name, archive=path)
            if member.issym() or member.islnk() or not (member.isfile() or member.isdir()):
                raise ArchiveInvalid(f"{path} holds a link or special file {member.name!r}; refusing to extract it")
        archive.extractall(raw_dir, members=members, filter="data")
    return len(members)


def extract_with_tool(path: Path, *, raw_dir: Path, kind: str, workers: int) -> int:
    """7z, rar and Deflate64 zips have no standard-library reader: list (to check paths), then extract
    with an external command."""
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


# ----------------------------------------------------------------------------------------------
# the whole acquisition of one dataset


@dataclass
class FileRecord:
    name: str
    path: str
    size: int
    sha256: str
    checksum_pinned: bool
    action: str  # 'extracted', 'copied', 'already extracted', 'downloaded', 'verified'


@dataclass
class FetchReport:
    dataset: str
    raw_dir: str
    archives_dir: str
    archives: list[FileRecord] = field(default_factory=list)
    auxiliary: list[FileRecord] = field(default_factory=list)
    fetched_at: str = ""

    def summary(self) -> str:
        total = sum(record.size for record in self.archives)
        actions = sorted({record.action for record in self.archives})
        counts = ", ".join(f"{sum(r.action == a for r in self.archives)} {a}" for a in actions)
        aux = f"; {len(self.auxiliary)} list(s) sha256-verified" if self.auxiliary else ""
        return (f"hacm.fetch: {self.dataset} ready in {self.raw_dir}: {len(self.archives)} archive(s), "
                f"{format_bytes(total)} ({counts}){aux}")


def format_bytes(size: int) -> str:
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def fetch_dataset(*, manifest: DatasetManifest, archives_dir: Path, raw_dir: Path,
                  urls: dict[str, str] | None = None, workers: int = 4) -> FetchReport:
    """Verify (or download) every archive of ``manifest``, extract it into ``raw_dir``, place the
    auxiliary files, and write ``<raw>/FETCHED.json``."""
    urls = urls or {}
    archives_dir, raw_dir = archives_dir.absolute(), raw_dir.absolute()
    check_archives_dir(archives_dir)
    located, to_download = locate_all(manifest, archives_dir=archives_dir, urls=urls)
    writable_dir(raw_dir, "--raw")
    report = FetchReport(dataset=manifest.dataset, raw_dir=str(raw_dir), archives_dir=str(archives_dir))
    downloaded: dict[str, FileDigest] = {}
    if to_download:
        writable_dir(archives_dir, "--archives", why=" (archives are downloaded into it)")
    for archive in to_download:
        target = archives_dir / archive.name
        print(f"hacm.fetch: downloading {archive.name} from {urls[archive.name]}", flush=True)
        downloaded[archive.name] = download(urls[archive.name], target=target)
        located[archive.name] = target
    for archive in manifest.archives:
        report.archives.append(
            place_archive(archive, path=located[archive.name], raw_dir=raw_dir, workers=workers,
                          digest=downloaded.get(archive.name))
        )
    for aux in manifest.auxiliary:
        report.auxiliary.append(place_auxiliary_file(aux, archives_dir=archives_dir, raw_dir=raw_dir,
                                                     url=urls.get(aux.name, aux.url)))
    report.fetched_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_json(raw_dir / FETCHED_FILE, asdict(report))
    return report


def check_archives_dir(archives_dir: Path) -> None:
    # A directory that does not exist yet is fine: it is simply empty, and the missing-archive
    # message tells where to create it.
    if archives_dir.exists() and not archives_dir.is_dir():
        raise FetchError(f"--archives {archives_dir} is not a directory")
    if archives_dir.is_dir() and not os.access(archives_dir, os.R_OK | os.X_OK):
        raise FetchError(f"--archives {archives_dir} is not readable")


def writable_dir(path: Path, flag: str, *, why: str = "") -> None:
    """Create the folder an option names, and check it can be written (one line naming the option)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {flag} {path}{why}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise FetchError(f"{flag} {path} is not writable{why}")


def locate_archive(archive: Archive, *, archives_dir: Path) -> Path | None:
    for name in (archive.name, *archive.aliases):
        if (archives_dir / name).is_file():
            return archives_dir / name
    return None


def locate_all(manifest: DatasetManifest, *, archives_dir: Path,
               urls: dict[str, str]) -> tuple[dict[str, Path], list[Archive]]:
    """Archives found on disk, and those to download; stops listing every archive that is neither."""
    located: dict[str, Path] = {}
    to_download: list[Archive] = []
    missing: list[Archive] = []
    for archive in manifest.archives:
        path = locate_archive(archive, archives_dir=archives_dir)
        if path is not None:
            located[archive.name] = path
        elif archive.name in urls:
            to_download.append(archive)
        else:
            missing.append(archive)
    if missing:
        raise ArchiveMissing(missing_archives_message(manifest, missing=missing, archives_dir=archives_dir))
    return located, to_download


def missing_archives_message(manifest: DatasetManifest, *, missing: list[Archive], archives_dir: Path) -> str:
    lines = [f"{manifest.title} ({manifest.dataset}) needs {len(missing)} file(s) not found in {archives_dir}:"]
    for archive in missing:
        also = f" (or named {', '.join(archive.aliases)})" if archive.aliases else ""
        lines += [
            f"  {archive.name}: {archive.contents}",
            f"    request it at {archive.request_page}",
            f"    put it at     {archives_dir / archive.name}{also}",
        ]
    lines.append("then rerun; or give a download URL with --url FILE=URL (file:// works for a local copy).")
    return "\n".join(lines)


def place_archive(archive: Archive, *, path: Path, raw_dir: Path, workers: int,
                  digest: FileDigest | None) -> FileRecord:
    """Verify ``path`` and extract (or copy) it into ``raw_dir`` unless its marker says it is done."""
    marker = read_marker(raw_dir, archive.name)
    if digest is None and marker_is_current(marker, archive=archive, path=path):
        return FileRecord(name=archive.name, path=str(path), size=marker.size, sha256=marker.sha256,
                          checksum_pinned=archive.sha256 is not None, action="already extracted")
    digest = digest or sha256_of(path)
    check_digest(digest, name=archive.name, source=path, size=archive.size, sha256=archive.sha256,
                 remedy=replace_remedy(archive, path=path))
    stat = path.stat()
    if archive.unpack:
        members = extract_archive(path, raw_dir=raw_dir, workers=workers)
        action = "extracted"
    else:
        members = copy_plain_file(path, raw_dir=raw_dir, name=archive.name)
        action = "copied"
    write_json(marker_path(raw_dir, archive.name), asdict(ExtractionMarker(
        archive=archive.name, source=str(path), size=digest.size, mtime_ns=stat.st_mtime_ns,
        sha256=digest.sha256, members=members,
        extracted_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )))
    return FileRecord(name=archive.name, path=str(path), size=digest.size, sha256=digest.sha256,
                      checksum_pinned=archive.sha256 is not None, action=action)


def place_auxiliary_file(aux: AuxiliaryFile, *, archives_dir: Path, raw_dir: Path, url: str) -> FileRecord:
    """``<raw>/<name>``: kept if already right, else copied from ``archives_dir``, else downloaded."""
    target = raw_dir / aux.name
    remedy = (f"get {aux.name} from {aux.page} (raw file: {aux.url}) and put it at "
              f"{archives_dir / aux.name}")
    if target.is_file() and sha256_of(target).sha256 == aux.sha256:
        return aux_record(aux, target=target, action="verified")
    user_copy = archives_dir / aux.name
    if user_copy.is_file():
        check_digest(sha256_of(user_copy), name=aux.name, source=user_copy, size=aux.size, sha256=aux.sha256,
                     remedy=f"replace it with the official file: {remedy}")
        copy_plain_file(user_copy, raw_dir=raw_dir, name=aux.name)
        return aux_record(aux, target=target, action="copied")
    # Downloaded under a hidden name and renamed once verified: the readers never see a wrong list.
    staging = raw_dir / f".{aux.name}.download"
    try:
        digest = download(url, target=staging)
    except ArchiveMissing as exc:
        raise ArchiveMissing(f"{exc}; {remedy}") from None
    try:
        check_digest(digest, name=aux.name, source=url, size=aux.size, sha256=aux.sha256,
                     remedy=f"that is not the official file; {remedy}")
    except ArchiveInvalid:
        staging.unlink()
        raise
    os.replace(staging, target)
    return aux_record(aux, target=target, action="downloaded")


def aux_record(aux: AuxiliaryFile, *, target: Path, action: str) -> FileRecord:
    return FileRecord(name=aux.name, path=str(target), size=aux.size, sha256=aux.sha256,
                      checksum_pinned=True, action=action)
