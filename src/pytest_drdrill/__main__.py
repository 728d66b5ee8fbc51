"""Command-line tools of pytest-drdrill: ``python -m pytest_drdrill doctor`` and ``heal``.

The drills themselves run under pytest; this entry point holds what a user needs
outside a pytest run.

.. versionadded:: 0.6
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_drdrill",
        description="Tools of pytest-drdrill; drills themselves run with pytest --drill=CADENCE.",
    )
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    doctor = commands.add_parser(
        "doctor",
        help="check this machine: what each backend, HA stack and backup tool needs and lacks",
        description=(
            "Check what the drills need on this machine and print each part as OK or MISSING "
            "with the command that fixes it. Exit status 0 when the default drills (local "
            "backend, reference failover) can run, 1 otherwise; optional parts never fail it."
        ),
    )
    doctor.add_argument("--drill-pg-bin", metavar="DIR", help="as pytest's --drill-pg-bin")
    doctor.add_argument("--drill-redis-bin", metavar="DIR", help="as pytest's --drill-redis-bin")
    doctor.add_argument("--drill-run-as", metavar="USER", help="as pytest's --drill-run-as")
    doctor.add_argument(
        "--drill-docker-images", metavar="SPEC", help="as pytest's --drill-docker-images"
    )
    heal = commands.add_parser(
        "heal",
        help="the kill switch: heal every fault of every drill running on this machine",
        description=(
            "Throw the kill switch: every running drill heals its faults within 100 ms, stops "
            "and records 'aborted: kill switch'; every registered fault proxy is reset and "
            "every server a drill started is sent SIGCONT."
        ),
    )
    heal.add_argument("--reason", default="", help="why, recorded in each aborted drill")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command named in ``argv``; return its exit status."""
    args = _parser().parse_args(argv)
    if args.command == "heal":
        from pytest_drdrill.kill_switch import throw

        for line in throw(args.reason):
            print(line)
        return 0
    from pytest_drdrill.doctor import Settings
    from pytest_drdrill.doctor.report import diagnose, write_report

    settings = Settings(
        pg_bin=args.drill_pg_bin,
        redis_bin=args.drill_redis_bin,
        run_as=args.drill_run_as,
        docker_images=args.drill_docker_images,
    )
    return write_report(diagnose(settings), sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
