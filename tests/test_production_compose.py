"""The production stack files: docker-compose.yml and the Dockerfile, read as data.

No Docker engine is needed: these tests check the wiring (services, start order, published
ports, search attributes, CHARTERS_* names) that a typo would otherwise break only at deploy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from charters import contract
from charters.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Settings the compose file already uses that are about to be added to `Settings`; each name
# drops out of this set by itself as soon as it is a real field.
FUTURE: set[str] = {"ses_configuration_set", "bounce_queue_url"}  # issue12-aws
ALLOWED_SETTINGS = set(Settings.model_fields) | FUTURE

SEARCH_ATTRIBUTES = {
    "BookingRef": "Keyword",
    "CharterDate": "Datetime",
    "BookingStage": "Keyword",
    "BlockedOn": "Keyword",
    "CrewPending": "Int",
}

CHARTERS_SERVICES = ("worker", "confirm", "codec-server")
NOT_SECRETS = {"TEMPORAL_CODEC_PASS_ACCESS_TOKEN"}  # a switch, not a token
SECRET_WORDS = ("PASSWORD", "PWD", "SECRET", "TOKEN", "KEYS", "API_KEY", "ACCESS_KEY")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """A service's environment as a dict, whichever of the two compose syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (`service_started` for the short list syntax)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                ports.add(int(entry["published"]))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2:  # [ip:]host:container; a bare container port publishes nothing fixed
            ports.add(int(parts[-2]))
    return ports


def shell_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value:
            parts.append(str(value))
    return "\n".join(parts)


def test_all_services_are_defined(services: dict[str, Any]) -> None:
    expected = {"postgresql", "temporal", "temporal-admin-tools", "temporal-ui", *CHARTERS_SERVICES}
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"
    assert services["postgresql"]["image"].startswith("postgres:16")
    # auto-setup is deprecated: the server image, with admin-tools jobs for schema and namespace.
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-admin-tools"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_start_order_worker_admin_tools_temporal_postgresql(services: dict[str, Any]) -> None:
    assert depends_on(services["worker"]).get("temporal-admin-tools") == (
        "service_completed_successfully"
    )
    assert depends_on(services["temporal"]).get("temporal-schema") == (
        "service_completed_successfully"
    )
    assert depends_on(services["temporal-schema"]).get("postgresql") == "service_healthy"
    assert services["temporal-schema"].get("restart") == "no"
    assert "pg_isready" in json.dumps(services["postgresql"]["healthcheck"]["test"])

    condition = depends_on(services["temporal-admin-tools"]).get("temporal")
    assert condition in ("service_healthy", "service_started")
    if condition == "service_healthy":
        assert "cluster health" in json.dumps(services["temporal"]["healthcheck"]["test"])

    for name in ("temporal-ui", "confirm"):
        assert "temporal" in depends_on(services[name]) or "temporal-admin-tools" in depends_on(
            services[name]
        ), f"{name} starts before Temporal"
    assert services["temporal-admin-tools"].get("restart") == "no"


def test_start_order_has_no_cycles_or_unknown_services(services: dict[str, Any]) -> None:
    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name in services, f"{path[-1]} depends on unknown service {name}"
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        for dep in depends_on(services[name]):
            visit(dep, (*path, name))

    for name in services:
        visit(name, ())


@pytest.mark.parametrize(
    ("service", "port"),
    [("temporal", 7233), ("temporal-ui", 8080), ("confirm", 8700), ("codec-server", 8081)],
)
def test_ports_are_published(services: dict[str, Any], service: str, port: int) -> None:
    assert port in published_ports(services[service])


def test_no_host_port_is_published_twice(services: dict[str, Any]) -> None:
    seen: dict[int, str] = {}
    for name, service in services.items():
        for port in published_ports(service):
            assert port not in seen, f"host port {port} published by {seen[port]} and {name}"
            seen[port] = name


def test_admin_tools_register_every_search_attribute_with_its_type(
    services: dict[str, Any],
) -> None:
    tools = services["temporal-admin-tools"]
    assert environment(tools).get("TEMPORAL_ADDRESS") == "temporal:7233"
    lines = [
        line
        for line in shell_text(tools).splitlines()
        if "temporal operator search-attribute create" in line
    ]
    assert len(lines) == 1, lines
    argv = shlex.split(lines[0])
    # The CLI pairs the n-th --name with the n-th --type.
    names = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--name"]
    types = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--type"]
    assert len(names) == len(types)
    assert argv[argv.index("--namespace") + 1] == "default"

    registered = dict(zip(names, types, strict=True))
    assert registered == SEARCH_ATTRIBUTES
    # ... and exactly what the workflow upserts.
    assert registered == {
        key.name: key.indexed_value_type.name.capitalize() for key in contract.SEARCH_ATTRIBUTES
    }


def test_ui_passes_its_access_token_to_the_codec_server(services: dict[str, Any]) -> None:
    env = environment(services["temporal-ui"])
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_CODEC_ENDPOINT"].startswith("${CODEC_PUBLIC_URL:?")
    assert env["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert env["TEMPORAL_AUTH_ENABLED"] == "true"
    codec = environment(services["codec-server"])
    # The codec server checks the identity provider the UI signs operators in with.
    assert codec["CHARTERS_CODEC_OIDC_ISSUER"].startswith("${OIDC_ISSUER")
    assert env["TEMPORAL_AUTH_PROVIDER_URL"].startswith("${OIDC_ISSUER")
    assert {"CHARTERS_CODEC_OIDC_AUDIENCE", "CHARTERS_CODEC_OIDC_JWKS_URL"} <= set(codec)


def test_schema_job_sets_up_both_databases(services: dict[str, Any]) -> None:
    text = shell_text(services["temporal-schema"])
    for db in ("temporal", "temporal_visibility"):
        assert f"temporal-sql-tool --db {db} setup-schema" in text
        assert f"temporal-sql-tool --db {db} update-schema" in text
    tools = shell_text(services["temporal-admin-tools"])
    assert "temporal operator namespace create --namespace default" in tools


def test_no_secret_sits_in_a_plain_environment_variable(compose: dict[str, Any]) -> None:
    """Secrets are compose secret files: a variable that names a secret must point at one."""
    declared = set(compose["secrets"])
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if key in NOT_SECRETS or key.startswith("CHARTERS_SECRET_"):  # Secrets Manager ids
                continue
            if any(word in key for word in SECRET_WORDS):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (
                    f"{name}: {key} carries a secret in the environment"
                )
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in declared and secret in service.get("secrets", []), (name, key)


@pytest.mark.parametrize(
    "service", ["postgresql", "temporal", "temporal-ui", "confirm", "codec-server"]
)
def test_long_running_services_have_healthchecks(services: dict[str, Any], service: str) -> None:
    check = services[service]["healthcheck"]
    assert not check.get("disable") and check["test"]


def test_secret_files_reach_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose mounts is what Settings reads: CHARTERS_X_FILE gives the file's text."""
    for var in [v for v in os.environ if v.startswith("CHARTERS_")]:
        monkeypatch.delenv(var)
    (tmp_path / "codec_keys").write_text("k1:c2VjcmV0\n")
    monkeypatch.setenv("CHARTERS_CODEC_KEYS_FILE", str(tmp_path / "codec_keys"))
    keys = Settings().codec_keys
    assert keys is not None and keys.get_secret_value() == "k1:c2VjcmV0"


def test_temporal_runs_on_postgresql(services: dict[str, Any]) -> None:
    env = environment(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert {"DB_PORT", "POSTGRES_USER", "POSTGRES_PWD_FILE"} <= set(env)


def test_every_charters_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    unknown: list[str] = []
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            field = key.removeprefix("CHARTERS_").lower().removesuffix("_file")
            if key.startswith("CHARTERS_") and field not in ALLOWED_SETTINGS:
                unknown.append(f"{name}: {key}")
            # Host variables interpolated into values (`${CHARTERS_X:?...}`) must be real too.
            for ref in re.findall(r"\$\{(CHARTERS_[A-Z0-9_]+)", str(value or "")):
                if ref.removeprefix("CHARTERS_").lower() not in ALLOWED_SETTINGS:
                    unknown.append(f"{name}: {key} refers to {ref}")
    assert not unknown, f"not fields of charters.settings.Settings: {unknown}"


def test_charters_services_use_real_aws_and_the_cluster(services: dict[str, Any]) -> None:
    for name in CHARTERS_SERVICES:
        service = services[name]
        env = environment(service)
        assert service.get("build") is not None, name
        assert env.get("CHARTERS_PROFILE") == "aws", name
        # An empty endpoint URL is not "no endpoint"; production simply never sets it.
        assert "CHARTERS_AWS_ENDPOINT_URL" not in env, name
        assert env.get("AWS_SHARED_CREDENTIALS_FILE") == "/run/secrets/aws_credentials", name
        assert "AWS_SECRET_ACCESS_KEY" not in env, name
    for name in ("worker", "confirm"):
        assert environment(services[name])["CHARTERS_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_worker_scales_out_and_stops_gracefully(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker  # a fixed name would forbid a second replica
    assert not published_ports(worker)  # nor would a fixed host port
    assert worker["stop_grace_period"] == "30s"
    env = environment(worker)
    for required in (
        "CHARTERS_CALENDAR_URL",
        "CHARTERS_SCC_API_URL",
        "CHARTERS_DISTRIBUTION_ID",
        "CHARTERS_GUEST_BUCKET",
        "CHARTERS_CONFIRM_BASE_URL",
    ):
        assert re.fullmatch(rf"\$\{{{required}:\?[^}}]+\}}", str(env.get(required))), required


def test_confirm_and_codec_server_commands(services: dict[str, Any]) -> None:
    assert services["confirm"]["command"] == ["confirm-server"]
    assert services["codec-server"]["command"] == ["codec-server"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_runs_charters_as_non_root_with_a_healthcheck() -> None:
    assert DOCKERFILE.is_file()
    instructions = dockerfile_instructions()
    by_keyword: dict[str, list[str]] = {}
    for keyword, rest in instructions:
        by_keyword.setdefault(keyword, []).append(rest)

    assert by_keyword["FROM"] == ["python:3.11-slim"]
    assert any("pip install ." in run for run in by_keyword["RUN"])

    users = by_keyword.get("USER", [])
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")

    healthcheck = by_keyword.get("HEALTHCHECK", [])
    assert len(healthcheck) == 1
    assert "http://127.0.0.1:${CHARTERS_HEALTH_PORT:-8080}/healthz" in healthcheck[0]
    assert "urllib" in healthcheck[0] and "curl" not in healthcheck[0]

    assert [json.loads(e) for e in by_keyword["ENTRYPOINT"]][-1] == ["charters"]
    assert [json.loads(c) for c in by_keyword["CMD"]][-1] == ["worker"]


def test_aws_profile_without_an_endpoint_means_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("CHARTERS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CHARTERS_PROFILE", "aws")
    assert Settings().aws_endpoint_url is None
