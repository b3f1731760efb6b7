"""Data types shared by tokenizers and datasets."""

from modeling.data.labels import CROSS_ENTROPY_IGNORE_IDX
from modeling.data.message import ROLES, Message, as_messages

__all__ = ["CROSS_ENTROPY_IGNORE_IDX", "ROLES", "Message", "as_messages"]
