"""The Emotion API as a REST route beside the app: photos in, every face's box and expression scores out.

    POST /api/v1/recognize      raw image bytes, or a multipart form of image files; ?tta=true&search=auto
    GET  /api/v1/model          the bundled model: classes, network, input size, model-card test accuracy
    GET  /api/v1/openapi.json   this list as an OpenAPI description
    GET  /healthz               {"status": "ok"}, without loading the model

`app.py` serves these routes on the Streamlit server's port. Uploads stay in memory: the body is
counted while it streams in and refused (413) once it passes the limit.
"""
from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.checkpoint import BUNDLED_CARD, card_test_accuracy
from core.errors import UserError
from core.faces import SEARCHES
from core.images import MAX_BYTES, decode_image
from core.limits import RateLimiter
from core.predict import bundled_predictor
from core.settings import FALSE_WORDS, TRUE_WORDS, Settings, settings

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the route refuses, as its HTTP status and the JSON error's code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "message": str(self)}}, self.status, self.headers)


def json_endpoint(handler: Callable[[Request], Awaitable[object]]) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The handler's value as JSON; refusals as their JSON error; anything else a 500 whose traceback
    goes to the log only."""
    @functools.wraps(handler)
    async def endpoint(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await handler(request))
        except ApiError as error:
            return error.response()
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path)
            return ApiError(500, "internal_error", "The server failed to answer; the error is in its log.").response()
    return endpoint


@functools.lru_cache(maxsize=1)
def rate_limiter(limits: Settings) -> RateLimiter:
    """One limiter per process, made anew only when the settings change."""
    return RateLimiter(limits.api_requests_per_minute, 60)


def check_rate(request: Request) -> None:
    limiter = rate_limiter(settings())
    client = request.client.host if request.client else "unknown"
    if not limiter.allow(client):
        wait = max(1, math.ceil(limiter.retry_after(client)))
        raise ApiError(429, "rate_limited", f"At most {limiter.count} requests a minute; try again in {wait} s.",
                       {"Retry-After": str(wait)})


def query_options(request: Request) -> tuple[bool, str]:
    """`tta` and `search` from the query string."""
    tta = request.query_params.get("tta", "").strip().lower()
    search = request.query_params.get("search", "auto")
    if tta not in TRUE_WORDS + FALSE_WORDS:
        raise ApiError(400, "bad_parameter", f"tta must be true or false, not {tta!r}.")
    if search not in SEARCHES:
        raise ApiError(400, "bad_parameter", f"search must be one of {', '.join(SEARCHES)}, not {search!r}.")
    return tta in TRUE_WORDS, search


def too_large(limit: int) -> ApiError:
    """The refusal of a body over `limit` bytes (MAX_BYTES for one image, more for a form of several)."""
    in_all = f" and {limit / 2**20:g} MB a request" if limit > MAX_BYTES else ""
    return ApiError(413, "request_too_large", f"Too large: at most {MAX_BYTES / 2**20:g} MB an image{in_all}.")


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused as soon as more than `limit` bytes have come."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        yield chunk


async def read_image_body(request: Request) -> bytes:
    check_declared_length(request, MAX_BYTES)
    return b"".join([chunk async for chunk in limited(request.stream(), MAX_BYTES)])


async def read_form_files(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of a multipart form's files; other fields are ignored."""
    limit = max_files * MAX_BYTES
    check_declared_length(request, limit)
    parser = MultiPartParser(request.headers, limited(request.stream(), limit))
    parser.spool_max_size = limit  # no upload may roll over from memory to a temporary file on disk
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(400, "bad_multipart", str(error)) from None
    try:
        uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        names = [upload.filename or "" for upload in uploads]
        if not uploads:
            raise ApiError(400, "no_files", "The form has no file; send image files, or one image as the body.")
        if len(uploads) > max_files:
            raise ApiError(413, "too_many_files", f"At most {max_files} photos a request, not {len(uploads)}.")
        if any(upload.size > MAX_BYTES for upload in uploads):
            raise too_large(MAX_BYTES)
        if len(set(names)) < len(names):
            raise ApiError(400, "duplicate_file_names", "Each file of the form needs its own name.")
        return [(name, await upload.read()) for name, upload in zip(names, uploads)]
    finally:
        await form.close()


def decode_photos(files: list[tuple[str, bytes]], max_side: int) -> list[np.ndarray]:
    images = []
    for name, data in files:
        try:
            images.append(decode_image(data, max_side=max_side))
        except UserError as error:
            raise ApiError(400, error.key, f"{name}: {error}" if name else str(error)) from None
    return images


def recognize_photos(files: list[tuple[str, bytes]], max_side: int, tta: bool, search: str) -> list | dict:
    """The Emotion API's list of faces for one photo; for several, an object from file name to such a list."""
    found = bundled_predictor().predict_many(decode_photos(files, max_side), tta, search)
    results = [[face.to_api() for face in faces] for faces in found]
    return results[0] if len(files) == 1 else {name: result for (name, _), result in zip(files, results)}


@json_endpoint
async def recognize(request: Request) -> list | dict:
    check_rate(request)
    tta, search = query_options(request)
    limits = settings()
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        files = await read_form_files(request, limits.max_photos)
    else:
        files = [("", await read_image_body(request))]
    return await run_in_threadpool(recognize_photos, files, limits.max_photo_side, tta, search)


def model_description() -> dict:
    predictor = bundled_predictor()
    return {"classes": list(predictor.classes), "architecture": predictor.arch, "input_size": predictor.input_size,
            "channels": predictor.channels, "test_accuracy": card_test_accuracy(BUNDLED_CARD.read_text("utf-8")),
            "hosted": settings().hosted}


@json_endpoint
async def model(request: Request) -> dict:
    return await run_in_threadpool(model_description)


@json_endpoint
async def healthz(request: Request) -> dict:
    return {"status": "ok"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_FACES = {"type": "array", "items": {"type": "object", "properties": {
    "faceRectangle": {"type": "object", "properties": {side: {"type": "integer"}
                                                       for side in ("left", "top", "width", "height")}},
    "scores": {"type": "object", "additionalProperties": {"type": "number"}}}}}
_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}}}}}
_IMAGE = {"schema": {"type": "string", "format": "binary"}}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Facial-expression teaching lab: Emotion API", "version": "1"},
    "paths": {
        "/api/v1/recognize": {"post": {
            "summary": "Every face's box and expression scores, faces sorted by size",
            "parameters": [
                {"name": "tta", "in": "query", "schema": {"type": "boolean", "default": False},
                 "description": "average the ten local crops"},
                {"name": "search", "in": "query", "schema": {"enum": list(SEARCHES), "default": "auto"},
                 "description": "hog: HOG alone; auto: the CNN detector where HOG finds no face; thorough: both"}],
            "requestBody": {"required": True, "content": {
                "image/*": _IMAGE, "application/octet-stream": _IMAGE,
                "multipart/form-data": {"schema": {"type": "object", "additionalProperties": {
                    "type": "array", "items": {"type": "string", "format": "binary"}}}}}},
            "responses": {
                "200": _json({"oneOf": [_FACES, {"type": "object", "additionalProperties": _FACES}]},
                             "the faces; for a form of several files, an object from file name to the faces"),
                "400": _json(_ERROR, "not an image, an empty or broken one, a bad form or parameter"),
                "413": _json(_ERROR, f"an image over {MAX_BYTES / 2**20:g} MB, or more photos than the server takes"),
                "429": _json(_ERROR, "too many requests from this address; see Retry-After"),
            }}},
        "/api/v1/model": {"get": {"summary": "The bundled model and its test accuracy",
                                  "responses": {"200": _json({"type": "object"}, "the model")}}},
        "/api/v1/openapi.json": {"get": {"summary": "This description",
                                         "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        "/healthz": {"get": {"summary": "Whether the server answers",
                             "responses": {"200": _json({"type": "object"}, '{"status": "ok"}')}}},
    },
}


@json_endpoint
async def openapi(request: Request) -> dict:
    return OPENAPI


ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@json_endpoint
async def elsewhere(request: Request) -> dict:
    """Any other request under /api/: a JSON 405 or 404, not the app's HTML page that Streamlit would send."""
    known = {route.path: route.methods for route in ROUTES}
    if request.url.path in known:
        raise ApiError(405, "method_not_allowed", f"{request.url.path} takes {', '.join(sorted(known[request.url.path]))}.",
                       {"Allow": ", ".join(sorted(known[request.url.path]))})
    raise ApiError(404, "not_found", f"There is no route {request.url.path}; see /api/v1/openapi.json.")


ROUTES = [Route("/api/v1/recognize", recognize, methods=["POST"]), Route("/api/v1/model", model),
          Route("/api/v1/openapi.json", openapi), Route("/healthz", healthz)]


def routes() -> list[Route]:
    return [*ROUTES, Route("/api/{path:path}", elsewhere, methods=ANY_METHOD)]
