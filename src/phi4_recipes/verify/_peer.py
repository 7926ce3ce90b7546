"""One end of the code oracle's channel: requests and replies as JSON lines, objects by reference, calls both ways.

Both the solution's process and the tests' process hold a ``Peer``. A request is ``{"op": ..., ...}``;
its reply is ``{"ok": value, "sync": [[cid, contents], ...]}`` or ``{"err": exception}``. While a peer
waits for a reply it serves the requests that arrive meanwhile, so a call may call back (the solution
calling a key function the tests passed in) to any depth. What a side *serves* is its own policy
(``serve``); the tests' side answers nothing but calls of the callables it handed over.

Values cross with ``_wire``. A mutable container passed as an argument is rebuilt on the other side;
when the call changed it, the reply carries its new state (``sync``) and the caller updates its own
container in place, so ``sort_in_place(nums)`` changes the tests' ``nums``. An exception crosses
with its class hierarchy (module, name and bases of every class in its MRO) and is rebuilt with the
receiving side's own standard-library classes (``json.JSONDecodeError`` is still a ``ValueError``);
classes the standard library lacks are made afresh, with the same names and bases.

Standard library and ``_wire`` only: the sandboxed programs define this module from its source.
"""

import json
import os
import threading

from phi4_recipes.verify._wire import Decoder, Encoder, InstanceState, WireError, resolve_std, std_name

MAX_MESSAGE_BYTES = 64 << 20
SOLUTION_GONE = "the solution's process ended before answering"
_MAX_TEXT = 500
# Raised by a call on the other side, these would be control flow here, not an error: StopIteration
# ends map() and all() as if the iteration were over; the others stop the interpreter or a generator.
CONTROL_FLOW = (StopIteration, StopAsyncIteration, GeneratorExit, KeyboardInterrupt, SystemExit)


class ChannelClosed(BaseException):
    """The other process closed the channel: it exited, crashed or was killed.

    A BaseException, like the ones below: a test's ``except Exception`` must not take a dead solution
    for the error it expected.
    """


class ProtocolError(BaseException):
    """The other process sent something that is not a message of this protocol, or a value this codec does not write."""


def hierarchy(cls: type) -> list:
    """``cls``'s MRO as ``[module, qualname, [indices of its direct bases]]`` entries, ``cls`` first."""
    mro = cls.__mro__
    return [[str(entry.__module__), str(entry.__qualname__), [mro.index(base) for base in entry.__bases__ if base in mro]]
            for entry in mro]  # fmt: skip


def error_node(error: BaseException, encode_value, export=None) -> dict:
    """``error`` as a message: its class hierarchy, its args (as values where they are), its text."""
    types = hierarchy(type(error))
    args = []
    for arg in error.args[:8]:
        try:
            args.append(encode_value(arg))
        except (TypeError, WireError, ValueError, RecursionError):
            args.append(_text(repr, arg))
    attrs = {}
    for name, value in list(getattr(error, "__dict__", {}).items())[:32]:
        try:
            attrs[str(name)] = encode_value(value)  # JSONDecodeError.pos, an OSError's filename...
        except (TypeError, WireError, ValueError, RecursionError):
            continue
    node = {"types": types, "args": args, "attrs": attrs, "text": _text(str, error)}
    if export is not None and std_name(type(error)) is None:
        try:
            node["obj"] = export(error)  # its own attributes stay reachable (``error.code``)
        except TypeError:
            pass
    return node


def _text(render, value) -> str:
    try:
        return render(value)[:_MAX_TEXT]
    except BaseException as error:  # noqa: BLE001 - a broken __str__ still leaves a message
        return f"<{type(value).__name__}: {type(error).__name__} while rendering>"


class ErrorClasses:
    """Rebuilds exception classes from ``error_node`` hierarchies, once per hierarchy (so ``except`` matches).

    Args:
        marker (type | None): the tests' ``SolutionError``: every rebuilt class also derives from it, and
            nothing rebuilt acts as control flow here (StopIteration would end ``all(map(f, xs))`` as if
            every item passed; SystemExit would end the tests): such an exception arrives as a plain
            ``marker``. None (the solution's side) rebuilds standard classes as themselves.
    """

    def __init__(self, marker=None):
        self.marker = marker
        self._cache: dict = {}

    def _is_control_flow(self, cls) -> bool:
        return self.marker is not None and (not issubclass(cls, Exception) or issubclass(cls, CONTROL_FLOW))

    def build(self, types: list):
        """The class standing for the first entry of ``types``; each class once, so ``except`` matches."""
        if type(types) is not list or not types or not all(type(entry) is list and len(entry) == 3 for entry in types):
            raise WireError("an exception needs its class hierarchy")
        keys: list = [None] * len(types)
        for index in range(len(types) - 1, -1, -1):
            module, qualname, bases = types[index]
            if type(bases) is not list or not all(type(i) is int and index < i < len(types) for i in bases):
                raise WireError("an exception's bases must come after it in its hierarchy")
            keys[index] = (str(module), str(qualname), tuple(keys[i] for i in bases))
            if keys[index] not in self._cache:
                self._cache[keys[index]] = self._one(module, qualname, [self._cache[keys[i]] for i in bases])
        found = self._cache[keys[0]]
        if self.marker is None or issubclass(found, self.marker):
            return found
        # A standard exception the solution raised: a subclass of it that is also marked.
        if ("marked", keys[0]) not in self._cache:
            self._cache[("marked", keys[0])] = self._one("solution", found.__name__, [found])
        return self._cache[("marked", keys[0])]

    def _one(self, module, qualname, parents):
        if (module, qualname) == ("builtins", "object"):
            return object
        std = _std_class(module, qualname)
        if std is not None and module != "solution":
            return std
        parents = [self.marker if self._is_control_flow(parent) else parent for parent in parents
                   if isinstance(parent, type) and issubclass(parent, BaseException)]  # fmt: skip
        if self.marker is not None and not any(issubclass(parent, self.marker) for parent in parents):
            parents.append(self.marker)
        name = str(qualname).rsplit(".", 1)[-1]
        namespace = {"__module__": "solution", "__str__": _original_text, "__getattr__": _remote_attribute}
        for attempt in (parents, parents[-1:], [self.marker or Exception]):
            try:
                return type(name if name.isidentifier() else "SolutionException", tuple(dict.fromkeys(attempt)) or (Exception,),
                            namespace)  # fmt: skip
            except TypeError:  # incompatible layouts (two builtin bases) or an impossible MRO
                continue
        raise WireError("no class can stand for this exception")

    def instance(self, node: dict, decode_value, resolve=None) -> BaseException:
        """The exception ``node`` describes, rebuilt here."""
        types = node.get("types")
        text = node.get("text") if isinstance(node.get("text"), str) else ""
        top = _std_class(*types[0][:2]) if type(types) is list and types and type(types[0]) is list and len(types[0]) == 3 else None
        if top is not None and self._is_control_flow(top):
            return self.marker(f"the solution raised {top.__name__}: {text}")
        cls = self.build(types)
        args = tuple(decode_value(arg) if not isinstance(arg, str) else arg for arg in node.get("args", [])[:8])
        try:
            error = cls(*args)
        except Exception:  # noqa: BLE001 - constructors that take other arguments (UnicodeDecodeError)
            error = BaseException.__new__(cls)
            error.args = args
        attrs = node.get("attrs")
        for name, value in (attrs.items() if type(attrs) is dict else ()):
            if name.isidentifier() and not name.startswith("_"):
                error.__dict__[name] = decode_value(value)
        if cls.__module__ == "solution":
            error.__dict__["_original_text_"] = text
            if resolve is not None and isinstance(node.get("obj"), dict):
                error.__dict__["_remote_"] = resolve(node["obj"])
        return error


def _std_class(module, qualname):
    """The standard library's exception class ``module.qualname``, or None."""
    try:
        return resolve_std(module, qualname, exception_class=True)
    except WireError:
        return None


def _original_text(self) -> str:
    return self.__dict__.get("_original_text_", None) or BaseException.__str__(self)


def _remote_attribute(self, name):
    remote = self.__dict__.get("_remote_")
    if remote is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(remote, name)


class Peer:
    """One end of the channel.

    Args:
        read_fd, write_fd (int): the pipe ends this side reads requests/replies from and writes to.
        export: hook ``export(obj) -> dict`` for objects that are not values (raises TypeError to refuse).
        resolve: hook ``resolve(node) -> object`` for ``"obj"``, ``"own"``, ``"fallback"``, ``"inst_class"``
            and ``"exc_class"`` references.
        serve: hook ``serve(message, args) -> value`` that answers one request of the other side (``args``
            decoded).
        errors (ErrorClasses): how exceptions from the other side are rebuilt.
        instances: predicate for objects this side sends by value as instances (the tests' ``ListNode``).
    """

    def __init__(self, read_fd, write_fd, *, export, resolve, serve, errors, instances=None):
        self._in = os.fdopen(read_fd, "rb")
        self._out = os.fdopen(write_fd, "wb")
        self.export, self.resolve, self.serve, self.errors = export, resolve, serve, errors
        self.instances = instances
        self.lock = threading.RLock()  # one round trip at a time when the solution uses threads

    # -- messages -----------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        data = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        try:
            self._out.write(data)
            self._out.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise ChannelClosed("the other side closed the channel") from None

    def receive(self) -> dict:
        line = self._in.readline(MAX_MESSAGE_BYTES + 1)
        if not line:
            raise ChannelClosed("the other side closed the channel")
        if not line.endswith(b"\n"):
            raise ProtocolError(f"a message longer than {MAX_MESSAGE_BYTES} bytes")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise ProtocolError(f"malformed message: {line[:100]!r}") from None
        if type(message) is not dict:
            raise ProtocolError(f"malformed message: {line[:100]!r}")
        return message

    def close(self) -> None:
        for stream in (self._out, self._in):
            try:
                stream.close()
            except OSError:
                pass

    # -- calls out ----------------------------------------------------------------------------------
    def request(self, op: str, *values, ends_iteration: bool = False, **fields):
        """Send request ``op`` with ``values`` (encoded as its ``args``) and wait for its reply, serving meanwhile.

        Containers among ``values`` that the other side changed are updated here in place. With
        ``ends_iteration`` (a ``next`` of an iterator), a StopIteration there is one here.
        """
        with self.lock:
            encoder = Encoder(self.export, instances=self.instances)
            message = {"op": op, "args": [encoder.encode(value) for value in values], **fields}
            self.send(message)
            while True:
                reply = self.receive()
                if "op" in reply:
                    self._answer(reply)
                    continue
                return self._result(reply, encoder.containers, ends_iteration)

    def _result(self, reply: dict, sent: dict, ends_iteration: bool = False):
        try:
            return self._decode_result(reply, sent, ends_iteration)
        except WireError as error:
            raise ProtocolError(f"malformed reply: {error}") from None

    def _decode_result(self, reply: dict, sent: dict, ends_iteration: bool):
        decoder = Decoder(self.resolve, back=sent)
        if "err" in reply:
            node = reply["err"]
            if type(node) is not dict:
                raise ProtocolError("malformed error reply")
            types = node.get("types")
            if ends_iteration and type(types) is list and types and type(types[0]) is list \
                    and types[0][:2] == ["builtins", "StopIteration"]:
                raise StopIteration
            raise self.errors.instance(node, decoder.decode, self.resolve)
        if "ok" not in reply:
            raise ProtocolError("a reply needs 'ok' or 'err'")
        value = decoder.decode(reply["ok"])
        sync = reply.get("sync", [])
        if type(sync) is not list or not all(type(entry) is list and len(entry) == 2 for entry in sync):
            raise WireError("a reply's sync must be [cid, contents] pairs")
        updates = [(sent[cid], decoder.decode(contents)) for cid, contents in sync if type(cid) is int and cid in sent]
        for original, new in updates:
            try:
                _update_in_place(original, new)
            except (TypeError, AttributeError, ValueError) as error:
                raise WireError(f"cannot give an argument its new contents: {error}") from None
        return value

    # -- calls in -----------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Answer requests until the other side closes the channel."""
        while True:
            try:
                message = self.receive()
            except ChannelClosed:
                return
            if "op" in message:
                with self.lock:
                    self._answer(message)

    def _answer(self, message: dict) -> None:
        decoder = Decoder(self.resolve)
        try:
            if type(message.get("args", [])) is not list:
                raise WireError("a request's args must be a list")
            args = [decoder.decode(node) for node in message.get("args", [])]
            before = {cid: _snapshot(self.export, obj, decoder.containers) for cid, obj in decoder.containers.items()}
            value = self.serve(message, args)
        except BaseException as error:  # noqa: BLE001 - whatever the call raised is its answer
            if isinstance(error, (ChannelClosed, ProtocolError)):
                raise
            try:
                node = error_node(error, Encoder(self.export).encode, self.export)
            except BaseException as inner:  # noqa: BLE001 - an exception that cannot be described still fails
                node = {"types": [["builtins", "RuntimeError", []]], "args": [], "text": _text(str, inner)}
            self.send({"err": node})
            return
        self._reply(value, decoder.containers, before)

    def _reply(self, value, received: dict, before: dict) -> None:
        back = {id(obj): cid for cid, obj in received.items()}
        try:
            encoder = Encoder(self.export, back, self.instances)
            reply = {"ok": encoder.encode(value)}
            changed = [cid for cid, obj in received.items() if _snapshot(self.export, obj, received) != before[cid]]
            if changed:
                reply["sync"] = [[cid, encoder.contents(received[cid])] for cid in changed]
        except (TypeError, WireError, ValueError, RecursionError) as error:
            reply = {"err": error_node(error, lambda arg: _text(str, arg))}
        self.send(reply)


def _snapshot(export, container, received: dict):
    """``container``'s contents as they would be sent back, to tell whether a call changed them."""
    back = {id(obj): cid for cid, obj in received.items()}
    try:
        return Encoder(export, back).contents(container)
    except (TypeError, WireError, ValueError, RecursionError):
        return object()  # equal to nothing: the reply then tries to send it, and says why it cannot


def _update_in_place(original, new) -> None:
    """Give ``original`` the contents of ``new`` (same kind), keeping its identity."""
    if isinstance(new, InstanceState):  # one of the tests' objects the solution received by value
        vars(original).clear()
        vars(original).update(new)
    elif isinstance(original, list | bytearray):
        original[:] = new
    elif isinstance(original, dict):
        original.clear()
        for key, value in dict.items(new):
            original[key] = value  # item by item: Counter.update would add counts
    elif isinstance(original, set):
        original.clear()
        original.update(new)
    else:  # deque
        original.clear()
        original.extend(new)
