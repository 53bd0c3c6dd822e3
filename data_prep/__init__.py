"""Raw corpora -> cleaned, deduplicated, tokenized Megatron indexed datasets (.bin/.idx) and blends.

Never imports medmegatron's training code: its outputs are files megatron-core reads on its own.
"""
