# Pretraining: one job per (benchmark, method, seed); HA-CM, the MAE / MAMP baselines and the ablations.


localrules:
    pretrain_config,


rule pretrain_config:
    output:
        config=f"{RESULTS}/{{bench}}/{{method}}/pretrain/seed{{seed}}/run.yaml",
    params:
        document=lambda wildcards: as_json(pretrain_document(benchmark_of(wildcards.bench), wildcards.method, wildcards.seed)),
    log:
        f"{LOGS}/{{bench}}/{{method}}/pretrain/seed{{seed}}.config.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m hacm.configure pretrain --json {params.document:q} --out {output.config} > {log} 2>&1"


rule pretrain:
    input:
        config=rules.pretrain_config.output.config,
        data=lambda wildcards: data_report(benchmark_of(wildcards.bench)),
    output:
        encoder=f"{RESULTS}/{{bench}}/{{method}}/pretrain/seed{{seed}}/encoder.pt",
        metrics=f"{RESULTS}/{{bench}}/{{method}}/pretrain/seed{{seed}}/metrics.jsonl",
        curve=report(
            f"{RESULTS}/{{bench}}/{{method}}/pretrain/seed{{seed}}/loss_curve.png",
            category="Pretraining",
            subcategory="{bench}",
            labels={"benchmark": "{bench}", "method": "{method}", "seed": "{seed}"},
        ),
    params:
        data=lambda wildcards: data_dir(benchmark_of(wildcards.bench)),
        out=lambda wildcards, output: str(Path(output.encoder).parent),
    log:
        f"{LOGS}/{{bench}}/{{method}}/pretrain/seed{{seed}}.log",
    conda:
        "../../envs/torch.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=1,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    shell:
        # The checkpoint is not an output, so a job killed at its time limit resumes when run again.
        "OMP_NUM_THREADS={threads} python -m hacm.pretrain --config {input.config} --data {params.data}"
        " --out {params.out} --restart-on-change --no-progress > {log} 2>&1"
