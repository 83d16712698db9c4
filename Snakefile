# hacm: HA-CM from raw skeleton archives to the paper's tables. `snakemake --cores N` builds all_tables
# on the embedded synthetic dataset; `--configfile config/paper.yaml` plans the paper's full matrix;
# `--profile slurm` sends the jobs to a SLURM cluster. Targets: all_tables, all_pretrain, ablation_<name>.
from pathlib import Path


# A --configfile replaces the embedded default instead of being merged into it, so that a config can
# drop ablations or methods; keys it leaves out take the schema's defaults.
if not workflow.config_settings.configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


rule all_tables:
    default_target: True
    input:
        rules.tables.output,


rule all_pretrain:
    input:
        [encoder_files(benchmark, method, SEEDS) for benchmark, method in PRETRAINING_RUNS],


for _name in ABLATIONS:

    rule:
        name:
            f"ablation_{_name}"
        input:
            linear_files(ABLATION_BENCHMARK, ablation_method(_name)),
