"""The API's errors: a status, the field path (``loc``) and a readable message, answered as
``{"detail": [{"loc", "msg", "type"}]}``; never the payload, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

Loc = list[str | int]
MAX_MESSAGE = 300  # messages are cut here: they may quote column names, never values

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, loc: Loc, msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.status, self.loc, self.msg, self.kind = status, loc, msg, kind


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"detail": [...]}``: ours, FastAPI's request validation, and anything else (a 500)."""
    app.exception_handler(ApiError)(_api_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(Exception)(_unexpected)


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    detail = [{"loc": error.loc, "msg": error.msg[:MAX_MESSAGE], "type": error.kind}]
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse({"detail": detail}, status_code=error.status, headers=headers)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0]
    detail = [{"loc": list(first["loc"]), "msg": str(first["msg"])[:MAX_MESSAGE], "type": first["type"]}]
    return JSONResponse({"detail": detail}, status_code=422)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s", request.url.path)
    return JSONResponse({"detail": [{"loc": [], "msg": "internal error", "type": "internal"}]}, status_code=500)
