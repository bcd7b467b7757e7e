"""Text encoding: the word tokenizer, the word encoder's determinism and round trip, the CLIP extra."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from models.text import CLIPTextEncoder, TextEncoder, WordEncoder, WordTokenizer

VOCABULARY = ["a", "boat", "is", "sailing", "in", "lake", "café"]  # ids 2..8; 0 = padding, 1 = unknown


def test_tokenizer_maps_known_sentences_to_hand_written_ids():
    tokenizer = WordTokenizer(VOCABULARY, max_length=8)
    ids = tokenizer(["A boat is sailing in a lake.", "a   SUBMARINE is diving", "", "Café-boat,2lake_a!"])
    assert ids.dtype == torch.long
    assert ids.tolist() == [
        [2, 3, 4, 5, 6, 2, 7, 0],  # lower-cased, punctuation dropped, padded with 0
        [2, 1, 4, 1, 0, 0, 0, 0],  # unknown words -> 1
        [0, 0, 0, 0, 0, 0, 0, 0],  # empty prompt: all padding
        [8, 3, 7, 2, 0, 0, 0, 0],  # digits, hyphens and underscores separate words; non-ASCII letters kept
    ]


def test_tokenizer_truncates_to_max_length():
    tokenizer = WordTokenizer(VOCABULARY, max_length=3)
    assert tokenizer(["a boat is sailing in a lake"]).tolist() == [[2, 3, 4]]
    assert tokenizer.ids("lake") == [7, 0, 0]
    assert tokenizer.words("Is it a BOAT?") == ["is", "it", "a", "boat"]
    assert tokenizer.vocab_size == len(VOCABULARY) + 2


def test_tokenizer_vocabulary_round_trips_as_json(tmp_path):
    tokenizer = WordTokenizer(VOCABULARY, max_length=5)
    tokenizer.save(tmp_path / "vocabulary.json")
    data = json.loads((tmp_path / "vocabulary.json").read_text(encoding="utf-8"))
    assert data == {"vocabulary": VOCABULARY, "max_length": 5}
    loaded = WordTokenizer.load(tmp_path / "vocabulary.json")
    assert loaded.vocabulary == VOCABULARY and loaded.max_length == 5
    assert loaded(["café lake"]).tolist() == tokenizer(["café lake"]).tolist()


@pytest.mark.parametrize(
    ("vocabulary", "max_length", "match"),
    [
        (["Boat"], 4, "lower-case"),
        (["sail boat"], 4, "lower-case"),
        (["boat2"], 4, "lower-case"),
        (["boat", "boat"], 4, "distinct"),
        (["boat"], 0, "max_length"),
    ],
)
def test_tokenizer_refuses_bad_arguments(vocabulary, max_length, match):
    with pytest.raises(ValueError, match=match):
        WordTokenizer(vocabulary, max_length)


def test_tokenizer_wants_a_list_of_prompts():
    with pytest.raises(TypeError, match="list"):
        WordTokenizer(VOCABULARY)("a boat")


def test_word_encoder_shapes_and_protocol():
    encoder = WordEncoder(vocabulary=VOCABULARY, dim=32, max_length=12, layers=2, heads=4)
    assert isinstance(encoder, TextEncoder)
    assert encoder.dim == 32 and encoder.max_length == 12
    out = encoder.encode(["a boat is sailing in a lake", "", "unknown words only"])
    assert out.shape == (3, 12, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # different prompts, different embeddings
    assert out.requires_grad  # trainable: encode keeps the graph
    assert all(p.requires_grad for p in encoder.parameters())


def test_word_encoder_is_trainable():
    encoder = WordEncoder(vocabulary=VOCABULARY, dim=16, heads=2)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    loss = encoder.encode(["a boat"]).pow(2).mean()
    loss.backward()
    torch.optim.SGD(encoder.parameters(), lr=0.1).step()
    changed = [k for k, v in encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert "token_embedding.weight" in changed and "position_embedding" in changed


def test_word_encoder_construction_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = WordEncoder(vocabulary=VOCABULARY, layers=2, seed=3)
    second = WordEncoder(vocabulary=VOCABULARY, layers=2, seed=3)
    other = WordEncoder(vocabulary=VOCABULARY, layers=2, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["token_embedding.weight"], c["token_embedding.weight"])
    assert a["token_embedding.weight"][0].eq(0).all()  # the padding row


def test_word_encoder_runtime_uses_no_global_rng():
    encoder = WordEncoder(vocabulary=VOCABULARY).train()
    state = torch.get_rng_state()
    first = encoder.encode(["a boat is sailing"])
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, encoder.encode(["a boat is sailing"]))  # no dropout, even in train mode


def test_word_encoder_round_trip_is_exact(tmp_path):
    encoder = WordEncoder(vocabulary=VOCABULARY, dim=24, max_length=10, layers=2, heads=3, seed=7)
    with torch.no_grad():  # move away from the seeded initialisation, as after training
        for p in encoder.parameters():
            p.add_(0.01)
    encoder.save_pretrained(tmp_path / "text")
    config = json.loads((tmp_path / "text" / "config.json").read_text(encoding="utf-8"))
    assert config["vocabulary"] == VOCABULARY
    loaded = WordEncoder.from_pretrained(tmp_path / "text")
    assert loaded.tokenizer.vocabulary == VOCABULARY
    assert (loaded.dim, loaded.max_length) == (24, 10)
    a, b = encoder.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    prompts = ["a boat is sailing in a lake", "café"]
    with torch.no_grad():
        assert torch.equal(encoder.eval().encode(prompts), loaded.eval().encode(prompts))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"dim": 30, "heads": 4}, "heads"), ({"max_length": 0}, "max_length"), ({"layers": -1}, "layers")],
)
def test_word_encoder_refuses_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WordEncoder(vocabulary=VOCABULARY, **kwargs)


def test_clip_without_transformers_names_the_extra(monkeypatch, tmp_path):
    """Runs whether or not transformers is installed: a `None` entry in sys.modules makes the import
    fail exactly as a missing package does."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"reuse-diffuse-kit\[clip\]"):
        CLIPTextEncoder.from_pretrained(tmp_path)
