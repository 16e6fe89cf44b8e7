"""Pilot's schema migrations: `NNNN_description.sql`, applied in order by pilot.migrate."""
