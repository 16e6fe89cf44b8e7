"""Reading a submitted form: each field checked, problems collected by field name so the
page can show them next to the field it re-renders (400)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from flask import request

from pilot.text import control_characters


class Form:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        #: What was sent, to fill the form in again: text, or a list for `many`.
        self.values: dict[str, Any] = {}

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self, name: str, max_length: int, required: bool = True,
             check: Callable[[str], str | None] | None = None, strip: bool = True) -> str:
        raw = request.form.get(name, "")
        value = raw.strip() if strip else raw
        self.values[name] = value
        if not value:
            if required:
                self.errors[name] = "required"
            return value
        if len(value) > max_length:
            self.errors[name] = f"at most {max_length} characters"
        elif control_characters(value):
            self.errors[name] = "no control characters (such as NUL or line breaks)"
        elif check is not None and (problem := check(value)) is not None:
            self.errors[name] = problem
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = request.form.get(name, default)
        self.values[name] = value
        if value not in choices:
            self.errors[name] = f"one of: {', '.join(choices)}"
            return default
        return value

    def whole_number(self, name: str, low: int, high: int) -> int | None:
        """An optional whole number from `low` to `high`; None when left empty."""
        raw = request.form.get(name, "").strip()
        self.values[name] = raw
        if not raw:
            return None
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            self.errors[name] = f"a whole number from {low} to {high}"
            return None
        return int(raw)

    def decimal(self, name: str, low: float, high: float) -> float | None:
        """An optional number (a point for decimals) from `low` to `high`; None when empty."""
        raw = request.form.get(name, "").strip()
        self.values[name] = raw
        if not raw:
            return None
        try:
            value = float(raw) if raw.isascii() else math.nan
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # NaN too
            self.errors[name] = f"a number from {low:g} to {high:g}"
            return None
        return int(value) if value.is_integer() else value

    def flag(self, name: str) -> bool:
        """A checkbox: ticked or not."""
        ticked = request.form.get(name) is not None
        self.values[name] = "on" if ticked else ""
        return ticked

    def many(self, name: str, choices: Sequence[str]) -> list[str]:
        """The ticked ones of a group of checkboxes, in the order of `choices`."""
        ticked = request.form.getlist(name)
        self.values[name] = ticked
        unknown = [value for value in ticked if value not in choices]
        if unknown:
            self.errors[name] = f"only these: {', '.join(choices)}"
        return [choice for choice in choices if choice in ticked]

    def names(self, name: str, max_items: int, max_length: int) -> list[str]:
        """A comma-separated list of names (each stripped; empty ones dropped)."""
        raw = request.form.get(name, "")
        self.values[name] = raw.strip()
        found = [part.strip() for part in raw.split(",") if part.strip()]
        if len(found) > max_items:
            self.errors[name] = f"at most {max_items} names"
        elif any(len(part) > max_length for part in found):
            self.errors[name] = f"each name at most {max_length} characters"
        elif any(control_characters(part) for part in found):
            self.errors[name] = "no control characters (such as NUL or line breaks)"
        return found

    def error(self, name: str, message: str) -> None:
        self.errors[name] = message
