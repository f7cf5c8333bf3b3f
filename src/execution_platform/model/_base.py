"""Shared pydantic configuration for canonical types."""

from pydantic import BaseModel, ConfigDict


class CanonicalModel(BaseModel):
    """Base of every canonical type: strict about unknown fields so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
