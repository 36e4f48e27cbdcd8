"""A throwaway API server on 127.0.0.1 that is just enough for the real kubectl.

Test-only.  It answers ``/version`` (1.32), legacy discovery for a few kinds,
``/openapi/v3`` (from :mod:`skiff.api.openapi`), records every write request
(method, path, query, content type, raw body) and answers creates with the
decoded object, so ``kubectl create ... --dry-run=server`` succeeds.  Reads of
single objects answer 404, so ``kubectl apply`` takes its create path.

    async with FakeServer() as server:
        out = await server.kubectl("create", "namespace", "x", "--dry-run=server")
        server.writes[0].body  # the bytes kubectl sent
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from skiff.api.errors import StatusError
from skiff.api.protobuf import CONTENT_TYPE as PROTOBUF, decode_object
from skiff.api.resource import ResourceInfo, Subresource
from skiff.api.schema import builtin_schema
from skiff.api.schema_load import find_unknown_fields, strict_decoding_message

KUBECTL = shutil.which("kubectl") or "kubectl"

RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False,
                 "io.k8s.api.core.v1.Namespace", short_names=("ns",)),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True,
                 "io.k8s.api.core.v1.ConfigMap", short_names=("cm",)),
    ResourceInfo("", "v1", "Secret", "secrets", "secret", True, "io.k8s.api.core.v1.Secret"),
    ResourceInfo("", "v1", "Service", "services", "service", True,
                 "io.k8s.api.core.v1.Service", short_names=("svc",)),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True,
                 "io.k8s.api.core.v1.ServiceAccount", short_names=("sa",),
                 subresources=(Subresource("token", "TokenRequest", "authentication.k8s.io", "v1",
                                           ("create",)),)),
    ResourceInfo("", "v1", "Pod", "pods", "pod", True, "io.k8s.api.core.v1.Pod",
                 short_names=("po",),
                 subresources=(Subresource("eviction", "Eviction", "policy", "v1", ("create",)),)),
    ResourceInfo("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", True,
                 "io.k8s.api.core.v1.ResourceQuota", short_names=("quota",)),
    ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True,
                 "io.k8s.api.apps.v1.Deployment", short_names=("deploy",),
                 subresources=(Subresource("scale", "Scale", "autoscaling", "v1"),)),
    ResourceInfo("batch", "v1", "Job", "jobs", "job", True, "io.k8s.api.batch.v1.Job"),
    ResourceInfo("batch", "v1", "CronJob", "cronjobs", "cronjob", True,
                 "io.k8s.api.batch.v1.CronJob", short_names=("cj",)),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True,
                 "io.k8s.api.rbac.v1.Role"),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole",
                 False, "io.k8s.api.rbac.v1.ClusterRole"),
    ResourceInfo("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True,
                 "io.k8s.api.networking.v1.Ingress", short_names=("ing",)),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding",
                 True, "io.k8s.api.rbac.v1.RoleBinding"),
    ResourceInfo("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                 "poddisruptionbudget", True, "io.k8s.api.policy.v1.PodDisruptionBudget",
                 short_names=("pdb",)),
    ResourceInfo("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
                 "selfsubjectaccessreviews", "selfsubjectaccessreview", False,
                 "io.k8s.api.authorization.v1.SelfSubjectAccessReview", verbs=("create",)),
    ResourceInfo("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass",
                 False, "io.k8s.api.scheduling.v1.PriorityClass", short_names=("pc",)),
)


@dataclass
class Write:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes


@dataclass
class FakeServer:
    resources: tuple[ResourceInfo, ...] = RESOURCES
    writes: list[Write] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _home: str = ""

    async def __aenter__(self) -> "FakeServer":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._home = tempfile.mkdtemp(prefix="skiff-kubectl-")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        shutil.rmtree(self._home, ignore_errors=True)

    async def kubectl(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        """Run the real kubectl against this server (without blocking the loop)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self._home}
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--server", self.url, "--cache-dir", f"{self._home}/cache", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        code = proc.returncode or 0
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({code}): {err.decode()}")
        return code, out.decode(), err.decode()

    # ------------------------------------------------------------------ handlers

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if request.method == "GET":
            return self._get(path, request)
        body = await request.read()
        self.writes.append(Write(request.method, path, dict(request.query),
                                 request.content_type, body))
        if request.method == "POST":
            try:
                obj = self._decode(request.content_type, body)
            except StatusError as e:
                return _json(e.to_status(), e.code)
            if request.query.get("fieldValidation") == "Strict":
                problem = _strict_problem(obj)
                if problem:
                    return _json(_status(400, "BadRequest", problem), 400)
            obj.setdefault("metadata", {}).setdefault("name", "x")
            if path.endswith("selfsubjectaccessreviews"):
                obj["status"] = {"allowed": True}
            if path.endswith("/token"):
                obj["status"] = {"token": "t0ken", "expirationTimestamp": "2030-01-01T00:00:00Z"}
            return _json(obj, 201)
        return _json(_status(405, "MethodNotAllowed", "not supported here"), 405)

    def _decode(self, content_type: str, body: bytes) -> dict[str, Any]:
        if content_type == PROTOBUF:
            return decode_object(body, builtin_schema())
        decoded: dict[str, Any] = orjson.loads(body)
        return decoded

    def _get(self, path: str, request: web.Request) -> web.StreamResponse:
        if path == "/version":
            return _json({"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                          "platform": "linux/amd64"})
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return _json(self._group_list())
        if path == "/openapi/v3":
            from skiff.api.openapi import openapi_v3_index
            return _json(openapi_v3_index(self.resources))
        if path.startswith("/openapi/v3/"):
            return self._openapi_gv(path[len("/openapi/v3/"):])
        for gv in self._group_versions():
            if path == _gv_path(*gv):
                return _json(self._resource_list(*gv))
        return _json(_status(404, "NotFound", "not found"), 404)

    def _group_versions(self) -> list[tuple[str, str]]:
        return sorted({(r.group, r.version) for r in self.resources})

    def _group_list(self) -> dict[str, Any]:
        groups = []
        for group, version in self._group_versions():
            if not group:
                continue
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        for r in self.resources:
            if (r.group, r.version) != (group, version):
                continue
            items.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                          "kind": r.kind, "verbs": list(r.verbs),
                          "shortNames": list(r.short_names)})
            for sub in r.subresources:
                items.append({"name": f"{r.plural}/{sub.name}", "singularName": "",
                              "namespaced": r.namespaced, "group": sub.group,
                              "version": sub.version, "kind": sub.kind, "verbs": list(sub.verbs)})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": items}

    def _openapi_gv(self, gv_path: str) -> web.StreamResponse:
        from skiff.api.openapi import openapi_v3_group_version
        parts = gv_path.split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            return _json(_status(404, "NotFound", "not found"), 404)
        doc = openapi_v3_group_version(group, version, self.resources, builtin_schema())
        return _json(doc)


def _strict_problem(obj: dict[str, Any]) -> str:
    """kube-apiserver's answer to unknown fields under fieldValidation=Strict, if any."""
    schema = builtin_schema()
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    typedef = schema.for_kind(group, version, kind)
    if typedef is None:
        return ""
    unknown = find_unknown_fields(schema, typedef.name, obj)
    return strict_decoding_message(kind, version, kind, unknown) if unknown else ""


def _gv_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return StatusError(code, reason, message).to_status()


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")
