"""The benchmark report: every section and image, claims that follow the data, all-or-nothing writing."""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from benchmarks import report
from benchmarks.claims import claims
from benchmarks.compare import GAP_CLOSING, PAPER, CompareConfig
from benchmarks.document import Code, Heading, Image, Paragraph, Table, to_html, to_markdown
from benchmarks.report import PerfConfig, ReportConfig, build, parse_args
from benchmarks.seams import SeamsConfig, SeamVideo, seam_row
from benchmarks.sweep import write_json
from benchmarks.sweep_grid import PAPER_TEMPLATE, Ablation, SweepConfig
from benchmarks.sweep_model import ModelBackbone
from benchmarks.tradeoff import TradeoffConfig
from models.contact_sheet import SEAM_RGB

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = CompareConfig(samples=4, frame_shape=(2, 4, 4), num_frames=8, prompt_frames=2, num_clips=3, steps=4)
ABLATIONS = (
    Ablation("prompt_frames", (1, 2, 4), (PAPER_TEMPLATE,)),
    Ablation("alpha", (0.0, 1.0, 4.0), (PAPER_TEMPLATE,)),
    Ablation("beta", (0.0, 0.4, 1.0), (PAPER_TEMPLATE, "dsg:{beta}")),
)
SECTIONS = ("## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. ", "## 6. ")


def tiny_config(model: Path) -> ReportConfig:
    return ReportConfig(
        sweep=SweepConfig(ABLATIONS, ("overlap",), prompt_frames=2, seeds=(0,), backbone=TINY),
        tradeoff=TradeoffConfig(backbone=TINY, weights=(0.0, 0.3), combinations=("fnr", "overlap")),
        seams=SeamsConfig(model=model, clips=2, frames=4, prompt_frames=1, steps=2, context=1),
        perf=PerfConfig(backbones=("conv",), clips=1, steps=2, repeats=1),
    )


STALE = ("sweep_model.json", "sweep_model_alpha.png", "sweep_gamma.png")  # of the report's names, not written
KEPT = ("notes.txt", "sweep_notes.md")  # not of the report's names


@pytest.fixture(scope="module")
def built(model, tmp_path_factory) -> Path:
    """The tiny report, built over a previous one that had section 2b and files of the user's."""
    out = tmp_path_factory.mktemp("report") / "report"
    out.mkdir()
    for name in (*STALE, *KEPT, "report.md"):
        (out / name).write_text("previous")
    return build(tiny_config(model), out)


# ---------------------------------------------------------------- the page


def test_report_has_every_section_and_every_image(built):
    markdown = (built / "report.md").read_text()
    for section in SECTIONS:
        assert re.search(f"^{re.escape(section)}", markdown, re.MULTILINE), section
    assert "python -m benchmarks.report" in markdown and "from commit" in markdown
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    expected = {"compare.png", "quality_cost.png", "sweep_prompt_frames.png", "sweep_alpha.png",
                "sweep_beta.png", "tradeoff_curve.png", "tradeoff_scatter.png", "seams.png",
                "compare_flow.png"}  # fmt: skip
    assert set(images) == expected
    for name in images:
        assert (built / name).read_bytes()[:8] == PNG_SIGNATURE, name
    assert (built / "sweep.json").is_file() and (built / "tradeoff.csv").is_file()
    assert (built / "sweep_flow.json").is_file()
    # Every row of section 1's table: the reference process, the oracle, then the tiny config's combinations.
    assert re.findall(r"^\| `([^`]+)` \|", markdown.split("## 2.")[0], re.MULTILINE) == [
        "reference process", "oracle continuation", "fnr", "overlap"]  # fmt: skip
    # All five claims are checked, under DDIM (section 2) and rectified flow (section 6); this sweep has
    # every ablation, so each has a verdict, and section 6 sets the two side by side.
    assert len(re.findall(r"\*\*(Holds|Does not hold)\.\*\*", markdown)) == 10
    section6 = markdown.split("## 6.")[1]
    assert len(re.findall(r"\*\*(Holds|Does not hold)\.\*\*", section6)) == 5
    assert "| claim | DDIM | rectified flow |" in section6 and "FlowMatchEuler, shift 3" in section6
    section4 = markdown.split("## 4.")[1].split("## 5.")[0]
    rows = re.findall(r"^\| `([^`]+)` \|", section4, re.MULTILINE)
    assert rows == [PAPER, "overlap", GAP_CLOSING]  # the seams section's compositions
    assert "Smallest mean velocity jump at the seams" in section4
    assert "frames/s" in markdown and "ratio sampler / bare" in markdown
    leftovers = [p.name for p in built.parent.iterdir() if p.name.startswith(".report")]
    assert leftovers == []  # the staging folder is gone


def test_report_removes_its_stale_files_and_keeps_the_others(built):
    names = {p.name for p in built.iterdir()}
    assert not names & set(STALE) and set(KEPT) <= names  # section 2b's files went with section 2b
    assert all((built / name).read_text() == "previous" for name in KEPT)
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in built.iterdir() if p.name not in KEPT}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)  # as a plain open() makes them, not private


def test_section_2_leaves_the_combinations_to_section_1(built):
    assert ReportConfig().sweep.extra_combinations == ()  # the report's own sweep: the ablations only
    section2 = (built / "report.md").read_text().split("## 2. ")[1].split("## 3. ")[0]
    assert "Extra combinations" not in section2 and "`overlap`" not in section2  # the tiny sweep's extra
    assert "Its extra combinations at the default point are left out here" in section2


def test_html_shows_what_the_markdown_shows(built):
    markdown, page = (built / "report.md").read_text(), (built / "report.html").read_text()
    assert re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown) == re.findall(r'<img src="([^"]+)"', page)
    assert markdown.count("\n## ") == page.count("<h2>")
    assert len(re.findall(r"^\| --- ", markdown, re.MULTILINE)) == page.count("<table>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert len(re.findall(r"<strong>(Holds|Does not hold)\.</strong>", page)) == 10  # DDIM and flow


def test_a_failure_midway_leaves_the_previous_report_untouched(model, tmp_path, monkeypatch):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("previous")
    (out / "compare.png").write_bytes(b"previous")

    def fail(config):
        raise RuntimeError("the model broke")

    monkeypatch.setattr(report.seams, "generate", fail)  # after the sweep and the trade-off were computed
    with pytest.raises(RuntimeError, match="the model broke"):
        build(tiny_config(model), out)
    assert (out / "report.md").read_text() == "previous" and (out / "compare.png").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging folder left behind
    assert sorted(p.name for p in out.iterdir()) == ["compare.png", "report.md"]


def test_command_line_maps_to_the_config_and_checks_before_work(model, tmp_path):
    args, config = parse_args(["--out", str(tmp_path / "r"), "--model", str(model), "--samples", "4",
                               "--weights", "0,0.1", "--clips", "2", "--perf-backbones", "conv"])  # fmt: skip
    assert args.out == tmp_path / "r"
    assert config.tradeoff.backbone.samples == 4 and config.tradeoff.weights == (0.0, 0.1)
    assert config.seams.clips == 2 and config.seams.model == model and config.perf.backbones == ("conv",)
    assert config.command.startswith("python -m benchmarks.report --out") and "--samples 4" in config.command
    with pytest.raises(ValueError, match="model must be a saved VidRD pipeline"):
        parse_args(["--model", str(tmp_path)])
    with pytest.raises(ValueError, match="weights must be a non-empty increasing sequence"):
        parse_args(["--model", str(model), "--weights", "0.2,0.1"])
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out must be a folder"):
        parse_args(["--model", str(model), "--out", str(tmp_path / "file")])
    with pytest.raises(ValueError, match="backbones must be some of"):
        PerfConfig(backbones=("gpu",))


# ---------------------------------------------------------------- the claims follow the data


def rows_for(config: SweepConfig, seam, mirror) -> list[dict]:
    """Hand-made sweep rows: every point of `config` with metrics from functions of (template, M, a, b)."""
    rows = []
    for point in config.points():
        fields = asdict(point)
        values = dict.fromkeys(config.metrics, 0.0)
        key = (point.template, point.prompt_frames, point.alpha, point.beta)
        values.update(seam_jump_ratio=seam(*key), mirror_correlation=mirror(*key))
        rows.append({**fields, "combination": point.combination, **values})
    return rows


CONFIG = SweepConfig(ablations=ABLATIONS, extra_combinations=(), seeds=(0, 1))


def test_claims_hold_where_the_constructed_trends_hold():
    def seam(template, m, alpha, beta):
        return 0.5 / m * (1 - beta / 2) if template == PAPER_TEMPLATE else 10.0 * (1.0 - (beta or 0.0)) + 0.01

    def mirror(template, m, alpha, beta):
        return 0.0 if alpha is None else alpha / math.hypot(1.0, alpha)

    found = claims(rows_for(CONFIG, seam, mirror), CONFIG)
    assert [c.holds for c in found] == [True] * 5
    falls_with_m, _, without_fnr, rises_with_alpha, flat = (c.text for c in found)
    assert "0.4 at M=1, 0.2 at M=2, 0.1 at M=4" in falls_with_m  # 0.5 / M * (1 - 0.4 / 2)
    assert "It falls at every step" in falls_with_m and "more frozen" in falls_with_m  # all below 0.8
    assert "more frozen" not in without_fnr  # 10.01 at beta=0 is not below the band
    assert "0.707 at alpha=1" in rises_with_alpha
    assert "[0.97, 0.97]" in flat and "does not show in this metric" in flat


def test_claims_fail_where_the_constructed_trends_do_not():
    def seam(template, m, alpha, beta):
        return 0.1 * m + (beta if template == PAPER_TEMPLATE else 0.5 - abs((beta or 0.0) - 0.4))

    def mirror(template, m, alpha, beta):
        return 0.1 * m + (0.0 if alpha is None else 1.0 / (1.0 + alpha))

    found = claims(rows_for(CONFIG, seam, mirror), CONFIG)
    assert [c.holds for c in found] == [False] * 5
    assert all(c.text.startswith("**Does not hold.**") for c in found)
    assert "It does not fall at M=1 -> 2, M=2 -> 4." in found[0].text
    assert "It does not fall at beta=0 -> 0.4." in found[2].text  # falls only from 0.4 to 1
    assert "It does not rise at alpha=0 -> 1, alpha=1 -> 4." in found[3].text
    assert "range 0.3" in found[4].text and "moves by 0.3" in found[4].text


def test_claims_of_an_ablation_not_swept_are_not_measured():
    config = SweepConfig(ablations=ABLATIONS[2:], extra_combinations=(), seeds=(0,))
    found = claims(rows_for(config, lambda *k: 1.0 - (k[3] or 0) / 2, lambda *k: 0.5), config)
    assert [c.holds for c in found] == [None, True, True, None, None]
    assert found[0].text.startswith("**Not measured**") and "prompt_frames ablation" in found[0].text


def test_model_sweep_section_shows_its_plots_claims_and_pixel_columns(model, tmp_path):
    backbone = ModelBackbone(str(model))
    config = SweepConfig(ABLATIONS, ("overlap",), prompt_frames=2, seeds=(0,), backbone=backbone)
    rows = rows_for(config, lambda *k: 2.0 / k[1], lambda *k: 0.3)
    write_json(rows, config, tmp_path / "model.json")
    write_json(rows_for(CONFIG, lambda *k: 1.0, lambda *k: 0.5), CONFIG, tmp_path / "analytic.json")
    _, report_config = parse_args(["--model", str(model), "--sweep-model", str(tmp_path / "model.json")])
    assert report_config.sweep_model_json == tmp_path / "model.json"
    with pytest.raises(ValueError, match=r"sweep_model_json must be a sweep\.json of --backbone model"):
        parse_args(["--model", str(model), "--sweep-model", str(tmp_path / "analytic.json")])
    # Both sweep files are checked alike: the backbone of their kind, and a readable sweep.json at all.
    assert parse_args(["--model", str(model), "--sweep", str(tmp_path / "analytic.json")])[1].sweep_json
    (tmp_path / "broken.json").write_text("{")
    checks = {"--sweep": ("sweep_json", "analytic", "model.json"),
              "--sweep-model": ("sweep_model_json", "model", "analytic.json")}  # fmt: skip
    for flag, (name, kind, other_kind) in checks.items():
        for path in (other_kind, "broken.json", "missing.json"):
            with pytest.raises(ValueError, match=rf"{name} must be a sweep\.json of --backbone {kind}"):
                parse_args(["--model", str(model), flag, str(tmp_path / path)])
    assert report.model_sweep_section(None, None, tmp_path) == []  # no section without a model sweep
    markdown = to_markdown(report.model_sweep_section((rows, config), tmp_path / "model.json", tmp_path))
    assert markdown.startswith("## 2b. The ablations on a saved VidRD")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert images == ["sweep_model_prompt_frames.png", "sweep_model_alpha.png", "sweep_model_beta.png",
                      "quality_cost_model.png"]  # the last: the extras and the paper's point against cost
    assert all((tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE for name in images)
    assert (tmp_path / "sweep_model.json").is_file()
    # The five claims of section 2 and the four in pixels; seam-jump 2 / M falls with M, the pixels are flat.
    verdicts = re.findall(r"\*\*(Holds|Does not hold)\.\*\*", markdown)
    assert len(verdicts) == 9 and verdicts[0] == "Holds" and verdicts[5:] == ["Does not hold"] * 4
    head = "| combination | seam-jump | mirror | repetition | acf-error | frechet | "
    assert head + "vel-jump | reversals | speed |" in markdown


def test_seam_row_shows_the_frames_either_side_of_every_seam():
    # 8 frames of 2 x 2 pixels; frame f has the value 30 f + 2 r + c at row r, column c (all channels).
    f, r, c = np.meshgrid(np.arange(8), np.arange(2), np.arange(2), indexing="ij")
    frames = np.repeat((30 * f + 2 * r + c)[..., None], 3, axis=-1).astype(np.uint8)  # (8, 2, 2, 3)
    video = SeamVideo("x", frames, [0, 3, 6], seconds=0.0, metrics={})

    def column(frame: int, col: int) -> np.ndarray:
        return frames[frame][:, col]  # (2, 3)

    red, white = np.array([SEAM_RGB] * 2, np.uint8), np.full((2, 3), 255, np.uint8)
    expected = [column(1, 0), column(1, 1), column(2, 0), column(2, 1), red,  # seam 3: frames 1, 2 | 3, 4
                column(3, 0), column(3, 1), column(4, 0), column(4, 1), white,
                column(4, 0), column(4, 1), column(5, 0), column(5, 1), red,  # seam 6: frames 4, 5 | 6, 7
                column(6, 0), column(6, 1), column(7, 0), column(7, 1)]  # fmt: skip
    row = seam_row(video, context=2, gap=1)
    assert row.dtype == np.uint8 and np.array_equal(row, np.stack(expected, axis=1))  # (2, 19, 3)


# ---------------------------------------------------------------- the document


def test_markdown_and_html_render_the_same_blocks():
    blocks = [Heading(1, "Title"), Paragraph("a **bold** `x<y` claim"), Table(("a|b", "c"), (("1", "`2`"),)),
              Image("p.png", "alt <text>"), Code("python -m x --y '<z>'")]  # fmt: skip
    markdown = to_markdown(blocks)
    assert markdown == (
        "# Title\n\na **bold** `x<y` claim\n\n| a\\|b | c |\n| --- | --- |\n| 1 | `2` |\n\n"
        "![alt <text>](p.png)\n\n```\npython -m x --y '<z>'\n```\n"
    )
    page = to_html(blocks, "T")
    assert "<p>a <strong>bold</strong> <code>x&lt;y</code> claim</p>" in page
    assert "<th>a|b</th><th>c</th>" in page and "<td><code>2</code></td>" in page
    assert '<img src="p.png" alt="alt &lt;text&gt;">' in page
    assert "<pre><code>python -m x --y '&lt;z&gt;'</code></pre>" in page
    with pytest.raises(ValueError, match=r"rows\[0\] must have 2 cells; got 1"):
        Table(("a", "b"), (("1",),))


def test_the_cost_paragraph_names_the_closest_method_and_the_best_clip_by_clip_one(tmp_path):
    # hand-made rows: windows closest by autocorrelation error, the overlap the best clip-by-clip one;
    # the independent row is out of band and named nowhere
    from benchmarks.report_sections import cost_paragraphs

    def row(name, jump, acf, frechet, evals, backward=0.0):
        return {"strategies": name, "seam_jump_ratio": jump, "mirror_correlation": 0.0, "repetition": 0.0,
                "autocorrelation_error": acf, "frechet_distance": frechet, "frame_evals": evals,
                "backward_evals": backward}  # fmt: skip

    rows = [row("reference process", 1.0, 0.001, 0.0, 0), row("oracle continuation", 0.97, 0.002, 0.001, 0),
            row("independent", 18.0, 0.001, 1.0, 50),
            row("overlap,recon:10", 1.05, 0.011, 0.11, 107.7, 46.15),
            row("windows:pyramid", 1.04, 0.010, 0.02, 68.75)]  # fmt: skip
    text = to_markdown(cost_paragraphs(rows, tmp_path))
    closest = "by autocorrelation error: `windows:pyramid` (seam-jump ratio 1.040, autocorrelation error 0.01"
    assert closest in text
    assert "best clip-by-clip composition is `overlap,recon:10`" in text
    assert "107.7 frame evaluations and 46.15 backward per output frame" in text
    assert "oracle continuation (each clip an exact draw" in text and "ratio 0.970" in text
    assert "independent" not in text and (tmp_path / "quality_cost.png").read_bytes()[:8] == PNG_SIGNATURE
