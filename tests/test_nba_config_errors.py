"""Every validated configuration file reports its problems the same way (nba.config_errors)."""

from __future__ import annotations

import pytest

from nba.catalog import CatalogError, parse_catalog
from nba.config_errors import ConfigError, ConfigIssue
from nba.contact_policy import ContactPolicyError, parse_contact_policy
from nba.experiment import ExperimentError, parse_experiment


def _raised(call, *args, **kwargs) -> ConfigError:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_each_document_raises_a_config_error_listing_every_issue() -> None:
    catalog = _raised(parse_catalog, "actions: [{id: a, type: offer, channels: [fax]}]")
    policy = _raised(parse_contact_policy, "cap_1d: -1\nchannels: {fax: {}}")
    experiment = _raised(parse_experiment, {"name": "x"}, source="exp.yaml")
    for error, kind, title in (
        (catalog, CatalogError, "the action catalog is invalid:"),
        (policy, ContactPolicyError, "the contact policy is invalid:"),
        (experiment, ExperimentError, "the experiment configuration is invalid:"),
    ):
        assert isinstance(error, kind) and isinstance(error, ValueError)
        assert error.issues and all(isinstance(i, ConfigIssue) for i in error.issues)
        assert str(error).splitlines() == [title] + [f"  - {i}" for i in error.issues]


def test_each_document_writes_the_place_its_own_way() -> None:
    catalog = _raised(parse_catalog, "actions: [{id: a, type: offer, channels: [fax]}]")
    assert str(catalog.issues[0]).startswith("action 'a', field 'channels': ")
    policy = _raised(parse_contact_policy, "channels: {fax: {}}")
    assert isinstance(policy, ContactPolicyError)
    (problem,) = policy.problems  # the issues as text, as before the shared base
    assert problem == str(policy.issues[0])
    assert problem.startswith("channels.fax: unknown channel 'fax' (expected one of: email")
    experiment = _raised(parse_experiment, {"name": "x"}, source="exp.yaml")
    assert all(str(i).startswith("exp.yaml: ") for i in experiment.issues)
