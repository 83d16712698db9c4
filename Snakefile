# hacm: HA-CM from raw skeleton archives to the paper's tables. `snakemake --cores N` builds all_tables
# on the embedded synthetic dataset; `--configfile config/paper.yaml` plans the paper's full matrix;
# `--profile slurm` sends the jobs to a SLURM cluster. Targets: all_tables, all_pretrain, ablation_<name>, and
# the subsets benchmark_<key> (one benchmark's runs) and protocol_<kind> (one protocol's table cells).
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


from hacm.tables.layout import BENCHMARK_TABLES, PROTOCOL_TABLES, subset_inputs


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


# A subset's runs are the cells of its tables in the plan (hacm.tables.layout.subset_inputs): one benchmark's
# linear, fine-tuning and semi-supervised cells with its pretrainings; one protocol's table. The tables
# themselves need every cell: all_tables builds them, reusing what a subset ran.
for _key in BENCHMARKS:
    _files = subset_inputs(TABLES_PLAN, tables=BENCHMARK_TABLES, benchmark=_key)
    if _files:

        rule:
            name:
                f"benchmark_{_key}"
            input:
                _files,


for _kind in PROTOCOL_TABLES:
    _files = subset_inputs(TABLES_PLAN, tables=(_kind,))
    if _files:

        rule:
            name:
                f"protocol_{_kind}"
            input:
                _files,
