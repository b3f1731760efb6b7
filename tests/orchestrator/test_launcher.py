from orchestrator.launcher import COMPLETE_MARKER, _archive_finished_run


def test_finished_run_moves_aside_and_unfinished_run_stays_for_resume(tmp_path):
    finished, unfinished = tmp_path / "done", tmp_path / "crashed"
    (finished / "checkpoint_1").mkdir(parents=True)
    (finished / COMPLETE_MARKER).write_text("finished\n")
    (unfinished / "checkpoint_1").mkdir(parents=True)
    _archive_finished_run(tmp_path, "done")
    _archive_finished_run(tmp_path, "crashed")
    assert not finished.exists()
    (archived,) = tmp_path.glob("done.finished-*")
    assert (archived / "checkpoint_1").is_dir()
    assert (unfinished / "checkpoint_1").is_dir()


def test_chunked_loss_is_the_summed_cross_entropy_for_both_layouts():
    import torch
    import torch.nn.functional as F

    from orchestrator.recipes.loss import CEWithChunkedOutputLoss

    logits = torch.randn(2, 10, 7)
    labels = torch.randint(0, 7, (2, 10))
    labels[0, :4] = -100
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
    loss = CEWithChunkedOutputLoss(num_output_chunks=3)
    torch.testing.assert_close(loss(logits, labels), expected)
    keep = labels != -100
    torch.testing.assert_close(loss(logits[keep], labels[keep]), expected)
