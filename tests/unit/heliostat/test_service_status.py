"""`status` rows: ready/desired per service from the desired and the live objects."""

from types import SimpleNamespace

from heliostat.driver import DesiredObject, LiveObject
from heliostat.service_status import service_rows


def container(started: str = "2026-01-01T00:00:00.123456789Z") -> SimpleNamespace:
    return SimpleNamespace(attrs={"Image": "sha256:" + "ab" * 32, "State": {"StartedAt": started}})


def live(key: str, service: str, health: str, revision: int = 1) -> LiveObject:
    return LiveObject(key, service, "h", revision, health, 1, {"image": f"{service}:1"})


def test_rows_count_ready_replicas_and_name_the_worst_health():
    desired = [DesiredObject(f"api-{i}", "api", {}) for i in (1, 2)] + [
        DesiredObject("db-0", "db", {}), DesiredObject("web-1", "web", {})]
    observed = {"api-1": live("api-1", "api", "healthy"),
                "api-2": live("api-2", "api", "starting", revision=2),
                "api-1+next": live("api-1", "api", "starting", revision=2),
                "db-0": live("db-0", "db", "healthy"),
                "old-1": live("old-1", "old", "unhealthy")}
    rows = {r["service"]: r for r in service_rows(desired, {k: container() for k in observed},
                                                  observed)}
    assert (rows["api"]["ready"], rows["api"]["desired"], rows["api"]["health"]) == (1, 2,
                                                                                  "starting")
    assert rows["api"]["revisions"] == [1, 2]  # a swap's `+next` container is not counted
    assert rows["db"]["health"] == "healthy" and rows["db"]["image"] == "db:1"
    assert (rows["web"]["ready"], rows["web"]["health"]) == (0, "missing")
    assert (rows["old"]["desired"], rows["old"]["health"]) == (0, "unhealthy")
    assert rows["db"]["image_id"].startswith("sha256:") and rows["db"]["age_seconds"] > 0
