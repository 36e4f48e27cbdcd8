"""JSONPath as client-go evaluates it, and CRD printer-column cells as kube-apiserver builds them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.jsonpath import JsonPath, JsonPathError, column_value, compile_path, go_float_text, go_json

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)

CRONTAB: dict[str, Any] = {
    "apiVersion": "stable.example.com/v1", "kind": "CronTab",
    "metadata": {"name": "nightly", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z",
                 "labels": {"app": "backup", "app.kubernetes.io/name": "cron"}},
    "spec": {"cronSpec": "0 3 * * *", "image": "backup:1.2", "replicas": 3, "ratio": 0.5,
             "suspend": False, "big": 1e6, "nothing": None,
             "containers": [{"name": "main", "port": 80}, {"name": "sidecar", "port": 9090},
                            {"name": "init", "ready": True}]},
    "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                              {"type": "Synced", "status": "False"}]},
}


def find(expr: str, obj: Any = None) -> list[Any]:
    return compile_path(expr).find(CRONTAB if obj is None else obj)


# --- paths ----------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    (".spec.replicas", [3]),
    (".metadata.labels.app", ["backup"]),
    ("{.spec.replicas}", [3]),
    ("$.spec.image", ["backup:1.2"]),
    (".spec['image']", ["backup:1.2"]),
    ('.spec["image"]', ["backup:1.2"]),
    (r".metadata.labels.app\.kubernetes\.io/name", ["cron"]),
    (".spec.containers[0].name", ["main"]),
    (".spec.containers[-1].name", ["init"]),
    (".spec.containers[0:2].name", ["main", "sidecar"]),
    (".spec.containers[1:].name", ["sidecar", "init"]),
    (".spec.containers[:-1].name", ["main", "sidecar"]),
    (".spec.containers[::2].name", ["main", "init"]),
    (".spec.containers[*].name", ["main", "sidecar", "init"]),
    (".spec.containers[0,2].name", ["main", "init"]),
    (".spec.containers[2:2].name", []),
    (".metadata.labels.*", ["backup", "cron"]),
    (".spec.containers[0].*", ["main", 80]),
    ("..type", ["Ready", "Synced"]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".status.conditions[?(@.type!='Ready')].type", ["Synced"]),
    (".spec.containers[?(@.port>100)].name", ["sidecar"]),
    (".spec.containers[?(@.port<=80)].name", ["main"]),
    (".spec.containers[?(@.ready==true)].name", ["init"]),
    (".spec.containers[?(@.ready)].name", ["init"]),
    (".status.conditions[?(@.lastTransitionTime)].type", ["Ready"]),
    (".spec.nothing", [None]),
    (".spec.missing", []),
    (".spec.replicas.deeper", []),
    (".nope[0]", []),
])
def test_find(expr: str, expected: list[Any]) -> None:
    assert find(expr) == expected


def test_quoted_keys_do_not_protect_dots() -> None:
    # client-go reads ['a.b'] as .a.b (kubernetes/kubectl#1535); escaping the dots works.
    assert find(".metadata.labels['app.kubernetes.io/name']") == []
    assert find(".metadata.labels['app\\.kubernetes\\.io/name']") == ["cron"]
    assert find(".a['b.c']", {"a": {"b": {"c": 1}, "b.c": 2}}) == [1]


def test_templates_and_literals() -> None:
    path = compile_path("{.metadata.name}/{.spec.replicas}{'\\n'}")
    assert path.find_results(CRONTAB) == [["nightly"], ["/"], [3], ["\n"]]
    assert path.find(CRONTAB) == ["nightly", "/", 3, "\n"]
    assert compile_path("{@}").find({"a": 1}) == [{"a": 1}]
    assert compile_path("{[?(@<5)]}").find([2, 6, 3, 7]) == [2, 3]
    assert compile_path("{..}").find([1, 2, 3]) == [[1, 2, 3]]


@pytest.mark.parametrize("expr, message", [
    (".spec.containers[5].name", "array index out of bounds: index 5, length 3"),
    (".spec.containers[1:9]", "array index out of bounds: index 8, length 3"),
    (".spec.containers[2:1]", "starting index 2 is greater than ending index 1"),
    (".spec.containers[::0]", "step must be > 0"),
    (".spec[0]", "map[string]interface {} is not array or slice"),
    (".spec.containers[?(@.port>1.5)].name", "incompatible types for comparison"),
    (".spec.containers[?(@.port=='80')].name", "incompatible types for comparison"),
    (".spec.containers[?(@.ready<true)].name", "invalid type for comparison"),
    (".spec.containers[?(@.port<>1)].name", "unrecognized filter operator <>"),
    (".spec.containers[?(@.*==1)].name", "can only compare one element at a time"),
    (".spec.image[?(@.x)]", "backup:1.2 is not array or slice and cannot be filtered"),
    ("{range .spec.containers[*]}{.name}{end}", "range is not supported"),
])
def test_evaluation_errors(expr: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=message.replace("[", r"\[").replace("{", r"\{")):
        find(expr)


@pytest.mark.parametrize("expr, message", [
    ("{.spec", "unclosed action"),
    (".spec.containers[0", "unterminated array"),
    (".spec.containers[?(@.name=='x'", "unterminated filter"),
    (".spec.containers[?(@.name=='x')", "unclosed array expect ]"),
    (".spec.containers[x]", "invalid array index x"),
    (".spec.containers[-:]", "array index - is not a number"),
    ("{........}", "invalid multiple recursive descent"),
    ("..*", "unrecognized character in action: U+002A '*'"),
    ("{+1.2.3}", "cannot parse number +1.2.3"),
    ("{'abc}", "unterminated quoted string"),
    ("{'a\\qb'}", "unquote string 'a\\\\qb' error invalid syntax"),
])
def test_syntax_errors(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_path(expr)
    assert str(caught.value) == message.replace("\\\\", "\\")
    assert not isinstance(caught.value, JsonPathError)


def test_compiled_path_is_reusable() -> None:
    path = compile_path(".spec.containers[*].name")
    assert isinstance(path, JsonPath) and path.expression == ".spec.containers[*].name"
    assert path.find(CRONTAB) == path.find(CRONTAB) == ["main", "sidecar", "init"]
    assert path.find({"spec": {"containers": []}}) == []
    assert path.find(None) == []


# --- table cells ------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, column_type, cell", [
    (".spec.cronSpec", "string", "0 3 * * *"),
    (".spec.replicas", "string", "3"),
    (".spec.ratio", "string", "0.5"),
    (".spec.big", "string", "1e+06"),
    (".spec.suspend", "string", "false"),
    (".spec.nothing", "string", "<no value>"),
    (".spec.containers[0]", "string", '{"name":"main","port":80}'),
    (".spec.containers[*].name", "string", "main"),           # several matches: the first one
    (".spec.missing", "string", None),
    (".spec.containers[7].name", "string", None),             # an evaluation error: empty cell
    (".spec.replicas", "integer", 3),
    (".spec.ratio", "integer", 0),
    (".spec.image", "integer", None),
    (".spec.suspend", "integer", None),
    (".spec.replicas", "number", 3.0),
    (".spec.ratio", "number", 0.5),
    (".spec.suspend", "boolean", False),
    (".spec.replicas", "boolean", None),
    (".spec.nothing", "integer", None),
    (".metadata.creationTimestamp", "date", "5m"),
    (".status.conditions[0].lastTransitionTime", "date", "60m"),
    (".spec.image", "date", "<invalid>"),
    (".spec.replicas", "date", None),
    (".spec.replicas", "enum", None),
])
def test_column_value(expr: str, column_type: str, cell: Any) -> None:
    assert column_value(expr, CRONTAB, column_type, now=NOW) == cell
    if isinstance(cell, (int, float)):
        assert type(column_value(expr, CRONTAB, column_type, now=NOW)) is type(cell)


def test_column_value_defaults_to_string_and_takes_compiled_paths() -> None:
    assert column_value(".spec.replicas", CRONTAB) == "3"
    assert column_value(compile_path(".spec.image"), CRONTAB) == "backup:1.2"
    assert column_value(".metadata.labels['app.kubernetes.io/name']", CRONTAB) is None
    with pytest.raises(ValueError):
        column_value(".spec[", CRONTAB)


def test_date_cells_for_unset_times() -> None:
    assert column_value(".t", {"t": ""}, "date", now=NOW) == "<unknown>"
    assert column_value(".t", {"t": "2024-01-01"}, "date", now=NOW) == "<invalid>"
    assert column_value(".t", {"t": "2023-12-30T01:00:00+00:00"}, "date", now=NOW) == "2d"


# --- Go's printing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text, json_text", [
    (1.5, "1.5", "1.5"),
    (100.0, "100", "100"),
    (123456.0, "123456", "123456"),
    (1234567.0, "1.234567e+06", "1234567"),
    (0.0001, "0.0001", "0.0001"),
    (0.00001, "1e-05", "0.00001"),
    (1e-7, "1e-07", "1e-7"),
    (1e21, "1e+21", "1e+21"),
    (-2.25, "-2.25", "-2.25"),
    (0.0, "0", "0"),
])
def test_go_float_formats(value: float, text: str, json_text: str) -> None:
    assert go_float_text(value) == text
    assert go_json(value) == json_text


def test_go_json_sorts_keys_and_escapes_html() -> None:
    assert go_json({"b": [1, 2.0, "<a&b>"], "a": None, "c": True}) == \
        '{"a":null,"b":[1,2,"\\u003ca\\u0026b\\u003e"],"c":true}'
    assert go_json("tab\tquote\"\x01") == '"tab\\tquote\\"\\u0001"'
