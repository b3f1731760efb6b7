"""The label value that takes no loss, shared by datasets, collation and the loss."""

# ``torch.nn.functional.cross_entropy``'s default ``ignore_index``; torchtune's name.
CROSS_ENTROPY_IGNORE_IDX = -100
