"""Planning a campaign before submitting it (`python -m hacm.campaign`).

`jobs` lists the jobs a submission would run, from the workflow's own dry run (reused by any check of the
jobs against the cluster); `work` counts what each pretraining and evaluation job computes, `flops` prices
it, `split_sizes` says how large each benchmark is, `throughput` how fast a device runs, `cost` puts them
together per rule. `cluster` reads what a SLURM cluster offers, `sbatch_request` what the executor plugin
asks of it for a job, `preflight` checks the one against the other, `profile_fix` says the settings that
fit as profile entries and command-line lists, `preflight_report` prints it all, and `onstart` runs the
check inside a SLURM run before its first submission.
"""
