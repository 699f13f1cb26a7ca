"""The type of a parsed JSON value (what :func:`json.loads` returns), declared once."""

from __future__ import annotations

from typing import TypeAlias

#: A JSON value: an object, an array, a string, a number, true/false or null, at any depth.
JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
