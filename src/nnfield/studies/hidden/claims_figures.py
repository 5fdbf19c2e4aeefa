"""Figure ``seed_claims``: claims of Vanchurin's "The world as a neural network" (2020) measured
on the hidden study's dynamics (docs/hidden.md, "Production and the metric").

(a) production per step and neuron of coupled rings whose couplings C share det(I + eps C),
    against eps: Monte Carlo points with jackknife errors, lines exact (Lyapunov solution of
    the one W of each ensemble);
(b) every equal-det pair: the measured difference of production in standard errors, against
    the claim's prediction 0 (filled) and against the exact difference (open), with the
    Bonferroni critical value.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style


def _panel_production(ax, ds: xr.Dataset) -> None:
    from nnfield.studies.hidden.figures import MARKERS, PALETTE, _curve, _empty, _errorbar, _points

    if "metric_pair" not in ds.dims:
        return _empty(ax, "no coupled rings with equal det(I + eps C)\nand different C configured")
    names = list(dict.fromkeys([*ds["metric_ensemble_a"].values, *ds["metric_ensemble_b"].values]))
    for i, name in enumerate(names):
        one = _points(ds, ensemble=name).sortby("coupling")
        color = PALETTE[i % len(PALETTE)]
        _curve(ax, ds, name, "coupling", color)
        label = f"{name}: C = {one['coupling_matrix'].values[0]}"
        _errorbar(ax, one["coupling"].values, one["ep"].values, one["ep_se"].values, color,
                  MARKERS[i % len(MARKERS)], label)  # fmt: skip
    eps, det = ds["metric_coupling"].values.tolist(), ds["metric_det"].values.tolist()
    by_eps = dict(sorted(zip(eps, det, strict=True)))  # equal to rounding within each eps
    dets = ", ".join(f"{d:.4g} at eps = {e:g}" for e, d in by_eps.items())
    ax.set(xlabel="coupling eps", ylabel="entropy production / step / neuron",
           title=f"(a) equal det(I + eps C): {dets}")  # fmt: skip
    ax.legend()


def _panel_pairs(ax, ds: xr.Dataset) -> None:
    from nnfield.studies.hidden.figures import _empty

    if "metric_pair" not in ds.dims:
        return _empty(ax, "no equal-det pairs")
    n = ds.sizes["metric_pair"]
    y = np.arange(n)
    claim, ref = ds["metric_claim_z"].values, ds["metric_z"].values
    crit = float(ds["metric_zcrit"].values[0])
    ax.plot(claim, y, "o", color="#d62728", label="(measured diff - 0) / s.e.: the claim")
    ax.plot(ref, y, "o", mfc="none", color="black", label="(measured - exact diff) / s.e.")
    for sign in (-1, 1):
        ax.axvline(sign * crit, color="0.5", ls=":", lw=0.9,
                   label=f"critical {crit:.2f}" if sign > 0 else None)  # fmt: skip
    labels = [f"{a} - {b}, eps = {e:g}" for a, b, e in zip(
        ds["metric_ensemble_a"].values, ds["metric_ensemble_b"].values,
        ds["metric_coupling"].values, strict=True)]  # fmt: skip
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("symlog", linthresh=10)
    ax.margins(x=0.08)
    ax.set(xlabel="z (symlog beyond |z| = 10)", title="(b) production difference of each pair")
    ax.legend(fontsize=7)


def seed_claims(ds: xr.Dataset):
    """The figure from the ``hidden`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    _panel_production(axes[0], ds)
    _panel_pairs(axes[1], ds)
    verdict = ds.attrs.get("claim_metric_verdict", "")
    fig.suptitle("Is entropy production a function of the metric g = I + eps C?"
                 + (f"\n{verdict.split(';')[0]}" if verdict else ""), fontsize=10)  # fmt: skip
    style.layout(fig)
    return fig
