"""A property-based run (schemathesis) of every operation in /openapi.json against the
app over a real ledger: valid and invalid requests alike get an answer the spec
documents, and never a server error."""

from __future__ import annotations

from collections import Counter
from typing import Any

from commander_testing import AUTH, HOOK
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import openapi
from schemathesis.generation import GenerationMode

MAPPED = "auto_update: true\nrepositories: [{repository: gateway, services: [gateway]}]\n"
ANY_ROUTE = {404, 405, 413}  # what any path can answer, documented or not


def fuzz(operation: Any, mode: GenerationMode, seen: Counter[int]) -> None:
    documented = {int(code) for code in operation.definition.raw["responses"]} | ANY_ROUTE
    headers = HOOK if operation.path == "/webhooks/registry" else AUTH

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, f"{where}: {response.text[:300]}"
        assert response.status_code in documented, f"{where} (not in the spec)"
        if response.headers.get("Content-Type", "").startswith("application/json"):
            response.json()

    try:
        check()
    except Unsatisfiable:
        # Nothing to make invalid: no parameters and no body (/health, GET /api/v1/status).
        assert mode is GenerationMode.NEGATIVE
        assert not operation.path_parameters and not operation.body


def test_schemathesis_finds_no_server_error(app, install):
    install(MAPPED)
    install(MAPPED, "upgrade")
    schema = openapi.from_wsgi("/openapi.json", app)
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode, seen)
    assert seen[200] and seen[202] and seen[400] and seen[401] and seen[404], seen
