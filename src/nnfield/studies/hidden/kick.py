"""Curvature only from nonlinearity: the background dependence of the response to a kick
(docs/hidden.md, "Kick response").

Vanchurin (2020) attributes curvature of the emergent space-time to interactions.  In the
hidden dynamics x' = f(g (W x + b)) + s xi the response of the state K steps after a kick is
v = J_{t+K-1} ... J_t e_0, with J = d f(g (W x + b)) / dx along the network's own trajectory.
For linear f, J = g W whatever the state: the response is the same on every background (flat),
an identity checked against a rounding bound.  For tanh, J = g diag(sech^2(g (W x + b))) W
depends on the state, so the response varies with the background.

With ``kick_response`` K > 0 the kernel kicks neuron 0 every K measured steps and records
ln |v| K steps later.  Per point: ``kick_log_sd``, the standard deviation of ln |v| across the
kicks of one network (pooled within networks, so that random W's differences between networks
do not count), with its jackknife error over network blocks; ``kick_log_mean``; and for linear
f the exact ln |(g W)^K e_0| and the rounding bound the spread must stay under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats

META = {
    "kick_log_mean": ("mean over kicks of ln |v|, v the response K steps after a unit kick of "
                      "neuron 0", "1"),
    "kick_log_mean_se": ("jackknife standard error of kick_log_mean", "1"),
    "kick_log_sd": ("standard deviation of ln |v| across the kicks of one network (pooled "
                    "within networks, kicks - 1 dof each): the background dependence of the "
                    "response", "1"),
    "kick_log_sd_se": ("jackknife standard error of kick_log_sd", "1"),
    "kick_log_exact": ("exact ln |(g W)^K e_0| (linear f; mean over the networks)", "1"),
    "kick_dof": ("degrees of freedom of the kick errors: blocks with a finite network - 1",
                 "1"),
    "kick_rounding_bound": ("bound on kick_log_sd (and on kick_log_mean - kick_log_exact) from "
                            "rounding where the response is the same on every background "
                            "(linear f): 64 K n eps of the dtype; tanh must exceed it", "1"),
}  # fmt: skip


def rounding_bound(p: Mapping) -> float:
    """64 K n eps: ln |v| after K tangent steps, each a matrix-vector product of n terms."""
    return 64 * int(p["kick_response"]) * int(p["neurons"]) * float(np.finfo(p["dtype"]).eps)


def point_estimates(ds, p: Mapping, finite: np.ndarray, weights: np.ndarray | None
                    ) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-point kick estimates (empty without ``kick_response``); ``weights`` (B, M, n, n)
    the networks' W for the exact linear response, or None."""
    k = int(p.get("kick_response", 0))
    if not k:
        return {}
    acc = np.asarray(ds["kick"].values)  # (B, M, 4): count, sum d, sum d^2, shift c
    mask = finite[..., None]
    count, s1, s2, shift = (np.where(mask, acc, 0.0)[..., j] for j in range(4))
    # d = ln |v| - c (c the network's first ln |v|): the spread without cancellation
    within = s2 - np.where(count > 0, s1**2 / np.maximum(count, 1), 0.0)  # per network
    dof = np.maximum(count - 1, 0)  # each network loses one to its own mean
    sums = {"n": count.sum(1), "s1": (s1 + count * shift).sum(1), "within": within.sum(1),
            "dof": dof.sum(1)}  # fmt: skip
    counts = finite.sum(1)
    mean = stats.jackknife(sums, counts, lambda m: m["s1"] / m["n"])
    sd = stats.jackknife(sums, counts,
                         lambda m: np.sqrt(np.maximum(m["within"], 0) / m["dof"]))  # fmt: skip
    out = {
        "kick_log_mean": np.asarray(mean.value),
        "kick_log_mean_se": np.asarray(mean.stderr),
        "kick_log_sd": np.asarray(sd.value),
        "kick_log_sd_se": np.asarray(sd.stderr),
        "kick_dof": np.asarray(stats.jackknife_dof(int(np.sum(counts > 0)))),
    }
    out["kick_rounding_bound"] = np.asarray(rounding_bound(p))
    if p["activation"] == "linear":
        if weights is not None:
            m = float(p["gain"]) * np.asarray(weights, dtype=np.float64)
            v = np.zeros(m.shape[:-1])
            v[..., 0] = 1.0
            for _ in range(k):
                v = np.einsum("...ij,...j->...i", m, v)
            out["kick_log_exact"] = np.asarray(np.log(np.linalg.norm(v, axis=-1)).mean())
    return out


def verdict(study: xr.Dataset, params: Sequence[Mapping]) -> str:
    """One line on flatness (linear f: the spread, and the mean where it has an exact value,
    within the rounding bound) and curvature (tanh: spread above the bound by more than the
    Bonferroni critical value over the tanh points times its error), from the points with
    ``kick_response`` (empty without them); each clause can fail."""
    idx = [i for i, p in enumerate(params) if p.get("kick_response", 0)]
    if not idx:
        return ""
    curved_points = [i for i in idx if params[i]["activation"] != "linear"]
    parts = []
    for i in idx:
        p = params[i]
        sd, se = study["kick_log_sd"].values[i], study["kick_log_sd_se"].values[i]
        bound = rounding_bound(p)
        if p["activation"] == "linear":
            exact = study["kick_log_exact"].values[i] if "kick_log_exact" in study else np.nan
            mean = study["kick_log_mean"].values[i]
            off = abs(mean - exact) if np.isfinite(exact) else 0.0
            flat = "flat" if sd <= bound and off <= bound else "NOT FLAT"
            text = (f"{p['ensemble']} (linear f): {flat}, sd of ln |v| across backgrounds "
                    f"{sd:.2g}")  # fmt: skip
            if np.isfinite(exact):
                text += f", mean {mean:.6f} against exact {exact:.6f}"
            parts.append(text + f" (rounding bound {bound:.2g})")
        else:
            dof = int(study["kick_dof"].values[i])  # blocks left after non-finite ones, - 1
            crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, len(curved_points), dof)
            curved = sd > bound + crit * se
            state = "curved" if curved else "curvature not resolved"
            z = (sd - bound) / se if se > 0 else np.inf * np.sign(sd - bound)
            parts.append(f"{p['ensemble']} ({p['activation']} f, g = {p['gain']:g}): {state}, "
                         f"sd of ln |v| across backgrounds {sd:.3f} +- {se:.3f} (z above the "
                         f"rounding bound {z:.0f}, critical {crit:.2f})")  # fmt: skip
    return "; ".join(parts) + f" (response {params[idx[0]]['kick_response']} steps after a kick)"
