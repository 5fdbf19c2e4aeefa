"""Text layout of every figure: no text overlapping another, none leaving the canvas, no 'nan'.

The checker (nnfield.figures.textcheck) is tested on a deliberately bad figure and on a clean
one; every figure is drawn from the study datasets of the tiny workflow run (the session-wide
``finished_run`` fixture of tests/conftest.py) and must have no problem at all.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from nnfield.figures import style, textcheck
from nnfield.studies import figure_study


def _bad_figure():
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.text(0.2, 0.5, "first words here", transform=left.transAxes)
    left.text(0.25, 0.5, "second words here", transform=left.transAxes)
    left.set_title("(a) crowded")
    left.plot([0, 1], [0, 1], label=r"N = 3: $\chi^2$/dof const 1.2, $\lambda(y)$ nan")
    left.legend()
    right.set_title("(b) off the canvas")
    right.set_ylabel("a label pushed beyond the left edge")
    right.set_position((-0.2, 0.2, 0.5, 0.6))  # the panel itself sticks out on the left
    right.set_xticks([0.0, 0.01, 0.02], ["0.0000000", "0.0100000", "0.0200000"])
    return fig


def test_checker_reports_overlaps_overhangs_and_nan():
    fig = _bad_figure()
    found = textcheck.problems(fig, "bad")
    plt.close(fig)
    text = "\n".join(found)
    assert all(p.startswith("bad: ") for p in found), text
    assert any(
        "text 'first words here' overlaps" in p and "text 'second words here'" in p for p in found
    ), text
    assert any("panel '(a) crowded': legend entry" in p and "non-number" in p for p in found), text
    assert any(
        "panel '(b) off the canvas': y label 'a label pushed" in p
        and "leaves the canvas (left" in p
        for p in found
    ), text
    colliding = [p for p in found if p.count("x tick label") == 2 and "overlaps" in p]
    assert colliding and "panel '(b) off the canvas'" in colliding[0], text


def test_checker_accepts_a_plain_figure():
    fig, axes = plt.subplots(2, 2, figsize=(7, 5))
    for k, ax in enumerate(axes.flat):
        ax.plot([1, 10, 100], [1, 5, 2], label="data")
        ax.set(xscale="log", xlabel="width $N$", ylabel="value", title=f"({k}) panel")
        ax.legend()
    fig.suptitle("a figure with nothing wrong (infinite width, nanometres)")
    fig.tight_layout()
    assert textcheck.problems(fig, "plain") == []
    plt.close(fig)


def test_checker_reports_an_empty_legend():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with pytest.warns(UserWarning, match="No artists with labels"):
        ax.legend()
    ax.set_title("(a) unlabelled")
    found = textcheck.problems(fig, "empty")
    plt.close(fig)
    assert found == ["empty: panel '(a) unlabelled': a legend box without any entry"]


def test_layout_blanks_colliding_tick_labels_and_keeps_the_others():
    """matplotlib labels the minor ticks of a log axis spanning about a decade without looking
    ("3 x 10^0" runs into "4 x 10^0"); style.layout leaves the colliding ones empty."""
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot([3, 30], [1, 2])
    ax.set(xscale="log", xlabel="width")
    fig.tight_layout()
    before = textcheck.problems(fig, "log")
    assert any(p.count("x tick label") == 2 and "overlaps" in p for p in before), before
    style.layout(fig)
    assert textcheck.problems(fig, "log") == []
    shown = [t.get_text() for t, _ in textcheck.drawn_texts(fig)]
    plt.close(fig)
    assert r"$\mathdefault{10^{1}}$" in shown  # the major label stays
    assert sum(r"\times" in t for t in shown) >= 2  # and minor labels that fit
    assert "1.0" in shown and "2.0" in shown  # the y axis had nothing to blank


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "chi2 inf", "x = -inf)", "(nan)"])
def test_a_printed_non_number_is_found(text):
    assert textcheck.NOT_A_NUMBER.search(text)


@pytest.mark.parametrize("text", ["infinite width", "nanmean", "Nancy", "1e-3", "info flow"])
def test_words_that_merely_contain_nan_or_inf_pass(text):
    assert not textcheck.NOT_A_NUMBER.search(text)


def _draw(finished_run, figure: str, edit=None):
    from nnfield.engine.store import read_dataset
    from nnfield.studies import load

    study = figure_study()[figure]
    ds = read_dataset(finished_run / f"results/{study}/{study}.nc", study=study)
    if edit is not None:
        ds = edit(ds)
    fig = load(study).draw(figure, ds)
    found = textcheck.problems(fig, figure)
    plt.close(fig)
    return found


IN_TINY_RUN = sorted(set(figure_study()) - {"action_nonlocal"})
"""Figures the tiny run makes (it has no family with an action: tests/test_action.py draws and
checks action_nonlocal from its own study dataset)."""


@pytest.mark.slow
@pytest.mark.parametrize("figure", IN_TINY_RUN)
def test_figures_of_the_tiny_run_have_clean_text(finished_run, figure):
    found = _draw(finished_run, figure)
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_coupling_flow_prints_no_nan_for_a_fit_without_degrees_of_freedom(finished_run):
    """LinearFit.chi2dof is NaN where the kept covariance modes leave no degree of freedom
    (the default run's gauss N = 2): the legend says so instead of printing 'nan'."""

    def no_dof(ds):
        ds = ds.copy()
        for name in ("lambda_chi2dof", "lambda_profile_chi2dof"):
            ds[name] = ds[name].where(False)
        return ds

    found = _draw(finished_run, "coupling_flow", no_dof)
    assert not found, "\n".join(found)
