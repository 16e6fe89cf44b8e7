"""The live event debugger of a clickstream app: its latest events, and those arriving
while the page is open, pushed by server-sent events from the recent-events stream the
clickstream router keeps in Redis; each one opens to its JSON."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from pilot.errors import InvalidInput
from pilot.identity import signed_in
from pilot.live_events import EventsUnavailable, stream_id
from pilot.runtime import runtime

pages = Blueprint("events", __name__)
#: Shown when the page opens; the page keeps at most twice as many.
PAGE_EVENTS = 50


@pages.get("/apps/<int:app_id>/events")
@signed_in()
def debugger(app_id: int) -> Response:
    pilot = runtime()
    found = pilot.clickstream.app(app_id)
    problem, latest = None, []
    try:
        latest = pilot.live_events.latest(app_id, PAGE_EVENTS)
    except EventsUnavailable as exc:
        problem = f"{exc}. The page keeps trying and shows events once it can."
    # The stream starts after the newest event shown, so none is missed in between
    # (none shown: after all there are; not known: from when it connects).
    after = latest[0].id if latest else "" if problem else "0-0"
    return Response(render_template("events.html", app=found, events=latest, after=after,
                                    problem=problem, keep=2 * PAGE_EVENTS),
                    503 if problem else 200, mimetype="text/html")


@pages.get("/apps/<int:app_id>/events/stream")
@signed_in()
def stream(app_id: int) -> Response:
    """text/event-stream: each event as `id: <stream id>` and `data: <JSON>`, from after
    Last-Event-ID (the browser's reconnect), else the `after` parameter, else from now."""
    pilot = runtime()
    pilot.clickstream.app(app_id)  # 404 for an unknown app
    given = request.headers.get("Last-Event-ID") or request.args.get("after") or None
    after = stream_id(given) if given is not None else None
    if given is not None and after is None:
        raise InvalidInput("Last-Event-ID (or `after`) must be a stream id such as "
                           "1700000000000-0")
    body, release = pilot.live_events.stream(app_id, after)
    response = Response(body, 200, mimetype="text/event-stream")
    response.call_on_close(release)
    # Sent as it comes: not buffered by the gateway (nginx), not transformed, not cached.
    response.headers["X-Accel-Buffering"] = "no"
    response.headers["Cache-Control"] = "no-store, no-transform"
    return response
