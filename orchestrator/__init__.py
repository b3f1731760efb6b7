"""Tunefleet's orchestration layer: configs, datasets, recipes, Ray launching, CLI and SDK."""
