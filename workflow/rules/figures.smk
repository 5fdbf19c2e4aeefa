rule figure:
    """One figure (PDF and PNG), a pure function of its study dataset."""
    input:
        study_dataset,
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="PDF",
        ),
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="PNG",
        ),
    log:
        "results/figures/logs/{figure}.log",
    priority: 100000  # as soon as ready: a finished study never waits for others
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    params:
        caption=figure_caption,
    shell:
        "nnfield figure --name {wildcards.figure} --data {input:q}"
        " --out {output.pdf:q} {output.png:q} 2> {log:q}"
