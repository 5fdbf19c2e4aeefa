"""The activation registry (nnfield.activations): for every entry, the sampled single-layer
kernel E[phi(u_x) phi(u_y)] agrees with the theory (closed form where one exists, and the
depth recursions' quadrature), the JAX and NumPy maps agree, and ``derivative`` is the
derivative of the map."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from nnfield import activations
from nnfield.stats import bonferroni_t
from nnfield.studies.depth.theory import gaussian_rule

NAMES = sorted(activations.REGISTRY)
COVARIANCES = [  # (kx, ky, k): positive, negative and near-degenerate correlation
    (1.3, 0.7, 0.5),
    (0.8, 2.0, -0.9),
    (1.0, 1.0, 0.999),
]
SAMPLES = 200_000
ALPHA = 1e-3


def _quadrature_m2(act: activations.Activation, kx: float, ky: float, k: float) -> float:
    cov = np.array([[kx, k], [k, ky]])
    nodes, weights = gaussian_rule(cov, nodes=48)
    phi, _ = act.numpy_at(np.array([kx, ky]))
    values = phi(nodes)
    return float(weights @ (values[:, 0] * values[:, 1]))


def _sampled_m2(act, kx, ky, k, seed):
    """Mean and standard error of phi(u_x) phi(u_y) over SAMPLES draws, with the JAX map the
    samplers use."""
    rng = np.random.default_rng(seed)
    u = rng.multivariate_normal([0.0, 0.0], [[kx, k], [k, ky]], size=SAMPLES)
    values = np.asarray(act.jax_at(jnp.asarray([kx, ky]))(jnp.asarray(u)))
    prod = values[:, 0] * values[:, 1]
    return prod.mean(), prod.std(ddof=1) / np.sqrt(SAMPLES)


def test_closed_forms_equal_the_quadrature():
    """Two exact evaluations of one integral: they agree to the quadrature's accuracy."""
    for name in NAMES:
        act = activations.REGISTRY[name]
        if act.unit_m2 is None:
            continue
        for kx, ky, k in COVARIANCES:
            closed = float(act.unit_m2(np.float64(k), np.float64(kx), np.float64(ky)))
            assert abs(closed - _quadrature_m2(act, kx, ky, k)) < 1e-9 * max(1, abs(closed)), name


def test_sampled_kernel_agrees_with_theory_for_every_activation():
    """z-test of the Monte Carlo E[phi phi] against the theory, max |z| over all entries and
    covariances against the Bonferroni critical value.  For every entry the same samples reject
    the kernel of a covariance shifted by 0.05 on at least one of the covariances, so the test
    has power for each activation."""
    cases = [(name, cov) for name in NAMES for cov in COVARIANCES]
    crit = bonferroni_t(ALPHA, len(cases), SAMPLES - 1)
    zs, wrong = [], {}
    for i, (name, (kx, ky, k)) in enumerate(cases):
        act = activations.REGISTRY[name]
        mean, se = _sampled_m2(act, kx, ky, k, seed=100 + i)
        exact = _quadrature_m2(act, kx, ky, k)
        zs.append((abs(mean - exact) / se, name, (kx, ky, k)))
        z_wrong = abs(mean - _quadrature_m2(act, kx, ky, k - 0.05)) / se
        wrong[name] = max(wrong.get(name, 0.0), z_wrong)
    worst = max(zs)
    assert worst[0] < crit, worst
    assert min(wrong.values()) > crit, wrong


@pytest.mark.parametrize("name", NAMES)
def test_jax_and_numpy_maps_agree_and_the_derivative_is_one(name):
    """Identities, tested to rounding: the JAX and NumPy maps agree to 1e-12 (relative), and
    ``derivative`` matches a central difference with h = 1e-5 (truncation h^2 |phi'''| / 6 plus
    rounding 1e-16 / h: below 1e-8 on these smooth stretches)."""
    act = activations.REGISTRY[name]
    u = np.linspace(-3.0, 3.0, 601)
    u = u[np.all(np.abs(u[:, None] - np.asarray(act.kinks or [np.inf])) > 1e-3, axis=1)]
    offset = 0.4
    phi, dphi = act.numpy_at(offset)
    jax_values = np.asarray(act.jax_at(offset)(jnp.asarray(u)))
    np.testing.assert_allclose(jax_values, phi(u), rtol=1e-12, atol=1e-300)
    h = 1e-5
    numeric = (phi(u + h) - phi(u - h)) / (2 * h)
    scale = np.maximum(1.0, np.abs(dphi(u)))
    assert np.max(np.abs(numeric - dphi(u)) / scale) < 1e-8


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="known: relu, erf"):
        activations.get("softsign", ("relu", "erf"))
    with pytest.raises(ValueError, match="tanh"):
        activations.get("softsign")


def test_the_studies_offer_exactly_their_registry_entries():
    """The schema's enums are the registry's lists (a new activation is added in one place and
    offered by name), and every offered name has a registry entry."""
    from nnfield.config import load_schema
    from nnfield.studies.depth.sampler import DEPTH_ACTIVATIONS
    from nnfield.studies.hidden import dynamics as hidden_dynamics
    from nnfield.studies.learning import teacher_student

    defs = load_schema()["$defs"]

    def enum(definition, key):
        return tuple(defs[definition]["properties"][key]["enum"])

    assert enum("family", "arch") == activations.SINGLE_LAYER
    assert enum("depth_family", "activation") == DEPTH_ACTIVATIONS
    assert enum("hidden_ensemble", "activation") == hidden_dynamics.ACTIVATIONS
    assert set(enum("learning_problem", "activation")) == set(teacher_student.ACTIVATIONS)
    offered = {*activations.SINGLE_LAYER, *DEPTH_ACTIVATIONS, *hidden_dynamics.ACTIVATIONS,
               *teacher_student.ACTIVATIONS}  # fmt: skip
    assert offered <= set(activations.REGISTRY)
    assert all(activations.REGISTRY[n].unit_m2 is not None for n in activations.SINGLE_LAYER)
    zero = {n: activations.zero_at_origin(n) for n in activations.SINGLE_LAYER}
    assert zero == {
        "relu": True,
        "erf": True,
        "gauss": False,
        "softplus": False,
        "cos": False,
    }
