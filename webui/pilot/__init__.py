"""Pilot, heliostat's web console: server-rendered pages over a JSON API (`/api/v1`).

It asks Commander to act and keeps its own state (accounts, sessions, API tokens, login
attempts) in its Postgres database; it never talks to the orchestrator itself.
Run with `gunicorn -c python:pilot.gunicorn_conf "pilot.app:create_app()"`.
"""
