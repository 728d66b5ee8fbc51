"""The failover envelope: how long Patroni's own settings let a failover take, per fault.

The drill computes it from the live settings (the mapping Patroni's REST ``/config``
returns, fetched by the caller) before injecting anything, so a tier whose maximum RTO
the settings cannot meet fails first with the settings to change; afterwards the
measured RTO is compared with it, because a failover outside its envelope is not the
failover the settings describe (patroni#1663, #2868).

What each term rests on, from Patroni's documentation of its dynamic configuration
(paraphrased):

- ``ttl`` is the lifetime of the leader lock: the time before an automatic failover
  begins. The leader renews the lock once per HA loop, so a leader that dies right
  after renewing keeps it for a full ``ttl``, and one that dies just before renewing
  for at least ``ttl - loop_wait``.
- ``loop_wait`` is how long a member's HA loop sleeps between cycles, so a replica may
  need up to one ``loop_wait`` to notice the lock is gone and race for it.
- ``primary_start_timeout`` (``master_start_timeout`` before Patroni 3.0) is how long a
  crashed primary may take to recover in place before a failover starts; the
  documentation gives the worst case for a primary failure as ``loop_wait +
  primary_start_timeout + loop_wait``, or just ``loop_wait`` when it is 0.
- ``retry_timeout`` bounds DCS and PostgreSQL retries: a DCS outage shorter than it
  does not demote the leader. The rule ``loop_wait + 2 * retry_timeout <= ttl`` makes a
  leader cut off from the DCS demote itself before its lock expires elsewhere.
- ``primary_race_backoff`` (Patroni 4) delays a replica's race while WAL still arrives.
- With ``failsafe_mode`` a primary that loses the DCS keeps running as long as it
  reaches every member over the REST API, and members it reaches that way stay out of
  the leader race even once the lock has expired; without it, it demotes.
- A client partition is invisible to Patroni: it sees a healthy leader and does not
  fail over, by design.

What is an estimate, not a Patroni setting: ``promotion``, the time from winning the
race to the first write accepted through HAProxy (``pg_ctl promote`` plus HAProxy's
health check), default 1 s; pass what the drill measured on the machine. Lease expiry in
etcd is taken as exact; clock drift and a slow DCS are not modelled.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from collections.abc import Mapping

Fault = Literal[
    "node_loss",
    "postgres_crash",
    "patroni_frozen",
    "dcs_partition",
    "dcs_quorum_lost",
    "clients_partitioned",
]

#: Patroni's own defaults, used for any key ``/config`` leaves out.
PATRONI_DEFAULTS: dict[str, float] = {
    "ttl": 30,
    "loop_wait": 10,
    "retry_timeout": 10,
    "primary_start_timeout": 300,
    "primary_race_backoff": 0,
}

#: Estimated seconds from winning the leader race to the first write through HAProxy.
PROMOTION_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class FailoverEnvelope:
    """The worst (and best) failover time Patroni's settings allow for one fault.

    :param fault: the fault it is for.
    :param worst_case_seconds: the upper bound; ``None`` when no failover is bounded
        (Patroni does not fail over for this fault by design, or cannot).
    :param terms: ``(name, seconds, setting)`` summing to the worst case; ``setting`` is
        the Patroni key behind the term, ``None`` for an estimate.
    :param reason: why the terms add up this way (or why there is no bound).
    :param best_case_seconds: the lower bound, when the settings imply one.
    """

    fault: Fault
    worst_case_seconds: float | None
    terms: tuple[tuple[str, float, str | None], ...]
    reason: str
    best_case_seconds: float | None = None
    #: The HA stack whose settings these are, as the pre-check and comparison name it.
    stack: str = "Patroni"
    #: Where the settings are changed and the rule to keep, for the pre-check's advice.
    advice: str = (
        "in the Patroni settings (--drill-patroni-config), keeping loop_wait + "
        "2 * retry_timeout <= ttl"
    )

    def describe(self) -> str:
        """E.g. ``node loss: at most 12.0 s = ttl 10 s + loop_wait 1 s + promotion 1 s``."""
        label = self.fault.replace("_", " ")
        if self.worst_case_seconds is None:
            return f"{label}: no bound, {self.reason}"
        sum_ = " + ".join(f"{name} {_num(seconds)} s" for name, seconds, _ in self.terms)
        return f"{label}: at most {self.worst_case_seconds:.1f} s = {sum_}"


def envelope(
    fault: Fault, config: Mapping[str, Any], *, promotion_seconds: float = PROMOTION_SECONDS
) -> FailoverEnvelope:
    """The failover envelope of ``fault`` under the live settings ``config`` (``/config``).

    :raises ValueError: for an unknown fault.
    """
    s = _settings(config)
    ttl, loop = s["ttl"], s["loop_wait"]
    promotion = ("promotion", promotion_seconds, None)
    race = [("primary_race_backoff", s["primary_race_backoff"], "primary_race_backoff")]
    race = [term for term in race if term[1] > 0]
    lock_expiry = (
        ("ttl", ttl, "ttl"),
        ("loop_wait", loop, "loop_wait"),
        *race,
        promotion,
    )
    least = max(ttl - loop, 0.0)
    if fault == "node_loss":
        return _make(
            fault,
            lock_expiry,
            "the dead leader's lock lives up to ttl after its last renewal, a replica "
            "notices within one loop_wait, then promotes",
            least,
        )
    if fault == "patroni_frozen":
        return _make(
            fault,
            lock_expiry,
            "a frozen Patroni stops renewing the lock and answering HAProxy's checks; "
            "the lock expires after ttl and a replica takes over within one loop_wait",
            least,
        )
    if fault == "dcs_partition":
        if s["failsafe_mode"]:
            return FailoverEnvelope(
                fault,
                None,
                (),
                "with failsafe_mode a leader cut off from the DCS stays primary while every "
                "member acknowledges it over the REST API, and those members do not race "
                "for the lock: no failover is expected",
            )
        return _make(
            fault,
            lock_expiry,
            f"the cut-off leader demotes within loop_wait + 2 * retry_timeout = "
            f"{_num(loop + 2 * s['retry_timeout'])} s <= ttl; its lock expires after ttl "
            f"and a replica that still reaches the DCS takes over within one loop_wait",
            least,
        )
    if fault == "postgres_crash":
        start = s["primary_start_timeout"]
        if start == 0:
            terms: tuple[tuple[str, float, str | None], ...] = (
                ("loop_wait", loop, "loop_wait"),
                promotion,
            )
            why = "primary_start_timeout 0: Patroni fails over as soon as it sees the crash"
        else:
            terms = (
                ("loop_wait", loop, "loop_wait"),
                ("primary_start_timeout", start, "primary_start_timeout"),
                ("loop_wait", loop, "loop_wait"),
                promotion,
            )
            why = (
                "Patroni notices the crash within one loop_wait and restarts PostgreSQL in "
                "place; only if that takes longer than primary_start_timeout does a replica "
                "take over, within one more loop_wait"
            )
        return _make(fault, terms, why, None)
    if fault == "dcs_quorum_lost":
        if s.get("failsafe_mode"):
            why = (
                "with failsafe_mode the primary keeps running while it reaches every "
                "member over the REST API: no failover is expected"
            )
        else:
            why = (
                "without failsafe_mode the primary demotes once its DCS retries run out "
                "and no member can take the lock until the quorum returns: writes stop "
                "for as long as the DCS is down"
            )
        return FailoverEnvelope(fault, None, (), why)
    if fault == "clients_partitioned":
        return FailoverEnvelope(
            fault,
            None,
            (),
            "Patroni sees a healthy leader and by design does not fail over: the outage "
            "lasts as long as the partition",
        )
    raise ValueError(f"unknown fault {fault!r}: use one of {', '.join(get_args(Fault))}")


def precheck(env: FailoverEnvelope, max_rto_seconds: float) -> str | None:
    """``None`` when the worst case fits ``max_rto_seconds``, else what to change.

    An envelope without a bound has nothing to pre-check: the drill judges the outage as
    measured.
    """
    worst = env.worst_case_seconds
    if worst is None or worst <= max_rto_seconds:
        return None
    settings = sorted(
        {setting: seconds for _, seconds, setting in env.terms if setting}.items(),
        key=lambda item: -item[1],
    )
    change = " or ".join(f"{name} (now {_num(seconds)} s)" for name, seconds in settings)
    return (
        f"{env.describe()}, over the tier's maximum acceptable RTO of {max_rto_seconds:.1f} s "
        f"by {worst - max_rto_seconds:.1f} s: lower {change} {env.advice}"
    )


#: What each stack's shortest possible failover waits out, for the comparison's message.
_LOWER_BOUND = {
    "Patroni": "ttl - loop_wait",
    "repmgr": "the reconnect window",
    "pg_auto_failover": "primary_demote_timeout",
}


def compare(env: FailoverEnvelope, measured_seconds: float) -> str | None:
    """The flag text when the measured RTO is outside the envelope, else ``None``."""
    worst, best = env.worst_case_seconds, env.best_case_seconds
    if worst is not None and measured_seconds > worst:
        return (
            f"{env.stack} took {measured_seconds:.1f} s; its settings allow at most {worst:.1f} s "
            f"({env.describe()})"
        )
    if best is not None and measured_seconds < best:
        return (
            f"{env.stack} took {measured_seconds:.1f} s; its settings need at least {best:.1f} s "
            f"({_LOWER_BOUND.get(env.stack, 'the settings')}): "
            "the failover was not the one they describe"
        )
    return None


def _make(
    fault: Fault,
    terms: tuple[tuple[str, float, str | None], ...],
    reason: str,
    best: float | None,
) -> FailoverEnvelope:
    return FailoverEnvelope(fault, float(sum(t[1] for t in terms)), terms, reason, best)


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Timings from ``/config`` as floats, Patroni's defaults where a key is missing."""
    out: dict[str, Any] = dict(PATRONI_DEFAULTS)
    if "primary_start_timeout" not in config and "master_start_timeout" in config:
        out["primary_start_timeout"] = config["master_start_timeout"]
    for key in PATRONI_DEFAULTS:
        if config.get(key) is not None:
            out[key] = config[key]
    # Patroni stores what it was given; numbers may come back as strings.
    out = {key: float(value) for key, value in out.items()}
    out["failsafe_mode"] = config.get("failsafe_mode") in (True, "true", "on")
    return out


def _num(value: float) -> str:
    return f"{value:g}"


#: repmgr's own defaults (repmgr.conf.sample, 5.3), used for any key the node leaves out.
REPMGR_DEFAULTS: dict[str, float] = {
    "reconnect_attempts": 6,
    "reconnect_interval": 10,
    "monitor_interval_secs": 2,
}


#: Estimated seconds from repmgrd's last failed reconnect to the first write through
#: HAProxy: the election with its visibility consensus, ``repmgr standby promote`` and
#: HAProxy's next check. Measured here: 1.1-2.1 s over the node-loss drills with the
#: drill's settings (RTO p95 4.09 s over a 2 s reconnect window and a 1 s check), so 1 s
#: (the Patroni estimate) was too little; a run with repmgr's own defaults overran it.
REPMGR_PROMOTION_SECONDS = 2.0


def repmgr_envelope(
    fault: Fault, config: Mapping[str, Any], *, promotion_seconds: float = REPMGR_PROMOTION_SECONDS
) -> FailoverEnvelope:
    """The failover envelope of ``fault`` under repmgr.conf settings ``config``.

    repmgrd on a standby notices a lost primary at its next monitoring check (within
    ``monitor_interval_secs``), then tries ``reconnect_attempts`` times,
    ``reconnect_interval`` apart, before the election: it sleeps between attempts, not
    after the last (repmgrd's ``try_reconnect``), so the window is
    ``(reconnect_attempts - 1) × reconnect_interval``. ``promotion`` (an estimate) covers
    the election with its visibility consensus, ``repmgr standby promote`` and HAProxy's
    check. Only with ``failover=automatic`` is there a bound.
    """
    s = {k: float(config.get(k, v)) for k, v in REPMGR_DEFAULTS.items()}
    if str(config.get("failover", "manual")) != "automatic":
        return FailoverEnvelope(
            fault,
            None,
            (),
            "failover is not automatic: repmgrd never promotes a standby",
            stack="repmgr",
            advice=_REPMGR_ADVICE,
        )
    if fault not in ("node_loss", "postgres_crash"):
        raise ValueError(f"repmgr bounds node_loss and postgres_crash, not {fault!r}")
    window = (s["reconnect_attempts"] - 1) * s["reconnect_interval"]
    terms = (
        ("monitor_interval_secs", s["monitor_interval_secs"], "monitor_interval_secs"),
        ("(reconnect_attempts - 1) × reconnect_interval", window,
         "reconnect_attempts × reconnect_interval"),
        ("promotion", promotion_seconds, None),
    )  # fmt: skip
    made = _make(
        fault,
        terms,
        "repmgrd sees the primary gone within one monitoring interval, retries "
        "reconnect_attempts times reconnect_interval apart, then elects and promotes",
        window,
    )
    return dataclasses.replace(made, stack="repmgr", advice=_REPMGR_ADVICE)


_REPMGR_ADVICE = (
    "in the repmgr settings (--drill-repmgr-config), keeping reconnect_attempts × "
    "reconnect_interval above 2 × monitor_interval_secs"
)
