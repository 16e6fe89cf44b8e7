"""Loads the clickstream's warehouse destinations whose settings say `load: batch` (set in
Pilot or with `clickstream admin destination`): each run loads the events the router wrote
to each such destination during the run's data interval, with the warehouse's own SQL, so
that a window loaded again loads nothing twice. A run triggered with `start` and `end`
(ISO 8601) in its conf loads that window instead: to load one again, or one from before
the DAG was on. The schedule is `modules.airflow.warehouse_batches.schedule` in
platform.yaml. Defined only on a platform that runs the clickstream."""

import datetime
import os

from airflow.sdk import dag, get_current_context, task

#: The clickstream's settings reach the workers under this prefix (Airflow's own
#: POSTGRES_* variables are its database's).
PREFIX = "CLICKSTREAM_BATCH_"


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    context = get_current_context()
    conf = context["dag_run"].conf or {}
    if "start" in conf or "end" in conf:
        try:
            start, end = (datetime.datetime.fromisoformat(conf[k]) for k in ("start", "end"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("conf needs both `start` and `end` as ISO 8601 times, e.g. "
                             '{"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}'
                             f": {exc}") from None
    else:
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None or end <= start:
            raise ValueError("this run has no data interval (a manual run): trigger it with "
                             "`start` and `end` in its conf")
    # A time without a zone is UTC, as Airflow's are.
    return tuple(t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)
                 for t in (start, end))


if os.environ.get(PREFIX + "KAFKA_BOOTSTRAP"):

    @dag(dag_id="heliostat_warehouse_batches",
         schedule=os.environ.get("HELIOSTAT_WAREHOUSE_BATCH_SCHEDULE") or "@hourly",
         start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
         catchup=False, max_active_runs=1, is_paused_upon_creation=False,
         default_args={"retries": 3, "retry_delay": datetime.timedelta(minutes=1)},
         tags=["clickstream", "warehouse", "heliostat"], doc_md=__doc__)
    def heliostat_warehouse_batches():
        @task
        def batch_destinations() -> list[int]:
            from clickstream.batch_load import batch_destinations, settings_from_env

            found = batch_destinations(settings_from_env(PREFIX))
            print(f"warehouse destinations loaded in batches: "
                  f"{', '.join(f'{d.id} ({d.name})' for d in found) or 'none'}")
            return [d.id for d in found]

        @task
        def load(destination_id: int) -> dict:
            from clickstream.batch_load import load_window, settings_from_env

            start, end = _window()
            result = load_window(settings_from_env(PREFIX), destination_id, start, end)
            print(f"destination {destination_id}: {result.read} events in "
                  f"[{start.isoformat()}, {end.isoformat()}), "
                  f"{result.refused} refused (to dead letters)")
            return {"destination": destination_id, "start": start.isoformat(),
                    "end": end.isoformat(), "events": result.read, "refused": result.refused}

        load.expand(destination_id=batch_destinations())

    heliostat_warehouse_batches()
