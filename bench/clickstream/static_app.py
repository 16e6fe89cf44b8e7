"""The reference for the Event API's HTTP layer: the same server (granian, RSGI, the
same workers and event loop) answering every request with the Event API's success body
after reading the request's body, and doing nothing else."""

BODY = b'{"success": true}'
HEADERS = [("content-type", "application/json")]


async def app(scope, proto) -> None:
    await proto()
    proto.response_bytes(200, HEADERS, BODY)
