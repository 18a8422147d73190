"""The Redis online store: one hash and one sorted set per customer.

Keys (``{...}`` is a Redis Cluster hash tag, so that a customer's keys share a
slot and one Lua script may touch both):

* ``<prefix>:p:{<customer>}``: hash of the profile state (``np``, ``pd:20512``,
  ...) plus ``_tz`` and ``_bd`` (static attributes), ``_wm`` (materialisation
  watermark) and ``_mx`` (newest event time), all in epoch seconds;
* ``<prefix>:e:{<customer>}``: sorted set of recent event ids scored by event
  time, trimmed to the replay window;
* ``<prefix>:priors``: the population priors, as JSON.

Events are applied by one Lua script per customer batch: de-duplication and
the ops are atomic, so a retried or concurrent delivery never counts twice.
The same code runs on a single Redis, a managed Redis and a Redis Cluster
(pass a ``redis.cluster.RedisCluster`` client).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from features.definitions import Op
from features.finalise import CustomerStatic, FeaturePriors
from features.online.store import (
    DEFAULT_REPLAY_WINDOW_SECONDS,
    ApplyResult,
    EventOps,
    OnlineStore,
    StoredCustomer,
    op_code,
    priors_from_json,
    priors_to_json,
)
from features.state import State, is_expired, trim_state

#: A hash with more fields than this is compacted (expired fields removed) after an
#: update, at most once per :data:`COMPACT_EVERY_SECONDS` of event time. Redis keeps
#: hashes of up to 128 small fields in its compact listpack encoding; above that a
#: hash costs several times more memory, so compaction aims to stay below it.
COMPACT_ABOVE_FIELDS = 112
COMPACT_EVERY_SECONDS = 3 * 86_400
#: Customers per pipeline when materialising.
MATERIALISE_CHUNK = 500

_APPLY = """
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local wm = tonumber(redis.call('HGET', KEYS[1], '_wm') or '-1e18')
local newest = tonumber(redis.call('HGET', KEYS[1], '_mx') or '-1e18')
local applied, dup, stale = 0, 0, 0
local late, invalid = {}, {}
local function finite(x)
  return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge
end
-- validate every event before anything is written: an event with a value Redis
-- cannot store is refused whole, and the others still apply
local ok = {}
for e = 0, n - 1 do
  local good = finite(tonumber(ARGV[4 + 3 * e]))
  for _, f, v in string.gmatch(ARGV[5 + 3 * e], '(%d) (%S+) (%S+)') do
    if not finite(tonumber(v)) then good = false end
  end
  ok[e] = good
  if not good then invalid[#invalid + 1] = ARGV[3 + 3 * e] end
end
for e = 0, n - 1 do
  local eid = ARGV[3 + 3 * e]
  local ts = tonumber(ARGV[4 + 3 * e])
  local ops = ARGV[5 + 3 * e]
  if not ok[e] then
    -- refused above: nothing written
  elseif ts < wm then
    stale = stale + 1
  elseif ts < newest - window then
    late[#late + 1] = eid
  elseif redis.call('ZADD', KEYS[2], 'NX', ts, eid) == 0 then
    dup = dup + 1
  else
    -- ops: "<op> <field> <value>" separated by newlines; op 0 sum, 1 max, 2 min.
    -- Sums are done here in double precision and written with 17 significant digits:
    -- HINCRBYFLOAT would round to 17 decimal places, turning tiny decayed scores to 0
    for op, f, v in string.gmatch(ops, '(%d) (%S+) (%S+)') do
      if op == '0' then
        local cur = tonumber(redis.call('HGET', KEYS[1], f) or '0')
        redis.call('HSET', KEYS[1], f, string.format('%.17g', cur + tonumber(v)))
      else
        local cur = redis.call('HGET', KEYS[1], f)
        if (not cur) or (op == '1' and tonumber(v) > tonumber(cur))
            or (op == '2' and tonumber(v) < tonumber(cur)) then
          redis.call('HSET', KEYS[1], f, v)
        end
      end
    end
    applied = applied + 1
    if ts > newest then newest = ts end
  end
end
local compact = 0
if applied > 0 then
  redis.call('HSET', KEYS[1], '_mx', newest)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(newest - window))
  local last = tonumber(redis.call('HGET', KEYS[1], '_cp') or '-1e18')
  if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[3 + 3 * n])
      and newest - last > tonumber(ARGV[4 + 3 * n]) then
    compact = 1
  end
end
return {applied, dup, stale, compact, late, invalid}
"""

_RESERVED = ("_tz", "_bd", "_wm", "_mx", "_cp")


def _num(value: float) -> str:
    """Exact text for a number: whole numbers without a decimal point (Redis then
    stores them as integers in a compact hash, several bytes smaller), others by
    ``repr`` (which round-trips)."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


class RedisOnlineStore(OnlineStore):
    """Online store on Redis or Redis Cluster. ``client`` must not decode responses."""

    def __init__(
        self,
        client: Any,
        prefix: str = "nba",
        replay_window_seconds: int = DEFAULT_REPLAY_WINDOW_SECONDS,
        seed: int | None = None,
    ):
        self.client = client
        self.prefix = prefix
        self.replay_window_seconds = replay_window_seconds
        self._apply_sha = hashlib.sha1(_APPLY.encode(), usedforsecurity=False).hexdigest()
        self._random = random.Random(seed)

    # keys ---------------------------------------------------------------
    def state_key(self, customer_id: str) -> str:
        return f"{self.prefix}:p:{{{customer_id}}}"

    def seen_key(self, customer_id: str) -> str:
        return f"{self.prefix}:e:{{{customer_id}}}"

    @property
    def priors_key(self) -> str:
        return f"{self.prefix}:priors"

    # writes -------------------------------------------------------------
    def materialise(
        self,
        states: Mapping[str, State],
        statics: Mapping[str, CustomerStatic],
        watermark: dt.datetime,
    ) -> int:
        cut = watermark.timestamp()
        ids = sorted(set(states) | set(statics))
        for start in range(0, len(ids), MATERIALISE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for cid in ids[start : start + MATERIALISE_CHUNK]:
                mapping = {f: _num(v) for f, v in trim_state(states.get(cid, {}), cut).items()}
                mapping.update(self._static_fields(statics.get(cid)))
                mapping["_wm"] = _num(cut)
                mapping["_mx"] = _num(cut)
                mapping["_cp"] = _num(cut)
                key = self.state_key(cid)
                pipe.delete(key)  # one key per DEL: a cluster pipeline refuses more
                pipe.delete(self.seen_key(cid))
                pipe.hset(key, mapping=mapping)
            pipe.execute()
        return len(ids)

    @staticmethod
    def _static_fields(static: CustomerStatic | None) -> dict[str, str]:
        if static is None:
            return {}
        fields = {"_tz": static.timezone}
        if static.birth_date is not None:
            fields["_bd"] = static.birth_date.isoformat()
        return fields

    def apply(self, events: Sequence[EventOps]) -> ApplyResult:
        by_customer: dict[str, list[EventOps]] = defaultdict(list)
        for ev in events:
            by_customer[ev.customer_id].append(ev)
        order = list(by_customer)
        calls = []
        for cid in order:
            batch = by_customer[cid]
            args: list[str | int | float] = [self.replay_window_seconds, len(batch)]
            for ev in batch:
                packed = "\n".join(f"{int(op_code(f))} {f} {_num(v)}" for f, v in ev.ops)
                args += [ev.event_id, ev.ts, packed]
            args += [COMPACT_ABOVE_FIELDS, COMPACT_EVERY_SECONDS]
            calls.append((self.state_key(cid), self.seen_key(cid), *args))
        result = ApplyResult()
        to_compact = []
        for cid, (applied, dup, stale, compact, late, invalid) in zip(
            order, self._run_apply(calls), strict=True
        ):
            result.add(
                ApplyResult(
                    applied=int(applied),
                    duplicate=int(dup),
                    stale=int(stale),
                    late=len(late),
                    late_event_ids=[x.decode() if isinstance(x, bytes) else x for x in late],
                    invalid=len(invalid),
                    invalid_event_ids=[x.decode() if isinstance(x, bytes) else x for x in invalid],
                )
            )
            if int(compact):
                to_compact.append(cid)
        for cid in to_compact:
            self.compact(cid)
        return result

    def _run_apply(self, calls: Sequence[tuple[str | int | float, ...]]) -> list[Any]:
        """Run the apply script once per call (two keys, then the arguments), pipelined.

        ``EVALSHA`` goes out first; a server that does not know the script (a fresh
        or restarted one, a new cluster node) answers ``NOSCRIPT`` without running
        anything, so those calls are sent again as ``EVAL`` with the script's text,
        which also caches it on that server. Only the nodes that answered are asked
        again: a cluster with a lost shard keeps applying the other shards' events.
        A Redis Cluster pipeline sends each call to the node owning its customer's slot.
        """
        results = self._evalsha(calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            again = self._eval([calls[i] for i in missing], "EVAL", _APPLY)
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    def _evalsha(self, calls: Sequence[tuple[str | int | float, ...]]) -> list[Any]:
        return self._eval(calls, "EVALSHA", self._apply_sha)

    def _eval(
        self, calls: Sequence[tuple[str | int | float, ...]], command: str, script: str
    ) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            # execute_command: a cluster pipeline refuses ``pipe.evalsha`` but routes this
            pipe.execute_command(command, script, 2, *call)
        return list(pipe.execute(raise_on_error=False))

    def compact(self, customer_id: str, now: float | None = None) -> int:
        """Remove expired fields of one customer; returns how many were removed."""
        key = self.state_key(customer_id)
        raw = self.client.hgetall(key)
        if not raw:
            return 0
        state = _decode_state(raw)
        newest = float(raw.get(b"_mx", b"0"))
        at = newest if now is None else now
        expired = [f for f, v in state.items() if is_expired(f, v, at)]
        kept = trim_state(state, at)
        expired += [f for f in state if f not in kept and f not in expired]
        pipe = self.client.pipeline(transaction=False)
        if expired:
            pipe.hdel(key, *expired)
        pipe.hset(key, "_cp", _num(at))
        pipe.execute()
        return len(expired)

    def upsert_static(self, customer_id: str, static: CustomerStatic) -> None:
        self.client.hset(self.state_key(customer_id), mapping=self._static_fields(static))

    def write_priors(self, priors: FeaturePriors) -> None:
        self.client.set(self.priors_key, priors_to_json(priors))

    def delete(self, customer_id: str) -> bool:
        return bool(
            self.client.delete(self.state_key(customer_id))
            + self.client.delete(self.seen_key(customer_id))
        )

    # reads --------------------------------------------------------------
    def read(self, customer_ids: Sequence[str]) -> list[StoredCustomer | None]:
        pipe = self.client.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hgetall(self.state_key(cid))
        out: list[StoredCustomer | None] = []
        for cid, raw in zip(customer_ids, pipe.execute(), strict=True):
            if not raw:
                out.append(None)
                continue
            out.append(StoredCustomer(cid, _decode_state(raw), _decode_static(raw)))
        return out

    def timezones(self, customer_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(customer_ids))
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.hget(self.state_key(cid), "_tz")
        return {cid: tz.decode() for cid, tz in zip(ids, pipe.execute(), strict=True) if tz}

    def read_priors(self) -> FeaturePriors:
        raw = self.client.get(self.priors_key)
        return priors_from_json(raw.decode()) if raw else FeaturePriors()

    def ping(self) -> bool:
        return bool(self.client.ping())

    def memory_usage(self, customer_id: str) -> int:
        """Bytes Redis uses for this customer's keys (``MEMORY USAGE``)."""
        total = 0
        for key in (self.state_key(customer_id), self.seen_key(customer_id)):
            total += int(self.client.memory_usage(key, samples=0) or 0)
        return total

    def close(self) -> None:
        self.client.close()


def _decode_state(raw: Mapping[bytes, bytes]) -> State:
    state: State = {}
    for k, v in raw.items():
        name = k.decode()
        if name in _RESERVED:
            continue
        state[name] = float(v)
    return state


def _decode_static(raw: Mapping[bytes, bytes]) -> CustomerStatic:
    tz = raw.get(b"_tz")
    bd = raw.get(b"_bd")
    return CustomerStatic(
        timezone=tz.decode() if tz else "UTC",
        birth_date=dt.date.fromisoformat(bd.decode()) if bd else None,
    )


def decode_customer(customer_id: str, raw: Mapping[bytes, bytes] | None) -> StoredCustomer | None:
    """A customer from the ``HGETALL`` of its state key (``None`` when empty), for callers
    that fetch the hash in their own pipeline (the API reads it with other keys at once)."""
    if not raw:
        return None
    return StoredCustomer(customer_id, _decode_state(raw), _decode_static(raw))


__all__ = ["Op", "RedisOnlineStore", "decode_customer"]
