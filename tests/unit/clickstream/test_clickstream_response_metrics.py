"""Every answer of the Event API is counted by status code, a 500 from a bug included:
the server-errors alert is computed from this counter."""

from __future__ import annotations

from prometheus_client import REGISTRY

from clickstream.event_api import EventApi
from tests.unit.clickstream.event_api_client import EventApiClient


class BrokenKeys:
    async def find(self, key: str) -> None:
        raise RuntimeError("a bug, not an outage")


class Ingest:
    keys = BrokenKeys()


def answered(code: int) -> float:
    return REGISTRY.get_sample_value("clickstream_http_responses_total",
                                     {"code": str(code)}) or 0.0


def test_answers_are_counted_by_code_an_unhandled_error_as_500() -> None:
    app = EventApiClient(EventApi(ingest=Ingest()))  # type: ignore[arg-type]
    before = {code: answered(code) for code in (200, 404, 500)}
    assert app.get("/health").status_code == 200
    assert app.get("/no-such-path").status_code == 404
    answer = app.get("/v1/projects/wk_x/settings")
    assert answer.status_code == 500
    assert answer.get_json()["code"] == "internal_error"  # our error body, not a traceback
    assert {code: answered(code) - before[code] for code in before} == {200: 1, 404: 1,
                                                                        500: 1}
