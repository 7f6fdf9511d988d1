"""What every request's input passes first, web and API alike: ids in URLs through one converter, text
without NUL, and a refused value (`InputError`) answered as a 400 where the person acted."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map

from .domain.bounded import MAX_ID, InputError, is_clean_text


def decimal_range_regex(high: int) -> str:
    """A regex for the decimal numbers 1..high without leading zeros."""
    digits = str(high)
    shorter = rf"[1-9]\d{{0,{len(digits) - 2}}}" if len(digits) > 1 else ""
    same_length = []
    for i, d in enumerate(digits):
        floor = 1 if i == 0 else 0
        if int(d) > floor:
            rest = len(digits) - i - 1
            same_length.append(f"{digits[:i]}[{floor}-{int(d) - 1}]" + (rf"\d{{{rest}}}" if rest else ""))
    same_length.append(digits)
    return "|".join(filter(None, [shorter, *same_length]))


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 .. MAX_ID (2^31-1). Anything else (0, 007, 2^31, 2^63, 2^64, -1) is no
    such page: a 404, never an overflow in the database driver. The range is in the regex, not only in the conversion:
    Werkzeug answers a path another method's rule matches by pattern with 405, even when that rule's
    conversion would have refused it."""

    regex = f"(?:{decimal_range_regex(MAX_ID)})"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def _refuse_control_characters() -> None:
    """before_request: NUL (which PostgreSQL refuses in text) or other control characters in the path, the
    query string or a form field are a 400, whatever the route does with them."""
    values = [request.path, *_flat(request.args.lists())]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            values += _flat(request.form.lists())
        except RequestEntityTooLarge:
            return  # the route answers that with its own words

    for value in values:
        if isinstance(value, str) and not is_clean_text(value):
            raise BadRequest("The request contains control characters (such as NUL) that no field takes.")


def _flat(items: Any) -> list[Any]:
    return [text for key, values in items for text in (key, *values)]


def register(app: Flask) -> None:
    """Called by create_app before any blueprint adds its routes (the converter must exist by then)."""
    app.url_map.converters["id"] = IdConverter
    app.before_request(_refuse_control_characters)

    @app.errorhandler(InputError)
    def _input_error(err: InputError) -> Any:
        # The same way out as any other 400: the page, or the API's error format (api/common.py's handler
        # adds the field for API routes).
        return app.handle_http_exception(BadRequest(err.message))
