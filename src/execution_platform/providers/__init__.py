"""Provider adapters: one module per provider behind :class:`Provider`.

Provider modules are imported lazily by :func:`execution_platform.providers.registry.create_provider`
so that importing the package stays fast.
"""

from .base import Provider

__all__ = ["Provider"]
