# The paper's tables (CSV, Markdown, LaTeX) with the published numbers beside ours, and the figure.


localrules:
    tables_plan,


TABLES_PLAN = tables_plan()


rule tables_plan:
    output:
        plan=f"{TABLES_DIR}/plan.json",
    params:
        document=as_json(TABLES_PLAN),
    log:
        f"{LOGS}/tables/plan.log",
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m hacm.configure plan --json {params.document:q} --out {output.plan} > {log} 2>&1"


rule tables:
    input:
        plan=rules.tables_plan.output.plan,
        published=f"{workflow.basedir}/config/published.yaml",
        results=plan_inputs(TABLES_PLAN),
    output:
        **{
            f"{name}_{suffix}": report(
                f"{TABLES_DIR}/{name}.{suffix}", category="Tables", subcategory=name, labels={"table": name, "format": suffix}
            )
            for name in TABLE_NAMES
            for suffix in ("md", "csv", "tex")
        },
        **{f"{name}_differences": f"{TABLES_DIR}/{name}_differences.csv" for name in TABLE_NAMES},
        figure=report(f"{TABLES_DIR}/pretraining.png", category="Figures", labels={"figure": "pretraining and linear accuracy"}),
        index=f"{TABLES_DIR}/index.md",
    params:
        out=lambda wildcards, output: str(Path(output.index).parent),
    log:
        f"{LOGS}/tables/tables.log",
    conda:
        "../../envs/tables.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m hacm.tables --plan {input.plan} --published {input.published} --out {params.out} > {log} 2>&1"
