"""Every section of edgewatch's settings files and the keys it may hold, all components together.

One file often serves several components (`deploy/central.toml` holds the collector's, the
server's and the ticket runtime's sections; `[mqtt]` is read by the agent and the collector, each
for keys of its own), so whether a key is known cannot be decided by the one component reading the
file: it is decided here. `common.config.Settings` refuses, when it opens a file, a section not
listed and a key its section does not list, naming the file, the section and the key. The keys are
those the loaders read (`agent/settings.py`, `collector/settings.py`, `server/settings.py`,
`tickets/settings.py`, `tickets/policy.py`, `tickets/notify/registry.py`,
`collector/predictive.py`, ...); a test runs every loader and checks this table against what they
read, both ways. A section whose keys its own parser checks maps to None.

Standard library only, like the rest of `common`: the agent loads it.
"""

from __future__ import annotations

_CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "sms", "inbox")  # tickets.notify.message.CHANNELS

SECTIONS: dict[str, frozenset[str] | None] = {
    "agent": frozenset({
        "data_dir", "device_class", "device_id", "interval", "log_level", "max_inflight", "probe_count",
        "probe_timeout", "proxy", "publish_rate", "reconnect_max", "reconnect_min", "spool_max_samples", "stop_timeout",
        "targets", "tcp_probe_count",
    }),
    "collector": frozenset({
        "batch_size", "batch_wait_s", "data_dir", "dead_letter_payload_bytes", "dead_letter_retention_days",
        "default_interval_s", "gc_threshold", "metrics_host", "metrics_port", "offline_check_s", "offline_intervals",
        "predictive_flush_s", "queue_size", "registry_flush_s", "thresholds", "thresholds_poll_s",
    }),
    "bus": frozenset({"lease_ttl_s", "name", "partitions", "replicas", "retention_days", "stream", "url"}),
    "database": frozenset({"url"}),
    "intake": frozenset({
        "default_severity", "device_labels", "device_tags", "metric_labels", "metric_tags", "metrics", "severities",
        "severity_label", "unknown_devices",
    }),
    "knowledge": frozenset({"repeat_count", "repeat_window_days", "review_months"}),
    "mqtt": frozenset({
        # both the agent and the collector
        "url", "username", "password", "ca_file",
        # the agent
        "cert_file", "key_file", "password_file", "keepalive", "connect_timeout",
        # the collector
        "client_id", "keepalive_s", "protocol", "separate_process", "session_expiry_s", "telegraf_topics",
        "topic_prefix",
    }),
    "notifications": frozenset({
        "allow_private_addresses", "dingtalk_msgtype", "http_timeout", "inbox_path", "max_attempts",
        "retry_after_max_seconds", "retry_base_seconds", "retry_factor", "retry_max_seconds",
        "retry_max_seconds_blue", "retry_max_seconds_red", "retry_max_seconds_yellow", "smtp_ca_file", "smtp_from",
        "smtp_host",
        "smtp_password", "smtp_port", "smtp_security", "smtp_timeout", "smtp_username",
        "sms_access_key_id", "sms_access_key_secret", "sms_endpoint", "sms_max_chars", "sms_param_max_chars",
        "sms_provider", "sms_sign_name", "sms_survey_template", "sms_template", "sms_template_params",
        *(f"{kind}_{limit}" for kind in _CHANNELS for limit in ("burst", "per_minute")),
    }),
    # Nested tables per metric and class: `rules.predict.parse_predictive` checks every key when the
    # collector loads it (`collector/predictive.py`).
    "predictive": None,
    "server": frozenset({
        "admin_token", "auth_failure_limit", "cors_origins", "data_dir", "database_url", "force_secure_cookies",
        "forwarded_allow_ips", "host", "kpi_cache_s", "kpi_stale_s", "max_body_bytes", "poll_interval_s", "port",
        "session_max_age_s", "session_secret", "telemetry_path", "thresholds",
    }),
    "sla": frozenset({
        "customer_levels", "dispatch", "escalation_chain_blue", "escalation_chain_red", "escalation_chain_yellow",
        "escalation_every", "first_response_blue", "first_response_red", "first_response_yellow",
        "follow_up_level", "on_site", "pre_maintenance_start", "rca", "resolution_blue", "resolution_red",
        "resolution_yellow", "satisfaction_threshold", "warn_at", "warn_before", "warn_before_enabled",
    }),
    "telemetry": frozenset({
        "buffer_points", "flush_interval_s", "flush_points", "influx_bucket", "influx_database", "influx_org",
        "influx_password", "influx_retention_policy", "influx_token", "influx_url", "influx_username",
        "retention_days", "retry_max_s", "rollup_1h_retention_days", "rollup_1m_retention_days", "rollup_every_s",
        "sqlite_path", "store", "timeout_s", "victoriametrics_url",
    }),
    "tickets": frozenset({
        "default_language", "default_timezone", "incident_customer_wait_seconds", "incident_min_devices",
        "incident_window_seconds", "outbox_batch", "outbox_lease_seconds", "public_url",
        "reconcile_seconds", "scheduler_threads",
    }),
}
