import torch
import torch.nn.functional as F

from orchestrator.training.loss import CEWithChunkedOutputLoss


def test_chunked_loss_is_the_summed_cross_entropy_for_both_layouts():
    logits = torch.randn(2, 10, 7)
    labels = torch.randint(0, 7, (2, 10))
    labels[0, :4] = -100
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
    loss = CEWithChunkedOutputLoss(num_output_chunks=3)
    torch.testing.assert_close(loss(logits, labels), expected)
    keep = labels != -100
    torch.testing.assert_close(loss(logits[keep], labels[keep]), expected)
