"""Configuration: environment settings (``EP_*``) and the YAML file."""

from .settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
