# nnfield workflow: config -> simulate (batches of point x shard tasks) -> merge (per point) ->
# analyze (per study) -> figures.  Generic over studies; see README.md.
from snakemake.utils import min_version, validate

from nnfield import batching, layout
from nnfield import config as nnconfig
from nnfield import plan as nnplan
from nnfield.studies import FIGURE_STUDY

min_version("9.0")


configfile: "config/config.yaml"


try:
    nnconfig.check_files(workflow.configfiles)  # no YAML aliases or duplicate keys
    CONFIG = nnconfig.validate(config, workflow.source_path("config/schema.yaml"))
except nnconfig.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, "config/schema.yaml", set_default=True)

POINTS = nnconfig.expand(CONFIG)
BATCHES = batching.plan(POINTS, CONFIG["batching"])
DEVICE = CONFIG["device"]
FIGURES = [name for name, study in FIGURE_STUDY.items() if study in POINTS]


if workflow.is_main_process:  # not in the inner snakemake of each SLURM job
    # What this evaluation asks for, written whenever it changes (a dry run included): the
    # record of the validated config, for `nnfield verify`, and each study's plan (its points'
    # spec hashes and analysis options, an input of its analysis: nnfield.plan).
    try:
        nnconfig.write_record(CONFIG, layout.CONFIG_RECORD)
        for _study, _specs in POINTS.items():
            _analysis = CONFIG["studies"][_study].get("analysis", {})
            nnplan.write_plan(
                layout.plan_path(_study), nnplan.plan_text(_study, _specs.values(), _analysis)
            )
    except OSError as err:
        raise WorkflowError(f"cannot write the run record or a study plan under results/: {err}")


onsuccess:
    batching.remove_stale_task_files(BATCHES)


onerror:
    batching.remove_stale_task_files(BATCHES)


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        expand("results/{study}/{study}.nc", study=list(POINTS)),
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=("pdf", "png")),
