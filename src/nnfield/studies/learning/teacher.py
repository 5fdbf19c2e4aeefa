"""Teacher-student points of the ``learning`` study: the trainer's set-up and per-point analysis
(their simulation: nnfield.studies.learning.sample).

A point trains an ensemble of students (nnfield.studies.learning.teacher_student) on one seeded
teacher task.
Per record, with delete-one-block jackknife errors unless said otherwise:
  loss, test_loss;  entropy = Gaussian entropy of the state (theta, and p for momentum), only
  when the ensemble outnumbers the state dimension (an upper bound, exact at step 0);
  entropy_function = Gaussian entropy of the outputs on the probe inputs, and
  entropy_function_knn = its Kozachenko-Leonenko estimate from the sampled networks (k <= 10);
  medium (exact kernel log-ratio), pi, free_energy = <U + |p|^2/2> - T S (pi and F from the
  Gaussian entropy: what they are is named by the point's entropy_estimator), tconf_ratio with a
  Hutchinson Laplacian, and per record ift_from_start, the fluctuation theorem from step 0 with
  the exact initial density at both ends (bootstrap error; see reference_entropy_production).
For minibatch sgd, over the second half of the run: medium_rate, the medium entropy per step,
and heat_limit_rate, the zero-temperature heat Q per step
(nnfield.studies.learning.teacher_student.Trainer.step):
medium_rate = heat_limit_rate / T + O(ln batches): the 1/T factor is set by the added Langevin
noise, Q is the irreversibility of SGD's own minibatch moves, and the medium entropy grows like
1/T as T -> 0 only where the late heat rate tends to a nonzero limit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.entropy import entropy_from_covariance, knn_entropy, sample_covariance

PARTIAL = ("loss", "test_loss", "grad2", "lap", "medium", "kinetic", "heat_limit")


def build(p: Mapping):
    """(Trainer, InitialEnsemble) of a point's parameters."""
    from nnfield.studies.learning.teacher_student import MLP, InitialEnsemble, Task, Trainer

    d = p["input_dim"]
    teacher = MLP(d, p["teacher_width"], p["teacher_depth"], p["activation"])
    task = Task.from_teacher(teacher, p["data_seed"], p["train_size"], p["test_size"],
                             p["probes"], p["label_noise"])  # fmt: skip
    student = MLP(d, p["width"], p["depth"], p["activation"])
    trainer = Trainer(student, task, p["optimizer"], p["learning_rate"], p["temperature"],
                      p["weight_decay"], p["batch_size"], p["momentum"])  # fmt: skip
    return trainer, InitialEnsemble.of(trainer, p["initial"], (p["data_seed"], 1))


def state_moments(p: Mapping, state_dim: int) -> bool:
    """Whether the state covariance is stored: only where the ensemble outnumbers the state."""
    return p["networks"] > state_dim + 1


def _entropy(first: np.ndarray, second: np.ndarray, count) -> np.ndarray:
    """Bias-corrected Gaussian entropy from the means of x and x x^T of ``count`` points (an
    array over jackknife replicates: each is corrected for its own count)."""
    return entropy_from_covariance(sample_covariance(first, second, count), count)


def _knn(samples: np.ndarray) -> stats.Estimate:
    """k-NN entropy per record of the sampled outputs (B, R, S, k), blocks as jackknife blocks."""
    b, r, s, _ = samples.shape
    values, errors = np.empty(r), np.empty(r)
    for i in range(r):
        e = knn_entropy(samples[:, i].reshape(b * s, -1), k=4, blocks=b)
        values[i], errors[i] = e.value, e.stderr
    return stats.Estimate(values, errors, values)


def reference_entropy_production(states, medium, initial) -> np.ndarray:
    """ln p0(x_0) - ln p0(eps x_r) + medium_r (N, R) for sampled trajectories (N, R, D) and
    their accumulated medium entropy (N, R), with p0 the exact initial density at both ends
    (eps flips momenta; p0 is even in them).  <exp(-that)> = 1 exactly at every record for any
    dynamics: the reversed process may start from any normalised density, here p0, so no
    approximation of p_t enters (a Gaussian fit of p_t would make the identity fail)."""
    from nnfield.fluctuation import gaussian_log_density

    cov = np.diag(initial.std**2)
    log_p0 = np.stack(
        [gaussian_log_density(states[:, i], initial.mean, cov) for i in range(states.shape[1])],
        axis=1,
    )
    return log_p0[:, :1] - log_p0 + medium - medium[:, :1]


def estimates(ds: xr.Dataset, p: Mapping) -> tuple[dict, dict, dict]:
    """(jackknife estimates by name, exact values by name, extras) of one teacher-student point."""
    from nnfield.fluctuation import bootstrap_mean_exp

    trainer, initial = build(p)
    counts = ds["count"].values
    total = float(counts.sum())
    temp = float(p["temperature"])
    steps = ds["step"].values
    gaps = np.diff(steps).astype(float)
    # raw files written before heat_limit existed still analyse (without the SGD rates)
    names = [k for k in PARTIAL if k in ds] + ["f1", "ff"] + (["z1", "zz"] if "zz" in ds else [])
    sums = {k: ds[k].values for k in names}
    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "test_loss": stats.jackknife(sums, counts, lambda m: m["test_loss"]),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "tconf_ratio": stats.jackknife(sums, counts, lambda m: m["grad2"] / (m["lap"] * temp)),
        "entropy_function": stats.jackknife(
            sums, counts, lambda m: _entropy(m["f1"], m["ff"], m[stats.REPLICATE_COUNT])
        ),
    }
    extras: dict = {}
    if p["optimizer"] == "sgd" and "heat_limit" in ds:  # medium entropy against the added T
        late = (len(steps) - 1) // 2  # the record that starts the second half (0 of 2)
        span = float(steps[-1] - steps[late])
        for name, var in (("medium_rate", "medium"), ("heat_limit_rate", "heat_limit")):
            est[name] = stats.jackknife(
                sums, counts, lambda m, v=var: (m[v][..., -1] - m[v][..., late]) / span
            )
    if p["probes"] <= 10:
        est["entropy_function_knn"] = _knn(ds["sample_output"].values)
    exact = {"entropy": np.where(steps == 0, initial.entropy, np.nan)}
    if "zz" in ds:

        def entropy(m):
            return _entropy(m["z1"], m["zz"], m[stats.REPLICATE_COUNT])

        def free(m):
            return m["loss"] + m["kinetic"] - temp * entropy(m)

        est["entropy"] = stats.jackknife(sums, counts, entropy)
        est["pi"] = stats.jackknife(
            sums, counts, lambda m: (np.diff(entropy(m), axis=-1) + np.diff(m["medium"])) / gaps
        )
        est["free_energy"] = stats.jackknife(sums, counts, free)
        est["free_energy_change"] = extras["d_free"] = stats.jackknife(
            sums, counts, lambda m: np.diff(free(m), axis=-1)
        )
        est["shadow_work"] = stats.jackknife(  # Delta <U + |p|^2/2> + T Delta <s_medium>
            sums, counts, lambda m: np.diff(m["loss"] + m["kinetic"]) + temp * np.diff(m["medium"])
        )
    if "one_step_ft" in ds:
        ft = ds["one_step_ft"].values  # (B, 2): sums of w, w^2
        est["ift_one_step"] = stats.jackknife({"w": ft[:, 0]}, counts, lambda m: m["w"])
        extras["ift_one_step_ess"] = float(ft[:, 0].sum() ** 2 / ft[:, 1].sum())
        extras["ift_one_step_samples"] = int(total)
    states = ds["sample_state"].values  # (B, R, S, D)
    b, r, s, d = states.shape
    states = states.transpose(0, 2, 1, 3).reshape(b * s, r, d)
    medium = ds["sample_medium"].values.transpose(0, 2, 1).reshape(b * s, r)
    delta = reference_entropy_production(states, medium, initial)
    est["ift_from_start"], extras["ift_from_start_ess"] = bootstrap_mean_exp(delta)
    extras["state_dim"] = trainer.state_dim
    return est, exact, extras
