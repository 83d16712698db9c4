"""Raw files of a dataset -> memory-mapped train / test stores (over hacm.data); `python -m hacm.prepare` is the
command (`__main__`)."""
