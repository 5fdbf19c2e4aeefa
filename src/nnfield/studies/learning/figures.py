"""Figure ``learning_thermo``: thermodynamics of noisy training.

One row per problem; columns: (a) entropy against step from a narrow and a broad initial
ensemble (dS/dt has either sign: the "second law of learning" is not the second law): quadratic,
the Gaussian entropy (exact family); barrier, k-NN filled and Gaussian open, with the exact S
and the Gaussian entropy of the exact covariance (its bias); teacher-student, of the outputs on
the probe inputs, k-NN filled (primary) and Gaussian open; (b) the total entropy production per
step Pi >= 0 (teacher-student: from the Gaussian-fit S, an approximation); (c) the free energy F
= <U> - T S (not monotone at finite step size: dF = -T Pi + <W_shadow>) or, without a
temperature (quadratic SGD), the accumulated medium entropy; for minibatch SGD at several added
Langevin temperatures T an inset shows the medium entropy per step over the second half of the
run (filled) and Q / T (open), Q the zero-temperature heat of the minibatch moves (one line per
width, depth, batch size, learning rate and start): the two differ by at most ln(number of
batches) per step, so SGD's medium entropy is the irreversibility of its minibatch moves in
units of the added T; the 1/T factor is set by the added noise, Q is SGD's own, and the medium
entropy grows like 1/T as T -> 0 only where Q tends to a nonzero limit; (d) the approach to the
chain's own stationary law, KL(p_t || pi_eta) (quadratic and barrier, with exact lines), T_conf
/ T (teacher-student), or, for training on data drawn per network, the information I(theta;
data) the parameters hold about their data under its Goldt-Seifert bound Delta S + Delta
S_medium; (e) the fluctuation theorem <exp(-Delta s_tot)> = 1: per interval with the exact
densities (quadratic, barrier), from step 0 with the exact initial density at both ends
(teacher-student, diamond: one step over every network), shown only where converged (effective
sample size at least a quarter of the samples), with that fraction in grey on the right axis.
Teacher-student and barrier curves are coloured per point; solid lines start narrow, dashed
start broad.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style
from nnfield.fluctuation import MIN_ESS_FRACTION, converged
from nnfield.studies.learning.claims_figures import seed_claims_learning

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
    if value is not None and value.ndim == 0:
        return None
    if value is None or not np.isfinite(value).any():
        return None
    err = pt[f"{name}_se"].values if f"{name}_se" in pt else np.zeros_like(value)
    exact = pt[f"{name}_exact"].values if f"{name}_exact" in pt else None
    return value, err, exact


def _label(pt, kind: str) -> str:
    temp = float(pt["temperature"])
    if kind in ("quadratic", "barrier"):
        opt = str(pt["optimizer"].values)
        t = f", T={temp:g}" if opt in ("sgld", "momentum") else ""
        how = "momentum, " if opt == "momentum" else ""
        return f"{pt['initial'].values} ({how}eta={float(pt['learning_rate']):g}{t})"
    opt = str(pt["optimizer"].values)
    batch = f" B={int(pt['batch_size'])}" if opt == "sgd" else ""
    return f"{opt}{batch} N={int(pt['width'])} L={int(pt['depth'])} T={temp:g}"


def _color(kind: str, pt, label: str, groups: dict) -> str:
    if kind == "quadratic":
        return INITIAL_COLORS.get(str(pt["initial"].values), "k")
    return groups.setdefault(label, PALETTE[len(groups) % len(PALETTE)])


def _panels(kind: str, pt) -> list[tuple[int, str, str, bool]]:
    """(column, variable, axis 'step' or 'interval', filled) drawn for one point."""
    entropy = {"quadratic": [(0, "entropy", "step", True)],
               "barrier": [(0, "entropy", "step", True), (0, "entropy_gaussian", "step", False)],
               "teacher_student": [(0, "entropy_function_knn", "step", True),
                                   (0, "entropy_function", "step", False)]}[kind]  # fmt: skip
    pi = [(1, "pi", "interval", True)]
    if kind == "barrier":
        pi.append((1, "pi_gaussian", "interval", False))
    third = "free_energy" if _values(pt, "free_energy") else "medium"
    if _values(pt, "information"):  # quenched data: the Goldt-Seifert bound in (d)
        fourth = [(3, "information", "step", True), (3, "information_bound", "step", False)]
    else:
        name = "tconf_ratio" if kind == "teacher_student" else "kl_to_stationary"
        fourth = [(3, name, "step", True)]
    return [*entropy, *pi, (2, third, "step", True), *fourth]


def _fluctuation(ax, pt, kind: str, color: str, dashed: bool, twin) -> None:
    """Column (e): the fluctuation theorem where its weights have converged, and the effective
    sample size fraction that decides it (grey, right axis) everywhere."""
    samples = int(pt["ift_samples"]) if "ift_samples" in pt else 0
    if kind == "teacher_student":
        got = _values(pt, "ift_from_start")  # from step 1: at step 0 it is 1 identically
        got = None if got is None else tuple(None if a is None else a[1:] for a in got)
        x = pt["step"].values[1:]
        ess = pt["ift_from_start_ess"].values[1:] if "ift_from_start_ess" in pt else None
        if "ift_one_step" in pt and np.isfinite(float(pt["ift_one_step"])):
            n = int(pt["ift_one_step_samples"])
            if converged(float(pt["ift_one_step_ess"]), n):
                ax.errorbar([1], [float(pt["ift_one_step"])], yerr=[float(pt["ift_one_step_se"])],
                            fmt="D", ms=4, color=color)  # fmt: skip
            twin.plot([1], [float(pt["ift_one_step_ess"]) / n], "D", color="0.6", ms=3)
    else:
        got = _values(pt, "ift")
        x = pt["interval"].values
        ess = pt["ift_ess"].values if "ift_ess" in pt else None
    if got is None or ess is None or samples == 0:
        return
    value, err, _ = got
    trusted = converged(ess, samples)
    _series(ax, x, np.where(trusted, value, np.nan), err, None, color, None, True, dashed)
    ok = np.isfinite(ess)
    twin.plot(x[ok], ess[ok] / samples, ls="--" if dashed else ":", color="0.6", lw=0.8)


def _sgd_temperature_inset(ax, sel: xr.Dataset) -> None:
    """Inset of column (c) for minibatch SGD at several added temperatures T: the medium
    entropy per step (filled) and Q / T (open), Q the zero-temperature heat of the minibatch
    moves, both over the second half of the run, one line per (width, depth, batch size,
    learning rate, start); log axes, symmetric-log on y where a rate is not positive."""
    if "medium_rate" not in sel:
        return
    sgd = np.flatnonzero(
        (sel["optimizer"].values == "sgd") & np.isfinite(sel["medium_rate"].values)
    )
    keys = ("width", "depth", "batch_size", "learning_rate", "initial")
    groups: dict = {}
    for i in sgd:
        groups.setdefault(tuple(str(sel[k].values[i]) for k in keys), []).append(i)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        return
    inset = ax.inset_axes((0.56, 0.55, 0.4, 0.4))
    lowest, positive = np.inf, True
    for n, members in enumerate(groups.values()):
        idx = np.asarray(members)[np.argsort(sel["temperature"].values[members])]
        temps = sel["temperature"].values[idx]
        rate, rate_se = (sel[k].values[idx] for k in ("medium_rate", "medium_rate_se"))
        heat, heat_se = (sel[k].values[idx] for k in ("heat_limit_rate", "heat_limit_rate_se"))
        color = PALETTE[n % len(PALETTE)] if len(groups) > 1 else "k"
        inset.errorbar(temps, rate, yerr=rate_se, fmt="o-", ms=3, color=color, lw=0.7,
                       label=r"$\langle\Delta s_m\rangle$/step" if n == 0 else None)  # fmt: skip
        inset.errorbar(temps, heat / temps, yerr=heat_se / temps, fmt="s--", ms=3, mfc="none",
                       color=color, lw=0.7, label="Q/T" if n == 0 else None)  # fmt: skip
        both = np.concatenate([rate, heat / temps])
        lowest = min(lowest, np.min(np.abs(both[both != 0]), initial=np.inf))
        positive &= bool(np.all(both > 0))
    inset.set_xscale("log")
    if positive:
        inset.set_yscale("log")
    else:  # a rate <= 0 would vanish from a log axis
        inset.set_yscale("symlog", linthresh=lowest if np.isfinite(lowest) else 1e-3)
    inset.set_xlabel("added T (SGD)", fontsize="x-small", labelpad=1)
    inset.tick_params(which="both", labelsize="xx-small")  # minor labels of a log axis too
    inset.legend(fontsize="xx-small", loc="upper right")


def _row(axes, twin, sel: xr.Dataset, kind: str) -> None:
    groups: dict = {}
    # the legend names the solid (narrow-start) lines; a row that starts only broad names its
    # dashed ones, else its legend would be empty
    solid = kind == "quadratic" or bool((sel["initial"].values != "broad").any())
    for i in range(sel.sizes["point"]):
        pt = sel.isel(point=i)
        label = _label(pt, kind)
        color = _color(kind, pt, label, groups)
        dashed = kind != "quadratic" and str(pt["initial"].values) == "broad"
        show = label if not (dashed and solid) else None
        axis = {"step": pt["step"].values, "interval": pt["interval"].values}
        for col, name, where, filled in _panels(kind, pt):
            got = _values(pt, name)
            if got is None:
                continue
            keep = np.isfinite(got[0])
            value, err, exact = (None if a is None else a[keep] for a in got)
            _series(axes[col], axis[where][keep], value, err, exact, color,
                    show if (col, filled) == (0, True) else None, filled, dashed)  # fmt: skip
        _fluctuation(axes[4], pt, kind, color, dashed, twin)
    _sgd_temperature_inset(axes[2], sel)


ENTROPY_LABELS = {
    "quadratic": "entropy S (nats)",
    "barrier": "S: k-NN (filled), Gaussian (open)",
    "teacher_student": "output entropy S_f: k-NN (filled),\nGaussian (open)",
}
PI_LABELS = {
    "quadratic": r"$\Pi$ per step (nats)",
    "barrier": r"$\Pi$: k-NN (filled), Gaussian (open)",
    "teacher_student": r"$\Pi$ from the Gaussian-fit S (nats)",
}


def learning_thermo(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    style.apply()
    problems = list(dict.fromkeys(str(p) for p in ds["problem"].values))
    fig, axes = plt.subplots(len(problems), COLUMNS, figsize=(19, 3.5 * len(problems)),
                             squeeze=False)  # fmt: skip
    for row, name in enumerate(problems):
        sel = ds.isel(point=np.flatnonzero(ds["problem"].values == name))
        kind = str(sel["kind"].values[0]) if "kind" in sel else "quadratic"
        twin = axes[row, 4].twinx()
        _row(axes[row], twin, sel, kind)
        has_free = "free_energy" in sel and np.isfinite(sel["free_energy"].values).any()
        axes[row, 0].set_ylabel(f"{name}\n{ENTROPY_LABELS[kind]}")
        axes[row, 1].set_ylabel(PI_LABELS[kind])
        axes[row, 1].set_yscale("symlog", linthresh=1e-3)
        axes[row, 1].axhline(0, color="0.5", lw=0.7, gid="reference")
        if has_free:
            third = "free energy F (Gaussian-fit S)" if kind == "teacher_student" else (
                "free energy F")  # fmt: skip
        else:
            third = "medium entropy (kernel log-ratio, nats)"
        axes[row, 2].set_ylabel(third)
        if "information" in sel and np.isfinite(sel["information"].values).any():
            axes[row, 3].set_yscale("symlog", linthresh=0.1)
            axes[row, 3].set_ylabel(r"$I(\theta; {\rm data})$ (filled) $\leq$"
                                    "\n" r"$\Delta S + \Delta S_m$ (open, nats)")  # fmt: skip
        elif kind == "teacher_student":
            axes[row, 3].axhline(1, color="0.5", lw=0.7, gid="reference")
            axes[row, 3].set_yscale("log")
            axes[row, 3].set_ylabel(r"$T_{\rm conf}/T$")
        else:
            axes[row, 3].set_yscale("symlog", linthresh=1e-3)
            axes[row, 3].set_ylabel(r"KL$(p_t \,\|\, \pi_\eta)$ (nats)")
        axes[row, 4].axhline(1, color="0.5", lw=0.7, gid="reference")
        axes[row, 4].set_ylabel(r"$\langle e^{-\Delta s_{\rm tot}}\rangle$" + (
            " from step 0" if kind == "teacher_student" else " per interval"))  # fmt: skip
        twin.set_ylim(0, 1.05)
        twin.axhline(MIN_ESS_FRACTION, color="0.75", lw=0.6, gid="reference")
        twin.set_ylabel("ESS / samples (grey)", color="0.45", fontsize="small")
        for ax in axes[row]:
            ax.set_xlabel("step")
        if axes[row, 0].get_legend_handles_labels()[1]:  # no empty legend box
            axes[row, 0].legend(loc="best", fontsize="x-small")
    titles = ("(a) entropy", r"(b) entropy production $\Pi \geq 0$", "(c) free energy / heat",
              "(d) stationary law / information", "(e) fluctuation theorem")  # fmt: skip
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title, fontsize="medium")
    fig.suptitle(
        "Noisy training as stochastic thermodynamics (points: Monte Carlo; lines: exact; "
        "teacher-student and barrier: solid from narrow, dashed from broad)"
    )
    style.layout(fig, rect=(0, 0, 1, 0.97))
    return fig


FIGURES = {"learning_thermo": learning_thermo, "seed_claims_learning": seed_claims_learning}
"""Figure name -> function of the study dataset."""
