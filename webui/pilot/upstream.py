"""HTTP to the platform's own services (Commander, Prometheus, Alertmanager, Airflow):
a requests session per thread, never through the environment's proxy, a short reason
for a failed call that a page can show, and what each client of them shares."""

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


class PlatformService:
    """A client of one of the platform's services, at `url`; None: its module is not
    enabled."""

    def __init__(self, url: str | None, timeout: float) -> None:
        self.url = url.rstrip("/") if url else None
        self.timeout = timeout
        self._sessions = SessionPerThread()

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def probe(self, path: str, failing: str) -> str | None:
        """None when GET `path` answers 200 within 1.5 s, else why not (`failing`
        names the state: "unhealthy", "not ready")."""
        try:
            answer = self._sessions.get().get(f"{self.url}{path}", timeout=1.5)
        except requests.RequestException as exc:
            return f"unreachable at {self.url}: {reason(exc)}"
        if answer.status_code != 200:
            return f"{failing} (HTTP {answer.status_code} from {self.url}{path})"
        return None
