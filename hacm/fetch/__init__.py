"""Dataset acquisition (`python -m hacm.fetch`, `__main__.py`): the archives each dataset needs
(`manifest.py`), their verification and download (`download.py`), their extraction (`extract.py`,
bounded by `bounds.py`, landing whole through `staging.py`), and the acquisition of a whole dataset
with its report (`acquire.py`).

NTU RGB+D and PKU-MMD are released only after registration, so nothing here can fetch them by
itself: the manifest says which files a dataset needs, where to request them and where to put
them. A file is downloaded only when the user configured a URL for it (a mirror of their own, or a
``file://`` path). The small official missing-skeleton lists are public: a copy ships with hacm
(`lists/`), so fetch needs no network for them; whichever copy is placed is verified against its
pinned sha256.

Exit codes (carried by the exceptions, used by ``python -m hacm.fetch``):
  1  an archive or auxiliary file is missing, fails its size/sha256 check, cannot be downloaded,
     is corrupt, holds unsafe member paths or links, or expands beyond what the official archive
     needs (`bounds.py`): get the file again;
  2  the command or the environment is wrong: bad arguments or config, unusable directories, not
     enough disk space, no extraction command for a rar archive (zip, tar and 7z are read in Python).

An archive is extracted into a staging folder beside the raw folder and moved in only when every
member is written (`staging.py`); FETCHED.json, the mark of a completed fetch, is removed when a fetch
starts and written when it ends.
"""
