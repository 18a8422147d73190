"""A multichannel retailer simulator with known ground truth.

Simulated customers browse on the web, in the app and in stores, buy, abandon
carts, redeem coupons, and receive the retailer's historical campaigns (e-mail,
SMS, push, postal mail, calls), answering them according to their true channel
preference, active hours, tastes and sensitivity to offers. The output is the
data contract's four tables, plus the ground truth and the
:class:`ResponseModel` that generated the answers, so that models and decision
policies can be measured against the truth.

>>> sim = simulate(SimulatorConfig(n_customers=300, days=21, seed=1))
>>> {"product_view", "purchase", "message_opened"} <= set(sim.events["event_type"])
True
>>> sim.truth.customers.columns[:3].tolist()
['customer_id', 'persona', 'preferred_channel']
"""

from simulator.config import (
    Campaign,
    ConsentRates,
    FunnelConstants,
    MarketingEffects,
    PersonaMix,
    ResponseConstants,
    SimulatorConfig,
)
from simulator.response import (
    ExpectedValue,
    ResponseModel,
    ResponseProbabilities,
    ResponseSample,
)
from simulator.simulation import GroundTruth, SimulatedRetailer, simulate
from simulator.writer import stream_simulation, write_simulation

__all__ = [
    "Campaign",
    "ConsentRates",
    "ExpectedValue",
    "FunnelConstants",
    "GroundTruth",
    "MarketingEffects",
    "PersonaMix",
    "ResponseConstants",
    "ResponseModel",
    "ResponseProbabilities",
    "ResponseSample",
    "SimulatedRetailer",
    "SimulatorConfig",
    "simulate",
    "stream_simulation",
    "write_simulation",
]
