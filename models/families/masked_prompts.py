"""Prompts as text or as T5 embeddings with attention masks, per clip: the checks and the encoding the
LTX-Video and Mochi families share (their pipelines' `check_inputs` and `encode_prompt` take the same
keywords: prompt, negative_prompt, prompt_embeds, negative_prompt_embeds and their attention masks).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import clip_index, per_clip

PROMPTS = ("prompt", "negative_prompt")
TENSORS = ("prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds",
           "negative_prompt_attention_mask")  # fmt: skip


class MaskedPrompts:
    """A mixin of `VideoFamily`: `_clip_inputs` (each distinct clip's prompt keywords, checked) and
    `_encode` (one clip's denoiser keywords, [negative, positive] with guidance)."""

    pipe: Any
    device: torch.device

    def _clip_inputs(self, args: dict[str, Any], num_clips: int, guided: bool) -> list[dict[str, Any]]:
        """The prompt keywords of each distinct clip, checked as the pipeline's check_inputs does."""
        items = {name: per_clip(name, args[name], num_clips, str) for name in PROMPTS}
        items.update({name: per_clip(name, args[name], num_clips, torch.Tensor) for name in TENSORS})
        count = max(len(values) for values in items.values())
        clips = [{name: clip_index(values, i) for name, values in items.items()} for i in range(count)]
        for i, clip in enumerate(clips):
            where = f" (clip {i})" if count > 1 else ""
            self._check_embeds(clip, where)
            self._check_text(clip, where, guided)
        return clips

    def _check_embeds(self, clip: dict[str, Any], where: str) -> None:
        """prompt xor prompt_embeds; every embedding (B, S, D) with its (B, S) mask; negative as positive."""
        positive, negative = clip["prompt_embeds"], clip["negative_prompt_embeds"]
        if (clip["prompt"] is None) == (positive is None):
            got = "neither" if positive is None else "both"
            raise ValueError(f"exactly one of prompt and prompt_embeds is required{where}; got {got}")
        for prefix, embeds in (("", positive), ("negative_", negative)):
            if embeds is None:
                continue
            mask = clip[f"{prefix}prompt_attention_mask"]
            if embeds.ndim != 3:
                raise ValueError(f"{prefix}prompt_embeds must be (B, S, D){where}; got {tuple(embeds.shape)}")
            if mask is None or mask.shape != embeds.shape[:2]:
                raise ValueError(
                    f"{prefix}prompt_attention_mask must come with {prefix}prompt_embeds, of shape (B, S) = "
                    f"{tuple(embeds.shape[:2])}{where}; got {None if mask is None else tuple(mask.shape)}"
                )
        if positive is not None and negative is not None and negative.shape != positive.shape:
            raise ValueError(
                f"negative_prompt_embeds must have prompt_embeds' shape {tuple(positive.shape)}{where}; "
                f"got {tuple(negative.shape)}"
            )

    def _check_text(self, clip: dict[str, Any], where: str, guided: bool) -> None:
        """Text to encode (a prompt, or the negative prompt "" that guidance without negative embeddings
        encodes) needs the tokenizer and the text encoder."""
        texts = [name for name in PROMPTS if clip[name] is not None]
        if guided and clip["negative_prompt_embeds"] is None and "negative_prompt" not in texts:
            texts.append('negative_prompt (default "")')
        if texts and (self.pipe.tokenizer is None or self.pipe.text_encoder is None):
            raise ValueError(
                f"{' and '.join(texts)} {'need' if len(texts) > 1 else 'needs'} the pipeline's tokenizer "
                "and text_encoder, which it lacks"
                f"{where}: pass prompt_embeds / negative_prompt_embeds with their attention masks instead"
            )

    def _encode(self, clip: dict[str, Any], args: dict[str, Any], guided: bool,
                **extra: Any) -> dict[str, Any]:  # fmt: skip
        """The denoiser's keywords for one clip, through the pipeline's own encode_prompt (`extra` its
        family's further keywords); with guidance the embeddings and masks are concatenated [negative,
        positive] as the pipeline does."""
        positive, mask, negative, negative_mask = self.pipe.encode_prompt(
            prompt=clip["prompt"], negative_prompt=clip["negative_prompt"],
            do_classifier_free_guidance=guided, prompt_embeds=clip["prompt_embeds"],
            negative_prompt_embeds=clip["negative_prompt_embeds"],
            prompt_attention_mask=clip["prompt_attention_mask"],
            negative_prompt_attention_mask=clip["negative_prompt_attention_mask"],
            max_sequence_length=args["max_sequence_length"], device=self.device, **extra,
        )  # fmt: skip
        if guided:
            positive, mask = torch.cat([negative, positive]), torch.cat([negative_mask, mask])
        return {"prompt_embeds": positive, "prompt_attention_mask": mask,
                "attention_kwargs": args["attention_kwargs"]}  # fmt: skip
