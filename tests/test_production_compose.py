"""The production stack files: docker-compose.yml and the Dockerfile, read as data.

No Docker engine is needed: these tests check the wiring (services, start order, published
ports, search attributes, CHARTERS_* names) that a typo would otherwise break only at deploy.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from charters import contract
from charters.settings import Settings
from charters.starter import preflight
from charters.web.serving import uvicorn_config

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

CHARTERS_SERVICES = ("worker-a", "worker-b", "confirm", "codec-server")
WORKERS = ("worker-a", "worker-b")
CADDYFILE = ROOT / "deploy" / "Caddyfile"
RUNBOOK = ROOT / "docs" / "production.md"
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
    expected = {
        "proxy",
        "postgresql",
        "temporal",
        "temporal-admin-tools",
        "temporal-ui",
        *CHARTERS_SERVICES,
    }
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"
    assert services["postgresql"]["image"].startswith("postgres:16")
    # auto-setup is deprecated: the server image, with admin-tools jobs for schema and namespace.
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-admin-tools"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["proxy"]["image"].startswith("caddy:")  # the official image


def test_start_order_worker_admin_tools_temporal_postgresql(services: dict[str, Any]) -> None:
    for worker in WORKERS:
        assert depends_on(services[worker]).get("temporal-admin-tools") == (
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
    # Readiness proper is the job's own first step (its image has the CLI; the server's has not).
    first = services["temporal-admin-tools"]["command"][0].splitlines()[0]
    assert "temporal operator cluster health" in first and "until" in first, first

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


def test_only_the_tls_proxy_publishes_a_port(services: dict[str, Any]) -> None:
    """Closed by default: 7233 (anyone there could terminate, reset or signal bookings), the UI,
    the codec server and the confirm endpoint are reached only through the TLS proxy."""
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"proxy"}, publishing
    assert published_ports(services["proxy"]) == {443, 80}
    for name, service in services.items():
        assert not service.get("network_mode"), name  # `host` would publish everything
        assert 7233 not in published_ports(service), name


def test_temporal_and_its_database_sit_on_an_internal_network(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("temporal", "postgresql", "temporal-schema", "temporal-admin-tools"):
        assert services[name]["networks"] == ["backend"], name
    assert "backend" not in networks_of(services["proxy"])
    assert "backend" not in networks_of(services["codec-server"])  # it needs no Temporal


def networks_of(service: dict[str, Any]) -> set[str]:
    nets = service.get("networks") or []
    return set(nets) if isinstance(nets, (list, dict)) else set()


def test_the_proxy_serves_exactly_the_three_browser_facing_services(
    services: dict[str, Any],
) -> None:
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddy = CADDYFILE.read_text()
    upstreams = set(re.findall(r"reverse_proxy\s+(\S+)", caddy))
    assert upstreams == {"temporal-ui:8080", "codec-server:8081", "confirm:8700"}
    for host in re.findall(r"^\{\$([A-Z_]+)\}\s*\{", caddy, re.MULTILINE):
        assert host in environment(proxy), f"{host} is not passed to the proxy"
    # Caddy is the edge: it must not believe a client's own X-Forwarded-For.
    directives = "\n".join(line.split("#")[0] for line in caddy.splitlines())
    assert "trusted_proxies" not in directives


def test_confirm_believes_forwarded_addresses_from_the_proxy_only(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    proxy_ip = services["proxy"]["networks"]["edge"]["ipv4_address"]
    subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    assert environment(services["confirm"])["CHARTERS_CONFIRM_FORWARDED_ALLOW_IPS"] == proxy_ip


async def _client_seen(config: uvicorn.Config, peer: str, forwarded: str) -> str:
    """What the app sees as the client, through uvicorn's own proxy-headers middleware."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["client"] = scope["client"][0]

    trusted = config.forwarded_allow_ips
    wrapped = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # as Config.load() wraps it
    scope = {
        "type": "http",
        "client": (peer, 5000),
        "scheme": "http",
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await wrapped(scope, None, None)  # type: ignore[arg-type]
    return str(seen["client"])


async def test_the_rate_limit_counts_the_crew_member_not_the_proxy() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = uvicorn_config(app, "0.0.0.0", 8700, "172.28.0.2")
    config.load()
    assert config.proxy_headers
    # through the proxy: the browser's address
    assert await _client_seen(config, "172.28.0.2", "203.0.113.9") == "203.0.113.9"
    # a spoofed header from anyone else changes nothing
    assert await _client_seen(config, "198.51.100.7", "203.0.113.9") == "198.51.100.7"


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
    assert env["TEMPORAL_CODEC_ENDPOINT"].startswith("https://${CODEC_HOST:?")
    assert env["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert env["TEMPORAL_AUTH_ENABLED"] == "true"
    codec = environment(services["codec-server"])
    # The codec server checks the identity provider the UI signs operators in with.
    assert codec["CHARTERS_CODEC_OIDC_ISSUER"].startswith("${OIDC_ISSUER")
    assert env["TEMPORAL_AUTH_PROVIDER_URL"].startswith("${OIDC_ISSUER")
    assert {"CHARTERS_CODEC_OIDC_AUDIENCE", "CHARTERS_CODEC_OIDC_JWKS_URL"} <= set(codec)
    # authorization, not only authentication: an allow-list of users or groups
    assert codec["CHARTERS_CODEC_ALLOWED_PRINCIPALS"].startswith("${CODEC_ALLOWED_PRINCIPALS:?")
    assert "CHARTERS_CODEC_AUTHZ_CLAIM" in codec


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


LONG_RUNNING = ["proxy", "postgresql", "temporal", "temporal-ui", *CHARTERS_SERVICES]

# What each image ships that a healthcheck may run: no Temporal CLI anywhere (the server image
# has none from 1.30 on; `temporal`/`tctl` live in admin-tools only).
HEALTH_TOOLS = {
    "postgres:": {"pg_isready"},
    "temporalio/server:": {"nc"},  # busybox, the image's Alpine base
    "temporalio/ui:": {"wget"},  # busybox, the image's Alpine base
    "caddy:": {"wget"},  # busybox, the image's Alpine variant
    "charters:": {"python"},  # the product image (Dockerfile: python:3.11-slim)
}


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_have_healthchecks_that_need_no_cli(
    services: dict[str, Any], service: str
) -> None:
    check = services[service]["healthcheck"]
    assert not check.get("disable") and check["test"]
    test = check["test"]
    if test[0] == "CMD-SHELL":
        program = shlex.split(test[1])[0]
    else:
        assert test[0] == "CMD", test
        program = test[1]
    image = services[service]["image"]
    tools = next(t for prefix, t in HEALTH_TOOLS.items() if image.startswith(prefix))
    assert program in tools, f"{service}: {program} is not in {image}"
    text = json.dumps(test)
    assert "tctl" not in text and "temporal operator" not in text, service


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
        assert "AWS_SECRET_ACCESS_KEY" not in env, name
    for name in (*WORKERS, "confirm"):
        assert environment(services[name])["CHARTERS_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_one_aws_identity_per_process(services: dict[str, Any]) -> None:
    """Each process its own credentials (the template's WorkerRole, ConfirmRole); the codec
    server needs no AWS at all. The two worker replicas are one process kind."""
    files = {
        name: environment(services[name]).get("AWS_SHARED_CREDENTIALS_FILE")
        for name in CHARTERS_SERVICES
    }
    assert files["worker-a"] == files["worker-b"] == "/run/secrets/aws_credentials_worker"
    assert files["confirm"] == "/run/secrets/aws_credentials_confirm"
    assert files["codec-server"] is None
    assert not [s for s in services["codec-server"]["secrets"] if s.startswith("aws_")]
    for name in CHARTERS_SERVICES:
        mounted = [s for s in services[name].get("secrets", []) if s.startswith("aws_")]
        assert len(mounted) <= 1, (name, mounted)


def test_two_workers_replaced_one_at_a_time(services: dict[str, Any]) -> None:
    """Two identical services, not `replicas: 2`: `up -d --no-deps --wait worker-a` replaces one
    and waits for it to be healthy before the runbook touches worker-b."""
    a, b = services["worker-a"], services["worker-b"]
    assert a == b
    assert a["command"] == ["worker"]
    assert a.get("deploy", {}).get("replicas", 1) == 1
    assert "container_name" not in a and not published_ports(a)
    assert a["stop_grace_period"] == "30s"
    assert a["healthcheck"]["test"][1] == "python"
    env = environment(a)
    for required in (
        "CHARTERS_CALENDAR_URL",
        "CHARTERS_SCC_API_URL",
        "CHARTERS_DISTRIBUTION_ID",
        "CHARTERS_GUEST_BUCKET",
        "CHARTERS_GUEST_SITE_URL",
    ):
        assert re.fullmatch(rf"\$\{{{required}:\?[^}}]+\}}", str(env.get(required))), required
    assert env["CHARTERS_CONFIRM_BASE_URL"].startswith("https://${CONFIRM_HOST:?")
    runbook = RUNBOOK.read_text()
    first = runbook.find("up -d --no-deps --wait worker-a")
    second = runbook.find("up -d --no-deps --wait worker-b")
    assert 0 <= first < second, "the runbook does not replace the workers one at a time"


def test_images_are_immutable_so_a_rollback_is_one_variable(services: dict[str, Any]) -> None:
    for name in CHARTERS_SERVICES:
        image = services[name]["image"]
        assert re.fullmatch(r"charters:\$\{IMAGE_TAG:\?[^}]+\}", image), image
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.partition(":")
        assert repo and tag, f"{name}: {image} has no tag"
        if tag.startswith("${IMAGE_TAG:?"):
            continue
        assert "latest" not in tag, f"{name}: {image} is not a fixed version"
        if "${" in tag:
            assert re.fullmatch(r"\$\{[A-Z_]+:-[0-9][^}]*\}", tag), f"{name}: no pinned default"
    runbook = RUNBOOK.read_text()
    assert "IMAGE_TAG=<previous>" in runbook  # the rollback, as one variable


def declared_stat(spec: dict[str, Any]) -> os.stat_result:
    """The stat a host file has once the runbook's chown/chmod (x-owner, x-mode) are applied."""
    uid, gid = (int(x) for x in spec["x-owner"].split(":"))
    mode = stat.S_IFREG | int(spec["x-mode"], 8)
    return os.stat_result((mode, 0, 0, 1, uid, gid, 40, 0, 0, 0))


def test_secret_files_as_declared_are_readable_by_their_readers_only(
    compose: dict[str, Any],
) -> None:
    declared = compose["secrets"]
    problems = preflight.check(
        COMPOSE_FILE,
        stat_fn=lambda path: declared_stat(
            next(spec for spec in declared.values() if path.name == Path(spec["file"]).name)
        ),
    )
    assert problems == []
    for name, spec in declared.items():
        assert int(spec["x-mode"], 8) & 0o077 == 0, f"{name}: group or others may read it"
    readers = preflight.secret_readers(compose)
    assert {r.service for r in readers["codec_auth_token"]} == {"codec-server"}
    assert {r.service for r in readers["aws_credentials_worker"]} == set(WORKERS)
    for name, who in readers.items():
        assert who, f"secret {name} is declared but no service reads it"
        assert all(r.uid != 0 or r.service == "postgresql" for r in who), (name, who)


def test_preflight_names_the_file_a_process_cannot_read(compose: dict[str, Any]) -> None:
    """The runbook's old advice (0600, owned by the operator) is refused file by file."""
    operators_0600 = os.stat_result((stat.S_IFREG | 0o600, 0, 0, 1, 1000, 1000, 40, 0, 0, 0))
    problems = preflight.check(COMPOSE_FILE, stat_fn=lambda path: operators_0600)
    text = "\n".join(problems)
    assert "secrets/codec_keys: worker-a (runs as 10001:10001)" in text
    assert "chown 10001:10001 secrets/codec_keys && chmod 0400 secrets/codec_keys" in text
    # the operator happened to be uid 1000, which is Temporal's: those two are fine
    assert "secrets/postgres_password" not in text
    world = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 10001, 10001, 40, 0, 0, 0))
    problems = preflight.check(COMPOSE_FILE, stat_fn=lambda path: world)
    assert any("readable by every user of the host" in p for p in problems)


def test_preflight_on_real_files(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.read_text())
    (tmp_path / "secrets").mkdir()
    problems = preflight.check(tmp_path / "docker-compose.yml")
    assert any("codec_keys: missing" in p for p in problems)
    for spec in yaml.safe_load(COMPOSE_FILE.read_text())["secrets"].values():
        path = tmp_path / spec["file"]
        path.write_text("x\n")
        path.chmod(int(spec["x-mode"], 8))
        if os.geteuid() == 0:
            uid, gid = (int(x) for x in spec["x-owner"].split(":"))
            os.chown(path, uid, gid)
    if os.geteuid() == 0:
        assert preflight.check(tmp_path / "docker-compose.yml") == []


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


# ---- Temporal Cloud: docker-compose.cloud.yml over docker-compose.yml -----------------------

CLOUD_FILE = ROOT / "docker-compose.cloud.yml"
SELF_HOSTED = ("postgresql", "temporal-schema", "temporal", "temporal-admin-tools", "temporal-ui")


@pytest.fixture(scope="module")
def cloud() -> dict[str, Any]:
    text = CLOUD_FILE.read_text()
    data = yaml.load(text, Loader=preflight._ComposeLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(data, dict)
    data["_raw"] = text
    return data


def test_cloud_starts_no_self_hosted_service(cloud: dict[str, Any]) -> None:
    for name in SELF_HOSTED:
        assert cloud["services"][name]["profiles"] == ["self-hosted-temporal"], name


def test_cloud_drops_the_dependencies_on_the_self_hosted_cluster(cloud: dict[str, Any]) -> None:
    raw = cloud["_raw"]
    for name in ("worker-a", "worker-b", "confirm"):
        assert re.search(rf"\n  {name}:\n    depends_on: !reset \{{\}}\n", raw), name
    assert "depends_on: !override" in raw.split("\n  proxy:\n", 1)[1]
    assert set(cloud["services"]["proxy"]["depends_on"]) == {"codec-server", "confirm"}


def test_every_cloud_process_has_its_api_key_as_a_secret_file(cloud: dict[str, Any]) -> None:
    declared = cloud["secrets"]["temporal_api_key"]
    assert declared["file"] == "./secrets/temporal_api_key" and declared["x-mode"] == "0400"
    for name in ("worker-a", "worker-b", "confirm"):
        service = cloud["services"][name]
        env = service["environment"]
        assert env["CHARTERS_TEMPORAL_API_KEY_FILE"] == "/run/secrets/temporal_api_key"
        assert env["CHARTERS_TEMPORAL_ADDRESS"].startswith("${TEMPORAL_CLOUD_ADDRESS:?")
        assert env["CHARTERS_TEMPORAL_NAMESPACE"].startswith("${TEMPORAL_CLOUD_NAMESPACE:?")
        assert "temporal_api_key" in service["secrets"]
        for key in env:
            field = key.removeprefix("CHARTERS_").lower().removesuffix("_file")
            assert field in ALLOWED_SETTINGS, key
    assert "temporal_api_key" not in cloud["services"].get("codec-server", {}).get("secrets", [])


def test_cloud_secret_files_are_checked_with_the_merged_files(tmp_path: Path) -> None:
    """`charters ops preflight docker-compose.yml docker-compose.cloud.yml`: the API key file
    is the workers' and confirm's; PostgreSQL's and the UI's files are not needed at all."""
    problems = preflight.check(
        [COMPOSE_FILE, CLOUD_FILE],
        stat_fn=lambda path: os.stat_result(
            (stat.S_IFREG | 0o400, 0, 0, 1, 10001, 10001, 9, 0, 0, 0)
        ),
    )
    assert problems == []  # everything left is read by uid 10001 only
    merged = preflight.load_compose([COMPOSE_FILE, CLOUD_FILE])
    readers = preflight.secret_readers(merged)
    assert {r.service for r in readers["temporal_api_key"]} == {"worker-a", "worker-b", "confirm"}


def test_the_cloud_proxy_serves_no_web_ui() -> None:
    cloud_caddy = (ROOT / "deploy" / "Caddyfile.cloud").read_text()
    assert set(re.findall(r"reverse_proxy\s+(\S+)", cloud_caddy)) == {
        "codec-server:8081",
        "confirm:8700",
    }


def test_the_preflight_command_names_each_unreadable_file(tmp_path: Path) -> None:
    """`charters ops preflight`: one `error:` line per bad file, exit 1; no traceback."""
    import subprocess
    import sys

    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.read_text())
    (tmp_path / "secrets").mkdir()
    for spec in yaml.safe_load(COMPOSE_FILE.read_text())["secrets"].values():
        path = tmp_path / spec["file"]
        path.write_text("x\n")
        path.chmod(0o600)  # the old runbook's advice, owned by whoever ran it
    proc = subprocess.run(
        [sys.executable, "-m", "charters", "ops", "preflight", "docker-compose.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")},
    )
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert all(line.startswith("error: secrets/") for line in lines), lines
    if os.geteuid() != 10001:
        assert proc.returncode == 1
        assert any(line.startswith("error: secrets/codec_keys: worker-a") for line in lines)
