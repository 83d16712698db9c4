"""Validated configuration, run bookkeeping and the input functions of every rule.

A run is (benchmark, method, protocol, seed) and lives in results/<bench>/<method>/<protocol>/seed<k>/,
as the rules spell it (the folder parts are named by hacm.runs). Its configuration is resolved here
from the workflow config and written by a local rule, with the document as a rule parameter, so that
changing one hyperparameter reruns exactly the runs it reaches. Outputs are relative to the working
directory (`--directory` moves them); threads and resources are the rules' defaults, which a profile
(slurm/config.yaml) or --set-threads / --set-resources override.
"""

import json
import shutil
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate


# Conda deployment (--profile slurm) without a `conda` command would fail only after the DAG is built,
# inside Snakemake's `conda info`: say in one line what is wrong and what to run instead. Under apptainer
# conda runs inside the container, so the host needs none.
DEPLOYMENT = workflow.deployment_settings.deployment_method
if DeploymentMethod.CONDA in DEPLOYMENT and DeploymentMethod.APPTAINER not in DEPLOYMENT and not shutil.which("conda"):
    raise WorkflowError(
        "software deployment is conda (--profile slurm or --sdm conda) but no `conda` command is on PATH: "
        "activate a conda installation (e.g. Miniforge), or run every job in this Python environment with "
        "--profile slurm/no-conda instead (after `pip install -e \".[slurm]\"`; locally, leave out --sdm conda)"
    )

validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=True)


# A SLURM run checks its jobs against the cluster before the first sbatch (hacm/campaign/onstart.py): a job
# that no partition can run would be refused at sbatch or pend for ever while Snakemake waits without a
# word. Local runs and dry runs skip it, and so does --no-hooks.
onstart:
    from hacm.campaign.onstart import check_before_submitting

    check_before_submitting(workflow)


# hacm's torch-free modules name the datasets and benchmarks, the run folders, the stage configs and the
# paper's tables.
sys.path.insert(0, str(Path(workflow.basedir)))
from hacm.benchmarks import BENCHMARKS, DATASETS  # noqa: E402
from hacm.methods import RANDOM  # noqa: E402
from hacm.recipes import RecipeError, Recipes  # noqa: E402
from hacm.release.kinds import published_name  # noqa: E402
from hacm.runs import (  # noqa: E402
    BENCH_PATTERN,
    METHOD_PATTERN,
    PROTOCOL_PATTERN,
    Protocol,
    ablation_method,
    bench_folder,
    benchmark_of_folder,
)
from hacm.tables.layout import build_plan, plan_inputs, pretraining_runs  # noqa: E402

# Jobs run `python -m hacm.<stage>` from this checkout in whatever environment the rule gets (a conda
# env holds only the dependencies) and whatever the working directory. `job_log LOG` appends a stage's
# output to its log, and inside a SLURM job also shows it in the job's own output file, so that the file
# SLURM writes says what the job is doing (one line per epoch); continuations of a job append.
shell.prefix(
    f"export PYTHONPATH={workflow.basedir}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    'job_log() {{ if [ -n "${{SLURM_JOB_ID:-}}" ]; then tee -a "$1"; else cat >> "$1"; fi; }}; '
)

PATHS = config["paths"]
ABLATIONS = config["ablations"]["variants"]
ABLATION_BENCHMARK = config["ablations"]["benchmark"]
SEEDS = config["seeds"]
PRETRAINING_RUNS = pretraining_runs(config)
# The authors' published weights, evaluated in run folders published.<name> (hacm.release.kinds).
PUBLISHED_ENCODERS = config["published_encoders"]


wildcard_constraints:
    bench=BENCH_PATTERN,
    method=METHOD_PATTERN,
    seed="[0-9]+",
    dataset="|".join(DATASETS),
    benchmark="|".join(BENCHMARKS),
    protocol=PROTOCOL_PATTERN,


# --- data -------------------------------------------------------------------------------------------


def under(root, pattern):
    """A file pattern under a configured data folder (paths.raw, paths.data)."""
    return f"{root}/{pattern}"


def dataset_of(benchmark):
    """The data folder holding a benchmark's stores: synthetic, the dataset, or imported/<benchmark>."""
    if config["dataset"] == "synthetic":
        return "synthetic"
    if config["dataset"] == "imported":
        return f"imported/{benchmark}"
    return BENCHMARKS[benchmark].dataset


def data_report(benchmark):
    """The report.json that hacm.prepare writes once the benchmark's stores exist."""
    return f"{PATHS['data']}/{dataset_of(benchmark)}/report.json"


def imported_file(wildcards):
    """The file `imports` names for a benchmark (dataset: imported)."""
    if wildcards.benchmark not in config["imports"]:
        raise WorkflowError(f"dataset imported: `imports` names no file for {wildcards.benchmark} "
                            f"(it has: {', '.join(config['imports']) or 'none'})")
    return config["imports"][wildcards.benchmark]


def data_dir(benchmark):
    return f"{PATHS['data']}/{dataset_of(benchmark)}/{benchmark}"


def staging_option():
    """The pretraining's --stage-data option (paths.scratch; quoted so that the node expands $TMPDIR)."""
    return f' --stage-data "{PATHS["scratch"]}"' if PATHS.get("scratch") else ""


# --- run configurations -----------------------------------------------------------------------------


# Every run's document comes from hacm.recipes (one resolver: the tests, the sweeps and
# `python -m hacm.recipes` resolve the same way); its errors are the workflow's.
RECIPES = Recipes(config)


def _resolved(resolve, *arguments):
    try:
        return resolve(*arguments)
    except RecipeError as error:
        raise WorkflowError(str(error)) from None


def published_encoder(method):
    return _resolved(RECIPES.published_encoder, method)


def pretrain_document(benchmark, method, seed):
    return _resolved(RECIPES.pretrain_document, benchmark, method, seed)


def evaluate_document(benchmark, method, protocol, seed):
    return _resolved(RECIPES.evaluate_document, benchmark, method, protocol, seed)


def _check_stage_configs():
    """Every run's configuration checked by hacm's own config classes while the DAG is built, so a bad
    key fails at once with its name (the rules check again when they write the files)."""
    _resolved(RECIPES.check, PRETRAINING_RUNS, BENCHMARKS)


def as_json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# --- launching a pretraining ---------------------------------------------------------------------------

RENDEZVOUS_PORT = 29500


def pretrain_launcher(threads, resources):
    """How a pretraining job starts its processes: one (resources gpu=1), torchrun with one process per GPU
    on one node (gpu=N), or srun starting torchrun on each of `nodes` nodes with a rendezvous on the first
    (gpu=N, nodes=M: N GPUs in all, N/M per node). The global batch and lr stay as configured; each process
    takes batch/N. OMP threads are the job's threads shared among a node's processes."""
    gpus, nodes = int(getattr(resources, "gpu", 1) or 1), int(getattr(resources, "nodes", 1) or 1)
    if gpus % nodes:
        raise WorkflowError(f"pretrain: resources gpu={gpus} must be a multiple of nodes={nodes} (GPUs per node)")
    per_node = gpus // nodes
    threads_each = f"OMP_NUM_THREADS={max(1, threads // per_node)}"
    if gpus == 1:
        return f"{threads_each} python"
    if nodes == 1:
        return f"{threads_each} python -m torch.distributed.run --standalone --nproc_per_node={per_node}"
    first_node = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
    return (f"{threads_each} srun --nodes={nodes} --ntasks-per-node=1 python -m torch.distributed.run"
            f" --nnodes={nodes} --nproc_per_node={per_node} --rdzv_backend=c10d"
            f" --rdzv_endpoint={first_node}:{RENDEZVOUS_PORT} --rdzv_id=$SLURM_JOB_ID")


# --- runs and their files ---------------------------------------------------------------------------


def encoder_files(benchmark, method, seeds):
    """The encoder.pt of each seed's pretraining (the pretrain rule's output)."""
    return expand(rules.pretrain.output.encoder, bench=bench_folder(benchmark), method=method, seed=seeds)


def evaluation_encoder(wildcards):
    """The encoder an evaluation reads: none for the random rows, the source's for transfer, the configured
    file for published weights."""
    if wildcards.method == RANDOM:
        return []
    benchmark = Protocol.parse(wildcards.protocol).source or benchmark_of_folder(wildcards.bench)
    published = published_encoder(wildcards.method)
    if published is not None:
        if benchmark not in published["files"]:
            raise WorkflowError(f"published_encoders: {published_name(wildcards.method)!r} has no file for "
                                f"{benchmark} (it has: {', '.join(published['files'])})")
        return [published["files"][benchmark]]
    return encoder_files(benchmark, wildcards.method, [wildcards.seed])


def encoder_kind_option(wildcards):
    """The evaluation's --encoder-kind option: the kind of published weights, none for hacm's encoders."""
    published = published_encoder(wildcards.method)
    return f" --encoder-kind {published['kind']}" if published is not None else ""


def linear_files(benchmark, method):
    """Each seed's linear metrics.json (the evaluate rule's output)."""
    return expand(rules.evaluate.output.metrics, bench=bench_folder(benchmark), method=method, protocol="linear",
                  seed=SEEDS)


_check_stage_configs()
