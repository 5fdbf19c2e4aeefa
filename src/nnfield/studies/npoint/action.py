"""The O(1/N) action of a family reconstructed from its correlators (docs/physics.md section 9).

Conventions (d = 1 inputs on an interval [lo, hi] with the uniform measure):

- the free part is the exact GP kernel, expanded in its leading Mercer modes,
  K(x, y) ~ sum_k mu_k e_k(x) e_k(y), int e_k e_l dx = delta_kl, mu_0 >= mu_1 >= ... (``modes``
  of them, by a Gauss-Legendre Nystrom rule; ``MercerBasis``);
- the measured connected four-point function is expanded in the same modes,
  G4_conn(x1..x4) = sum_klmn C_klmn e_k(x1) e_l(x2) e_m(x3) e_n(x4), C symmetric, one coefficient
  per multiset {k, l, m, n}; C is fitted on the *training* tuples (every input of the tuple a
  training input) by least squares with design-only weights 1 / G4_gp^2 (relative residuals,
  as the coupling fits), so the fit is linear in the data and every jackknife replicate is
  refitted;
- the action is S = 1/2 sum_k phi_k^2 / mu_k + (1/4!) sum lambda_klmn phi_k phi_l phi_m phi_n
  + 1/2 sum B_kl phi_k phi_l with f = sum_k phi_k e_k: at tree level G4_conn = -lambda mu mu mu mu,
  so lambda_klmn = -C_klmn / (mu_k mu_l mu_m mu_n), and the counterterm
  B_kl = -1/2 sum_m lambda_klmm mu_m cancels the tadpole so that G2 = K at O(1/N).

The local action (one constant lambda: G4_conn = -lambda int prod_4 K(x_i, y) dy) and the radial
lambda(y) of nnfield.studies.npoint.couplings are fitted on the same training tuples with their
own weights, and all three predict G4_conn at the held-out tuples (some input held out).  The
one-input density at a held-out input is predicted at O(1/N) by the Edgeworth series
p(z) = phi(z) [1 + (kappa4 / 24 K^2) He4(z)], z = f / sqrt(K), with kappa4 the model's prediction
of G4_conn(x, x, x, x).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special

from nnfield import stats
from nnfield import tuples as tup
from nnfield.studies.npoint import coupling_theory as cp

MODELS = ("nonlocal", "local", "radial")
"""Actions compared on held-out tuples: the reconstruction, constant lambda, radial lambda(y)."""
DENSITY_MODELS = ("gaussian", "nonlocal", "local")
"""One-input densities compared with the histogram: GP (N = infinity), and O(1/N) Edgeworth
with kappa4 predicted by the non-local and by the local action."""
NYSTROM_NODES = 128
MODE_CUT = 1e-11
"""Smallest kept Mercer eigenvalue relative to the largest: below it the Nystrom eigenpairs are
rounding noise (the extension divides by mu_k)."""

ACTION_META = {
    "action_model": (
        "action predicting held-out G4_conn (nonlocal: Mercer-mode reconstruction; "
        "local: constant lambda; radial: lambda(|y|))",
        "1",
    ),
    "density_model": (
        "one-input density (gaussian: GP; nonlocal, local: O(1/N) Edgeworth with "
        "that action's kappa4)",
        "1",
    ),
    "heldout_tuple": ("index among the held-out 4-tuples", "1"),
    "heldout_input": ("index among the held-out inputs", "1"),
    "density_bin": ("bin of f / sqrt(K(x, x)): (-inf, e_0), [e_0, e_1), ..., [e_last, inf)", "1"),
    "vertex": ("index of a sorted Mercer-mode 4-tuple k <= l <= m <= n", "1"),
    "mode": ("Mercer mode of K (decreasing eigenvalue)", "1"),
    "mode_b": ("Mercer mode of K (second index)", "1"),
    "slot4": ("position in a 4-tuple", "1"),
    "action_maxz": ("held-out test: max |z| of predicted minus measured G4_conn (test half)", "1"),
    "action_zcrit": ("Bonferroni Student-t critical value of the held-out G4_conn test", "1"),
    "action_dof": ("degrees of freedom of the held-out tests' errors (block pairs - 1)", "1"),
    "action_heldout_z": ("z of predicted minus measured G4_conn per held-out tuple", "1"),
    "action_heldout_tuple": ("colex index of each held-out 4-tuple", "1"),
    "action_heldout": ("G4_conn measured on the test half at the held-out tuples", "1"),
    "action_heldout_se": ("jackknife standard error of action_heldout", "1"),
    "action_prediction": ("G4_conn at the held-out tuples predicted from the fit half", "1"),
    "action_condition": ("condition number of the weighted training design of the Mercer fit", "1"),
    "action_vertex": (
        "quartic vertex lambda_klmn in Mercer modes (S contains lambda/4! phi^4; "
        "G4_conn = -lambda mu_k mu_l mu_m mu_n), every block; entries with high modes are "
        "ill-determined (divided by mu^4; no error bar is stored, docs/physics.md section 9.1)",
        "1",
    ),
    "action_vertex_modes": ("Mercer modes (k, l, m, n) of each vertex entry", "1"),
    "action_eigenvalue": ("Mercer eigenvalue mu_k of K on the action's interval", "1"),
    "action_counterterm": (
        "quadratic counterterm B_kl = -1/2 sum_m lambda_klmm mu_m (high modes "
        "ill-determined, as action_vertex)",
        "1",
    ),
    "action_truncation": (
        "max over held-out tuples of |Mercer fit of the exact G4_conn - exact| "
        "in units of the held-out test's standard error",
        "1",
    ),
    "density": (
        "probability of each bin of f / sqrt(K(x, x)) at the held-out inputs (test half)",
        "1",
    ),
    "density_se": ("jackknife standard error of density", "1"),
    "density_edges": ("interior density bin edges in units of sqrt(K(x, x))", "1"),
    "density_input": ("input index of each held-out input", "1"),
    "density_maxz": ("density test: max |z| over held-out inputs and bins", "1"),
    "density_bins_tested": ("bins in the density test (those with a nonzero error bar)", "1"),
    "density_zcrit": ("Bonferroni Student-t critical value of the density test", "1"),
    "density_prediction": ("bin probabilities predicted by each density model", "1"),
    "density_next_order": (
        "max over bins of the exact O(1/N^2) Edgeworth terms in units of the "
        "density test's standard error (above ~0.5 the O(1/N) test is "
        "not a clean test)",
        "1",
    ),
}
"""long_name and units of the action analysis' variables."""


@dataclass(frozen=True)
class MercerBasis:
    """Leading eigenpairs of K on [lo, hi] with the uniform measure (Nystrom on Gauss-Legendre
    nodes); ``__call__`` evaluates e_k(x) = (1/mu_k) int K(x, y) e_k(y) dy anywhere."""

    prior: cp.Prior
    lo: float
    hi: float
    eigenvalues: np.ndarray  # (r,) mu_k, decreasing
    nodes: np.ndarray  # (Q,)
    weights: np.ndarray  # (Q,)
    node_values: np.ndarray  # (Q, r) e_k at the nodes

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """e_k at points ``x`` (n, 1): shape (n, r)."""
        kx = self.prior.kernel(np.atleast_2d(np.asarray(x, dtype=np.float64)), self.nodes[:, None])
        return (kx * self.weights) @ self.node_values / self.eigenvalues

    @property
    def modes(self) -> int:
        return self.eigenvalues.size


def mercer_basis(
    prior: cp.Prior, lo: float, hi: float, modes: int, nodes: int = NYSTROM_NODES
) -> MercerBasis:
    """The ``modes`` leading Mercer modes of the prior's GP kernel on [lo, hi]."""
    if not hi > lo:
        raise ValueError(f"the action's interval needs lo < hi, got [{lo}, {hi}]")
    z, w = np.polynomial.legendre.leggauss(nodes)
    y = 0.5 * (hi - lo) * z + 0.5 * (hi + lo)
    w = 0.5 * (hi - lo) * w
    kernel = prior.kernel(y[:, None], y[:, None])
    root = np.sqrt(w)
    evals, evecs = np.linalg.eigh(root[:, None] * kernel * root[None, :])
    order = np.argsort(evals)[::-1][:modes]
    if evals[order[-1]] < MODE_CUT * evals[order[0]]:
        kept = int(np.sum(evals[order] >= MODE_CUT * evals[order[0]]))
        raise ValueError(
            f"modes: {modes} Mercer modes requested, but only {kept} of K's eigenvalues on "
            f"[{lo}, {hi}] are above {MODE_CUT:g} of the largest (the rest are rounding noise)"
        )
    return MercerBasis(prior, lo, hi, evals[order], y, w, evecs[:, order] / root[:, None])


def quartic_index(modes: int) -> np.ndarray:
    """Sorted mode 4-tuples k <= l <= m <= n, one per coefficient of a symmetric C: (P, 4)."""
    return np.array(list(itertools.combinations_with_replacement(range(modes), 4)), dtype=np.int64)


def quartic_design(values: np.ndarray, tuples: np.ndarray, index: np.ndarray) -> np.ndarray:
    """D[t, p] = sum over the distinct orderings (k, l, m, n) of index[p] of
    e_k(x_t1) e_l(x_t2) e_m(x_t3) e_n(x_t4), so that G4_conn(t) = D @ c: (T, P)."""
    design = np.zeros((tuples.shape[0], index.shape[0]))
    for p, modes in enumerate(index):
        for order in set(itertools.permutations(modes.tolist())):
            design[:, p] += np.prod([values[tuples[:, s], order[s]] for s in range(4)], axis=0)
    return design


def heldout_tuples(n_inputs: int, held_out: Sequence[int]) -> np.ndarray:
    """Mask over colex 4-tuples: True where some input of the tuple is held out."""
    return np.isin(tup.sorted_tuples(n_inputs, 4), np.asarray(held_out)).any(axis=1)


def weighted_solver(design: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """S (T, P) with coefficients c = g @ S minimising sum_t weights_t (g_t - design_t . c)^2."""
    scaled = design * np.sqrt(weights)[:, None]
    return (np.linalg.pinv(scaled) * np.sqrt(weights)[None, :]).T


@dataclass(frozen=True)
class NonlocalAction:
    """The fitted symmetric expansion of G4_conn in the Mercer modes (training tuples only)."""

    basis: MercerBasis
    index: np.ndarray  # (P, 4)
    design: np.ndarray  # (T, P) on every tuple of the inputs
    solve: np.ndarray  # (T, P): zero rows for held-out tuples
    condition: float  # condition number of the weighted training design

    def coefficients(self, g4_conn: np.ndarray) -> np.ndarray:
        return np.asarray(g4_conn) @ self.solve

    def predict(self, g4_conn: np.ndarray) -> np.ndarray:
        """G4_conn at every tuple from the coefficients fitted to ``g4_conn`` (..., T)."""
        return self.coefficients(g4_conn) @ self.design.T

    def vertex(self, coefficients: np.ndarray) -> np.ndarray:
        """lambda_klmn = -C_klmn / (mu_k mu_l mu_m mu_n), per sorted index (..., P)."""
        return -coefficients / np.prod(self.basis.eigenvalues[self.index], axis=1)

    def counterterm(self, vertex: np.ndarray) -> np.ndarray:
        """B_kl = -1/2 sum_m lambda_klmm mu_m (keeps G2 = K at O(1/N)), shape (..., r, r)."""
        r = self.basis.modes
        full = np.zeros((*vertex.shape[:-1], r, r, r, r))
        for p, modes in enumerate(self.index):
            for order in set(itertools.permutations(modes.tolist())):
                full[(..., *order)] = vertex[..., p]
        return -0.5 * np.einsum("...klmm,m->...kl", full, self.basis.eigenvalues)


def fit_nonlocal(
    prior: cp.Prior,
    inputs: np.ndarray,
    g4_gp: np.ndarray,
    held_out: Sequence[int],
    modes: int,
    interval: tuple[float, float],
) -> NonlocalAction:
    """The non-local action's linear fit for ``inputs`` (n, 1) with ``held_out`` input indices."""
    n = inputs.shape[0]
    basis = mercer_basis(prior, *interval, modes)
    index = quartic_index(modes)
    design = quartic_design(basis(inputs), tup.sorted_tuples(n, 4), index)
    train = ~heldout_tuples(n, held_out)
    if train.sum() <= index.shape[0]:
        raise ValueError(
            f"the action's {index.shape[0]} coefficients ({modes} modes) need more than "
            f"{int(train.sum())} training tuples: use fewer modes, more inputs or fewer held out"
        )
    weights = np.where(train, 1.0 / g4_gp**2, 0.0)
    scaled = design[train] * np.sqrt(weights[train])[:, None]
    sv = np.linalg.svd(scaled, compute_uv=False)
    return NonlocalAction(basis, index, design, weighted_solver(design, weights), sv[0] / sv[-1])


def local_predictions(quartic: np.ndarray, train: np.ndarray, g4_reps: np.ndarray, size: int):
    """G4_conn (..., T) predicted by lambda(y) = sum_(k < size) c_k P_k fitted on ``train``
    tuples with the coupling fits' weights 1 / integral(K^4)^2: -quartic[:, :size] @ c."""
    design = -quartic[:, :size]
    weights = np.where(train, 1.0 / quartic[:, 0] ** 2, 0.0)
    return (g4_reps @ weighted_solver(design, weights)) @ design.T


def edgeworth_bins(edges: np.ndarray, cumulant4: np.ndarray) -> np.ndarray:
    """O(1/N) Edgeworth probabilities of the bins (-inf, e_0), [e_0, e_1), ..., [e_last, inf) in
    z = f / sqrt(K) for normalised fourth cumulants ``cumulant4`` = kappa4 / K^2 (...,):
    P = Phi(b) - Phi(a) + (cumulant4 / 24) [He3(a) phi(a) - He3(b) phi(b)]."""
    z = np.concatenate([[-np.inf], np.asarray(edges, dtype=np.float64), [np.inf]])
    gauss = np.diff(special.ndtr(z))
    tail = _he_phi(3, z)
    return gauss + np.asarray(cumulant4)[..., None] / 24.0 * (tail[:-1] - tail[1:])


def edgeworth_next_order(edges: np.ndarray, cumulant4: float, cumulant6: float) -> np.ndarray:
    """The O(1/N^2) terms of the Edgeworth bin probabilities: (c6 / 720) He6 + (c4^2 / 1152) He8
    integrated over each bin (the size of what the O(1/N) density leaves out)."""
    z = np.concatenate([[-np.inf], np.asarray(edges, dtype=np.float64), [np.inf]])
    h5, h7 = _he_phi(5, z), _he_phi(7, z)
    return cumulant6 / 720.0 * (h5[:-1] - h5[1:]) + cumulant4**2 / 1152.0 * (h7[:-1] - h7[1:])


def _he_phi(order: int, z: np.ndarray) -> np.ndarray:
    """He_order(z) phi(z), 0 at +-inf (int_a^b He_(n+1) phi = He_n(a) phi(a) - He_n(b) phi(b))."""
    finite = np.isfinite(z)
    zf = np.where(finite, z, 0.0)
    he = np.polynomial.hermite_e.hermeval(zf, [0] * order + [1])
    return np.where(finite, he * np.exp(-0.5 * zf**2) / np.sqrt(2 * np.pi), 0.0)


def _max_z(diff_reps: np.ndarray, alpha: float, dof: int) -> tuple[float, float, np.ndarray]:
    """max |z| of replicates of a difference against 0, its critical value, and z per entry."""
    est = stats.from_replicates(diff_reps)
    z = stats.max_z_test(est.value, est.stderr, np.zeros_like(est.value), alpha, dof)
    with np.errstate(divide="ignore", invalid="ignore"):
        return z.max_abs_z, z.critical, est.value / est.stderr


def split_replicates(ds: xr.Dataset, estimator, keys: Sequence[str]):
    """Jackknife replicates of ``estimator`` on the even blocks (the fit half) and on the odd
    blocks (the test half): two independent ensembles of networks.  Row j + 1 of both leaves out
    pair j = (blocks 2j, 2j + 1), so differences of the two are jackknifed over the B // 2 pairs
    (a trailing odd block is not used)."""
    counts = ds["count"].values
    pairs = counts.size // 2
    if pairs < 2:
        raise ValueError(f"the held-out tests need at least 4 blocks, got {counts.size}")
    halves = []
    for start in (0, 1):
        rows = np.arange(start, 2 * pairs, 2)
        sums = {k: ds[f"sum_{k}"].values[rows].reshape(pairs, -1) for k in keys}
        halves.append(stats.jackknife_replicates(sums, counts[rows], estimator))
    return halves[0], halves[1], pairs


def action_analysis(
    ds: xr.Dataset,
    th,
    g4_gp: np.ndarray,
    integrals,
    settings: Mapping,
    alpha: float,
) -> xr.Dataset:
    """Held-out G4_conn and one-input density tests of one merged point (variables ``action_*``
    and ``density_*``).  The actions are fitted on the training tuples of the even blocks and
    predict the held-out tuples and densities of the odd blocks (independent networks); the
    difference is jackknifed over block pairs (B // 2 - 1 degrees of freedom).  ``th``: exact
    theory at this width or None; ``integrals``: the family's coupling integrals (local and
    radial actions) or None."""
    inputs = ds["x"].values
    n = inputs.shape[0]
    held = np.asarray(settings["held_out"], dtype=np.int64)
    interval = tuple(settings.get("interval") or (float(inputs.min()), float(inputs.max())))
    prior = cp.Prior(
        str(ds.attrs["arch"]),
        *(float(ds.attrs[k]) for k in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1")),
    )
    fit = fit_nonlocal(prior, inputs, g4_gp, held, int(settings["modes"]), interval)
    test = heldout_tuples(n, held)
    train = ~test

    def conn4(m):
        return tup.connected4(m["f4"], m["f2"], n)

    fit4, test4, pairs = split_replicates(ds, conn4, ("f2", "f4"))
    dof = stats.jackknife_dof(pairs)
    preds = {"nonlocal": fit.predict(fit4)}
    if integrals is not None:
        quartic = integrals.integrals[integrals.reference].quartic.mean(0)
        preds["local"] = local_predictions(quartic, train, fit4, 1)
        preds["radial"] = local_predictions(quartic, train, fit4, quartic.shape[1])
    out = xr.Dataset()
    maxz = np.full(len(MODELS), np.nan)
    zvals = np.full((len(MODELS), int(test.sum())), np.nan)
    crit = np.nan
    for i, model in enumerate(MODELS):
        if model in preds:
            maxz[i], crit, zvals[i] = _max_z(preds[model][:, test] - test4[:, test], alpha, dof)
    measured = stats.from_replicates(test4[:, test])
    out["action_maxz"] = (("action_model",), maxz)
    out["action_zcrit"] = ((), crit)
    out["action_dof"] = ((), dof)
    out["action_heldout_z"] = (("action_model", "heldout_tuple"), zvals)
    out["action_heldout_tuple"] = (("heldout_tuple",), np.flatnonzero(test))
    out["action_heldout"] = (("heldout_tuple",), measured.value)
    out["action_heldout_se"] = (("heldout_tuple",), measured.stderr)
    out["action_prediction"] = (("action_model", "heldout_tuple"),
                                np.stack([stats.from_replicates(preds[m][:, test]).value
                                          if m in preds else np.full(int(test.sum()), np.nan)
                                          for m in MODELS]))  # fmt: skip
    out["action_condition"] = ((), fit.condition)
    full4 = stats.jackknife_replicates(
        {k: ds[f"sum_{k}"].values for k in ("f2", "f4")}, ds["count"].values, conn4
    )
    vertex = fit.vertex(fit.coefficients(full4))  # the action from every block
    lam = stats.from_replicates(vertex)
    out["action_vertex"] = (("vertex",), lam.value)
    out["action_vertex_modes"] = (("vertex", "slot4"), fit.index)
    out["action_eigenvalue"] = (("mode",), fit.basis.eigenvalues)
    counter = stats.from_replicates(fit.counterterm(vertex).reshape(vertex.shape[0], -1))
    r = fit.basis.modes
    out["action_counterterm"] = (("mode", "mode_b"), counter.value.reshape(r, r))
    if th is not None:  # the truncation bias: the same fit applied to the exact G4_conn
        se = stats.from_replicates(preds["nonlocal"][:, test] - test4[:, test]).stderr
        bias = (fit.predict(th.G4_conn) - th.G4_conn)[test] / se
        out["action_truncation"] = ((), float(np.max(np.abs(bias))))
    out = out.merge(_density(ds, preds, th, held, alpha, dof))
    return out


def _density(ds, preds, th, held, alpha, dof) -> xr.Dataset:
    """Histogram of the test half at the held-out inputs against the Gaussian density and the
    O(1/N) Edgeworth densities whose kappa4 the actions (fit half) predict."""
    n = ds.sizes["input"]
    edges = ds["density_edges"].values
    bins = edges.size + 1
    _, reps, _ = split_replicates(
        ds.isel(input=held), lambda m: m["density"], ("density",)
    )  # (1 + pairs, H * bins)
    diag = np.array([tup.tuple_position(4, tup.sorted_tuples(n, 4))[(a,) * 4] for a in held])
    kdiag = ds["density_scale"].values[held] ** 2  # the exact GP K(x, x)
    gauss = edgeworth_bins(edges, np.zeros(held.size)).ravel()
    models = {"gaussian": np.broadcast_to(gauss, reps.shape)}
    for name in ("nonlocal", "local"):
        if name in preds:
            c4 = preds[name][:, diag] / kdiag**2  # (1 + pairs, H)
            models[name] = edgeworth_bins(edges, c4).reshape(reps.shape[0], -1)
    out = xr.Dataset()
    measured = stats.from_replicates(reps)
    shape = (held.size, bins)
    out["density"] = (("heldout_input", "density_bin"), measured.value.reshape(shape))
    out["density_se"] = (("heldout_input", "density_bin"), measured.stderr.reshape(shape))
    out["density_input"] = (("heldout_input",), held)
    out["density_edges"] = (("density_edge",), edges)
    # a bin in which no network of the test half landed (brute estimator, far tails) has no
    # error bar: it is left out of every model's test, and the count tested is stored
    tested = measured.stderr > 0
    out["density_bins_tested"] = ((), int(tested.sum()))
    maxz = np.full(len(DENSITY_MODELS), np.nan)
    pred = np.full((len(DENSITY_MODELS), *shape), np.nan)
    crit = np.nan
    for i, name in enumerate(DENSITY_MODELS):
        if name in models:
            diff = (reps - models[name])[:, tested]
            maxz[i], crit, _ = _max_z(diff, alpha, dof)
            pred[i] = stats.from_replicates(models[name]).value.reshape(shape)
    out["density_maxz"] = (("density_model",), maxz)
    out["density_zcrit"] = ((), crit)
    out["density_prediction"] = (("density_model", "heldout_input", "density_bin"), pred)
    if th is not None:  # what O(1/N) leaves out, in units of the test's error bars
        c4 = th.G4_conn[diag] / kdiag**2
        six = tup.tuple_position(6, tup.sorted_tuples(n, 6))
        c6 = th.G6_conn[[six[(a,) * 6] for a in held]] / kdiag**3
        nxt = np.stack([edgeworth_next_order(edges, a, b) for a, b in zip(c4, c6, strict=True)])
        se = measured.stderr[tested]
        out["density_next_order"] = ((), float(np.max(np.abs(nxt.ravel()[tested]) / se)))
    return out


def method() -> str:
    """How the action analysis runs, written from the code's constants (a dataset attribute)."""
    return (
        "Mercer modes of the exact GP kernel on the action's interval by a "
        f"{NYSTROM_NODES}-node Gauss-Legendre Nystrom rule; G4_conn fitted by least squares "
        "(weights 1/G4_gp^2) in symmetric products of the leading modes on tuples of training "
        "inputs only; lambda_klmn = -C_klmn / (mu_k mu_l mu_m mu_n), B_kl = -1/2 sum_m "
        "lambda_klmm mu_m; local and radial lambda(y) fitted on the same tuples with weights "
        "1/integral(K^4)^2 at the reference cutoff; actions fitted on the even blocks predict "
        "the odd blocks (independent networks), differences jackknifed over block pairs; "
        "density: O(1/N) Edgeworth bin integrals Phi(b) - Phi(a) + kappa4/(24 K^2) "
        "[He3(a) phi(a) - He3(b) phi(b)] in z = f / sqrt(K(x, x)); max-|z| tests with "
        f"Bonferroni Student-t critical values over {', '.join(MODELS)} and "
        f"{', '.join(DENSITY_MODELS)}"
    )
