import datetime as dt
from tests.test_scenarios import customer, decide, events, profile_at
from tests.test_scenarios_offers import NOW

def test_probe(base):
    people = customer(base, consents=("email",))
    rows = []
    for day in (3, 10, 17, 24):
        rows.append((f"2026-02-{day:02d}T09:00:00Z", "email", "message_sent", None))
        rows.append((f"2026-02-{day + 3:02d}T19:00:00Z", "web", "product_view", "P1"))
        rows.append((f"2026-02-{day + 3:02d}T19:03:00Z", "web", "product_view", "P2"))
    profile = profile_at(base, people, events(*rows), NOW)
    print("rate", profile.shopping_days_per_week)
    decision = decide(profile, NOW, history={"recommendations_weekly": NOW - dt.timedelta(days=2)})
    for line in decision.explanation.lines():
        print(line)
    for r in decision.rejections:
        print(r)
    assert False
