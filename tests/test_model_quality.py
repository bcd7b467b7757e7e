"""The model-quality harness: captions of the world and batched generation (tiny untrained pipeline)."""

import itertools

import pytest
import torch

from benchmarks.judge import caption_movers
from benchmarks.model_quality import all_captions, decode_clips, generate_clips
from benchmarks.video_scores import caption_labels
from models.data.long_world import MOTIONS, world_words
from models.data.shapes import COLOURS, DIRECTIONS, SHAPES
from models.text import WordEncoder
from models.tiny import tiny_pipeline
from samplers import DSG, FNR, PNS, LongVideoSampler


def test_every_caption_of_the_world_once_per_repeat():
    captions = all_captions(repeats=2, world="shapes")
    assert len(captions) == 2 * 48 and len(set(captions)) == 48
    labels = caption_labels(captions)  # every caption names one shape, colour and direction
    combos = set(zip(*(labels[h].tolist() for h in ("shape", "colour", "direction")), strict=True))
    assert combos == set(itertools.product(range(len(SHAPES)), range(len(COLOURS)), range(len(DIRECTIONS))))


def test_every_caption_of_the_long_world_with_every_backdrop():
    captions = all_captions(repeats=2, world="long")
    assert len(captions) == 72 and len(set(captions)) == 72  # the two repeats take different backdrops
    movers = [caption_movers(c) for c in captions]  # each names one shape with colour and motion
    assert {(c, m.shape, m.motion) for x in movers for c, m in x.items()} == set(
        itertools.product(COLOURS, SHAPES, MOTIONS)
    )
    endings = {c.split(" over ")[1] for c in captions}
    assert endings == {"black", "gray", "stripes drifting left", "stripes drifting right",
                       "a gradient drifting left", "a gradient drifting right"}  # fmt: skip
    encoder = WordEncoder(vocabulary=world_words())
    assert not any(encoder.tokenizer.ignored_words(c) for c in captions)


def test_generate_clips_is_one_batched_clip_per_caption():
    pipe = tiny_pipeline(seed=0)
    videos = generate_clips(
        pipe, ["a red circle moving right", "a blue square moving up"], num_frames=6, steps=2
    )
    again = generate_clips(
        pipe, ["a red circle moving right", "a blue square moving up"], num_frames=6, steps=2
    )
    assert videos.shape == (2, 3, 6, 32, 32) and videos.abs().max() <= 1
    assert torch.equal(videos, again)  # same seed, same bits
    # batched: the first clip does not depend on what else is in the batch. A leak between batch items
    # would move pixels by O(0.1); float32 convolutions summed in a batch-size-dependent order differ by
    # O(1e-5) after decoding (1.3e-5 measured), so 1e-4 separates the two.
    alone = generate_clips(pipe, ["a red circle moving right"], num_frames=6, steps=2)
    torch.testing.assert_close(alone[0], videos[0], rtol=0, atol=1e-4)


def test_decode_clips_decodes_each_clip_alone_in_the_vae_dtype():
    pipe = tiny_pipeline(seed=0)
    latents = torch.randn(pipe.clip_shape(1, 7), generator=torch.Generator().manual_seed(0))
    frames = decode_clips(pipe, latents.double(), [0, 4])  # clips of 4 and 3 frames, float64 latents
    clips = [pipe.decode_clip(latents[:, :, :4]), pipe.decode_clip(latents[:, :, 4:])]
    assert frames.dtype == pipe.vae.dtype and torch.equal(frames, torch.cat(clips, dim=2).clamp(-1, 1))


def test_sample_batch_conditions_each_video_as_the_pipeline_conditions_one():
    """A batch of one is the pipeline's own call, bit for bit: the same prompt and negative embeddings, the
    same CFG. Picking the batch's first prompt for every video, or one prompt per clip, would differ."""
    pipe = tiny_pipeline(seed=0)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], progress=False)
    kwargs = {"num_frames": 6, "num_clips": 2, "num_inference_steps": 3, "guidance_scale": 7.5}
    prompt = "a blue square moving up"
    batch = pipe.sample_batch([prompt], torch.Generator().manual_seed(3), sampler, **kwargs)
    call = pipe("a blue square moving up", sampler=sampler, generator=torch.Generator().manual_seed(3),
                return_latents=True, **kwargs)  # fmt: skip
    assert batch.clip_starts == call.clip_starts and torch.equal(batch.latents, call.latents)
    two = pipe.sample_batch(["a red circle moving right", "a blue square moving up"],
                            torch.Generator().manual_seed(3), sampler, **kwargs)  # fmt: skip
    assert (two.latents[0] - two.latents[1]).abs().max() > 0.01  # each video its own prompt


def test_sample_batch_refuses_blank_prompts_before_any_work():
    pipe = tiny_pipeline(seed=0)
    for prompts in ([], ["a red circle", " "], "a red circle"):
        with pytest.raises(ValueError, match="prompts must be a non-empty list"):
            pipe.sample_batch(prompts, torch.Generator().manual_seed(0))
