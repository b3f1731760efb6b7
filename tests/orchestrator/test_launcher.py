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


def test_follow_metrics_yields_each_record_once_and_restarts_after_a_rewrite(tmp_path):
    import json

    from orchestrator.progress import follow_metrics

    path = tmp_path / "metrics.jsonl"
    polls = iter(range(100))
    writes = {
        1: '{"step": 1, "loss": 2.0}\n{"step": 2, "lo',  # second line torn mid-write
        2: 'ss": 1.5}\n',
        3: None,  # a resumed run rewrites the file shorter
        4: '{"step": 2, "loss": 1.4}\n',
    }

    def stop():
        n = next(polls)
        if n in writes:
            text = writes[n]
            if text is None:
                path.write_text('{"step": 1, "loss": 2.0}\n')
            else:
                with open(path, "a") as f:
                    f.write(text)
        return n >= 6

    seen = list(follow_metrics(path, stop, poll_s=0))
    assert [(r["step"], r["loss"]) for r in seen] == [(1, 2.0), (2, 1.5), (1, 2.0), (2, 1.4)]
    assert json.loads(path.read_text().splitlines()[-1])["loss"] == 1.4
