"""Every notebook in notebooks/ executes without error in its small setting (KIT_NOTEBOOK_SMALL=1).

Each notebook is executed from a copy in a temporary folder (the committed file is never touched) by a
fresh "python3" kernel with the repository root as its working directory; the executed copy is written
beside it for inspection. The walkthrough's copy gets one more cell that saves its results (latents,
frames, metrics) to a file; the test recomputes them independently: the metrics from the saved latents, the
latents from a run of the same sampler and seed outside the notebook, and the analytic backbone's metrics
against their exact values (tests/test_acceptance.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from test_acceptance import assert_near, exact_covariance, exact_mirror, exact_seam_jump

from benchmarks import metrics, pixel_metrics
from models import GaussianVideoPrior
from models.bundled import load_pipeline
from models.threads import limit_threads
from models.video_io import to_uint8_frames
from samplers import LongVideoSampler
from samplers.registry import parse_strategies

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 300  # per cell; the small setting of the walkthrough runs in well under a minute in all
WALKTHROUGH = ROOT / "notebooks" / "walkthrough.ipynb"
STATE = "walkthrough-state.pt"
# Appended to the walkthrough's copy: everything its results are made of, for the test to recompute.
SAVE_STATE = """
torch.save({{
    "settings": {{"SMALL": SMALL, "SAMPLES": SAMPLES, "STEPS": STEPS, "NUM_CLIPS": NUM_CLIPS,
                 "NUM_FRAMES": NUM_FRAMES, "PROMPT_FRAMES": PROMPT_FRAMES, "FRAME_SHAPE": FRAME_SHAPE,
                 "LENGTHSCALE": LENGTHSCALE, "SEED": SEED, "CAPTION": CAPTION, "VIDEO_CLIPS": VIDEO_CLIPS,
                 "VIDEO_FRAMES": VIDEO_FRAMES, "VIDEO_PROMPT_FRAMES": VIDEO_PROMPT_FRAMES,
                 "VIDEO_STEPS": VIDEO_STEPS, "GUIDANCE": GUIDANCE, "PAPER": PAPER}},
    "videos": {{name: (video.latents, video.clip_starts) for name, video in videos.items()}},
    "reference": reference,
    "results": results,
    "generated": generated,
}}, {path!r})
"""


def _outputs(notebook, output_type: str) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
            if o.output_type == output_type]  # fmt: skip


def _text(notebook) -> str:
    """Everything the notebook printed to stdout."""
    return "".join(o.text for o in _outputs(notebook, "stream") if o.name == "stdout")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Notebook path -> the executed notebook; each notebook runs once per test session."""
    nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs the dev extra (nbclient)")
    import nbformat

    cache = {}

    def run(path: Path):
        if path not in cache:
            folder = tmp_path_factory.mktemp(path.stem)
            copy = folder / path.name
            shutil.copyfile(path, copy)
            notebook = nbformat.read(copy, as_version=4)
            if path == WALKTHROUGH:
                notebook.cells.append(nbformat.v4.new_code_cell(SAVE_STATE.format(path=str(folder / STATE))))
            client = nbclient.NotebookClient(
                notebook,
                timeout=TIMEOUT_S,
                kernel_name="python3",
                resources={"metadata": {"path": str(ROOT)}},  # the kernel's working directory
            )
            with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
                mp.setenv("KIT_NOTEBOOK_SMALL", "1")
                mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
                client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
            nbformat.write(notebook, folder / f"{path.stem}.executed.ipynb")
            cache[path] = notebook, folder
        return cache[path]

    return run


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    """Notebooks are committed cleared: their results come from running them, not from the file."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {k} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_without_error(executed, path):
    notebook, _ = executed(path)
    assert not _outputs(notebook, "error")
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def walkthrough(executed):
    """(executed notebook, what it printed, its saved state)."""
    notebook, folder = executed(WALKTHROUGH)
    state = torch.load(folder / STATE, weights_only=False)
    assert state["settings"]["SMALL"]  # the test runs the small setting
    return notebook, _text(notebook), state


def test_walkthrough_prints_what_it_computed(walkthrough):
    notebook, text, state = walkthrough
    settings = state["settings"]
    assert text.startswith(
        f"small setting: {settings['SAMPLES']} samples, {settings['STEPS']} DDIM steps, "
        f"{settings['NUM_CLIPS']} clips"
    )
    lines = text.splitlines()
    for name, row in state["results"].items():  # every row of the printed table is the computed one
        printed = (
            f"{name:<20}{row['seam_jump_ratio']:>17.4f}{row['mirror_correlation']:>14.4f}"
            f"{row['autocorrelation_error']:>11.4f}"
        )
        assert any(line.startswith(printed) for line in lines), name
    fnr = state["videos"]["fnr"][0]
    n = settings["NUM_FRAMES"]
    gap = (fnr[:, :, n : 2 * n] - fnr[:, :, :n].flip(2)).abs().max().item()
    assert f"FNR: max |clip 1 - clip 0 reversed| = {gap:.2e}" in text
    # Four figures: the autocorrelations, the metric bars, the two contact sheets, the centroid tracks.
    images = [o for o in _outputs(notebook, "display_data") if "image/png" in o.data]
    assert len(images) == 4


def test_walkthrough_metrics_recomputed_from_its_latents(walkthrough):
    _, _, state = walkthrough
    s = state["settings"]
    prior = GaussianVideoPrior(s["NUM_FRAMES"], s["FRAME_SHAPE"], s["LENGTHSCALE"])
    videos = {"reference": (state["reference"], [i * s["NUM_FRAMES"] for i in range(s["NUM_CLIPS"])])}
    videos |= state["videos"]
    assert set(state["results"]) == set(videos)
    for name, (latents, starts) in videos.items():
        kernel = prior.autocorrelation(np.arange(latents.shape[2]))
        with limit_threads(1):  # BLAS's pooled sums may differ in the last bits with the thread count
            recomputed = {
                "seam_jump_ratio": metrics.seam_jump_ratio(latents, starts),
                "mirror_correlation": metrics.mirror_correlation(latents, starts, skip=s["PROMPT_FRAMES"]),
                "autocorrelation_error": metrics.autocorrelation_error(latents, kernel),
            }
        assert state["results"][name] == pytest.approx(recomputed, rel=1e-12, abs=1e-15), name


def test_walkthrough_latents_are_the_samplers_and_near_the_exact_values(walkthrough):
    _, _, state = walkthrough
    s = state["settings"]
    n, m, k, steps = s["NUM_FRAMES"], s["PROMPT_FRAMES"], s["NUM_CLIPS"], s["STEPS"]
    prior = GaussianVideoPrior(n, s["FRAME_SHAPE"], s["LENGTHSCALE"])
    scheduler = DDIMScheduler(clip_sample=False)
    # The same sampler and seed outside the notebook: the same bits.
    sampler = LongVideoSampler(parse_strategies(s["PAPER"]), prompt_frames=m, progress=False)
    channels, height, width = s["FRAME_SHAPE"]
    clip_shape = (s["SAMPLES"], channels, n, height, width)
    generator = torch.Generator().manual_seed(s["SEED"])
    video = sampler.sample(prior.denoiser(scheduler), scheduler, clip_shape, k, steps, generator=generator)
    assert torch.equal(video.latents, state["videos"][s["PAPER"]][0])
    # The analytic backbone's metrics against their exact values at the notebook's own setting.
    replicates = s["SAMPLES"] * int(np.prod(s["FRAME_SHAPE"]))
    shape = {"frames": n, "prompt": m, "clips": k, "steps": steps}
    exact = {
        "independent": exact_covariance(**shape),
        "fnr,pns:4": exact_covariance(fnr=True, alpha=4.0, **shape),
        s["PAPER"]: exact_covariance(fnr=True, alpha=4.0, beta=0.4, **shape),
        "reference": prior.covariance(k * n),
    }
    for name, cov in exact.items():
        row = state["results"][name]
        assert_near(row["seam_jump_ratio"], exact_seam_jump(cov, replicates, clip=n))
        assert_near(row["mirror_correlation"], exact_mirror(cov, replicates, clip=n, skip=m))
    # FNR alone: an exact palindrome up to float32 rounding.
    assert state["results"]["fnr"]["seam_jump_ratio"] < 1e-10
    assert state["results"]["fnr"]["mirror_correlation"] > 1 - 1e-10


def test_walkthrough_tiny_vidrd_section(walkthrough):
    _, text, state = walkthrough
    s = state["settings"]
    pipe = load_pipeline()
    for name, (frames, starts, latents) in state["generated"].items():
        assert frames.shape == (s["VIDEO_CLIPS"] * s["VIDEO_FRAMES"], 32, 32, 3)
        assert starts == [i * s["VIDEO_FRAMES"] for i in range(s["VIDEO_CLIPS"])]
        with torch.no_grad():  # the frames shown are the recorded latents decoded, a clip at a time
            clips = latents.split(s["VIDEO_FRAMES"], dim=2)
            decoded = np.concatenate([to_uint8_frames(pipe.vae.decode(clip))[0] for clip in clips])
        np.testing.assert_array_equal(decoded, frames)
        pixels = pixel_metrics.summary(frames, starts)
        printed = (
            f"{name:<20}{len(frames):>7}{metrics.seam_jump_ratio(latents, starts):>11.3f}"
            f"{metrics.mirror_correlation(latents, starts, skip=s['VIDEO_PROMPT_FRAMES']):>8.3f}"
            f"{pixels['mean_speed_inside']:>7.2f}{pixels['mean_velocity_jump']:>8.2f}"
            f"  {pixels['direction_reversals']} of {pixels['seams_with_clear_direction']}"
        )
        assert printed in text.splitlines(), name
    # The paper's video again, outside the notebook: the same latents.
    sampler = LongVideoSampler(parse_strategies(s["PAPER"]), s["VIDEO_PROMPT_FRAMES"], progress=False)
    out = pipe(s["CAPTION"], sampler=sampler, num_clips=s["VIDEO_CLIPS"], num_frames=s["VIDEO_FRAMES"],
               num_inference_steps=s["VIDEO_STEPS"], guidance_scale=s["GUIDANCE"],
               generator=torch.Generator().manual_seed(s["SEED"]), return_latents=True)  # fmt: skip
    assert torch.equal(out.latents, state["generated"][s["PAPER"]][2])
