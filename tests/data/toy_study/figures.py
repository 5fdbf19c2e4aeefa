"""The toy study's figure: estimated over exact variance against the weight scale."""

from __future__ import annotations

import matplotlib.pyplot as plt


def toy_variance(ds):
    fig, ax = plt.subplots(figsize=(4, 3))
    ratio = ds["variance"] / ds["variance_exact"]
    ax.errorbar(ds["scale"], ratio, ds["variance_se"] / ds["variance_exact"], fmt="o")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("weight scale s")
    ax.set_ylabel("Var f / exact")
    fig.tight_layout()
    return fig


FIGURES = {"toy_variance": toy_variance}
