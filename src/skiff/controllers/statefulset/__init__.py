"""The StatefulSet controller, one concept per module.

* :mod:`.controller` - handlers, the reconcile entry point, claiming, status writes
* :mod:`.control`    - one pass of the ordered algorithm (create, repair, scale down, roll)
* :mod:`.identity`   - ordinals, member names, identity labels, claims, retention references
* :mod:`.podcontrol` - the writes for members: claims first, then pods; events
* :mod:`.revisions`  - current and update ControllerRevisions (see ``..history``)
* :mod:`.status`     - status counts, readiness, finishing a rolling update
"""

from .controller import StatefulSetController

__all__ = ["StatefulSetController"]
