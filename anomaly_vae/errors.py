"""Errors the whole library raises about its input, shared by the tabular and the image detector."""

from __future__ import annotations


class RecordError(ValueError):
    """Input the model cannot score: ``row`` is the position of the first bad record or image (None: the
    input as a whole, e.g. a missing column, or an image known only by name), ``column`` the column at
    fault (None: no single one). The message names the record or image."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row, self.column = row, column
