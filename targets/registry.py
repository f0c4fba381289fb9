"""The one registry of backends, filled by `@register`, loud on duplicates and misses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compiler.options import OptionSet
from compiler.profile import TargetProfile
from compiler.profile import load_profile as core_load_profile
from compiler.registry import Registry
from targets.base import Backend

BACKENDS: Registry[type[Backend]] = Registry("backend", key=lambda cls: cls.name)
register = BACKENDS.register


def get_backend(name: str) -> Backend:
    return BACKENDS.lookup(name)()


def load_profile(target: str | Path) -> TargetProfile:
    """A target profile (a name, or a path to a user's profile TOML) with its [options] checked
    against what its backend declares: an unknown key or an ill-typed value is refused here,
    naming the file and the key."""
    profile = core_load_profile(target)
    cls = BACKENDS.lookup(profile.backend)
    options = OptionSet(cls.name, cls.options).parse(profile.options, str(profile.path))
    return dataclasses.replace(profile, options=options)
