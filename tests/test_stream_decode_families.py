"""Streamed decoding on every family's tiny pipeline equals one decode of the whole long latent
video: exactly (to float round-off) for the VAEs that stream on their own terms (Wan's causal cache,
CogVideoX's cached frame batches, HunyuanVideo's temporal tiles), whatever the total (odd, even, prompt
frames dropped), and for the others (Mochi causal, LTX-Video non-causal) once the context (and
lookahead) covers the video."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers.examples import EXAMPLES
from samplers import DSG, FNR, PNS, ForwardOverlap, LongVideoSampler

RUNS = {"paper, 3 clips (9 latent frames)": ([FNR(), PNS(alpha=4), DSG(beta=0.4)], 3),
        "overlap, 4 clips (prompt frames dropped)": ([ForwardOverlap()], 4),
        "fnr, 2 clips (an even total)": ([FNR()], 2)}  # fmt: skip


def streamed_and_whole(name: str, strategies, clips: int, **call):
    pipe, kwargs = EXAMPLES[name](0)
    long = LongVideoPipeline.from_pipe(pipe)
    sampler = LongVideoSampler(strategies, prompt_frames=1, progress=False)
    out = long(**kwargs, num_inference_steps=2, sampler=sampler, num_clips=clips,
               generator=torch.Generator().manual_seed(0), **call)  # fmt: skip
    whole = long.family.decode_latents(out.latents)
    return out.frames, rearrange(((whole.float().clamp(-1, 1) + 1) / 2)[0], "c f h w -> f h w c").numpy()


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("name", ["wan", "cogvideox", "hunyuan"])
def test_streamed_is_the_whole_decode_exactly(name, run):
    # the same computation, up to float round-off: a chunk's 1x1x1 convolution may sum in another order
    # than the whole video's (6e-8 seen with Wan when the prompt frames are dropped; 0 in the other runs)
    frames, whole = streamed_and_whole(name, *RUNS[run])
    assert frames.shape == whole.shape and abs(frames - whole).max() < 1e-6


@pytest.mark.parametrize("name", ["mochi", "ltx"])
def test_a_context_covering_the_video_is_the_whole_decode(name):
    # float round-off only: the VAE then decodes inputs of other lengths (other convolution sums)
    frames, whole = streamed_and_whole(name, *RUNS["paper, 3 clips (9 latent frames)"], decode_context=9)
    assert frames.shape == whole.shape and abs(frames - whole).max() < 1e-5
