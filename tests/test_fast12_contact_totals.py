"""The overall caps' count of contacts (fast12): the channels that do not count toward
them are read once per policy's channel rules, and the sums stay those of each channel's
own rules, for interleaved policies, copies with other channels, and unlisted channels;
two equal policies stay equal after one of them counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nba.channels import OUTBOUND_CHANNELS, Channel
from nba.contact_policy import ChannelRules, ContactPolicy

OUTBOUND = sorted(OUTBOUND_CHANNELS, key=lambda c: c.value)

policies = st.dictionaries(
    st.sampled_from(OUTBOUND),
    st.builds(ChannelRules, counts_toward_total=st.booleans()),
    max_size=len(OUTBOUND),
).map(lambda channels: ContactPolicy(channels=channels))
counts = st.dictionaries(st.sampled_from(list(Channel)), st.integers(0, 9), max_size=10)


def _by_rules(policy: ContactPolicy, seen: dict[Channel, int]) -> int:
    return sum(n for c, n in seen.items() if policy.rules(c).counts_toward_total)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(policies, counts), min_size=1, max_size=6))
def test_totals_follow_each_policys_rules(cases: list[tuple[ContactPolicy, dict]]) -> None:
    for policy, seen in cases + cases[::-1]:  # interleaved: each policy read again
        assert policy._total(seen) == _by_rules(policy, seen)


def test_a_copy_with_other_channels_counts_by_its_own_rules() -> None:
    policy = ContactPolicy()
    seen = {Channel.EMAIL: 2, Channel.WEB: 3, Channel.SMS: 1}
    assert policy._total(seen) == 3  # the on-site placements do not count
    counted = {c: ChannelRules(counts_toward_total=True) for c in (Channel.WEB, Channel.EMAIL)}
    copy = policy.model_copy(update={"channels": counted})
    assert copy._total(seen) == 6
    assert policy._total(seen) == 3
    assert policy == ContactPolicy()  # counting leaves nothing on the policy itself
