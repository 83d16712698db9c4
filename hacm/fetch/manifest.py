"""The archives and files each dataset needs (names, sizes, digests, where to request them), the
users' own download URLs, and the errors of acquisition with their exit codes.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from hacm.benchmarks import BENCHMARKS, DATASETS

NTU_REQUEST_PAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
PKU_REQUEST_PAGE = "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html"
SHAHROUDY_RAW = "https://raw.githubusercontent.com/shahroudy/NTURGB-D/master/Matlab/"
SHAHROUDY_PAGE = "https://github.com/shahroudy/NTURGB-D/tree/master/Matlab"
URL_SCHEMES = ("http", "https", "ftp", "file")


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
    aliases: tuple[str, ...] = ()  # other names (or paths under <archives>) the same download is known under
    unpack: bool = True  # False: a plain file, copied into <raw> under ``name``
    # Where the content sits, under <archives>, in the layouts researchers already hold: a folder of the
    # archive's extracted files (it stands for the archive only when a file name in it matches
    # member_pattern), or, for a plain file, the file.
    layout_paths: tuple[str, ...] = ()
    member_pattern: str = ""
    # About how many bytes the official archive's content takes once extracted (an estimate from the
    # dataset's published counts, see EXPANDED SIZES below); extraction refuses an archive declaring many
    # times more (hacm/fetch/bounds.py). None: no bound from the manifest.
    expanded_size: int | None = None


# The official lists shipped with hacm (hacm/fetch/lists/), so that fetch needs no network for them.
SHIPPED_LISTS = Path(__file__).resolve().parent / "lists"


@dataclass(frozen=True)
class AuxiliaryFile:
    """A small public file with a pinned checksum, placed at ``<raw>/<name>``; a copy ships with hacm."""

    name: str
    contents: str
    url: str
    page: str
    size: int
    sha256: str

    @property
    def shipped(self) -> Path:
        return SHIPPED_LISTS / self.name


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
#
# Data a researcher already extracted: <archives> may hold it in the layout of MAMP / HA-CM (and of
# CTR-GCN, MS-G3D, which share it; MAMP README "Data Preparation"): data/nturgbd_raw/nturgb+d_skeletons/
# (from the s001-s017 zip), data/nturgbd_raw/nturgb+d_skeletons120/ (from the s018-s032 zip),
# data/pku_raw/v1|v2/{skeleton/, label/, the split files}; or PKU-MMD phase I as the official download
# unpacks (PKUMMD/Data/PKU_Skeleton_Renew/, PKUMMD/Label/Train_Label_PKU_final/, PKUMMD/Split/, as
# many public loaders read it). <archives> may be the layout's top folder or any folder on the way down.
# Both NTU zips also circulate extracted into one nturgb+d_skeletons/ folder.
MAMP_FOLDERS = {"ntu": "nturgbd_raw", "pku1": "pku_raw/v1", "pku2": "pku_raw/v2"}
PKU_OFFICIAL_FOLDERS = {"skeleton": "PKUMMD/Data/PKU_Skeleton_Renew", "label": "PKUMMD/Label/Train_Label_PKU_final",
                        "split": "PKUMMD/Split"}


def nested_paths(path: str) -> tuple[str, ...]:
    """``path`` as seen from its top folder and from each folder below it (the last is its name alone)."""
    parts = path.split("/")
    return tuple("/".join(parts[index:]) for index in range(len(parts)))


# EXPANDED SIZES. No official figure is published, so each is an estimate, rounded up, from counts the
# dataset pages give and the sizes of real files: the 12 real NTU .skeleton files of the project's test data average
# 285 kB (137-400 kB), so 300 kB a file; the real PKU-MMD skeleton file there (phase II, 1040 frames)
# holds 1.39 kB a frame, so 1.5 kB a frame; a label line ("41,140,269,1") stays under 20 bytes.
NTU_SKELETON_FILE_BYTES = 300_000
PKU_FRAME_BYTES = 1_500
PKU_LABEL_LINE_BYTES = 20

_NTU_SAMPLE = r"C\d{3}P\d{3}R\d{3}A\d{3}\.skeleton"
NTU60_SKELETONS = Archive(
    name="nturgbd_skeletons_s001_to_s017.zip",
    contents="NTU RGB+D 60 3D skeletons, setups S001-S017 (56,880 .skeleton files)",
    request_page=NTU_REQUEST_PAGE,
    layout_paths=nested_paths(f"{MAMP_FOLDERS['ntu']}/nturgb+d_skeletons"),
    member_pattern=r"S0(0\d|1[0-7])" + _NTU_SAMPLE,
    expanded_size=56_880 * NTU_SKELETON_FILE_BYTES,  # 17 GB
)
NTU120_EXTRA_SKELETONS = Archive(
    name="nturgbd_skeletons_s018_to_s032.zip",
    contents="NTU RGB+D 120 additional 3D skeletons, setups S018-S032 (57,600 .skeleton files)",
    request_page=NTU_REQUEST_PAGE,
    layout_paths=(*nested_paths(f"{MAMP_FOLDERS['ntu']}/nturgb+d_skeletons120"), *NTU60_SKELETONS.layout_paths),
    member_pattern=r"S0(1[89]|2\d|3[0-2])" + _NTU_SAMPLE,
    expanded_size=57_600 * NTU_SKELETON_FILE_BYTES,  # 17 GB
)

# PKU-MMD names: github.com/maoyunyao/MAMP README lists Skeleton.7z, Label_PKUMMD.7z (phase I) and
# Skeleton_v2.7z, Label_PKUMMD_v2.7z (phase II), as Data/ and Label/ of the official download; one
# downstream README calls the phase II labels Label_PKUMMD_v2.zip, accepted as an alias (the format is
# detected from the file's bytes, not its extension). The split files (Split/) are named by the
# benchmark registry, aliases included.


def _split_file(benchmark: str, contents: str) -> Archive:
    name, *aliases = BENCHMARKS[benchmark].split_files
    # In MAMP's layout the file sits beside skeleton/ and label/ (pku_raw/v1/cross_subject.txt; its
    # pku_gendata.py reads cross-subject.txt there); the official phase I download has it in Split/.
    dataset = benchmark.split("-")[0]
    folders = [MAMP_FOLDERS[dataset]] + ([PKU_OFFICIAL_FOLDERS["split"]] if dataset == "pku1" else [])
    in_layouts = tuple(path for folder in folders for known in (name, *aliases)
                       for path in nested_paths(f"{folder}/{known}")[:-1])
    return Archive(name=name, contents=contents, request_page=PKU_REQUEST_PAGE, aliases=tuple(aliases), unpack=False,
                   layout_paths=in_layouts)


_PKU_VIDEO = {1: r"\d{4}-[LMR]\.txt", 2: r"A\d{2}N\d{2}-[LMR]\.txt"}  # 0002-L.txt, A01N01-L.txt


def _pku_folder_archive(phase: int, name: str, contents: str, folder: str, **extra) -> Archive:
    folders = nested_paths(f"{MAMP_FOLDERS[f'pku{phase}']}/{folder}")
    if phase == 1:
        folders += nested_paths(PKU_OFFICIAL_FOLDERS[folder])
    return Archive(name=name, contents=contents, request_page=PKU_REQUEST_PAGE, layout_paths=folders,
                   member_pattern=_PKU_VIDEO[phase], **extra)


# Phase I: 1076 videos, 5,312,580 frames, 21,545 actions (the PKU-MMD page). Phase II: 1009 videos (as
# counted by users of the data; no frame count is published): 2000 frames a video assumed, about twice the
# real phase II file above. Its action count is unpublished too: 21,545 (phase I's) stands in.
PKU1_ARCHIVES = (
    _pku_folder_archive(1, "Skeleton.7z", "PKU-MMD phase I skeletons (one XXXX-V.txt per video, 150 values per frame)",
                        "skeleton", expanded_size=5_312_580 * PKU_FRAME_BYTES),  # 8 GB
    _pku_folder_archive(1, "Label_PKUMMD.7z", "PKU-MMD phase I labels (label,start,end,confidence per action)",
                        "label", expanded_size=21_545 * PKU_LABEL_LINE_BYTES),  # 0.4 MB
    _split_file("pku1-xsub", "PKU-MMD phase I cross-subject split (Split/ folder)"),
    _split_file("pku1-xview", "PKU-MMD phase I cross-view split (Split/ folder)"),
)
PKU2_ARCHIVES = (
    _pku_folder_archive(2, "Skeleton_v2.7z",
                        "PKU-MMD phase II skeletons (one AxxNxx-V.txt per video, 150 values per frame)", "skeleton",
                        expanded_size=1009 * 2000 * PKU_FRAME_BYTES),  # 3 GB
    _pku_folder_archive(2, "Label_PKUMMD_v2.7z", "PKU-MMD phase II labels (label,start,end,confidence per action)",
                        "label", aliases=("Label_PKUMMD_v2.zip",), expanded_size=21_545 * PKU_LABEL_LINE_BYTES),
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
