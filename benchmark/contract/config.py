"""Method configs as validated objects.

Each method declares a dataclass schema (its ``Config``, a :class:`MethodConfig` subclass). The merged ``method:``
node of a run (schema defaults <- ``configs/methods/<m>.yaml`` <- its entry for the task <- profile <- command line)
is instantiated into that dataclass once, as peft's ``LoraConfig`` is: OmegaConf checks the keys (unknown ones
are errors) and the types, ``__post_init__`` checks the values, and the method then reads typed fields.

Per-task data that only one method needs (OPPU's per-user pair template, the summary prompts, Persona-Plug's
query rule) is a field of that method's config, filled from the ``tasks: {<task>: {...}}`` block of its YAML.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

T = TypeVar("T", bound="MethodConfig")


@dataclass
class MethodConfig:
    """Schema of the ``method:`` node; subclasses add their fields (unknown keys are errors)."""
    name: str = ""


def instantiate(cls: type[T], node: DictConfig | dict[str, Any], where: str) -> T:
    """The validated ``cls`` instance for a merged ``method:`` node; errors name ``where`` (the method's YAML)."""
    try:
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), node))
    except MissingMandatoryValue as e:
        raise ValueError(f"{where}: method.{e.full_key} is not set for this task (add it under "
                         f"'tasks: {{<task>: ...}}' or 'method:')") from None
    except OmegaConfBaseException as e:
        raise ValueError(f"{where}: {str(e).splitlines()[0]}") from None
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    assert isinstance(obj, cls), type(obj)
    return obj


def as_dict(cfg: MethodConfig) -> dict[str, Any]:
    """Plain nested dict of a config object (for content keys and cost rows)."""
    return dataclasses.asdict(cfg)


def check_choice(value: Any, choices: Sequence[Any], key: str) -> None:
    """A ``__post_init__`` helper: ``key`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"method.{key} must be one of {tuple(choices)}, got {value!r}")


def check_range(value: float, low: float, high: float, key: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"method.{key} must be in [{low}, {high}], got {value}")
