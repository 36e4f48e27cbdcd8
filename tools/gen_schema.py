#!/usr/bin/env python3
"""Generate ``src/skiff/api/data/types.json`` from the Kubernetes v1.32 API definitions.

A developer tool, not run in CI.  It reads two public sources per API package,
from local git mirrors of ``k8s.io/api``, ``k8s.io/apimachinery``, ``k8s.io/metrics``
and ``k8s.io/apiextensions-apiserver`` (branch ``release-1.32``):

* ``types.go``        the Go structs.  Their struct tags carry the JSON facts:
                      ``json:"name,omitempty"`` / ``json:",inline"``, the protobuf
                      number ``protobuf:"bytes,2,opt,name=spec"``, ``patchStrategy``,
                      ``patchMergeKey``; the comment markers right above a field
                      carry ``+listType``, ``+listMapKey``, ``+optional``, ``+required``.
* ``generated.proto`` the protobuf messages: the wire type of every field and
                      ``map<K, V>`` types.

Only facts are kept (names, numbers, types, flags); no comments or descriptions.
The output has one type per line so that regenerating gives readable diffs::

    {"release":"1.32","types":{
    "io.k8s.api.apps.v1.Deployment":{"gvk":["apps","v1","Deployment"],"fields":[...]},
    ...
    }}

A field is a JSON object holding only its non-default :class:`FieldDef` attributes
(``name``, ``number`` and ``type`` always).  Run it as::

    python tools/gen_schema.py [--api DIR] [--apimachinery DIR] [--metrics DIR]
                               [--apiextensions DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RELEASE = "release-1.32"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "skiff" / "api" / "data" / "types.json"
DEFAULT_API = Path("/work/.mirror/kubernetes+api/repo")
DEFAULT_APIMACHINERY = Path("/work/.mirror/kubernetes+apimachinery/repo")
DEFAULT_METRICS = Path("/work/.mirror/kubernetes+metrics/repo")
DEFAULT_APIEXTENSIONS = Path("/work/.mirror/kubernetes+apiextensions-apiserver/repo")

# Packages of k8s.io/api to include; each one's group name is read from register.go.
API_PACKAGES = [
    "core/v1", "apps/v1", "batch/v1", "networking/v1", "discovery/v1", "coordination/v1",
    "events/v1", "storage/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1", "rbac/v1",
    "scheduling/v1", "authorization/v1", "authentication/v1", "certificates/v1",
    "admissionregistration/v1", "node/v1",
]
# Packages of k8s.io/metrics (served by metrics-server in Kubernetes, built in here).
METRICS_PACKAGES = ["pkg/apis/metrics/v1beta1"]
# Packages of k8s.io/apiextensions-apiserver (CustomResourceDefinition), with their Go files.
APIEXTENSIONS_PACKAGES = ["pkg/apis/apiextensions/v1"]
APIEXTENSIONS_GO_FILES = ["types.go", "types_jsonschema.go"]
APIEXTENSIONS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"
META_DIR = "pkg/apis/meta/v1"
META_GO_FILES = ["types.go", "watch.go", "group_version.go"]

PROTO_SCALARS = {"string", "int32", "int64", "bool", "double", "float", "bytes"}
GO_SCALARS = {
    "string": "string", "bool": "bool", "int32": "int32", "int64": "int64", "int": "int64",
    "float64": "double", "float32": "float", "[]byte": "bytes",
}

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
# Types whose JSON form is not an object of their fields (see skiff.api.schema).
# Their protobuf fields are listed as the .proto files define them.
SPECIAL_TYPES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    f"{META}.Time": ("time", [
        {"name": "seconds", "number": 1, "type": "int64"},
        {"name": "nanos", "number": 2, "type": "int32"}]),
    f"{META}.MicroTime": ("microtime", [
        {"name": "seconds", "number": 1, "type": "int64"},
        {"name": "nanos", "number": 2, "type": "int32"}]),
    f"{META}.Duration": ("duration", [{"name": "duration", "number": 1, "type": "int64"}]),
    f"{META}.FieldsV1": ("fieldsv1", [{"name": "Raw", "number": 1, "type": "bytes"}]),
    "io.k8s.apimachinery.pkg.api.resource.Quantity": (
        "quantity", [{"name": "string", "number": 1, "type": "string"}]),
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ("intorstring", [
        {"name": "type", "number": 1, "type": "int64"},
        {"name": "intVal", "number": 2, "type": "int32"},
        {"name": "strVal", "number": 3, "type": "string"}]),
    "io.k8s.apimachinery.pkg.runtime.RawExtension": (
        "raw", [{"name": "raw", "number": 1, "type": "bytes"}]),
    # JSON schema values whose JSON form is a choice (a schema or a list, a schema or a
    # bool ...) or any JSON at all (default, enum, example): kept as raw JSON.
    f"{APIEXTENSIONS}.JSON": ("raw", [{"name": "raw", "number": 1, "type": "bytes"}]),
    f"{APIEXTENSIONS}.JSONSchemaPropsOrArray": ("raw", [{"name": "raw", "number": 1, "type": "bytes"}]),
    f"{APIEXTENSIONS}.JSONSchemaPropsOrBool": ("raw", [{"name": "raw", "number": 1, "type": "bytes"}]),
    f"{APIEXTENSIONS}.JSONSchemaPropsOrStringArray": (
        "raw", [{"name": "raw", "number": 1, "type": "bytes"}]),
}
# meta/v1 kinds that belong to the meta.k8s.io group; the other meta kinds (Status,
# DeleteOptions, APIGroupList ...) are served as core "v1" objects.
META_GROUP_KINDS = {"Table", "PartialObjectMetadata", "PartialObjectMetadataList"}


# --------------------------------------------------------------------------- sources

def git_show(repo: Path, path: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), "show", f"{RELEASE}:{path}"],
                         check=True, capture_output=True, text=True)
    return out.stdout


def openapi_prefix(go_package: str) -> str:
    """``k8s.io/api/apps/v1`` -> ``io.k8s.api.apps.v1`` (Kubernetes' OpenAPI naming)."""
    domain, _, rest = go_package.partition("/")
    return ".".join(reversed(domain.split("."))) + "." + rest.replace("/", ".")


# --------------------------------------------------------------------------- proto

@dataclass
class ProtoField:
    name: str
    number: int
    type: str  # scalar or full type name
    repeated: bool = False
    map_value: str | None = None


PROTO_FIELD = re.compile(
    r"^\s*(optional|repeated|required)?\s*(map<\s*(\S+)\s*,\s*(\S+)\s*>|\S+)\s+(\w+)\s*=\s*(\d+)\s*;")


def parse_proto(text: str) -> tuple[str, dict[str, dict[int, ProtoField]]]:
    """Messages of one generated.proto: {message: {number: ProtoField}}."""
    package = re.search(r"^package\s+([\w.]+);", text, re.M)
    assert package, "no package line"
    prefix = proto_to_openapi(package.group(1))
    messages: dict[str, dict[int, ProtoField]] = {}
    current: dict[int, ProtoField] | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("//"):
            continue
        m = re.match(r"^message\s+(\w+)\s*\{", line)
        if m:
            current = messages.setdefault(m.group(1), {})
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None:
            continue
        m = PROTO_FIELD.match(line)
        if not m:
            continue
        label, whole, key, value, name, number = m.groups()
        if key is not None:
            assert key == "string", f"map key {key}"
            vtype = resolve_proto_type(value, prefix)
            current[int(number)] = ProtoField(name, int(number), vtype, map_value=vtype)
        else:
            current[int(number)] = ProtoField(name, int(number), resolve_proto_type(whole, prefix),
                                              repeated=label == "repeated")
    return prefix, messages


def proto_to_openapi(proto_package: str) -> str:
    assert proto_package.startswith("k8s.io."), proto_package
    # protobuf package names cannot hold "-": k8s.io/apiextensions-apiserver is apiextensions_apiserver
    rest = proto_package[len("k8s.io."):].replace("apiextensions_apiserver", "apiextensions-apiserver")
    return "io.k8s." + rest


def resolve_proto_type(name: str, prefix: str) -> str:
    if name in PROTO_SCALARS:
        return name
    if name.startswith("."):
        package, _, short = name[1:].rpartition(".")
        return f"{proto_to_openapi(package)}.{short}"
    return f"{prefix}.{name}"


# --------------------------------------------------------------------------- go

@dataclass
class GoField:
    go_name: str
    go_type: str  # as written, e.g. "*int32", "[]Container", "metav1.ObjectMeta"
    tags: dict[str, str]
    markers: list[str]  # "+listType=map", "+optional" ...
    embedded: bool


@dataclass
class GoStruct:
    name: str
    fields: list[GoField] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)


TAG = re.compile(r'(\w+):"([^"]*)"')
STRUCT_START = re.compile(r"^type (\w+) struct \{\s*$")
EMPTY_STRUCT = re.compile(r"^type (\w+) struct\s*\{\s*\}\s*$")
NAMED_FIELD = re.compile(r"^\t(\w+)\s+([^\s`]+)\s*(`[^`]*`)?\s*(//.*)?$")
EMBEDDED_FIELD = re.compile(r"^\t(\*?[\w.]+)\s*(`[^`]*`)?\s*(//.*)?$")
BASIC_ALIAS = re.compile(r"^type (\w+) (string|int32|int64|bool|float64|\[\]byte)\s*$")
IMPORT = re.compile(r'^\s*(\w+\s+)?"([\w./-]+)"\s*$')


def parse_go(text: str) -> tuple[dict[str, GoStruct], dict[str, str], dict[str, str]]:
    """Structs, basic-type aliases (``type Protocol string``) and imports (alias -> path)."""
    structs: dict[str, GoStruct] = {}
    aliases: dict[str, str] = {}
    imports: dict[str, str] = {}
    comments: list[str] = []
    current: GoStruct | None = None
    in_import = in_block_comment = False
    for line in text.splitlines():
        stripped = line.strip()
        if in_block_comment:
            in_block_comment = "*/" not in stripped
            continue
        if stripped.startswith("/*"):
            in_block_comment = "*/" not in stripped
            continue
        if in_import:
            if stripped == ")":
                in_import = False
                continue
            m = IMPORT.match(line)
            if m:
                alias = (m.group(1) or "").strip() or m.group(2).rsplit("/", 1)[-1]
                imports[alias] = m.group(2)
            continue
        if stripped == "import (":
            in_import = True
            continue
        if stripped.startswith("//"):
            comments.append(stripped[2:].strip())
            continue
        if current is None:
            m = STRUCT_START.match(line)
            empty = EMPTY_STRUCT.match(line)
            if m:
                current = GoStruct(m.group(1), markers=markers_of(comments))
            elif empty:
                structs[empty.group(1)] = GoStruct(empty.group(1), markers=markers_of(comments))
            else:
                m = BASIC_ALIAS.match(line)
                if m:
                    aliases[m.group(1)] = GO_SCALARS[m.group(2)]
            comments = []
            continue
        if line.startswith("}"):
            structs[current.name] = current
            current = None
            comments = []
            continue
        if not stripped:
            comments = []
            continue
        m = NAMED_FIELD.match(line)
        if m:
            current.fields.append(GoField(m.group(1), m.group(2), parse_tags(m.group(3)),
                                          markers_of(comments), embedded=False))
        else:
            m = EMBEDDED_FIELD.match(line)
            if not m:
                raise ValueError(f"cannot parse struct line in {current.name}: {line!r}")
            go_type = m.group(1)
            current.fields.append(GoField(go_type.lstrip("*").rsplit(".", 1)[-1], go_type,
                                          parse_tags(m.group(2)), markers_of(comments),
                                          embedded=True))
        comments = []
    return structs, aliases, imports


def parse_tags(raw: str | None) -> dict[str, str]:
    return dict(TAG.findall(raw.strip("`"))) if raw else {}


def markers_of(comments: list[str]) -> list[str]:
    return [c for c in comments if c.startswith("+")]


def marker_values(markers: list[str], key: str) -> list[str]:
    out = []
    for m in markers:
        name, _, value = m[1:].partition("=")
        if name == key:
            out.append(value.strip())
    return out


# --------------------------------------------------------------------------- joining

@dataclass
class Package:
    prefix: str  # io.k8s.api.apps.v1
    group: str
    version: str
    structs: dict[str, GoStruct]
    aliases: dict[str, str]
    imports: dict[str, str]
    messages: dict[str, dict[int, ProtoField]]


def go_type_to_schema(go_type: str, pkg: Package) -> tuple[str, bool, str | None]:
    """(type, repeated, map_value) for a field that has no protobuf counterpart."""
    t = go_type.lstrip("*")
    if t in GO_SCALARS:
        return GO_SCALARS[t], False, None
    if t.startswith("[]"):
        inner, _, _ = go_type_to_schema(t[2:], pkg)
        return inner, True, None
    if t.startswith("map[string]"):
        inner, _, _ = go_type_to_schema(t[len("map[string]"):], pkg)
        return inner, False, inner
    if t == "interface{}":
        return "io.k8s.apimachinery.pkg.runtime.RawExtension", False, None
    if "." in t:
        alias, _, short = t.partition(".")
        return f"{openapi_prefix(pkg.imports[alias])}.{short}", False, None
    if t in pkg.aliases:
        return pkg.aliases[t], False, None
    return f"{pkg.prefix}.{t}", False, None


def build_type(struct: GoStruct, pkg: Package, problems: list[str]) -> dict[str, Any]:
    message = pkg.messages.get(struct.name)
    fields: list[dict[str, Any]] = []
    has_type_meta = False
    for gf in struct.fields:
        json_tag = gf.tags.get("json")
        if json_tag is None or json_tag == "-":
            continue
        json_name, *opts = json_tag.split(",")
        inline = "inline" in opts
        if gf.embedded and gf.go_name == "TypeMeta" and inline:
            has_type_meta = True
            fields.append({"name": "apiVersion", "number": 0, "type": "string", "omitempty": True})
            fields.append({"name": "kind", "number": 0, "type": "string", "omitempty": True})
            continue
        out: dict[str, Any] = {}
        proto_tag = gf.tags.get("protobuf")
        if proto_tag and message is not None:
            number = int(proto_tag.split(",")[1])
            pf = message.get(number)
            if pf is None:
                problems.append(f"{struct.name}.{gf.go_name}: no proto field {number}")
                continue
            out.update(name=json_name or pf.name, number=number, type=pf.type)
            if pf.repeated:
                out["repeated"] = True
            if pf.map_value:
                out["map_value"] = pf.map_value
        else:
            if proto_tag:
                problems.append(f"{struct.name}: protobuf tag but no message")
            stype, repeated, map_value = go_type_to_schema(gf.go_type, pkg)
            out.update(name=json_name or gf.go_name, number=0, type=stype)
            if repeated:
                out["repeated"] = True
            if map_value:
                out["map_value"] = map_value
        if not json_name and not inline:
            problems.append(f"{struct.name}.{gf.go_name}: empty json name without inline")
        if inline:
            out["inline"] = True
        omitempty = "omitempty" in opts
        if omitempty:
            out["omitempty"] = True
        if gf.go_type.startswith("*"):
            out["pointer"] = True
        optional = omitempty or "+optional" in gf.markers or "+k8s:optional" in gf.markers
        explicit = "+required" in gf.markers or "+k8s:required" in gf.markers
        if not inline and (explicit or not optional):
            out["required"] = True
        strategy = gf.tags.get("patchStrategy") or next(iter(marker_values(gf.markers, "patchStrategy")), None)
        merge_key = gf.tags.get("patchMergeKey") or next(iter(marker_values(gf.markers, "patchMergeKey")), None)
        if strategy:
            out["patch_strategy"] = strategy
        if merge_key:
            out["patch_merge_key"] = merge_key
        list_type = next(iter(marker_values(gf.markers, "listType")), None)
        if list_type:
            out["list_type"] = list_type
        keys = marker_values(gf.markers, "listMapKey")
        if keys:
            out["list_map_keys"] = keys
        fields.append(out)
    if message is not None:
        used = {f["number"] for f in fields}
        for number, pf in message.items():
            if number not in used:
                problems.append(f"{struct.name}: proto field {pf.name}={number} has no Go field")
    result: dict[str, Any] = {}
    if has_type_meta:
        kind = struct.name
        group = pkg.group
        if pkg.prefix == META:
            group = "meta.k8s.io" if kind in META_GROUP_KINDS else ""
        result["gvk"] = [group, pkg.version, kind]
    result["fields"] = fields
    return result


def list_wrapper(go_type: str, pkg: Package) -> dict[str, Any]:
    """A named slice (``type ExtraValue []string``) is a message {repeated items = 1}."""
    element, _, _ = go_type_to_schema(go_type[2:], pkg)
    return {"special": "list",
            "fields": [{"name": "items", "number": 1, "type": element, "repeated": True}]}


def load_package(go_texts: list[str], proto_text: str, go_package: str, group: str,
                 version: str) -> Package:
    structs: dict[str, GoStruct] = {}
    aliases: dict[str, str] = {}
    imports: dict[str, str] = {}
    for text in go_texts:
        s, a, i = parse_go(text)
        structs.update(s)
        aliases.update(a)
        imports.update(i)
    _, messages = parse_proto(proto_text)
    return Package(openapi_prefix(go_package), group, version, structs, aliases, imports, messages)


def generate(api: Path, apimachinery: Path, metrics: Path,
             apiextensions: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    types: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    packages: list[tuple[Package, list[str]]] = []
    sources = [(api, "k8s.io/api", d, ["types.go"]) for d in API_PACKAGES] + \
              [(metrics, "k8s.io/metrics", d, ["types.go"]) for d in METRICS_PACKAGES] + \
              [(apiextensions, "k8s.io/apiextensions-apiserver", d, APIEXTENSIONS_GO_FILES)
               for d in APIEXTENSIONS_PACKAGES]
    for repo, module, directory, go_files in sources:
        go_texts = [git_show(repo, f"{directory}/{f}") for f in go_files]
        register = git_show(repo, f"{directory}/register.go")
        group_m = re.search(r'^const GroupName = "([^"]*)"', register, re.M)
        assert group_m, f"no GroupName in {directory}/register.go"
        pkg = load_package(go_texts, git_show(repo, f"{directory}/generated.proto"),
                           f"{module}/{directory}", group_m.group(1), directory.split("/")[-1])
        packages.append((pkg, go_texts))
    meta_texts = [git_show(apimachinery, f"{META_DIR}/{f}") for f in META_GO_FILES]
    meta = load_package(meta_texts, git_show(apimachinery, f"{META_DIR}/generated.proto"),
                        f"k8s.io/apimachinery/{META_DIR}", "meta.k8s.io", "v1")
    packages.append((meta, meta_texts))

    for pkg, texts in packages:
        for struct in pkg.structs.values():
            name = f"{pkg.prefix}.{struct.name}"
            if name in SPECIAL_TYPES:
                continue
            types[name] = build_type(struct, pkg, problems)
        for text in texts:
            for m in re.finditer(r"^type (\w+) (\[\]\w+)\s*$", text, re.M):
                if m.group(1) in pkg.messages:
                    types[f"{pkg.prefix}.{m.group(1)}"] = list_wrapper(m.group(2), pkg)
    for name, (special, fields) in SPECIAL_TYPES.items():
        types[name] = {"special": special, "fields": fields}

    for name, t in types.items():
        for f in t["fields"]:
            ref = f["type"]
            if ref not in PROTO_SCALARS and ref not in types:
                problems.append(f"{name}.{f['name']}: unknown type {ref}")
    return types, problems


def render(types: dict[str, dict[str, Any]]) -> str:
    lines = [json.dumps(name) + ":" + json.dumps(types[name], separators=(",", ":"))
             for name in sorted(types)]
    return '{"release":"1.32","types":{\n' + ",\n".join(lines) + "\n}}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", type=Path, default=DEFAULT_API)
    parser.add_argument("--apimachinery", type=Path, default=DEFAULT_APIMACHINERY)
    parser.add_argument("--metrics", type=Path, default=DEFAULT_METRICS)
    parser.add_argument("--apiextensions", type=Path, default=DEFAULT_APIEXTENSIONS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    types, problems = generate(args.api, args.apimachinery, args.metrics, args.apiextensions)
    for p in problems:
        print("problem:", p, file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(types))
    print(f"wrote {len(types)} types to {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
