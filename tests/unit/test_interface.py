"""What `registry.interface.differences` calls a change of a tenant's interface, one phrase each."""

from __future__ import annotations

from registry.interface import Interface, differences

ACTIVE = Interface("classification", 4, (0, 1, 2), ("a", "b", "c", "d"), True)


def test_the_same_interface_has_no_differences() -> None:
    # Given the active interface and an equal one / Then nothing changed
    assert differences(Interface("classification", 4, (0, 1, 2), ("a", "b", "c", "d"), True), ACTIVE) == ()


def test_feature_names_and_probabilities_are_part_of_the_interface() -> None:
    # Given a version with other names, and one without probabilities
    renamed = Interface("classification", 4, (0, 1, 2), ("a", "b", "c", "e"), True)
    no_probabilities = Interface("classification", 4, (0, 1, 2), ("a", "b", "c", "d"), False)
    # Then each difference is named
    assert differences(renamed, ACTIVE) == ("feature names a,b,c,e, the active version has a,b,c,d",)
    assert differences(no_probabilities, ACTIVE) == ("gives no probabilities, the active version does",)


def test_labels_are_compared_as_the_json_clients_read() -> None:
    # Given labels Python calls equal (1 == 1.0 == True) but a client's JSON does not
    floats = Interface("classification", 4, (0.0, 1.0, 2.0), ("a", "b", "c", "d"), True)
    # Then they are a change
    assert differences(floats, ACTIVE) == ("classes [0.0, 1.0, 2.0], the active version has [0, 1, 2]",)


def test_unknown_probabilities_are_not_a_change() -> None:
    # Given an active version known only from its mapping (no record: probabilities unknown)
    known_from_mapping = Interface("classification", 4, (0, 1, 2), ("a", "b", "c", "d"), None)
    # Then a version with or without probabilities is not refused for them
    assert differences(ACTIVE, known_from_mapping) == ()
