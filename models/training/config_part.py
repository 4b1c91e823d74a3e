"""Configuration that one layer declares once and another inherits: the model asset's Dagster
config inherits the training and gate fields (with their descriptions) instead of repeating them."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict


class ConfigPart(BaseModel):
    """A frozen group of settings that a larger config (the model asset's) holds among others."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def of(cls, config: BaseModel) -> Self:
        """Just this part's fields of a config that holds them among others."""
        return cls.model_validate(config.model_dump(include=set(cls.model_fields)))
