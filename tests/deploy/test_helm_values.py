"""The Kubernetes deployment: ``deploy/helm/values.yaml`` for the official Airflow Helm chart, without a cluster.

``tests/data/helm/airflow-chart-values.schema.json`` is the chart's own values schema (apache/airflow, chart 1.19.0:
its README names the commit), vendored because the tests have no network; its SHA-256 is pinned below. The schema
alone lets a misspelt key through wherever it does not set ``additionalProperties: false`` (the top level,
``ingress``, ``workers.celery``...), and it accepts any ``config:`` section and option: :func:`unknown_keys` walks
the values beside the schema and :func:`unknown_airflow_options` reads Airflow's own configuration description.

The chart's templates at that commit give the top-level ``volumes``, ``volumeMounts``, ``env`` and ``secret`` to
every Airflow container: api-server, scheduler, dag-processor, triggerer, workers, task pods, the migration job.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES_FILE = ROOT / "deploy" / "helm" / "values.yaml"
SCHEMA_FILE = ROOT / "tests" / "data" / "helm" / "airflow-chart-values.schema.json"
SCHEMA_SHA256 = "a8c58db04331a07692c5bf7f61c8b54a0a345e44437147170259ec7e4fe7267a"
#: The Airflow components the chart runs, as keys of the values; each mounts the top-level volumes.
AIRFLOW_COMPONENTS = ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers")
SHARED_CLAIM = "charter-state"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture
def values() -> dict[str, Any]:
    """A fresh copy for each test: some change it to show that a check has teeth."""
    loaded = yaml.safe_load(VALUES_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def env_of(values: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in values.get("env") or []}


def secret_env_of(values: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["envName"]: (item["secretName"], item["secretKey"]) for item in values.get("secret") or []}


# ------------------------------------------------------------------------------------------------
# the chart's schema


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:  # draft-07: a $ref's siblings are ignored
        node = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def _fits(value: Any, node: dict[str, Any]) -> bool:
    types = node.get("type")
    if types is None:
        return True
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    return any(isinstance(value, kinds.get(t, (int, float))) for t in ([types] if isinstance(types, str) else types))


def unknown_keys(value: Any, node: dict[str, Any], root: dict[str, Any], path: str = "") -> list[str]:
    """The keys of ``value`` that ``node`` does not name, even where it allows additional properties.

    A schema that names properties documents every key the chart reads there; a schema that names none but gives
    ``additionalProperties`` a schema is a map (``config``, labels), whose entries are checked against that schema.
    """
    node = _resolve(node, root)
    for combinator in ("allOf", "anyOf", "oneOf"):
        branches = [_resolve(b, root) for b in node.get(combinator, []) if _fits(value, _resolve(b, root))]
        if branches:  # unknown in every branch the value may take
            found = [set(unknown_keys(value, b, root, path)) for b in branches]
            return sorted(set.intersection(*found))
    found_keys: list[str] = []
    if isinstance(value, dict):
        named, extra = node.get("properties", {}), node.get("additionalProperties", True)
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in named:
                found_keys += unknown_keys(item, named[key], root, where)
            elif isinstance(extra, dict):
                found_keys += unknown_keys(item, extra, root, where)
            elif named or extra is False:
                found_keys.append(where)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            found_keys += unknown_keys(item, node["items"], root, f"{path}[{index}]")
    return found_keys


def unknown_airflow_options(config: dict[str, dict[str, Any]]) -> list[str]:
    """``config:`` options that Airflow (with its providers, the charter's included) does not know."""
    from airflow.configuration import conf

    known = conf.configuration_description
    return [
        f"{section}.{option}"
        for section, options in config.items()
        for option in options
        if option not in known.get(section, {}).get("options", {})
    ]


def schema_problems(values: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    from jsonschema import Draft7Validator

    errors = Draft7Validator(schema).iter_errors(values)
    problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    problems += [f"{key}: not a key of the chart" for key in unknown_keys(values, schema, schema)]
    problems += [f"config.{key}: not an Airflow option" for key in unknown_airflow_options(values.get("config", {}))]
    return problems


def test_vendored_schema_is_the_chart_1_19_schema(schema: dict[str, Any]) -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert {"apiServer", "dagProcessor", "jwtSecretName", "apiSecretKeySecretName"} <= set(schema["properties"])
    readme = (SCHEMA_FILE.parent / "README.md").read_text(encoding="utf-8")
    for origin in ("1.19.0", "5dc0143e7df3d7d0985aaffdfd96df9905432150", SCHEMA_SHA256):
        assert origin in readme
    assert "--version 1.19.0" in VALUES_FILE.read_text(encoding="utf-8")


def test_values_are_valid_for_the_chart(values: dict[str, Any], schema: dict[str, Any]) -> None:
    assert schema_problems(values, schema) == []


@pytest.mark.parametrize(
    ("path", "misspelt", "schema_alone"),
    [
        (("executor",), "executer", False),  # the top level allows any key
        (("workers", "celery", "replicas"), "replica", False),  # so does workers.celery
        (("apiServer", "service", "type"), "tpye", True),  # additionalProperties: false
        (("config", "core", "load_examples"), "load_example", False),  # any section and option pass
    ],
)
def test_a_misspelt_key_is_caught(
    values: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...], misspelt: str, schema_alone: bool
) -> None:
    from jsonschema import Draft7Validator

    parent = values
    for key in path[:-1]:
        parent = parent[key]
    parent[misspelt] = parent.pop(path[-1])
    where = ".".join((*path[:-1], misspelt))
    assert any(p.startswith(f"{where}:") for p in schema_problems(values, schema))
    assert Draft7Validator(schema).is_valid(values) is not schema_alone


# ------------------------------------------------------------------------------------------------
# secrets


def secret_files(values: dict[str, Any]) -> dict[str, set[str]]:
    """Per mount path of a volume made only of Secrets, its files: a path under it is a reference, not a value."""
    files: dict[str, set[str]] = {}
    for volume in values.get("volumes") or []:
        sources = (volume.get("projected") or {}).get("sources") or ([volume] if "secret" in volume else [])
        if sources and all("secret" in source for source in sources):
            names = {item["path"] for source in sources for item in source["secret"].get("items") or []}
            for mount in (m for m in values.get("volumeMounts") or [] if m["name"] == volume["name"]):
                files[mount["mountPath"].rstrip("/") + "/"] = {mount["mountPath"].rstrip("/") + f"/{n}" for n in names}
    return files


_SENSITIVE = re.compile(r"(?i)passw|^pass$|secret|token|fernet|jwt|private|ssh_?key|keytab|credential|^connection$")
#: an environment variable that holds a secret (CHARTER_SIGNING_KEY; not CHARTER_SIGNING_KEY_FILE, a path)
_SENSITIVE_ENV = re.compile(r"(?i)passw|secret|token|fernet|jwt|_KEY\b")
_NAMES_A_SECRET = re.compile(r"(SecretName|secretName|secretKey|envName)$")
_URL_WITH_PASSWORD = re.compile(r"://[^:/@\s]*:[^@\s]+@")


def literal_secrets(values: dict[str, Any]) -> list[str]:
    """Where the file holds a password, key or token instead of naming a Secret or a file of a mounted one."""
    references = tuple(secret_files(values))
    found: list[str] = []

    def is_value(value: Any) -> bool:
        return value not in (None, "", {}, []) and not (isinstance(value, str) and value.startswith(references))

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if {"name", "value"} <= set(node) and _SENSITIVE_ENV.search(str(node["name"])) and is_value(node["value"]):
                found.append(f"{path}: {node['name']}")
            for key, item in node.items():
                scalar = not isinstance(item, (dict, list)) or key == "connection"
                named = _SENSITIVE.search(str(key)) and not _NAMES_A_SECRET.search(str(key))
                if named and scalar and is_value(item):
                    found.append(f"{path}.{key}".lstrip("."))
                walk(item, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")
        elif isinstance(node, str) and (_URL_WITH_PASSWORD.search(node) or "-----BEGIN" in node):
            found.append(path.lstrip("."))

    walk(values, "")
    return found


def test_no_password_or_key_is_written_in_the_file(values: dict[str, Any]) -> None:
    assert literal_secrets(values) == []
    # the chart's defaults that carry a password are off
    assert values["postgresql"]["enabled"] is False, "the bundled PostgreSQL has a public default password"
    assert values["createUserJob"]["enabled"] is False, "the chart's default user's password is admin"


@pytest.mark.parametrize(
    "edit",
    [
        lambda v: v.update(fernetKey="c2VjcmV0LWZlcm5ldC1rZXktMzItYnl0ZXMtbG9uZyE="),
        lambda v: v["redis"].update(password="hunter2"),
        lambda v: v["data"].update(metadataConnection={"user": "airflow", "pass": "hunter2"}),
        lambda v: v["env"].append({"name": "CHARTER_SMTP_PASSWORD", "value": "hunter2"}),
        lambda v: v["env"].append({"name": "CHARTER_DATA_URL", "value": "postgresql://u:hunter2@db/x"}),
        lambda v: v["config"]["core"].update(simple_auth_manager_passwords_file="/opt/airflow/passwords.json"),
    ],
)
def test_a_literal_secret_is_caught(values: dict[str, Any], edit: Any) -> None:
    edit(values)
    assert literal_secrets(values) != []


def secret_keys(values: dict[str, Any]) -> dict[str, set[str]]:
    """Every Kubernetes Secret the values name, with the keys the chart or the pods read from it."""
    wanted: dict[str, set[str]] = {}
    for name, key in (
        (values["data"]["metadataSecretName"], "connection"),
        (values["data"]["brokerUrlSecretName"], "connection"),
        (values["fernetKeySecretName"], "fernet-key"),
        (values["jwtSecretName"], "jwt-secret"),
        (values["apiSecretKeySecretName"], "api-secret-key"),
        (values["redis"]["passwordSecretName"], "password"),
        *secret_env_of(values).values(),
    ):
        wanted.setdefault(name, set()).add(key)
    for volume in values["volumes"]:
        for source in (volume.get("projected") or {}).get("sources") or []:
            secret = source["secret"]
            wanted.setdefault(secret["name"], set()).update(item["key"] for item in secret["items"])
    return wanted


def test_secrets_come_from_kubernetes_secrets(values: dict[str, Any]) -> None:
    assert secret_keys(values)["charter-airflow-keys"] == {"fernet-key", "jwt-secret", "api-secret-key"}
    assert secret_env_of(values)["CHARTER_LEDGER_URL"] == secret_env_of(values)["AIRFLOW_CONN_CHARTER_LEDGER"]
    env, files = env_of(values), set().union(*secret_files(values).values())
    for name in ("CHARTER_SIGNING_KEY", "CHARTER_PUBLIC_KEY", "CHARTER_PSEUDONYMISATION_KEY", "CHARTER_SMTP_PASSWORD"):
        assert name not in env, f"{name} comes from its file"
        assert name not in secret_env_of(values), f"{name} comes from its file"
        assert env[f"{name}_FILE"] in files, f"{name}_FILE is not a file of a mounted Secret"
    assert env["CHARTER_AIRFLOW_USERS_FILE"] in files, "the users' passwords come from a mounted Secret"


# ------------------------------------------------------------------------------------------------
# shared state and settings


def shared_mounts(values: dict[str, Any], component: str) -> list[tuple[str, str]]:
    """(mount path, sub path) of the shared claim in a component: the top-level mounts plus its own extra ones."""
    own = values.get(component) or {}
    volumes = [*(values.get("volumes") or []), *(own.get("extraVolumes") or [])]
    claims = {v["name"] for v in volumes if (v.get("persistentVolumeClaim") or {}).get("claimName") == SHARED_CLAIM}
    mounts = [*(values.get("volumeMounts") or []), *(own.get("extraVolumeMounts") or [])]
    return [
        (m["mountPath"].rstrip("/"), m.get("subPath", ""))
        for m in mounts
        if m["name"] in claims and not m.get("readOnly")
    ]


def missing_shared_state(values: dict[str, Any]) -> dict[str, list[str]]:
    """Per Airflow component, the folders of SHARED_STATE_DIRS it does not reach on the shared volume."""
    from charter_guardrails.core.settings import SHARED_STATE_DIRS

    home = env_of(values)["CHARTER_HOME"].rstrip("/")
    missing: dict[str, list[str]] = {}
    for component in AIRFLOW_COMPONENTS:
        paths = [path for path, _ in shared_mounts(values, component)]
        lost = [
            d
            for d in SHARED_STATE_DIRS
            if not any(f"{home}/{d}" == p or f"{home}/{d}".startswith(p + "/") for p in paths)
        ]
        if lost:
            missing[component] = lost
    return missing


def test_the_shared_volume_holds_every_shared_folder_in_every_component(values: dict[str, Any]) -> None:
    from charter_guardrails.core.settings import SHARED_STATE_DIRS

    for component in AIRFLOW_COMPONENTS:
        assert (values.get(component) or {}).get("enabled", True) is not False, f"{component} is disabled"
    assert missing_shared_state(values) == {}
    assert len({tuple(shared_mounts(values, c)) for c in AIRFLOW_COMPONENTS}) == 1, "mounted at different paths"
    env, home = env_of(values), env_of(values)["CHARTER_HOME"]
    for name in ("CHARTER_DATA_DIR", "CHARTER_REPORTS_DIR", "CHARTER_KEYS_DIR", "CHARTER_AUDIT_ANCHOR"):
        assert env[name].startswith(f"{home}/"), f"{name} is off the shared volume"
    assert not env["TLDEXTRACT_CACHE"].startswith(f"{home}/"), "a per-container cache on the shared volume"
    # the check has teeth: without the top-level mount every component loses every folder
    values["volumeMounts"] = [m for m in values["volumeMounts"] if m["name"] != SHARED_CLAIM]
    assert missing_shared_state(values) == {c: list(SHARED_STATE_DIRS) for c in AIRFLOW_COMPONENTS}


def test_every_charter_option_and_compose_variable_is_set(values: dict[str, Any]) -> None:
    from charter_guardrails.core.settings import OPTIONS

    given = set(env_of(values)) | set(secret_env_of(values))
    assert set(OPTIONS.values()) <= given, sorted(set(OPTIONS.values()) - given)
    assert "CHARTER_LEDGER_URL" in secret_env_of(values), "the ledger URL holds a password: from a Secret"
    compose_env = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))["x-airflow-common"][
        "environment"
    ]
    from_files = {name for name, value in compose_env.items() if value == "" and f"{name}_FILE" in compose_env}
    wanted = {name for name in compose_env if name.startswith("CHARTER_")} - from_files
    assert {"CHARTER_HOME", "CHARTER_INTEGRITY_MONITOR_PAUSED", "CHARTER_SMTP_STARTTLS"} <= wanted
    assert sorted(wanted - given) == []


def test_services_run_and_examples_do_not(values: dict[str, Any]) -> None:
    env, core = env_of(values), values["config"]["core"]
    assert env["CHARTER_INTEGRITY_MONITOR_PAUSED"] == "false"
    assert core["load_examples"] == "False"
    assert "AIRFLOW__CORE__LOAD_EXAMPLES" not in env
    assert core["dags_are_paused_at_creation"] == "True"
    assert env["CHARTER_SMTP_STARTTLS"] == "true"
    assert "AIRFLOW_CONN_SMTP_DEFAULT" not in env
    assert values["executor"] == "CeleryExecutor"
    assert re.search(r"^# executor: KubernetesExecutor$", VALUES_FILE.read_text(encoding="utf-8"), re.M)
    assert values["config"]["celery"]["worker_concurrency"] == 1
    assert values["workers"]["celery"]["replicas"] >= 2


def test_the_api_server_is_not_exposed_outside_the_cluster(values: dict[str, Any]) -> None:
    assert values["apiServer"]["service"]["type"] == "ClusterIP"
    ingress = values.get("ingress") or {}
    assert not ingress.get("enabled")
    assert not any((ingress.get(k) or {}).get("enabled") for k in ("apiServer", "web"))
    assert values["flower"]["enabled"] is False, "Flower has no authentication"
    text = json.dumps(values)
    assert "LoadBalancer" not in text
    assert "NodePort" not in text


def test_the_image_and_the_migration_job(values: dict[str, Any]) -> None:
    from charter_guardrails.core.settings import SHARED_STATE_DIRS

    pin = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    assert pin is not None
    image = values["images"]["airflow"]
    assert image["tag"] == values["airflowVersion"] == values["defaultAirflowTag"] == pin.group(1)
    assert image["repository"] == "charter-airflow"
    assert values["images"]["useDefaultImageForMigration"] is False
    job = values["migrateDatabaseJob"]
    script = job["args"][-1]
    assert job["enabled"] is True
    assert "command" not in job, "the image's entry point loads the key files"
    assert script.index("charter ledger migrate") < script.index("airflow db migrate")
    # FAB, as with compose: the project's auth manager, then its roles and users after Airflow's migrations
    assert values["config"]["core"]["auth_manager"] == "charter_airflow.auth.CharterFabAuthManager"
    assert script.index("airflow db migrate") < script.index("python -m charter_airflow.fab_roles")
    assert script.index("fab_roles") < script.index("python -m charter_airflow.fab_users")
    assert '--passwords-file "$CHARTER_AIRFLOW_USERS_FILE"' in script
    from charter_airflow.fab_users import parse_users

    assert parse_users(env_of(values)["CHARTER_AIRFLOW_USERS"])
    for folder in SHARED_STATE_DIRS:
        assert f'"$CHARTER_HOME"/{folder} ' in f"{script} "
    assert "exit 78" in script, "keys come from Secrets only"
    assert "charter keys init" not in script, "keys come from Secrets only"


# ------------------------------------------------------------------------------------------------
# the operator's steps in docs/deployment.md


def helm_section() -> str:
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    match = re.search(r"^## Kubernetes \(Helm\)$(.*?)(?=^## |\Z)", docs, re.MULTILINE | re.DOTALL)
    assert match, "docs/deployment.md has no 'Kubernetes (Helm)' section"
    return match.group(1)


def test_the_docs_create_every_secret_and_the_shared_volume(values: dict[str, Any]) -> None:
    section = helm_section()
    created: dict[str, set[str]] = {}
    for command in re.findall(r"kubectl create secret generic .*", section.replace("\\\n", " ")):
        name = command.split()[4]
        created.setdefault(name, set()).update(re.findall(r"--from-(?:literal|file)=([\w.-]+)=", command))
    for name, keys in secret_keys(values).items():
        assert keys <= created.get(name, set()), f"the docs do not create the Secret {name} with {sorted(keys)}"
    manifests = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)]
    claims = [m for m in manifests if isinstance(m, dict) and m.get("kind") == "PersistentVolumeClaim"]
    assert [c["metadata"]["name"] for c in claims] == [SHARED_CLAIM]
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "helm install charter apache-airflow/airflow --version 1.19.0" in section
