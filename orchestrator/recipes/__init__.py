"""Training recipes: the per-worker fine-tuning function and the pieces it is made of."""
