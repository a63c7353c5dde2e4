"""Looking providers up by name."""

from __future__ import annotations

import pytest

from nanobanana.core.errors import NotFound
from nanobanana.providers.local import LocalProvider
from nanobanana.providers.registry import provider_get, providers_configured


def test_provider_get_returns_the_local_provider_by_name():
    provider = provider_get("local")

    assert isinstance(provider, LocalProvider)
    assert provider.name == "local"


@pytest.mark.parametrize("name", ["", "midjourney", "LOCAL"])
def test_provider_get_raises_not_found_for_an_unknown_name(name):
    with pytest.raises(NotFound, match="unknown provider"):
        provider_get(name)


def test_providers_configured_lists_the_local_provider():
    assert providers_configured() == ["local"]
