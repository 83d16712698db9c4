"""Speed of one pretraining step of the paper-size model (`step`); `python -m hacm.bench` is its command."""
