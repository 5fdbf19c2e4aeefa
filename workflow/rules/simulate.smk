rule simulate:
    """Raw block sums for one shard of one sweep point (JAX; CPU or GPU)."""
    output:
        "results/{study}/shards/{point}/shard-{shard}.nc",
    log:
        "results/{study}/logs/simulate/{point}/shard-{shard}.log",
    params:
        spec=point_spec,
        device=DEVICE,
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=1 if DEVICE == "gpu" else 0,
    conda:
        "../envs/nnfield.yaml"
    shell:
        "nnfield simulate --spec {params.spec:q} --shard {wildcards.shard} --out {output:q}"
        " --device {params.device} 2> {log:q}"
