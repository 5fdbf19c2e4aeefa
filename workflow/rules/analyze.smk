rule analyze:
    """Estimates with jackknife errors and exact-theory columns for a whole study, from exactly
    the points of its plan (with their specs) and with the plan's analysis options."""
    input:
        plan=study_plan,
        points=point_files,
    output:
        "results/{study}/{study}.nc",
    log:
        "results/{study}/logs/analyze.log",
    priority: 100000  # as soon as ready: a finished study never waits for others
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        digest=plan_digest,
    shell:
        "nnfield analyze --study {wildcards.study} --plan {input.plan:q} --digest {params.digest}"
        " --out {output:q} {input.points:q} 2> {log:q}"
