"""The errors a run stage (pretraining, evaluation) reports as one line and exit 1 rather than a traceback.

One home for every stage: each raises RunError for a run that cannot start or continue, and its entry point
hands RUN_ERRORS to hacm.cli.run_stage, which prints them.
"""

from __future__ import annotations

from hacm.config import ConfigError
from hacm.data.storage import StoreError
from hacm.train.checkpoint import CheckpointError
from hacm.train.engine import NonFiniteLoss
from hacm.train.environment import DeviceError


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


# What a pretraining or evaluation run reports as one line (exit 1) rather than a traceback.
RUN_ERRORS = (StoreError, CheckpointError, RunError, NonFiniteLoss, ConfigError, DeviceError)
