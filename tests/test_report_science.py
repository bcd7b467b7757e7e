"""Error bars on the claims and the model's default point, and the verdicts side by side (hand-made rows)."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.claims import CHECKS, MODEL_CHECKS, Claim, claims, label
from benchmarks.compare import REFERENCE
from benchmarks.document import to_markdown
from benchmarks.model_continuity import COMPOSITIONS, build_parser, regenerate_flags
from benchmarks.report import ReportConfig
from benchmarks.report_config import read_continuity
from benchmarks.report_science import continuity_section, interval_table, where_claims_hold
from benchmarks.report_sections import regenerate_commands
from benchmarks.sweep_grid import PAPER_TEMPLATE, Ablation, SweepConfig
from benchmarks.sweep_model import ModelBackbone
from samplers.registry import KIT_DEFAULT, PAPER

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
    """Seam-jump 0.5 / M (1 - beta / 2) on the paper's line (0.4, 0.2, 0.1 at beta = 0.4), M = 4's value
    offset by (seed - 1) d (so the paired difference M=4 minus M=1 has standard deviation d); the mirror
    correlation rises with alpha and is flat in M; DSG alone falls with beta."""

    def values(template, m, alpha, beta, seed):
        noise = (seed - 1) * d if m == 4 else 0.0
        seam = 0.5 / m * (1 - beta / 2) if template == PAPER_TEMPLATE else 1.0 - (beta or 0.0) / 2
        mirror = 0.0 if alpha is None else alpha / (1.0 + alpha)
        return {"seam_jump_ratio": seam + noise, "mirror_correlation": mirror}

    return values


def test_a_trend_is_resolved_when_the_ends_paired_difference_is_beyond_its_interval():
    # The last minus the first: -0.3 per seed plus -d, 0, +d: half-width t d / sqrt(3) = 2.48 d.
    for d, resolved in ((0.1, True), (0.15, False)):  # 0.248 < 0.3 < 0.373
        falls = claims(seeded_rows(analytic(), seam_falling_with_m(d)), analytic())[0]
        assert falls.holds and falls.resolved is resolved
        assert f"M=4 minus M=1: -0.3 ± {T_975_2DF * d / 3**0.5:.2g}" in falls.text
        assert label(falls) == ("holds" if resolved else "holds within the noise")
        assert falls.text.startswith(
            "**Holds.**" if resolved else "**Holds on the means, within the noise.**"
        )

    # Noise shared by every point of a seed cancels in the paired differences: resolved at any size.
    def shared(template, m, alpha, beta, seed):
        return {"seam_jump_ratio": 0.5 / m + (seed - 1) * 10.0, "mirror_correlation": 0.0}

    assert claims(seeded_rows(analytic(), shared), analytic())[0].resolved


def test_a_trend_against_the_claim_is_resolved_only_by_a_step_against_it():
    # Mirror correlation on the alpha line: 0.5, 0.2, 0.3 at alpha 0, 1, 4 (it is claimed to rise); the
    # value at alpha = 1 has seed offsets (seed - 1) d, so both steps have half-width 2.48 d.
    def values(d):
        def at(template, m, alpha, beta, seed):
            noise = (seed - 1) * d if alpha == 1.0 else 0.0
            mirror = {0.0: 0.5, 1.0: 0.2, 4.0: 0.3}.get(alpha, 0.3) + noise
            return {"seam_jump_ratio": 1.0 / m, "mirror_correlation": mirror}

        return at

    for d, resolved in ((0.1, True), (0.15, False)):  # the drop 0.3 against 0.248 and 0.373
        rises = claims(seeded_rows(analytic(), values(d)), analytic())[3]
        assert rises.holds is False and rises.resolved is resolved
        assert label(rises) == ("does not hold" if resolved else "does not hold within the noise")
        assert "alpha=1 minus alpha=0: -0.3" in rises.text
        assert ("alpha=4 minus alpha=1" in rises.text) is not resolved  # resolved: only the step against


def test_flatness_is_resolved_pair_by_pair():
    # Mirror correlation along M = 1, 2, 4; offsets (seed - 1) d on the points in `noisy`.
    def values(levels, d, noisy):
        def at(template, m, alpha, beta, seed):
            noise = (seed - 1) * d if m in noisy else 0.0
            return {"seam_jump_ratio": 1.0 / m, "mirror_correlation": levels[m] + noise}

        return at

    def flat(levels, d, noisy):
        return claims(seeded_rows(analytic(), values(levels, d, noisy)), analytic())[4]

    small = {1: 0.30, 2: 0.32, 4: 0.31}  # range 0.02 <= FLAT; the pairs with M=2 carry 2.48 d
    assert flat(small, 0.012, {2}).resolved  # 0.02 + 0.0298 <= 0.05
    assert flat(small, 0.013, {2}).resolved is False  # 0.02 + 0.0323 > 0.05
    # Not flat: M=2 minus M=1 is 0.06 with no noise; M=4 minus M=1 is 0.1 but very noisy.
    wide = {1: 0.30, 2: 0.36, 4: 0.40}
    moving = flat(wide, 0.1, {4})
    assert moving.holds is False and moving.resolved and "M=2 minus M=1: 0.06 ± 0" in moving.text
    assert flat(wide, 0.1, {2, 4}).resolved is False  # every pair within the noise of FLAT
    one_seed = claims(seeded_rows(analytic((0,)), values(small, 0.0, ())), analytic((0,)))[4]
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
    # A sweep without some template at the default point leaves its row out; without the paper's, no table.
    rows = seeded_rows(config, default_point(jumps, mirrors, 0.02))
    partial = to_markdown(interval_table([r for r in rows if r["template"] != "dsg:{beta}"], config))
    assert "`dsg:0.4`" not in partial and "`overlap`." in partial
    assert interval_table([r for r in rows if r["template"] != PAPER_TEMPLATE], config) == []
    one_seed = SweepConfig(ABLATIONS, ("overlap",), prompt_frames=2, seeds=(0,), backbone=ModelBackbone())
    assert interval_table(seeded_rows(one_seed, default_point(jumps, mirrors, 0.0)), one_seed) == []


def test_where_claims_hold_groups_the_verdicts_per_backbone():
    ddim = analytic()
    rows = seeded_rows(ddim, seam_falling_with_m(0.01))  # all five analytic claims hold, resolved

    def flat_mirror(template, m, alpha, beta, seed):  # under "rectified flow" the mirror ignores alpha
        return {**seam_falling_with_m(0.01)(template, m, alpha, beta, seed), "mirror_correlation": 0.5}

    flow_rows, model = seeded_rows(ddim, flat_mirror), model_sweep(())

    def on_model(template, m, alpha, beta, seed):
        noise = (seed - 1) * 0.25 if m == 4 else 0.0  # M=4 minus M=1: -0.525 ± 0.62, within the noise
        seam = 0.5 / m * (1 + beta) + noise if template == PAPER_TEMPLATE else 1.0 - (beta or 0.0) / 2
        mirror = 0.0 if alpha is None else alpha / (1.0 + alpha)
        return {"seam_jump_ratio": seam, "mirror_correlation": mirror, "velocity_jump": 3.0 * m}

    model_rows = seeded_rows(model, on_model)
    markdown = to_markdown(where_claims_hold((rows, ddim), (flow_rows, ddim), (model_rows, model)))
    assert markdown.startswith("## 7. Where the paper's claims hold")
    c = [check.statement for check in CHECKS]
    assert f"| {c[0]} | holds | holds | holds within the noise |" in markdown
    assert f"| {c[3]} | holds | does not hold within the noise | holds |" in markdown
    pixel = MODEL_CHECKS[len(CHECKS)].statement  # the velocity jump falls with M: it rises, no noise
    assert f"| {pixel} | — | — | does not hold |" in markdown
    assert f"the others: {pixel} (does not hold)" in markdown
    assert (
        f"Hold on the analytic backbone (under both schedules) and on the trained model: {c[2]}; {c[4]}."
        in (markdown)
    )
    assert f"Hold only on the analytic backbone: {c[1]}." in markdown  # the seam-jump rises with beta
    assert "Hold only on the trained model: none. Hold on neither: none." in markdown
    assert (f"disagree): {c[0]} (holds, holds, holds within the noise); {c[3]} (holds, does not hold within "
            "the noise, holds).") in markdown  # fmt: skip
    without_model = to_markdown(where_claims_hold((rows, ddim), (rows, ddim), None))
    assert "trained model" not in without_model.split("\n\n")[2]  # the table has two verdict columns


def test_one_seed_sweeps_keep_their_plain_verdicts():
    config = analytic((0,))
    found = claims(seeded_rows(config, seam_falling_with_m(0.0)), config)
    assert [c.holds for c in found] == [True] * 5 and all(c.resolved is None for c in found)
    assert all("intervals" not in c.text for c in found)


def continuity_json(path, rows: dict[str, tuple[float, float, float, float]]) -> Path:
    """A model_continuity JSON: per composition (jump excess, its ci95, mirror, its ci95)."""
    table = {
        name: {"jump_excess": {"mean": j, "ci95": jh}, "reversal_excess": {"mean": 0.0, "ci95": 0.01},
               "mirror_correlation": {"mean": m, "ci95": mh}}
        for name, (j, jh, m, mh) in rows.items()
    }  # fmt: skip
    found = {"model": "models/weights/tiny-wan", "steps": 25, "prompt_frames": 2, "captions": ["a"] * 16,
             "seeds": 3, "clips": 8, "table": table}  # fmt: skip
    path.write_text(json.dumps(found))
    return path


def test_the_continuity_section_names_what_beats_the_paper(tmp_path):
    rows = {"independent": (4.5, 0.8, 0.0, 0.03), PAPER: (4.0, 0.6, 0.27, 0.06),
            "overlap": (2.3, 0.3, 0.23, 0.06), "windows:pyramid": (1.0, 0.2, 0.10, 0.05)}  # fmt: skip
    source = continuity_json(tmp_path / "c.json", rows)
    (tmp_path / "report").mkdir()
    markdown = to_markdown(continuity_section(source, tmp_path / "report"))
    assert markdown.startswith("## 2c. Continuity and looping on `tiny-wan`, with error bars")
    assert f"| `{PAPER}` | 4 ± 0.6 | 0 ± 0.01 | 0.27 ± 0.06 |" in markdown
    # overlap: continuity apart (2.6 < 3.4) but looping overlaps (0.29 > 0.21); windows apart on both.
    assert "with the intervals apart: `windows:pyramid`." in markdown
    assert f"The kit's default composition (`{KIT_DEFAULT}`)" in markdown
    assert (tmp_path / "report" / "continuity.json").read_text() == source.read_text()
    assert continuity_section(None, tmp_path) == []
    assert "8 clips each, M=2, 25 steps; each video" in markdown  # no guidance recorded: none named


def test_the_continuity_section_checks_against_every_paper_strategy(tmp_path):
    # fnr: jump 1.0 ± 0.1, mirror 0.9 ± 0.05; dsg:0.4: jump 4.0 ± 0.5, mirror 0.2 ± 0.05.
    rows = {"fnr": (1.0, 0.1, 0.9, 0.05), "dsg:0.4": (4.0, 0.5, 0.2, 0.05),
            "overlap": (0.5, 0.1, 0.5, 0.05),  # below fnr on both, below dsg on the jump only
            "windows:pyramid": (0.5, 0.1, 0.1, 0.02),  # below both on both
            "independent": (4.0, 0.5, 0.0, 0.02)}  # fmt: skip
    source = continuity_json(tmp_path / "c.json", rows)
    (tmp_path / "report").mkdir()
    markdown = to_markdown(continuity_section(source, tmp_path / "report"))
    assert ("Beat every paper strategy in the table (`fnr`, `dsg:0.4`) on continuity and on looping at once, "
            "with the intervals apart: `windows:pyramid`. Where the others fall short: `overlap` not "
            "`dsg:0.4` (looping); `independent` not `fnr` (continuity), `dsg:0.4` (continuity).") in markdown
    only_others = continuity_json(tmp_path / "d.json", {"overlap": rows["overlap"]})
    assert "has no composition of the paper's strategies alone" in to_markdown(
        continuity_section(only_others, tmp_path / "report"))


def test_the_continuity_section_names_a_recorded_guidance_scale(tmp_path):
    source = continuity_json(tmp_path / "c.json", {PAPER: (4.0, 0.6, 0.27, 0.06)})
    source.write_text(json.dumps({**json.loads(source.read_text()), "guidance": 4.0}))
    (tmp_path / "report").mkdir()
    markdown = to_markdown(continuity_section(source, tmp_path / "report"))
    assert "8 clips each, M=2, 25 steps, guidance 4; each video" in markdown
    # the page's regenerate command reruns the study at the scale it was run at, not the bundle's
    commands = regenerate_commands(ReportConfig(continuity_json=source)).splitlines()
    assert [c for c in commands if "model_continuity" in c] == [
        "python -m benchmarks.model_continuity --model models/weights/tiny-wan --steps 25 --guidance 4.0 "
        f"--compositions {PAPER} --out {source}   # section 2c"]  # fmt: skip


def test_the_regenerate_flags_carry_what_the_study_changed(tmp_path):
    table = {name: {} for name in COMPOSITIONS}
    study = {"steps": 25, "prompt_frames": 2, "captions": ["a"] * 16, "seeds": 3, "clips": 8, "table": table}
    assert regenerate_flags(study) == "--steps 25"  # the defaults, and files written before --guidance
    changed = {**study, "steps": 50, "guidance": 4.123456789, "prompt_frames": 3, "captions": ["a"] * 4,
               "seeds": 1, "clips": 6, "table": {"fnr": {}, PAPER: {}}}  # fmt: skip
    flags = regenerate_flags(changed)
    assert flags == ("--steps 50 --guidance 4.123456789 --prompt-frames 3 --seeds 1 --captions 4 --clips 6 "
                     f"--compositions 'fnr;{PAPER}'")  # fmt: skip
    # and they parse back, through the study's own command line, to what was run
    args = build_parser().parse_args(shlex.split(flags))
    assert (args.steps, args.guidance, args.prompt_frames, args.seeds, args.captions, args.clips) == (
        50, 4.123456789, 3, 1, 4, 6)
    assert args.compositions.split(";") == ["fnr", PAPER]


def test_a_damaged_continuity_file_is_refused_by_name(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"continuity_json must be .*bad\.json.*JSONDecodeError"):
        read_continuity(tmp_path / "bad.json")
    (tmp_path / "keys.json").write_text(json.dumps({"model": "m", "table": {}}))
    with pytest.raises(ValueError, match=r"lacks \['steps', 'prompt_frames', 'captions', 'seeds', 'clips'\]"):
        read_continuity(tmp_path / "keys.json")
    source = continuity_json(tmp_path / "row.json", {"fnr": (1.0, 0.1, 0.2, 0.05)})
    found = json.loads(source.read_text())
    del found["table"]["fnr"]["mirror_correlation"]["ci95"]
    source.write_text(json.dumps(found))
    with pytest.raises(ValueError, match="row 'fnr' lacks mirror_correlation with a mean and a ci95"):
        read_continuity(source)
    found["table"]["fnr"]["mirror_correlation"]["ci95"] = 0.05
    for guidance in ("4", -1.0):
        source.write_text(json.dumps({**found, "guidance": guidance}))
        with pytest.raises(ValueError, match=f"guidance must be a finite number >= 0; got {guidance!r}"):
            read_continuity(source)
    bad = (("seeds", 2.5), ("clips", 1), ("steps", True), ("steps", 1001), ("prompt_frames", 0),
           ("captions", "abc"), ("captions", [1]), ("captions", []), ("captions", ["a"] * 37))  # fmt: skip
    for key, value in bad:  # what the study itself would refuse to run
        source.write_text(json.dumps({**found, key: value}))
        with pytest.raises(ValueError, match=f"its {key} must be .*got "):
            read_continuity(source)
    with pytest.raises(ValueError, match=r"missing\.json"):
        ReportConfig(continuity_json=tmp_path / "missing.json").check_inputs(tmp_path / "out")
