"""Errors a user can cause, each pointing at a file, a line and a key path.

They are printed as `file:line: key.path: message`, one per line, and make the CLI
exit with status 2. A traceback means a bug in heliostat, never bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

# A message or key path quotes what the user wrote, which may be huge; and one file can
# break a rule a hundred thousand times. Past these, more text tells nobody anything.
MAX_MESSAGE_CHARS = 1000
MAX_PATH_CHARS = 200
MAX_PROBLEMS = 100


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _cut(self.path, MAX_PATH_CHARS))
        object.__setattr__(self, "message", _cut(self.message, MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidInput(Exception):
    """One or more problems with what the user gave us."""

    def __init__(self, problems: list[Problem]) -> None:
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS],
                        Problem(problems[MAX_PROBLEMS].file, None, "",
                                f"... and {rest:,} more problems")]
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def single(cls, file: str, message: str, line: int | None = None,
               path: str = "") -> InvalidInput:
        return cls([Problem(file, line, path, message)])
