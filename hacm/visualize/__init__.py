"""What the model masks, as figures and as numbers: the mask figure (masks, inputs, panels, drawing) and the
masking diagnostic's command; `python -m hacm.visualize` is the command (`__main__`)."""
