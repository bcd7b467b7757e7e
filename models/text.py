"""Text encoding: the `TextEncoder` protocol, a small trainable word-level encoder and a CLIP wrapper.

    encoder = WordEncoder(vocabulary=["a", "boat", "is", "sailing", "in", "lake"], dim=32)
    text = encoder.encode(["a boat is sailing in a lake"])  # (1, max_length, dim)

`WordEncoder` is the built-in encoder of the bundled model (no download, no extra dependency); it is a
diffusers `ModelMixin` + `ConfigMixin`, so `save_pretrained` / `from_pretrained` work as for the UNets
(loaded strictly: `models.loading`) and the vocabulary lives in its `config.json`. `CLIPTextEncoder`
wraps `transformers`' CLIP for real Stable Diffusion checkpoints; `transformers` is an optional extra,
imported only when it is used.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from samplers.validation import check_int

from .loading import DamagedCheckpointError, LocalModelMixin, check_keys, read_json
from .seeding import seeded

__all__ = ["CLIPTextEncoder", "TextEncoder", "WordEncoder", "WordTokenizer", "unknown_words"]

PAD_ID = 0
UNKNOWN_ID = 1
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters (any script); everything else separates words
CLIP_EXTRA = 'pip install "reuse-diffuse-kit[clip]"'


@runtime_checkable
class TextEncoder(Protocol):
    """`encode(prompts) -> (B, S, D)` embeddings for a UNet's `encoder_hidden_states`; S = `max_length`,
    D = `dim`."""

    dim: int
    max_length: int

    def encode(self, prompts: list[str]) -> torch.Tensor: ...


class WordTokenizer:
    """Lower-cases, splits on non-letters and maps each word to its id; pads or truncates to `max_length`.

    Ids: 0 = padding, 1 = unknown word, `vocabulary[i]` = i + 2. Vocabulary words must be lower-case runs
    of letters (anything else could never be produced by the splitting) and distinct.
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int = 16) -> None:
        check_int("max_length", max_length, 1)
        words = list(vocabulary)
        for word in words:
            if not isinstance(word, str) or not _WORD.fullmatch(word) or word != word.lower():
                raise ValueError(f"vocabulary words must be lower-case runs of letters; got {word!r}")
        if len(set(words)) != len(words):
            duplicates = sorted({w for w in words if words.count(w) > 1})
            raise ValueError(f"vocabulary words must be distinct; repeated: {duplicates}")
        self.vocabulary = words
        self.max_length = max_length
        self._ids = {word: i + 2 for i, word in enumerate(words)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.vocabulary) + 2

    def words(self, prompt: str) -> list[str]:
        return _WORD.findall(prompt.lower())

    def ids(self, prompt: str) -> list[int]:
        """The `max_length` ids of one prompt (truncated, then padded with 0)."""
        ids = [self._ids.get(word, UNKNOWN_ID) for word in self.words(prompt)][: self.max_length]
        return ids + [PAD_ID] * (self.max_length - len(ids))

    def ignored_words(self, prompt: str) -> list[str]:
        """The words of `prompt` that encode as nothing the model knows: out of the vocabulary (the unknown
        id), or past `max_length` (truncated)."""
        words = self.words(prompt)
        unknown = [w for w in words[: self.max_length] if w not in self._ids]
        return unknown + words[self.max_length :]

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        """`(B, max_length)` int64 ids."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, not a single string")
        return torch.tensor([self.ids(p) for p in prompts], dtype=torch.long).reshape(-1, self.max_length)

    def save(self, path: str | os.PathLike) -> None:
        """Write `{"vocabulary": [...], "max_length": n}` as JSON."""
        data = {"vocabulary": self.vocabulary, "max_length": self.max_length}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        """A tokenizer from a file written by `save`: exactly the keys `vocabulary` and `max_length`, else
        a `DamagedCheckpointError` (a ValueError) naming the file and the key."""
        file = Path(path)
        data = read_json(file)
        check_keys(file, data, {"vocabulary", "max_length"}, cls.__name__)
        try:
            return cls(data["vocabulary"], data["max_length"])
        except (TypeError, ValueError) as err:
            raise DamagedCheckpointError(f"{file}: not a usable {cls.__name__} ({err})") from err


class WordEncoder(LocalModelMixin, ConfigMixin):
    """Word embeddings + learned positions + pre-norm Transformer layers + LayerNorm -> (B, max_length, dim).

    Every position is attended to, padding included (as with CLIP in Stable Diffusion, the padded
    positions carry features too, and an empty prompt stays well defined). Dropout is 0, so training
    never draws from the global RNG. Parameters are initialised from `seed` inside
    `torch.random.fork_rng()`: construction is deterministic and leaves the global RNG state untouched.
    """

    @register_to_config
    def __init__(
        self,
        vocabulary: list[str] | None = None,  # lower-case words; ids 0 and 1 are padding and unknown
        dim: int = 32,  # embedding width D
        max_length: int = 16,  # tokens per prompt S
        layers: int = 1,  # Transformer encoder layers
        heads: int = 4,  # attention heads (must divide dim)
        seed: int = 0,  # parameter initialisation seed
    ) -> None:
        super().__init__()
        for name, value, low in (("dim", dim, 1), ("max_length", max_length, 1), ("layers", layers, 0)):
            check_int(name, value, low)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or dim % heads:
            raise ValueError(f"heads must be a positive divisor of dim = {dim}; got {heads!r}")
        self.tokenizer = WordTokenizer(vocabulary or [], max_length)
        with seeded(seed):
            self.token_embedding = nn.Embedding(self.tokenizer.vocab_size, dim, padding_idx=PAD_ID)
            self.position_embedding = nn.Parameter(0.02 * torch.randn(1, max_length, dim))
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(
                    dim,
                    heads,
                    dim_feedforward=4 * dim,
                    dropout=0.0,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(layers)
            )
            self.final_norm = nn.LayerNorm(dim)

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def max_length(self) -> int:
        return self.config.max_length

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`(B, max_length)` ids -> `(B, max_length, dim)`."""
        hidden = self.token_embedding(input_ids) + self.position_embedding[:, : input_ids.shape[1]]
        for block in self.blocks:
            hidden = block(hidden)
        return self.final_norm(hidden)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Tokenise and embed; keeps the autograd graph (the encoder is trainable): wrap in `no_grad` to
        sample."""
        return self(self.tokenizer(prompts).to(self.token_embedding.weight.device))


def unknown_words(encoder: WordEncoder, words) -> list[str]:
    """The `words` (e.g. a world's caption vocabulary) the encoder's tokenizer would read as "unknown",
    sorted: a model trained on another world."""
    return sorted(set(words) - set(encoder.tokenizer.vocabulary))


class CLIPTextEncoder:
    """`transformers`' CLIPTokenizer + CLIPTextModel; `encode` returns `last_hidden_state` (B, 77, D)."""

    def __init__(self, tokenizer: Any, model: Any) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.dim = int(model.config.hidden_size)
        self.max_length = int(tokenizer.model_max_length)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> CLIPTextEncoder:
        """Load from a local folder, never the network: either a Stable Diffusion checkpoint root (with
        `tokenizer/` and `text_encoder/`) or one folder holding both."""
        try:
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError as err:
            raise ImportError(
                f"CLIPTextEncoder needs the optional `transformers` dependency: {CLIP_EXTRA}"
            ) from err
        root = Path(path)
        split = (root / "tokenizer").is_dir() and (root / "text_encoder").is_dir()
        tokenizer = CLIPTokenizer.from_pretrained(
            root / "tokenizer" if split else root, local_files_only=True
        )
        model = CLIPTextModel.from_pretrained(root / "text_encoder" if split else root, local_files_only=True)
        model.requires_grad_(False).eval()
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
        return cls(tokenizer, model)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        with torch.no_grad():
            return self.model(ids.to(self.model.device)).last_hidden_state
