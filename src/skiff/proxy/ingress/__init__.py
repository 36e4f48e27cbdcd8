"""skiff's built-in Ingress controller (like the Traefik k3s ships): an HTTP and
HTTPS reverse proxy on the host that routes by networking.k8s.io/v1 Ingress rules
straight to the ready endpoints of Services, with ingress-nginx's semantics and
canary annotations.

::

    API ──Ingresses, IngressClasses, TLS Secrets──▶ IngressController ──table, certs──▶ IngressProxy
        ──Services, EndpointSlices (read per request)──────────────────────────────────▲   │
      ▲                                                                                   │   ▼
      └── status.loadBalancer.ingress, Events ◀── IngressController     clients ──HTTP(S)─┘  pods

Modules, one concept each:

    classes     which Ingresses are ours (IngressClass skiff, controller skiff.dev/ingress)
    routes      Ingress rules → RouteTable; (host, path) → Route (precedence, regex, rewrite)
    canary      the canary annotations: which requests a canary backend takes
    backends    a Service port → its ready endpoint addresses; round-robin
    reach       which endpoint addresses may be dialled (only ones this host routes itself)
    certs       the default self-signed certificate; TLS Secrets chosen by SNI
    server      the aiohttp reverse proxy on the HTTP and HTTPS ports
    controller  informers → passes (table, certificates, status, events); run_ingress_controller()
"""

from .controller import IngressController, run_ingress_controller

__all__ = ["IngressController", "run_ingress_controller"]
