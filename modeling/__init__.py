"""Tunefleet's model library: pure PyTorch decoders, LoRA/QLoRA, tokenizers, checkpoints.

Nothing here imports Ray, so models, conversion and checkpoints can be used and tested
on their own.
"""
