"""A property-based run (schemathesis) of every operation in /openapi.json against the
app (real Postgres, the real Commander of conftest.py): valid and invalid requests
alike get an answer the spec documents, and never a server error."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pilot_testing import page_csrf
from schemathesis import openapi
from schemathesis.generation import GenerationMode

ANY_ROUTE = {404, 405, 413}  # what any path can answer, documented or not


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str],
         seen: Counter[int]) -> None:
    documented = {int(code) for code in operation.definition.raw["responses"]} | ANY_ROUTE

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500 or response.status_code == 503, (
            f"{where}: {response.text[:300]}")
        assert response.status_code in documented, f"{where} (not in the spec)"
        if response.headers.get("Content-Type", "").startswith("application/json"):
            response.json()

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE
        assert not operation.path_parameters and not operation.body


def test_schemathesis_finds_no_server_error(app, admin):
    made = admin.post("/api/v1/tokens", json={"name": "fuzz", "role": "admin"},
                      headers={"X-CSRF-Token": page_csrf(admin)})
    token = made.get_json()["token"]
    schema = openapi.from_wsgi("/openapi.json", app)
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, {"Authorization": f"Bearer {token}"}, seen)
    # 403: a token makes no token (and the fuzz asks with one); nothing here creates.
    assert seen[200] and seen[400] and seen[403] and seen[404], seen
    assert seen[503] == 0, seen  # Commander and Postgres were up throughout
