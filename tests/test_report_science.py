"""Error bars on the claims and the model's default point, and the verdicts side by side (hand-made rows)."""

from __future__ import annotations

from dataclasses import asdict

from benchmarks.claims import CHECKS, MODEL_CHECKS, Claim, claims, label
from benchmarks.compare import REFERENCE
from benchmarks.document import to_markdown
from benchmarks.report_science import interval_table, where_claims_hold
from benchmarks.sweep_grid import PAPER_TEMPLATE, Ablation, SweepConfig
from benchmarks.sweep_model import ModelBackbone

T_975_2DF = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (3 seeds)
ABLATIONS = (
    Ablation("prompt_frames", (1, 2, 4), (PAPER_TEMPLATE,)),
    Ablation("alpha", (0.0, 1.0, 4.0), (PAPER_TEMPLATE,)),
    Ablation("beta", (0.0, 0.4, 1.0), (PAPER_TEMPLATE, "dsg:{beta}")),
)
SEEDS = (0, 1, 2)  # offsets -d, 0, +d: the sample standard deviation is d


def seeded_rows(config: SweepConfig, values) -> list[dict]:
    """Every point of `config`, metrics from values(template, M, alpha, beta, seed) (others 0)."""
    rows = []
    for point in config.points():
        metrics = dict.fromkeys(config.metrics, 0.0)
        metrics.update(values(point.template, point.prompt_frames, point.alpha, point.beta, point.seed))
        rows.append({**asdict(point), "combination": point.combination, **metrics})
    return rows


def analytic(seeds=SEEDS) -> SweepConfig:
    return SweepConfig(ABLATIONS, (), seeds=seeds)


def seam_falling_with_m(d: float):
    """Seam-jump 0.5 / M (1 - beta / 2) on the paper's line (0.5, 0.25, 0.125 at beta = 0), each seed
    offset by (seed - 1) d; the mirror correlation rises with alpha and is flat in M; DSG alone falls with
    beta."""

    def values(template, m, alpha, beta, seed):
        noise = (seed - 1) * d
        seam = 0.5 / m * (1 - beta / 2) if template == PAPER_TEMPLATE else 1.0 - (beta or 0.0) / 2
        mirror = 0.0 if alpha is None else alpha / (1.0 + alpha)
        return {"seam_jump_ratio": seam + noise, "mirror_correlation": mirror}

    return values


def test_a_trend_is_resolved_when_the_ends_intervals_are_apart():
    # At beta = 0.4: 0.4, 0.2, 0.1. The half-width is t * d / sqrt(3); the ends differ by 0.3.
    for d, resolved in ((0.05, True), (0.1, False)):
        half = T_975_2DF * d / 3**0.5  # 0.124 and 0.248: 2 x 0.124 < 0.3 < 2 x 0.248
        falls = claims(seeded_rows(analytic(), seam_falling_with_m(d)), analytic())[0]
        assert falls.holds and falls.resolved is resolved
        assert f"±{half:.3g} at M=1" in falls.text
        assert label(falls) == ("holds" if resolved else "holds within the noise")
        assert falls.text.startswith(
            "**Holds.**" if resolved else "**Holds on the means, within the noise.**"
        )


def test_a_trend_against_the_claim_is_resolved_only_with_the_step_intervals_apart():
    # Mirror correlation on the alpha line: 0.5, 0.2, 0.6 at alpha 0, 1, 4 (it is claimed to rise).
    def values(d):
        def at(template, m, alpha, beta, seed):
            mirror = {0.0: 0.5, 1.0: 0.2, 4.0: 0.6}.get(alpha, 0.3) + (seed - 1) * d
            return {"seam_jump_ratio": 1.0, "mirror_correlation": mirror}

        return at

    for d, resolved in ((0.05, True), (0.1, False)):  # the drop 0.3 against 2 t d / sqrt(3) = 0.248, 0.497
        rises = claims(seeded_rows(analytic(), values(d)), analytic())[3]
        assert rises.holds is False and rises.resolved is resolved
        assert label(rises) == ("does not hold" if resolved else "does not hold within the noise")


def test_flatness_is_resolved_by_the_intervals_extremes():
    # Mirror correlation along M: 0.30, 0.31, 0.32 (range 0.02 <= FLAT = 0.05) with seed offsets (seed - 1) d.
    def values(d, step=0.01):
        def at(template, m, alpha, beta, seed):
            mirror = 0.3 + step * {1: 0, 2: 1, 4: 2}[m] + (seed - 1) * d
            return {"seam_jump_ratio": 1.0 / m, "mirror_correlation": mirror}

        return at

    flat = claims(seeded_rows(analytic(), values(0.005)), analytic())[4]  # extremes 0.02 + 2 x 0.0124
    assert flat.holds and flat.resolved
    flat = claims(seeded_rows(analytic(), values(0.01)), analytic())[4]  # 0.02 + 2 x 0.0248 > 0.05
    assert flat.holds and flat.resolved is False
    moving = claims(seeded_rows(analytic(), values(0.01, step=0.1)), analytic())[4]  # 0.2 - 0.0497 > FLAT
    assert moving.holds is False and moving.resolved
    one_seed = claims(seeded_rows(analytic((0,)), values(0.0)), analytic((0,)))[4]
    assert one_seed.resolved is None and label(one_seed) == "holds on one seed"
    assert label(Claim("x", None, "")) == "not measured"


def model_sweep(extras: tuple[str, ...] = ("overlap", "independent")) -> SweepConfig:
    backbone = ModelBackbone(samples=16)
    return SweepConfig(ABLATIONS, extras, prompt_frames=2, seeds=SEEDS, backbone=backbone)


def default_point(jumps: dict[str, float], mirrors: dict[str, float], d: float):
    """Velocity jump and mirror correlation per template at every point, seed offsets (seed - 1) d."""

    def at(template, m, alpha, beta, seed):
        return {"velocity_jump": jumps.get(template, 1.0) + (seed - 1) * d,
                "mirror_correlation": mirrors.get(template, 0.5) + (seed - 1) * d,
                "seam_jump_ratio": 1.0 / m}  # fmt: skip

    return at


def test_the_default_point_table_names_what_beats_the_paper_on_both_counts():
    jumps = {PAPER_TEMPLATE: 4.0, "overlap": 2.0, "independent": 1.0, REFERENCE: 0.8}
    mirrors = {PAPER_TEMPLATE: 0.3, "overlap": 0.1, "independent": 0.5, REFERENCE: 0.05}
    config = model_sweep()
    markdown = to_markdown(interval_table(seeded_rows(config, default_point(jumps, mirrors, 0.02)), config))
    half = T_975_2DF * 0.02 / 3**0.5  # 0.0497
    assert f"| `fnr,pns:4.0,dsg:0.4` | 4 ± {half:.2g} | 0 ± 0 | 0.3 ± {half:.2g} |" in markdown
    assert f"| `{REFERENCE}` | 0.8 ± {half:.2g} |" in markdown and "| `dsg:0.4` |" in markdown
    # independent is more continuous but loops more; overlap beats the paper on both.
    assert "with the 95% intervals apart: `overlap`." in markdown
    # With wide intervals (half-width 0.497 > half of the mirror gap 0.2), nothing is resolved.
    markdown = to_markdown(interval_table(seeded_rows(config, default_point(jumps, mirrors, 0.2)), config))
    assert "with the 95% intervals apart: none." in markdown
    one_seed = SweepConfig(ABLATIONS, ("overlap",), prompt_frames=2, seeds=(0,), backbone=ModelBackbone())
    assert interval_table(seeded_rows(one_seed, default_point(jumps, mirrors, 0.0)), one_seed) == []


def test_where_claims_hold_groups_the_verdicts_per_backbone():
    ddim = analytic()
    rows = seeded_rows(ddim, seam_falling_with_m(0.01))  # all five analytic claims hold, resolved
    model = model_sweep(())

    def on_model(template, m, alpha, beta, seed):  # the seam-jump falls with M, the velocity jump rises
        return {
            "seam_jump_ratio": 0.5 / m + (seed - 1) * 0.2,
            "mirror_correlation": 0.5,
            "velocity_jump": 3.0 * m,
        }

    model_rows = seeded_rows(model, on_model)
    expected = [label(c) for c in claims(model_rows, model, MODEL_CHECKS)]
    assert expected[0] == "holds within the noise"  # 0.375 against 2 t 0.2 / sqrt(3) = 0.99
    markdown = to_markdown(where_claims_hold((rows, ddim), (rows, ddim), (model_rows, model)))
    assert markdown.startswith("## 7. Where the paper's claims hold")
    first = f"| {CHECKS[0].statement} | holds | holds | holds within the noise |"
    assert first in markdown
    pixel = MODEL_CHECKS[len(CHECKS)].statement  # the velocity jump falls with M: it rises, no noise
    assert f"| {pixel} | — | — | does not hold |" in markdown
    assert f"the others: {pixel} (does not hold)" in markdown
    assert "Hold only on the analytic backbone: " + CHECKS[0].statement in markdown
    assert "Hold on neither: none." in markdown
    without_model = to_markdown(where_claims_hold((rows, ddim), (rows, ddim), None))
    assert "trained model" not in without_model.split("\n\n")[2]  # the table has two verdict columns


def test_one_seed_sweeps_keep_their_plain_verdicts():
    config = analytic((0,))
    found = claims(seeded_rows(config, seam_falling_with_m(0.0)), config)
    assert [c.holds for c in found] == [True] * 5 and all(c.resolved is None for c in found)
    assert all("95% intervals" not in c.text for c in found)
