"""HTTP to the platform's own services (Commander, Prometheus, Alertmanager, Airflow):
a requests session per thread, never through the environment's proxy, and a short
reason for a failed call that a page can show."""

from __future__ import annotations

import threading

import requests


class SessionPerThread:
    """requests.Session is not documented thread-safe: one per gunicorn thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # These services are inside the platform: a proxy of the environment between
            # Pilot and them would be wrong.
            session.trust_env = False
        return session


def reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host not found"
    return type(exc).__name__
