"""Tiny random diffusers video pipelines, one module per family, built offline from configs (the sizes
of diffusers' own tests): what the tests and the benchmarks run the families on. No tokenizer is built:
pass `prompt_embeds` (and the family's masks or pooled embeddings) directly.
"""
