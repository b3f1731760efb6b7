"""Tunefleet's clusters: shipped cluster specs, their lifecycle, and a Ray job client.

The lowest layer above :mod:`modeling`; it never imports :mod:`orchestrator`, which calls
down into it.

- :mod:`clusters.spec_files`: the Ray cluster-launcher and KubeRay specs in ``specs/``.
- :mod:`clusters.local_cluster`: a multi-node Ray cluster on this machine.
- :mod:`clusters.jobs`: submitting a ready entrypoint as a Ray job and following it.
"""
