"""VidRDUNet: identity at initialisation, temporal mixing, training isolation, save/load."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.tiny import tiny_unet2d
from models.vidrd_unet import VidRDUNet


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def unet2d():
    return tiny_unet2d(seed=0).eval()


def inputs(frames=6, batch=2, seed=0):
    latents = torch.randn(batch, 4, frames, 8, 8, generator=gen(seed))
    context = torch.randn(batch, 5, 32, generator=gen(seed + 1))
    return latents, context


def per_frame(unet2d, latents, t, context):
    """The image model applied frame by frame: the reference for an untrained VidRDUNet."""
    with torch.no_grad():
        return torch.stack([unet2d(latents[:, :, f], t, context).sample for f in range(latents.shape[2])], 2)


def perturb_temporal(model, seed=3, scale=0.2):
    g = gen(seed)
    with torch.no_grad():
        for p in model.temporal_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def test_identity_at_initialisation(unet2d):
    model = VidRDUNet.from_unet2d(unet2d).eval()
    latents, context = inputs()
    with torch.no_grad():
        out = model(latents, torch.tensor(500), context)
    assert out.shape == latents.shape
    assert (out - per_frame(unet2d, latents, 500, context)).abs().max() < 1e-5


def response(model, k, frames=12):
    """Max change at every output frame when input frame k is changed."""
    latents, context = inputs(frames=frames, batch=1)
    changed = latents.clone()
    changed[:, :, k] += torch.randn(changed[:, :, k].shape, generator=gen(9))
    with torch.no_grad():
        diff = model(changed, torch.tensor(300), context) - model(latents, torch.tensor(300), context)
    return diff.abs().amax(dim=(0, 1, 3, 4))


def test_temp_conv_mixes_neighbours_only(unet2d):
    model = VidRDUNet.from_unet2d(unet2d, temporal_attention=False).eval()
    perturb_temporal(model)
    # Eight Temp-Convs lie on the longest path (2 down, 2 mid, 4 up ResNet blocks), each reaching +-1 frame.
    assert len(model.temporal_convs) == 8
    change = response(model, k=0)
    assert change[0] > 1e-4 and change[1] > 1e-6
    assert torch.all(change[9:] == 0)
    model.use_temporal_conv = False
    change = response(model, k=0)
    assert change[0] > 1e-4 and torch.all(change[1:] == 0)


def test_temp_attn_mixes_every_frame(unet2d):
    model = VidRDUNet.from_unet2d(unet2d, temporal_conv=False).eval()
    perturb_temporal(model)
    assert torch.all(response(model, k=5) > 1e-7)
    model.use_temporal_attention = False
    change = response(model, k=5)
    assert change[5] > 1e-4 and torch.all(change[:5] == 0) and torch.all(change[6:] == 0)


def plain(config):
    """A config as JSON sees it (tuples become lists), without diffusers' bookkeeping keys."""
    return json.loads(json.dumps({k: v for k, v in config.items() if not k.startswith("_")}))


def test_save_and_load_round_trip(unet2d, tmp_path):
    model = VidRDUNet.from_unet2d(unet2d)
    perturb_temporal(model)
    model.save_pretrained(tmp_path)
    loaded = VidRDUNet.from_pretrained(tmp_path)
    assert plain(loaded.config) == plain(model.config)
    reference = model.state_dict()
    assert reference.keys() == loaded.state_dict().keys()
    assert all(torch.equal(reference[k], v) for k, v in loaded.state_dict().items())


def test_mismatched_checkpoint_names_the_tensor(unet2d, tmp_path):
    VidRDUNet.from_unet2d(unet2d).save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    key = "temporal_convs.down_blocks__0__resnets__0.conv.weight"
    state[key] = torch.zeros(32, 32, 5, 1, 1)
    save_file(state, weights)
    with pytest.raises(RuntimeError, match=f"size mismatch for {key}"):
        VidRDUNet.from_pretrained(tmp_path)


def test_gradient_checkpointing_gives_the_same_gradients(unet2d):
    latents, context = inputs(frames=4, batch=1)
    grads = []
    for checkpointing in (False, True):
        model = VidRDUNet.from_unet2d(unet2d).freeze_spatial()
        perturb_temporal(model)
        model.train()
        if checkpointing:
            model.enable_gradient_checkpointing()
            assert sum(getattr(m, "gradient_checkpointing", False) for m in model.unet.modules()) >= 4
        model(latents, torch.tensor(100), context).pow(2).mean().backward()
        grads.append([p.grad.clone() for p in model.temporal_parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_backward_through_a_non_contiguous_video(unet2d):
    # Regression: a strided (B, C, F, H, W) input, as TemporalVAE.encode returns, crashed the CPU
    # convolution backward before the fold was made contiguous.
    model = VidRDUNet.from_unet2d(unet2d).freeze_spatial()
    latents = torch.randn(3, 8, 4, 8, 8, generator=gen(4)).transpose(1, 2)  # (3, 4, 8, 8, 8), strided
    assert not latents.is_contiguous()
    context = torch.randn(3, 5, 32, generator=gen(5))
    model(latents, torch.tensor([10, 500, 900]), context).pow(2).mean().backward()
    assert all(p.grad is not None for p in model.temporal_parameters())


def test_optional_text_attention_starts_as_identity_and_reads_the_caption(unet2d):
    plain = VidRDUNet.from_unet2d(unet2d).eval()
    model = VidRDUNet.from_unet2d(unet2d, temporal_text_attention=True).eval()
    assert len(model.temporal_text_attentions) == len(model.temporal_attentions) == 4  # down, mid, 2 up
    latents, context = inputs(frames=4)
    with torch.no_grad():  # zero-initialised output projections: the same function as without them
        assert torch.equal(
            model(latents, torch.tensor(10), context), plain(latents, torch.tensor(10), context)
        )
    perturb_temporal(model)
    other = torch.randn(context.shape, generator=gen(11))
    with torch.no_grad():
        a, b = model(latents, torch.tensor(10), context), model(latents, torch.tensor(10), other)
        model.use_temporal_text_attention = False  # the caption layers have their own switch
        off = model(latents, torch.tensor(10), context)
    assert (a - b).abs().max() > 1e-4
    assert (off - per_frame(unet2d, latents, 10, context)).abs().max() > 0  # Temp-Conv, Temp-Attn still on
    # Built without Temp-Attn, the caption layers still run (they used to share its switch and never did).
    alone = VidRDUNet.from_unet2d(unet2d, temporal_attention=False, temporal_text_attention=True).eval()
    perturb_temporal(alone)
    with torch.no_grad():
        assert (alone(latents, 10, context) - alone(latents, 10, other)).abs().max() > 1e-4


def test_a_deep_copy_runs_its_own_temporal_layers(unet2d):
    # The temporal layers run from forward hooks; a copy must call the copy's layers with the copy's
    # switches and frame count (closures would silently keep calling the original's).
    import copy

    original = VidRDUNet.from_unet2d(unet2d, temporal_text_attention=True).eval()
    perturb_temporal(original)
    clone = copy.deepcopy(original)
    latents, context = inputs(frames=5)
    with torch.no_grad():
        before = original(latents, 10, context)
        assert torch.equal(clone(latents, 10, context), before)
        for p in clone.temporal_parameters():
            p.zero_()  # the clone becomes the image model per frame; the original must not change
        torch.testing.assert_close(clone(latents, 10, context), per_frame(unet2d, latents, 10, context),
                                   rtol=0, atol=1e-5)  # fmt: skip
        assert torch.equal(original(latents, 10, context), before)
        clone.use_temporal_conv = clone.use_temporal_attention = False  # the switches are per model
        assert torch.equal(original(latents, 10, context), before)
    double = copy.deepcopy(original).double()  # e.g. for float64 gradient checks
    trained = VidRDUNet.from_unet2d(unet2d, temporal_text_attention=True)
    trained(latents, 10, context.clone().requires_grad_(True)).sum().backward()
    copy.deepcopy(trained)  # after a forward whose caption carries a graph (an EMA copy in training)
    with torch.no_grad():
        torch.testing.assert_close(double(latents.double(), 10, context.double()).float(), before,
                                   rtol=1e-4, atol=1e-5)  # fmt: skip


def test_freeze_spatial_freezes_every_spatial_parameter_for_an_optimiser_over_all_parameters(unet2d):
    # Stage 2 builds its optimiser from every parameter that requires grad (models.training.loop.train),
    # not from temporal_parameters(): freeze_spatial() alone must keep the image UNet out of it.
    model = VidRDUNet.from_unet2d(unet2d)
    perturb_temporal(model)  # non-zero output projections: every temporal parameter gets a gradient
    spatial_ids = {id(p) for p in model.spatial_parameters()}
    assert spatial_ids and all(p.requires_grad for p in model.parameters())  # nothing frozen before
    assert model.freeze_spatial() is model
    assert all(not p.requires_grad for p in model.spatial_parameters())
    assert all(p.requires_grad for p in model.temporal_parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in model.temporal_parameters()}
    spatial = {k: v.clone() for k, v in model.unet.state_dict().items()}
    temporal = [p.detach().clone() for p in model.temporal_parameters()]
    optimiser = torch.optim.SGD(trainable, lr=0.1)
    latents, context = inputs(frames=4)
    (model(latents, torch.tensor(10), context) - latents).pow(2).mean().backward()
    optimiser.step()
    assert all(p.grad is None for p in model.spatial_parameters())
    assert all(torch.equal(v, model.unet.state_dict()[k]) for k, v in spatial.items())
    after = list(model.temporal_parameters())
    assert all(not torch.equal(a, b) for a, b in zip(temporal, after, strict=True))  # every one moved
    split = [id(p) for p in model.spatial_parameters()] + [id(p) for p in after]
    assert sorted(split) == sorted(id(p) for p in model.parameters())  # the two sets partition them


def test_each_batch_item_runs_at_its_own_timestep(unet2d):
    # Reference: the image UNet on one frame of one video at that video's own timestep and caption. The
    # temporal layers are zero-initialised, so the video model is the image model frame by frame; a fold
    # that pairs frames with another video's timestep (or caption) breaks the match.
    model = VidRDUNet.from_unet2d(unet2d).eval()
    latents, context = inputs(frames=3, batch=2)
    timesteps = torch.tensor([50, 950])
    with torch.no_grad():
        out = model(latents, timesteps, context)
        expected = torch.stack([
            torch.stack([unet2d(latents[b : b + 1, :, f], timesteps[b], context[b : b + 1]).sample[0]
                         for f in range(latents.shape[2])], 1)
            for b in range(latents.shape[0])
        ])  # fmt: skip
        swapped = model(latents, timesteps.flip(0), context)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert (swapped - expected).abs().max() > 1e-2  # the timesteps matter: the check can fail


def _temporal_attention_only(unet2d) -> VidRDUNet:
    model = VidRDUNet.from_unet2d(unet2d, temporal_conv=False).eval()
    perturb_temporal(model, seed=5, scale=0.3)
    return model


def test_temp_attn_tells_frame_order(unet2d):
    # Without Temp-Attn the model runs frame by frame, so reversing the frames reverses the output exactly;
    # self-attention over frames is permutation-equivariant too, unless it adds a frame-position embedding.
    # With the embedding, the model must not commute with the reversal.
    model = _temporal_attention_only(unet2d)
    latents, context = inputs(frames=5, batch=1)
    t = torch.tensor(400)
    with torch.no_grad():
        model.use_temporal_attention = False
        per_frame_gap = (model(latents.flip(2), t, context) - model(latents, t, context).flip(2)).abs().max()
        model.use_temporal_attention = True
        gap = (model(latents.flip(2), t, context) - model(latents, t, context).flip(2)).abs().max()
    assert per_frame_gap < 1e-5
    assert gap > 1e-2


def test_temp_attn_position_embedding_separates_identical_frames(unet2d):
    # Every frame equal: a permutation-equivariant layer maps them to equal outputs; only the position
    # embedding (sin/cos of the frame index) can tell them apart.
    layer = _temporal_attention_only(unet2d).temporal_attentions["mid_block__attentions__0"]
    channels = layer.norm.normalized_shape[0]
    frame = torch.randn(1, channels, 2, 2, generator=gen(6))
    with torch.no_grad():
        out = layer(frame.repeat(4, 1, 1, 1), 4)  # (b f) c h w with b = 1, f = 4
    assert (out[1:] - out[:1]).abs().amax() > 1e-2
