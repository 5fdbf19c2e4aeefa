# Helpers shared by the rules.


wildcard_constraints:
    study=r"[a-z]+",
    shard=r"\d+",
    point=r"[A-Za-z0-9_.-]+~[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.-]+~[A-Za-z0-9_.+-]+)*",
    figure=r"[a-z0-9_]+",


def point_spec(wildcards):
    """The JSON spec of one point (a rule param, so a changed point reruns its jobs)."""
    try:
        return POINTS[wildcards.study][wildcards.point].to_json()
    except KeyError:
        raise WorkflowError(
            f"no point {wildcards.point!r} in study {wildcards.study!r} of the configuration"
        ) from None


def shard_files(wildcards):
    spec = POINTS[wildcards.study][wildcards.point]
    return [
        f"results/{wildcards.study}/shards/{wildcards.point}/shard-{k}.nc"
        for k in range(spec.params["shards"])
    ]


def point_file(study, name, spec):
    """A point's raw data: the merged file, or for a single-shard point its only shard (no
    merge job: half the DAG, and no copy, for sweeps of many small points)."""
    if spec.params["shards"] == 1:
        return f"results/{study}/shards/{name}/shard-0.nc"
    return f"results/{study}/points/{name}.nc"


def point_files(wildcards):
    study = wildcards.study
    return [point_file(study, name, spec) for name, spec in POINTS[study].items()]


def analysis_options(wildcards):
    return json.dumps(CONFIG["studies"][wildcards.study].get("analysis", {}), sort_keys=True)


def study_dataset(wildcards):
    study = FIGURE_STUDY[wildcards.figure]
    return f"results/{study}/{study}.nc"
