"""The JSON the server speaks, read from the type hints of the service methods.

An operation's keyword arguments are decoded strictly from its parameters' hints (a wrong type
is refused with a message naming the argument and where in it), and its result is encoded from
its return hint. The rules, for both directions:

====================================  ==========================================================
``str``, ``int``, ``float``, ``bool``  the JSON value (``true`` is not a number; an int is a float)
``None``                               ``null``
``list``, ``tuple``, ``Sequence``,     an array (a fixed ``tuple[A, B]`` of exactly that length)
``set``, ``frozenset``
``dict``, ``Mapping`` of ``str`` keys  an object
a mapping of other keys (``Area``)     an array of ``[key, value]`` pairs
``X | Y``, ``Optional``                the first member that takes the value (``str`` before
                                       ``bytes``, so text is never read as base64)
``Literal``                            one of the values
an ``Enum``                            its value
a dataclass, a ``NamedTuple``          an object of its fields (unknown fields refused; missing
                                       ones take their defaults or are refused)
``bytes``                              base64 text
``datetime``, ``date``                 ISO 8601 text
``JsonValue``, ``Any``                 any JSON value
a numpy array (results only)           ``{"dtype", "shape", "data"}``, data as base64
====================================  ==========================================================

A parameter the wire cannot carry but that has a default (a progress callback) is not offered;
an operation with a required parameter or a result the wire cannot carry is not callable over
the server, and :func:`wire_problems` says why (``tests/server/test_wire.py`` walks them all).
"""

from __future__ import annotations

import ast
import base64
import binascii
import collections.abc as cabc
import dataclasses
import enum
import functools
import importlib
import inspect
import math
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ForwardRef, Literal, NamedTuple, Union, get_args, get_origin

NoneType = type(None)


class WireError(ValueError):
    """A value that does not match its declared type; the message names where."""


# ------------------------------------------------------------------ hints


@functools.cache
def _type_checking_names(module_name: str) -> dict[str, Any]:
    """The names a module imports under ``if TYPE_CHECKING:``, imported now, so hints that use
    them resolve."""
    module = importlib.import_module(module_name)
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    names: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.Import | ast.ImportFrom):
                    code = compile(ast.Module(body=[stmt], type_ignores=[]), module_name, "exec")
                    exec(code, names)  # imports only: the module's own TYPE_CHECKING lines
    names.pop("__builtins__", None)
    return names


def hints(obj: Any) -> dict[str, Any]:
    """``typing.get_type_hints`` of a function or class, with the names its module imports
    only for type checking."""
    module = getattr(obj, "__module__", None)
    local = _type_checking_names(module) if module else {}
    return typing.get_type_hints(obj, localns=local)


@functools.cache
def _class_hints(cls: Any) -> dict[str, Any]:
    return hints(cls)


class Parameter(NamedTuple):
    """One keyword argument an operation takes over the wire."""

    name: str
    hint: Any
    required: bool
    default: Any


class Signature(NamedTuple):
    """What an operation takes and returns over the wire; ``problems`` says why it cannot
    be called through the server (empty: it can)."""

    parameters: dict[str, Parameter]
    returns: Any
    problems: tuple[str, ...]


def signature(method: Callable[..., Any], skip: int) -> Signature:
    """The wire signature of a service method (the function ``@operation`` wrapped, found by
    ``__wrapped__``); ``skip`` leading parameters (self, and the Op or the session) are the
    server's to give."""
    fn = inspect.unwrap(method)
    hs = hints(fn)
    params: dict[str, Parameter] = {}
    problems: list[str] = []
    for p in list(inspect.signature(fn).parameters.values())[skip:]:
        hint = hs.get(p.name, Any)
        has_default = p.default is not inspect.Parameter.empty
        if p.kind is inspect.Parameter.VAR_KEYWORD or p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue  # server-side limits (workers, time-outs): not the caller's to set
        why = unsupported(hint)
        if why:
            if has_default:
                continue  # a progress callback and the like: the server keeps the default
            problems.append(f"parameter {p.name!r}: {why}")
            continue
        params[p.name] = Parameter(p.name, hint, not has_default, p.default)
    returns = hs.get("return", Any)
    why = unsupported(returns, result=True)
    if why:
        problems.append(f"result: {why}")
    return Signature(params, returns, tuple(problems))


def _is_json_value(tp: Any) -> bool:
    return isinstance(tp, ForwardRef) and tp.__forward_arg__ == "JsonValue"


def _is_ndarray(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    return getattr(origin, "__module__", "") == "numpy" and getattr(origin, "__name__", "") == (
        "ndarray"
    )


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def unsupported(tp: Any, result: bool = False, _seen: frozenset[Any] = frozenset()) -> str:
    """Why values of ``tp`` cannot cross the wire ("" when they can)."""
    if tp in _seen:
        return ""
    seen = _seen | {tp}
    if tp is Any or tp is NoneType or tp is None or _is_json_value(tp):
        return ""
    if tp in (str, int, float, bool, bytes, datetime, date):
        return ""
    if isinstance(tp, ForwardRef):
        return f"unresolved type {tp.__forward_arg__!r}"
    if _is_ndarray(tp):
        return "" if result else "a numpy array is sent only as a result"
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Literal:
        return ""
    if origin in (Union, types.UnionType):
        for a in args:
            why = unsupported(a, result, seen)
            if why:
                return why
        return ""
    if origin is typing.Annotated:
        return unsupported(args[0], result, seen)
    if origin in (list, tuple, set, frozenset, cabc.Sequence, cabc.Set, cabc.Iterable) or (
        origin in (dict, cabc.Mapping)
    ):
        for a in args:
            if a is Ellipsis:
                continue
            why = unsupported(a, result, seen)
            if why:
                return why
        return ""
    if tp in (list, tuple, dict, set, frozenset):
        return ""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ""
    if _is_namedtuple(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        for name, ft in _class_hints(tp).items():
            if dataclasses.is_dataclass(tp) and name not in {f.name for f in _init_fields(tp)}:
                continue
            why = unsupported(ft, result, seen)
            if why:
                return f"{tp.__name__}.{name}: {why}"
        return ""
    if origin is cabc.Callable or tp is cabc.Callable:
        return "a function cannot be sent"
    name = getattr(tp, "__qualname__", None) or repr(tp)
    return f"no JSON form for {name}"


def _init_fields(cls: Any) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.init)


# ------------------------------------------------------------------ decoding


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _describe(tp: Any) -> str:
    if tp is NoneType or tp is None:
        return "null"
    if tp is str:
        return "text"
    if tp is bytes:
        return "base64 text"
    if tp is bool:
        return "true/false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp in (datetime, date):
        return "an ISO 8601 time" if tp is datetime else "an ISO 8601 date"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (list, tuple, set, frozenset, cabc.Sequence, cabc.Set, cabc.Iterable):
        return "an array"
    if origin in (dict, cabc.Mapping):
        return "an object" if get_args(tp)[:1] in ((str,), ()) else "an array of [key, value]"
    name = getattr(tp, "__name__", None)
    return f"a {name} object" if name else repr(tp)


def _fail(where: str, tp: Any, value: Any) -> WireError:
    return WireError(f"{where}: expected {_describe(tp)}, got {_kind(value)}")


_NOT_SCALAR = object()


def _decode_scalar(tp: Any, value: Any, where: str) -> Any:
    """``decode`` for bool, int, float, str, bytes, datetime and date; ``_NOT_SCALAR`` for
    any other type."""
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, tp, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise _fail(where, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, tp, value)
        if not math.isfinite(value):
            raise WireError(f"{where}: expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, tp, value)
        return value
    if tp is bytes:
        if not isinstance(value, str):
            raise _fail(where, tp, value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise WireError(f"{where}: expected base64 text") from None
    if tp is datetime or tp is date:
        if not isinstance(value, str):
            raise _fail(where, tp, value)
        try:
            return datetime.fromisoformat(value) if tp is datetime else date.fromisoformat(value)
        except ValueError:
            raise _fail(where, tp, value) from None
    return _NOT_SCALAR


def decode(tp: Any, value: Any, where: str) -> Any:
    """The Python value of JSON ``value`` declared as ``tp``; WireError naming ``where``."""
    if tp is Any or _is_json_value(tp):
        return value
    if tp is NoneType or tp is None:
        if value is not None:
            raise _fail(where, tp, value)
        return None
    scalar = _decode_scalar(tp, value, where)
    if scalar is not _NOT_SCALAR:
        return scalar
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return decode(args[0], value, where)
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise WireError(f"{where}: expected one of {', '.join(repr(a) for a in args)}")
        return value
    if origin in (Union, types.UnionType):
        members = sorted(args, key=lambda a: a is bytes)  # text is text, never base64
        for a in members:
            try:
                return decode(a, value, where)
            except WireError:
                continue
        raise _fail(where, tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise WireError(f"{where}: expected one of {allowed}") from None
    if origin in (dict, cabc.Mapping) or tp is dict:
        kt, vt = args if args else (str, Any)
        if kt is str:
            if not isinstance(value, dict):
                raise _fail(where, tp, value)
            return {k: decode(vt, v, f"{where}[{k!r}]") for k, v in value.items()}
        if not isinstance(value, list):
            raise _fail(where, tp, value)
        out: dict[Any, Any] = {}
        for i, pair in enumerate(value):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise WireError(f"{where}[{i}]: expected a [key, value] pair")
            key = decode(kt, pair[0], f"{where}[{i}] key")
            if key in out:
                raise WireError(f"{where}[{i}]: the key appears twice")
            out[key] = decode(vt, pair[1], f"{where}[{i}] value")
        return out
    if origin is tuple and args and args[-1] is not Ellipsis:
        if not isinstance(value, list) or len(value) != len(args):
            raise WireError(f"{where}: expected an array of {len(args)} values")
        return tuple(
            decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin in (list, tuple, set, frozenset, cabc.Sequence, cabc.Set, cabc.Iterable) or (
        tp in (list, tuple, set, frozenset)
    ):
        if not isinstance(value, list):
            raise _fail(where, tp, value)
        item = args[0] if args else Any
        items = [decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if origin in (set, cabc.Set) or tp is set:
            return set(items)
        if origin is frozenset or tp is frozenset:
            return frozenset(items)
        return tuple(items) if origin is tuple or tp is tuple else items
    if _is_namedtuple(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return _decode_record(tp, value, where)
    if _is_ndarray(tp):
        return _decode_array(value, where)
    raise WireError(f"{where}: no JSON form for {getattr(tp, '__qualname__', tp)!r}")


def _decode_array(value: Any, where: str) -> Any:
    """An array as :func:`encode` sends it: dtype, shape and the C-ordered bytes in base64."""
    import numpy as np

    if not (isinstance(value, dict) and set(value) == {"dtype", "shape", "data"}):
        raise WireError(f"{where}: expected an array object (dtype, shape, data)")
    try:
        dtype = np.dtype(value["dtype"])
        shape = tuple(int(n) for n in value["shape"])
        raw = base64.b64decode(value["data"], validate=True)
        if dtype.hasobject or any(n < 0 for n in shape):
            raise ValueError("not a plain array")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except (TypeError, ValueError) as exc:
        raise WireError(f"{where}: not an array: {exc}") from None


def _decode_record(tp: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, tp, value)
    fh = _class_hints(tp)
    if dataclasses.is_dataclass(tp):
        fields = {
            f.name: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            for f in _init_fields(tp)
        }
    else:
        defaults = getattr(tp, "_field_defaults", {})
        fields = {name: name not in defaults for name in getattr(tp, "_fields", ())}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise WireError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [name for name, required in fields.items() if required and name not in value]
    if missing:
        raise WireError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    kwargs = {k: decode(fh.get(k, Any), v, f"{where}.{k}") for k, v in value.items()}
    try:
        return tp(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{where}: {exc}") from None


def decode_arguments(sig: Signature, body: Any) -> dict[str, Any]:
    """The keyword arguments of a call from its JSON object; WireError naming the argument."""
    if not isinstance(body, dict):
        raise WireError(f"the arguments must be a JSON object, got {_kind(body)}")
    unknown = sorted(set(body) - set(sig.parameters))
    if unknown:
        offered = ", ".join(sig.parameters) or "none"
        raise WireError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} (this operation takes: {offered})"
        )
    missing = [p.name for p in sig.parameters.values() if p.required and p.name not in body]
    if missing:
        raise WireError(f"missing argument(s) {', '.join(map(repr, missing))}")
    return {
        name: decode(sig.parameters[name].hint, value, f"argument {name!r}")
        for name, value in body.items()
    }


# ------------------------------------------------------------------ encoding


def encode(tp: Any, value: Any) -> Any:
    """The JSON form of ``value`` declared as ``tp``."""
    if value is None:
        return None
    if tp is Any or _is_json_value(tp):
        tp = object  # whatever the value is
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return encode_plain(value.value)
    if isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return encode(args[0], value)
    if origin in (Union, types.UnionType):
        member = _member_for(args, value)
        return encode(member, value)
    if _is_ndarray(tp) or _is_ndarray(type(value)):
        return {
            "dtype": str(value.dtype),
            "shape": list(value.shape),
            "data": base64.b64encode(value.tobytes(order="C")).decode("ascii"),
        }
    if _is_namedtuple(type(value)):
        fh = _class_hints(value.__class__)
        return {name: encode(fh.get(name, Any), getattr(value, name)) for name in value._fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fh = _class_hints(value.__class__)
        return {
            f.name: encode(fh.get(f.name, Any), getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, cabc.Mapping):
        kt, vt = args if len(args) == 2 else (Any, Any)
        if kt is str or (kt is Any and all(isinstance(k, str) for k in value)):
            return {str(k): encode(vt, v) for k, v in value.items()}
        return [[encode(kt, k), encode(vt, v)] for k, v in value.items()]
    if isinstance(value, tuple) and origin is tuple and args and args[-1] is not Ellipsis:
        return [encode(a, v) for a, v in zip(args, value, strict=True)]
    if isinstance(value, list | tuple | set | frozenset):
        item = args[0] if args else Any
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [encode(item, v) for v in items]
    raise WireError(f"no JSON form for a {type(value).__qualname__}")


def _member_for(args: tuple[Any, ...], value: Any) -> Any:
    for a in args:
        base = get_origin(a) or a
        if isinstance(base, type) and isinstance(value, base):
            return a
    return Any


def encode_plain(value: Any) -> Any:
    """The JSON form of a value with no declared type (JsonValue, Any)."""
    return encode(object, value)
