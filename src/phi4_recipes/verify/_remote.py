"""The tests' view of the solution's objects: ``Remote`` proxies, and what the tests' side hands over.

An object of the solution that is not a value (an instance of its class, a function, a generator)
stays in the solution's process; the tests hold a ``Remote`` for it. Calling it, reading or setting
an attribute, iterating, indexing, ``len``, ``in``, ``bool``, ``str``, arithmetic: each is a request
to the solution's process, and what comes back is again a value or a ``Remote``.

Comparisons are where a solution could judge itself, so only plain values are compared here:

- a ``Remote`` never equals a value of the tests (``add(1, 2) == 3`` is False when ``add`` returns an
  object whose ``__eq__`` always says yes). An instance of a subclass of a builtin value type (an
  ``int`` subclass, a ``list`` subclass) is compared by the plain value it stores, read without its
  overrides;
- two of the solution's objects compare as the solution says (``closest(points) == Point(1, 2)`` with
  the solution's ``Point``): the test chose to let the solution's class decide.

The tests' side hands over values, the solution's own objects, and callables (a key function, a
lambda): the solution calls those back here. It serves nothing else: the solution can neither read
an attribute of the tests' objects nor call anything the tests did not pass it.

Standard library, ``_wire`` and ``_peer`` only; the sandboxed program defines them from source.
"""

import operator

from phi4_recipes.verify._peer import ErrorClasses, Peer
from phi4_recipes.verify._wire import InstanceState, WireError

_NO_VALUE = object()


class SolutionError(Exception):
    """The solution raised an exception (rebuilt classes derive from it too), or answered malformed data.

    Raised as an ordinary ``Exception``: whatever the solution raised, a test sees an error, never
    the end of an iteration or an exit of this process.
    """


class Remote:
    """An object that lives in the solution's process."""

    __slots__ = ("_side_", "_id_", "_info_", "__weakref__")

    def __init__(self, side, node: dict):
        object.__setattr__(self, "_side_", side)
        object.__setattr__(self, "_id_", node["id"])
        object.__setattr__(self, "_info_", node)

    def _ask(self, name, *values, ends_iteration=False):
        return self._side_.peer.request("op", *values, name=name, ends_iteration=ends_iteration)

    def _plain(self):
        """The builtin value this object stores, when it is an instance of a builtin value type's subclass."""
        if self._info_.get("base") is None:
            return _NO_VALUE
        return self._side_.peer.request("plain", self)

    def __call__(self, *args, **kwargs):
        return self._side_.peer.request("call", self, args, kwargs)

    def __getattr__(self, name):
        if name in Remote.__slots__:
            raise AttributeError(name)
        return self._side_.peer.request("getattr", self, name)

    def __setattr__(self, name, value):
        self._side_.peer.request("setattr", self, name, value)

    def __delattr__(self, name):
        self._side_.peer.request("delattr", self, name)

    def __next__(self):
        return self._ask("next", self, ends_iteration=True)

    def __exit__(self, kind, error, traceback):
        # The exception itself stays here (a traceback cannot cross); its class says what happened.
        return self._ask("exit", self, kind, None, None)

    def __instancecheck__(self, instance):
        return self._ask("isinstance", instance, self)

    def __subclasscheck__(self, subclass):
        return self._ask("issubclass", subclass, self)

    def __eq__(self, other):
        return _compare(self, other, "eq", operator.eq)

    def __ne__(self, other):
        return _compare(self, other, "ne", operator.ne)

    def __lt__(self, other):
        return _compare(self, other, "lt", operator.lt)

    def __le__(self, other):
        return _compare(self, other, "le", operator.le)

    def __gt__(self, other):
        return _compare(self, other, "gt", operator.gt)

    def __ge__(self, other):
        return _compare(self, other, "ge", operator.ge)


def _compare(remote: Remote, other, name: str, compare):
    if isinstance(other, Remote):
        return remote._ask(name, remote, other)  # both the solution's: its own classes decide
    plain = remote._plain()
    return NotImplemented if plain is _NO_VALUE else compare(plain, other)


def _unary(name):
    return lambda self, *rest: self._ask(name, self, *rest)


def _binary(name):
    return lambda self, other: self._ask(name, self, other)


def _reflected(name):
    return lambda self, other: self._ask(name, other, self)


for _dunder, _op in {"len": "len", "iter": "iter", "bool": "bool", "str": "str", "repr": "repr", "hash": "hash",
                     "format": "format", "contains": "contains", "getitem": "getitem", "setitem": "setitem",
                     "delitem": "delitem", "reversed": "reversed", "dir": "dir", "int": "int", "float": "float",
                     "complex": "complex", "index": "index", "round": "round", "abs": "abs", "neg": "neg",
                     "pos": "pos", "invert": "invert", "enter": "enter"}.items():  # fmt: skip
    setattr(Remote, f"__{_dunder}__", _unary(_op))
for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lshift", "rshift", "and", "or", "xor",
            "divmod"):  # fmt: skip
    setattr(Remote, f"__{_op}__", _binary(_op))
    setattr(Remote, f"__r{_op}__", _reflected(_op))
    if _op != "divmod":
        setattr(Remote, f"__i{_op}__", _binary("i" + _op))


class Missing:
    """Stands in for an entry point the solution does not define: using it fails the test, saying so."""

    def __init__(self, name: str, error: BaseException):
        self.__name__, self._error = name, error

    def __call__(self, *args, **kwargs):
        raise self._error

    def __repr__(self) -> str:
        return f"<missing solution function {self.__name__}>"


def is_tests_instance(obj) -> bool:
    """An instance of a class the tests or their setup define (a ``ListNode``): it crosses by value, its
    ``__dict__`` rebuilt on an object of the solution's class of the same name."""
    kind = type(obj)
    return (kind.__module__ == "__main__" and not isinstance(obj, type) and not callable(obj)
            and isinstance(getattr(obj, "__dict__", None), dict))  # fmt: skip


class TestsSide:
    """What the tests' process exports (callables only), resolves and serves (calls of those only)."""

    __test__ = False  # not a pytest class despite the name

    def __init__(self):
        self.exported: dict[int, object] = {}
        self._ids: dict[int, int] = {}
        self.proxies: dict[int, Remote] = {}
        self._fallbacks: dict = {}
        self.errors = ErrorClasses(marker=SolutionError)
        self.peer: Peer | None = None

    def export(self, obj) -> dict:
        if isinstance(obj, Remote):
            return {"t": "own", "id": obj._id_}
        remote = getattr(obj, "__dict__", {}).get("_remote_") if not isinstance(obj, type) else None
        if isinstance(remote, Remote):  # a namedtuple or an exception rebuilt from one of the solution's
            return {"t": "own", "id": remote._id_}
        if isinstance(obj, type) and issubclass(obj, SolutionError) and hasattr(obj, "_hierarchy_"):
            return {"t": "exc_class", "types": obj._hierarchy_}
        if not callable(obj):
            raise TypeError(f"a {type(obj).__name__} from the tests cannot be passed to the solution: values, "
                            "the solution's own objects and callables cross")  # fmt: skip
        if id(obj) not in self._ids:
            self._ids[id(obj)] = len(self.exported)
            self.exported[len(self.exported)] = obj
        name = getattr(obj, "__name__", type(obj).__name__)
        return {"t": "obj", "id": self._ids[id(obj)], "name": str(name)[:100], "repr": repr(obj)[:200]}

    def resolve(self, node: dict):
        tag = node["t"]
        if tag == "obj":
            if type(node.get("id")) is not int:
                raise WireError("an object reference needs an int id")
            if node["id"] not in self.proxies:
                self.proxies[node["id"]] = Remote(self, node)
            return self.proxies[node["id"]]
        if tag == "own":
            if node.get("id") not in self.exported:
                raise WireError("no such object of the tests")
            return self.exported[node["id"]]
        if tag == "fallback":
            base = node["base"]
            if not isinstance(base, type):
                raise WireError("a fallback needs a class")
            if base not in self._fallbacks:
                self._fallbacks[base] = type(base.__name__, (base,), {"__getattr__": _fallback_attribute})
            return self._fallbacks[base]
        if tag == "inst_class":
            return InstanceState  # an instance of the tests' own class, coming back with its new attributes
        if tag == "exc_class":
            cls = self.errors.build(node["types"])
            if issubclass(cls, SolutionError):
                cls._hierarchy_ = node["types"]
            return cls
        raise WireError(f"unknown reference {tag!r}")

    def serve(self, message: dict, args: list):
        """Run a call the solution makes of a callable the tests passed it; nothing else is served."""
        if message.get("op") != "call" or len(args) != 3:
            raise PermissionError("the tests' objects only answer calls of the callables passed to the solution")
        target, call_args, kwargs = args
        if not any(target is exported for exported in self.exported.values()):
            raise PermissionError("only callables the tests passed to the solution can be called back")
        return target(*call_args, **kwargs)


def _fallback_attribute(self, name):
    remote = self.__dict__.get("_remote_")
    if remote is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(remote, name)
