"""A small description of what an API request carries (field → type, bounds, required), which both checks
a JSON body or a query string and writes the JSON Schema of the OpenAPI document: the docs and the checks
are one object and cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from . import bounded
from .bounded import InputError

Kind = Literal["string", "integer", "id", "number", "datetime", "date"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind = "string"
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    max_length: int = 200
    choices: tuple[str, ...] = ()
    description: str = ""

    def _bounds(self) -> tuple[float, float]:
        if self.kind == "id":
            return 1, bounded.MAX_ID
        if self.kind == "integer":
            return (-bounded.MAX_ID if self.lo is None else self.lo), (bounded.MAX_ID if self.hi is None else self.hi)
        return (-1e12 if self.lo is None else self.lo), (1e12 if self.hi is None else self.hi)

    def schema(self) -> dict[str, Any]:
        """This field's JSON Schema."""
        out: dict[str, Any]
        if self.kind in ("integer", "id", "number"):
            lo, hi = self._bounds()
            out = {"type": "number" if self.kind == "number" else "integer", "minimum": lo, "maximum": hi}
        elif self.kind == "datetime":
            out = {"type": "string", "format": "date-time"}
        elif self.kind == "date":
            out = {"type": "string", "format": "date"}
        else:
            out = {"type": "string", "maxLength": self.max_length}
            if self.choices:
                out["enum"] = list(self.choices)
        if self.description:
            out["description"] = self.description
        return out

    def convert(self, raw: object, local: tzinfo, typed: bool = False) -> Any:
        """The value as Python, or an InputError naming this field. `typed`: the value comes from JSON, so a
        number must be a JSON number (a query string or a form has only text)."""
        name = self.name
        if typed and self.kind in ("integer", "id", "number") and isinstance(raw, str):
            raise InputError("bad_type", f"'{name}' must be a number, not a string.", name)
        if self.kind in ("integer", "id"):
            lo, hi = self._bounds()
            return bounded.parse_int(raw, name, int(lo), int(hi))
        if self.kind == "number":
            lo, hi = self._bounds()
            return bounded.parse_number(raw, name, lo, hi)
        if self.kind == "datetime":
            return bounded.parse_datetime(raw, name, local)
        if self.kind == "date":
            return bounded.parse_date(raw, name)
        text = bounded.parse_text(raw, name, self.max_length)
        if self.choices and text not in self.choices:
            raise InputError("bad_choice", f"'{name}' must be one of: {', '.join(self.choices)}.", name)
        return text


@dataclass(frozen=True)
class Body:
    """A JSON object's fields. Unknown keys are ignored; null counts as absent."""

    fields: tuple[Field, ...]

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": {f.name: f.schema() for f in self.fields}}
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        return out

    def validate(self, data: object, local: tzinfo, typed: bool = True) -> dict[str, Any]:
        """The present fields, converted; the first refusal as an InputError. `typed`: a JSON body (not a
        form's text)."""
        if not isinstance(data, Mapping):
            raise InputError("bad_json", "Send a JSON object.")
        return convert_all(self.fields, data, local, typed)


def convert_all(fields: tuple[Field, ...], data: Mapping[str, Any], local: tzinfo,
                typed: bool = False) -> dict[str, Any]:
    """Query strings go through here too: an empty value there is as absent as a missing one."""
    out: dict[str, Any] = {}
    for f in fields:
        raw = data.get(f.name)
        if raw is None or (isinstance(raw, str) and raw == "" and f.kind != "string"):
            if f.required:
                raise InputError("missing_field", f"'{f.name}' is required.", f.name)
            continue
        out[f.name] = f.convert(raw, local, typed)
    return out
