"""Request and event size limits of the Event API (design.md, Clickstream)."""

EVENT_BYTES = 32 * 1024
BATCH_BYTES = 500 * 1024
BATCH_EVENTS = 2500
