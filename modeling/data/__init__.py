"""Data types shared by tokenizers and datasets."""

from modeling.data.message import ROLES, Message, as_messages

__all__ = ["ROLES", "Message", "as_messages"]
