"""Figure ``learning_thermo``: thermodynamics of noisy training on a quadratic loss.

One row per problem; columns: (a) entropy S of the trainable variables against step for the
narrow and the broad initial ensemble (dS/dt has either sign: the "second law of learning" is
not the second law); (b) the total entropy production per step Pi >= 0; (c) the free energy
F = <U> - T S decreasing (SGLD) or the accumulated medium entropy (SGD); (d) T_conf / T -> 1
(SGLD).  Points: Monte Carlo with jackknife errors; lines: exact linear-Gaussian theory.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style

INITIAL_COLORS = {"narrow": "#1f77b4", "broad": "#d62728"}


def _series(ax, x, value, err, exact, color, label):
    ok = np.isfinite(value)
    ax.errorbar(x[ok], value[ok], yerr=err[ok], fmt="o", ms=3, color=color, label=label)
    if exact is not None:
        ax.plot(x, exact, "-", color=color, lw=0.9)


def learning_thermo(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    style.apply()
    problems = list(dict.fromkeys(str(p) for p in ds["problem"].values))
    fig, axes = plt.subplots(len(problems), 4, figsize=(15, 3.4 * len(problems)), squeeze=False)
    for row, name in enumerate(problems):
        sel = ds.isel(point=np.flatnonzero(ds["problem"].values == name))
        sgld = str(sel["optimizer"].values[0]) == "sgld"
        for i in range(sel.sizes["point"]):
            pt = sel.isel(point=i)
            initial = str(pt["initial"].values)
            color = INITIAL_COLORS.get(initial, "k")
            label = f"{initial} (eta={float(pt['learning_rate']):g}"
            label += f", T={float(pt['temperature']):g})" if sgld else ")"
            steps, mids = pt["step"].values, pt["interval"].values
            _series(axes[row, 0], steps, pt["entropy"].values, pt["entropy_se"].values,
                    pt["entropy_exact"].values, color, label)  # fmt: skip
            _series(axes[row, 1], mids, pt["pi"].values, pt["pi_se"].values,
                    pt["pi_exact"].values, color, label)  # fmt: skip
            if sgld:
                _series(
                    axes[row, 2],
                    steps,
                    pt["free_energy"].values,
                    pt["free_energy_se"].values,
                    pt["free_energy_exact"].values,
                    color,
                    label,
                )
                _series(
                    axes[row, 3],
                    steps,
                    pt["tconf_ratio"].values,
                    pt["tconf_ratio_se"].values,
                    pt["tconf_ratio_exact"].values,
                    color,
                    label,
                )
            else:
                _series(axes[row, 2], steps, pt["medium"].values, pt["medium_se"].values,
                        pt["medium_exact"].values, color, label)  # fmt: skip
        axes[row, 0].set_ylabel(f"{name}\nentropy S (nats)")
        axes[row, 1].set_ylabel(r"$\Pi$ per step (nats)")
        axes[row, 1].set_yscale("symlog", linthresh=1e-3)
        axes[row, 1].axhline(0, color="0.5", lw=0.7)
        axes[row, 2].set_ylabel(r"free energy $\langle U\rangle - TS$" if sgld
                                else "medium entropy (heat/T, nats)")  # fmt: skip
        if sgld:
            axes[row, 3].axhline(1, color="0.5", lw=0.7)
            axes[row, 3].set_ylabel(r"$T_{\rm conf}/T$")
            axes[row, 3].set_yscale("log")
        else:
            axes[row, 3].set_visible(False)
        for ax in axes[row]:
            ax.set_xlabel("step")
        axes[row, 0].legend(loc="best")
    axes[0, 0].set_title("(a) entropy of the trainable variables")
    axes[0, 1].set_title(r"(b) total entropy production $\Pi \geq 0$")
    axes[0, 2].set_title("(c) free energy / heat")
    axes[0, 3].set_title(r"(d) configurational temperature")
    fig.suptitle("Noisy training as stochastic thermodynamics (points: Monte Carlo; lines: exact)")
    fig.tight_layout()
    return fig
