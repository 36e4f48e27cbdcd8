"""Cluster DNS (``<svc>.<ns>.svc.cluster.local``): records, server, forwarder.

* :mod:`.wire` -- just enough of the DNS wire format, built for speed;
* :mod:`.records` -- Services and EndpointSlices -> precomputed answers;
* :mod:`.forwarder` -- other names to the upstream resolver;
* :mod:`.server` -- UDP + TCP server and :func:`run_dns`.
"""

from .records import ClusterRecords
from .server import DnsServer, run_dns

__all__ = ["ClusterRecords", "DnsServer", "run_dns"]
