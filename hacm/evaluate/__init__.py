"""Evaluation protocols: linear, fine-tune, semi-supervised and transfer (docs/method.md §3)."""
