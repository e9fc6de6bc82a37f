"""A tenant's interface: what its clients' code depends on, and the one comparison of two of them.

A client is written against the model card: the task, how many columns a row has and their names,
the labels and the order of the probability columns, and whether probabilities exist at all. A
version that changes any of these breaks every client of the tenant at once (a 30-feature
tenant given a 4-feature model answers each old request with a 400), so `publish-model` and
`rollback` (and the tenant-admin API's upload and activate) call `differences` and refuse a change
unless the operator says the clients are ready. The batch cap, the format and the digest are not
part of it: a client cannot tell them apart in its answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from model_runtime.table import CLASSIFICATION, ModelRecord, Tenant


@dataclass(frozen=True, slots=True)
class Interface:
    task: str
    n_features: int
    classes: tuple[Any, ...]  # labels AND their order: the order of the probability columns
    feature_names: tuple[str, ...] | None
    probabilities: bool | None  # None: not known (a mapping whose version has no record)

    @classmethod
    def of_record(cls, record: ModelRecord) -> Interface:
        return cls(
            record.task,
            record.n_features,
            tuple(record.classes) if record.task == CLASSIFICATION else (),
            record.feature_names,
            record.has_probabilities,
        )

    @classmethod
    def of_tenant(cls, tenant: Tenant) -> Interface:
        """What the mapping alone tells (it does not say whether the model gives probabilities)."""
        classes = tuple(tenant.classes) if tenant.task == CLASSIFICATION else ()
        return cls(tenant.task, tenant.n_features, classes, tenant.feature_names, None)


def _labels(classes: tuple[Any, ...]) -> str:
    return json.dumps(list(classes))


def differences(new: Interface, active: Interface) -> tuple[str, ...]:
    """What `new` changes for clients of `active`, one phrase each ("4 features, the active
    version takes 30"); empty when the clients cannot tell the two apart."""
    found: list[str] = []
    if new.task != active.task:
        found.append(f"a {new.task} model, the active version is a {active.task} model")
    if new.n_features != active.n_features:
        found.append(f"{new.n_features} features, the active version takes {active.n_features}")
    # Compared as the JSON clients read: Python's == says 1 == 1.0 == True, a client's code does not.
    if _labels(new.classes) != _labels(active.classes) and new.task == active.task:
        found.append(f"classes {_labels(new.classes)}, the active version has {_labels(active.classes)}")
    if new.feature_names != active.feature_names:
        new_names, active_names = _names(new.feature_names), _names(active.feature_names)
        found.append(f"feature names {new_names}, the active version has {active_names}")
    if None not in (new.probabilities, active.probabilities) and new.probabilities != active.probabilities:
        gives = "gives probabilities" if new.probabilities else "gives no probabilities"
        found.append(f"{gives}, the active version {'does not' if new.probabilities else 'does'}")
    return tuple(found)


def _names(names: tuple[str, ...] | None) -> str:
    return "none" if names is None else ",".join(names)
