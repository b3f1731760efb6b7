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


def test_logits_projected_chunk_by_chunk_give_the_same_loss_and_gradients():
    from modeling.llama3 import llama3

    torch.manual_seed(0)
    model = llama3(
        vocab_size=50, num_layers=1, num_heads=2, num_kv_heads=1, embed_dim=16, max_seq_len=32
    )
    tokens = torch.randint(0, 50, (2, 12))
    labels = torch.randint(0, 50, (2, 12))
    labels[:, :5] = -100
    scored = labels != -100
    loss_fn = CEWithChunkedOutputLoss(num_output_chunks=4)
    chunks = model(tokens, output_mask=scored, output_chunks=4)
    assert isinstance(chunks, list) and len(chunks) == 4
    torch.testing.assert_close(torch.cat(chunks), model(tokens, output_mask=scored))
    chunked = loss_fn(chunks, labels[scored])
    chunked.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    whole = loss_fn(model(tokens, output_mask=scored), labels[scored])
    whole.backward()
    torch.testing.assert_close(chunked, whole)
    for grad, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(grad, p.grad)
