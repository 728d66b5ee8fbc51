"""The keys each mapping of a targets file takes, with an example value of each.

The loader checks every mapping of the file against one :class:`Spec`: a missing required
key, or an unknown one (with the closest valid key suggested), is refused, and the
examples become the hints of those errors. Adding a key to the file format starts here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = [
    "COMMUNICATION",
    "COSTS",
    "COST_ROW",
    "DATA",
    "COMMAND_PROBE",
    "DEPENDENCY",
    "FUNCTION",
    "HTTP_PROBE",
    "PROBE",
    "SQL_PROBE",
    "STEP",
    "TIER",
    "TOP",
    "Spec",
]


@dataclasses.dataclass(frozen=True)
class Spec:
    """The keys one mapping of the file takes, each with an example value for hints."""

    what: str
    required: Mapping[str, str]
    optional: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Every key the mapping takes, required ones first."""
        return [*self.required, *self.optional]


TOP = Spec(
    "the top level",
    required={
        "schema_version": "1",
        "mtd": "20_minutes",
        "tiers": "{tier_1_critical: {target: 15_minutes, maximum_acceptable: 30_minutes}}",
    },
    optional={
        "data_categories": "{critical_user_data: {target: 5_minutes, "
        "maximum_acceptable: 15_minutes}}",
        "business_functions": "{user_authentication: {criticality: critical, ...}}",
        "business_dependencies": "{video_upload_workflow: {function: video_upload, ...}}",
        "downtime_costs": "{currency: USD, rows: [...]}",
        "communication": "{internal: {...}, external: {...}}",
        "service_map": "{database: [postgres], storage_service: [s3]}",
        "drill_schedule": "{tier_1_critical: monthly}",
        "backup_retention": "{full_local: 30_days, full_offsite: 365_days, "
        "incremental: 7_days, pitr: 30_days}",
    },
)
RETENTION = Spec(
    "backup_retention",
    required={
        "full_local": "30_days",
        "full_offsite": "365_days",
        "incremental": "7_days",
        "pitr": "30_days",
    },
)
TIER = Spec(
    "a tier",
    required={"target": "15_minutes", "maximum_acceptable": "30_minutes"},
    optional={
        "services": "[authentication, core_api]",
        "recovery_strategy": "hot_standby_immediate_failover",
    },
)
DATA = Spec(
    "a data category",
    required={"target": "5_minutes", "maximum_acceptable": "15_minutes"},
    optional={
        "backup_frequency": "continuous_replication",
        "backup_method": "synchronous_replication",
    },
)
FUNCTION = Spec(
    "a business function",
    required={
        "criticality": "critical",
        "tier": "tier_1_critical",
        "data_category": "critical_user_data",
        "rto": "15_minutes",
        "rpo": "5_minutes",
    },
    optional={
        "impact": "Complete service unavailable",
        "probes": "[{http: {url: 'https://app.example/health'}}]",
        "probe_interval": "1s",
    },
)
PROBE = Spec(
    "a function probe",
    required={},
    optional={
        "name": "login",
        "http": "{url: 'https://app.example/login', method: POST, status: 200}",
        "sql": "{dsn_env: APP_DSN, query: 'SELECT 1', expect: 1}",
        "command": "{argv: [curl, -fsS, 'https://app.example/health']}",
    },
)
HTTP_PROBE = Spec(
    "an http probe",
    required={"url": "https://app.example/health"},
    optional={
        "method": "GET",
        "body": '\'{"user": "drill"}\'',
        "status": "200",
        "timeout": "2s",
        "headers": "{Content-Type: application/json}",
    },
)
SQL_PROBE = Spec(
    "an sql probe",
    required={"dsn_env": "APP_DSN", "query": "SELECT count(*) FROM users"},
    optional={"expect": "1", "timeout": "2s"},
)
COMMAND_PROBE = Spec(
    "a command probe",
    required={"argv": "[curl, -fsS, 'https://app.example/health']"},
    optional={"timeout": "5s"},
)
DEPENDENCY = Spec(
    "a business dependency",
    required={"function": "video_upload", "depends_on": "[storage_service, database]"},
    optional={"impact_without": "No new content can be uploaded"},
)
COSTS = Spec(
    "downtime_costs",
    required={"rows": "[{duration: 1_hour, revenue_loss: 5000, ...}]"},
    optional={"currency": "USD"},
)
COST_ROW = Spec(
    "a downtime cost row",
    required={
        "duration": "1_hour",
        "revenue_loss": "5000",
        "productivity_loss": "2000",
        "recovery_cost": "1000",
        "total": "8000",
    },
)
COMMUNICATION = Spec(
    "communication",
    required={},
    optional={
        "internal": "{immediate_team: {...}}",
        "external": "{customers: {...}}",
    },
)
STEP = Spec(
    "a communication step",
    required={"methods": "[slack_alert, email]", "within": "5_minutes"},
    optional={"recipients": "[on_call_engineer, team_lead]", "approval_required": "true"},
)
