"""A URI output folder's local mirror uploads what it is told to, once."""

import uuid

from modeling.storage.paths import as_path
from orchestrator.training.local_mirror import LocalMirror


def test_syncing_a_subfolder_uploads_only_that_subfolder(s3):
    bucket = f"mirror-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    target = f"s3://{bucket}/out/profiling"
    mirror = LocalMirror(target, prefix="tunefleet-test-")
    (mirror.path / "iteration_2").mkdir()
    (mirror.path / "iteration_2" / "rank0.trace").write_text("first cycle")
    mirror.sync("iteration_2")
    (mirror.path / "iteration_2" / "rank0.trace").write_text("changed locally")
    (mirror.path / "iteration_4").mkdir()
    (mirror.path / "iteration_4" / "rank0.trace").write_text("second cycle")
    mirror.sync("iteration_4")
    remote = as_path(target)
    assert (remote / "iteration_4" / "rank0.trace").read_text() == "second cycle"
    # the first cycle was not uploaded again
    assert (remote / "iteration_2" / "rank0.trace").read_text() == "first cycle"
    mirror.sync()  # everything
    assert (remote / "iteration_2" / "rank0.trace").read_text() == "changed locally"
