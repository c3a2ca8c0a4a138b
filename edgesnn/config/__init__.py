"""Strict, declarative configuration: schemas, TOML loading, pipeline validation."""

from edgesnn.config.schema import REQUIRED, Field, Schema, did_you_mean

__all__ = ["REQUIRED", "Field", "Schema", "did_you_mean"]
