"""The report's error bars on the trained model and the verdicts side by side: where the paper's claims hold.

- `interval_table`: the model sweep's default point, the paper's composition beside DSG alone and the extra
  combinations, each metric a mean over seeds with its 95% interval, and which combinations beat the
  paper's on continuity and on looping at once with the intervals apart;
- `continuity_section`: the table of `benchmarks.model_continuity` (the paper's strategies alone and together
  and the kit's candidates on a bundled long-world model, 95% intervals over the videos), and which
  compositions beat the paper's, and the kit's default, on continuity and looping at once, and which
  beat every paper strategy in the table at once (and what the others miss);
- `where_claims_hold`: every claim's verdict on the analytic backbone (DDIM and rectified flow) and on the
  trained model, grouped into "on both", "only on the analytic backbone", "only on the trained model",
  "on neither" and "not settled" (the verdict words of `benchmarks.claims.label`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.claims import CHECKS, MODEL_CHECKS, Claim, claims, label
from benchmarks.compare import REFERENCE
from benchmarks.document import Block, Heading, Paragraph, Table, number
from benchmarks.report_config import CONTINUITY_METRICS, read_continuity
from benchmarks.sweep_grid import PAPER_TEMPLATE, SweepConfig
from benchmarks.sweep_report import SHORT, default_point_intervals
from samplers.registry import KIT_DEFAULT, PAPER, is_paper_strategy

Sweep = tuple[list[dict[str, Any]], SweepConfig]
SHOWN = ("velocity_jump", "reversals_per_seam", "mirror_correlation", "seam_jump_ratio")
CONTINUITY, LOOPING = "velocity_jump", "mirror_correlation"  # lower is better for both


def _cell(mean: float, half: float) -> str:
    return number(mean) + ("" if math.isnan(half) else f" ± {number(half, '.2g')}")


def _apart_below(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """a's interval lies wholly below b's (never with a missing interval)."""
    return a[0] + a[1] < b[0] - b[1]


def interval_table(rows: list[dict[str, Any]], config: SweepConfig) -> list[Block]:
    """The default point with error bars (module docstring); nothing for a one-seed sweep."""
    if len(config.seeds) < 2:
        return []
    templates = (REFERENCE, PAPER_TEMPLATE, "dsg:{beta}", *config.extra_combinations)
    found = default_point_intervals(rows, config, templates, SHOWN)
    if PAPER_TEMPLATE not in found:
        return []
    paper = found[PAPER_TEMPLATE][1]
    winners = [name for template, (name, v) in found.items() if template not in (REFERENCE, PAPER_TEMPLATE)
               and all(_apart_below(v[m], paper[m]) for m in (CONTINUITY, LOOPING))]  # fmt: skip
    verdict = (f"Beat the paper's composition on continuity ({SHORT[CONTINUITY]}) and on looping "
               f"({SHORT[LOOPING]}) at once, with the 95% intervals apart: "
               + (", ".join(f"`{w}`" for w in winners) if winners else "none") + ".")  # fmt: skip
    return [
        Paragraph(f"The default point with error bars: means over the {len(config.seeds)} seeds ± the 95% "
                  "interval (Student's t over the seeds' means, each of "
                  f"{config.backbone.samples} videos); the reference row is the true videos."),
        Table(("combination", *(SHORT[m] for m in SHOWN)),
              tuple((f"`{name}`", *(_cell(*v[m]) for m in SHOWN)) for name, v in found.values())),
        Paragraph(verdict),
    ]  # fmt: skip


CONTINUITY_NAMES = ("velocity jump minus the truth's (px/frame)", "reversals per seam minus the truth's",
                    "mirror correlation")  # fmt: skip
CONTINUITY_SHOWN = dict(zip(CONTINUITY_METRICS, CONTINUITY_NAMES, strict=True))


COUNTS = {"jump_excess": "continuity", "mirror_correlation": "looping"}  # what "beats" is judged on


def _not_below(found: dict[str, Any], name: str, other: str) -> list[str]:
    """The counts (`COUNTS`) on which `name`'s interval does not lie wholly below `other`'s."""

    def interval(composition: str, metric: str) -> tuple[float, float]:
        return found[composition][metric]["mean"], found[composition][metric]["ci95"]

    return [count for m, count in COUNTS.items() if not _apart_below(interval(name, m), interval(other, m))]


def _beats(found: dict[str, Any], name: str, other: str) -> bool:
    """`name` below `other` in continuity (jump excess) and looping (mirror), its intervals wholly below."""
    return not _not_below(found, name, other)


def _against_every_paper_strategy(table: dict[str, Any]) -> str:
    """Which compositions beat every paper strategy in the table at once, and for each
    other one that is not a paper strategy, the paper strategies it does not beat and on which counts."""
    paper = [name for name in table if is_paper_strategy(name)]
    if not paper:
        return "The table has no composition of the paper's strategies alone."
    others = [name for name in table if not is_paper_strategy(name)]
    misses = {name: [f"`{p}` ({', '.join(counts)})" for p in paper if (counts := _not_below(table, name, p))]
              for name in others}  # fmt: skip
    winners = [f"`{name}`" for name, missed in misses.items() if not missed]
    short = "; ".join(f"`{name}` not {', '.join(missed)}" for name, missed in misses.items() if missed)
    return (f"Beat every paper strategy in the table ({', '.join(f'`{p}`' for p in paper)}) on continuity "
            f"and on looping at once, with the intervals apart: {', '.join(winners) or 'none'}."
            + (f" Where the others fall short: {short}." if short else ""))  # fmt: skip


def _guidance(data: dict) -> str:
    """", guidance G" where the JSON records its guidance scale (files written before it was an option
    hold none: the bundle's own)."""
    return "" if data.get("guidance") is None else f", guidance {data['guidance']:g}"


def continuity_section(source: Path | None, folder: Path) -> list[Block]:
    """Section 2c from a model_continuity JSON (copied into the report as continuity.json); nothing
    without one."""
    if source is None:
        return []
    data = read_continuity(source)
    (folder / "continuity.json").write_text(Path(source).read_text(encoding="utf-8"), encoding="utf-8")
    table = data["table"]
    winners = [name for name in table if PAPER in table and name != PAPER and _beats(table, name, PAPER)]
    if KIT_DEFAULT == PAPER:
        kit = "is the paper's"
    elif KIT_DEFAULT not in table:
        kit = "is not in this table"
    else:
        kit = "beats it" if _beats(table, KIT_DEFAULT, PAPER) else "does not beat it"
    return [
        Heading(2, f"2c. Continuity and looping on `{Path(data['model']).name}`, with error bars"),
        Paragraph(f"`benchmarks.model_continuity` (its JSON is `continuity.json`): model "
                  f"`{data['model']}`, {data['seeds']} seeds x {len(data['captions'])} captions of the long "
                  f"world, {data['clips']} clips each, M={data['prompt_frames']}, {data['steps']} steps"
                  f"{_guidance(data)}; "
                  "each video is scored against true long videos of its caption cut at the same clip "
                  "starts. Means over the videos ± 95% intervals (1.96 standard errors over the videos)."),
        Table(("composition", *CONTINUITY_SHOWN.values()),
              tuple((f"`{name}`", *(_cell(row[m]["mean"], row[m]["ci95"]) for m in CONTINUITY_SHOWN))
                    for name, row in table.items())),
        Paragraph(f"Beat the paper's composition (`{PAPER}`) on continuity and on looping at once, with the "
                  f"intervals apart: {', '.join(f'`{w}`' for w in winners) or 'none'}. The kit's default "
                  f"composition (`{KIT_DEFAULT}`) {kit}."),
        Paragraph(_against_every_paper_strategy(table)),
    ]  # fmt: skip


def _settled(labels: tuple[str, ...]) -> str:
    """The verdict every label gives, where it is "holds" or "does not hold" (resolved); else "unsettled"."""
    return labels[0] if labels[0] in ("holds", "does not hold") and len(set(labels)) == 1 else "unsettled"


def _group(verdicts: dict[str, tuple[str, str, str]]) -> list[str]:
    """Sentences naming the claims that hold on both backbones, only on one, on neither (the analytic
    backbone: the same resolved verdict under both schedules), and those not settled."""
    status = {s: (_settled(cells[:2]), _settled(cells[2:])) for s, cells in verdicts.items()}
    groups = {
        "on the analytic backbone (under both schedules) and on the trained model": ("holds", "holds"),
        "only on the analytic backbone": ("holds", "does not hold"),
        "only on the trained model": ("does not hold", "holds"),
        "on neither": ("does not hold", "does not hold"),
    }
    sentences = []
    for where, pattern in groups.items():
        named = [s for s, found in status.items() if found == pattern]
        sentences.append(f"Hold {where}: " + ("; ".join(named) if named else "none") + ".")
    unsettled = [f"{s} ({', '.join(verdicts[s])})" for s, found in status.items() if "unsettled" in found]
    sentences.append("Not settled (within the noise, on one seed, not measured, or the two schedules "
                     "disagree): " + ("; ".join(unsettled) if unsettled else "none") + ".")  # fmt: skip
    return sentences


def _pixel_group(claimed: list[Claim], shared: set[str]) -> str:
    """The claims checked on the model alone, by verdict."""
    own = [c for c in claimed if c.statement not in shared]
    if not own:
        return ""
    holding = [c.statement for c in own if label(c) == "holds"]
    rest = [f"{c.statement} ({label(c)})" for c in own if label(c) != "holds"]
    return (
        f" Of the claims in pixels, checked on the trained model alone, hold: "
        f"{'; '.join(holding) or 'none'}; the others: {'; '.join(rest) or 'none'}."
    )


def where_claims_hold(ddim: Sweep, flow: Sweep, model: Sweep | None) -> list[Block]:
    """The closing section: each claim's verdict per backbone (module docstring)."""
    before, after = claims(*ddim, CHECKS), claims(*flow, CHECKS)
    on_model: list[Claim] = claims(*model, MODEL_CHECKS) if model is not None else []
    by_statement = {c.statement: c for c in on_model}
    verdicts = {
        a.statement: (label(a), label(f), *((label(by_statement[a.statement]),) if model else ()))
        for a, f in zip(before, after, strict=True)
    }
    extra = {c.statement: ("—", "—", label(c)) for c in on_model if c.statement not in verdicts}
    head = ("claim", "analytic, DDIM", "analytic, rectified flow", *(("trained model",) if model else ()))
    return [
        Heading(2, "7. Where the paper's claims hold"),
        Paragraph("Each claim's verdict in sections 2, 6 and 2b. 'Within the noise': the paired 95% "
                  "intervals over seeds do not bear out the verdict on the means; 'on one seed': no "
                  "interval. The pixel claims exist only on the model."),
        Table(head, tuple((s, *cells) for s, cells in {**verdicts, **extra}.items())),
        *((Paragraph(" ".join(_group(verdicts)) + _pixel_group(on_model, set(verdicts))),) if model else ()),
    ]  # fmt: skip
