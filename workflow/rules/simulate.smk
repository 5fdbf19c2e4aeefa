# Simulate jobs: each runs a batch of (point, shard) tasks of one study in one process and writes
# each task's file as a job of its own would (nnfield.batching).  Batch rules are named
# simulate_<study>_<k>; `--set-resources simulate:...` applies to all of them.


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
# objects (an expression such as 2*attempt stays one; tests/test_workflow.py checks this).
SIMULATE_OVERRIDES = {
    name: getattr(value, "_value", value)
    for name, value in workflow.resource_settings.overwrite_resources.get("simulate", {}).items()
}

for _batch in BATCHES:

    rule:
        name:
            _batch.rule
        output:
            _batch.outputs,
        log:
            _batch.log,
        params:
            tasks=_batch.arguments(),
            device=DEVICE,
        threads: 1
        resources:
            **_batch_resources(_batch),
        conda:
            "../envs/nnfield.yaml"
        shell:
            "nnfield simulate {params.tasks} --device {params.device} 2> {log:q}"
