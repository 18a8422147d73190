"""Customer and product features as weighted tags, and tags as sparse matrices.

A hybrid recommender describes each customer and product by a few tags
(``gender=female``, ``age=35-44``, ``category=shoes``, ``price=band3``...).
The encoders learn what they need from the training tables (bin edges,
frequent attribute values) and then turn *any* row into tags, including rows of
customers and products never seen in training: that is what gives cold-start
recommendations.

>>> import pandas as pd
>>> products = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["shoes", "books"],
...     "brand": ["A", None], "price": [80.0, 12.0],
...     "launch_date": pd.to_datetime(["2026-01-01", "2020-01-01"]),
...     "attributes": ['{"genres": ["Drama", "War"], "release_year": 1994}', None]})
>>> enc = ProductEncoder().fit(products)
>>> tags = enc.tags(products, pd.Timestamp("2026-01-20", tz="UTC"))[0]
>>> sorted(tags)  # doctest: +NORMALIZE_WHITESPACE
['brand=A', 'category=shoes', 'genres=Drama', 'genres=War', 'new=0-30d', 'price=band5',
 'release_year=1990s']
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

Tags = dict[str, float]

#: Age bands, years (lower bounds).
AGE_BANDS: tuple[int, ...] = (0, 25, 35, 45, 55, 65)
#: Newness bands of a product, days since launch (lower bounds).
NEWNESS_BANDS: tuple[int, ...] = (0, 30, 90, 365)
#: Attribute values kept as tags when an attribute has at most this many distinct values.
MAX_ATTRIBUTE_LEVELS = 50
#: Numeric attributes (and prices) are cut into this many quantile bands.
N_BANDS = 5


def _band(value: float, lower_bounds: Sequence[float], labels: Sequence[str]) -> str:
    i = int(np.searchsorted(np.asarray(lower_bounds), value, side="right")) - 1
    return labels[max(i, 0)]


def _band_labels(bounds: Sequence[int], unit: str = "") -> list[str]:
    out = []
    for lo, hi in zip(bounds, [*bounds[1:], None], strict=True):
        out.append(f"{lo}-{hi}{unit}" if hi is not None else f"{lo}+{unit}")
    return out


def _parse(text: object) -> dict[str, object]:
    if isinstance(text, str) and text.strip():
        value = json.loads(text)
        return value if isinstance(value, dict) else {}
    return {}


@dataclass
class AttributeEncoder:
    """Tags from the free-form ``attributes`` JSON column.

    Lists of text give one tag per element; low-cardinality text gives one tag;
    ``*year`` numbers give a decade; other numbers give quantile bands; text
    with too many distinct values (zip codes, names) is dropped.
    """

    max_levels: int = MAX_ATTRIBUTE_LEVELS
    exclude: frozenset[str] = frozenset()
    text_keys: set[str] = field(default_factory=set)
    list_keys: set[str] = field(default_factory=set)
    numeric_edges: dict[str, np.ndarray] = field(default_factory=dict)

    def fit(self, column: pd.Series | None) -> AttributeEncoder:
        if column is None:
            return self
        levels: dict[str, set[str]] = {}
        numbers: dict[str, list[float]] = {}
        for attrs in map(_parse, column.to_numpy(dtype=object)):
            for key, value in attrs.items():
                if key in self.exclude:
                    continue
                if isinstance(value, list):
                    self.list_keys.add(key)
                elif isinstance(value, bool):
                    levels.setdefault(key, set()).add(str(value))
                elif isinstance(value, int | float):
                    numbers.setdefault(key, []).append(float(value))
                elif isinstance(value, str):
                    levels.setdefault(key, set()).add(value)
        self.text_keys = {k for k, v in levels.items() if len(v) <= self.max_levels}
        for key, values in numbers.items():
            if key.endswith("year"):
                self.numeric_edges[key] = np.array([])
            else:
                qs = np.quantile(values, np.linspace(0, 1, N_BANDS + 1)[1:-1])
                self.numeric_edges[key] = np.unique(qs)
        return self

    def tags(self, text: object) -> Tags:
        out: Tags = {}
        for key, value in _parse(text).items():
            if key in self.list_keys and isinstance(value, list):
                for item in value:
                    out[f"{key}={item}"] = 1.0
            elif key in self.text_keys and isinstance(value, str | bool):
                out[f"{key}={value}"] = 1.0
            elif key in self.numeric_edges and isinstance(value, int | float):
                edges = self.numeric_edges[key]
                if key.endswith("year"):
                    out[f"{key}={int(value) // 10 * 10}s"] = 1.0
                else:
                    out[f"{key}=band{int(np.searchsorted(edges, value, side='right')) + 1}"] = 1.0
        return out


@dataclass
class CustomerEncoder:
    """Customer tags: gender, city, loyalty tier, age band, declared channel, attributes."""

    attributes: AttributeEncoder = field(
        default_factory=lambda: AttributeEncoder(exclude=frozenset({"age"}))
    )
    cities: set[str] = field(default_factory=set)

    def fit(self, customers: pd.DataFrame) -> CustomerEncoder:
        self.attributes.fit(customers.get("attributes"))
        if "city" in customers:
            counts = customers["city"].dropna().astype(str).value_counts()
            self.cities = set(counts.index[: MAX_ATTRIBUTE_LEVELS * 4])
        return self

    def tags(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> list[Tags]:
        n = len(customers)
        labels = _band_labels(AGE_BANDS)

        def column(name: str) -> np.ndarray:
            if name in customers:
                return customers[name].to_numpy(dtype=object)
            return np.full(n, None, dtype=object)

        births = (
            pd.to_datetime(customers["birth_date"], errors="coerce")
            if "birth_date" in customers
            else pd.Series([pd.NaT] * n)
        )
        ref = as_of.tz_convert(None) if as_of.tzinfo else as_of
        ages = ((ref - births.dt.tz_localize(None)) / pd.Timedelta(days=365.25)).to_numpy(
            dtype=float
        )
        out: list[Tags] = []
        for i, (gender, city, tier, channel, attrs) in enumerate(
            zip(
                column("gender"),
                column("city"),
                column("loyalty_tier"),
                column("preferred_channel"),
                column("attributes"),
                strict=True,
            )
        ):
            tags: Tags = {}
            if isinstance(gender, str) and gender not in ("", "unknown"):
                tags[f"gender={gender}"] = 1.0
            if isinstance(city, str) and city in self.cities:
                tags[f"city={city}"] = 1.0
            if isinstance(tier, str) and tier:
                tags[f"tier={tier}"] = 1.0
            if isinstance(channel, str) and channel:
                tags[f"channel={channel}"] = 1.0
            age = ages[i]
            if np.isnan(age):  # no birth date: a declared age in the attributes
                raw = _parse(attrs).get("age")
                age = float(raw) if isinstance(raw, int | float) else np.nan
            if not np.isnan(age):
                tags[f"age={_band(age, AGE_BANDS, labels)}"] = 1.0
            tags.update(self.attributes.tags(attrs))
            out.append(tags)
        return out


@dataclass
class ProductEncoder:
    """Product tags: category, brand, price band, newness band, attributes."""

    attributes: AttributeEncoder = field(default_factory=AttributeEncoder)
    price_edges: np.ndarray = field(default_factory=lambda: np.array([]))

    def fit(self, products: pd.DataFrame) -> ProductEncoder:
        self.attributes.fit(products.get("attributes"))
        prices = products["price"].astype(float).to_numpy() if "price" in products else np.array([])
        if prices.size and np.nanmax(prices) > np.nanmin(prices):
            self.price_edges = np.unique(
                np.nanquantile(prices, np.linspace(0, 1, N_BANDS + 1)[1:-1])
            )
        return self

    def tags(self, products: pd.DataFrame, as_of: pd.Timestamp) -> list[Tags]:
        labels = _band_labels(NEWNESS_BANDS, "d")
        ref = as_of.tz_convert(None) if as_of.tzinfo else as_of
        launch = pd.to_datetime(products["launch_date"], errors="coerce")
        if launch.dt.tz is not None:
            launch = launch.dt.tz_convert(None)
        age_days = ((ref - launch) / pd.Timedelta(days=1)).to_numpy(dtype=float)
        prices = products["price"].astype(float).to_numpy()
        brands = (
            products["brand"].to_numpy(dtype=object)
            if "brand" in products
            else np.full(len(products), None)
        )
        attrs = (
            products["attributes"].to_numpy(dtype=object)
            if "attributes" in products
            else np.full(len(products), None)
        )
        out: list[Tags] = []
        for category, brand, price, age, attr in zip(
            products["category"].to_numpy(dtype=object),
            brands,
            prices,
            age_days,
            attrs,
            strict=True,
        ):
            tags: Tags = {f"category={category}": 1.0}
            if isinstance(brand, str) and brand:
                tags[f"brand={brand}"] = 1.0
            if self.price_edges.size and not np.isnan(price):
                band = int(np.searchsorted(self.price_edges, price, side="right")) + 1
                tags[f"price=band{band}"] = 1.0
            if not np.isnan(age) and age < NEWNESS_BANDS[-1]:
                tags[f"new={_band(max(float(age), 0.0), NEWNESS_BANDS, labels)}"] = 1.0
            tags.update(self.attributes.tags(attr))
            out.append(tags)
        return out


@dataclass
class FeatureSpace:
    """Columns of a LightFM feature matrix: one identity column per known entity, then tags.

    ``identity_weight`` is the weight of an entity's own column relative to its
    tags (each 1.0); every row is then normalised to sum to 1. Entities unknown
    at fit time get their tags only (cold start); unknown tags are ignored.
    """

    ids: pd.Index
    vocabulary: dict[str, int]
    identity_weight: float = 1.0
    use_identity: bool = True
    use_tags: bool = True

    @staticmethod
    def fit(
        ids: Iterable[str],
        tags: Iterable[Tags],
        identity_weight: float = 1.0,
        min_count: int = 1,
        use_identity: bool = True,
        use_tags: bool = True,
    ) -> FeatureSpace:
        counts: Counter[str] = Counter()
        for row in tags:
            counts.update(row.keys())
        vocab = sorted(t for t, c in counts.items() if c >= min_count) if use_tags else []
        index = pd.Index(list(ids) if use_identity else [], dtype=object)
        offset = len(index)
        return FeatureSpace(
            index,
            {t: offset + i for i, t in enumerate(vocab)},
            identity_weight,
            use_identity,
            use_tags,
        )

    @property
    def n_features(self) -> int:
        return len(self.ids) + len(self.vocabulary)

    def matrix(self, ids: Sequence[str], tags: Sequence[Tags]) -> sp.csr_matrix:
        """Feature rows, shape ``(len(ids), n_features)``, each summing to 1 (or all 0)."""
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        own = self.ids.get_indexer(pd.Index(list(ids), dtype=object)) if len(self.ids) else None
        for r, row_tags in enumerate(tags):
            if own is not None and own[r] >= 0:
                rows.append(r)
                cols.append(int(own[r]))
                vals.append(self.identity_weight)
            for tag, weight in row_tags.items():
                c = self.vocabulary.get(tag)
                if c is not None and weight > 0:
                    rows.append(r)
                    cols.append(c)
                    vals.append(float(weight))
        m = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(ids), self.n_features),
            dtype=np.float32,
        )
        sums = np.asarray(m.sum(axis=1)).ravel()
        scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m)


def affinity_tags(
    interactions: pd.DataFrame, products: pd.DataFrame, prefix: str = "likes", top: int = 3
) -> dict[str, Tags]:
    """Behavioural tags per customer: the share of their interaction weight per category.

    Only a customer's ``top`` categories are kept. Built from training
    interactions only, so they carry no information from after the cut.
    """
    if interactions.empty:
        return {}
    category = products.set_index("product_id")["category"]
    frame = interactions.assign(category=interactions["product_id"].map(category).to_numpy())
    frame = frame.dropna(subset=["category"])
    per = frame.groupby(["customer_id", "category"], sort=False)["weight"].sum().reset_index()
    per["share"] = per["weight"] / per.groupby("customer_id")["weight"].transform("sum")
    per = per.sort_values(["customer_id", "share"], ascending=[True, False])
    per = per.groupby("customer_id", sort=False).head(top)
    out: dict[str, Tags] = {}
    for cid, cat, share in zip(per["customer_id"], per["category"], per["share"], strict=True):
        out.setdefault(cid, {})[f"{prefix}={cat}"] = float(share)
    return out
