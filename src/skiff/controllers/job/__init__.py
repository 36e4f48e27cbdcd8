"""The Job controller (batch/v1), one concept per module.

* :mod:`.controller` - handlers, the reconcile entry point, orphan-pod finalizer cleanup
* :mod:`.sync`       - one sync: count, decide (conditions), act, record
* :mod:`.manage`     - creating and deleting pods (parallelism, back-off, indexes, suspend)
* :mod:`.tracking`   - counting finished pods exactly once with the tracking finalizer
* :mod:`.policies`   - podFailurePolicy and successPolicy matching
* :mod:`.indexes`    - Indexed Jobs: completion indexes and their "0-2,4" form
* :mod:`.backoff`    - the exponential back-off before replacing failed pods
* :mod:`.facts`      - questions about a Job and its pods; condition helpers
* :mod:`.state`      - what the steps share (per sync and across syncs)
"""

from .controller import JobController

__all__ = ["JobController"]
