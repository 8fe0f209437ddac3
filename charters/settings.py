"""All configuration, read once from `CHARTERS_*` and passed in; nothing deeper reads the
environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from charters.brands import Brand, BrandBook, read_brands


class Settings(BaseSettings):
    """One profile for the embedded local stack (the defaults), one for real AWS (`profile=aws`)."""

    model_config = SettingsConfigDict(env_prefix="CHARTERS_", extra="ignore")

    profile: str = Field("local", description="`local` (embedded stack) or `aws`")
    state_dir: Path = Field(Path(".charters"), description="dev stack state: SQLite, pids, logs")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    temporal_ui_url: str = "http://127.0.0.1:8233"
    task_queue: str = "charters"

    # Connection security (a TLS cluster, Temporal Cloud). TLS is on when any of these is set.
    temporal_tls: bool = Field(False, description="TLS to the frontend (system CA roots)")
    temporal_tls_ca_file: Path | None = Field(None, description="PEM CA of a private cluster")
    temporal_tls_cert_file: Path | None = Field(None, description="mTLS client certificate (PEM)")
    temporal_tls_key_file: Path | None = Field(None, description="mTLS client key (PEM)")
    temporal_tls_server_name: str | None = Field(None, description="SNI/verify name override")
    temporal_api_key: SecretStr | None = Field(None, description="Temporal Cloud API key")

    # The Web UI's OIDC access token, verified by the codec server (charters/web/oidc.py).
    codec_oidc_issuer: str | None = Field(None, description="`iss` the UI's tokens must carry")
    codec_oidc_audience: str | None = Field(None, description="`aud` the UI's tokens must carry")
    codec_oidc_jwks_url: str | None = Field(
        None, description="identity provider's JWKS URL; unset: the issuer's discovery document's"
    )
    codec_authz_claim: str = Field(
        "email",
        description="claim of the UI's access token checked against codec_allowed_principals "
        "(a string or a list of strings, e.g. `email`, `groups`, `roles`)",
    )
    codec_allowed_principals: list[str] = Field(
        default_factory=list,
        description="users or groups (values of codec_authz_claim) that may decode; empty: no "
        "OIDC token is accepted (a valid token alone is not enough)",
    )

    # Payload encryption (charters/codec.py): key ring "kid:base64key,..." (first = active).
    # Unset means payloads in clear, which only the local profile allows.
    codec_keys: SecretStr | None = None
    codec_auth_token: SecretStr | None = Field(None, description="bearer token of the codec server")
    codec_host: str = "127.0.0.1"
    codec_port: int = 8704
    codec_cors_origins: list[str] = Field(
        default_factory=list, description="default: the origin of temporal_ui_url"
    )
    codec_trust_ui_origin: bool = Field(
        False, description="local only: the Web UI cannot send a static token over http"
    )

    # AWS (local profile points every client at moto)
    aws_region: str = "us-west-2"
    aws_endpoint_url: str | None = Field(
        None, description="AWS endpoint override; the local profile defaults it to moto"
    )
    moto_port: int = 5055

    # External systems
    calendar_url: str = "http://127.0.0.1:8701"
    calendar_port: int = 8701
    scc_api_url: str = "http://127.0.0.1:8702/prod"
    scc_port: int = 8702
    scc_service_key_header: str = "X-SCC-Service-Key"
    presign_api_url: str | None = Field(
        None, description="SCC URL guests' browsers ask for upload presigns; default scc_api_url"
    )
    scc_lambda_function: str = "scc-api"
    scc_lambda_qualifier: str | None = Field(
        None,
        description="alias the SCC API's integration invokes (e.g. `live`); the repair then "
        "publishes a version and moves the alias. Unset: $LATEST",
    )
    scc_lambda_wait_seconds: float = Field(
        20.0, description="longest the repair waits on LastUpdateStatus=InProgress per attempt"
    )
    scc_cloudfront_hosts: list[str] = Field(
        default_factory=list,
        description="host[:port] names that are CloudFront aliases of the SCC API (besides "
        "*.cloudfront.net): only there is a 401/403 diagnosed as a stripped header",
    )
    scc_cloudfront_port: int = Field(8703, description="stand-in playing SCC behind CloudFront")
    edge_port: int = Field(8705, description="local CloudFront edge: /g/{slug} from the bucket")
    dashboard_token_header: str = "X-Dashboard-Token"

    events_table: str = "scc-events"
    ledger_table: str = "charters-ledger"
    ledger_ttl_attribute: str = Field(
        "expires_at", description="the ledger table's TTL attribute (LedgerTtlAttribute)"
    )
    ledger_retention_days: float = Field(
        400.0, description="a ledger key expires this long after its claim (outlives a booking)"
    )
    guest_bucket: str = Field(
        "queenofsandiego-guest-pages",
        description="guest pages and uploads; no dots (TLS of the browser's upload), never "
        "the website's own bucket",
    )
    guest_key_prefix: str = "guest-pages/"
    guest_site_url: str = Field(
        "https://guests.queenofsandiego.com",
        description="the guest pages' own subdomain (CloudFront alias), never the website's apex",
    )
    guest_path_prefix: str = "/g/"
    distribution_id: str = "E2CHARTERSLOCAL"
    brands: str | None = Field(
        None,
        description="every brand (site, bucket, distribution, sender, look): JSON, or the path "
        "of a YAML/JSON file (charters/brands.py). Unset: one brand from the guest_* settings",
    )
    default_brand: str | None = Field(
        None, description="the brand of a booking that names none; unset: the first configured"
    )
    crew_table: str = Field("charters-crew", description="the crew roster's DynamoDB table")

    secret_dashboard_token: str = "charters/dashboard-token"
    secret_scc_service_key: str = "charters/scc-service-key"
    secret_magic_link_key: str = "charters/magic-link-hmac-key"

    mail_from: str = "bookings@queenofsandiego.com"
    mail_reply_to: str | None = Field(
        None, description="Reply-To of the brand the guest_* settings make (no CHARTERS_BRANDS)"
    )
    sms_origination_identity: str | None = Field(
        None,
        description="SNS SMS origination: an E.164 origination number (+1...) or a sender ID; "
        "unset: SNS picks from the account's numbers",
    )
    operations_email: str = "ops@queenofsandiego.com"
    ses_configuration_set: str | None = Field(
        "charters", description="SES configuration set on every send (event destination)"
    )
    bounce_queue_url: str | None = Field(
        None,
        description="SQS queue subscribed to the configuration set's SNS topic (bounces, "
        "complaints); the worker consumes it. Unset: no listener",
    )

    # Latency/fault proxy of the local stack, between the worker and moto and the stand-ins.
    # Spec text: "delay=50,jitter=5,error=0.1,kinds=503|throttle|reset,after=1" ("" = none).
    fault_proxy: bool = Field(True, description="local stack: route the worker through the proxy")
    proxy_aws_port: int = 5056
    proxy_calendar_port: int = 8711
    proxy_scc_port: int = 8712
    faults_aws: str = ""
    faults_calendar: str = ""
    faults_scc: str = ""

    # Crew confirmation endpoint
    confirm_host: str = "127.0.0.1"
    confirm_port: int = 8700
    confirm_base_url: str = "http://127.0.0.1:8700"
    confirm_forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="addresses/CIDRs whose X-Forwarded-For the confirm endpoint believes (the "
        "reverse proxy's only): the client address the rate limit counts",
    )
    magic_link_ttl_hours: int = 24 * 14
    confirm_limit_per_token_per_minute: int = Field(
        10, ge=1, description="requests to one magic link a minute, before 429"
    )
    confirm_limit_per_client_per_minute: int = Field(
        60, ge=1, description="requests from one client address a minute, before 429"
    )

    # Worker process
    health_host: str = Field("127.0.0.1", description="0.0.0.0 in a container, for scrapes")
    health_port: int = Field(8080, description="worker /healthz and /metrics; 0 disables")
    graceful_shutdown_seconds: float = Field(
        10.0, description="in-flight activities' grace period on SIGTERM"
    )
    log_json: bool = Field(False, description="structured JSON logs")
    worker_threads: int = Field(64, description="threads for the (sync) activities")
    workflow_runner: Literal["sandboxed", "passthrough", "unsandboxed"] = Field(
        "unsandboxed", description="workflow sandbox (charters/worker/runner.py); bench compares"
    )

    # Workflow behaviour
    scc_retry_max_interval_seconds: float = 60.0
    activity_max_interval_seconds: float = 30.0
    activity_timeout_seconds: float = Field(
        30.0, description="start-to-close per attempt; a killed worker's attempt retries after it"
    )
    reminder_after_hours: float = 24.0
    max_reminders: int = 2
    transient_bounce_retry_hours: float = Field(
        4.0, description="a crew email that bounced for now (a full mailbox) goes again after"
    )
    transient_bounce_retries: int = Field(
        2, ge=0, description="sends again after transient bounces, then the seat blocks"
    )
    confirm_deadline_hours_before: float = 48.0
    step_retry_budget_seconds: float = Field(
        600.0, description="transient retries of one step before it blocks for a person"
    )
    guest_reminder_hours_before: list[float] = Field(
        default_factory=lambda: [72.0, 24.0], description="guest reminder emails, before start"
    )
    crew_day_of_hours_before: float = Field(4.0, description="crew day-of reminder, before start")
    thank_you_hours_after_end: float = Field(2.0, description="guest thank-you, after the trip")
    history_event_limit: int = Field(
        2000, description="a booking continues as new at a quiet point past this many events"
    )
    local_activities: bool = Field(
        False,
        description="every step a regular activity (the default: docs/workflow.md, 'Why every "
        "step is a regular activity'); true: short, idempotent steps run as local activities "
        "first, a regular activity when two attempts fail",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`CHARTERS_X_FILE=/run/secrets/x` reads X from that file (compose/Kubernetes secrets),
        so no secret has to sit in a process's environment."""
        files = _FileVariables(settings_cls)
        return init_settings, env_settings, files, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _local_endpoints(self) -> Settings:
        if self.profile == "local" and self.aws_endpoint_url is None:
            self.aws_endpoint_url = f"http://127.0.0.1:{self.moto_port}"
        if self.profile == "local" and not self.scc_cloudfront_hosts:
            # the local stand-in playing SCC behind CloudFront
            self.scc_cloudfront_hosts = [f"127.0.0.1:{self.scc_cloudfront_port}"]
        return self

    def with_local_key_ring(self) -> Settings:
        """Locally, the payload key ring and codec token the running stack keeps (0600) under
        its state dir, so CLI commands read and write the same encrypted history."""
        path = self.state_dir.resolve() / "codec.json"
        if self.profile != "local" or self.codec_keys is not None or not path.exists():
            return self
        saved = json.loads(path.read_text())
        return self.model_copy(
            update={
                "codec_keys": SecretStr(saved["keys"]),
                "codec_auth_token": SecretStr(saved["token"]),
            }
        )

    def local_stack_env(self) -> Path | None:
        """The env file (0600) a running local stack keeps under its state dir, if it runs."""
        state = self.state_dir.resolve()
        env_file, info = state / "stack.env", state / "stack.json"
        if self.profile != "local" or not env_file.exists() or not info.exists():
            return None
        try:
            os.kill(int(json.loads(info.read_text())["pid"]), 0)
        except (OSError, ValueError, KeyError):
            return None  # left behind by a stack that died
        return env_file

    def with_local_stack(self) -> Settings:
        """Locally, in the project directory of a running `charters dev`: that stack's settings
        (its ports, distribution id, key ring), under whatever `CHARTERS_*` the shell sets, so a
        worker or CLI started by hand joins the stack without exporting anything."""
        env_file = self.local_stack_env()
        joined = type(self)(_env_file=env_file) if env_file else self  # type: ignore[call-arg]
        return joined.with_local_key_ring()

    def connection_summary(self) -> str:
        """One line saying where this process connects, and where its settings came from."""
        source = self.local_stack_env()
        origin = f"the local stack ({source})" if source else "CHARTERS_* and defaults"
        return (
            f"Temporal {self.temporal_address} namespace {self.temporal_namespace}, "
            f"task queue {self.task_queue}, AWS {self.aws_endpoint_url or 'default endpoints'}; "
            f"settings from {origin}"
        )

    def temporal_ui_link(self, workflow_id: str) -> str:
        return (
            f"{self.temporal_ui_url}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"
        )

    def guest_page_url(self, slug: str, brand: str | None = None) -> str:
        return self.brand_book().get(brand).page_url(slug)

    def brand_book(self) -> BrandBook:
        """The configured brands; without CHARTERS_BRANDS, the one site the guest_* settings
        describe, named by CHARTERS_DEFAULT_BRAND or else after its host, so a single-site
        deployment needs no change."""
        if self.brands:
            return BrandBook.of(read_brands(self.brands), self.default_brand)
        host = urlsplit(self.guest_site_url).hostname or self.guest_bucket
        legacy = Brand(
            name=self.default_brand or host.lower(),
            site_url=self.guest_site_url,
            bucket=self.guest_bucket,
            key_prefix=self.guest_key_prefix,
            distribution_id=self.distribution_id,
            path_scheme="rewrite",
            path_prefix=self.guest_path_prefix,
            sender=self.mail_from,
            reply_to=self.mail_reply_to,
        )
        return BrandBook.of([legacy], self.default_brand)


class _FileVariables(PydanticBaseSettingsSource):
    """Values of `CHARTERS_<NAME>_FILE` variables: the file's text, trailing newline dropped."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"CHARTERS_{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        return Path(path).read_text().rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                found[key] = value
        return found
