"""The kit's benchmark report: one Markdown page and its HTML rendering, with the PNGs beside them.

    python -m benchmarks.report --out benchmarks/report
    python -m benchmarks.report --sweep out/sweep/sweep.json      # reuse a sweep instead of running it
    python -m benchmarks.report --sweep-model out/sweep-model/sweep.json   # add section 2b
    python -m benchmarks.report --continuity out/continuity-flow/continuity.json   # add section 2c

Sections: (1) strategy combinations on the analytic backbone (compare's metrics, the reference process
first); (2) the Figure-6 ablations of the sweep with the paper's claims checked on its numbers; (2b, with
--sweep-model) the same ablations and claims on the bundled model, read from a sweep of it; (2c, with
--continuity) a model_continuity study's continuity and looping with intervals, and which compositions
beat the paper's, and every paper strategy, at once; (3) the reconstruction-guidance weight's trade-off
and the best composition in the acceptance band; (4) the bundled model's frames at every seam with its
pixel metrics; (5) performance measured in this run; (6) the claims under rectified flow; (7) where each
claim holds.
Everything is computed in this process on one thread and written into a temporary folder beside --out;
its files replace those of --out only once all of them exist (the page last), so a failure midway
leaves a previous report as it was. Files of the report's own names that this run did not write (e.g.
section 2b's, from an earlier run with --sweep-model) are then removed from --out.
Section 1 samples the strategy combinations; section 2's sweep holds the ablations only (the report runs
it with no extra combinations, and leaves out those of a --sweep file), so no combination shows twice.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path

from benchmarks import compare, perf, seams, sweep, sweep_grid, tradeoff
from benchmarks.compare import CompareConfig
from benchmarks.document import to_html, to_markdown
from benchmarks.number_lists import format_numbers, parse_numbers
from benchmarks.report_config import (
    DEFAULT_OUT,
    FLOW_SCHEDULERS,
    OWN_NAMES,
    PAGES,
    TITLE,
    PerfConfig,
    ReportConfig,
    read_sweep,
)
from benchmarks.report_science import continuity_section, where_claims_hold
from benchmarks.report_sections import (
    flow_section,
    header,
    model_sweep_section,
    perf_section,
    seams_section,
    sweep_section,
    table_section,
    tradeoff_section,
)
from benchmarks.sweep_model import ModelBackbone
from models.files import exit_on_sigterm, move_into_place, remove, temporary_sibling
from models.threads import limit_threads


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out`; on success its files replace `out`'s of the same names, all together or
    none (`models.files.move_into_place`), then `out`'s files of the report's own names (OWN_NAMES) that
    this run did not write are removed."""
    folder = temporary_sibling(out, folder=True)
    try:
        yield folder
        out.mkdir(exist_ok=True)
        written = sorted(folder.iterdir(), key=lambda p: (p.name in PAGES, p.name))
        move_into_place([(path, out / path.name) for path in written])
        names = {path.name for path in written}
        for path in sorted(out.iterdir()):  # stale: the new page no longer shows them
            own = any(fnmatchcase(path.name, pattern) for pattern in OWN_NAMES)
            if own and path.name not in names and path.is_file():
                path.unlink()
    finally:
        remove(folder)


def build(config: ReportConfig, out=DEFAULT_OUT) -> Path:
    """Check the inputs, compute everything, write the page and its files into `out`; returns `out`."""
    out = Path(out)
    config.check_inputs(out)
    return _build(config, out)


def _build(config: ReportConfig, out: Path) -> Path:
    """`build` with inputs already checked (`parse_args` checks them)."""
    began = time.perf_counter()
    with staging(out) as folder, limit_threads(1):
        sweep_rows, sweep_config, sweep_seconds = _sweep(config)
        rows = tradeoff.run(config.tradeoff)
        videos = seams.generate(config.seams)
        flow_rows = compare.run(config.flow_backbone, list(config.tradeoff.combinations))
        flow_sweep = flow_of(sweep_config, config.flow_scheduler)
        flow_sweep_rows = sweep.run(flow_sweep)
        source = config.sweep_model_json
        model_sweep = None if source is None else read_sweep("sweep_model_json", source, ModelBackbone)
        timings = {
            name: perf.measure_in_child(
                name, config.perf.clips, config.perf.steps, config.perf.repeats, threads=1
            )
            for name in config.perf.backbones
        }
        body = [
            *table_section(rows, config.tradeoff, folder),
            *sweep_section(sweep_rows, sweep_config, folder, config.sweep_json),
            *model_sweep_section(model_sweep, config.sweep_model_json, folder),
            *continuity_section(config.continuity_json, folder),
            *tradeoff_section(rows, config.tradeoff, folder),
            *seams_section(videos, config.seams, folder),
            *perf_section(timings, config.perf, sweep_seconds, videos, time.perf_counter() - began),
            *flow_section(flow_rows, config, (sweep_rows, sweep_config), (flow_sweep_rows, flow_sweep),
                          folder),
            *where_claims_hold((sweep_rows, sweep_config), (flow_sweep_rows, flow_sweep), model_sweep),
        ]
        blocks = [*header(config), *body]
        (folder / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (folder / "report.html").write_text(to_html(blocks, TITLE), encoding="utf-8")
    return out


def flow_of(sweep_config: sweep_grid.SweepConfig, scheduler: str) -> sweep_grid.SweepConfig:
    """Section 2's sweep (its ablations, seeds and setting) under `scheduler`, without extras (section 6)."""
    backbone = replace(sweep_config.backbone, scheduler=scheduler)
    return replace(sweep_config, backbone=backbone, extra_combinations=())


def _sweep(config: ReportConfig) -> tuple[list[dict], sweep_grid.SweepConfig, float | None]:
    """The sweep's rows and config, run here (timed, single process) or read from sweep_json (no time)."""
    if config.sweep_json is not None:
        rows, sweep_config = read_sweep("sweep_json", config.sweep_json, CompareConfig)
        return rows, sweep_config, None
    began = time.perf_counter()
    rows = sweep.run(config.sweep)
    return rows, config.sweep, time.perf_counter() - began


# ---------------------------------------------------------------------------------------------- header


def parse_args(argv=None) -> tuple[argparse.Namespace, ReportConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    t, s, p = tradeoff.TradeoffConfig(), seams.SeamsConfig(), PerfConfig()
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the report (replaced files)")
    parser.add_argument("--sweep", type=Path, help="a sweep.json to use instead of running the default sweep")
    parser.add_argument("--sweep-model", type=Path, help="a sweep.json of --backbone model: adds section 2b")
    parser.add_argument("--continuity", type=Path, help="a benchmarks.model_continuity JSON: adds section 2c")
    parser.add_argument(
        "--samples", type=int, default=t.backbone.samples, help="videos per combination, sections 1 and 3"
    )
    parser.add_argument("--steps", type=int, default=t.backbone.steps, help="DDIM steps of sections 1 and 3")
    parser.add_argument("--weights", default=format_numbers(t.weights), help="recon weights of section 3")
    parser.add_argument("--model", type=Path, default=s.model, help="saved VidRD pipeline (section 4)")
    parser.add_argument("--caption", default=s.caption, help="caption of section 4")
    parser.add_argument("--clips", type=int, default=s.clips, help="clips of section 4")
    parser.add_argument("--model-steps", type=int, default=s.steps, help="DDIM steps of section 4")
    parser.add_argument("--perf-repeats", type=int, default=p.repeats, help="repeats of section 5")
    parser.add_argument("--flow-scheduler", default="flow-euler", choices=FLOW_SCHEDULERS,
                        help="the rectified-flow schedule of section 6")  # fmt: skip
    parser.add_argument("--perf-backbones", default=",".join(p.backbones), help=f"of {list(perf.BACKBONES)}")
    args = parser.parse_args(argv)
    try:
        weights = parse_numbers(args.weights)
    except ValueError as error:
        parser.error(f"--weights takes numbers: {error}")
    argv_shown = sys.argv[1:] if argv is None else list(argv)
    config = ReportConfig(
        sweep_json=args.sweep,
        sweep_model_json=args.sweep_model,
        continuity_json=args.continuity,
        tradeoff=replace(
            t, backbone=replace(t.backbone, samples=args.samples, steps=args.steps), weights=weights
        ),
        seams=replace(s, model=args.model, caption=args.caption, clips=args.clips, steps=args.model_steps),
        perf=replace(
            p,
            backbones=tuple(b.strip() for b in args.perf_backbones.split(",") if b.strip()),
            repeats=args.perf_repeats,
        ),
        flow_scheduler=args.flow_scheduler,
        command=shlex.join(["python", "-m", "benchmarks.report", *argv_shown]),
    )
    config.check_inputs(args.out)
    return args, config


def main(argv=None) -> None:
    args, config = parse_args(argv)  # everything validated before any work, once
    began = time.perf_counter()
    with exit_on_sigterm():  # SIGTERM unwinds: the staging folder is removed, --out left as it was
        out = _build(config, args.out)
    print(f"wrote {out}/report.md and report.html in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
