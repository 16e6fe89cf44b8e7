"""Errors a user can cause, each pointing at a file, a line and a key path.

They are printed as `file:line: key.path: message`, one per line, and make the CLI
exit with status 2. A traceback means a bug in heliostat, never bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidInput(Exception):
    """One or more problems with what the user gave us."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def single(cls, file: str, message: str, line: int | None = None,
               path: str = "") -> InvalidInput:
        return cls([Problem(file, line, path, message)])
