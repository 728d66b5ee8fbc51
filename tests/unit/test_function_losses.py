"""A function whose own clients measured its data loss is judged on that loss."""

from __future__ import annotations

from pytest_drdrill.measure.history import History, ProbeOp
from pytest_drdrill.results import RpoResult, Verdict
from pytest_drdrill.targets import PACKAGED_TARGETS, load_targets
from pytest_drdrill.verdict.failover import judge_functions

FAULT_AT = 100.0


def _outage_of_two_seconds() -> History:
    history = History()
    for at, ok in ((99.0, True), (100.5, False), (101.5, False), (102.0, True)):
        history.record_probe(ProbeOp(at, at + 0.01, ok, "" if ok else "refused"))
    return history


def _judge(losses: dict[str, RpoResult] | None) -> dict[str, object]:
    results = judge_functions(
        load_targets(PACKAGED_TARGETS),
        {},
        observation_seconds=60.0,
        fault="region outage",
        probed={"video_upload": _outage_of_two_seconds()},
        fault_at=FAULT_AT,
        losses=losses,
    )
    return {r.function: r for r in results}


def test_the_applications_own_loss_fills_the_function_table() -> None:
    loss = RpoResult(lost_writes=2, lost_ids=(7, 9), window_seconds=1.5, unacknowledged_present=1)
    upload = _judge({"video_upload": loss})["video_upload"]
    assert upload.rpo == loss
    assert upload.verdict is Verdict.PASS, upload.reason  # 1.5 s within video_content's RPO


def test_a_loss_beyond_the_data_categorys_maximum_fails_the_function() -> None:
    loss = RpoResult(lost_writes=1, lost_ids=(3,), window_seconds=7200.0, unacknowledged_present=0)
    upload = _judge({"video_upload": loss})["video_upload"]
    assert upload.verdict is Verdict.FAIL, upload.reason


def test_without_its_own_loss_a_probed_function_has_none_from_no_dependency() -> None:
    assert _judge(None)["video_upload"].rpo is None
