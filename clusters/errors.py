"""The error every cluster and job operation raises for something a user can fix."""


class ClusterError(RuntimeError):
    """A cluster or job operation failed; the message names the value at fault and the fix."""
