"""Figures for papers and for checking a run by eye; `python -m hacm.visualize` is their entry point."""
