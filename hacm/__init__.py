"""HA-CM: hierarchy- and attention-guided cross masking for skeleton action recognition."""

__version__ = "0.1.0"
