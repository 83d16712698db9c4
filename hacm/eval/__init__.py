"""Evaluation protocols: linear, fine-tune, semi-supervised and transfer (DESIGN §3)."""
