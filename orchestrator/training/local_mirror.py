"""A local folder that stands for an output folder which may be a URI.

Profiler traces and metric-logger files are written by libraries that only know local
paths (torch.profiler, TensorBoard's writer, plain ``open``). When the run's output is
``s3://...`` or ``gs://...``, they write into node-local scratch and :meth:`sync` uploads
what is there; a local target is written in place and :meth:`sync` does nothing.
"""

import tempfile
from pathlib import Path

from modeling.storage import is_remote, join, upload_dir


class LocalMirror:
    """A writable local directory for ``target`` (a local path or a URI).

    Args:
        target: Where the files belong.
        prefix: Name prefix of the scratch directory used for a URI.
    """

    def __init__(self, target: str | Path, prefix: str = "tunefleet-") -> None:
        self.target = str(target)
        self.remote = is_remote(self.target)
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if self.remote else Path(target)
        self.path.mkdir(parents=True, exist_ok=True)

    def sync(self, subfolder: str | None = None) -> None:
        """Upload the scratch directory's files to the URI (no-op when local).

        Args:
            subfolder: Upload only this folder of it (files written since the last sync,
                e.g. one profiler cycle), not everything again.
        """
        if not self.remote:
            return
        if subfolder is None:
            upload_dir(self.path, self.target)
        else:
            upload_dir(self.path / subfolder, join(self.target, subfolder))
