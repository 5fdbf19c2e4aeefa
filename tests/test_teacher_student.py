"""Teacher-student training ensembles (nnfield.studies.learning.teacher_student) against exact
results.

The linear student (depth 0) has an exactly quadratic loss, U = U* + q^T A q / 2 with
q = theta - theta*, A = X^T X / n + weight_decay I over the inputs with a constant column, so
SGLD and the momentum (BAOAB) optimizer are linear-Gaussian and every observable has an exact
value.  For nonlinear students the kernel log-ratio of each optimizer is checked by the one-step
fluctuation theorem <exp(-[ln p0(x0) - ln p0(eps x1) + medium])> = 1, exact for any kernel.
Every comparison is a z-test on the observable's own error."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from nnfield import stats
from nnfield.entropy import entropy_from_covariance, sample_covariance
from nnfield.fluctuation import bootstrap_mean_exp
from nnfield.studies import load
from nnfield.studies.learning.teacher_student import MLP, InitialEnsemble, Task, Trainer, run_blocks
from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

ALPHA = 1e-3
DOF40 = stats.jackknife_dof(40)
"""Degrees of freedom of the jackknife errors of the 40-block runs."""
TEACHER = MLP(2, 4, 1)
TASK = Task.from_teacher(TEACHER, seed=7, train_size=16, test_size=32, probes=3, label_noise=0.1)


def linear_problem(weight_decay: float):
    """(A, theta*, U*) of the linear student on TASK."""
    x = np.column_stack([TASK.train_x, np.ones(TASK.train_y.size)])
    n = x.shape[0]
    a = x.T @ x / n + weight_decay * np.eye(x.shape[1])
    theta = np.linalg.solve(a, x.T @ TASK.train_y / n)
    r = x @ theta - TASK.train_y
    return a, theta, 0.5 * np.mean(r * r) + 0.5 * weight_decay * theta @ theta


def moments(rec, name1: str, name2: str):
    """A function giving the Gaussian entropy of every jackknife replicate of ``rec`` from its
    means (each corrected for its own count, stats.REPLICATE_COUNT)."""

    def entropy(m):
        count = m[stats.REPLICATE_COUNT]
        return entropy_from_covariance(sample_covariance(m[name1], m[name2], count), count)

    return entropy


def baoab_matrices(a: np.ndarray, eta: float, beta: float, temp: float):
    """(M, Xi, K): one BAOAB step x' = M x + noise(Xi) on x = (q, p) for U = q^T A q / 2, and
    K mapping x to the state just before the O step."""
    n = a.shape[0]
    h = np.sqrt(2 * eta / (1 + beta))  # heavy-ball learning rate eta (Trainer.baoab_step_size)
    eye, zero = np.eye(n), np.zeros((n, n))
    kick = np.block([[eye, zero], [-0.5 * h * a, eye]])
    drift = np.block([[eye, 0.5 * h * eye], [zero, eye]])
    thermostat = np.block([[eye, zero], [zero, beta * eye]])
    before = drift @ kick
    after = kick @ drift
    noise = np.zeros((2 * n, 2 * n))
    noise[n:, n:] = (1 - beta**2) * temp * eye
    return after @ thermostat @ before, after @ noise @ after.T, before


def test_linear_student_sgld_follows_exact_theory():
    """Loss, state entropy, accumulated medium entropy and T_conf of SGLD on the linear student
    equal the exact linear-Gaussian propagation at every record (broad initial ensemble)."""
    wd, eta, temp = 0.05, 0.1, 0.02
    trainer = Trainer(MLP(2, 1, 0, "linear"), TASK, "sgld", eta, temp, wd, 16)
    initial = InitialEnsemble.of(trainer, "broad", 0)
    n_records, every = 6, 10
    rec = run_blocks(trainer, initial, jax.random.key(1), range(40), 250, n_records, every, 0)
    a, theta_star, u_star = linear_problem(wd)
    step = LinearGaussianStep.sgld(a, eta, temp)
    entropy = moments(rec, "z1", "zz")
    sums, counts = rec.sums, rec.count
    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "entropy": stats.jackknife(sums, counts, entropy),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "grad2": stats.jackknife(sums, counts, lambda m: m["grad2"]),
        "lap": stats.jackknife(sums, counts, lambda m: m["lap"]),
    }
    mean, c = initial.mean - theta_star, np.diag(initial.std**2)
    s0, produced = gaussian_entropy(c), 0.0
    want = {k: [] for k in est}
    for n in range(rec.steps[-1] + 1):
        if n % every == 0:
            want["loss"].append(u_star + 0.5 * (np.trace(a @ c) + mean @ a @ mean))
            want["entropy"].append(gaussian_entropy(c))
            want["medium"].append(produced - (gaussian_entropy(c) - s0))
            want["grad2"].append(np.trace(a @ a @ c) + mean @ a @ a @ mean)
            want["lap"].append(np.trace(a))
        produced += step.entropy_production(mean, c)
        mean, c = step.propagate(mean, c)
    z = np.concatenate([((est[k].value - np.array(want[k])) / est[k].stderr)[1:] for k in est])
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() < stats.bonferroni_t(ALPHA, z.size, DOF40), np.abs(z).max()


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_momentum_without_noise_is_heavy_ball(beta):
    """The momentum optimizer's hyperparameters are heavy ball's (PyTorch/optax): with the
    thermostat kick set to zero, the BAOAB positions obey
    theta' = theta - eta grad U(theta) + beta (theta - theta_prev) from the second step on, to
    rounding (a sample-by-sample identity, so a rounding bound, not a z-test), on a nonlinear
    student.  The old parametrisation h = sqrt(eta) (learning rate eta (1 + beta) / 2) fails."""
    eta, temp = 0.05, 0.01
    trainer = Trainer(MLP(2, 3, 1, "tanh"), TASK, "momentum", eta, temp, 0.01, 16, beta)
    p_dim = trainer.n_params
    rng = np.random.default_rng(3)
    state = np.concatenate([rng.standard_normal(p_dim), rng.standard_normal(p_dim)])
    step = jax.jit(trainer.baoab_step)
    grads = trainer.batch_gradients(state[:p_dim])
    thetas, gradients = [state[:p_dim]], [np.asarray(grads[0])]
    for _ in range(12):
        state, grads, _ = step(state, grads, np.zeros(p_dim))
        thetas.append(np.asarray(state[:p_dim]))
        gradients.append(np.asarray(grads[0]))
    th, g = np.array(thetas), np.array(gradients)
    heavy_ball = th[1:-1] - eta * g[1:-1] + beta * (th[1:-1] - th[:-2])
    scale = np.abs(th).max() + eta * np.abs(g).max()
    assert np.abs(th[2:] - heavy_ball).max() <= 1e-13 * th.shape[0] * scale
    old_rate = eta * (1 + beta) / 2  # what h = sqrt(eta) ran
    old = th[1:-1] - old_rate * g[1:-1] + beta * (th[1:-1] - th[:-2])
    assert np.abs(th[2:] - old).max() > 1e3 * 1e-13 * th.shape[0] * scale


def test_linear_student_momentum_follows_exact_theory():
    """The momentum optimizer (BAOAB, p odd under time reversal) on the linear student: the
    phase-space entropy, the heat released by the thermostat and <|grad U|^2> match the exact
    Gaussian propagation, and at the end T_conf = T (BAOAB samples the configurational Gibbs
    law of a quadratic exactly)."""
    wd, eta, temp, beta = 0.05, 0.1, 0.02, 0.8
    trainer = Trainer(MLP(2, 1, 0, "linear"), TASK, "momentum", eta, temp, wd, 16, beta)
    initial = InitialEnsemble.of(trainer, "broad", 0)
    n_records, every = 6, 20
    rec = run_blocks(trainer, initial, jax.random.key(2), range(40), 250, n_records, every, 0)
    a, theta_star, _ = linear_problem(wd)
    m_step, xi, before = baoab_matrices(a, eta, beta, temp)
    p_dim = a.shape[0]
    entropy = moments(rec, "z1", "zz")
    sums, counts = rec.sums, rec.count
    est = {
        "entropy": stats.jackknife(sums, counts, entropy),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "grad2": stats.jackknife(sums, counts, lambda m: m["grad2"]),
        "kinetic": stats.jackknife(sums, counts, lambda m: m["kinetic"]),
    }
    mean = initial.mean - np.concatenate([theta_star, np.zeros(p_dim)])
    c = np.diag(initial.std**2)
    heat = 0.0
    want = {k: [] for k in est}
    for n in range(rec.steps[-1] + 1):
        if n % every == 0:
            want["entropy"].append(gaussian_entropy(c))
            want["medium"].append(heat)
            q_mean, q_cov = mean[:p_dim], c[:p_dim, :p_dim]
            want["grad2"].append(np.trace(a @ a @ q_cov) + q_mean @ a @ a @ q_mean)
            want["kinetic"].append(
                0.5 * (np.trace(c[p_dim:, p_dim:]) + mean[p_dim:] @ mean[p_dim:])
            )
        y_mean, y_cov = before @ mean, before @ c @ before.T
        p2 = np.trace(y_cov[p_dim:, p_dim:]) + y_mean[p_dim:] @ y_mean[p_dim:]
        heat += (1 - beta**2) * (p2 - temp * p_dim) / (2 * temp)
        mean, c = m_step @ mean, m_step @ c @ m_step.T + xi
    z = np.concatenate([((est[k].value - np.array(want[k])) / est[k].stderr)[1:] for k in est])
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() < stats.bonferroni_t(ALPHA, z.size, DOF40), np.abs(z).max()
    t_conf = stats.jackknife(sums, counts, lambda m: m["grad2"][..., -1] / (m["lap"][..., -1]))
    crit = stats.bonferroni_t(ALPHA, 1, DOF40)
    assert abs(float(t_conf.value) - temp) / float(t_conf.stderr) < crit


@pytest.mark.parametrize(
    ("optimizer", "batch", "depth"), [("sgld", 16, 1), ("sgd", 4, 1), ("momentum", 16, 2)]
)
def test_kernel_log_ratio_satisfies_the_one_step_fluctuation_theorem(optimizer, batch, depth):
    """Nonlinear tanh students (one and two hidden layers): for one step from the Gaussian
    initial density p0 the generalised fluctuation theorem
        <exp(-[ln p0(x0) - ln p0(eps x1) + ln K(x0 -> x1) / K(eps x1 -> eps x0)])> = 1
    holds for any kernel, so it checks the Gaussian-mixture (minibatch) and BAOAB log-ratios,
    signs and normalisations included; a log-ratio half the right one (noise variance off by
    2) fails it."""
    trainer = Trainer(MLP(2, 4, depth), TASK, optimizer, 0.02, 0.05, 0.05, batch, 0.5)
    initial = InitialEnsemble.of(trainer, "broad", 0)
    rec = run_blocks(trainer, initial, jax.random.key(3), range(80), 800, 2, 1, samples=800)
    states = rec.samples["sample_state"].transpose(0, 2, 1, 3).reshape(-1, 2, trainer.state_dim)
    medium = rec.samples["sample_medium"].transpose(0, 2, 1).reshape(-1, 2)[:, 1]
    p_dim = trainer.n_params
    flip = np.concatenate([np.ones(p_dim), -np.ones(trainer.state_dim - p_dim)])

    def log_p0(x):
        return -0.5 * np.sum(((x - initial.mean) / initial.std) ** 2, axis=-1)

    base = log_p0(states[:, 0]) - log_p0(states[:, 1] * flip)
    est, ess = bootstrap_mean_exp(base + medium)
    assert ess > 4000, ess
    crit = stats.bonferroni_z(ALPHA, 1)  # bootstrap over 64,000 samples: normal quantiles
    assert abs(float(est.value) - 1) / float(est.stderr) < crit, est
    wrong, _ = bootstrap_mean_exp(base + 0.5 * medium)
    assert abs(float(wrong.value) - 1) / float(wrong.stderr) > crit, wrong
    # the study's streamed one-step weights (every network, in the kernel) are these, per block
    w = np.exp(-(base + medium)).reshape(80, 800)
    np.testing.assert_allclose(rec.one_step_ft[:, 0], w.sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(rec.one_step_ft[:, 1], (w * w).sum(axis=1), rtol=1e-10)


def test_function_space_entropy_of_the_linear_student_is_exact():
    """Outputs on the probes are linear in theta, hence Gaussian with covariance J Sigma J^T:
    the Gaussian and the k-NN estimates both match it at initialisation and after training."""
    from nnfield.entropy import knn_entropy

    trainer = Trainer(MLP(2, 1, 0, "linear"), TASK, "sgld", 0.1, 0.02, 0.05, 16)
    initial = InitialEnsemble.of(trainer, "broad", 0)
    rec = run_blocks(trainer, initial, jax.random.key(4), range(20), 500, 2, 30, samples=100)
    entropy = moments(rec, "f1", "ff")
    gauss = stats.jackknife(rec.sums, rec.count, entropy)
    a, _, _ = linear_problem(0.05)
    step = LinearGaussianStep.sgld(a, 0.1, 0.02)
    c = np.diag(initial.std**2)
    jac = np.column_stack([TASK.probe_x, np.ones(len(TASK.probe_x))])
    exact = [gaussian_entropy(jac @ c @ jac.T)]
    for _ in range(30):
        c = step.propagate(np.zeros(3), c)[1]
    exact.append(gaussian_entropy(jac @ c @ jac.T))
    samples = rec.samples["sample_output"]
    knn = [knn_entropy(samples[:, r].reshape(-1, 3), k=4, blocks=20) for r in range(2)]
    z = [(gauss.value[r] - exact[r]) / gauss.stderr[r] for r in range(2)]
    z += [(knn[r].value - exact[r]) / knn[r].stderr for r in range(2)]
    assert np.abs(z).max() < stats.bonferroni_t(ALPHA, 4, 19), z  # 20 blocks each


def test_teacher_student_study_second_law_shards_and_config_errors():
    """simulate -> merge -> analyze for the three optimizers from both initial ensembles: the
    state entropy at step 0 equals the exact initial entropy, Pi >= 0 everywhere, dF <= 0 for
    the isotropic optimizers (only measured for minibatch SGD), the entropy rises from the
    narrow and falls from the broad ensemble; two shards give bit-identical results; bad
    teacher-student configs name their keys."""
    from nnfield.config import ConfigError, expand, validate
    from nnfield.studies.learning import analyze as learning

    problem = {"name": "ts", "kind": "teacher_student", "widths": [3],
               "optimizer": ["sgld", "sgd", "momentum"], "batch_sizes": [8],
               "learning_rates": [0.05], "temperatures": [0.002], "steps": 40,
               "record_every": 10, "train_size": 16}  # fmt: skip
    cfg = {"studies": {"learning": {"seed": 5, "networks": 4000, "block_size": 200,
                                    "samples": 20, "problems": [problem]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    assert len(points) == 6
    merged = [
        load("learning").merge([load("learning").simulate(spec, 0)]) for spec in points.values()
    ]
    out = learning.analyze(merged, {})
    z0 = (out["entropy"] - out["entropy_exact"]).isel(step=0) / out["entropy_se"].isel(step=0)
    assert np.abs(z0.values).max() < stats.bonferroni_t(ALPHA, z0.size, 19)  # 20 blocks
    assert out["pi_violation"].values.tolist() == [0] * 6
    isotropic = out["optimizer"].values != "sgd"
    assert np.all(out["free_energy_violation"].values[isotropic] == 0)
    assert out["free_energy_asserted"].values.tolist() == [0] * 6  # not a theorem at finite eta
    assert out["kl_violation"].values.tolist() == [-1] * 6  # no known stationary law
    change = (out["entropy"].isel(step=-1) - out["entropy"].isel(step=0)).values
    narrow = out["initial"].values == "narrow"
    assert np.all(change[narrow] > 0) and np.all(change[~narrow] < 0)
    assert np.all(np.isfinite(out["entropy_function_knn"].values))
    # the fluctuation theorems with the exact initial density at both ends (exact for any
    # dynamics), where they have converged: over the first step from every network (jackknife:
    # Student-t) and from step 0 to each record from the sampled ones (bootstrap: normal)
    from nnfield.fluctuation import converged

    one = out["ift_one_step"].values
    trusted = converged(out["ift_one_step_ess"].values, int(out["ift_one_step_samples"][0]))
    z_one = np.abs(one - 1) / out["ift_one_step_se"].values
    if trusted.any():  # at T = 0.002 the weights are heavy-tailed: flagged, not tested
        assert z_one[trusted].max() < stats.bonferroni_t(ALPHA, trusted.sum(), 19)
    ift = out["ift_from_start"].isel(step=slice(1, None))
    ess = out["ift_from_start_ess"].isel(step=slice(1, None)).values
    trusted = converged(ess, int(out["ift_samples"].values[0]))
    z_ift = (np.abs(ift - 1) / out["ift_from_start_se"].isel(step=slice(1, None))).values
    if trusted.any():
        assert z_ift[trusted].max() < stats.bonferroni_z(ALPHA, trusted.sum())
    spec = next(iter(points.values()))
    sharded = dict(spec.params, shards=2)
    two = type(spec)(spec.study, spec.name, spec.seed, sharded)
    parts = [load("learning").simulate(two, s) for s in (0, 1)]
    for part in parts:
        part.attrs["config_sha256"] = merged[0].attrs["config_sha256"]
    joined = load("learning").merge(parts[::-1])
    for name in ("zz", "medium", "sample_state", "lap"):
        np.testing.assert_array_equal(joined[name].values, merged[0][name].values)
    bad = [("temperatures", [0.0], r"temperatures\[0\]"),
           ("batch_sizes", [5], r"batch_sizes\[0\].*divide"),
           ("hessian_eigenvalues", [1.0], r"hessian_eigenvalues.*teacher_student")]  # fmt: skip
    for key, value, message in bad:
        study = dict(cfg["studies"]["learning"], problems=[dict(problem, **{key: value})])
        broken = {"studies": {"learning": study}}
        with pytest.raises(ConfigError, match=rf"problems\[0\]\.{message}"):
            validate(broken)


def test_study_fluctuation_theorems_from_the_exact_initial_density():
    """Through simulate -> analyze at a small step (where the weights are not heavy-tailed):
    the one-step fluctuation theorem streamed over every network (ift_one_step, jackknife:
    Student-t with 19 dof) and the one from step 0 to each record over the sampled networks
    (ift_from_start, bootstrap: normal quantiles) equal 1, for momentum (the kernel with the
    velocity flip; SGLD's is covered by the one-step unit test); both have converged
    (effective sample size above a quarter of the samples), so the test runs."""
    from nnfield.config import expand, validate
    from nnfield.fluctuation import converged
    from nnfield.studies.learning import analyze as learning

    problem = {"name": "ft", "kind": "teacher_student", "widths": [3],
               "optimizer": ["momentum"], "learning_rates": [0.002],
               "temperatures": [0.05], "initial": ["broad"], "steps": 3, "record_every": 1,
               "train_size": 16}  # fmt: skip
    cfg = {"studies": {"learning": {"seed": 8, "networks": 4000, "block_size": 200,
                                    "samples": 200, "problems": [problem]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    out = learning.analyze([load("learning").simulate(spec) for spec in points.values()], {})
    one = out["ift_one_step"].values
    assert np.all(converged(out["ift_one_step_ess"].values, 4000)), out["ift_one_step_ess"]
    z_one = np.abs(one - 1) / out["ift_one_step_se"].values
    assert z_one.max() < stats.bonferroni_t(ALPHA, one.size, stats.jackknife_dof(20)), z_one
    ift = out["ift_from_start"].isel(step=slice(1, None))
    ess = out["ift_from_start_ess"].isel(step=slice(1, None)).values
    assert np.all(converged(ess, 4000)), ess
    z = (np.abs(ift - 1) / out["ift_from_start_se"].isel(step=slice(1, None))).values
    assert z.max() < stats.bonferroni_z(ALPHA, z.size), z
    assert np.all(np.abs(one - 1) > 0)  # a real average, not the identity at step 0


@pytest.mark.parametrize("temp", [0.1, 0.01, 0.001])
def test_sgd_medium_entropy_is_its_zero_temperature_heat_over_t(temp):
    """An identity with a rounding bound, per network and step: for minibatch SGD with added
    Langevin temperature T the medium entropy s and the zero-temperature heat Q of the
    minibatch moves (each log-sum-exp over the B batches replaced by its largest term) obey
    |T s - Q| <= T ln B, so s = Q / T + O(ln B): SGD's medium entropy measures its minibatch
    irreversibility in units of the added T.  Full-batch SGLD has Q = T s to rounding.  The
    bound is attained to within a factor of 10 at the largest T (it is not vacuous)."""
    sgd = Trainer(MLP(2, 3, 1, "tanh"), TASK, "sgd", 0.05, temp, 0.01, 4)
    batches = TASK.train_y.size // 4
    rng = np.random.default_rng(5)
    theta = rng.standard_normal((200, sgd.n_params)) * sgd.model.init_std()
    keys = jax.random.split(jax.random.key(2), 200)
    grads = jax.vmap(sgd.batch_gradients)(theta)
    _, _, s, q = jax.jit(jax.vmap(sgd.step))(theta, grads, keys)
    gap = np.abs(temp * np.asarray(s) - np.asarray(q))
    scale = np.abs(np.asarray(q)).max() + temp * np.log(batches)
    assert gap.max() <= temp * np.log(batches) + 1e-12 * scale
    if temp == 0.1:
        assert gap.max() > 0.1 * temp * np.log(batches)
    sgld = Trainer(MLP(2, 3, 1, "tanh"), TASK, "sgld", 0.05, temp, 0.01, TASK.train_y.size)
    grads = jax.vmap(sgld.batch_gradients)(theta)
    _, _, s, q = jax.jit(jax.vmap(sgld.step))(theta, grads, keys)
    np.testing.assert_allclose(temp * np.asarray(s), np.asarray(q), rtol=0,
                               atol=1e-12 * np.abs(np.asarray(q)).max())  # fmt: skip


def test_sgd_medium_entropy_against_the_added_temperature_in_the_study():
    """simulate -> analyze -> figure for minibatch SGD at two added temperatures (and a raw
    file without heat_limit, as written before it existed): the stored late-run rates obey the
    per-step identity on average, |T medium_rate - heat_limit_rate|
    <= T ln B (a rounding bound), the medium entropy per step is larger at the smaller T, and
    the figure draws the inset of column (c) with both temperatures."""
    from nnfield.config import expand, validate
    from nnfield.studies.learning import analyze as learning
    from nnfield.studies.learning.figures import learning_thermo

    prob = {"name": "sgd", "kind": "teacher_student", "widths": [3], "optimizer": "sgd",
            "batch_sizes": [4], "train_size": 16, "learning_rates": [0.05],
            "temperatures": [0.005, 0.02], "initial": ["narrow"], "steps": 40,
            "record_every": 10}  # fmt: skip
    cfg = {"studies": {"learning": {"seed": 9, "networks": 1000, "block_size": 100,
                                    "samples": 10, "problems": [prob]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    sims = [load("learning").simulate(spec) for spec in points.values()]
    out = learning.analyze(sims, {})
    # a raw file written before heat_limit existed still analyses, without the rates
    old = learning.analyze([sims[0].drop_vars("heat_limit")], {})
    assert "medium_rate" not in old and np.isfinite(old["medium"]).all()
    temp = out["temperature"].values
    rate, heat = out["medium_rate"].values, out["heat_limit_rate"].values
    gap = np.abs(temp * rate - heat)
    assert np.all(gap <= temp * np.log(4) + 1e-12 * np.abs(heat).max())
    assert rate[temp == 0.005][0] > rate[temp == 0.02][0]
    fig = learning_thermo(out)
    insets = [c for ax in fig.axes for c in ax.child_axes if c.get_xlabel() == "added T (SGD)"]
    assert len(insets) == 1
    xs = sorted({x for c in insets[0].containers for x in c.lines[0].get_xdata()})
    assert xs == [0.005, 0.02]


def test_effective_sample_size_survives_underflowing_weights():
    """An identity (rounding bound): the effective sample size of exp(-delta) is invariant
    under a common shift of delta, so weights that all underflow (shift 2000: every w is 0)
    give the same ESS as the unshifted ones instead of NaN."""
    delta = np.random.default_rng(1).normal(size=(400, 3)) * [0.1, 1.0, 3.0]
    _, ess = bootstrap_mean_exp(delta, n_boot=10)
    _, shifted = bootstrap_mean_exp(delta + 2000.0, n_boot=10)
    assert np.all(np.exp(-(delta + 2000.0)) == 0)
    np.testing.assert_allclose(shifted, ess, rtol=1e-10)
    assert np.all((ess >= 1) & (ess <= 400))
