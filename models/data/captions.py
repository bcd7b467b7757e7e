"""Captions from class labels for short classification clips (the paper's Figure 4, docs/DESIGN.md §7).

    captioner = LabelCaptioner()
    captioner("ApplyEyeMakeup", torch.Generator().manual_seed(0))  # e.g. "a video of apply eye makeup"
    captioner("playing_guitar", generator)                          # e.g. "a clip of playing guitar"

Labels are normalised to lower-case words: underscores, hyphens and CamelCase boundaries (UCF-101 style
names) become spaces. A template is chosen uniformly with the caller's generator.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import torch

from samplers.validation import check_generator

__all__ = ["LabelCaptioner", "label_text"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def label_text(label: str) -> str:
    """Lower-case words of a class name: "ApplyEyeMakeup" -> "apply eye makeup", "playing_guitar" ->
    "playing guitar"."""
    words = _CAMEL.sub(" ", label).replace("_", " ").replace("-", " ").split()
    if not words:
        raise ValueError(f"label must contain at least one word; got {label!r}")
    return " ".join(words).lower()


@dataclass(frozen=True)
class LabelCaptioner:
    templates: tuple[str, ...] = (  # caption templates, each with exactly the one field "{label}"
        "a video of {label}",
        "a clip of {label}",
        "footage of {label}",
        "{label}",
    )

    def __post_init__(self) -> None:
        if not isinstance(self.templates, tuple) or not self.templates:
            raise ValueError(f"templates must be a non-empty tuple of strings; got {self.templates!r}")
        for template in self.templates:
            _check_template(template)

    def __call__(self, label: str, generator: torch.Generator) -> str:
        """A caption for `label` from a template chosen uniformly (drawn only from `generator`)."""
        check_generator(generator)
        index = int(torch.randint(len(self.templates), (), generator=generator))
        return self.templates[index].format(label=label_text(label))

    def all(self, label: str) -> list[str]:
        """Every template's caption for `label`, in template order."""
        return [template.format(label=label_text(label)) for template in self.templates]


def _check_template(template: str) -> None:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except (TypeError, ValueError) as error:
        raise ValueError(f"templates must be strings with a {{label}} field; got {template!r}") from error
    if fields.count("label") < 1 or set(fields) != {"label"}:
        raise ValueError(f"templates must contain {{label}} and no other field; got {template!r}")
