"""The DaemonSet controller, one concept per module.

* :mod:`.controller` - handlers, the reconcile entry point, pod writes, status writes
* :mod:`.placement`  - which nodes should run the pod; daemon tolerations; node affinity
* :mod:`.pods`       - the daemon pod template, "updated" pods, pods by node
* :mod:`.manage`     - per node: create, delete failed/extra/misplaced pods (with back-off)
* :mod:`.rolling`    - one step of a RollingUpdate (maxUnavailable or maxSurge)
* :mod:`.revisions`  - the current ControllerRevision and history cleanup (see ``..history``)
* :mod:`.status`     - status counts per node
"""

from .controller import DaemonSetsController

__all__ = ["DaemonSetsController"]
