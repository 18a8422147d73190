"""The hybrid product recommender: LightFM over interactions, customer and product features.

Each customer is the normalised sum of an identity column (when they have
training interactions) and tags (demographics, loyalty tier, behavioural
category buckets); each product likewise (category, brand, price band,
newness, attributes). A customer or product never seen in training is
described by its tags alone, so it still gets a sensible representation: that
is the cold start. With every feature switched off (:func:`plain_lightfm`) the
same class is the classic collaborative LightFM baseline.

Scoring is a matrix product over the learned representations (computed once
with ``get_user_representations`` / ``get_item_representations``), never a
per-customer ``predict`` loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from training.feature_encoding import (
    CustomerEncoder,
    FeatureSpace,
    ProductEncoder,
    Tags,
    affinity_tags,
)
from training.recommendation import Recommender, TrainingData

EpochCallback = Callable[[int, "HybridRecommender"], None]


@dataclass(frozen=True)
class HybridConfig:
    """Hyper-parameters of :class:`HybridRecommender` (defaults tuned on validation splits)."""

    no_components: int = 64
    loss: str = "warp"
    learning_rate: float = 0.05
    epochs: int = 30
    item_alpha: float = 1e-6
    user_alpha: float = 1e-6
    max_sampled: int = 10
    user_features: bool = True
    item_features: bool = True
    behaviour_features: bool = True
    user_identity: bool = True
    item_identity: bool = True
    user_identity_weight: float = 1.0
    item_identity_weight: float = 1.0
    random_state: int = 42
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.loss not in ("warp", "bpr", "logistic", "warp-kos"):
            raise ValueError(f"loss must be warp, bpr, logistic or warp-kos (got {self.loss!r})")
        for name in ("no_components", "epochs", "max_sampled", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if not self.user_identity and not self.user_features:
            raise ValueError("customers need identity columns or features (or both)")
        if not self.item_identity and not self.item_features:
            raise ValueError("products need identity columns or features (or both)")

    def to_params(self) -> dict[str, object]:
        return asdict(self)


class HybridRecommender(Recommender):
    """LightFM hybrid recommender (WARP by default) with cold start from features."""

    name = "hybrid"

    def __init__(self, config: HybridConfig | None = None, name: str | None = None):
        super().__init__()
        self.config = config or HybridConfig()
        if name:
            self.name = name
        self.customer_encoder = CustomerEncoder()
        self.product_encoder = ProductEncoder()
        self.user_space: FeatureSpace | None = None
        self.item_space: FeatureSpace | None = None
        self.model: LightFM | None = None
        self.as_of: pd.Timestamp | None = None
        self.user_index = pd.Index([], dtype=object)
        self._user_bias = np.zeros(0, dtype=np.float32)
        self._user_vectors = np.zeros((0, 0), dtype=np.float32)
        self._item_bias = np.zeros(0, dtype=np.float32)
        self._item_vectors = np.zeros((0, 0), dtype=np.float32)
        # training state
        self._train_users: pd.Index | None = None
        self._train_items: pd.Index | None = None
        self._matrices: tuple[sp.coo_matrix, sp.coo_matrix, sp.csr_matrix, sp.csr_matrix] | None = (
            None
        )
        self._customer_features: sp.csr_matrix | None = None
        self._catalogue_features: sp.csr_matrix | None = None
        self.epochs_done = 0
        self._defer_training = False

    # ---------------------------------------------------------------- training

    def _fit(self, data: TrainingData) -> None:
        self.prepare(data)
        if not self._defer_training:
            self.train_epochs(self.config.epochs)

    def fit_with_callback(
        self, data: TrainingData, on_epoch: EpochCallback, every: int = 5
    ) -> HybridRecommender:
        """Fit, calling ``on_epoch(epochs_done, self)`` every ``every`` epochs (tuning)."""
        self._defer_training = True
        try:
            self.fit(data)
        finally:
            self._defer_training = False
        done = 0
        while done < self.config.epochs:
            step = min(every, self.config.epochs - done)
            self.train_epochs(step)
            done += step
            on_epoch(done, self)
        return self

    def prepare(self, data: TrainingData) -> None:
        """Encode features and interactions and create an untrained LightFM model."""
        cfg = self.config
        self.as_of = data.as_of
        inter = data.interactions.assign(
            customer_id=data.interactions["customer_id"].astype(str),
            product_id=data.interactions["product_id"].astype(str),
        )
        inter = inter[inter["product_id"].isin(self.catalogue)]
        users = pd.Index(np.sort(inter["customer_id"].unique()), dtype=object)
        items = pd.Index(np.sort(inter["product_id"].unique()), dtype=object)
        self._train_users, self._train_items = users, items

        customers = data.customers.assign(customer_id=data.customers["customer_id"].astype(str))
        customers = customers.drop_duplicates("customer_id").set_index("customer_id", drop=False)
        self.customer_encoder = CustomerEncoder().fit(customers)
        products = data.products.assign(product_id=data.products["product_id"].astype(str))
        products = products.set_index("product_id", drop=False)
        self.product_encoder = ProductEncoder().fit(products)

        behaviour = (
            affinity_tags(inter, products.reset_index(drop=True)) if cfg.behaviour_features else {}
        )
        all_ids = pd.Index(customers.index.union(users), dtype=object)
        user_tags = self._customer_tags(all_ids, customers, behaviour)
        train_user_tags = [user_tags[i] for i in all_ids.get_indexer(users)]
        self.user_space = FeatureSpace.fit(
            users,
            train_user_tags,
            cfg.user_identity_weight,
            use_identity=cfg.user_identity,
            use_tags=cfg.user_features or cfg.behaviour_features,
        )
        item_tags = self._product_tags(self.catalogue, products)
        train_item_tags = [item_tags[i] for i in self.catalogue.get_indexer(items)]
        self.item_space = FeatureSpace.fit(
            items,
            train_item_tags,
            cfg.item_identity_weight,
            use_identity=cfg.item_identity,
            use_tags=cfg.item_features,
        )
        uf_train = self.user_space.matrix(list(users), train_user_tags)
        if_train = self.item_space.matrix(list(items), train_item_tags)
        rows = users.get_indexer(inter["customer_id"])
        cols = items.get_indexer(inter["product_id"])
        shape = (len(users), len(items))
        weights = sp.coo_matrix((inter["weight"].to_numpy(np.float32), (rows, cols)), shape=shape)
        binary = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
        self._matrices = (binary, weights, uf_train, if_train)
        # every customer of the table (plus trained ones) and every catalogue product
        self.user_index = all_ids
        self._customer_features = self.user_space.matrix(list(all_ids), user_tags)
        self._catalogue_features = self.item_space.matrix(list(self.catalogue), item_tags)
        self.model = LightFM(
            no_components=cfg.no_components,
            loss=cfg.loss,
            learning_rate=cfg.learning_rate,
            item_alpha=cfg.item_alpha,
            user_alpha=cfg.user_alpha,
            max_sampled=cfg.max_sampled,
            random_state=np.random.RandomState(cfg.random_state),
        )
        self.epochs_done = 0

    def train_epochs(self, epochs: int) -> None:
        """Run ``epochs`` more epochs of LightFM, then refresh the representations."""
        if self.model is None or self._matrices is None:
            raise RuntimeError("call prepare() (or fit()) first")
        binary, weights, uf, itf = self._matrices
        self.model.fit_partial(
            binary,
            user_features=uf,
            item_features=itf,
            sample_weight=weights,
            epochs=epochs,
            num_threads=self.config.num_threads,
        )
        self.epochs_done += epochs
        self._refresh()

    def _refresh(self) -> None:
        assert self.model is not None
        ub, uv = self.model.get_user_representations(self._customer_features)
        ib, iv = self.model.get_item_representations(self._catalogue_features)
        self._user_bias, self._user_vectors = ub.astype(np.float32), uv.astype(np.float32)
        self._item_bias, self._item_vectors = ib.astype(np.float32), iv.astype(np.float32)

    def release_training_state(self) -> None:
        """Drop the training matrices (smaller pickle); scoring is unaffected."""
        self._matrices = None

    # ---------------------------------------------------------------- features

    def _customer_tags(
        self, ids: pd.Index, customers: pd.DataFrame, behaviour: dict[str, Tags]
    ) -> list[Tags]:
        cfg = self.config
        assert self.as_of is not None
        if cfg.user_features:
            rows = customers.reindex(ids)
            known = rows["customer_id"].notna().to_numpy()
            tags = [dict() for _ in range(len(ids))]  # type: list[Tags]
            if known.any():
                encoded = self.customer_encoder.tags(rows[known], self.as_of)
                for i, t in zip(np.flatnonzero(known).tolist(), encoded, strict=True):
                    tags[i] = t
        else:
            tags = [{} for _ in range(len(ids))]
        for i, cid in enumerate(ids):
            if cid in behaviour:
                tags[i] = {**tags[i], **behaviour[cid]}
        return tags

    def _product_tags(self, ids: pd.Index, products: pd.DataFrame) -> list[Tags]:
        assert self.as_of is not None
        if not self.config.item_features:
            return [{} for _ in range(len(ids))]
        return self.product_encoder.tags(products.reindex(ids), self.as_of)

    # ---------------------------------------------------------------- scoring

    def customer_vectors(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(biases (n,), embeddings (n, d))`` of customers; unknown ones from ``customers`` rows.

        A customer neither known at fit time nor described in ``customers`` gets
        a zero vector: their ranking is by product bias only (a popularity prior).
        """
        ids = pd.Index([str(c) for c in customer_ids], dtype=object)
        rows = self.user_index.get_indexer(ids)
        bias = np.zeros(len(ids), dtype=np.float32)
        vec = np.zeros((len(ids), self._user_vectors.shape[1]), dtype=np.float32)
        known = rows >= 0
        bias[known] = self._user_bias[rows[known]]
        vec[known] = self._user_vectors[rows[known]]
        if customers is not None and (~known).any() and self.user_space is not None:
            described = customers.assign(customer_id=customers["customer_id"].astype(str))
            described = described.drop_duplicates("customer_id").set_index(
                "customer_id", drop=False
            )
            new = ids[~known]
            found = new.isin(described.index)
            if found.any():
                assert self.model is not None
                tags = self._customer_tags(pd.Index(new[found]), described, {})
                feats = self.user_space.matrix(list(new[found]), tags)
                b, v = self.model.get_user_representations(feats)
                at = np.flatnonzero(~known)[found]
                bias[at], vec[at] = b, v
        return bias, vec

    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        bias, vec = self.customer_vectors(customer_ids, customers)
        return vec @ self._item_vectors.T + self._item_bias[None, :] + bias[:, None]

    def score_naive(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Scores by one LightFM ``predict`` call per customer (benchmark reference only)."""
        assert self.model is not None and self._customer_features is not None
        rows = self.user_index.get_indexer(pd.Index(list(customer_ids), dtype=object))
        n_items = len(self.catalogue)
        items = np.arange(n_items, dtype=np.int32)
        out = np.empty((len(rows), n_items), dtype=np.float32)
        for i, r in enumerate(rows):
            out[i] = self.model.predict(
                np.full(n_items, r, dtype=np.int32),
                items,
                user_features=self._customer_features,
                item_features=self._catalogue_features,
            )
        return out


def plain_lightfm(config: HybridConfig | None = None) -> HybridRecommender:
    """The collaborative LightFM baseline: identity columns only, no features at all."""
    base = config or HybridConfig()
    cfg = replace(
        base,
        user_features=False,
        item_features=False,
        behaviour_features=False,
        user_identity=True,
        item_identity=True,
    )
    return HybridRecommender(cfg, name="lightfm")
