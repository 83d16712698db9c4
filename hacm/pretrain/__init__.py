"""Pretraining: the recipe (`run`) and its configuration (`config`) over the shared run library (hacm.train);
`python -m hacm.pretrain` is its command (`__main__`)."""
