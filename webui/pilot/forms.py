"""Reading a submitted form: each field checked, problems collected by field name so the
page can show them next to the field it re-renders (400)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import request

from pilot.text import control_characters


class Form:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.values: dict[str, str] = {}

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

    def error(self, name: str, message: str) -> None:
        self.errors[name] = message
