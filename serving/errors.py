"""The API's client errors: a status, the field path (``loc``) and a readable message, answered as
``{"detail": [{"loc", "msg", "type"}]}``; never the payload, never a traceback."""

from __future__ import annotations

Loc = list[str | int]
MAX_MESSAGE = 300  # messages are cut here: they may quote column names, never values


class ApiError(Exception):
    def __init__(self, status: int, loc: Loc, msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.status, self.loc, self.msg, self.kind = status, loc, msg, kind
