# nnfield workflow: config -> simulate (batches of point x shard tasks) -> merge (per point) ->
# analyze (per study) -> figures.  Generic over studies; see README.md.
import json

from snakemake.utils import min_version, validate

from nnfield import batching, layout
from nnfield import config as nnconfig
from nnfield.studies import FIGURE_STUDY

min_version("9.0")


configfile: "config/config.yaml"


try:
    CONFIG = nnconfig.validate(config, workflow.source_path("config/schema.yaml"))
except nnconfig.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, "config/schema.yaml", set_default=True)

POINTS = nnconfig.expand(CONFIG)
BATCHES = batching.plan(POINTS, CONFIG["batching"])
DEVICE = CONFIG["device"]
FIGURES = [name for name, study in FIGURE_STUDY.items() if study in POINTS]


onstart:
    # the validated configuration of this run, for `nnfield verify results/`
    nnconfig.write_record(CONFIG, layout.CONFIG_RECORD)


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
