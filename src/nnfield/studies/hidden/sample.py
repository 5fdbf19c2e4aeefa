"""Simulate one shard of a hidden point: per network, the entropy production of noisy
recurrent dynamics x_{t+1} = f(g (W x_t + b)) + s xi_t over time blocks and its subsystem
statistics (nnfield.studies.hidden.dynamics), with exact stationary values for linear f, in the
raw layout of nnfield.engine.simulate.  Weights are drawn with NumPy (counter-based generators
per block); the dynamics' noise with JAX keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from nnfield.config import PointSpec
from nnfield.engine.simulate import BlockKernel, ShardResult, ShardTask, Variable, simulate_shard
from nnfield.studies.hidden.weights import WeightEnsemble, subsystem_matrix

RAW_VARIABLES = ("count", "medium", "system", "xbar1", "xbar2", "xbar_lag", "current_sq",
                 "finite")  # fmt: skip
"""Variables every shard and point file holds."""

_MB, _MBT = ("block", "member"), ("block", "member", "time_block")
_SUB, _SUB2 = ("block", "member", "subsystem"), ("block", "member", "subsystem", "subsystem2")
VARIABLES = {
    "count": Variable(("block",), "networks in block with finite results"),
    "finite": Variable(_MB, "1 where every recorded number of the network is finite"),
    "medium": Variable(_MBT, "medium entropy summed over the time block (bulk-loss difference / "
                       "s^2)", "nats"),
    "system": Variable(_MBT, "system entropy change ln p(x_start) - ln p(x_end) over the time "
                       "block (p the exact stationary density for linear f, else the Gaussian "
                       "fitted to the network's trajectory)", "nats"),
    "annealed_total": Variable(_MBT, "annealed entropy production summed over the time block "
                               "(one-step kernel mixing the P/P^T members)", "nats"),
    "annealed_medium": Variable(_MBT, "medium part of annealed_total", "nats"),
    "xbar1": Variable(_SUB, "time sum of the subsystem averages"),
    "xbar2": Variable(_SUB2, "time sum of xbar_t xbar_t^T"),
    "xbar_lag": Variable(_SUB2, "time sum of xbar_t xbar_{t+1}^T"),
    "current_sq": Variable(_SUB2, "time sum of j_t^2, j_t = xbar^mu_t xbar^nu_{t+1} - "
                           "xbar^nu_t xbar^mu_{t+1}"),
    "ep_exact_network": Variable(_MB, "exact stationary entropy production per step of the "
                                 "network (linear f)", "nats"),
    "subsystem_cov_exact": Variable(_SUB2,
                                    "exact stationary covariance of the subsystem averages"),
    "subsystem_mean_exact": Variable(_SUB, "exact stationary mean of the subsystem averages"),
    "subsystem_lag_exact": Variable(_SUB2, "exact lag-1 covariance E[xbar_t xbar_{t+1}^T] - "
                                    "mean mean^T"),
    "spacetime": Variable(("block", "member", "lag", "mode", "site"), "space-time correlation "
                          "C_j(k, tau) = <y_(j,i)(t) y_(j,i+k)(t + tau)> of the network's mode j "
                          "(nnfield.studies.hidden.lightcone.cone_modes), averaged over sites i "
                          "of a ring (cyclic) and measured steps; lag tau, site k"),
    "spacetime_exact": Variable(("block", "member", "lag", "mode", "site"), "exact stationary "
                                "C_j(k, tau) of the network (linear f)"),
    "kick": Variable(("block", "member", "kick_sum"), "kicks of neuron 0, the sums of d and d^2, "
                     "d = ln |v| - c, of the response v K steps later, and the shift c "
                     "(hidden.dynamics)"),
    "member": Variable(("member",), "network within its block"),
    "time_block": Variable(("time_block",), "block of the measured trajectory"),
    "subsystem": Variable(("subsystem",), "subsystem mu"),
    "subsystem2": Variable(("subsystem2",), "subsystem nu"),
}  # fmt: skip
"""The raw variables and coordinates: dimensions, long_name, units."""


def weight_ensemble(p: Mapping) -> WeightEnsemble:
    return WeightEnsemble(
        p["weights"], int(p["neurons"]), int(p["subsystems"]), float(p["contraction"]),
        float(p["antisymmetric_fraction"]), float(p["coupling"]), p["coupling_matrix"],
        float(p.get("laziness", 0.5)),
    )  # fmt: skip


def _block_rng(spec: PointSpec, block: int) -> np.random.Generator:
    """NumPy generator of one block's weights and biases (counter-based: seed, point, block)."""
    from nnfield.engine.keys import stable_hash32

    return np.random.default_rng(
        [spec.seed, stable_hash32(spec.study), stable_hash32(spec.name), block]
    )


def exact_network(weights: np.ndarray, p: Mapping, averaging: np.ndarray) -> dict:
    """Exact stationary production per step, density (mean without bias, precision, log det)
    and subsystem (lag) covariances of linear dynamics, one network."""
    from nnfield.theory.thermo import hidden_step

    step = hidden_step(weights, p["noise"], p["gain"])
    sigma = step.stationary_covariance
    lags = int(p.get("light_cone", 0))
    out = {}
    if lags:
        from nnfield.studies.hidden.lightcone import cone_modes

        out["spacetime"] = spacetime_exact(step.transition, sigma, lags, cone_modes(p)[0])
    return out | {
        "ep": step.stationary_entropy_production(),
        "precision": np.linalg.inv(sigma),
        "logdet": np.linalg.slogdet(sigma)[1],
        "transition": step.transition,
        "cov": averaging @ sigma @ averaging.T,
        "lag": averaging @ sigma @ step.transition.T @ averaging.T,
    }


def spacetime_exact(
    transition: np.ndarray, sigma: np.ndarray, lags: int, modes: np.ndarray | None = None
) -> np.ndarray:
    """(L + 1, R, r): C_j(k, tau) = (1/r) sum_i (V~ M^tau Sigma V~^T)_((j, i+k mod r), (j, i)) of
    x' = M x + s xi in its stationary state (zero mean), Sigma the stationary covariance,
    V~ = V (x) I_r with the rows of ``modes`` V (R x R; default [[1]]: one ring of n sites)."""
    modes = np.ones((1, 1)) if modes is None else np.asarray(modes, dtype=np.float64)
    n, rings = sigma.shape[0], modes.shape[0]
    r = n // rings
    big = np.kron(modes, np.eye(r))
    sites = np.arange(r)
    out, power = [], sigma
    for _ in range(lags + 1):
        moved = (big @ power @ big.T).reshape(rings, r, rings, r)
        out.append([[moved[j, (sites + k) % r, j, sites].mean() for k in range(r)]
                    for j in range(rings)])  # fmt: skip
        power = transition @ power
    return np.asarray(out)


def _exact_block(weights, bias, p, averaging, solved: dict) -> dict[str, np.ndarray]:
    """exact_network for every network of a block (identical matrices solved once), with the
    stationary mean (I - g W)^-1 g b of each network's bias."""
    rows = []
    for w in weights:
        tag = w.tobytes()
        if tag not in solved:
            solved[tag] = exact_network(w, p, averaging)
        rows.append(solved[tag])
    keys = ("ep", "precision", "logdet", "cov", "lag", *(("spacetime",) if "spacetime" in rows[0]
                                                          else ()))  # fmt: skip
    out = {k: np.stack([r[k] for r in rows]) for k in keys}
    n = weights.shape[-1]
    out["mean"] = np.stack([np.linalg.solve(np.eye(n) - r["transition"], p["gain"] * b)
                            for r, b in zip(rows, bias, strict=True)])  # fmt: skip
    return out


def simulate(spec: PointSpec, shard: int = 0,
             progress: Callable[[str], None] | None = None):  # fmt: skip
    """Raw per-network time-block sums for the blocks of ``shard``."""
    return simulate_shard(spec, shard, progress, _prepare, VARIABLES)


def _prepare(task: ShardTask) -> BlockKernel:
    import jax.numpy as jnp

    from nnfield.engine.sharding import shard_batch
    from nnfield.studies.hidden.dynamics import (
        component_densities,
        make_block_function,
        no_components,
    )
    from nnfield.studies.hidden.lightcone import cone_modes

    spec, p = task.spec, task.params
    ens = weight_ensemble(p)
    n, d, size = ens.neurons, ens.subsystems, int(p["block_size"])
    mixture = ens.kind == "mixture"
    comps = (component_densities(ens.mixture_components(), p["gain"], p["noise"]) if mixture
             else no_components(n))  # fmt: skip
    modes = cone_modes(p)[0]
    fn = make_block_function(
        n, d, size, p["time_blocks"], p["steps"] // p["time_blocks"], p["burn_in"],
        p["activation"], 2 if mixture else 0, jnp.dtype(p["dtype"]), int(p.get("light_cone", 0)),
        len(modes), int(p.get("kick_response", 0)),
    )  # fmt: skip
    averaging = subsystem_matrix(n, d)
    linear = p["activation"] == "linear"
    solved: dict[bytes, dict] = {}  # exact_network of each distinct weight matrix

    replicas = int(p.get("initial_states", 1))
    draws = size // replicas

    def one_block(b: int):
        rng = _block_rng(spec, b)
        weights = ens.sample(rng, draws, first_index=b * draws)
        bias = rng.normal(0.0, p["bias"], (draws, n)) if p["bias"] else np.zeros((draws, n))
        initial = np.zeros((size, n))
        if replicas > 1:  # members r, r + 1, ... r + R - 1 share one W; replica 0 starts at 0
            weights, bias = np.repeat(weights, replicas, 0), np.repeat(bias, replicas, 0)
            initial = rng.uniform(-1.0, 1.0, (size, n))
            initial[::replicas] = 0.0
        exact = _exact_block(weights, bias, p, averaging, solved) if linear else None
        density = (exact["mean"], exact["precision"], exact["logdet"]) if linear else None
        # networks split over every visible device (a no-op on one)
        w, bb, dens, x0 = shard_batch((weights, bias, density, initial), size)
        out = fn(task.key, b, w, bb, p["gain"], p["noise"], averaging, dens, comps, x0, modes)
        return (*out, exact)

    def finish(results: list) -> ShardResult:
        return _result(results, p, mixture, linear, averaging)

    return BlockKernel(one_block, finish)


def _result(results: list, p: Mapping, mixture: bool, linear: bool, averaging) -> ShardResult:
    col = lambda k: np.stack([np.asarray(r[k]) for r in results])  # noqa: E731
    names = ("medium", "system", "annealed_total", "annealed_medium", "xbar1", "xbar2",
             "xbar_lag", "current_sq", "finite")  # fmt: skip
    arrays = {name: col(k) for k, name in enumerate(names)}
    finite = arrays.pop("finite")
    lags = int(p.get("light_cone", 0))
    data = {
        "count": finite.sum(1).astype(np.int64),
        "finite": finite.astype(np.int8),
        **{k: arrays[k] for k in ("medium", "system", "xbar1", "xbar2", "xbar_lag",
                                  "current_sq")},
    }  # fmt: skip
    if mixture:
        data["annealed_total"] = arrays["annealed_total"]
        data["annealed_medium"] = arrays["annealed_medium"]
    extra = len(names)
    if lags:
        data["spacetime"] = col(extra)
        extra += 1
    if int(p.get("kick_response", 0)):
        data["kick"] = col(extra)
    if linear and lags:
        data["spacetime_exact"] = np.stack([r[-1]["spacetime"] for r in results])
    if linear:
        data["ep_exact_network"] = np.stack([r[-1]["ep"] for r in results])
        data["subsystem_cov_exact"] = np.stack([r[-1]["cov"] for r in results])
        data["subsystem_lag_exact"] = np.stack([r[-1]["lag"] for r in results])
        data["subsystem_mean_exact"] = np.stack([r[-1]["mean"] for r in results]) @ averaging.T
    return ShardResult(
        data=data,
        nonfinite=(~finite).sum(1),
        nonfinite_what="results (excluded)",
        attrs={"n_blocks": np.int64(p["networks"] // p["block_size"])},
        store_nonfinite=False,  # per network: the variable finite
    )
