"""Which providers exist, by name. Vendors register a factory here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nanobanana.core.errors import NotFound
from nanobanana.providers.base import Provider
from nanobanana.providers.local import LocalProvider

# name -> factory. A factory, not an instance, so settings (keys, URLs) are
# read when the provider is used rather than when this module is imported.
PROVIDERS: Mapping[str, Callable[[], Provider]] = {
    LocalProvider.name: LocalProvider,
}


def provider_get(name: str) -> Provider:
    """The provider called `name`; `NotFound` when no such provider exists."""
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise NotFound(f"unknown provider {name!r}") from None
    return factory()


def providers_configured() -> list[str]:
    """Names of the providers that have what they need to run, in registration order."""
    return [name for name, factory in PROVIDERS.items() if factory().is_configured()]
