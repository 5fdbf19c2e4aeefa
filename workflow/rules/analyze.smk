rule analyze:
    """Estimates with jackknife errors and exact-theory columns for a whole study."""
    input:
        point_files,
    output:
        "results/{study}/{study}.nc",
    log:
        "results/{study}/logs/analyze.log",
    params:
        options=analysis_options,
    priority: 100000  # as soon as ready: a finished study never waits for others
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    conda:
        "../envs/nnfield.yaml"
    shell:
        "nnfield analyze --study {wildcards.study} --options {params.options:q}"
        " --out {output:q} {input:q} 2> {log:q}"
