# Evaluation: linear, fine-tune, semi-supervised (per draw) and transfer runs of every encoder (hacm's, and the
# authors' published weights of `published_encoders`).


localrules:
    evaluate_config,


rule evaluate_config:
    output:
        config="results/{bench}/{method}/{protocol}/seed{seed}/run.yaml",
    params:
        document=lambda wildcards: as_json(
            evaluate_document(benchmark_of_folder(wildcards.bench), wildcards.method, wildcards.protocol, wildcards.seed)
        ),
    log:
        "results/logs/{bench}/{method}/{protocol}/seed{seed}.config.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m hacm.configure evaluate --json {params.document:q} --out {output.config} > {log} 2>&1"


rule evaluate:
    input:
        config=rules.evaluate_config.output.config,
        data=lambda wildcards: data_report(benchmark_of_folder(wildcards.bench)),
        encoder=evaluation_encoder,
    output:
        metrics="results/{bench}/{method}/{protocol}/seed{seed}/metrics.json",
        predictions="results/{bench}/{method}/{protocol}/seed{seed}/predictions.csv",
        confusion=report(
            "results/{bench}/{method}/{protocol}/seed{seed}/confusion.png",
            category="Confusion matrices",
            subcategory="{bench}",
            labels={"benchmark": "{bench}", "method": "{method}", "protocol": "{protocol}", "seed": "{seed}"},
        ),
    params:
        kind=lambda wildcards: Protocol.parse(wildcards.protocol).kind,
        data=lambda wildcards: data_dir(benchmark_of_folder(wildcards.bench)),
        encoder=lambda wildcards, input: input.encoder or "none",
        encoder_kind=encoder_kind_option,
        out=lambda wildcards, output: str(Path(output.metrics).parent),
    log:
        "results/logs/{bench}/{method}/{protocol}/seed{seed}.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} python -m hacm.evaluate --protocol {params.kind} --config {input.config}"
        " --data {params.data} --encoder {params.encoder}{params.encoder_kind} --out {params.out} --restart-on-change"
        " --no-progress"
        " 2>&1 | job_log {log}"
