"""The published OpenAPI document and the served routes cannot drift apart: every route and
method the API serves is documented, and every documented operation is served."""

from __future__ import annotations

import re
from types import SimpleNamespace

from davdrive.api.app import PREFIX, make_api_app
from davdrive.api.meta import OPENAPI


def _served() -> set[tuple[str, str]]:
    api = make_api_app(SimpleNamespace(config=SimpleNamespace(longpoll_slots=4)))
    out = set()
    for rule in api.url_map.iter_rules():
        if rule.endpoint == "static" or not rule.rule.startswith(PREFIX):
            continue
        methods = set(rule.methods or ())
        if getattr(rule, "provide_automatic_options", True):
            methods.discard("OPTIONS")  # Flask answers these itself
        if "GET" in methods:
            methods.discard("HEAD")
        path = re.sub(r"<(?:[a-z]+:)?[A-Za-z_]+>", "{}", rule.rule)
        out |= {(path, m.lower()) for m in methods}
    return out


def _documented() -> set[tuple[str, str]]:
    return {
        (re.sub(r"\{[^}]+\}", "{}", path), method)
        for path, ops in OPENAPI["paths"].items()
        for method in ops
    }


def test_every_served_route_is_documented_and_every_documented_one_served():
    served, documented = _served(), _documented()
    assert served - documented == set(), "served but missing from /api/v1/openapi.json"
    assert documented - served == set(), "documented but not served"
    assert ("/api/v1/uploads/{}", "patch") in served  # tus is covered too


def test_every_operation_documents_its_responses():
    for path, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (path, method)
            assert op.get("responses"), (path, method)
