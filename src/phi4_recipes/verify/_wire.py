"""Values across the code oracle's boundary: typed JSON that rebuilds standard-library values on the other side.

The solution and the tests run in two interpreters (see ``code_check``). What crosses between them is
JSON written by this codec, never pickle, so nothing the solution sends can carry code into the tests'
interpreter. A value of a standard-library type crosses *by value* and is rebuilt there with that
side's own classes: None, bool, int (any size), float, str, bytes, bytearray, complex, list, tuple,
dict, set, frozenset, range, slice, Ellipsis, OrderedDict, defaultdict, Counter, deque, namedtuple,
Fraction, Decimal, dict views, dates and times, paths. Its ``__eq__`` is therefore always the
standard library's. Everything else (instances of the solution's classes, functions, generators,
subclasses of builtins) crosses *by reference*: the sending side keeps the object and the hooks of
``_peer`` turn the reference into a proxy.

JSON scalars stand for themselves (ints beyond 64 bits are tagged, in hex, so no decimal conversion
limit applies). Every other value is an object ``{"t": tag, ...}``. Mutable containers carry an
``id`` (``cid``) per message, so aliasing and cycles survive, and the receiver of a call can send
back the new state of each argument container it changed (``{"t": "back", "cid": n}`` names one of
them). Standard library only, no imports from this package: the sandboxed programs define this
module from its source.
"""

import collections
import datetime
import decimal
import fractions
import pathlib
import sys
import types

MAX_DEPTH = 400
_INT_LIMIT = 1 << 63
_MUTABLE = (list, dict, set, bytearray, collections.deque)  # and dict's stdlib subclasses, via dict
# Builtin value types whose subclasses cross by reference, with the base named so the other side can
# ask for the plain value (an int subclass never compares with its own __eq__ on the trusted side).
# Most specific first: an OrderedDict subclass compares as an OrderedDict (order counts), not as a dict.
VALUE_BASES = (bool, int, float, complex, str, bytes, bytearray, tuple, list, collections.OrderedDict,
               collections.defaultdict, collections.Counter, dict, set, frozenset, collections.deque)  # fmt: skip
_KEYS, _VALUES, _ITEMS = type({}.keys()), type({}.values()), type({}.items())


class WireError(ValueError):
    """Data that this codec does not write: malformed, too deep, or naming something unknown."""


class InstanceState(dict):
    """The attributes of an instance the other side sent back by value, to be given to this side's own object."""


# Standard-library objects cross *by name* (rebuilt as the receiver's own) only from modules with no
# access to files, processes or the interpreter: a name from elsewhere (os.write, builtins.open) would
# hand the tests' side a capability. Objects of other modules cross by reference, like the solution's.
PURE_MODULES = frozenset({
    "builtins", "math", "cmath", "operator", "itertools", "functools", "collections", "collections.abc", "string",
    "re", "statistics", "fractions", "decimal", "datetime", "heapq", "bisect", "numbers", "typing", "enum",
    "copy", "json", "json.decoder", "random", "array", "textwrap", "unicodedata", "calendar", "hashlib", "base64",
    "binascii", "struct", "abc", "dataclasses", "keyword", "difflib", "zlib", "queue", "_collections_abc", "_operator",
    "_functools", "_heapq", "_bisect", "_json", "_random", "_decimal", "_pydecimal", "_datetime", "_pydatetime",
    "_struct", "_string", "_sre", "re._constants", "_collections", "_statistics", "_hashlib", "_blake2",
    "_sha256", "_sha512", "_md5", "_sha1", "_sha3", "zoneinfo", "_strptime",
})  # fmt: skip
# Builtins that reach the interpreter, files or any attribute of an object.
UNSAFE_BUILTINS = frozenset({
    "open", "exec", "eval", "compile", "__import__", "input", "breakpoint", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "exit", "quit", "help", "copyright", "credits", "license", "__build_class__",
    "__loader__", "__spec__",
})  # fmt: skip


_NAMED_KINDS = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                types.WrapperDescriptorType, types.ClassMethodDescriptorType)  # fmt: skip


def _pure(module: str, qualname: str) -> bool:
    return module in PURE_MODULES and not (module == "builtins" and qualname.split(".")[0] in UNSAFE_BUILTINS)


def std_name(obj):
    """``(module, qualname)`` when ``obj`` is the standard library's own module, class or function, else None.

    Resolved by name in this process (never importing): only what this name really denotes qualifies.
    """
    if not isinstance(obj, _NAMED_KINDS):
        return None  # only these can be named; never look up attributes of other objects (proxies answer them)
    if isinstance(obj, types.ModuleType):
        name = getattr(obj, "__name__", None)
        if isinstance(name, str) and _pure(name, "") and sys.modules.get(name) is obj:
            return name, ""
        return None
    owner = getattr(obj, "__objclass__", None)  # str.lower and the like: a method of a builtin type
    if isinstance(owner, type):
        module, qualname = owner.__module__, f"{owner.__qualname__}.{getattr(obj, '__name__', '')}"
    else:
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)) or "<" in qualname:
        return None
    if not _pure(module, qualname):
        return None
    try:
        return (module, qualname) if resolve_std(module, qualname, import_missing=False) is obj else None
    except WireError:
        return None


def resolve_std(module: str, qualname: str, import_missing: bool = True, exception_class: bool = False):
    """The standard library's object ``module.qualname`` in this process.

    With ``exception_class``, any standard-library module may hold it (a class deriving from
    BaseException grants nothing), and anything else is refused.
    """
    if not (isinstance(module, str) and isinstance(qualname, str)):
        raise WireError("a standard-library name needs a str module and qualname")
    allowed = module.split(".")[0] in sys.stdlib_module_names and module.split(".")[0] not in ("antigravity", "this", "__main__")
    if not (allowed if exception_class else _pure(module, qualname)):
        raise WireError(f"not a name that crosses: {module[:100]}.{qualname[:100]}")
    target = sys.modules.get(module)
    if target is None and import_missing:
        import importlib

        try:
            target = importlib.import_module(module)
        except Exception:  # noqa: BLE001 - a module this interpreter lacks is an unknown name
            target = None
    if target is None:
        raise WireError(f"standard-library module {module!r} is not available")
    for part in qualname.split(".") if qualname else ():
        if part.startswith("__") and part not in ("__init__", "__new__"):
            raise WireError(f"not a public standard-library name: {module}.{qualname}")
        target = getattr(target, part, None)
        if target is None:
            raise WireError(f"{module}.{qualname} does not exist")
    if exception_class and not (isinstance(target, type) and issubclass(target, BaseException)):
        raise WireError(f"{module}.{qualname} is not an exception class")
    return target


class Encoder:
    """Encodes the values of one message.

    Args:
        export: the side's hook for an object that is not a value: returns its reference (a dict) or
            raises TypeError.
        back (dict): ``id(container) -> cid`` for containers the other side sent in the call being
            answered: they are written as ``{"t": "back"}`` references instead of copies.
    """

    def __init__(self, export, back=None, instances=None):
        self._export = export
        self._back = back or {}
        self._instances = instances  # predicate: objects written by value as {"t": "inst"} (their __dict__)
        self._cids: dict[int, int] = {}
        self.containers: dict[int, object] = {}  # cid -> container written in this message

    def encode(self, value, depth: int = 0):
        kind = type(value)
        if value is None or kind is bool or kind is str or kind is float:
            return value
        if kind is int:
            return value if -_INT_LIMIT <= value < _INT_LIMIT else {"t": "int", "v": format(value, "x")}
        if depth > MAX_DEPTH:
            raise TypeError(f"value nested more than {MAX_DEPTH} levels deep")
        if id(value) in self._back:
            return {"t": "back", "cid": self._back[id(value)]}
        if id(value) in self._cids:
            return {"t": "ref", "cid": self._cids[id(value)]}
        handler = _ENCODERS.get(kind)
        if handler is not None:
            return handler(self, value, depth + 1)
        if isinstance(value, tuple) and isinstance(getattr(kind, "_fields", None), tuple):
            return self._namedtuple(value, depth + 1)
        if kind.__module__ == "numpy" and hasattr(value, "tolist"):  # numpy scalars and arrays
            return self.encode(value.tolist(), depth + 1)
        name = std_name(value)
        if name is not None:
            return {"t": "std", "m": name[0], "q": name[1]}
        if self._instances is not None and self._instances(value):
            return self.instance(value, depth + 1)
        return self._export(value)

    def contents(self, container, depth: int = 0):
        """``container`` written out in full even when it is a back reference (its new state, for sync)."""
        saved = self._back.pop(id(container), None)
        try:
            if type(container) in _ENCODERS:
                return self.encode(container, depth)
            return self.instance(container, depth + 1)  # an instance the other side sent by value
        finally:
            if saved is not None:
                self._back[id(container)] = saved

    def instance(self, value, depth: int):
        """An instance written by value: its class's name and its ``__dict__`` (a linked list's nodes)."""
        node = {"t": "inst", "cls": type(value).__qualname__, "cid": self._cid(value)}
        node["v"] = [[str(key), self.encode(item, depth)] for key, item in vars(value).items()]
        return node

    def _cid(self, container) -> int:
        cid = len(self._cids)
        self._cids[id(container)] = cid
        self.containers[cid] = container
        return cid

    def _items(self, values, depth):
        return [self.encode(item, depth) for item in values]

    def _namedtuple(self, value, depth):
        node = {"t": "ntuple", "name": type(value).__name__, "fields": list(type(value)._fields),
                "v": self._items(tuple.__iter__(value), depth)}  # fmt: skip
        if std_name(type(value)) is None:  # the solution's own class: its methods stay reachable by reference
            try:
                node["obj"] = self._export(value)
            except TypeError:
                pass
        return node



def _sequence_writer(tag):
    def write(encoder, value, depth):
        node = {"t": tag}
        if isinstance(value, _MUTABLE):
            node["cid"] = encoder._cid(value)
        node["v"] = encoder._items(value, depth)
        if tag == "deque" and value.maxlen is not None:
            node["maxlen"] = value.maxlen
        return node

    return write


def _mapping_writer(tag):
    def write(encoder, value, depth):
        node = {"t": tag, "cid": encoder._cid(value)}
        if tag == "ddict":
            node["factory"] = encoder.encode(value.default_factory, depth)
        # Exact types only reach here, so items() is the standard one (an OrderedDict's own order).
        node["v"] = [[encoder.encode(key, depth), encoder.encode(item, depth)] for key, item in value.items()]
        return node

    return write


_DICT_KINDS = (dict, collections.OrderedDict, collections.defaultdict, collections.Counter)
_ENCODERS = {
    list: _sequence_writer("list"),
    tuple: _sequence_writer("tuple"),
    set: _sequence_writer("set"),
    frozenset: _sequence_writer("frozenset"),
    collections.deque: _sequence_writer("deque"),
    _KEYS: _sequence_writer("keys"),
    _VALUES: _sequence_writer("values"),
    dict: _mapping_writer("dict"),
    collections.OrderedDict: _mapping_writer("odict"),
    collections.defaultdict: _mapping_writer("ddict"),
    collections.Counter: _mapping_writer("counter"),
    _ITEMS: lambda e, v, d: {"t": "items", "v": [[e.encode(k, d), e.encode(i, d)] for k, i in v]},
    bytes: lambda e, v, d: {"t": "bytes", "v": v.hex()},
    bytearray: lambda e, v, d: {"t": "bytearray", "cid": e._cid(v), "v": v.hex()},
    complex: lambda e, v, d: {"t": "complex", "v": [v.real, v.imag]},
    range: lambda e, v, d: {"t": "range", "v": e._items((v.start, v.stop, v.step), d)},
    slice: lambda e, v, d: {"t": "slice", "v": e._items((v.start, v.stop, v.step), d)},
    type(Ellipsis): lambda e, v, d: {"t": "ellipsis"},
    fractions.Fraction: lambda e, v, d: {"t": "fraction", "v": e._items((v.numerator, v.denominator), d)},
    decimal.Decimal: lambda e, v, d: {"t": "decimal", "v": str(v)},
    datetime.date: lambda e, v, d: {"t": "date", "v": v.isoformat()},
    datetime.datetime: lambda e, v, d: {"t": "datetime", "v": v.isoformat()},
    datetime.time: lambda e, v, d: {"t": "time", "v": v.isoformat()},
    datetime.timedelta: lambda e, v, d: {"t": "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    pathlib.PurePosixPath: lambda e, v, d: {"t": "purepath", "v": str(v)},
    pathlib.PosixPath: lambda e, v, d: {"t": "path", "v": str(v)},
}
_ENCODERS[types.MappingProxyType] = lambda e, v, d: e.encode(dict(v), d)


class Decoder:
    """Rebuilds the values of one message with this side's own classes.

    Args:
        resolve: the side's hook for ``{"t": "obj" | "own" | "exc_class"}`` references.
        back (dict): ``cid -> container`` this side sent in the call being answered, for ``"back"``.
    """

    def __init__(self, resolve, back=None):
        self._resolve = resolve
        self._back = back or {}
        self.containers: dict[int, object] = {}  # cid -> container rebuilt from this message
        self._namedtuples: dict = {}

    def decode(self, node, depth: int = 0):
        kind = type(node)
        if node is None or kind in (bool, int, float, str):
            return node
        if depth > MAX_DEPTH:
            raise WireError(f"value nested more than {MAX_DEPTH} levels deep")
        if kind is not dict or type(node.get("t")) is not str:
            raise WireError(f"not an encoded value: {str(node)[:100]}")
        tag = node["t"]
        try:
            if tag in ("back", "ref"):
                table = self._back if tag == "back" else self.containers
                return table[node["cid"]]
            reader = _DECODERS.get(tag)
            if reader is not None:
                return reader(self, node, depth + 1)
            return self._resolve(node)
        except WireError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError, decimal.InvalidOperation,
                ZeroDivisionError) as error:  # fmt: skip
            raise WireError(f"malformed {tag!r} value: {type(error).__name__}: {str(error)[:100]}") from None

    def _list(self, node, depth) -> list:
        if type(node["v"]) is not list:
            raise WireError("a sequence's items must be a list")
        return node["v"]

    def _register(self, node, container):
        if "cid" in node:
            if type(node["cid"]) is not int or node["cid"] in self.containers:
                raise WireError("bad or repeated container id")
            self.containers[node["cid"]] = container
        return container

    def _fill(self, node, depth, container, add):
        self._register(node, container)
        for item in self._list(node, depth):
            add(self.decode(item, depth))
        return container

    def _pairs(self, node, depth, mapping):
        self._register(node, mapping)
        for pair in self._list(node, depth):
            if type(pair) is not list or len(pair) != 2:
                raise WireError("a mapping's items must be [key, value] pairs")
            key = self.decode(pair[0], depth)
            mapping[key] = self.decode(pair[1], depth)
        return mapping

    def _instance(self, node, depth):
        cls = self._resolve({"t": "inst_class", "name": node["cls"]})
        obj = InstanceState() if cls is InstanceState else cls.__new__(cls)
        self._register(node, obj)  # before its attributes: a doubly linked list refers back to it
        state = obj if cls is InstanceState else vars(obj)
        for pair in self._list(node, depth):
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("an instance's attributes must be [name, value] pairs")
            state[pair[0]] = self.decode(pair[1], depth)
        return obj

    def _namedtuple(self, node, depth):
        name, fields = node["name"], node["fields"]
        if type(name) is not str or type(fields) is not list or not all(type(f) is str for f in fields):
            raise WireError("a namedtuple needs a str name and str fields")
        key = (name, tuple(fields))
        if key not in self._namedtuples:
            self._namedtuples[key] = collections.namedtuple(name, fields)  # checks the names are identifiers
        cls = self._namedtuples[key]
        reference = node.get("obj")
        if isinstance(reference, dict) and reference.get("t") == "own":
            return self._resolve(reference)  # one of this side's own namedtuples, coming back
        values = [self.decode(item, depth) for item in self._list(node, depth)]
        if isinstance(reference, dict):
            # The other side's class may have methods: a subclass here reaches them through its reference.
            value = self._resolve({"t": "fallback", "base": cls})(*values)
            value.__dict__["_remote_"] = self._resolve(reference)
            return value
        return cls(*values)


def _mapping_reader(make):
    return lambda decoder, node, depth: decoder._pairs(node, depth, make(decoder, node, depth))


def _ddict(decoder, node, depth):
    factory = decoder.decode(node["factory"], depth)
    if factory is not None and not callable(factory):
        raise WireError("a defaultdict's factory must be callable or None")
    return collections.defaultdict(factory)


_DECODERS = {
    "tuple": lambda d, n, depth: tuple(d.decode(item, depth) for item in d._list(n, depth)),
    "frozenset": lambda d, n, depth: frozenset(d.decode(item, depth) for item in d._list(n, depth)),
    "keys": lambda d, n, depth: dict.fromkeys(d.decode(item, depth) for item in d._list(n, depth)).keys(),
    "values": lambda d, n, depth: dict(enumerate(d.decode(item, depth) for item in d._list(n, depth))).values(),
    "items": lambda d, n, depth: d._pairs(n, depth, {}).items(),
    "dict": _mapping_reader(lambda d, n, depth: {}),
    "odict": _mapping_reader(lambda d, n, depth: collections.OrderedDict()),
    "ddict": _mapping_reader(_ddict),
    "counter": _mapping_reader(lambda d, n, depth: collections.Counter()),
    "int": lambda d, n, depth: int(n["v"], 16) if type(n["v"]) is str else int("not hex"),
    "bytes": lambda d, n, depth: bytes.fromhex(n["v"]),
    "bytearray": lambda d, n, depth: d._register(n, bytearray.fromhex(n["v"])),
    "complex": lambda d, n, depth: complex(*(float(part) for part in d._list(n, depth)[:2])),
    "range": lambda d, n, depth: range(*(d.decode(part, depth) for part in d._list(n, depth))),
    "slice": lambda d, n, depth: slice(*(d.decode(part, depth) for part in d._list(n, depth))),
    "ellipsis": lambda d, n, depth: Ellipsis,
    "fraction": lambda d, n, depth: fractions.Fraction(*(d.decode(part, depth) for part in d._list(n, depth))),
    "decimal": lambda d, n, depth: decimal.Decimal(n["v"]) if type(n["v"]) is str else decimal.Decimal(object()),
    "date": lambda d, n, depth: datetime.date.fromisoformat(n["v"]),
    "datetime": lambda d, n, depth: datetime.datetime.fromisoformat(n["v"]),
    "time": lambda d, n, depth: datetime.time.fromisoformat(n["v"]),
    "timedelta": lambda d, n, depth: datetime.timedelta(*(int(part) for part in d._list(n, depth))),
    "purepath": lambda d, n, depth: pathlib.PurePosixPath(n["v"]),
    "path": lambda d, n, depth: pathlib.PosixPath(n["v"]),
    "ntuple": lambda d, n, depth: d._namedtuple(n, depth),
    "inst": lambda d, n, depth: d._instance(n, depth),
    "std": lambda d, n, depth: resolve_std(n["m"], n["q"]),
}


def _list_reader(decoder, node, depth):
    items: list = []
    return decoder._fill(node, depth, items, items.append)


def _set_reader(decoder, node, depth):
    items: set = set()
    return decoder._fill(node, depth, items, items.add)


def _deque_reader(decoder, node, depth):
    maxlen = node.get("maxlen")
    if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
        raise WireError("a deque's maxlen must be a non-negative int")
    items: collections.deque = collections.deque(maxlen=maxlen)
    return decoder._fill(node, depth, items, items.append)


_DECODERS.update({"list": _list_reader, "set": _set_reader, "deque": _deque_reader})


def plain_value(value, base):
    """The builtin ``base`` value stored in ``value`` (an instance of a subclass), read without its overrides."""
    readers = {
        bool: bool, int: int.__int__, float: float.__float__, complex: complex.__complex__, str: str.__str__,
        bytes: lambda v: bytes.__getitem__(v, slice(None)), bytearray: lambda v: bytearray(memoryview(v)),
        tuple: lambda v: tuple(tuple.__iter__(v)), list: lambda v: list(list.__iter__(v)),
        dict: lambda v: dict(dict.items(v)), set: lambda v: set(set.__iter__(v)),
        frozenset: lambda v: frozenset(frozenset.__iter__(v)),
        collections.OrderedDict: lambda v: collections.OrderedDict(collections.OrderedDict.items(v)),
        collections.Counter: lambda v: collections.Counter(dict(dict.items(v))),
        collections.defaultdict: lambda v: collections.defaultdict(collections.defaultdict.default_factory.__get__(v),
                                                                   dict.items(v)),
        collections.deque: lambda v: collections.deque(collections.deque.__iter__(v), collections.deque.maxlen.__get__(v)),
    }  # fmt: skip
    return readers[base](value)


def value_base(value):
    """The builtin value type ``value`` is an instance of (a subclass crossing by reference), or None."""
    return next((base for base in VALUE_BASES if isinstance(value, base)), None)
