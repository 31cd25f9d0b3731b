"""Edge settings are validated at start-up, so a typo fails fast instead of limiting nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.ratelimit import Rate
from tests.conftest import make_settings


@pytest.mark.parametrize("spec", ["300", "300/min", "0/minute", "-1/hour", "ten/second"])
def test_malformed_rate_is_refused(spec: str) -> None:
    with pytest.raises(ValidationError):
        make_settings(rate_limit_default=spec)


@pytest.mark.parametrize(
    ("spec", "rate"),
    [("300/minute", Rate(300, 60)), ("5/second", Rate(5, 1)), ("1000/day", Rate(1000, 86400))],
)
def test_rates_parse_into_a_limit_per_period(spec: str, rate: Rate) -> None:
    assert Rate.parse(make_settings(rate_limit_auth=spec).rate_limit_auth) == rate


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = make_settings(trusted_proxies="10.0.0.0/8, 192.0.2.7,::1")
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.7", "::1"]
    with pytest.raises(ValidationError):
        make_settings(trusted_proxies="10.0.0.0/8,proxy.internal")


def test_an_empty_metrics_token_means_none() -> None:
    assert make_settings(metrics_token="").metrics_token is None
    token = make_settings(metrics_token="s3cret").metrics_token
    assert token is not None
    assert token.get_secret_value() == "s3cret"
