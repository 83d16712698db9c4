"""Stopping a run in time: SLURM's signals and its time limit, and the job's continuation.

A run asks `StopRequest.reason()` at every step boundary. It answers when SIGTERM arrived (SLURM sends it
at the time limit, then SIGKILL after the cluster's KillWait, 30 s by default), when SIGUSR1 arrived (the
warning `sbatch --signal=USR1@SECONDS` asks for), or when the job's end time, read from SLURM at start, is
nearer than a margin: long enough for the slowest stretch seen so far without a step boundary (a step, or
an epoch's end with its monitor and checkpoint) twice over, plus the last checkpoint's writing time. The run
then saves a checkpoint and exits with EXIT_CONTINUE; under SLURM it first requeues its own job, so the
workflow sees one job that runs as many times as it needs.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time

EXIT_CONTINUE = 75  # EX_TEMPFAIL: checkpoint saved before a time limit or on a signal; run again to continue
MARGIN_SWITCH = "HACM_STOP_MARGIN_S"  # the fixed part of the margin before the job's end (default 30 s)
DEFAULT_MARGIN_S = 30.0
SIGNALS = ("SIGTERM", "SIGUSR1")


def slurm_job_end() -> float | None:
    """The Unix time this SLURM job ends at (its time limit), or None outside SLURM or without one."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    end = os.environ.get("SLURM_JOB_END_TIME", "")  # set by recent SLURM versions
    if end.isdigit():
        return float(end)
    try:
        text = subprocess.run(["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
        return dt.datetime.fromisoformat(text).timestamp()  # local time, as squeue prints it
    except (OSError, subprocess.SubprocessError, ValueError):
        return None  # no squeue, or "UNLIMITED" / "N/A": signals only


class StopRequest:
    """Why a run should stop at its next step boundary, or None. Install it around the run (`with`)."""

    def __init__(self, *, deadline: float | None = None, margin_s: float | None = None) -> None:
        self.deadline = deadline
        self.fixed_margin = float(os.environ.get(MARGIN_SWITCH, DEFAULT_MARGIN_S) if margin_s is None else margin_s)
        self.signal_name: str | None = None
        self.longest_stretch = 0.0  # seconds between two step boundaries, the longest seen
        self.last_save = 0.0  # seconds the last checkpoint took to write
        self._previous: dict = {}

    @classmethod
    def for_this_job(cls) -> StopRequest:
        return cls(deadline=slurm_job_end())

    def __enter__(self) -> StopRequest:
        for name in SIGNALS:
            number = getattr(signal, name)
            self._previous[number] = signal.signal(number, self._receive)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _receive(self, number, frame) -> None:
        self.signal_name = signal.Signals(number).name

    def margin(self) -> float:
        return self.fixed_margin + 2 * self.longest_stretch + self.last_save

    def stretch(self, seconds: float) -> None:
        """A stretch of work between two step boundaries took `seconds`."""
        self.longest_stretch = max(self.longest_stretch, seconds)

    def reason(self) -> str | None:
        if self.signal_name is not None:
            return f"{self.signal_name} received"
        if self.deadline is not None and time.time() >= self.deadline - self.margin():
            end = dt.datetime.fromtimestamp(self.deadline).strftime("%H:%M:%S")
            return f"the job's time limit is near (it ends at {end}; margin {self.margin():.0f} s)"
        return None


def requeue_this_job() -> str:
    """Put this SLURM job back in the queue (`scontrol requeue`), so it runs again with a new time limit; what
    happened, in words. The job must be a batch job its cluster lets be requeued."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "not a SLURM job: run the same command again to continue"
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return f"could not requeue SLURM job {job} ({error}); the workflow's retries continue it"
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        return (f"SLURM refused to requeue job {job} ({why[0] if why else 'exit ' + str(result.returncode)}); "
                "the workflow's retries continue it (snakemake --retries N)")
    return f"SLURM job {job} requeued: it continues from this checkpoint when it runs again"
