rule merge:
    """Join the shards of one point (sums are kept per block; nothing is averaged)."""
    input:
        shard_files,
    output:
        "results/{study}/points/{point}.nc",
    log:
        "results/{study}/logs/merge/{point}.log",
    resources:
        mem_mb=lambda wildcards, attempt: 1000 * attempt,
        runtime=lambda wildcards, attempt: 5 * attempt,
    params:
        expect=point_sha256,
    shell:
        "nnfield merge --study {wildcards.study} --expect {params.expect} --out {output:q}"
        " {input:q} 2> {log:q}"
