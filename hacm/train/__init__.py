"""The run library every stage is a recipe over: schedules, checkpoints, the encoder file, distributed set-up,
the epoch loop, monitors, progress lines, stop requests and the errors a run reports; and pretraining.py,
the pretraining recipe (evaluation's is hacm.evaluate.protocols). No stage imports another stage's recipe."""
