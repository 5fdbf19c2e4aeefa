# nnfield workflow: config -> simulate (batches of point x shard tasks) -> merge (per point) ->
# analyze (per study) -> figures.  Generic over studies; see README.md.
from snakemake.utils import min_version

from nnfield import batching
from nnfield.engine import layout
from nnfield import config as nnconfig
from nnfield import plan as nnplan
from nnfield.studies import figure_study
from nnfield.studies import load as load_study
from nnfield.studies import figures as figure_names

min_version("9.0")


configfile: "config/config.yaml"


try:
    nnconfig.check_files(workflow.configfiles)  # no YAML aliases or duplicate keys
    CONFIG = nnconfig.validate(config, workflow.source_path("config/schema.yaml"))
except nnconfig.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

POINTS = nnconfig.expand(CONFIG)
BATCHES = batching.plan(POINTS, CONFIG["batching"])
DEVICE = CONFIG["device"]
FIGURES = figure_names(CONFIG)  # each study chooses from its figures (Study.figures_for)
FIGURE_STUDY = figure_study()  # figure -> the study whose dataset it draws


PLANS = {  # each study's plan: its points' spec hashes and analysis options (nnfield.plan)
    study: nnplan.plan_text(
        study, specs.values(), load_study(study).analysis_options(CONFIG["studies"][study])
    )
    for study, specs in POINTS.items()
}

RECORD = nnconfig.record_text(CONFIG)  # the run record, for `nnfield verify`

if workflow.is_main_process:  # not in the inner snakemake of each SLURM job
    try:  # written unless present (a dry run too): inputs of the analyses and of `record`
        for _study, _text in PLANS.items():
            nnplan.write_plan(_study, _text)
        nnplan.write_record_file(RECORD)
    except OSError as err:
        raise WorkflowError(f"cannot write a study plan or the run record under results/: {err}")


onstart:
    # after Snakemake took its lock, never on a dry run: the run record, and each study's
    # current plan, which orphaned jobs of other configs check before they write
    nnconfig.write_record(CONFIG, layout.CONFIG_RECORD)
    for _study, _text in PLANS.items():
        nnplan.make_current(_study, _text)


onsuccess:
    batching.remove_stale_task_files(BATCHES)
    nnplan.remove_stale(PLANS)
    nnplan.remove_stale_records(RECORD)


onerror:
    batching.remove_stale_task_files(BATCHES)
    nnplan.remove_stale(PLANS)
    nnplan.remove_stale_records(RECORD)


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"


localrules:
    record,


rule record:
    """The run record (results/config.yaml, for `nnfield verify`): a job of its own, so that a
    changed config is a run (and onstart records it) even when it changes no other output."""
    input:
        nnplan.record_file(RECORD),
    output:
        layout.CONFIG_RECORD,
    log:
        "results/logs/record.log",
    run:
        nnplan.copy_record(input[0], output[0], log[0])


rule all:
    default_target: True
    input:
        layout.CONFIG_RECORD,
        expand("results/{study}/{study}.nc", study=list(POINTS)),
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=layout.FIGURE_FORMATS),
