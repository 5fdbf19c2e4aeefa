"""Is entropy production a function of the metric?  (docs/hidden.md, "Production and the metric")

Vanchurin's "The world as a neural network" (2020) reads the coupling between subsystems as a
metric and states that entropy production is a local function of it.  For coupled rings,
W = I_D (x) a P + eps C (x) I_m (or a (I + eps C) (x) P), identify the constant metric
g = I + eps C.  The only density built from a metric without derivatives is sqrt(det g), so the
reading tested here is "production = F(det g)": two couplings C_A, C_B with
det(I + eps C_A) = det(I + eps C_B) would produce the same entropy.

:func:`metric_pairs` finds every such pair among a study's coupled-ring points (the same ring
kind, linear f, same n, D, a, g, s and eps; det equal to rounding, an identity checked against a
rounding bound, not a z-test) and compares the two productions: the Monte Carlo difference
against the exact one (the measurement), and against 0 (the claim).  The two points are
independent simulations, so the error of the difference is the root sum of squares of their
jackknife errors, with the smaller of their jackknife dof (blocks - 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.studies.hidden.weights import RING_KINDS, chain_coupling, coupling_label

META = {
    "metric_ensemble_a": ("first coupled-ring ensemble of the equal-det pair", "1"),
    "metric_ensemble_b": ("second coupled-ring ensemble of the equal-det pair", "1"),
    "metric_coupling_matrix_a": ("coupling matrix C_A (name, or rows as JSON)", "1"),
    "metric_coupling_matrix_b": ("coupling matrix C_B (name, or rows as JSON)", "1"),
    "metric_coupling": ("coupling eps of both points", "1"),
    "metric_contraction": ("contraction a of both points", "1"),
    "metric_det": ("det(I + eps C), equal for both couplings (to rounding)", "1"),
    "metric_det_gap": ("|det(I + eps C_A) - det(I + eps C_B)|, at most its rounding bound", "1"),
    "metric_ep_a": ("Monte Carlo production per step and neuron of the first point", "nats"),
    "metric_ep_b": ("Monte Carlo production per step and neuron of the second point", "nats"),
    "metric_ep_a_exact": ("exact production per step and neuron of the first point", "nats"),
    "metric_ep_b_exact": ("exact production per step and neuron of the second point", "nats"),
    "metric_diff": ("Monte Carlo ep_a - ep_b", "nats"),
    "metric_diff_se": ("standard error of metric_diff (independent points: root sum of "
                       "squares of their jackknife errors)", "nats"),
    "metric_diff_exact": ("exact ep_a - ep_b (the claim predicts 0)", "nats"),
    "metric_diff_rounding": ("rounding bound on metric_diff_exact where the exact difference "
                             "is 0 by symmetry", "nats"),
    "metric_z": ("(metric_diff - metric_diff_exact) / metric_diff_se: the measurement against "
                 "the exact reference", "1"),
    "metric_claim_z": ("metric_diff / metric_diff_se: the measurement against the claim's "
                       "prediction 0", "1"),
    "metric_zcrit": ("Student-t critical value, Bonferroni over the pairs, at the default "
                     "significance (dof: the smaller blocks - 1 of the two points)", "1"),
    "metric_claim_rejected": ("1 where |metric_claim_z| > metric_zcrit: equal det(I + eps C), "
                              "measurably different production", "1"),
}  # fmt: skip


def _det_metric(c: np.ndarray, eps: float) -> tuple[float, float]:
    """det(I + eps C) and a rounding bound on it (LU in float64)."""
    g = np.eye(len(c)) + eps * c
    scale = float(np.prod(np.linalg.norm(g, axis=1)))  # Hadamard's bound on |det g|
    return float(np.linalg.det(g)), 16 * len(c) * np.finfo(float).eps * max(scale, 1.0)


def metric_pairs(study: xr.Dataset, params: Sequence[Mapping]) -> xr.Dataset:
    """Every pair of coupled-ring points with equal det(I + eps C) and different C (see the
    module docstring), over the dimension ``metric_pair``; an empty dataset if none."""
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        if (p["weights"] not in RING_KINDS or p["activation"] != "linear" or p["bias"]
                or not p["coupling"]):  # fmt: skip
            continue
        key = (p["weights"], *(float(p[k]) for k in ("neurons", "subsystems", "contraction",
                                                      "gain", "noise", "coupling")))  # fmt: skip
        groups.setdefault(key, []).append(i)
    rows = []
    for key, idx in groups.items():
        eps = key[-1]
        for x, i in enumerate(idx):
            for j in idx[x + 1 :]:
                pi, pj = params[i], params[j]
                ci = chain_coupling(int(pi["subsystems"]), pi["coupling_matrix"])
                cj = chain_coupling(int(pj["subsystems"]), pj["coupling_matrix"])
                if np.array_equal(ci, cj):
                    continue
                (di, bi), (dj, bj) = _det_metric(ci, eps), _det_metric(cj, eps)
                if abs(di - dj) <= bi + bj:
                    rows.append((i, j, eps, di, abs(di - dj)))
    if not rows:
        return xr.Dataset()
    dof = min(stats.jackknife_dof(int(p["networks"]) // int(p["block_size"]))
              for r in rows for p in (params[r[0]], params[r[1]]))  # fmt: skip
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, len(rows), dof)
    ep, se, exact = (study[v].values for v in ("ep", "ep_se", "ep_exact"))
    a, b = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    diff, diff_se, diff_exact = ep[a] - ep[b], np.hypot(se[a], se[b]), exact[a] - exact[b]
    # the exact productions solve two Lyapunov equations; their difference is 0 by symmetry
    # for orthogonally similar couplings, up to this many units in the last place
    rounding = 64 * np.finfo(float).eps * np.maximum(np.abs(exact[a]), np.abs(exact[b]))
    claim_z = diff / diff_se
    pair = lambda k: [params[r[k]] for r in rows]  # noqa: E731
    return xr.Dataset({
        "metric_ensemble_a": (("metric_pair",), [p["ensemble"] for p in pair(0)]),
        "metric_ensemble_b": (("metric_pair",), [p["ensemble"] for p in pair(1)]),
        "metric_coupling_matrix_a": (("metric_pair",),
                                     [coupling_label(p["coupling_matrix"]) for p in pair(0)]),
        "metric_coupling_matrix_b": (("metric_pair",),
                                     [coupling_label(p["coupling_matrix"]) for p in pair(1)]),
        "metric_coupling": (("metric_pair",), [r[2] for r in rows]),
        "metric_contraction": (("metric_pair",), [float(p["contraction"]) for p in pair(0)]),
        "metric_det": (("metric_pair",), [r[3] for r in rows]),
        "metric_det_gap": (("metric_pair",), [r[4] for r in rows]),
        "metric_ep_a": (("metric_pair",), ep[a]),
        "metric_ep_b": (("metric_pair",), ep[b]),
        "metric_ep_a_exact": (("metric_pair",), exact[a]),
        "metric_ep_b_exact": (("metric_pair",), exact[b]),
        "metric_diff": (("metric_pair",), diff),
        "metric_diff_se": (("metric_pair",), diff_se),
        "metric_diff_exact": (("metric_pair",), diff_exact),
        "metric_diff_rounding": (("metric_pair",), rounding),
        "metric_z": (("metric_pair",), (diff - diff_exact) / diff_se),
        "metric_claim_z": (("metric_pair",), claim_z),
        "metric_zcrit": (("metric_pair",), np.full(len(rows), crit)),
        "metric_claim_rejected": (("metric_pair",),
                                  (np.abs(claim_z) > crit).astype(np.int8)),
    })  # fmt: skip


def verdict(pairs: xr.Dataset) -> str:
    """One line on the claim, generated from the pairs (empty without pairs)."""
    if "metric_diff" not in pairs:
        return ""
    n = pairs.sizes["metric_pair"]
    rounding = pairs["metric_diff_rounding"].values
    exact_differs = np.abs(pairs["metric_diff_exact"].values) > rounding
    rejected = pairs["metric_claim_rejected"].values.astype(bool)
    z, crit = np.abs(pairs["metric_z"].values), float(pairs["metric_zcrit"].values[0])
    reference = (f"the measured differences agree with the exact ones (max |z| {z.max():.1f}, "
                 f"critical {crit:.2f})" if np.all(z <= crit) else
                 f"WARNING: a measured difference disagrees with the exact one (max |z| "
                 f"{z.max():.1f} > {crit:.2f})")  # fmt: skip
    claim_max = np.abs(pairs["metric_claim_z"].values).max()
    if rejected.any():
        head = (f"rejected: entropy production is not a function of det(I + eps C) alone; "
                f"{rejected.sum()} of {n} equal-det pairs produce measurably different "
                f"entropy (max |z| {claim_max:.1f})")  # fmt: skip
    elif exact_differs.any():
        head = (
            f"not rejected by the measurement, but {exact_differs.sum()} of {n} equal-det "
            "pairs differ exactly: the claim fails; simulate longer to measure it"
        )
    else:
        head = f"consistent: all {n} equal-det pairs produce the same entropy"
    same = n - int(exact_differs.sum())
    return (f"{head}; {exact_differs.sum()} of {n} differ exactly, {same} "
            f"{'agrees' if same == 1 else 'agree'} exactly (to rounding); {reference}")  # fmt: skip
