# The paper's tables (CSV, Markdown, LaTeX) with the published numbers beside ours, and the figure.
# Their layout (tables, columns, rows, the run files of each cell) is hacm.tables.layout's.


localrules:
    tables_plan,


TABLES_PLAN = build_plan(config, metrics=rules.evaluate.output.metrics, pretrain_log=rules.pretrain.output.metrics)
TABLE_NAMES = [table["name"] for table in TABLES_PLAN["tables"]]


rule tables_plan:
    output:
        plan="results/tables/plan.json",
    params:
        document=as_json(TABLES_PLAN),
    log:
        "results/logs/tables/plan.log",
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m hacm.tables plan --json {params.document:q} --out {output.plan} > {log} 2>&1"


rule tables:
    input:
        plan=rules.tables_plan.output.plan,
        published=f"{workflow.basedir}/config/published.yaml",
        results=plan_inputs(TABLES_PLAN),
    output:
        **{
            f"{name}_{suffix}": report(
                f"results/tables/{name}.{suffix}", category="Tables", subcategory=name, labels={"table": name, "format": suffix}
            )
            for name in TABLE_NAMES
            for suffix in ("md", "csv", "tex")
        },
        **{f"{name}_differences": f"results/tables/{name}_differences.csv" for name in TABLE_NAMES},
        figure=report("results/tables/pretraining.png", category="Figures", labels={"figure": "pretraining and linear accuracy"}),
        index="results/tables/index.md",
    params:
        out=lambda wildcards, output: str(Path(output.index).parent),
    log:
        "results/logs/tables/tables.log",
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m hacm.tables render --plan {input.plan} --published {input.published} --out {params.out} > {log} 2>&1"
