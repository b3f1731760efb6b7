from orchestrator.launcher import FINISHED_MARKER, _archive_finished_run


def test_finished_run_moves_aside_and_unfinished_run_stays_for_resume(tmp_path):
    finished, unfinished = tmp_path / "done", tmp_path / "crashed"
    (finished / "checkpoint_1").mkdir(parents=True)
    (finished / FINISHED_MARKER).write_text("finished\n")
    (unfinished / "checkpoint_1").mkdir(parents=True)
    _archive_finished_run(tmp_path, "done")
    _archive_finished_run(tmp_path, "crashed")
    assert not finished.exists()
    (archived,) = tmp_path.glob("done.finished-*")
    assert (archived / "checkpoint_1").is_dir()
    assert (unfinished / "checkpoint_1").is_dir()


def test_follow_records_yields_every_record_in_order_then_drains_after_done():
    import queue
    import threading

    from orchestrator.progress import follow_records

    records, done = queue.Queue(), threading.Event()
    seen = []

    def produce():
        for step in range(1, 5):
            records.put({"step": step, "loss": 1.0 / step})
        done.set()  # the run ends with records still queued: they are drained, not lost

    producer = threading.Thread(target=produce)
    follower = threading.Thread(target=lambda: seen.extend(follow_records(records, done, 0.01)))
    follower.start()
    producer.start()
    producer.join()
    follower.join(timeout=5)
    assert not follower.is_alive()
    assert [r["step"] for r in seen] == [1, 2, 3, 4]
