"""The columnar reader equals the definition: ``read_profiles`` of many customers'
states gives, field by field and to the bit, what ``build_profile`` gives each one."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.batch import estimate_priors, estimate_priors_columns
from features.columnar import ColumnarState
from features.definitions import field_name
from features.finalise import ChannelPrior, CustomerStatic, FeaturePriors, build_profile
from features.profile_columns import read_profiles
from nba.channels import Channel

AS_OF = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
NOW = int(AS_OF.timestamp())
DAY, HOUR = 86_400, 3_600
TODAY = NOW // DAY
CHANNELS = [c.value for c in Channel]
CONSENT = ["email", "sms", "push", "whatsapp"]
PRODUCTS = ["P1", "P2", "P10", "P3", "Pz"]
CATEGORIES = ["shoes", "bags", "Beauty", "home"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]

counts = st.integers(0, 6).map(float)
amounts = st.floats(0, 500, allow_nan=False, allow_infinity=False)
# around now: the past three months, a few seconds to days into the future
moments = st.integers(NOW - 95 * DAY, NOW + 2 * DAY).map(float)
days = st.integers(TODAY - 100, TODAY + 1)


def keyed(family: str, keys: st.SearchStrategy[str], values: st.SearchStrategy[float]):  # type: ignore[no-untyped-def]
    return st.dictionaries(keys.map(lambda k: f"{family}:{k}"), values, max_size=6)


def _register(scale: int, codes: st.SearchStrategy[int]) -> st.SearchStrategy[float]:
    return st.tuples(moments, codes).map(lambda tc: tc[0] * scale + tc[1])


scalars = st.fixed_dictionaries(
    {},
    optional={
        "n": counts,
        "t0": moments,
        "tv": moments,
        "tp": moments,
        "tf": moments,
        "td": moments,
        "cc": moments,
        "cl": moments,
        "co": moments,
        "np": st.integers(0, 5).map(float),
        "rv": amounts,
        "pp": counts,
        "pn": counts,
        "lt": _register(8, st.integers(0, 4)),
        "lm": st.integers(0, 4).map(float),  # the highest tier held: a tier lost reads as one
        "ph": _register(1024, st.sampled_from([471, 200, 24])),
    },
)
channel_day = st.tuples(st.sampled_from(CHANNELS), days).map(lambda cd: f"{cd[0]}|{cd[1]}")
channel_hour = st.tuples(st.sampled_from(CHANNELS), st.integers(-40 * 24, 30)).map(
    lambda ch: f"{ch[0]}|{NOW // HOUR + ch[1]}"
)
parts = st.tuples(
    scalars,
    keyed("pd", days.map(str), counts),
    keyed("rd", days.map(str), amounts),
    keyed("pm", st.integers(1, 12).map(str), counts),
    # shopping days over two years: enough of them for seasonality
    st.dictionaries(
        st.integers(TODAY - 730, TODAY).map(lambda d: f"ad:{d}"), st.just(1.0), max_size=60
    ),
    keyed("c", st.sampled_from(CATEGORIES), amounts),
    keyed("b", st.sampled_from(["acme", "zeta", "Nova"]), amounts),
    keyed("h", st.integers(0, 167).map(str), counts),
    *(keyed(f, st.sampled_from(CHANNELS), counts) for f in ("es", "ed", "eo", "ek")),
    keyed("kd", channel_day, st.just(1.0)),
    keyed("xh", channel_hour, counts),
    # the second of each hour's last contact (some with no count, or out of range)
    keyed("xm", channel_hour, st.sampled_from([0.0, 1.0, 59.0, 1234.5, 3599.0, 3600.0, -1.0])),
    keyed("xd", channel_day, counts),
    keyed("xl", st.sampled_from(CHANNELS), moments),
    keyed("xr", st.sampled_from(CHANNELS), moments),
    keyed("g", st.sampled_from(CONSENT), _register(8, st.integers(0, 1))),
    keyed("pc", st.sampled_from(CHANNELS), moments),
    *(keyed(f, st.sampled_from(PRODUCTS), moments) for f in ("ca", "cr", "cb", "v")),
    # purchases by product and day (``cb`` as earlier versions kept it, above, beside them)
    keyed(
        "bp", st.tuples(st.sampled_from(PRODUCTS), days).map(lambda p: f"{p[0]}|{p[1]}"), moments
    ),
    keyed("cv", st.sampled_from(PRODUCTS), amounts),
    keyed("vc", st.sampled_from(CATEGORIES), moments),
    keyed("vm", st.integers(-30, 2).map(lambda h: str(NOW // HOUR + h)), amounts),
    # a product's longest view on its last local day: day * 4096 + seconds
    keyed(
        "vs",
        st.sampled_from(PRODUCTS),
        st.tuples(days, st.integers(0, 3600)).map(lambda ds: ds[0] * 86400.0 + ds[1]),
    ),
)


@st.composite
def states(draw: st.DrawFn) -> dict[str, float]:
    """A state as a store would hold it: families in a drawn order (the reader must
    sum in the state's order, as the definition does)."""
    families = list(draw(parts))
    order = draw(st.permutations(range(len(families))))
    state: dict[str, float] = {}
    for i in order:
        state.update(families[i])
    return state


customers = st.lists(
    st.tuples(
        states(),
        st.sampled_from(ZONES),
        st.one_of(st.none(), st.dates(dt.date(1950, 1, 1), dt.date(2008, 12, 31))),
        st.integers(-3 * DAY, 0),  # read a little before AS_OF (point in time) or at it
    ),
    min_size=1,
    max_size=5,
)
PRIORS = FeaturePriors(
    channels={
        "*": {"email": ChannelPrior(0.3, 0.05, 0.2), "sms": ChannelPrior(0.1, 0.02, 0.05)},
        "gold": {"email": ChannelPrior(0.5, 0.1, 0.3)},
    },
    promo_share=0.25,
    new_product_share=0.15,
    month_activity=(0.8, 0.9, 1.0, 1.1, 1.2, 1.0, 0.9, 0.8, 1.0, 1.1, 1.3, 1.9),
)


def columns_of(flat: list[dict[str, float]]) -> tuple[np.ndarray, ...]:
    """``(entity, field, value, families, keys)`` of flat states, each in its own order."""
    code: dict[str, int] = {}
    entity, field, value = [], [], []
    for i, state in enumerate(flat):
        for name, x in state.items():
            entity.append(i)
            field.append(code.setdefault(name, len(code)))
            value.append(x)
    names = list(code)
    return (
        np.array(entity, dtype=np.int64),
        np.array(field, dtype=np.int64),
        np.array(value, dtype=float),
        np.array([n.partition(":")[0] for n in names], dtype=object),
        np.array([n.partition(":")[2] for n in names], dtype=object),
    )


@settings(max_examples=150, deadline=None)
@given(customers=customers)
def test_columnar_profiles_equal_the_definition_field_by_field(customers) -> None:  # type: ignore[no-untyped-def]
    flat = [state for state, _, _, _ in customers]
    ids = [f"C{i}" for i in range(len(customers))]
    statics = [CustomerStatic(timezone=zone, birth_date=birth) for _, zone, birth, _ in customers]
    moments_read = [AS_OF + dt.timedelta(seconds=s) for _, _, _, s in customers]
    got = read_profiles(*columns_of(flat), ids, statics, moments_read, PRIORS)
    for cid, state, static, at, profile in zip(ids, flat, statics, moments_read, got, strict=True):
        expected = build_profile(cid, state, at, static, PRIORS)
        for f in dataclasses.fields(expected):
            assert getattr(profile, f.name) == getattr(expected, f.name), f.name
        assert profile == expected


def test_a_customer_without_state_reads_as_the_empty_profile() -> None:
    empty = np.zeros(0, dtype=np.int64)
    none = np.zeros(0, dtype=object)
    got = read_profiles(
        empty, empty, np.zeros(0), none, none, ["C1"], [CustomerStatic()], [AS_OF], PRIORS
    )
    assert got == [build_profile("C1", {}, AS_OF, CustomerStatic(), PRIORS)]


def test_seasonal_buyers_are_read_as_the_definition_reads_them() -> None:
    """Ten shopping days in each of two Aprils and few elsewhere: seasonal in April."""
    april = [dt.date(y, 4, d) for y in (2024, 2025) for d in range(1, 11)]
    other = [dt.date(2024, m, 15) for m in range(5, 13)] + [dt.date(2025, m, 15) for m in (1, 6)]
    epoch = dt.date(1970, 1, 1)
    state = {f"ad:{(d - epoch).days}": 1.0 for d in april + other}
    state["t0"] = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    got = read_profiles(*columns_of([state]), ["C1"], [CustomerStatic()], [AS_OF], PRIORS)
    expected = build_profile("C1", state, AS_OF, CustomerStatic(), PRIORS)
    assert expected.seasonal_months == (4,)
    assert got == [expected]


@settings(max_examples=40, deadline=None)
@given(flat=st.lists(states(), min_size=1, max_size=6))
def test_priors_from_columns_equal_the_priors_of_flat_states(flat) -> None:  # type: ignore[no-untyped-def]
    # messages by the hundred: segments reach the 200 messages a prior rests on
    flat = [
        {k: v * 100 if k[:3] in ("es:", "ed:", "eo:", "ek:") else v for k, v in s.items()}
        for s in flat
    ]
    entity, field, value, families, keys = columns_of(flat)
    names = np.array([field_name(f, k) for f, k in zip(families, keys, strict=True)], dtype=object)
    order = np.lexsort((field, entity))
    combined = ColumnarState(entity[order], field[order], value[order], names, families, keys)
    states = {f"C{i}": state for i, state in enumerate(flat) if state}
    expected = estimate_priors(states)
    owners = np.array([f"C{i}" for i in range(len(flat))], dtype=object)
    assert estimate_priors_columns(combined, owners) == expected


def test_a_build_combined_in_processes_equals_one_combined_here(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Split by customer over forked processes, the states, priors and profiles are the
    same as one process gives, to the bit (keys are coded in text order)."""
    from features import batch
    from features.dataset import RetailDataset
    from simulator import SimulatorConfig, simulate

    sim = simulate(SimulatorConfig(n_customers=150, days=20, seed=4, n_products=80))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    one = batch.build_profiles(data, workers=1)
    monkeypatch.setattr(batch, "PARALLEL_MIN_EVENTS", 0)
    split = batch.build_profiles(data, workers=3)
    assert dict(split.states) == dict(one.states)
    # each customer's fields in the same order (the order sums are taken in)
    assert all(list(split.states[c]) == list(state) for c, state in one.states.items())
    assert split.priors == one.priors
    assert split.profiles == one.profiles
