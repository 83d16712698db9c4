"""Training machinery: schedules, checkpoints, distributed set-up, the epoch loop and monitors."""
