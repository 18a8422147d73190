"""nba.frozen.fast_init: the same objects as the generated ``__init__``, as frozen."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil

import pytest

import nba
from nba.frozen import fast_init


def _twins(slots: bool) -> tuple[type, type]:
    """The same frozen dataclass twice, the second with :func:`fast_init`."""

    def make() -> type:
        @dataclasses.dataclass(frozen=True, slots=slots)
        class Record:
            name: str
            score: float = 0.5
            tags: tuple[str, ...] = ()
            seen: dict[str, int] = dataclasses.field(default_factory=dict)

            def __post_init__(self) -> None:
                if self.score < 0:
                    raise ValueError(f"score {self.score} < 0")

        return Record

    return make(), fast_init(make())


@pytest.mark.parametrize("slots", [True, False])
def test_fast_init_builds_what_the_generated_init_builds(slots: bool) -> None:
    plain, fast = _twins(slots)
    assert str(inspect.signature(fast)) == str(inspect.signature(plain))
    for args, kwargs in [
        (("a",), {}),
        (("a", 1.5), {}),
        (("a",), {"tags": ("x",)}),
        (("a", 2.0, ("y",), {"k": 1}), {}),
        ((), {"name": "b", "seen": {"z": 2}}),
    ]:
        expected, got = plain(*args, **kwargs), fast(*args, **kwargs)
        assert repr(got) == repr(expected)
        assert dataclasses.astuple(got) == dataclasses.astuple(expected)
        assert dataclasses.replace(got, score=3.0) == fast(got.name, 3.0, got.tags, got.seen)
    # a default_factory gives each instance its own object
    assert fast("a").seen is not fast("a").seen
    # __post_init__ runs after every field is set
    with pytest.raises(ValueError, match="score -1"):
        fast("a", -1.0)
    # as frozen as before, and the errors the generated __init__ raises for bad calls
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast("a").score = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        fast("a", nope=1)  # type: ignore[call-arg]


def test_fast_init_refuses_what_it_does_not_build() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Hidden:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    @dataclasses.dataclass(frozen=True)
    class Keyword:
        x: int
        y: int = dataclasses.field(default=0, kw_only=True)

    @dataclasses.dataclass(frozen=True)
    class WithInitVar:
        x: int
        y: dataclasses.InitVar[int] = 0

    @dataclasses.dataclass(frozen=True)
    class Private:
        _x: int

    for cls in (Mutable, Hidden, Keyword, WithInitVar, Private):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_every_fast_init_class_of_the_core_keeps_its_dataclass_signature() -> None:
    """Each class of ``nba`` given :func:`fast_init` takes its fields, in order, with their
    defaults, as ``@dataclass`` would have it."""
    found = 0
    for info in pkgutil.walk_packages(nba.__path__, "nba."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            init = cls.__dict__.get("__init__")
            if init is None or getattr(init, "__code__", None) is None:
                continue
            if init.__code__.co_qualname != "_make.<locals>.__init__":  # fast_init's own
                continue
            found += 1
            parameters = list(inspect.signature(cls).parameters.values())
            fields = dataclasses.fields(cls)
            assert [p.name for p in parameters] == [f.name for f in fields], cls
            for p, f in zip(parameters, fields, strict=True):
                if f.default is not dataclasses.MISSING:
                    assert p.default is f.default, (cls, f.name)
                elif f.default_factory is dataclasses.MISSING:
                    assert p.default is inspect.Parameter.empty, (cls, f.name)
    assert found >= 20


def test_a_fast_init_record_of_the_core_pickles_as_before() -> None:
    """Batch workers hand their decisions back pickled."""
    from nba.reasons import ReasonCode, Rejection

    rejection = Rejection("a", None, ReasonCode.NOT_ELIGIBLE, "why")
    assert pickle.loads(pickle.dumps(rejection)) == rejection
