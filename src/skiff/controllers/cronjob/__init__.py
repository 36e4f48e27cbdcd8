"""The CronJob controller (batch/v1), one concept per module.

* :mod:`.controller` - handlers, the reconcile loop, concurrency policies, status
* :mod:`.schedule`   - which run is due (missed runs, starting deadline), the Job for a run
* :mod:`.history`    - the active list, finished Jobs and the history limits
"""

from .controller import CronJobController

__all__ = ["CronJobController"]
