"""docker-compose.yaml run for real without Docker (charter_demo.compose_runner), and its path mapping.

The topology test starts the compose file's services as local processes: the project's image's services with
their environment, volumes, secrets and ports mapped onto this machine, PostgreSQL and Redis of the machine for
``postgres`` and ``redis`` (fresh databases and roles of the run, dropped after), an SMTP catcher for ``mailpit``.
Through the api-server, authenticated as the compose file configures it (the FAB auth manager of
``charter_airflow.auth``, users and roles created by airflow-init, passwords from the ``airflow_users`` secret, tokens
from FAB's ``POST /auth/token``), it runs the model refresh of citizen_requests to its four-eyes approval, checks the
publication and the model card in the governance view, then corrupts the registered training data: the integrity
monitor fails and the alert relay delivers its alert to the catcher. Every container must have written nothing of
the shared state (``SHARED_STATE_DIRS``) in its private folder: a volume missing from the compose file fails here.

The fast tests read the compose file only: interpolation, anchors, start order, and where each container's paths
land, with the teeth shown on a copy of the file without one named volume.
"""

from __future__ import annotations

import email
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from charter_demo import compose_stop
from charter_demo.compose_backing import write_dev_secrets
from charter_demo.compose_runner import ComposeRunner
from charter_demo.compose_spec import ComposeError, interpolate, load_compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
PG = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
MODEL_REFRESH = "citizen_requests_model_refresh"
#: The services of a deployment (airflow-init and the stand-ins follow from depends_on), and the mail catcher.
SERVICES = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "mailpit",
]
#: name -> role key of charter_airflow.fab_users: admin triggers the refresh of citizen_requests, karim.haddad (FAB
#: role "Charte approbateur", an approver of the policy) approves it (four eyes: he did not trigger it); the data
#: engineer may not answer.
ROLES = {"admin": "admin", "reviewer": "ingenieur", "karim.haddad": "approbateur"}


def _variables(secrets_dir: Path) -> dict[str, str]:
    """What an operator's .env holds for this run (passwords are random: the machine's PostgreSQL trusts loopback)."""
    return {
        **{
            name: secrets.token_urlsafe(12)
            for name in ("AIRFLOW_DB_PASSWORD", "CHARTER_LEDGER_DB_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
        },
        "CHARTER_SECRETS_DIR": str(secrets_dir),
        "AIRFLOW_USERS": ",".join(f"{user}:{role}" for user, role in ROLES.items()),
        "CHARTER_SMTP_STARTTLS": "false",  # the catcher speaks no TLS, as the compose file says of mailpit
        "CHARTER_GENERATE_SAMPLE_DATA": "true",
    }


def _runner(tmp_path: Path, compose: Path = COMPOSE) -> ComposeRunner:
    write_dev_secrets(tmp_path / "secrets", {user: f"pw-{user}" for user in ROLES})
    return ComposeRunner(compose, tmp_path / "compose", _variables(tmp_path / "secrets"), pg_admin=PG, project_dir=ROOT)


# ------------------------------------------------------------------------------------------------ fast tests


def test_interpolation_follows_the_compose_specification() -> None:
    variables = {"SET": "value", "EMPTY": ""}
    cases = {
        "${SET:-d}": "value",
        "${EMPTY:-d}": "d",
        "${EMPTY-d}": "",
        "${UNSET-d}": "d",
        "${SET:+alt}": "alt",
        "${EMPTY:+alt}": "",
        "$$HOSTNAME": "$HOSTNAME",
        "a-$SET-b": "a-value-b",
    }
    assert {text: interpolate(text, variables) for text in cases} == cases
    assert interpolate({"k": ["${SET:?needed}"]}, variables) == {"k": ["value"]}
    with pytest.raises(ComposeError, match="EMPTY is missing a value: set it"):
        interpolate("${EMPTY:?set it}", variables)


def test_the_compose_file_is_read_with_its_anchors_profiles_and_start_order(tmp_path: Path) -> None:
    compose = load_compose(COMPOSE, _variables(tmp_path))
    worker = compose.services["airflow-worker"]
    assert worker.replicas == 2
    assert worker.environment["DUMB_INIT_SETSID"] == "0"  # its own map merged over the anchor's
    assert worker.environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker.command == ["celery", "worker", "--concurrency", "1"]
    assert worker.depends_on["airflow-init"] == "service_completed_successfully"
    assert compose.services["airflow-apiserver"].ports[0].container_port == 8080
    assert compose.secrets["airflow_users"] == tmp_path / "airflow_users.json"

    runner = _runner(tmp_path)
    default = runner.selected()
    assert not {"mailpit", "flower", "airflow-cli"} & set(default), "profiled services start only when asked"
    order = runner.selected(SERVICES)
    assert order.index("postgres") < order.index("airflow-init") < order.index("airflow-apiserver")
    assert order.index("airflow-apiserver") < order.index("airflow-worker")  # the worker waits for it to be healthy
    assert "mailpit" in order


def _where(runner: ComposeRunner, service: str, path: str) -> Path:
    container = next(c for c in runner.containers.values() if c.service.name == service)
    return container.layout.location(path)


def test_named_volumes_are_shared_and_everything_else_is_private(tmp_path: Path) -> None:
    from charter_guardrails.core.settings import SHARED_STATE_DIRS

    runner = _runner(tmp_path)
    runner.plan(SERVICES)
    readers = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
    # the state folders and the task logs: written by a worker, read by the other worker and every component
    for path in [*(f"/opt/charter/state/{folder}/file" for folder in SHARED_STATE_DIRS), "/opt/airflow/logs/x.log"]:
        written = _where(runner, "airflow-worker", path)
        assert written.is_relative_to(runner.state_dir / "volumes"), (path, written)
        assert {_where(runner, reader, path) for reader in readers} == {written}, path
        workers = [c for c in runner.containers.values() if c.service.name == "airflow-worker"]
        assert {c.layout.location(path) for c in workers} == {written}
    private = {c.layout.location("/opt/charter/state/tldextract") for c in runner.containers.values()}
    assert len(private) == len(runner.containers)  # one per container

    worker = next(c for c in runner.containers.values() if c.name.endswith("airflow-worker-1"))
    env = worker.env
    assert env["CHARTER_HOME"] == str(worker.layout.host_path("/opt/charter/state"))
    assert re.fullmatch(
        r"postgresql\+psycopg2://compose_\w+_airflow:[^@]+@127\.0\.0\.1:5432/compose_\w+_airflow",
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
    )
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"  # the machine's Redis has no password
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == runner.url("airflow-apiserver", 8080) + "/execution/"
    assert env["AIRFLOW__CORE__FERNET_KEY_CMD"] == f"cat {worker.layout.host_path('/run/secrets/airflow_fernet_key')}"
    assert (env["CHARTER_SMTP_HOST"], env["CHARTER_SMTP_PORT"]) == ("127.0.0.1", str(runner.stand_ins["mailpit"].port))
    assert worker.argv[0] == str(worker.layout.host_path("/opt/charter/deploy/docker-entrypoint.sh"))
    # deploy/docker-entrypoint.sh hands over to the stand-in of the Airflow image's /entrypoint
    assert env["CHARTER_NEXT_ENTRYPOINT"] == str(runner.state_dir / "image" / "entrypoint")
    worker.layout.materialise()
    link = worker.layout.host_path("/opt/charter/state/work")
    assert link.resolve() == runner.volume("charter-work").resolve()
    assert worker.layout.host_path("/run/secrets/airflow_users").read_text().startswith("{")


def test_without_one_named_volume_a_writer_and_a_reader_no_longer_share_a_folder(tmp_path: Path) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    without = re.sub(r"(?m)^\s*- charter-work:/opt/charter/state/work\n", "", text)
    without = re.sub(r"(?m)^  charter-work:\n", "", without)
    assert without.count("charter-work") == 0, "the copy still mounts charter-work"
    copy = tmp_path / "docker-compose.yaml"
    copy.write_text(without, encoding="utf-8")
    runner = _runner(tmp_path, copy)  # relative paths from the checkout, as --project-directory does
    runner.plan(SERVICES)
    path = "/opt/charter/state/work/run/copy.parquet"
    written, read = _where(runner, "airflow-worker", path), _where(runner, "airflow-scheduler", path)
    assert written != read
    workers = [c for c in runner.containers.values() if c.service.name == "airflow-worker"]
    assert len({c.layout.location(path) for c in workers}) == 2
    for container in workers:
        container.layout.materialise()
    paths = [c.layout.host_path("/opt/charter/state/work") for c in workers]
    assert paths[0].resolve() != paths[1].resolve()
    # the other volumes are still shared
    data = "/opt/charter/state/data/x.csv"
    assert _where(runner, "airflow-worker", data) == _where(runner, "airflow-apiserver", data)


def test_down_stops_each_service_before_the_services_it_depends_on(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    runner.plan(SERVICES)
    order = compose_stop.waves(list(runner.containers.values()))
    wave_of = {c.service_name: i for i, wave in enumerate(order) for c in wave}
    assert wave_of["airflow-worker"] < wave_of["airflow-apiserver"], "a worker's tasks report to the api-server"
    pairs = [(c.service_name, d) for c in runner.containers.values() for d in c.depends_on if d in wave_of]
    assert pairs
    assert all(wave_of[dependant] < wave_of[dependency] for dependant, dependency in pairs), pairs


@dataclass
class _Process:
    name: str
    service_name: str
    depends_on: list[str]
    popen: subprocess.Popen[bytes]


def test_stop_waits_for_the_dependant_then_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "api-alive-when-worker-stopped"
    api = subprocess.Popen(["sleep", "60"], start_new_session=True)
    worker_script = f"trap 'kill -0 {api.pid} && touch {marker}; exit 0' TERM; while :; do sleep 0.1; done"
    worker = subprocess.Popen(["bash", "-c", worker_script], start_new_session=True)
    stubborn = subprocess.Popen(["bash", "-c", "trap '' TERM; while :; do sleep 0.1; done"], start_new_session=True)
    time.sleep(0.5)  # the traps are set
    errors = compose_stop.stop(
        [
            _Process("p-api-1", "api", [], api),
            _Process("p-worker-1", "worker", ["api"], worker),
            _Process("p-other-1", "other", [], stubborn),
        ],
        grace=2,
    )
    assert marker.exists(), "the api was stopped before the worker that depends on it"
    assert errors == ["p-other-1 ignored SIGTERM for 2 s"]
    assert all(p.poll() is not None for p in (api, worker, stubborn))


# ------------------------------------------------------------------------------------------------ the topology


@pytest.fixture
def topology(tmp_path: Path):
    """The compose file's services started; afterwards every process stopped and the run's databases dropped."""
    import psycopg

    runner = _runner(tmp_path)
    try:
        runner.up(SERVICES, timeout=420)
        yield runner
    finally:
        errors = runner.down()
        assert all(c.process is None or c.process.poll() is not None for c in runner.containers.values())
        with psycopg.connect(f"{PG}/postgres", connect_timeout=5) as conn:
            left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{runner.project}%",))
            assert not left.fetchall(), "the run's databases were not dropped"
            roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{runner.project}%",))
            assert not roles.fetchall(), "the run's roles were not dropped"
        assert not errors, errors


def _client(runner: ComposeRunner, user: str):
    from charter_demo.airflow_rest import AirflowRestClient

    return AirflowRestClient(runner.url("airflow-apiserver", 8080), user, f"pw-{user}")


def _refresh_to_approval(runner: ComposeRunner, client) -> str:
    """The model refresh of citizen_requests, approved by a named approver who did not trigger it."""
    from charter_demo.airflow_rest import AirflowRestError

    client.wait_for_dag(MODEL_REFRESH, timeout=180)
    # The delivery of training data is registered (signed manifest), in a one-off container as an operator would.
    registered = runner.run(
        "airflow-cli",
        [
            "bash",
            "-c",
            "charter hash /opt/charter/state/data/citizen_requests/training.csv "
            "--dataset citizen_requests.training --quiet",
        ],
    )
    assert registered.returncode == 0, registered.stderr[-2000:]
    run_id = client.trigger(MODEL_REFRESH)
    try:
        detail = client.wait_for_hitl(MODEL_REFRESH, run_id, "human_review", timeout=420)
        assert detail["options"] == ["Approve", "Override", "Reject"]
        assert [u["name"] for u in detail["assigned_users"]] == ["claire.martin", "karim.haddad"]
        engineer = _client(runner, "reviewer")
        with pytest.raises(AirflowRestError, match="HTTP 403"):  # FAB: no "HITL Detail" edit for the engineer
            engineer.answer_hitl(MODEL_REFRESH, run_id, "human_review", "Approve")
        engineer.close()
        approver = _client(runner, "karim.haddad")
        approver.answer_hitl(MODEL_REFRESH, run_id, "human_review", "Approve")
        approver.close()
        state = client.wait_for_run(MODEL_REFRESH, run_id, timeout=240)
    except AirflowRestError as exc:
        runner.check_running()
        states = {ti["task_id"]: ti["state"] for ti in client.task_instances(MODEL_REFRESH, run_id)}
        raise AssertionError(f"{exc}; task states: {states}; logs in {runner.state_dir / 'logs'}") from exc
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(MODEL_REFRESH, run_id)}
    assert state == "success", states
    assert states["human_review"] == states["publish"] == "success", states
    return run_id


def _model_card_page(runner: ComposeRunner, run_id: str) -> None:
    """The published version's page in the governance view, through the api-server, with a user's token."""
    import httpx
    import psycopg

    ledger_url = next(iter(runner.containers.values())).env["CHARTER_LEDGER_URL"]
    with psycopg.connect(ledger_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT id, card_path FROM model_versions WHERE use_case = 'citizen_requests' AND run_id = %s", (run_id,)
        ).fetchone()
    assert row is not None, f"no model version for {run_id}"
    model_id, card_path = row
    base = runner.url("airflow-apiserver", 8080)
    token = httpx.post(f"{base}/auth/token", json={"username": "reviewer", "password": "pw-reviewer"}, timeout=30)
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert httpx.get(f"{base}/charte/modeles/{model_id}", timeout=30).status_code == 401  # no identity, no page
    page = httpx.get(f"{base}/charte/modeles/{model_id}", headers=headers, timeout=60)
    assert page.status_code == 200, page.text[:2000]
    assert "Fiche modèle" in page.text
    assert "introuvable" not in page.text, "the view does not see the card the worker published"
    assert Path(card_path).name in page.text
    card = runner.volume("charter-models") / card_path
    assert card.is_file(), f"the model card {card_path} is not on the charter-models volume"


def _integrity_alert(runner: ComposeRunner, client) -> None:
    """The registered training file corrupted: the monitor fails, the relay delivers the alert to the catcher."""
    data = runner.volume("charter-data") / "citizen_requests"
    (data / "training.csv").write_bytes((data / "training__corrupted.csv").read_bytes())
    client.wait_for_dag("integrity_monitor", timeout=60)
    run_id = client.trigger("integrity_monitor")
    assert client.wait_for_run("integrity_monitor", run_id, timeout=240) == "failed"
    states = {
        (ti["task_id"], ti["map_index"]): ti["state"] for ti in client.task_instances("integrity_monitor", run_id)
    }
    assert "failed" in {s for (task, _), s in states.items() if task == "verify_dataset_integrity"}, states
    catcher = runner.stand_ins["mailpit"]
    deadline = time.monotonic() + 150  # the relay runs every minute, active from its creation

    def incident_alerts() -> list[EmailMessage]:
        messages = [email.message_from_bytes(m, policy=default_policy) for m in list(catcher.received)]
        return [m for m in messages if m["Subject"].startswith("[Charte IA – Sûreté] Incident n°")]

    while time.monotonic() < deadline and not incident_alerts():
        runner.check_running()
        time.sleep(3)
    messages = incident_alerts()
    assert messages, f"no incident alert reached the mail catcher ({len(catcher.received)} other messages)"
    assert {m["From"] for m in messages} == {"charter-guardrails@localhost"}  # CHARTER_SMTP_FROM of the compose file


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.topology
@pytest.mark.timeout(900)
def test_the_compose_file_runs_a_refresh_publishes_and_alerts(topology: ComposeRunner) -> None:
    from charter_guardrails.core.settings import LOCAL_STATE_DIRS

    runner = topology
    client = _client(runner, "admin")
    try:
        run_id = _refresh_to_approval(runner, client)
        _model_card_page(runner, run_id)
        _integrity_alert(runner, client)
    finally:
        client.close()
    runner.check_running()
    # Nothing of the shared state (nor a task log) stayed in a container's private folder: each is on a volume.
    local = tuple(f"/opt/charter/state/{d}/" for d in LOCAL_STATE_DIRS)
    shared = ("/opt/charter/state/", "/opt/airflow/logs/")
    stray = {
        c.name: [p for p in c.layout.private_files() if p.startswith(shared) and not p.startswith(local)]
        for c in runner.containers.values()
    }
    assert not {name: files for name, files in stray.items() if files}, stray
    workers = [c for c in runner.containers.values() if c.service.name == "airflow-worker"]
    assert len(workers) == 2
    for worker in workers:
        assert "personal data analysers preloaded" in worker.log.read_text(errors="replace")
