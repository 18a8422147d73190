"""The online store: profile state kept up to date as events arrive.

``OnlineStore`` is the interface; ``RedisOnlineStore`` is the production
implementation (one Redis, a managed Redis or a Redis Cluster) and
``MemoryOnlineStore`` an in-process one for simulations. The same contract
tests run against both.
"""

from features.online.store import ApplyResult, EventOps, OnlineStore, StoredCustomer

__all__ = ["ApplyResult", "EventOps", "OnlineStore", "StoredCustomer"]
