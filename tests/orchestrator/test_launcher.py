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
