"""An example DAG that ships with the platform: a few tasks spread over the Celery
workers, each saying which worker ran it. Triggered by hand (no schedule), so it costs
nothing until someone runs it from the UI or with `airflow dags trigger heliostat_example`."""

import datetime
import socket

from airflow.sdk import dag, task


@dag(dag_id="heliostat_example", schedule=None, start_date=datetime.datetime(2024, 1, 1),
     catchup=False, is_paused_upon_creation=False, tags=["example", "heliostat"],
     doc_md=__doc__)
def heliostat_example():
    @task
    def shards() -> list[int]:
        return list(range(4))

    @task
    def work(shard: int) -> str:
        worker = socket.gethostname()
        print(f"shard {shard} ran on {worker}")
        return worker

    @task
    def summary(workers: list[str]) -> dict[str, int]:
        counts = {w: workers.count(w) for w in sorted(set(workers))}
        print(f"tasks per worker: {counts}")
        return counts

    summary(work.expand(shard=shards()))


heliostat_example()
