"""The Redis online store: one compact value per customer.

Keys (``{...}`` is a Redis Cluster hash tag, so that a customer's keys share a
slot and one Lua script may touch several):

* ``<prefix>:s:{<customer>}``: the profile state with the static attributes, the
  bookkeeping entries and the hashes of the recent event ids (de-duplication over
  the replay window), one MessagePack map (:mod:`features.online.codec`);
* ``<prefix>:sv:{<customer>}``: the customer's seasonal verdict of a day, computed
  outside the request path (:meth:`RedisOnlineStore.write_verdicts`), expiring;
* ``<prefix>:priors``: the population priors, as JSON;
* ``<prefix>:layout``: the layout version of the prefix's keys (:data:`LAYOUT`).

Events are applied by one Lua script per batch of customers (per cluster slot
on a Redis Cluster): de-duplication and the ops are atomic per customer, so a
retried or concurrent delivery never counts twice. The script decodes the
customer's map with Redis' ``cmsgpack``, applies every op in Lua and writes the
map back once. The same code runs on a single Redis, a managed Redis and a Redis
Cluster (pass a ``redis.cluster.RedisCluster`` client).

Older layouts are converted on the store's first use, atomically per customer, then
the layout key is set (:meth:`RedisOnlineStore.migrate` does the same on demand);
event ids and watermarks carry over, so replays stay duplicates:

* layout 1 (nba before the compact encoding) kept the state in a hash
  ``<prefix>:p:{<customer>}`` with one field per state field; a prefix without a
  layout key that holds priors (``nba features materialise`` writes them) is
  converted and the hashes deleted;
* layout 2 spelt the map's families and entries by name and kept the recent event
  ids in a sorted set ``<prefix>:e:{<customer>}``: names become codes, the ids
  move into the map as their hashes and the sorted set is deleted (a customer of
  layout 2 took 1,152 bytes of Redis at the median, 968 of this layout; BENCHMARKS.md,
  "Issue 15, item 3 (mem10)"). Every script that loads a map converts a layout-2 one
  first as well, so a prefix with no layout key (one the API filled without priors)
  is converted customer by customer as it is touched, and the Python readers decode
  either spelling. Every API replica and ingest process of a prefix must run the same
  layout: an older process does not read this one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgpack
from redis.exceptions import ClusterDownError, NoScriptError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from features.definitions import FAMILIES, RETURN_DAYS, SECONDS_PER_DAY, KeyKind, Op
from features.finalise import CustomerStatic, FeaturePriors
from features.online import codec
from features.online.store import (
    DEFAULT_REPLAY_WINDOW_SECONDS,
    ApplyResult,
    EventOps,
    OnlineStore,
    ScriptCall,
    StoredCustomer,
    priors_from_json,
    priors_to_json,
)
from features.state import (
    FOLD_MARGIN_SECONDS,
    TIMESTAMP_VALUED,
    State,
    stored_state,
)

#: The layout this code reads and writes (1: one hash field per state field; 2: the map by
#: family names, event ids in a sorted set of their own; see the module docstring).
LAYOUT = "3"
#: A customer's expired fields are removed while events are applied, at most once per
#: this many seconds of their event time (in the same script: no extra round trip).
COMPACT_EVERY_SECONDS = 86_400
#: Customers per pipeline when materialising or migrating.
MATERIALISE_CHUNK = 500
#: Customers per run of the apply script (bounds how long one run holds the server).
APPLY_CHUNK = 200
#: A stored seasonal verdict expires after two days (it serves one UTC day).
VERDICT_SECONDS = 2 * 86_400


def _retention_rules() -> bytes:
    """The retention of each family, for the scripts' compaction: ``[family, how, seconds,
    span]`` where ``how`` is 1 for a timestamp value, 2 for a day or hour key, 3 for a
    channel with a day or hour, 4 for cart prices (kept while their cart entry is)."""
    rules: list[list[Any]] = []
    for family in FAMILIES.values():
        if family.retention_days is None or family.name == "cv":
            continue
        seconds = family.retention_days * SECONDS_PER_DAY
        code = codec.FAMILY_CODES[family.name]
        span = SECONDS_PER_DAY if family.key in (KeyKind.DAY, KeyKind.CHANNEL_DAY) else 3600
        if family.name in TIMESTAMP_VALUED:
            rules.append([code, 1, seconds, 0])
        elif family.key in (KeyKind.DAY, KeyKind.HOUR):
            rules.append([code, 2, seconds, span])
        elif family.key in (KeyKind.CHANNEL_DAY, KeyKind.CHANNEL_HOUR):
            rules.append([code, 3, seconds, span])
    rules.append([codec.FAMILY_CODES["cv"], 4, 0, 0])  # after "ca"
    return msgpack.packb(rules)


_RULES = _retention_rules()

#: Removes the fields of map ``s`` past their family's retention at ``at`` (the rules of
#: :func:`features.state.trim_state`, tested to agree) and sets ``_cp``; returns how many.
_COMPACT_FUNCTION = (
    """
local function compact(s, at, rules)
  local removed = 0
  for i = 1, #rules do
    local family, how, horizon, span = rules[i][1], rules[i][2], at - rules[i][3], rules[i][4]
    local t = s[family]
    if type(t) == 'table' then
      for key, value in pairs(t) do
        local gone = false
        if how == 1 then
          gone = value < horizon
        elseif how == 4 then
          gone = type(s[%(ca)d]) ~= 'table' or s[%(ca)d][key] == nil
        else
          local n
          if type(key) == 'number' then
            n = key
            if how == 3 then n = key % %(number_span)d end
          elseif how == 2 then
            n = tonumber(key)
          else
            n = tonumber(string.match(key, '|([^|]*)$'))
          end
          gone = n ~= nil and n * span + span <= horizon
        end
        if gone then
          t[key] = nil
          removed = removed + 1
        end
      end
      if next(t) == nil then s[family] = nil end
    end
  end
  s[%(_cp)d] = at
  return removed
end

-- the first day of the month of day number ``day`` (days since 1970-01-01; the civil
-- calendar of features.definitions.first_day_of_month, after H. Hinnant's days_to_civil)
local function first_day_of_month(day)
  local z = day + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  return day - (doy - math.floor((153 * mp + 2) / 5))
end

-- folds the shopping days (family ad) that no event at or after ``before`` can reach into
-- their month's count (family am, keyed by its first day), a day shopped by purchases alone
-- (a negative value) once no return can undo them: features.state.fold_shopping_days
local function fold(s, before)
  local last_day = math.floor((before - %(fold_margin)d) / 86400) - 1
  local last_bought = last_day - %(return_days)d
  -- and the orders (family ol, by second) no return can undo any more: their lines beyond
  -- the first added to lx (features.state.fold_orders)
  local orders = s[%(ol)d]
  if type(orders) == 'table' then
    local horizon = (last_bought + 1) * 86400
    local extra = 0
    for key, lines in pairs(orders) do
      local second = tonumber(key)
      if second ~= nil and second < horizon then
        if lines > 1 then extra = extra + lines - 1 end
        orders[key] = nil
      end
    end
    if next(orders) == nil then s[%(ol)d] = nil end
    if extra > 0 then s[%(lx)d] = (s[%(lx)d] or 0) + extra end
  end
  local days = s[%(ad)d]
  if type(days) ~= 'table' then return end
  local months = s[%(am)d]
  if type(months) ~= 'table' then months = {} end
  for key, value in pairs(days) do
    local day = tonumber(key)
    if day ~= nil and ((value >= 0 and day <= last_day) or (value < 0 and day <= last_bought)) then
      local first = first_day_of_month(day)
      months[first] = (months[first] or 0) + 1
      days[key] = nil
    end
  end
  if next(days) == nil then s[%(ad)d] = nil end
  if next(months) ~= nil then s[%(am)d] = months end
end

-- the time before which the store refuses every event of map ``s`` (stale or late)
local function closed_before(s, window)
  return math.max(s[%(_wm)d] or -1e18, (s[%(_mx)d] or -1e18) - window)
end
""".replace("%(number_span)d", str(codec.NUMBER_SPAN))
    .replace("%(fold_margin)d", str(FOLD_MARGIN_SECONDS))
    .replace("%(return_days)d", str(RETURN_DAYS))
)


def _with_codes(script: str) -> str:
    """``script`` with ``%(name)d`` replaced by the stored code of family or entry ``name``."""
    for name, code in (*codec.FAMILY_CODES.items(), *codec.RESERVED_CODES.items()):
        script = script.replace(f"%({name})d", str(code))
    return script


_COMPACT_FUNCTION = _with_codes(_COMPACT_FUNCTION)


def _lua_names() -> str:
    """The layout-2 names of the map's entries and their codes, as a Lua table."""
    pairs = {**codec.FAMILY_CODES, **codec.RESERVED_CODES}
    return "{" + ", ".join(f"['{name}'] = {code}" for name, code in pairs.items()) + "}"


#: Converts a map read as layout 2 spelt it (families and entries by name, the recent event
#: ids in a sorted set of their own) in place: names become codes, the ids of sorted set
#: ``ekey`` move into ``_e`` as their hashes (``redis.sha1hex``, as
#: :func:`~features.online.codec.event_hash` hashes them in Python) and the sorted set is
#: deleted; a birth date or a zone stays text, which the reader takes as well. Every script
#: that loads a map runs it first, so a map of either layout is read and written right
#: (``spelt_by_name`` costs five table lookups on a map of this layout).
_UPGRADE_FUNCTION = _with_codes(
    """
local LAYOUT2_NAMES = %(names)s
-- true for a map spelt by name (each such map has one of these entries)
local function spelt_by_name(s)
  return s['_mx'] ~= nil or s['_wm'] ~= nil or s['_tz'] ~= nil or s['_bd'] ~= nil
    or s['n'] ~= nil
end
-- converts map s in place; true when it changed it (the caller then writes it back)
local function upgrade(s, ekey)
  local changed = false
  for name, code in pairs(LAYOUT2_NAMES) do
    local v = s[name]
    if v ~= nil then
      s[code] = v
      s[name] = nil
      changed = true
    end
  end
  local ids = redis.call('ZRANGE', ekey, 0, -1, 'WITHSCORES')
  if #ids > 0 then
    redis.call('DEL', ekey)
    local seen = s[%(_e)d]
    if type(seen) ~= 'table' then seen = {} end
    for i = 1, #ids, 2 do
      local hash = tonumber(string.sub(redis.sha1hex(ids[i]), 1, %(hex_digits)d), 16)
      seen[hash] = tonumber(ids[i + 1])
    end
    s[%(_e)d] = seen
    changed = true
  end
  return changed
end
""".replace("%(names)s", _lua_names()).replace("%(hex_digits)d", str(codec.EVENT_HASH_BITS // 4))
)

#: KEYS: the state key and the layout-2 sorted set of recent event ids of each customer
#: (the script converts a map of layout 2 first: :data:`_UPGRADE_FUNCTION`; the sorted set
#: is not touched otherwise). ARGV: replay window, compaction interval,
#: retention rules, then a MessagePack list with, per customer, a flat list
#: ``event_id, event_hash, ts, ops, ...`` where ``ops`` is a flat list ``op, family code,
#: key, value, ...`` (op 0 sum, 1 max, 2 min; key ``false`` for an unkeyed family).
#: An event is a duplicate when its hash is among the map's recent ones (``_e``, trimmed
#: to the replay window). Returns, per customer, ``{applied, duplicate, stale, late ids,
#: invalid ids}``.
_APPLY = (
    _COMPACT_FUNCTION
    + _UPGRADE_FUNCTION
    + _with_codes(
        """
local window = tonumber(ARGV[1])
local compact_every = tonumber(ARGV[2])
local rules = cmsgpack.unpack(ARGV[3])
local batches = cmsgpack.unpack(ARGV[4])
local function finite(x)
  return type(x) == 'number' and x == x and x ~= math.huge and x ~= -math.huge
end
local out = {}
for c = 1, #batches do
  local skey, ekey = KEYS[2 * c - 1], KEYS[2 * c]
  local events = batches[c]
  local raw = redis.call('GET', skey)
  local s = {}
  local upgraded = false
  if raw then
    s = cmsgpack.unpack(raw)
    if spelt_by_name(s) then upgraded = upgrade(s, ekey) end
  end
  local wm = s[%(_wm)d] or -1e18
  local newest = s[%(_mx)d] or -1e18
  local seen = s[%(_e)d]
  if type(seen) ~= 'table' then seen = {} end
  local applied, dup, stale = 0, 0, 0
  local late, invalid = {}, {}
  for e = 1, #events, 4 do
    local eid, hash, ts, ops = events[e], events[e + 1], events[e + 2], events[e + 3]
    -- an event with a value that cannot be stored is refused whole; the others apply
    local good = finite(ts)
    for i = 4, #ops, 4 do
      if not finite(ops[i]) then good = false end
    end
    if not good then
      invalid[#invalid + 1] = eid
    elseif ts < wm then
      stale = stale + 1
    elseif ts < newest - window then
      late[#late + 1] = eid
    elseif seen[hash] ~= nil then
      dup = dup + 1
    else
      seen[hash] = ts
      for i = 1, #ops, 4 do
        local op, family, key, v = ops[i], ops[i + 1], ops[i + 2], ops[i + 3]
        local t = s
        if key == false then
          key = family
        else
          t = s[family]
          if t == nil then
            t = {}
            s[family] = t
          end
        end
        local cur = t[key]
        if cur == nil then
          t[key] = v
        elseif op == 0 then
          t[key] = cur + v
        elseif (op == 1 and v > cur) or (op == 2 and v < cur) then
          t[key] = v
        end
      end
      applied = applied + 1
      if ts > newest then newest = ts end
    end
  end
  if applied > 0 then
    s[%(_mx)d] = newest
    local horizon = newest - window
    for h, t in pairs(seen) do
      if t < horizon then seen[h] = nil end
    end
    if next(seen) == nil then s[%(_e)d] = nil else s[%(_e)d] = seen end
    if newest - (s[%(_cp)d] or -1e18) >= compact_every then
      compact(s, newest, rules)
      fold(s, closed_before(s, window))
    end
  end
  if applied > 0 or upgraded then redis.call('SET', skey, cmsgpack.pack(s)) end
  out[c] = {applied, dup, stale, late, invalid}
end
return out
"""
    )
)

#: Compacts one customer's map (KEYS[1]; KEYS[2] its layout-2 sorted set of event ids) at
#: ARGV[1] (its newest event time when empty); ARGV[2] the
#: retention rules, ARGV[3] the replay window (days no event can reach any more are
#: folded into months). Returns how many fields were removed.
_COMPACT = (
    _COMPACT_FUNCTION
    + _UPGRADE_FUNCTION
    + _with_codes(
        """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local s = cmsgpack.unpack(raw)
if spelt_by_name(s) then upgrade(s, KEYS[2]) end
local at = tonumber(ARGV[1]) or s[%(_mx)d] or 0
local removed = compact(s, at, cmsgpack.unpack(ARGV[2]))
fold(s, closed_before(s, tonumber(ARGV[3])))
redis.call('SET', KEYS[1], cmsgpack.pack(s))
return removed
"""
    )
)

#: Sets entries of one customer's map (KEYS[1]; KEYS[2] its layout-2 sorted set of event
#: ids; ARGV[1] a MessagePack map keyed by the entries' codes), creating it if need be.
_SET = (
    _UPGRADE_FUNCTION
    + """
local raw = redis.call('GET', KEYS[1])
local s = {}
if raw then
  s = cmsgpack.unpack(raw)
  if spelt_by_name(s) then upgrade(s, KEYS[2]) end
end
for name, value in pairs(cmsgpack.unpack(ARGV[1])) do s[name] = value end
redis.call('SET', KEYS[1], cmsgpack.pack(s))
return 1
"""
)

#: Converts one customer's map from layout 2 (:data:`_UPGRADE_FUNCTION`): KEYS[1] the state
#: key, KEYS[2] the customer's layout-2 sorted set of recent event ids. A map already
#: converted is left as it is. Returns 1 when it changed the map.
_UPGRADE = (
    _UPGRADE_FUNCTION
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('DEL', KEYS[2])
  return 0
end
local s = cmsgpack.unpack(raw)
if upgrade(s, KEYS[2]) then
  redis.call('SET', KEYS[1], cmsgpack.pack(s))
  return 1
end
return 0
"""
)

#: Converts one customer from layout 1: KEYS[1] the old hash, KEYS[2] the new key, ARGV[1]
#: the encoded state. A customer already written in the new layout keeps it.
_MIGRATE = """
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[1]) end
return redis.call('DEL', KEYS[1])
"""


class LuaScript:
    """A Lua script run by ``EVALSHA``, sent again as ``EVAL`` where the server lacks it."""

    def __init__(self, text: str):
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def run(self, client: Any, calls: Sequence[Sequence[Any]]) -> list[Any]:
        """Run once per call (``(keys, args)``), pipelined (see :func:`run_scripts`)."""
        return run_scripts(client, [(self, keys, args) for keys, args in calls])


def run_scripts(
    client: Any, calls: Sequence[tuple[LuaScript, Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """Run each ``(script, keys, args)`` in one pipeline; the replies in order.

    ``EVALSHA`` goes out first; a server that does not know a script (a fresh or
    restarted one, a new cluster node) answers ``NOSCRIPT`` without running anything,
    so those calls are sent again as ``EVAL`` with the script's text, which also
    caches it on that server. Only the nodes that answered are asked again: a cluster
    with a lost shard keeps applying the other shards' events. A Redis Cluster
    pipeline sends each call to the node owning its keys' slot.
    """
    results = _send(client, [(script.sha, keys, args) for script, keys, args in calls], "EVALSHA")
    missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
    if missing:
        again = _send(
            client, [(calls[i][0].text, calls[i][1], calls[i][2]) for i in missing], "EVAL"
        )
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def _send(
    client: Any, calls: Sequence[tuple[str, Sequence[Any], Sequence[Any]]], command: str
) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        # execute_command: a cluster pipeline refuses ``pipe.evalsha`` but routes this
        pipe.execute_command(command, script, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))


#: Scripts other modules run with the events' (``RedisOnlineStore.apply(scripts=...)``), by text.
_EXTRA_SCRIPTS: dict[str, LuaScript] = {}


_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError)
_APPLY_SCRIPT, _COMPACT_SCRIPT = LuaScript(_APPLY), LuaScript(_COMPACT)
_SET_SCRIPT, _MIGRATE_SCRIPT = LuaScript(_SET), LuaScript(_MIGRATE)
_UPGRADE_SCRIPT = LuaScript(_UPGRADE)


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
        self._random = random.Random(seed)
        self._layout_checked = False
        # a Redis Cluster runs a script on keys of one slot only
        self._keyslot = getattr(client, "keyslot", None)

    # keys ---------------------------------------------------------------
    def state_key(self, customer_id: str) -> str:
        return f"{self.prefix}:s:{{{customer_id}}}"

    def seen_key(self, customer_id: str) -> str:
        return f"{self.prefix}:e:{{{customer_id}}}"

    def legacy_key(self, customer_id: str) -> str:
        """The customer's state hash in layout 1 (before the compact encoding)."""
        return f"{self.prefix}:p:{{{customer_id}}}"

    def verdict_key(self, customer_id: str) -> str:
        """The customer's seasonal verdict of the day (see :meth:`write_verdicts`)."""
        return f"{self.prefix}:sv:{{{customer_id}}}"

    @property
    def priors_key(self) -> str:
        return f"{self.prefix}:priors"

    @property
    def layout_key(self) -> str:
        return f"{self.prefix}:layout"

    # layout -------------------------------------------------------------
    @property
    def layout_settled(self) -> bool:
        """True once this process has checked (and if need be migrated) the layout."""
        return self._layout_checked

    def queue_layout(self, pipe: Any) -> None:
        """Queue on ``pipe`` the reads :meth:`settle_layout` takes (callers that read in
        their own pipeline check the layout in the same round trip)."""
        pipe.get(self.layout_key)
        pipe.exists(self.priors_key)

    def settle_layout(self, layout: bytes | None, has_priors: Any) -> bool:
        """Act on the layout read by :meth:`queue_layout`: migrate a layout-1 prefix (one with
        priors and no layout key), refuse an unknown layout; a new prefix gets its layout key
        with its priors. Returns True when it migrated."""
        migrated = False
        if (layout is None and has_priors) or layout == b"2":
            self.migrate()
            migrated = True
        elif layout is not None and layout.decode() != LAYOUT:
            raise RuntimeError(
                f"Redis prefix {self.prefix!r} holds online profiles in layout "
                f"{layout.decode()}, which this version of nba does not read (it reads "
                f"layout {LAYOUT}); rebuild them with `nba features materialise`"
            )
        self._layout_checked = True
        return migrated

    def ensure_layout(self) -> None:
        """Migrate the prefix from layout 1 on first use (once per process; see the module
        docstring). Every read and write calls this; it costs nothing after the first."""
        if self._layout_checked:
            return
        pipe = self.client.pipeline(transaction=False)
        self.queue_layout(pipe)
        try:
            layout, has_priors = pipe.execute()
        except _UNREACHABLE:
            # the node holding the layout key is down: the customers' own keys may still
            # answer (a cluster with a lost shard); asked again on the next call
            return
        self.settle_layout(layout, has_priors)

    def migrate(self) -> int:
        """Convert every layout-1 customer hash and every layout-2 map of the prefix to this
        layout; returns how many customers were converted. Each customer is converted
        atomically and converting twice changes nothing, so two processes may both run it."""
        keys = [
            k.decode() if isinstance(k, bytes) else k
            for k in self.client.scan_iter(match=f"{self.prefix}:p:{{*", count=1000)
        ]
        start = len(self.prefix) + 4  # "<prefix>:p:{"
        for first in range(0, len(keys), MATERIALISE_CHUNK):
            chunk = keys[first : first + MATERIALISE_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for key in chunk:
                pipe.hgetall(key)
            calls = []
            for key, raw in zip(chunk, pipe.execute(), strict=True):
                if not raw:
                    continue
                fields = {k.decode(): v.decode() for k, v in raw.items()}
                state = {f: float(v) for f, v in fields.items() if f not in codec.RESERVED}
                reserved: dict[str, Any] = {k: fields[k] for k in ("_tz", "_bd") if k in fields}
                for k in ("_wm", "_mx", "_cp"):
                    if k in fields:
                        reserved[k] = codec.number(float(fields[k]))
                new_key = self.state_key(key[start:-1])
                calls.append(((key, new_key), (codec.pack(state, reserved),)))
            _MIGRATE_SCRIPT.run(self.client, calls)
        converted = len(keys)
        start = len(self.prefix) + 4  # "<prefix>:s:{"
        chunk = []
        for key in self.client.scan_iter(match=f"{self.prefix}:s:{{*", count=1000):
            chunk.append(_text(key))
            if len(chunk) == MATERIALISE_CHUNK:
                converted += self._upgrade(chunk, start)
                chunk = []
        converted += self._upgrade(chunk, start)
        self.client.set(self.layout_key, LAYOUT)
        self._layout_checked = True
        return converted

    def _upgrade(self, state_keys: Sequence[str], start: int) -> int:
        """Run the layout-2 conversion on these state keys; how many it changed."""
        calls = [((key, self.seen_key(key[start:-1])), ()) for key in state_keys]
        return sum(int(r) for r in _UPGRADE_SCRIPT.run(self.client, calls))

    # writes -------------------------------------------------------------
    def materialise(
        self,
        states: Mapping[str, State],
        statics: Mapping[str, CustomerStatic],
        watermark: dt.datetime,
    ) -> int:
        self.ensure_layout()
        cut = watermark.timestamp()
        marks = {name: codec.number(cut) for name in ("_wm", "_mx", "_cp")}
        ids = sorted(set(states) | set(statics))
        for start in range(0, len(ids), MATERIALISE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for cid in ids[start : start + MATERIALISE_CHUNK]:
                reserved = {**codec.static_entries(statics.get(cid)), **marks}
                # one key per DEL: a cluster pipeline refuses more
                pipe.delete(self.seen_key(cid))
                pipe.delete(self.legacy_key(cid))
                state = stored_state(states.get(cid, {}), cut)
                pipe.set(self.state_key(cid), codec.pack(state, reserved))
            pipe.execute()
        return len(ids)

    def apply(
        self, events: Sequence[EventOps], *, scripts: Sequence[ScriptCall] = ()
    ) -> ApplyResult:
        """Apply events' ops, each at most once; ``scripts`` (Lua text, keys, arguments) run
        after them in the same pipeline, one round trip for both (their replies in
        ``script_replies``): the API joins outcome events to decisions this way."""
        self.ensure_layout()
        by_customer: dict[str, list[Any]] = defaultdict(list)
        encode, event_hash = codec.encode_field, codec.event_hash
        for ev in events:
            ops: list[Any] = []
            for f, v in ev.ops:
                ops.extend(encode(f))
                ops.append(v)
            by_customer[ev.customer_id] += [ev.event_id, event_hash(ev.event_id), ev.ts, ops]
        order = list(by_customer)
        groups: dict[int, list[str]] = defaultdict(list)
        for i, cid in enumerate(order):
            slot = i // APPLY_CHUNK if self._keyslot is None else self._keyslot(self.state_key(cid))
            groups[slot].append(cid)
        args = (self.replay_window_seconds, COMPACT_EVERY_SECONDS, _RULES)
        calls = []
        for group in groups.values():
            for first in range(0, len(group), APPLY_CHUNK):
                chunk = group[first : first + APPLY_CHUNK]
                keys = [k for cid in chunk for k in (self.state_key(cid), self.seen_key(cid))]
                payload = msgpack.packb([by_customer[cid] for cid in chunk])
                calls.append((keys, (*args, payload)))
        result = ApplyResult()
        batch: list[tuple[LuaScript, Sequence[Any], Sequence[Any]]] = [
            (_APPLY_SCRIPT, k, a) for k, a in calls
        ]
        for text, extra_keys, extra_args in scripts:
            script = _EXTRA_SCRIPTS.get(text)
            if script is None:
                script = _EXTRA_SCRIPTS.setdefault(text, LuaScript(text))
            batch.append((script, extra_keys, extra_args))
        everything = run_scripts(self.client, batch)
        result.script_replies = everything[len(calls) :]
        for replies in everything[: len(calls)]:
            for applied, dup, stale, late, invalid in replies:
                result.applied += int(applied)
                result.duplicate += int(dup)
                result.stale += int(stale)
                result.late += len(late)
                result.late_event_ids += [_text(x) for x in late]
                result.invalid += len(invalid)
                result.invalid_event_ids += [_text(x) for x in invalid]
        return result

    def compact(self, customer_id: str, now: float | None = None) -> int:
        """Remove the expired fields of one customer at ``now`` (default: their newest event
        time) and fold the shopping days no event can reach any more into months
        (:func:`~features.state.fold_shopping_days`); returns how many fields expired.
        Applying events does this once a day."""
        self.ensure_layout()
        at = "" if now is None else repr(float(now))
        keys = (self.state_key(customer_id), self.seen_key(customer_id))
        call = (keys, (at, _RULES, self.replay_window_seconds))
        return int(_COMPACT_SCRIPT.run(self.client, [call])[0])

    def upsert_static(self, customer_id: str, static: CustomerStatic) -> None:
        self.ensure_layout()
        entries = msgpack.packb(codec.stored_entries(codec.static_entries(static)))
        keys = (self.state_key(customer_id), self.seen_key(customer_id))
        _SET_SCRIPT.run(self.client, [(keys, (entries,))])

    def write_priors(self, priors: FeaturePriors) -> None:
        self.ensure_layout()
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.priors_key, priors_to_json(priors))
        pipe.set(self.layout_key, LAYOUT)
        pipe.execute()

    def delete(self, customer_id: str) -> bool:
        self.ensure_layout()
        return bool(
            sum(
                self.client.delete(key)
                for key in (
                    self.state_key(customer_id),
                    self.seen_key(customer_id),
                    self.legacy_key(customer_id),
                    self.verdict_key(customer_id),
                )
            )
        )

    def write_verdicts(self, verdicts: Mapping[str, str]) -> None:
        """Each verdict expires after :data:`VERDICT_SECONDS`; the API reads it with the
        customer's state instead of running the test on the request."""
        ids = list(verdicts)
        for start in range(0, len(ids), MATERIALISE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for cid in ids[start : start + MATERIALISE_CHUNK]:
                pipe.set(self.verdict_key(cid), verdicts[cid], ex=VERDICT_SECONDS)
            pipe.execute()

    def customer_ids(self) -> Iterator[str]:
        """Every customer with a stored state (``SCAN``: no order, no snapshot)."""
        start = len(self.prefix) + 4  # "<prefix>:s:{"
        for key in self.client.scan_iter(match=f"{self.prefix}:s:{{*", count=1000):
            yield _text(key)[start:-1]

    # reads --------------------------------------------------------------
    def read(self, customer_ids: Sequence[str]) -> list[StoredCustomer | None]:
        self.ensure_layout()
        pipe = self.client.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.get(self.state_key(cid))
            pipe.get(self.verdict_key(cid))
        replies = pipe.execute()
        return [
            decode_customer(cid, replies[2 * i], replies[2 * i + 1])
            for i, cid in enumerate(customer_ids)
        ]

    def statics(self, customer_ids: Iterable[str]) -> dict[str, CustomerStatic]:
        self.ensure_layout()
        ids = list(dict.fromkeys(customer_ids))
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.get(self.state_key(cid))
        return {
            cid: codec.static_of(codec.unpack(raw))
            for cid, raw in zip(ids, pipe.execute(), strict=True)
            if raw is not None
        }

    def read_priors(self) -> FeaturePriors:
        self.ensure_layout()
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_customer(
    customer_id: str, raw: bytes | None, verdict: bytes | None = None
) -> StoredCustomer | None:
    """A customer from the ``GET`` of its state key (``None`` when missing), and of its
    verdict key when read, for callers that fetch them in their own pipeline (the API
    reads them with other keys at once)."""
    stored = codec.unpack(raw)
    if not stored:
        return None
    season = None if verdict is None else verdict.decode()
    return StoredCustomer(customer_id, codec.state_of(stored), codec.static_of(stored), season)


__all__ = ["LAYOUT", "Op", "RedisOnlineStore", "decode_customer"]
