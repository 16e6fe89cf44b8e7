"""Every failure a request can meet, as a clear 4xx/5xx page or JSON error — never a
traceback. Bugs are logged with theirs and answered with a plain 500."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException

from pilot import cookies, sessions
from pilot.alertmanager_api import AlertmanagerUnavailable
from pilot.clickstream_apps import NOT_ENABLED, ClickstreamDisabled, ClickstreamUnavailable
from pilot.clickstream_destinations import InvalidDestination, ReplayBusy, ReplayUnavailable
from pilot.commander_client import CommanderRefused, CommanderUnavailable
from pilot.database import DatabaseUnavailable
from pilot.identity import CsrfFailed, NotAllowed, NotSignedIn
from pilot.live_events import EventsUnavailable, StreamsBusy
from pilot.responses import error_response, wants_json
from pilot.runtime import runtime

log = logging.getLogger(__name__)


class InvalidInput(Exception):
    """The request's data is malformed: 400 with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def register(app: Flask) -> None:
    @app.errorhandler(NotSignedIn)
    def not_signed_in(exc: NotSignedIn) -> Response:
        if wants_json():
            message = ("the bearer token is unknown, revoked or expired" if exc.bad_token
                       else "your session has expired; sign in again" if exc.expired
                       else "sign in, or send Authorization: Bearer <API token>")
            return error_response(401, message, {"WWW-Authenticate": 'Bearer realm="pilot"'})
        if request.method in ("GET", "HEAD"):
            query = {"next": request.full_path.rstrip("?")}
            if exc.expired:
                query["reason"] = "expired"
            answer = redirect(f"/login?{urlencode(query)}", 303)
        else:
            answer = error_response(
                401, "Your session has expired or you signed out, so nothing was done. "
                     "Sign in again, then repeat what you were doing.")
        if exc.expired:
            answer.delete_cookie(sessions.COOKIE, path="/",
                                 **cookies.flags(request, runtime().settings.cookie_secure))
        return answer

    @app.errorhandler(NotAllowed)
    def not_allowed(exc: NotAllowed) -> Response:
        return error_response(403, exc.message)

    @app.errorhandler(CsrfFailed)
    def csrf_failed(exc: CsrfFailed) -> Response:
        return error_response(400, "The form's security token (CSRF) is missing or does not "
                                   "match your session. Reload the page and try again.")

    @app.errorhandler(InvalidInput)
    def invalid(exc: InvalidInput) -> Response:
        return error_response(400, exc.message)

    @app.errorhandler(DatabaseUnavailable)
    def database_down(exc: DatabaseUnavailable) -> Response:
        log.warning("Postgres is unavailable", extra={"reason": str(exc)})
        return error_response(503, f"Pilot's database is unavailable: {exc}. Try again in a "
                                   "moment; /health says what is down.",
                              {"Retry-After": "5"}, title="Database unavailable")

    @app.errorhandler(ClickstreamDisabled)
    def clickstream_disabled(exc: ClickstreamDisabled) -> Response:
        return error_response(404, NOT_ENABLED, title="Clickstream not enabled")

    @app.errorhandler(ClickstreamUnavailable)
    def clickstream_down(exc: ClickstreamUnavailable) -> Response:
        reason = str(exc)
        log.warning("the clickstream database is unavailable", extra={"reason": reason})
        return error_response(503, f"{reason[:1].upper()}{reason[1:]}. Try again in a moment; "
                                   "/health says what is down.", {"Retry-After": "5"},
                              title="Clickstream unavailable")

    @app.errorhandler(InvalidDestination)
    def invalid_destination(exc: InvalidDestination) -> Response:
        return error_response(400, "; ".join(f"`{field}`: {problem}"
                                             for field, problem in exc.problems.items()))

    @app.errorhandler(ReplayUnavailable)
    def replay_unavailable(exc: ReplayUnavailable) -> Response:
        return error_response(503, str(exc), {"Retry-After": "5"}, title="Replay not possible")

    @app.errorhandler(ReplayBusy)
    def replay_busy(exc: ReplayBusy) -> Response:
        return error_response(409, "A replay of this destination's dead letters is under "
                                   "way already; see its counts once it has finished.")

    @app.errorhandler(EventsUnavailable)
    def events_unavailable(exc: EventsUnavailable) -> Response:
        log.warning("the recent events are unavailable", extra={"reason": str(exc)})
        return error_response(503, f"{exc}. Try again in a moment; /health says what is "
                                   "down.", {"Retry-After": "5"}, title="Events unavailable")

    @app.errorhandler(StreamsBusy)
    def streams_busy(exc: StreamsBusy) -> Response:
        return error_response(503, "This Pilot process follows as many live event streams "
                                   "as it may at once; close a debugger elsewhere or try "
                                   "again shortly.", {"Retry-After": "5"},
                              title="Too many live streams")

    @app.errorhandler(AlertmanagerUnavailable)
    def alertmanager_down(exc: AlertmanagerUnavailable) -> Response:
        return error_response(503, str(exc), {"Retry-After": "5"},
                              title="Alertmanager unavailable")

    @app.errorhandler(CommanderUnavailable)
    def commander_down(exc: CommanderUnavailable) -> Response:
        return error_response(503, str(exc), {"Retry-After": "5"},
                              title="Commander unavailable")

    @app.errorhandler(CommanderRefused)
    def commander_refused(exc: CommanderRefused) -> Response:
        return error_response(exc.status, f"Commander refused: {exc.message}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        custom = exc.description != type(exc).description
        message = (exc.description if custom and exc.description
                   else f"There is nothing at {request.path}." if code == 404
                   else exc.description or exc.name)
        return error_response(code, message, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, f"Internal error ({type(exc).__name__}); Pilot's log has "
                                   "the details.")
