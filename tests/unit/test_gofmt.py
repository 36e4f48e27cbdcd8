"""Go's textual forms of JSON values (skiff.api.gofmt): %q, %v, %#v and encoding/json."""

from __future__ import annotations

import math
from typing import Any

import pytest

from skiff.api.gofmt import field_value_text, go_float_text, go_json, go_quote, go_syntax, go_text


@pytest.mark.parametrize("text, quoted", [
    ("plain", '"plain"'),
    ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("soft\u00adhyphen", '"soft\\u00adhyphen"'),
    ("\U0010ffff", '"\\U0010ffff"'),
    ("héllo ☃ 😀", '"héllo ☃ 😀"'),
])
def test_go_quote_escapes_like_percent_q(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize("value, text", [
    (1.5, "1.5"),
    (100.0, "100"),
    (123456.0, "123456"),
    (999999.0, "999999"),
    (1e6, "1e+06"),
    (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"),
    (0.00001, "1e-05"),
    (1e-100, "1e-100"),
    (1e100, "1e+100"),
    (0.1 + 0.2, "0.30000000000000004"),
    (0.0, "0"),
    (-0.0, "-0"),
    (-2.25, "-2.25"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
    (math.nan, "NaN"),
])
def test_go_float_text_is_percent_v(value: float, text: str) -> None:
    assert go_float_text(value) == text


@pytest.mark.parametrize("value, text", [
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1.5e300, "1.5e+300"),
    (0.000001, "0.000001"),
    (1e-7, "1e-7"),
    (-1.25e-10, "-1.25e-10"),
    (1e-100, "1e-100"),
    (-0.0, "-0"),
    (2.0, "2"),
])
def test_go_json_floats_switch_to_exponents_outside_1e_minus_6_to_1e21(value: float, text: str) -> None:
    assert go_json(value) == text


def test_go_json_refuses_non_finite_floats() -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            go_json(value)


def test_go_json_is_compact_with_sorted_keys() -> None:
    assert go_json({"b": [1, 2.5, None], "a": {"y": False, "x": True}}) == \
        '{"a":{"x":true,"y":false},"b":[1,2.5,null]}'
    assert go_json([]) == "[]"
    assert go_json({}) == "{}"


def test_go_json_escapes_strings_like_encoding_json() -> None:
    assert go_json('q"b\\') == '"q\\"b\\\\"'
    assert go_json("\b\f\n\r\t") == '"\\b\\f\\n\\r\\t"'
    assert go_json("\x00\x1f\x7f") == '"\\u0000\\u001f\x7f"'
    assert go_json("<a&b>") == '"\\u003ca\\u0026b\\u003e"'
    assert go_json("\u2028\u2029é") == '"\\u2028\\u2029é"'
    assert go_json({"<k>": 1}) == '{"\\u003ck\\u003e":1}'


@pytest.mark.parametrize("value, text", [
    (None, "<nil>"),
    (True, "true"),
    (7, "7"),
    (1e6, "1e+06"),
    ("as is", "as is"),
    ([1, "a", None], "[1 a <nil>]"),
    ({"b": [1.5], "a": {"c": False}}, "map[a:map[c:false] b:[1.5]]"),
])
def test_go_text_is_fmt_print(value: Any, text: str) -> None:
    assert go_text(value) == text


@pytest.mark.parametrize("value, text", [
    (None, "interface {}(nil)"),
    (False, "false"),
    (-3, "-3"),
    (2.5, "2.5"),
    ("a\tb", '"a\\tb"'),
    ([1, "x", None], '[]interface {}{1, "x", interface {}(nil)}'),
    ({"b": 1, "a": [True]}, 'map[string]interface {}{"a":[]interface {}{true}, "b":1}'),
])
def test_go_syntax_is_percent_sharp_v(value: Any, text: str) -> None:
    assert go_syntax(value) == text


@pytest.mark.parametrize("value, text", [
    (None, '"null"'),
    ("x", '"x"'),
    (3, "3"),
    (1e6, "1e+06"),
    (True, "true"),
    ({"a": 1}, 'map[string]interface {}{"a":1}'),
    ([], "[]interface {}{}"),
])
def test_field_value_text_is_how_field_errors_show_bad_values(value: Any, text: str) -> None:
    assert field_value_text(value) == text
