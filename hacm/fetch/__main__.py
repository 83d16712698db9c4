"""``python -m hacm.fetch DATASET --archives DIR --raw DIR``: verify, download and extract a dataset.

NTU RGB+D and PKU-MMD need registration, so the archives are normally put in ``--archives`` by
hand; this command then checks them, extracts them into ``--raw`` (once: reruns skip what is
extracted; zip, tar and 7z need no external command; each archive lands whole or not at all, through
a staging folder beside ``--raw``), places the official missing-skeleton list for NTU (shipped with
hacm: no network needed), and writes ``<raw>/FETCHED.json`` (removed first, written only on success).
``--url FILE=URL`` (or ``fetch: urls:`` in ``--config``) downloads a file that is not there yet.
Data already extracted is linked, not copied: ``--archives`` may be MAMP's / HA-CM's ``data/`` folder
(nturgbd_raw/nturgb+d_skeletons[120]/, pku_raw/v1|v2/) or PKU-MMD's official ``PKUMMD/`` folder.

Exit status: 0 done; 1 an archive is missing, corrupt, fails its checksum or expands beyond what the
official one needs (the message says what to get and where to put it); 2 a usage or environment error
(arguments, config, directories, not enough disk space, no unrar / 7z command for a rar archive).
Errors are one ``hacm.fetch: error: ...`` message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hacm.fetch.acquire import fetch_dataset
from hacm.fetch.manifest import (
    MANIFESTS,
    FetchError,
    check_url_names,
    load_url_config,
    manifest_for,
    parse_url_assignment,
)

PROG = "hacm.fetch"


def archive_list() -> str:
    """The files each dataset needs, as the help lists them (from the manifests, so never out of date)."""
    return "; ".join(f"{dataset}: " + ", ".join(archive.name for archive in manifest.archives)
                     for dataset, manifest in sorted(MANIFESTS.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Verify, download (when a URL is given) and extract the archives of one dataset.",
        epilog=f"The files each dataset needs in --archives: {archive_list()}. "
               "Already-extracted data is linked, not copied: --archives may also be the data/ folder of MAMP / "
               "HA-CM (nturgbd_raw/nturgb+d_skeletons/, nturgb+d_skeletons120/, pku_raw/v1/ and v2/ with skeleton/, "
               "label/ and the split files) or hold PKU-MMD's PKUMMD/{Data,Label,Split}/ folders. "
               "Exit status: 0 done, 1 missing/invalid archive, 2 usage or environment error.",
    )
    parser.add_argument("dataset", choices=sorted(MANIFESTS), help="which dataset to fetch")
    parser.add_argument("--archives", type=Path, required=True,
                        help="directory holding the downloaded archives (<archives>/<file name>), or the "
                             "folders they were extracted to")
    parser.add_argument("--raw", type=Path, required=True, help="directory to extract into")
    parser.add_argument("--url", action="append", default=[], metavar="FILE=URL",
                        help="download FILE from URL when it is not in --archives (repeatable; file:// works)")
    parser.add_argument("--config", type=Path, help="YAML whose fetch.urls (or urls) maps FILE to URL")
    parser.add_argument("--workers", type=int, default=4, help="threads used to extract zip archives")
    return parser


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 with "hacm.fetch: error: ..." on bad usage
    try:
        if args.workers < 1:
            raise FetchError(f"--workers must be at least 1, got {args.workers}")
        manifest = manifest_for(args.dataset)
        urls = load_url_config(args.config) if args.config else {}
        command_line_urls = dict(parse_url_assignment(text) for text in args.url)
        check_url_names(command_line_urls, manifest=manifest)
        report = fetch_dataset(manifest=manifest, archives_dir=args.archives, raw_dir=args.raw,
                               urls={**urls, **command_line_urls}, workers=args.workers)
    except FetchError as exc:
        return fail(str(exc), code=exc.exit_code)
    except OSError as exc:  # disk full, permissions, ...: the environment, not the archives
        where = f": {exc.filename}" if exc.filename else f" (while fetching into --raw {args.raw})"
        return fail(f"{exc.strerror or exc}{where}", code=2)
    except KeyboardInterrupt:
        return fail("interrupted; rerun to resume (extracted archives are skipped)", code=130)
    print(report.summary(), flush=True)
    return 0


def fail(message: str, *, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(run())
