"""One run's config file from its resolved document (as the workflow writes it); `python -m hacm.configure` is
the command (`__main__`)."""
