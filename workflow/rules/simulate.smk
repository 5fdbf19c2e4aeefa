# Simulate jobs: each runs a batch of (point, shard) tasks of one study in one process and writes
# each task's file as a job of its own would (nnfield.batching).  Batch rules are named
# simulate_<study>_<key>; `--set-resources simulate:...` applies to all of them.  Short batches
# on CPU form the group `simulate` (nnfield.batching.submission_group): on a cluster,
# `--group-components simulate=N` puts N of them in one submission (the SLURM profile: 10).
#
# A batch's tasks travel in its task file (results/<study>/batches/<key>-<hash>.json), named by
# its content and written once, by the main Snakemake process, when the workflow is evaluated:
# the file is the job's input, so a changed batch reruns under any rerun trigger (mtime
# included), and Snakemake's metadata holds a digest per output rather than the batch's specs.
# Files no batch uses are removed when a run ends (Snakefile: onsuccess, onerror).


def _batch_resources(batch):
    """mem_mb and runtime (minutes, from the batch's cost estimate), growing with the attempt;
    the user's `set-resources` for `simulate` win."""

    def runtime(wildcards, attempt):
        return batch.runtime_minutes(attempt)

    resources = {
        "mem_mb": lambda wildcards, attempt: 2000 * attempt,
        "runtime": runtime,
        "gpu": 1 if DEVICE == "gpu" else 0,
    }
    return {**resources, **SIMULATE_OVERRIDES}


# `--set-resources simulate:...` as Snakemake parsed it: the unevaluated values of its Resource
# objects (tests/test_workflow.py checks constant values).
SIMULATE_OVERRIDES = {
    name: getattr(value, "_value", value)
    for name, value in workflow.resource_settings.overwrite_resources.get("simulate", {}).items()
}

for _batch in BATCHES:
    if workflow.is_main_process:  # not in the inner snakemake of each SLURM job
        try:
            batching.write_task_file(_batch)
        except OSError as err:
            raise WorkflowError(f"cannot write the batch task file {_batch.task_file}: {err}")

    rule:
        name:
            _batch.rule
        input:
            tasks=_batch.task_file,
        output:
            _batch.outputs,
        log:
            _batch.log,
        priority: min(99999, max(1, round(_batch.seconds)))  # longest first; analyses rank higher
        group:
            batching.submission_group(_batch, DEVICE)
        threads: 1
        resources:
            **_batch_resources(_batch),
        params:
            digest=_batch.digest,
            device=DEVICE,
        shell:
            "nnfield simulate --tasks {input.tasks:q} --digest {params.digest}"
            " --device {params.device} 2> {log:q}"
