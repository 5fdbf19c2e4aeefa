"""Teacher-student regression ensembles trained by noisy gradient descent, in JAX
(docs/physics.md section 3).

Networks: fully connected, ``depth`` hidden layers of ``width`` units (depth 0 is the linear
model), scalar output, NTK-free standard parametrisation f = W_L phi(... phi(W_0 x + b_0)) + b_L
with every parameter trainable and initialised as W ~ N(0, sigma_w^2 / fan_in), b ~ N(0, sigma_b^2).
The parameters of one network are a flat vector theta of length P (layer by layer, W row-major
then b).

Loss (a fixed function of theta, the "energy" of the thermodynamics):
    U(theta) = 1/(2n) sum_i (f(x_i) - y_i)^2 + (weight_decay / 2) |theta|^2
on n training pairs from a fixed, seeded teacher network plus label noise.  Minibatches are the
n/b consecutive batches of the (random) training order, U_B the same loss on batch B.

Optimizers, one step (eta the learning rate, T the temperature, xi ~ N(0, I)):
- ``sgld``:     theta' = theta - eta grad U(theta) + sqrt(2 eta T) xi;
- ``sgd``:      as sgld with grad U_B for a batch B drawn uniformly per step: minibatch noise on
                top of the Langevin noise (T > 0 keeps the kernel non-singular, so heat / T exists);
- ``momentum``: SGD with heavy-ball momentum in the PyTorch/optax convention, learning rate eta
                and momentum beta = ``momentum``: without noise it is exactly
                theta' = theta - eta grad U(theta) + beta (theta - theta_prev).
                It is run as underdamped Langevin by the BAOAB splitting with friction factor
                beta per step, unit mass and step h = sqrt(2 eta / (1 + beta)) (eliminating p
                from two noiseless BAOAB steps gives heavy ball with learning rate
                h^2 (1 + beta) / 2 = eta):  p -= h/2 grad U; theta += h/2 p;
                p = beta p + sqrt((1-beta^2) T) xi;  theta += h/2 p;  p -= h/2 grad U.  The
                state is (theta, p), p is odd under time reversal and starts Maxwellian,
                p ~ N(0, T I).  BAOAB samples the configuration marginal exp(-U/T) exactly only
                for quadratic U; otherwise its stationary law has O(h^2) errors.
Medium entropy per step, exactly per sample, ln K(x -> x') / K(eps x' -> eps x) (eps flips p):
- sgld/sgd: the Gaussian-mixture kernel over the n/b batches, mean theta - eta grad U_B(theta),
  covariance 2 eta T I (one batch: the Gaussian log-ratio of docs/physics.md section 3);
- momentum: only the O step is stochastic and the deterministic B/A steps are volume-preserving
  and reversible, so the log-ratio is the heat released by the thermostat, (|p|^2 - |p'|^2)/(2T).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from nnfield import activations
from nnfield.engine.nonfinite import nonfinite_rows
from nnfield.engine.precision import require_x64
from nnfield.engine.sharding import constrain_batch

ACTIVATIONS = {name: activations.REGISTRY[name].jax for name in ("tanh", "relu", "erf", "linear")}
"""The student's activations (JAX maps of nnfield.activations; relu is jax.nn.relu, whose
derivative at 0 is 0)."""
OPTIMIZERS = ("sgld", "sgd", "momentum")


@dataclass(frozen=True)
class MLP:
    """Architecture of a scalar-output fully connected network with a flat parameter vector."""

    input_dim: int
    width: int
    depth: int  # hidden layers (0: the linear model f = w.x + b)
    activation: str = "tanh"
    sigma_w: float = 1.0
    sigma_b: float = 0.1

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each affine layer, input to output."""
        dims = [self.input_dim] + [self.width] * self.depth + [1]
        return list(itertools.pairwise(dims))

    @property
    def n_params(self) -> int:
        return sum(i * o + o for i, o in self.layer_dims)

    def init_std(self) -> np.ndarray:
        """Standard deviation of every parameter at initialisation (P,)."""
        parts = []
        for fan_in, fan_out in self.layer_dims:
            parts += [np.full(fan_in * fan_out, self.sigma_w / np.sqrt(fan_in)),
                      np.full(fan_out, self.sigma_b)]  # fmt: skip
        return np.concatenate(parts)

    def apply(self, theta, x):
        """Outputs (n,) of the network with parameters ``theta`` (P,) on inputs ``x`` (n, d)."""
        phi = ACTIVATIONS[self.activation]
        h, start = x, 0
        layers = self.layer_dims
        for i, (fan_in, fan_out) in enumerate(layers):
            w = theta[start : start + fan_in * fan_out].reshape(fan_out, fan_in)
            start += fan_in * fan_out
            b = theta[start : start + fan_out]
            start += fan_out
            h = h @ w.T + b
            if i < len(layers) - 1:
                h = phi(h)
        return h[:, 0]


@dataclass(frozen=True)
class Task:
    """Synthetic regression data from a teacher network (all arrays float64)."""

    train_x: np.ndarray  # (n, d)
    train_y: np.ndarray  # (n,)
    test_x: np.ndarray  # (n_test, d)
    test_y: np.ndarray  # (n_test,) noiseless teacher outputs
    probe_x: np.ndarray  # (k, d) inputs on which function-space entropy is measured

    @classmethod
    def from_teacher(cls, teacher: MLP, seed: int, train_size: int, test_size: int,
                     probes: int, label_noise: float) -> Task:  # fmt: skip
        """Inputs x ~ N(0, I_d), teacher parameters at their initial distribution, labels
        y = teacher(x) + label_noise * N(0, 1); every draw from numpy's PCG64 seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        theta = rng.standard_normal(teacher.n_params) * teacher.init_std()
        d = teacher.input_dim
        train_x = rng.standard_normal((train_size, d))
        test_x = rng.standard_normal((test_size, d))
        probe_x = rng.standard_normal((probes, d))
        out = lambda x: np.asarray(teacher.apply(jnp.asarray(theta), jnp.asarray(x)))  # noqa: E731
        train_y = out(train_x) + label_noise * rng.standard_normal(train_size)
        return cls(train_x, train_y, test_x, out(test_x), probe_x)


@dataclass(frozen=True)
class Trainer:
    """One optimizer on one task (see the module docstring for the conventions)."""

    model: MLP
    task: Task
    optimizer: str
    learning_rate: float
    temperature: float
    weight_decay: float
    batch_size: int
    momentum: float = 0.0

    def __post_init__(self):
        require_x64("a teacher-student trainer")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if not self.temperature > 0:
            raise ValueError("the temperature must be > 0: the medium entropy is heat / T")
        n = self.task.train_y.size
        if n % self.batch_size:
            raise ValueError(f"batch_size {self.batch_size} does not divide train_size {n}")
        if self.optimizer != "sgd" and self.batch_size != n:
            raise ValueError(f"{self.optimizer} uses full-batch gradients (batch_size = {n})")

    @property
    def n_params(self) -> int:
        return self.model.n_params

    @property
    def state_dim(self) -> int:
        """Dimension of the dynamical state: theta, plus the momentum p for ``momentum``."""
        return 2 * self.n_params if self.optimizer == "momentum" else self.n_params

    @cached_property
    def _batches(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (n_batches, b, d) and labels (n_batches, b), host arrays (constants to jit)."""
        nb = self.task.train_y.size // self.batch_size
        x = self.task.train_x.reshape(nb, self.batch_size, -1)
        y = self.task.train_y.reshape(nb, self.batch_size)
        return x, y

    def loss(self, theta, x=None, y=None):
        """U on (x, y) (the whole training set by default), weight decay included."""
        x = jnp.asarray(self.task.train_x) if x is None else x
        y = jnp.asarray(self.task.train_y) if y is None else y
        r = self.model.apply(theta, x) - y
        return 0.5 * jnp.mean(r * r) + 0.5 * self.weight_decay * jnp.dot(theta, theta)

    def batch_gradients(self, theta):
        """grad U_B(theta) for every batch B: (n_batches, P)."""
        xb, yb = self._batches
        return jax.vmap(jax.grad(self.loss), in_axes=(None, 0, 0))(theta, xb, yb)

    def laplacian_probe(self, theta, v):
        """v^T (Hessian of U) v: for Rademacher v, Hutchinson's unbiased Laplacian estimate."""
        return jnp.dot(jax.jvp(jax.grad(self.loss), (theta,), (v,))[1], v)

    def test_loss(self, theta):
        """1/(2 n_test) sum (f(x) - teacher(x))^2 on the held-out inputs."""
        r = self.model.apply(theta, jnp.asarray(self.task.test_x)) - jnp.asarray(self.task.test_y)
        return 0.5 * jnp.mean(r * r)

    @property
    def baoab_step_size(self) -> float:
        """h = sqrt(2 eta / (1 + beta)): the BAOAB step whose noiseless position update is heavy
        ball with learning rate eta and momentum beta."""
        return float(np.sqrt(2 * self.learning_rate / (1 + self.momentum)))

    def baoab_step(self, state, grads, kick):
        """One BAOAB step of the momentum optimizer with thermostat kick ``kick`` (the O step's
        noise, sqrt((1 - beta^2) T) xi; zero gives the noiseless heavy-ball update): (state,
        full-batch gradient at theta in grads[0], kick) -> (state', grads', medium entropy
        (|p|^2 - |p'|^2) / (2T) of the O step)."""
        h, beta, p_dim = self.baoab_step_size, self.momentum, self.n_params
        theta, p = state[:p_dim], state[p_dim:]
        p = p - 0.5 * h * grads[0]
        theta = theta + 0.5 * h * p
        before = p
        p = beta * p + kick
        medium = (jnp.dot(before, before) - jnp.dot(p, p)) / (2 * self.temperature)
        theta = theta + 0.5 * h * p
        grads = self.batch_gradients(theta)
        p = p - 0.5 * h * grads[0]
        return jnp.concatenate([theta, p]), grads, medium

    def step(self, state, grads, key):
        """One step of one network: (state, batch gradients at it, key) -> (state', grads',
        medium entropy s of the step, its zero-temperature heat Q).  ``grads`` are the
        per-batch gradients (n_batches, P) at the state's theta, carried so that each step
        evaluates them once.

        Q is T s for sgld and momentum exactly (their kernels are Gaussian in the added
        noise).  For minibatch sgd each log-sum-exp over the B batches is replaced by its
        largest term, Q = (min_b |x - x' + eta g_b(x')|^2 - min_b |x' - x + eta g_b(x)|^2) /
        (4 eta), so |T s - Q| <= T ln B per step: s = Q / T + O(ln B), the irreversibility of
        the minibatch moves measured in units of the added temperature, and T s -> Q as T -> 0
        along the same trajectory."""
        eta, temp = self.learning_rate, self.temperature
        p_dim = self.n_params
        if self.optimizer == "momentum":
            xi = jax.random.normal(key, (p_dim,))
            kick = jnp.sqrt((1 - self.momentum**2) * temp) * xi
            new, new_grads, medium = self.baoab_step(state, grads, kick)
            return new, new_grads, medium, temp * medium
        k_batch, k_noise = jax.random.split(key)
        batch = jax.random.randint(k_batch, (), 0, grads.shape[0])
        noise = jnp.sqrt(2 * eta * temp) * jax.random.normal(k_noise, (p_dim,))
        new = state - eta * grads[batch] + noise
        new_grads = self.batch_gradients(new)
        fwd = new[None] - state[None] + eta * grads
        bwd = state[None] - new[None] + eta * new_grads
        scale = 4 * eta * temp
        d_fwd, d_bwd = jnp.sum(fwd * fwd, axis=1), jnp.sum(bwd * bwd, axis=1)
        log_fwd = jax.scipy.special.logsumexp(-d_fwd / scale)
        log_bwd = jax.scipy.special.logsumexp(-d_bwd / scale)
        heat = (jnp.min(d_bwd) - jnp.min(d_fwd)) / (4 * eta)
        return new, new_grads, log_fwd - log_bwd, heat


@dataclass(frozen=True)
class InitialEnsemble:
    """Independent Gaussian initial state N(mean, diag(std^2)) of theta (and p ~ N(0, T))."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    @classmethod
    def of(cls, trainer: Trainer, kind: str, seed: int | Sequence[int]) -> InitialEnsemble:
        """``broad``: the initialisation distribution itself; ``narrow``: one fixed draw from
        it (numpy seeded by ``seed``) with 1% of its spread."""
        std = trainer.model.init_std()
        if kind == "broad":
            mean = np.zeros_like(std)
        elif kind == "narrow":
            mean = np.random.default_rng(seed).standard_normal(std.size) * std
            std = 0.01 * std
        else:
            raise ValueError(f"unknown initial ensemble {kind!r}")
        if trainer.optimizer == "momentum":
            mean = np.concatenate([mean, np.zeros_like(std)])
            std = np.concatenate([std, np.full(std.size, np.sqrt(trainer.temperature))])
        return cls(mean, std)

    @property
    def entropy(self) -> float:
        """Exact entropy (nats)."""
        return float(np.sum(np.log(self.std)) + 0.5 * self.std.size * np.log(2 * np.pi * np.e))


@dataclass(frozen=True)
class Recorded:
    """Per-block sums at each recorded step (leading axes block, record), float64."""

    steps: np.ndarray  # (R,)
    count: np.ndarray  # (B,)
    sums: dict[str, np.ndarray]  # name -> (B, R, ...), see SUMS
    samples: dict[str, np.ndarray]  # the first S networks of each block, see SAMPLES
    nonfinite: np.ndarray  # (B,) networks whose state or medium entropy became NaN/inf
    one_step_ft: np.ndarray | None = None  # (B, 2) sums of w and w^2, see ONE_STEP_FT


SUMS = {
    "z1": "state x (theta, then p for momentum)",
    "zz": "x x^T",
    "f1": "outputs on the probe inputs",
    "ff": "products of probe outputs f f^T",
    "loss": "loss U",
    "loss2": "U^2",
    "kinetic": "kinetic energy |p|^2 / 2 (0 without momentum)",
    "test_loss": "test loss against the noiseless teacher",
    "grad2": "|grad U|^2",
    "lap": "Hutchinson estimate of the Laplacian of U (one Rademacher probe per network)",
    "medium": "medium entropy accumulated since step 0 (nats)",
    "medium2": "squared accumulated medium entropy",
    "heat_limit": "zero-temperature heat Q accumulated since step 0 (Trainer.step; T x medium "
    "for sgld and momentum)",
}
ONE_STEP_FT = (
    "w = exp(-[ln p0(x_0) - ln p0(eps x_1) + Delta s_medium]) of the first step, every network: "
    "<w> = 1 exactly for any dynamics (p0 the exact initial density at both ends)"
)
SAMPLES = {
    "sample_state": "state x of the first S networks of each block (B, R, S, D)",
    "sample_medium": "their accumulated medium entropy (B, R, S)",
    "sample_output": "their outputs on the probe inputs (B, R, S, k)",
}


def make_block_function(trainer: Trainer, initial: InitialEnsemble, block_size: int,
                        n_records: int, record_every: int, samples: int,
                        state_moments: bool = True):  # fmt: skip
    """A jitted ``(key, block) -> sums`` (see SUMS and Recorded); network j of block b uses
    fold_in(fold_in(key, b), j), its initial state fold_in(., 0), step n fold_in(fold_in(., 1), n)
    and the Hutchinson probe of record r fold_in(fold_in(., 2), r)."""
    require_x64("the teacher-student block kernel")
    d = trainer.state_dim
    p_dim = trainer.n_params
    mean0, std0 = jnp.asarray(initial.mean), jnp.asarray(initial.std)
    probes = jnp.asarray(trainer.task.probe_x)

    step_all = jax.vmap(trainer.step)
    grads_all = jax.vmap(trainer.batch_gradients)

    def log_p0(x):
        """ln p0(x) of the initial diagonal Gaussian, up to a constant that cancels."""
        u = (x - mean0) / std0
        return -0.5 * jnp.sum(u * u, axis=1)

    def stats(x, medium, heat, keys, r):
        theta = x[:, :p_dim]
        f = jax.vmap(lambda t: trainer.model.apply(t, probes))(theta)
        u = jax.vmap(trainer.loss)(theta)
        g = jax.vmap(jax.grad(trainer.loss))(theta)
        probe_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 2), r))(keys)
        v = jax.vmap(lambda k: jax.random.rademacher(k, (p_dim,), dtype=jnp.float64))(probe_keys)
        lap = jax.vmap(trainer.laplacian_probe)(theta, v)
        pp = x[:, p_dim:]
        kinetic = 0.5 * jnp.sum(pp * pp, axis=1)
        zz = x.T @ x if state_moments else jnp.zeros((0, 0))
        return {
            "z1": x.sum(0), "zz": zz, "f1": f.sum(0), "ff": f.T @ f,
            "loss": u.sum(), "loss2": (u * u).sum(), "kinetic": kinetic.sum(),
            "test_loss": jax.vmap(trainer.test_loss)(theta).sum(),
            "grad2": (g * g).sum(), "lap": lap.sum(), "medium": medium.sum(),
            "medium2": (medium * medium).sum(), "heat_limit": heat.sum(),
            "sample_state": x[:samples],
            "sample_medium": medium[:samples], "sample_output": f[:samples],
        }  # fmt: skip

    @jax.jit
    def block_sums(key, block):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
            jax.random.fold_in(key, block), constrain_batch(jnp.arange(block_size))
        )
        x = mean0 + std0 * jax.vmap(
            lambda k: jax.random.normal(jax.random.fold_in(k, 0), (d,))
        )(keys)  # fmt: skip
        step_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        grads = grads_all(x[:, :p_dim])
        log_p0_start = log_p0(x)

        def one_step(n, carry):
            x, grads, medium, heat, log_w = carry
            ks = jax.vmap(jax.random.fold_in, in_axes=(0, None))(step_keys, n)
            x_new, grads, m, q = step_all(x, grads, ks)
            # the one-step fluctuation theorem's log-weight, from the first step (p0 is even
            # in the momenta: p0(eps x) = p0(x))
            log_w = jnp.where(n == 0, log_p0(x_new) - log_p0_start - m, log_w)
            return x_new, grads, medium + m, heat + q, log_w

        def record(carry, r):
            # record r after r * record_every steps (record 0: none); the step and the
            # statistics appear once in the program, which halves its compilation
            *carry, bad = carry
            carry = jax.lax.fori_loop(jnp.maximum(r - 1, 0) * record_every, r * record_every,
                                      one_step, tuple(carry))  # fmt: skip
            bad |= nonfinite_rows(carry[0], carry[2])
            return (*carry, bad), stats(carry[0], carry[2], carry[3], keys, r)

        zeros = jnp.zeros(block_size)  # medium entropy, heat, one-step log-weight
        init = (x, grads, zeros, zeros, zeros, nonfinite_rows(x, zeros))
        (*_, log_w, bad), out = jax.lax.scan(record, init, jnp.arange(n_records))
        w = jnp.exp(log_w)
        ft = jnp.stack([w.sum(), (w * w).sum()])
        return {**out, "nonfinite": jnp.sum(bad, dtype=jnp.int64), "one_step_ft": ft}

    return block_sums


def run_blocks(trainer: Trainer, initial: InitialEnsemble, key, blocks, block_size: int,
               n_records: int, record_every: int, samples: int = 0,
               state_moments: bool = True, progress=None, label: str = "") -> Recorded:  # fmt: skip
    """Per-block recorded sums for ``blocks``; progress lines as in nnfield.engine.progress."""
    from nnfield.engine.progress import run_with_progress

    fn = make_block_function(trainer, initial, block_size, n_records, record_every, samples,
                             state_moments)  # fmt: skip
    out = run_with_progress(lambda b: fn(key, b), list(blocks), block_size, progress, label)
    return stack_records(out, block_size, n_records, record_every, state_moments)


def stack_records(out: list[dict], block_size: int, n_records: int, record_every: int,
                  state_moments: bool = True) -> Recorded:  # fmt: skip
    """The :class:`Recorded` sums of the per-block outputs of ``make_block_function``."""
    stacked = {k: np.stack([np.asarray(o[k]) for o in out]) for k in out[0]}
    samples_arr = {k: stacked.pop(k) for k in SAMPLES}
    nonfinite = stacked.pop("nonfinite")
    one_step_ft = stacked.pop("one_step_ft")
    if not state_moments:
        stacked.pop("zz")
    steps = np.arange(n_records) * record_every
    count = np.full(len(out), block_size, dtype=np.int64)
    return Recorded(steps, count, stacked, samples_arr, nonfinite, one_step_ft)
