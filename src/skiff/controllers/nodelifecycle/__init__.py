"""Node lifecycle: silent nodes become Unknown and tainted; their pods are evicted.

* :mod:`.health`      -- conditions, taints and tolerations as pure functions
* :mod:`.controller`  -- :class:`NodeLifecycleController` (Lease/heartbeat watch,
  Unknown conditions, node.kubernetes.io taints, disruption modes)
* :mod:`.eviction`    -- :class:`TaintEvictionController` (NoExecute taints vs.
  tolerationSeconds)
"""

from .controller import NodeLifecycleConfig, NodeLifecycleController
from .eviction import TaintEvictionController

__all__ = ["NodeLifecycleConfig", "NodeLifecycleController", "TaintEvictionController"]
