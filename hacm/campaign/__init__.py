"""Planning a campaign before submitting it (`python -m hacm.campaign`).

`jobs` lists the jobs a submission would run, from the workflow's own dry run (reused by any check of the
jobs against the cluster); `work` counts what each pretraining and evaluation job computes, `flops` prices
it, `split_sizes` says how large each benchmark is, `throughput` how fast a device runs, `cost` puts them
together per rule.
"""
