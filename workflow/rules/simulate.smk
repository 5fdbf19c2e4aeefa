rule simulate:
    """Raw block sums for one shard of one sweep point (JAX; CPU or GPU)."""
    output:
        "results/{study}/shards/{point}/shard-{shard}.nc",
    log:
        "results/{study}/logs/simulate/{point}/shard-{shard}.log",
    params:
        spec=point_spec,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/nnfield.yaml"
    shell:
        "nnfield simulate --spec {params.spec:q} --shard {wildcards.shard} --out {output:q}"
        " 2> {log:q}"
