"""The shapes classifier (tiny runs only) and the video scores on constructed inputs with known answers."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from einops import rearrange
from torch import nn

import benchmarks.video_scores as vs
from benchmarks.classifier import (
    CLASSIFIERS,
    CONFIG_FILE,
    ONE_SHAPE_WORLD,
    WEIGHTS_FILE,
    WORLD_HEADS,
    AugmentConfig,
    ClassifierConfig,
    augment,
    blur,
    build_classifier,
    evaluate_classifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from models.data.long_world import WorldConfig
from models.data.shapes import MovingShapes

BUNDLED = Path(__file__).resolve().parents[1] / "benchmarks" / "weights" / "shapes-classifier"


def _clips(b: int = 3, f: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, f, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- the classifier -------------------------------------------------------------------------------------


def test_classifier_shapes_and_features():
    model = build_classifier(seed=0)
    logits = model(_clips(2))
    assert {k: tuple(v.shape) for k, v in logits.items()} == {
        "shape": (2, 3),
        "colour": (2, 4),
        "direction": (2, 4),
    }
    assert model.features(_clips(2)).shape == (2, model.config.feature_dim)
    assert model.features(_clips(1, f=3)).shape == (1, model.config.feature_dim)  # short clips fit too
    with pytest.raises(ValueError, match="videos"):
        model(torch.zeros(2, 1, 8, 32, 32))


def test_classifier_config_validation():
    with pytest.raises(ValueError, match=r"feature_dim.*\[1, 4096\].*0"):
        ClassifierConfig(feature_dim=0)
    with pytest.raises(ValueError, match=r"heads\['shape'\].*2 distinct"):
        ClassifierConfig(heads=(("shape", ("circle",)), ("colour", ("red", "blue"))))
    with pytest.raises(ValueError, match="'shape' and 'colour' among them"):
        ClassifierConfig(heads=(("colour", ("red", "blue")),))
    with pytest.raises(ValueError, match="pairs"):
        ClassifierConfig(heads=(("shape", "abc"), ("colour", ("red", "blue"))))
    with pytest.raises(ValueError, match="pairs"):
        ClassifierConfig(heads=(("shape",),))
    with pytest.raises(ValueError, match="noise_std"):
        AugmentConfig(noise_std=-0.1)


def test_train_classifier_is_deterministic_and_leaves_global_state():
    rng, threads = torch.random.get_rng_state(), torch.get_num_threads()
    a = train_classifier(steps=2, batch=4, seed=3)
    b = train_classifier(steps=2, batch=4, seed=3)
    c = train_classifier(steps=2, batch=4, seed=4)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    untrained = build_classifier(seed=3).state_dict()
    assert any(not torch.equal(v, untrained[k]) for k, v in a.state_dict().items())


def test_train_classifier_validates():
    with pytest.raises(ValueError, match=r"batch.*\[1, 4096\].*0"):
        train_classifier(steps=1, batch=0)
    with pytest.raises(ValueError, match="lr"):
        train_classifier(steps=1, batch=1, lr=0.0)


def test_save_load_round_trip(tmp_path):
    model = train_classifier(steps=1, batch=2, seed=0)
    save_classifier(model, tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_classifier(tmp_path / "clf")
    assert loaded.config == model.config and not loaded.training
    x = _clips(2)
    for head, value in model(x).items():
        assert torch.equal(value, loaded(x)[head])
    (tmp_path / "clf" / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        load_classifier(tmp_path / "clf")
    with pytest.raises(FileNotFoundError, match=CONFIG_FILE):
        load_classifier(tmp_path / "nowhere")


def test_augment_is_mild_seeded_and_in_range():
    x = MovingShapes(4, seed=0)[0]["video"][None].repeat(4, 1, 1, 1, 1)
    cfg = AugmentConfig(noise_std=0.1, blur_prob=0.5, max_blur_sigma=1.0)
    a = augment(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(a, augment(x, cfg, torch.Generator().manual_seed(0)))
    assert a.min() >= -1 and a.max() <= 1 and (a - x).abs().mean() < 0.1
    const = torch.full((2, 3, 2, 8, 8), 0.3)
    assert torch.allclose(blur(const, torch.tensor([0.0, 1.0])), const)
    assert torch.allclose(blur(x[:1], torch.tensor([0.0])), x[:1])


def test_bundled_classifier_reads_held_out_clips():
    accuracy = evaluate_classifier(load_classifier(BUNDLED), length=96, seed=777)
    assert min(accuracy.values()) >= 0.95, accuracy


def test_bundled_world_classifier_reads_held_out_clips():
    model = load_classifier(CLASSIFIERS["long"])
    accuracy = evaluate_classifier(model, length=96, seed=777, config=ONE_SHAPE_WORLD)
    assert min(accuracy.values()) >= 0.97, accuracy  # 0.999 / 1 / 1 on 1024 held-out clips


# --- scores ---------------------------------------------------------------------------------------------


class StubClassifier(nn.Module):
    """Predicts from a table indexed by the clip id stored in pixel (0, 0, 0, 0) of each clip."""

    def __init__(self, table: dict[str, list[int]], classes=(("shape", 3), ("colour", 4), ("direction", 4))):
        super().__init__()
        self.logits = {h: nn.functional.one_hot(torch.tensor(table[h]), n).float() * 5 for h, n in classes}

    def forward(self, x):
        ids = x[:, 0, 0, 0, 0].round().long()
        return {h: v[ids] for h, v in self.logits.items()}


def _ids(n: int) -> torch.Tensor:
    videos = torch.zeros(n, 3, 4, 8, 8)
    videos[:, 0, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return videos


def test_caption_consistency_counts_matches():
    stub = StubClassifier({"shape": [0, 1, 2, 0], "colour": [1, 1, 3, 2], "direction": [3, 2, 1, 0]})
    labels = {
        "shape": torch.tensor([0, 1, 0, 0]),
        "colour": [1, 0, 3, 2],
        "direction": torch.tensor([3, 2, 1, 1]),
    }
    scores = vs.caption_consistency(stub, _ids(4), labels, batch_size=3)
    assert scores == {"shape": 0.75, "colour": 0.75, "direction": 0.75, "shape_and_colour": 0.5, "all": 0.25}
    with pytest.raises(ValueError, match="labels"):
        vs.caption_consistency(stub, _ids(4), {"shape": labels["shape"]})
    with pytest.raises(ValueError, match=r"labels\['colour'\].*B=4"):
        vs.caption_consistency(stub, _ids(4), {**labels, "colour": torch.tensor([1, 2])})


def test_caption_labels_parse_captions():
    labels = vs.caption_labels(["a red circle moving right", "a yellow triangle moving up and a blue square"])
    assert {h: v.tolist() for h, v in labels.items()} == {
        "shape": [0, 2],
        "colour": [0, 3],
        "direction": [1, 2],
    }
    with pytest.raises(ValueError, match="colour"):
        vs.caption_labels(["a circle moving left"])
    world = vs.caption_labels(
        ["a blue square bouncing vertically and a red circle bouncing around over stripes drifting left"],
        WORLD_HEADS,
    )
    assert {h: v.tolist() for h, v in world.items()} == {"shape": [1], "colour": [2], "motion": [2]}


def test_inception_style_score_known_values():
    assert vs.inception_style_score(torch.full((5, 4), 0.25)) == pytest.approx(1.0, abs=1e-12)
    assert vs.inception_style_score(np.eye(6)) == pytest.approx(6.0, rel=1e-12)
    assert vs.inception_style_score(np.eye(3)[[0, 1, 2, 0, 1, 2]]) == pytest.approx(3.0, rel=1e-12)
    # p1 = (1, 0), p2 = (1/2, 1/2), p(y) = (3/4, 1/4): KL1 = log(4/3), KL2 = (log(2/3) + log 2) / 2
    kl = (math.log(4 / 3) + 0.5 * (math.log(2 / 3) + math.log(2))) / 2
    assert vs.inception_style_score([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx(math.exp(kl), rel=1e-12)


@pytest.mark.parametrize(
    "probs", [np.ones(3) / 3, [[0.5, 0.6]], [[1.5, -0.5]], [[np.nan, 1.0]], np.zeros((0, 3))]
)
def test_inception_style_score_refuses_non_distributions(probs):
    with pytest.raises(ValueError, match="probs"):
        vs.inception_style_score(probs)


def test_joint_probs_is_the_product_of_the_heads():
    g = torch.Generator().manual_seed(0)
    logits = {h: torch.randn(5, k, generator=g) for h, k in (("shape", 3), ("colour", 4), ("direction", 4))}

    def classifier(x):
        ids = x[:, 0, 0, 0, 0].round().long()
        return {h: v[ids] for h, v in logits.items()}

    joint = vs.joint_probs(classifier, _ids(5), batch_size=2)
    assert joint.shape == (5, 48)
    assert torch.allclose(joint.sum(dim=1), torch.ones(5, dtype=joint.dtype))
    cube = rearrange(joint, "b (s c d) -> b s c d", s=3, c=4, d=4)
    ps, pc, pd = (logits[h].double().softmax(dim=1) for h in ("shape", "colour", "direction"))
    assert torch.allclose(cube[:, 2, 1, 3], ps[:, 2] * pc[:, 1] * pd[:, 3])
    assert torch.allclose(cube.sum(dim=(2, 3)), ps) and torch.allclose(cube.sum(dim=(1, 2)), pd)
    # One-hot, balanced predictions over all 48 joint classes score 48.
    ids = torch.arange(48)
    sharp = {"shape": ids // 16, "colour": ids // 4 % 4, "direction": ids % 4}
    stub = StubClassifier({h: v.tolist() for h, v in sharp.items()})
    stub.logits = {h: v * 20 for h, v in stub.logits.items()}
    assert vs.inception_style_score(vs.joint_probs(stub, _ids(48))) == pytest.approx(48.0, rel=1e-6)


def test_frechet_video_distance_known_values(monkeypatch):
    a = np.array([[-1.0], [1.0]])  # mean 0, variance 2
    b = np.array([[2.0], [8.0]])  # mean 5, variance 18
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 = 25 + (sqrt 2 - sqrt 18)^2 = 25 + 8
    assert vs.frechet_video_distance(a, b) == pytest.approx(33.0, rel=1e-9)
    feats = torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert vs.frechet_video_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0.0, 3.0], dtype=torch.float64)
    assert vs.frechet_video_distance(feats, feats + shift) == pytest.approx(14.0, rel=1e-6)
    calls = []
    monkeypatch.setattr(vs, "frechet_distance_from_stats", lambda *args: calls.append(args) or 7.0)
    assert vs.frechet_video_distance(a, b) == 7.0 and len(calls) == 1


def test_frechet_video_distance_validates():
    with pytest.raises(ValueError, match="same D"):
        vs.frechet_video_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"features_b.*n >= 2"):
        vs.frechet_video_distance(np.zeros((3, 2)), np.zeros((1, 2)))


def test_video_features_of_the_classifier():
    model = build_classifier(seed=1)
    x = _clips(5)
    feats = vs.video_features(model, x, batch_size=2)
    assert feats.shape == (5, model.config.feature_dim)
    with torch.no_grad():
        assert torch.allclose(feats, model.features(x), atol=1e-6)
        # other frame sizes are resized to the classifier's 32 x 32
        assert vs.video_features(model, _clips(2, size=64)).shape == (2, model.config.feature_dim)
    with pytest.raises(ValueError, match="extractor"):
        vs.video_features(object(), x)
    with pytest.raises(ValueError, match="videos"):
        vs.video_features(model, x[:, :2])


class TinyI3D(nn.Module):
    """Checks the I3D input convention and returns (B, D, F, H, W) or pooled (B, D) features."""

    def __init__(self, pooled: bool):
        super().__init__()
        self.proj = nn.Conv3d(3, 5, kernel_size=1)
        self.pooled = pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 3 and x.shape[3] == 224 and x.shape[4] == 224
        out = self.proj(x)
        return out.mean(dim=(2, 3, 4)) if self.pooled else out


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("pooled", [False, True])
def test_load_i3d_and_its_features(tmp_path, pooled):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = TinyI3D(pooled)
    path = tmp_path / "i3d.pt"
    torch.jit.script(module).save(str(path))
    i3d = vs.load_i3d(path)
    x = _clips(3, f=4, size=16)
    feats = vs.video_features(i3d, x, batch_size=2)
    big = nn.functional.interpolate(x, size=(4, 224, 224), mode="trilinear", align_corners=False)
    with torch.no_grad():
        expected = module.proj(big).mean(dim=(2, 3, 4))
    assert feats.shape == (3, 5)
    assert torch.allclose(feats, expected, atol=1e-5)


def test_load_i3d_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no-i3d\.pt"):
        vs.load_i3d(tmp_path / "no-i3d.pt")


def test_the_long_world_classifier_reads_motion():
    model = train_classifier(steps=1, batch=2, seed=0, config=WorldConfig(num_frames=4))
    assert dict(model.config.heads)["motion"] == ("around", "sideways", "vertically")
    accuracy = evaluate_classifier(model, length=3, seed=5, config=WorldConfig(num_frames=4))
    assert set(accuracy) == {"shape", "colour", "motion"}
    with pytest.raises(ValueError, match="heads"):
        evaluate_classifier(model, length=3, seed=5)  # the clip world has no motion head
