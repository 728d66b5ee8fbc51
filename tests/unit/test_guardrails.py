"""Guardrails: the marker's ``guardrails=`` checked, and each rule tripping on a history."""

from __future__ import annotations

import pytest

from pytest_drdrill import timing
from pytest_drdrill.guardrails import Guardrails, GuardrailWatch, parse
from pytest_drdrill.measure.history import History, Outcome, ProbeOp, WriteOp
from pytest_drdrill.results import Target

TIER = Target("tier", "tier_1_critical", 900.0, 1800.0)
WHERE = "@pytest.mark.drdrill on t"


def test_the_default_is_the_tiers_maximum_outage() -> None:
    assert parse(WHERE, None, TIER, ()) == Guardrails(max_outage=1800.0)
    assert parse(WHERE, None, None, ()) == Guardrails()


def test_every_key_is_read() -> None:
    rails = parse(
        WHERE,
        {"max_outage": "2m", "max_error_rate": 0.5, "window": "5s", "functions": ["login"]},
        TIER,
        ("login",),
    )
    assert rails == Guardrails(120.0, 0.5, 5.0, ("login",))
    assert "outage over 2m00s" in rails.describe() and "login failing" in rails.describe()
    assert parse(WHERE, {"max_outage": None}, TIER, ()).max_outage is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2m", "give a dict such as"),
        ({"max_outge": "2m"}, r"guardrails key\(s\) \['max_outge'\]; valid: max_outage"),
        ({"max_outage": "soon"}, "guardrails max_outage:"),
        ({"max_outage": "0s"}, "must be above zero"),
        ({"max_error_rate": 1.5}, "give a share from 0 to below 1"),
        ({"max_error_rate": True}, "give a share from 0 to below 1"),
        ({"functions": "login"}, "give a list of names"),
        ({"functions": ["logn"]}, r"\['logn'\] are not business functions.*known: login"),
    ],
)
def test_bad_values_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(WHERE, value, TIER, ("login",))


def _history(*ops: tuple[float, Outcome]) -> History:
    history = History()
    now = timing.monotonic()
    for n, (age, outcome) in enumerate(ops):
        history.record_write(WriteOp(n, now - age - 0.01, now - age, outcome))
    return history


def _watch(rails: Guardrails, history: History, probes: History | None = None) -> GuardrailWatch:
    functions = {} if probes is None else {"login": probes}
    return GuardrailWatch(rails, {"postgres": history}, functions, on_breach=lambda _r: None)


def test_an_outage_past_the_limit_trips_and_one_within_it_does_not() -> None:
    history = _history((5.0, Outcome.OK), (4.0, Outcome.FAIL), (0.1, Outcome.FAIL))
    assert "postgres has had no acknowledged write for" in str(
        _watch(Guardrails(max_outage=3.0), history).check()
    )
    assert _watch(Guardrails(max_outage=10.0), history).check() is None
    healthy = _history((5.0, Outcome.OK), (0.1, Outcome.OK))
    assert _watch(Guardrails(max_outage=1.0), healthy).check() is None


def test_an_error_rate_over_the_bound_for_the_window_trips() -> None:
    ops = [(3.0 - 0.2 * n, Outcome.FAIL if n % 4 else Outcome.OK) for n in range(15)]
    rails = Guardrails(max_error_rate=0.5, window=2.5)
    assert "of postgres's writes failed" in str(_watch(rails, _history(*ops)).check())
    assert _watch(Guardrails(max_error_rate=0.9, window=2.5), _history(*ops)).check() is None


def test_a_function_whose_probes_all_fail_for_the_window_trips() -> None:
    probes = History()
    now = timing.monotonic()
    for age in (3.0, 2.0, 1.0, 0.1):
        probes.record_probe(ProbeOp(now - age - 0.01, now - age, ok=False, error="refused"))
    rails = Guardrails(window=2.5, functions=("login",))
    assert "every probe of login failed" in str(_watch(rails, _history(), probes).check())


def test_the_kill_switch_trips_first() -> None:
    watch = GuardrailWatch(
        Guardrails(), {}, {}, on_breach=lambda _r: None, kill_switch=lambda: "kill switch thrown"
    )
    assert watch.check() == "kill switch thrown"
