"""Raw skeleton readers, denoising, normalisation, splits, storage, loader and the synthetic dataset."""
