# Dataset acquisition and conversion. The synthetic dataset is generated; a real one is verified (and
# downloaded when fetch.urls names a URL) from paths.archives, extracted, then converted; an imported
# benchmark is converted from the .npz / .pkl file that `imports` names.


rule synthetic_dataset:
    output:
        report=f"{PATHS['data']}/synthetic/report.json",
    params:
        raw=f"{PATHS['raw']}/synthetic",
        out=lambda wildcards, output: str(Path(output.report).parent),
        seed=config["prepare"]["synthetic_seed"],
        max_bad=config["prepare"]["max_bad_fraction"],
    log:
        "results/logs/data/synthetic.log",
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m hacm.prepare synthetic --raw {params.raw} --out {params.out} --seed {params.seed}"
        " --workers {threads} --max-bad-fraction {params.max_bad} > {log} 2>&1"


rule fetch:
    output:
        fetched=under(PATHS["raw"], "{dataset}/FETCHED.json"),
    params:
        archives=PATHS["archives"],
        raw=lambda wildcards: f"{PATHS['raw']}/{wildcards.dataset}",
        urls=lambda wildcards: " ".join(f"--url {name}={url}" for name, url in config["fetch"]["urls"].items()),
    log:
        "results/logs/data/fetch_{dataset}.log",
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        # A missing archive fails here with hacm.fetch's message (what to get, where to put it).
        "python -m hacm.fetch {wildcards.dataset} --archives {params.archives} --raw {params.raw}"
        " {params.urls} --workers {threads} > {log} 2>&1 || {{ tail -n 5 {log} >&2; exit 1; }}"


rule prepare:
    input:
        fetched=rules.fetch.output.fetched,
    output:
        report=under(PATHS["data"], "{dataset}/report.json"),
    params:
        raw=lambda wildcards: f"{PATHS['raw']}/{wildcards.dataset}",
        out=lambda wildcards, output: str(Path(output.report).parent),
        max_bad=config["prepare"]["max_bad_fraction"],
    log:
        "results/logs/data/prepare_{dataset}.log",
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "python -m hacm.prepare {wildcards.dataset} --raw {params.raw} --out {params.out}"
        " --workers {threads} --max-bad-fraction {params.max_bad} > {log} 2>&1"


rule import_data:
    input:
        imported_file,
    output:
        report=under(PATHS["data"], "imported/{benchmark}/report.json"),
    params:
        out=lambda wildcards, output: str(Path(output.report).parent),
        max_bad=config["prepare"]["max_bad_fraction"],
    log:
        "results/logs/data/import_{benchmark}.log",
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "python -m hacm.prepare import --from {input} --out {params.out} --benchmark {wildcards.benchmark}"
        " --max-bad-fraction {params.max_bad} > {log} 2>&1"
