"""API keys with scopes: stored as SHA-256 hashes, checked per request.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The
server keeps only the hash of each key (``NBA_API_KEYS``), so a leaked
configuration does not leak keys. Missing or unknown keys get 401, a key
without the endpoint's scope 403, both with a JSON body.

>>> key, spec = new_api_key("journeys", ["decide", "ingest"])
>>> keys = ApiKeys([spec])
>>> keys.check(key, "decide").name
'journeys'
>>> keys.check(key, "admin")
Traceback (most recent call last):
...
serving.errors.ForbiddenError: this API key lacks the 'admin' scope
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from serving.errors import ForbiddenError, TooManyRequestsError, UnauthorizedError
from serving.rate_limit import RateLimits
from serving.settings import ApiKeySpec, Scope


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(name: str, scopes: Sequence[Scope]) -> tuple[str, ApiKeySpec]:
    """A fresh random key and the spec to configure for it."""
    key = "nba_" + secrets.token_urlsafe(32)
    return key, ApiKeySpec(name=name, sha256=hash_key(key), scopes=tuple(scopes))


class ApiKeys:
    """The configured keys; :meth:`check` authenticates and authorises one request."""

    def __init__(
        self,
        specs: Sequence[ApiKeySpec],
        *,
        allow_anonymous: bool = False,
        rate_limits: RateLimits | None = None,
    ) -> None:
        if specs and allow_anonymous:
            raise ValueError("NBA_ALLOW_ANONYMOUS cannot be set when NBA_API_KEYS lists keys")
        if not specs and not allow_anonymous:
            raise ValueError(
                "no API keys configured: set NBA_API_KEYS (create one with 'nba serve-key NAME') "
                "or NBA_ALLOW_ANONYMOUS=true for local development"
            )
        self._by_hash = {s.sha256: s for s in specs}
        self.anonymous = allow_anonymous
        self.rate_limits = rate_limits or RateLimits({})

    def check(self, key: str | None, scope: Scope) -> ApiKeySpec:
        """The key's spec when it may use ``scope`` now; else 401, 403 or 429 (rate limit)."""
        spec = self.authorise(key, scope)
        wait = self.rate_limits.take(spec.name, scope)
        if wait is not None:
            raise TooManyRequestsError(
                f"this API key made more than {self.rate_limits.rates[scope]:g} {scope!r} "
                f"requests a second; retry in {wait:.2f} s",
                retry_after=wait,
            )
        return spec

    def authorise(self, key: str | None, scope: Scope) -> ApiKeySpec:
        """The key's spec when it has ``scope``; 401 or 403 otherwise (no rate limit)."""
        if self.anonymous:
            return ApiKeySpec(name="anonymous", sha256="0" * 64, scopes=(scope,))
        if not key:
            raise UnauthorizedError("missing API key (send 'Authorization: Bearer <key>')")
        digest = hash_key(key)
        spec = None
        for known, candidate in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                spec = candidate
        if spec is None:
            raise UnauthorizedError("unknown API key")
        if scope not in spec.scopes:
            raise ForbiddenError(f"this API key lacks the {scope!r} scope")
        return spec


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key in ``Authorization: Bearer`` or ``X-API-Key`` (the former wins)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return x_api_key or None
