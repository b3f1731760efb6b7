"""``modeling.models.<family>``: the torchtune path (``torchtune.models.llama3``) for each family.

The families live at ``modeling.<family>``; this package makes the seed documentation's
imports (``from modeling.models.llama3 import llama3_8b``) resolve to the same modules.
"""

import importlib
import sys

FAMILIES = (
    "llama3",
    "llama2",
    "mistral",
    "phi3",
    "gemma",
    "llama3_1",
    "llama3_2",
    "llama3_3",
    "qwen2_5",
)

for _family in FAMILIES:
    _module = importlib.import_module(f"modeling.{_family}")
    sys.modules[f"{__name__}.{_family}"] = _module
    globals()[_family] = _module
