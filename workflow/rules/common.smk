# Helpers shared by the rules.


wildcard_constraints:
    study=r"[a-z]+",
    shard=r"\d+",
    point=r"[A-Za-z0-9_.-]+~[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.-]+~[A-Za-z0-9_.+-]+)*",
    figure=r"[a-z0-9_]+",


def shard_files(wildcards):
    spec = POINTS[wildcards.study][wildcards.point]
    return [
        layout.shard_path(wildcards.study, wildcards.point, k) for k in range(spec.params["shards"])
    ]


def point_files(wildcards):
    """Merged point files, or the only shard of single-shard points (nnfield.engine.layout)."""
    return [layout.point_path(spec) for spec in POINTS[wildcards.study].values()]


def study_plan(wildcards):
    return nnplan.plan_file(wildcards.study, PLANS[wildcards.study])


def plan_digest(wildcards):
    return nnplan.plan_sha256(PLANS[wildcards.study])


def point_sha256(wildcards):
    return POINTS[wildcards.study][wildcards.point].sha256


def study_dataset(wildcards):
    return layout.study_path(FIGURE_STUDY[wildcards.figure])


def figure_caption(wildcards):
    """The figure's caption (its study's captions/<figure>.rst), for workflow/report/figure.rst."""
    return load_study(FIGURE_STUDY[wildcards.figure]).caption(wildcards.figure)
