"""Plain data across the sandbox boundary: Python values as tagged JSON, decoded into builtins only.

The code oracle's trusted test process receives every return value of the model's code through
this codec, so nothing the untrusted process sends can carry behaviour: no pickle, no classes, no
``__eq__`` of its own. JSON covers None, bool, int, float (NaN and infinities included), str and
list; one-key objects tag the rest: ``{"tuple": [...]}``, ``{"set": [...]}``,
``{"frozenset": [...]}``, ``{"dict": [[key, value], ...]}`` (any hashable keys, order kept),
``{"bytes": "<hex>"}``, ``{"complex": [real, imag]}``.

Standard library only, with no imports from this package: the sandboxed programs define this
module from its source (see ``code_check``), so it must stand alone.
"""

import json
import operator

_MAX_DEPTH = 200


def to_plain(value, depth=0):
    """``value`` as JSON-ready plain data; subclasses of builtins become the builtin (their methods stay behind).

    Raises:
        TypeError: a value that is not plain data (a function, a class instance, a generator...).
    """
    if depth > _MAX_DEPTH:
        raise TypeError(f"value nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # numpy scalars and arrays
        return to_plain(value.tolist(), depth + 1)
    if hasattr(type(value), "__index__") and not isinstance(value, list | tuple | dict | set | frozenset):
        return operator.index(value)
    if isinstance(value, list):
        return [to_plain(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [to_plain(item, depth + 1) for item in value]}
    if isinstance(value, frozenset):
        return {"frozenset": [to_plain(item, depth + 1) for item in value]}
    if isinstance(value, set):
        return {"set": [to_plain(item, depth + 1) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[to_plain(k, depth + 1), to_plain(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, complex):
        return {"complex": [float(value.real), float(value.imag)]}
    raise TypeError(f"a {type(value).__name__} cannot cross the sandbox boundary (plain data only)")


def from_plain(data, depth=0):
    """Rebuild a value from ``to_plain``'s output, as builtins only.

    Raises:
        ValueError: ``data`` is not something ``to_plain`` writes.
    """
    if depth > _MAX_DEPTH:
        raise ValueError(f"value nested more than {_MAX_DEPTH} levels deep")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [from_plain(item, depth + 1) for item in data]
    if kind is dict and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "bytes" and type(body) is str:
            return bytes.fromhex(body)
        if type(body) is list:
            items = [from_plain(item, depth + 1) for item in body]
            if tag == "tuple":
                return tuple(items)
            if tag in ("set", "frozenset"):
                try:
                    return set(items) if tag == "set" else frozenset(items)
                except TypeError as error:
                    raise ValueError(f"unhashable set member: {error}") from None
            if tag == "dict" and all(type(pair) is list and len(pair) == 2 for pair in items):
                try:
                    return {key: value for key, value in items}
                except TypeError as error:
                    raise ValueError(f"unhashable dict key: {error}") from None
            if tag == "complex" and len(items) == 2 and all(type(part) in (int, float) for part in items):
                return complex(*items)
    raise ValueError(f"not plain data: {str(data)[:100]}")


def dumps(value) -> str:
    """``value`` as one line of tagged JSON."""
    return json.dumps(to_plain(value), ensure_ascii=True, separators=(",", ":"))


def loads(text: str):
    """The value ``dumps`` wrote, as builtins only."""
    return from_plain(json.loads(text))
