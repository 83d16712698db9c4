"""The embedded synthetic raw dataset (hacm.data.synthetic) written to a folder; `python -m hacm.synthesize` is the
command (`__main__`)."""
