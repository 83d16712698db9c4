"""The whole acquisition of one dataset: locate or download each archive, verify it, extract it, place
the missing-skeleton lists, and report (FETCHED.json, written last: the mark of a completed fetch).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hacm.fetch.bounds import format_bytes, limits_for
from hacm.fetch.download import FileDigest, check_digest, download, replace_remedy, sha256_of
from hacm.fetch.extract import (
    ExtractionMarker,
    copy_plain_file,
    folder_holds,
    folder_listing,
    link_folder,
    marker_is_current,
    marker_path,
    read_marker,
    write_json,
)
from hacm.fetch.manifest import (
    Archive,
    ArchiveInvalid,
    ArchiveMissing,
    AuxiliaryFile,
    DatasetManifest,
    FetchError,
)
from hacm.fetch.staging import extract_in_staging, remove_leftover_staging

FETCHED_FILE = "FETCHED.json"


# ----------------------------------------------------------------------------------------------
# the whole acquisition of one dataset


@dataclass
class FileRecord:
    name: str
    path: str
    size: int
    sha256: str  # of the file; of a folder's listing (FolderListing) for a folder the user extracted
    checksum_pinned: bool
    action: str  # 'extracted', 'copied', 'already extracted', 'linked', 'already linked', 'downloaded', 'verified', ...


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


def fetch_dataset(*, manifest: DatasetManifest, archives_dir: Path, raw_dir: Path,
                  urls: dict[str, str] | None = None, workers: int = 4) -> FetchReport:
    """Verify (or download) every archive of ``manifest``, extract it into ``raw_dir``, place the
    auxiliary files, and write ``<raw>/FETCHED.json``."""
    urls = urls or {}
    archives_dir, raw_dir = archives_dir.absolute(), raw_dir.absolute()
    check_archives_dir(archives_dir)
    located, to_download = locate_all(manifest, archives_dir=archives_dir, urls=urls)
    writable_dir(raw_dir, "--raw")
    # From here on the raw folder may change: no completion mark may stand beside it until this run ends
    # (a failed refetch would otherwise leave the old mark beside new content).
    (raw_dir / FETCHED_FILE).unlink(missing_ok=True)
    remove_leftover_staging(raw_dir)
    report = FetchReport(dataset=manifest.dataset, raw_dir=str(raw_dir), archives_dir=str(archives_dir))
    downloaded: dict[str, FileDigest] = {}
    if to_download:
        writable_dir(archives_dir, "--archives", why=" (archives are downloaded into it)")
    for archive in to_download:
        target = archives_dir / archive.name
        print(f"hacm.fetch: downloading {archive.name} from {urls[archive.name]}", flush=True)
        downloaded[archive.name] = download(urls[archive.name], target=target)
        located[archive.name] = target
    linked: dict[Path, str] = {}  # folder -> the archive it was linked for
    for archive in manifest.archives:
        path = located[archive.name]
        if path.is_dir() and path.resolve() in linked:  # both NTU parts extracted into one folder
            folder_link(archive, raw_dir=raw_dir).unlink(missing_ok=True)
            report.archives.append(FileRecord(name=archive.name, path=str(path), size=0, sha256="",
                                              checksum_pinned=False, action=f"in the folder of {linked[path.resolve()]}"))
            continue
        report.archives.append(
            place_archive(archive, path=path, raw_dir=raw_dir, workers=workers, digest=downloaded.get(archive.name))
        )
        if path.is_dir():
            linked[path.resolve()] = archive.name
    for aux in manifest.auxiliary:
        report.auxiliary.append(place_auxiliary_file(aux, archives_dir=archives_dir, raw_dir=raw_dir,
                                                     url=urls.get(aux.name)))
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
    """The archive under one of its names; else its content where a layout researchers hold puts it."""
    for name in (archive.name, *archive.aliases):
        if (archives_dir / name).is_file():
            return archives_dir / name
    for relative in archive.layout_paths:
        path = archives_dir / relative
        if archive.unpack and path.is_dir() and folder_holds(path, archive.member_pattern):
            return path
        if not archive.unpack and path.is_file():
            return path
    return None


def check_no_sample_twice(manifest: DatasetManifest, located: dict[str, Path]) -> None:
    """A folder holding another archive's files while that archive is also found would be read twice."""
    for archive in manifest.archives:
        folder = located.get(archive.name)
        if folder is None or not folder.is_dir():
            continue
        for other in manifest.archives:
            found = located.get(other.name)
            if other is not archive and found is not None and found.is_file() and other.member_pattern \
                    and folder_holds(folder, other.member_pattern):
                raise FetchError(f"{folder} holds the files of {other.name} too, and {found} is there as well: "
                                 "move one of them away, so that no sample is read twice")


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
    check_no_sample_twice(manifest, located)
    return located, to_download


def missing_archives_message(manifest: DatasetManifest, *, missing: list[Archive], archives_dir: Path) -> str:
    """First line: what is expected and what is there; then where to get each file."""
    known = set(manifest.file_names())
    entries = sorted(path.name + ("/" if path.is_dir() else "") for path in archives_dir.iterdir()
                     if path.name not in known and not path.name.startswith(".")) if archives_dir.is_dir() else []
    if entries:  # a mirror's own name for the right file, perhaps
        found = ", ".join(entries[:10]) + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
        found = f"found there instead: {found}"
    else:
        found = "nothing else is there" if archives_dir.is_dir() else "that folder does not exist"
    lines = [f"{manifest.title} ({manifest.dataset}) needs {', '.join(a.name for a in missing)} in {archives_dir}; "
             f"{found}"]
    for archive in missing:
        also = f" (or named {', '.join(archive.aliases)})" if archive.aliases else ""
        lines += [
            f"  {archive.name}: {archive.contents}",
            f"    request it at {archive.request_page}",
            f"    put it at     {archives_dir / archive.name}{also}",
        ]
        if archive.layout_paths:
            what = "its extracted folder" if archive.unpack else "the file"
            lines.append(f"    or {what} at {archives_dir / archive.layout_paths[0]} (MAMP's data/ layout)")
        for folder in (archives_dir / relative for relative in archive.layout_paths if archive.unpack):
            if folder.is_dir():  # the layout's folder, of the other phase or part perhaps
                lines.append(f"    ({folder} is there but holds no file named like {archive.member_pattern})")
    if entries:
        lines.append("if one of the files found is the one expected, rename it (its content is checked)")
    lines.append("then rerun; or give a download URL with --url FILE=URL (file:// works for a local copy).")
    return "\n".join(lines)


def place_archive(archive: Archive, *, path: Path, raw_dir: Path, workers: int,
                  digest: FileDigest | None) -> FileRecord:
    """Verify ``path`` and extract (or copy) it into ``raw_dir`` unless its marker says it is done."""
    if path.is_dir():
        return place_folder(archive, folder=path, raw_dir=raw_dir)
    marker = read_marker(raw_dir, archive.name)
    if digest is None and marker_is_current(marker, archive=archive, path=path):
        return FileRecord(name=archive.name, path=str(path), size=marker.size, sha256=marker.sha256,
                          checksum_pinned=archive.sha256 is not None, action="already extracted")
    digest = digest or sha256_of(path)
    check_digest(digest, name=archive.name, source=path, size=archive.size, sha256=archive.sha256,
                 remedy=replace_remedy(archive, path=path))
    stat = path.stat()
    if archive.unpack:
        members = extract_in_staging(path, raw_dir=raw_dir, workers=workers, limits=limits_for(archive))
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


def folder_link(archive: Archive, *, raw_dir: Path) -> Path:
    """Where the folder the user extracted an archive into is linked: <raw>/<archive name without extension>."""
    return raw_dir / Path(archive.name).stem


def place_folder(archive: Archive, *, folder: Path, raw_dir: Path) -> FileRecord:
    """An archive the user already extracted: its folder is linked into ``raw_dir`` (nothing is copied);
    the marker keeps the folder's listing."""
    listing = folder_listing(folder)
    link = folder_link(archive, raw_dir=raw_dir)
    marker = read_marker(raw_dir, archive.name)
    current = (marker is not None and marker.source == str(folder) and marker.sha256 == listing.sha256
               and link.is_symlink() and link.resolve() == folder.resolve())
    if not current:
        link_folder(folder, link=link)
        write_json(marker_path(raw_dir, archive.name), asdict(ExtractionMarker(
            archive=archive.name, source=str(folder), size=listing.size, mtime_ns=listing.newest_mtime_ns,
            sha256=listing.sha256, members=listing.files,
            extracted_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )))
    print(f"hacm.fetch: {archive.name}: using the extracted folder {folder} ({listing.files} files), linked as {link}",
          flush=True)
    return FileRecord(name=archive.name, path=str(folder), size=listing.size, sha256=listing.sha256,
                      checksum_pinned=False, action="already linked" if current else "linked")


def place_auxiliary_file(aux: AuxiliaryFile, *, archives_dir: Path, raw_dir: Path, url: str | None) -> FileRecord:
    """``<raw>/<name>``: kept if already right, else copied from ``archives_dir``, else downloaded from a
    URL the user configured, else copied from the copy shipped with hacm (no network needed)."""
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
    if url is None:
        if not aux.shipped.is_file():
            raise ArchiveMissing(f"{aux.name}: the copy shipped with hacm ({aux.shipped}) is missing (a broken "
                                 f"install?); {remedy}")
        check_digest(sha256_of(aux.shipped), name=aux.name, source=aux.shipped, size=aux.size, sha256=aux.sha256,
                     remedy=f"the copy shipped with hacm was changed; restore it (git checkout) or {remedy}")
        copy_plain_file(aux.shipped, raw_dir=raw_dir, name=aux.name)
        return aux_record(aux, target=target, action="shipped")
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
