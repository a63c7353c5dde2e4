"""Which providers exist, by name. Vendors register a factory here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nanobanana.core.errors import NotFound
from nanobanana.providers.base import Provider
from nanobanana.providers.gemini import GeminiProvider
from nanobanana.providers.kling import KlingProvider
from nanobanana.providers.local import LocalProvider
from nanobanana.providers.openai_api import OpenAIProvider
from nanobanana.providers.runway import RunwayProvider

# name -> factory. A factory, not an instance, so keys (from the environment)
# are read when the provider is used rather than when this module is imported.
PROVIDERS: Mapping[str, Callable[[], Provider]] = {
    LocalProvider.name: LocalProvider,
    GeminiProvider.name: GeminiProvider,
    OpenAIProvider.name: OpenAIProvider,
    KlingProvider.name: KlingProvider,
    RunwayProvider.name: RunwayProvider,
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
