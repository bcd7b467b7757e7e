"""A word-level tokenizer built offline (the `tokenizers` library), for tiny pipelines saved with
`save_pretrained` that must read text prompts, as `vidrd generate --pipeline` does."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

SPECIAL = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2
WORDS = ("a", "red", "green", "blue", "circle", "square", "triangle", "moving", "bouncing", "right", "left",
         "up", "down", "around", "over", "stripes")  # fmt: skip


def word_tokenizer(words: tuple[str, ...] = WORDS) -> PreTrainedTokenizerFast:
    """Whitespace-split words to ids 3.. (unknown words to <unk>), padding with <pad>, ending with </s>."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {word: i for i, word in enumerate((*SPECIAL, *words))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>")  # fmt: skip
