"""Simulate one shard of a learning point: per block and record, sums over its networks of the
state's moments, the loss and the accumulated medium entropy, plus the states of a few sampled
networks, in the raw layout of nnfield.engine.simulate.  Quadratic and barrier problems run
nnfield.studies.learning.dynamics, teacher-student problems nnfield.studies.learning
.teacher_student; each kind has its own table of variables."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnfield.config import PointSpec
from nnfield.engine.simulate import BlockKernel, ShardResult, ShardTask, Variable, simulate_shard

RAW_VARIABLES = ("count", "nonfinite", "loss", "loss2", "grad2", "medium", "medium2")
"""Raw variables every kind of point has (each kind adds its own)."""

_B, _R = ("block",), ("block", "step")
_COUNTS = {
    "count": Variable(_B, "networks in block"),
    "nonfinite": Variable(_B, "networks in block whose state or medium entropy became NaN/inf"),
}
_STEP = {"step": Variable(("step",), "training step of the record")}
QUADRATIC_VARIABLES = {
    **_COUNTS,
    "q1": Variable((*_R, "dim"),
                   "sum over networks of the state q (the trainable variables; (q, p) for "
                   "momentum)"),
    "qq": Variable((*_R, "dim", "dim2"), "sum over networks of q q^T"),
    "loss": Variable(_R, "sum over networks of the loss U (the energy U + p^2/2 for momentum)"),
    "loss2": Variable(_R, "sum over networks of U^2"),
    "grad2": Variable(_R, "sum over networks of |grad U|^2"),
    "medium": Variable(_R, "sum over networks of the accumulated medium entropy (nats)"),
    "medium2": Variable(_R, "sum over networks of the squared accumulated medium entropy"),
    "c1": Variable((*_R, "dim"),
                   "sum over networks of each network's own minimum q* (data disorder)"),
    "cc": Variable((*_R, "dim", "dim2"), "sum over networks of q* q*^T"),
    "qc": Variable((*_R, "dim", "dim2"), "sum over networks of q q*^T"),
    "sample_center": Variable((*_R, "sample", "dim"), "q* of the sampled networks"),
    "sample_state": Variable((*_R, "sample", "dim"),
                             "q of the sampled networks (the first of each block)"),
    "sample_medium": Variable((*_R, "sample"),
                              "accumulated medium entropy of the sampled networks", "nats"),
    **_STEP,
}  # fmt: skip
"""Variables of quadratic and barrier points: dimensions, long_name, units."""

TEACHER_VARIABLES = {
    **_COUNTS,
    "z1": Variable((*_R, "dim"),
                   "sum over networks of the state x (theta, then p for momentum)"),
    "zz": Variable((*_R, "dim", "dim2"), "sum over networks of x x^T"),
    "f1": Variable((*_R, "probe"), "sum over networks of the outputs on the probe inputs"),
    "ff": Variable((*_R, "probe", "probe2"), "sum over networks of products of probe outputs"),
    "loss": Variable(_R, "sum over networks of the training loss U"),
    "loss2": Variable(_R, "sum over networks of U^2"),
    "kinetic": Variable(_R, "sum over networks of |p|^2 / 2 (0 without momentum)"),
    "test_loss": Variable(_R,
                          "sum over networks of the test loss against the noiseless teacher"),
    "grad2": Variable(_R, "sum over networks of |grad U|^2"),
    "lap": Variable(_R, "sum over networks of a Hutchinson estimate of the Laplacian of U"),
    "medium": Variable(_R, "sum over networks of the accumulated medium entropy", "nats"),
    "medium2": Variable(_R, "sum over networks of the squared accumulated medium entropy",
                        "nats^2"),
    "heat_limit": Variable(
        _R,
        "sum over networks of the accumulated zero-temperature heat Q (T x medium "
        "for sgld and momentum; for sgd the log-sum-exps over batches replaced by "
        "their largest terms, |T medium - Q| <= T ln(batches) per step)",
    ),
    "sample_state": Variable((*_R, "sample", "dim"),
                             "state x of the sampled networks (the first of each block)"),
    "sample_medium": Variable((*_R, "sample"),
                              "accumulated medium entropy of the sampled networks", "nats"),
    "sample_output": Variable((*_R, "sample", "probe"), "probe outputs of the sampled networks"),
    "one_step_ft": Variable(
        ("block", "moment"),
        "sums over networks of w and w^2 (moment 0, 1), w = exp(-[ln p0(x_0) - "
        "ln p0(eps x_1) + Delta s_medium]) of the first step (<w> = 1 exactly)",
    ),
    **_STEP,
}  # fmt: skip
"""Variables of teacher-student points: dimensions, long_name, units."""

POINT_ATTRS = ("problem", "optimizer", "initial", "learning_rate", "temperature")


def simulate(spec: PointSpec, shard: int = 0,
             progress: Callable[[str], None] | None = None):  # fmt: skip
    """Raw per-record block sums for the blocks of ``shard``."""
    if spec.params["kind"] == "teacher_student":
        return simulate_shard(spec, shard, progress, _prepare_teacher, TEACHER_VARIABLES)
    return simulate_shard(spec, shard, progress, _prepare_quadratic, QUADRATIC_VARIABLES)


def _attrs(p) -> dict:
    return {
        **{k: p[k] for k in POINT_ATTRS},
        "n_blocks": np.int64(p["networks"] // p["block_size"]),
    }


def _prepare_quadratic(task: ShardTask) -> BlockKernel:
    from nnfield.studies.learning.dynamics import make_block_function, stack_records
    from nnfield.studies.learning.problems import center_covariance, initial_ensemble, problem

    p = task.params
    if p["kind"] == "barrier":
        from nnfield.studies.learning import barrier

        dyn = barrier.dynamics(p)
        mean0, cov0 = barrier.initial_ensemble(p)
    else:
        dyn, _, _ = problem(p)
        mean0, cov0 = initial_ensemble(p)
    n_records, center = p["steps"] // p["record_every"] + 1, center_covariance(p)
    fn = make_block_function(dyn, mean0, cov0, p["block_size"], n_records, p["record_every"],
                             p["samples"], center)  # fmt: skip
    return BlockKernel(lambda b: fn(task.key, b), lambda out: _quadratic_result(
        p, stack_records(out, p["block_size"], n_records, p["record_every"], center)))  # fmt: skip


def _quadratic_result(p, rec) -> ShardResult:
    data = {
        "count": rec.count,
        "nonfinite": rec.nonfinite,
        "q1": rec.q1,
        "qq": rec.qq,
        **{k: getattr(rec, k) for k in ("loss", "loss2", "grad2", "medium", "medium2")},
        "sample_state": rec.sample_state,
        "sample_medium": rec.sample_medium,
    }
    disorder = {} if rec.c1 is None else {
        "c1": rec.c1, "cc": rec.cc, "qc": rec.qc, "sample_center": rec.sample_center}  # fmt: skip
    return ShardResult(data=data, nonfinite=rec.nonfinite, nonfinite_what="states",
                       attrs=_attrs(p), coords={"step": rec.steps}, optional=disorder)  # fmt: skip


def _prepare_teacher(task: ShardTask) -> BlockKernel:
    from nnfield.studies.learning.teacher import build, state_moments
    from nnfield.studies.learning.teacher_student import make_block_function, stack_records

    p = task.params
    trainer, initial = build(p)
    n_records, moments = p["steps"] // p["record_every"] + 1, state_moments(p, trainer.state_dim)
    fn = make_block_function(trainer, initial, p["block_size"], n_records, p["record_every"],
                             p["samples"], moments)  # fmt: skip
    return BlockKernel(lambda b: fn(task.key, b), lambda out: _teacher_result(
        p, stack_records(out, p["block_size"], n_records, p["record_every"], moments)))  # fmt: skip


def _teacher_result(p, rec) -> ShardResult:
    data = {"count": rec.count, "nonfinite": rec.nonfinite, **rec.sums, **rec.samples,
            "one_step_ft": rec.one_step_ft}  # fmt: skip
    return ShardResult(data=data, nonfinite=rec.nonfinite, nonfinite_what="states",
                       attrs=_attrs(p), coords={"step": rec.steps})  # fmt: skip
