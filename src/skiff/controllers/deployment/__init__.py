"""The Deployment controller, one concept per module.

* :mod:`.controller` - handlers, the reconcile entry point, write expectations
* :mod:`.sync`       - one sync's steps and writes (new ReplicaSet, scaling, status)
* :mod:`.rolling`    - the RollingUpdate strategy
* :mod:`.recreate`   - the Recreate strategy
* :mod:`.progress`   - status counts and conditions, the progress deadline
* :mod:`.history`    - ReplicaSets as revisions: template hash, annotations, cleanup
* :mod:`.replicas`   - surge/unavailability arithmetic, proportional scaling
"""

from .controller import DeploymentController

__all__ = ["DeploymentController"]
