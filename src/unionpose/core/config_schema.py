"""`ConfigModel`, the base of every section of a recipe: strict about what a typo or a slip would let through.

pydantic, left to itself, reads `epochs: true` as 1 and `lr: .inf` as infinity (a run that diverges at its first
step with a `FloatingPointError`). Every section derived from `ConfigModel` refuses instead:
- unknown keys (a misspelt key must not be ignored);
- infinite and NaN numbers;
- a boolean where a number is expected (`true` is not 1 epoch).
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class ConfigModel(BaseModel):
    """A config section: unknown keys, non-finite numbers and booleans for numbers are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        items = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(item, bool) for item in items) and info.field_name is not None:
            kinds = _kinds(cls.model_fields[info.field_name].annotation)
            if bool not in kinds and kinds & {int, float}:
                raise ValueError(f"expected a number, got the boolean {str(value).lower()!r}")
        return value


def _kinds(annotation: Any) -> set[type]:
    """The plain types an annotation admits, looking through Optional, unions, Annotated, tuples and lists."""
    origin = get_origin(annotation)
    if origin is None:
        return {annotation} if isinstance(annotation, type) else set()
    if origin is Literal:
        return {type(value) for value in get_args(annotation)}
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType, tuple, list):
        return set().union(*(_kinds(argument) for argument in get_args(annotation) if argument is not Ellipsis))
    return set()
