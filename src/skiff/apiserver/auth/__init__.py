"""Authentication and RBAC authorization for the API server.

Modules, one concept each::

    user          UserInfo, well-known users/groups, the current-request user
    attributes    request -> (verb, resource, namespace ...); the 403 wording
    authn         client certificates, ServiceAccount bearer tokens, anonymous
    tokens        ServiceAccount JWTs: issue and verify (ES256)
    tokenapi      TokenRequest, TokenReview, SelfSubjectReview endpoints
    impersonation Impersonate-* headers
    rules         PolicyRule matching and coverage (escalation)
    policy        the RBAC objects in memory, fed by the watch cache
    rbac          the authorizer (system:masters short-circuit, cached decisions)
    escalation    no granting of permissions one does not hold
    aggregation   aggregated ClusterRoles (admin/edit/view)
    defaultroles  the default policy as data; reconcile keeps it in place
    podtokens     the ServiceAccount token volume on pods
    gate          ties it together for ``make_app(..., auth=AuthOptions(...))``

(Nothing is imported here, so ``reviews`` can use :mod:`.user` without a cycle.)
"""
