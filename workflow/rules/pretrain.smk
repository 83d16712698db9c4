# Pretraining: one job per (benchmark, method, seed); HA-CM, the MAE / MAMP baselines and the ablations.


localrules:
    pretrain_config,


rule pretrain_config:
    output:
        config="results/{bench}/{method}/pretrain/seed{seed}/run.yaml",
    params:
        document=lambda wildcards: as_json(pretrain_document(benchmark_of_folder(wildcards.bench), wildcards.method, wildcards.seed)),
    log:
        "results/logs/{bench}/{method}/pretrain/seed{seed}.config.log",
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
        data=lambda wildcards: data_report(benchmark_of_folder(wildcards.bench)),
    output:
        encoder="results/{bench}/{method}/pretrain/seed{seed}/encoder.pt",
        metrics="results/{bench}/{method}/pretrain/seed{seed}/metrics.jsonl",
        curve=report(
            "results/{bench}/{method}/pretrain/seed{seed}/loss_curve.png",
            category="Pretraining",
            subcategory="{bench}",
            labels={"benchmark": "{bench}", "method": "{method}", "seed": "{seed}"},
        ),
    params:
        data=lambda wildcards: data_dir(benchmark_of_folder(wildcards.bench)),
        out=lambda wildcards, output: str(Path(output.encoder).parent),
        launch=lambda wildcards, threads, resources: pretrain_launcher(threads, resources),
        stage=staging_option(),
    log:
        "results/logs/{bench}/{method}/pretrain/seed{seed}.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        # The checkpoint and the run's history are not outputs, so a job stopped at its time limit resumes
        # when run again, its log whole. Near the limit it saves and requeues its own SLURM job (--requeue);
        # where SLURM refuses that, it exits 75 and the profile's retries continue it.
        "{params.launch} -m hacm.pretrain --config {input.config} --data {params.data}"
        " --out {params.out} --restart-on-change --no-progress --requeue{params.stage} 2>&1 | job_log {log}"
