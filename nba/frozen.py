"""Frozen dataclasses built at the speed of plain ones.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (its own ``__setattr__`` refuses): a global look-up, an
attribute look-up and a generic call per field, about three times what a plain
assignment costs. A decision builds some 40 frozen records (rejections, slots,
priority terms, options, the decision itself), ~230 fields in all, so that took
about a tenth of its CPU. :func:`fast_init` gives such a class an ``__init__``
with the same signature, defaults and ``__post_init__`` call that stores each
field straight into its slot (the slot's own descriptor, held by the function)
or, without slots, into the instance's ``__dict__``: the same object after
construction, as frozen as before. Like ``dataclasses``, it writes that function's
source and runs it once per class, at import: the source holds the class's field
names (public identifiers, checked) and nothing else; no data is ever run.

>>> import dataclasses
>>> @fast_init
... @dataclasses.dataclass(frozen=True, slots=True)
... class Point:
...     x: float
...     y: float = 0.0
...
...     def __post_init__(self) -> None:
...         if self.x < 0:
...             raise ValueError("x must be >= 0")
>>> Point(1.0), Point(2.0, y=3.0) == Point(2.0, 3.0)
(Point(x=1.0, y=0.0), True)
>>> Point(-1.0)
Traceback (most recent call last):
    ...
ValueError: x must be >= 0
>>> Point(1.0).x = 2.0
Traceback (most recent call last):
    ...
dataclasses.FrozenInstanceError: cannot assign to field 'x'
"""

from __future__ import annotations

import dataclasses
import functools
import keyword
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T", bound=type)
R = TypeVar("R")
D = TypeVar("D")

#: The classes :func:`fast_init` gave an ``__init__``.
_FAST_INIT: set[type] = set()

#: The default of a field with a ``default_factory`` (the factory is called in its stead):
#: dataclasses' own marker, which a signature shows as ``<factory>``.
_NOT_GIVEN = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())


def fast_init(cls: T) -> T:
    """Replace the generated ``__init__`` of the frozen dataclass ``cls`` (apply it above
    ``@dataclass``). Fields are positional, with a default or with a ``default_factory``
    (called when the argument is not given, as the generated ``__init__`` does); an
    ``init=False``, keyword-only or ``InitVar`` field raises ``TypeError`` here, at
    import, rather than build a different ``__init__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen dataclasses with an __init__")
    declared = cls.__dict__.get("__dataclass_fields__", {})
    fields = [f for f in declared.values() if f._field_type is dataclasses._FIELD]  # type: ignore[attr-defined]
    if len(fields) != len(declared):
        raise TypeError(f"{cls.__name__}: fast_init does not support InitVar or ClassVar fields")
    slotted = "__slots__" in cls.__dict__
    names: dict[str, Any] = {}
    parameters: list[str] = []
    body: list[str] = []
    for f in fields:
        if not f.name.isidentifier() or keyword.iskeyword(f.name) or f.name.startswith("_"):
            # the source below is made of the field names alone: nothing else is run
            raise TypeError(f"{cls.__name__}: field {f.name!r} is not a plain public name")
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init supports plain fields only")
        if f.default_factory is not dataclasses.MISSING:
            names["_not_given_"] = _NOT_GIVEN
            names[f"_factory_{f.name}"] = f.default_factory
            parameters.append(f"{f.name}=_not_given_")
            body.append(f"if {f.name} is _not_given_: {f.name} = _factory_{f.name}()")
        elif f.default is dataclasses.MISSING:
            parameters.append(f.name)
        else:
            names[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
        if slotted:
            names[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
            body.append(f"_set_{f.name}(self, {f.name})")
        else:
            # a class attribute of a field's name is its default, never a data
            # descriptor that object.__setattr__ would have called
            held = cls.__dict__.get(f.name, dataclasses.MISSING)
            if hasattr(type(held), "__set__"):
                raise TypeError(f"{cls.__name__}.{f.name}: a descriptor, not a plain field")
            body.append(f"_fields_[{f.name!r}] = {f.name}")
    if not slotted:
        body.insert(0, "_fields_ = self.__dict__")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = (
        f"def _make({', '.join(names)}):\n"
        f"    def __init__(self, {', '.join(parameters)}):\n"
        + "".join(f"        {line}\n" for line in body or ["pass"])
        + "    return __init__\n"
    )
    scope: dict[str, Any] = {}
    exec(source, scope)  # built from the field names alone, as dataclasses does
    init = scope["_make"](**names)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    generated = cls.__dict__["__init__"]
    init.__doc__ = generated.__doc__
    init.__annotations__ = dict(generated.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    _FAST_INIT.add(cls)
    return cls


#: The fields of each class :func:`fast_replace` copies by its instance's ``__dict__``
#: (``None``: a class it leaves to ``dataclasses.replace``), checked once per class.
_DICT_COPIED: dict[type, frozenset[str] | None] = {}


def fast_replace(obj: D, /, **changes: Any) -> D:
    """``dataclasses.replace(obj, **changes)``, for a frozen dataclass built by
    :func:`fast_init` without slots, ``__post_init__`` or :class:`computed_once` values, by
    copying the instance's ``__dict__`` (which then holds its fields and nothing else):
    the same object, some fifteen times faster for a class of many fields (a profile's
    54: 0.9 µs against 14). Any other object goes through ``dataclasses.replace``.

    >>> @fast_init
    ... @dataclasses.dataclass(frozen=True)
    ... class Visit:
    ...     page: str
    ...     seconds: float = 0.0
    >>> fast_replace(Visit("cart", 3.0), seconds=9.0)
    Visit(page='cart', seconds=9.0)
    >>> fast_replace(Visit("cart"), minutes=1)
    Traceback (most recent call last):
        ...
    TypeError: Visit has no field 'minutes'
    """
    cls = type(obj)
    if cls not in _DICT_COPIED:
        _DICT_COPIED[cls] = (
            frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            if _dict_copied(cls)
            else None
        )
    fields = _DICT_COPIED[cls]
    if fields is None:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    unknown = changes.keys() - fields
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    copied = object.__new__(cls)
    state = copied.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    return copied


def _dict_copied(cls: type) -> bool:
    """Whether an instance of ``cls`` is its ``__dict__`` of fields alone (see
    :func:`fast_replace`)."""
    return (
        cls in _FAST_INIT
        and "__slots__" not in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and not any(
            isinstance(v, (computed_once, functools.cached_property))
            for klass in cls.__mro__
            for v in vars(klass).values()
        )
    )


class computed_once(Generic[R]):  # noqa: N801 (a decorator, named as cached_property is)
    """``functools.cached_property`` without its lock: the value is computed on the first
    read and stored in the instance's ``__dict__`` (where later reads find it without
    calling here). The standard one takes a re-entrant lock on every first read (Python
    3.11); a decision's records are read by one thread, and a value computed twice by
    two would be the same value.

    >>> class Moment:
    ...     calls = 0
    ...     @computed_once
    ...     def hour(self) -> int:
    ...         Moment.calls += 1
    ...         return 9
    >>> m = Moment()
    >>> m.hour, m.hour, Moment.calls
    (9, 9, 1)
    """

    def __init__(self, function: Callable[[Any], R]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> computed_once[R]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> R: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


V = TypeVar("V")


class IdentityMemo(Generic[V]):
    """A value computed once per tuple of objects that cannot be hashed (a contact policy,
    a frozen model holding a dict), looked up by their identities. Each entry holds its
    objects, so an identity is not reused while it is kept; the memo starts again once it
    holds ``size`` entries (objects made by the hundred, as tests do).

    >>> memo: IdentityMemo[int] = IdentityMemo()
    >>> a, b = {"x": 1}, {"x": 1}
    >>> memo.get((a,), len, a), memo.get((a,), lambda _: 99, a), memo.get((b,), lambda _: 7, b)
    (1, 1, 7)
    """

    __slots__ = ("_held", "size")

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._held: dict[tuple[int, ...], tuple[tuple[object, ...], V]] = {}

    def get(self, keys: tuple[object, ...], make: Callable[..., V], *args: Any) -> V:
        """The value kept for ``keys``, else ``make(*args)``, kept."""
        key = tuple(map(id, keys))
        held = self._held.get(key)
        if held is not None and all(x is y for x, y in zip(held[0], keys, strict=True)):
            return held[1]
        if len(self._held) >= self.size:
            self._held.clear()
        value = make(*args)
        self._held[key] = (keys, value)
        return value
