"""Hypothesis profiles: a quick default and a thorough one (HYPOTHESIS_PROFILE=thorough)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Generated data sets are cached in a temporary folder, not in the user's home."""
    previous = os.environ.get("DIVERGENCES_CACHE")
    os.environ["DIVERGENCES_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["DIVERGENCES_CACHE"]
    else:
        os.environ["DIVERGENCES_CACHE"] = previous
