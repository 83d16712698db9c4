"""The lines a running job prints to its log: one per epoch, and one every few minutes inside a long epoch,
so that a job of hours can be told apart from a stuck one (or one on the wrong device) by reading its log."""

from __future__ import annotations

import socket
import sys
import time

from hacm.train.environment import device_title, memory_line

EVERY_S = 300.0  # a line inside an epoch when this long has passed since the last one
ACCURACIES = {"knn_top1": "kNN top-1", "train_top1": "train top-1", "test_top1": "test top-1"}


def duration(seconds: float) -> str:
    """'2 h 05 min', '7 min 12 s', '40 s'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class ProgressLines:
    """Epoch / step lines with loss, speed, ETA, device and GPU memory, printed to stdout (the job's log)."""

    def __init__(self, prog: str, *, environment: dict, device, total_epochs: int, steps_per_epoch: int,
                 samples_per_step: int, first_step: int, enabled: bool = True, every_s: float = EVERY_S,
                 within_epochs: bool = True) -> None:
        self.prog, self.device, self.enabled, self.every_s = prog, device, enabled, every_s
        self.title = device_title(environment)
        self.total_epochs, self.steps_per_epoch, self.samples_per_step = total_epochs, steps_per_epoch, samples_per_step
        self.total_steps = total_epochs * steps_per_epoch
        self.within_epochs = within_epochs  # lines inside epochs (off when a progress bar shows them)
        self.started, self.first_step = time.monotonic(), first_step
        self.last_line = self.started

    def _speed_and_eta(self, steps_done: int) -> str:
        elapsed = time.monotonic() - self.started
        trained = steps_done - self.first_step
        if trained <= 0 or elapsed <= 0:
            return ""
        rate = trained / elapsed
        eta = (self.total_steps - steps_done) / rate
        return f", {rate * self.samples_per_step:,.0f} samples/s, ETA {duration(eta)}"

    def _print(self, text: str) -> None:
        if self.enabled:
            print(f"{self.prog}: {text}{memory_line(self.device)}", file=sys.stdout, flush=True)
            self.last_line = time.monotonic()

    def start(self, epoch: int, *, resumed: bool) -> None:
        """The first line of a part of the run (a job's log may hold several: continuations append)."""
        where = (f"resuming at epoch {epoch}, step {self.first_step:,}" if resumed else "starting")
        self._print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: {where} of {self.total_epochs} "
                    f"epochs x {self.steps_per_epoch:,} steps on {self.title}")

    def step(self, epoch: int, steps_done: int, loss: float) -> None:
        """A logged step: a line only when `every_s` has passed since the last one."""
        if self.within_epochs and time.monotonic() - self.last_line >= self.every_s:
            self._print(f"epoch {epoch}/{self.total_epochs}, step {steps_done:,}/{self.total_steps:,}: loss {loss:.4f}"
                        + self._speed_and_eta(steps_done) + f", {self.title}")

    def epoch(self, record: dict, steps_done: int) -> None:
        """An epoch's line: its loss and whichever accuracies its record has."""
        accuracies = "".join(f", {label} {100 * record[key]:.1f} %" for key, label in ACCURACIES.items()
                             if record.get(key) is not None)
        self._print(f"epoch {record['epoch']}/{self.total_epochs} done: loss {record['loss']:.4f}{accuracies}"
                    + self._speed_and_eta(steps_done) + f", {self.title}")

    def stopped(self, epoch: int, steps_done: int, reason: str) -> None:
        self._print(f"stopping in epoch {epoch} after step {steps_done:,} ({reason}); checkpoint saved")
