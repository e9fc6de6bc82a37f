"""A tenant's interface: moved to `model_runtime.interface` (the admin function, which has no
registry, compares interfaces too); re-exported here for the registry's callers."""

from model_runtime.interface import Interface, differences

__all__ = ["Interface", "differences"]
