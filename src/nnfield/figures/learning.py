"""Figure ``learning_thermo``: thermodynamics of noisy training.

One row per problem; columns: (a) entropy against step (quadratic: of the trainable variables;
teacher-student: of the outputs on the probe inputs, Gaussian filled and k-NN open markers) from
a narrow and a broad initial ensemble (dS/dt has either sign: the "second law of learning" is not
the second law); (b) the total entropy production per step Pi >= 0; (c) the free energy
F = <U> - T S (not monotone in general at finite step size: dF = -T Pi + <W_shadow>) or the
accumulated medium entropy (quadratic SGD);
(d) T_conf / T -> 1; (e) the fluctuation-theorem average <exp(-Delta s_tot)> = 1 per interval,
shown where it has converged (nnfield.fluctuation.converged: effective sample size at least a
quarter of the samples).  Points: Monte Carlo with errors;
lines: exact linear-Gaussian theory (quadratic problems).  Teacher-student curves are coloured by
(width, T, optimizer, batch size); solid lines start narrow, dashed start broad.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style
from nnfield.fluctuation import MIN_ESS_FRACTION, converged

INITIAL_COLORS = {"narrow": "#1f77b4", "broad": "#d62728"}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
COLUMNS = 5


def _series(ax, x, value, err, exact, color, label, filled=True, dashed=False):
    ok = np.isfinite(value)
    if not ok.any():
        return
    ax.errorbar(x[ok], value[ok], yerr=err[ok], fmt="o" if filled else "s", ms=3, color=color,
                mfc=color if filled else "none", label=label, ls="--" if dashed else "-",
                lw=0.6)  # fmt: skip
    if exact is not None and np.isfinite(exact).any():
        ax.plot(x, exact, "-", color=color, lw=0.9)


def _values(pt, name):
    value = pt[name].values if name in pt else None
    if value is None or not np.isfinite(value).any():
        return None
    err = pt[f"{name}_se"].values if f"{name}_se" in pt else np.zeros_like(value)
    exact = pt[f"{name}_exact"].values if f"{name}_exact" in pt else None
    return value, err, exact


def _label(pt, kind: str) -> str:
    temp = float(pt["temperature"])
    if kind == "quadratic":
        t = f", T={temp:g}" if str(pt["optimizer"].values) == "sgld" else ""
        return f"{pt['initial'].values} (eta={float(pt['learning_rate']):g}{t})"
    opt = str(pt["optimizer"].values)
    batch = f" B={int(pt['batch_size'])}" if opt == "sgd" else ""
    return f"{opt}{batch} N={int(pt['width'])} L={int(pt['depth'])} T={temp:g}"


def _row(axes, sel: xr.Dataset, kind: str) -> None:
    groups = {}
    for i in range(sel.sizes["point"]):
        pt = sel.isel(point=i)
        label = _label(pt, kind)
        if kind == "quadratic":
            color = INITIAL_COLORS.get(str(pt["initial"].values), "k")
        else:
            color = groups.setdefault(label, PALETTE[len(groups) % len(PALETTE)])
        dashed = kind != "quadratic" and str(pt["initial"].values) == "broad"
        show = label if kind == "quadratic" or not dashed else None
        steps, mids = pt["step"].values, pt["interval"].values
        ok_steps = np.isfinite(pt["loss"].values)
        ok_mids = np.isfinite(pt["pi"].values) if "pi" in pt else np.zeros(mids.size, bool)
        entropy = "entropy" if kind == "quadratic" else "entropy_function"
        panels = [
            (0, entropy, steps, True),
            (1, "pi", mids, True),
            (2, "free_energy" if _values(pt, "free_energy") else "medium", steps, True),
            (3, "tconf_ratio", steps, True),
        ]
        if kind != "quadratic":
            panels.append((0, "entropy_function_knn", steps, False))
        for col, name, x, filled in panels:
            got = _values(pt, name)
            if got is None:
                continue
            keep = ok_mids if x is mids else ok_steps
            value, err, exact = (None if a is None else a[keep] for a in got)
            _series(axes[col], x[keep], value, err, exact, color,
                    show if (col, filled) == (0, True) else None, filled, dashed)  # fmt: skip
        got = _values(pt, "ift")
        if got is not None:
            value, err, _ = got
            trusted = converged(pt["ift_ess"].values, int(pt["ift_samples"]))
            value = np.where(trusted, value, np.nan)
            _series(axes[4], mids, value, err, None, color, None, True, dashed)


def learning_thermo(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    style.apply()
    problems = list(dict.fromkeys(str(p) for p in ds["problem"].values))
    fig, axes = plt.subplots(len(problems), COLUMNS, figsize=(18, 3.4 * len(problems)),
                             squeeze=False)  # fmt: skip
    for row, name in enumerate(problems):
        sel = ds.isel(point=np.flatnonzero(ds["problem"].values == name))
        kind = str(sel["kind"].values[0]) if "kind" in sel else "quadratic"
        _row(axes[row], sel, kind)
        quadratic = kind == "quadratic"
        isotropic = np.isfinite(sel["free_energy"].values).any() if "free_energy" in sel else False
        axes[row, 0].set_ylabel(f"{name}\n" + ("entropy S (nats)" if quadratic else
                                "output entropy S_f (nats)"))  # fmt: skip
        axes[row, 1].set_ylabel(r"$\Pi$ per step (nats)")
        axes[row, 1].set_yscale("symlog", linthresh=1e-3)
        axes[row, 1].axhline(0, color="0.5", lw=0.7)
        axes[row, 2].set_ylabel(r"free energy $F$" if isotropic
                                else "medium entropy (heat/T, nats)")  # fmt: skip
        if axes[row, 3].has_data():
            axes[row, 3].axhline(1, color="0.5", lw=0.7)
            axes[row, 3].set_yscale("log")
        else:
            axes[row, 3].text(0.5, 0.5, "no temperature", ha="center", va="center",
                              transform=axes[row, 3].transAxes, fontsize="small")  # fmt: skip
        axes[row, 3].set_ylabel(r"$T_{\rm conf}/T$")
        if not axes[row, 4].has_data():
            axes[row, 4].text(0.5, 0.5, "no converged interval: exp(-Delta s_tot) is dominated\n"
                              "by rare samples (or, teacher-student, the Gaussian fit\nof p_t "
                              "is not the density)", ha="center", va="center",
                              transform=axes[row, 4].transAxes, fontsize="small")  # fmt: skip
        axes[row, 4].axhline(1, color="0.5", lw=0.7)
        axes[row, 4].set_ylabel(r"$\langle e^{-\Delta s_{\rm tot}}\rangle$")
        for ax in axes[row]:
            ax.set_xlabel("step")
        axes[row, 0].legend(loc="best", fontsize="x-small")
    axes[0, 0].set_title("(a) entropy")
    axes[0, 1].set_title(r"(b) total entropy production $\Pi \geq 0$")
    axes[0, 2].set_title("(c) free energy / heat")
    axes[0, 3].set_title(r"(d) configurational temperature")
    axes[0, 4].set_title(f"(e) fluctuation theorem (ESS >= {MIN_ESS_FRACTION:g} x samples)")
    fig.suptitle("Noisy training as stochastic thermodynamics (points: Monte Carlo; lines: exact; "
                 "teacher-student: solid from narrow, dashed from broad)")  # fmt: skip
    fig.tight_layout()
    return fig
