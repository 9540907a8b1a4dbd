"""The project as an installable distribution: a wheel, installed in a fresh virtual environment outside the checkout.

The wheel is built from a copy of the packages' sources, installed with its runtime dependencies at the locked
versions (``-c requirements.txt``) into a new virtual environment in the test's temporary folder, and an Airflow
of that environment is pointed at one new use case through ``airflow.cfg`` only (``[charter] policies_dir``,
``expectations_dir``, ``home``): an empty plugins folder, and a DAGs folder holding the package's generic DAG file.
Its DAGs are listed, and its plugin is loaded from the wheel's entry point; nothing of the checkout is used (no
``CHARTER_*``, ``PYTHONPATH`` or ``AIRFLOW__*`` variable reaches it, and no path of the checkout appears).

The first install on a clean machine takes about 45 s (``--no-compile``, wheels from the local package mirror).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_compose import DEV_TOOLS
from tests.onboarding_doc import doc_commands

ROOT = Path(__file__).resolve().parents[2]
#: What the wheel is built from: the packages and the project's metadata, nothing else of the checkout.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "include/charter_guardrails",
    "include/charter_demo",
    "plugins/charter_airflow",
)
USE_CASE = "tonnage_test"

pytestmark = [pytest.mark.slow, pytest.mark.topology, pytest.mark.timeout(900)]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points at the checkout (its variables, its venv, its paths)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHARTER_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV", "PYTEST", "TLDEXTRACT"))
        and str(ROOT) not in v
    }
    env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "CODECARBON_LOG_LEVEL": "error", **extra})
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(argv[:4])} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def json_output(text: str) -> Any:
    """The JSON document of an Airflow command's output: its one JSON line (log lines may come before it)."""
    for line in reversed(text.splitlines()):
        if line.startswith(("[{", "[]", "{")):
            return json.loads(line)
    raise AssertionError(f"no JSON in the output:\n{text[-2000:]}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of its sources (so the build writes nothing into the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            )
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(src)], work, clean_env()
    )
    (built,) = (work / "dist").glob("charter_guardrails-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its runtime dependencies, at the versions of the lock."""
    work = tmp_path_factory.mktemp("venv")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], work, clean_env())
    shutil.copy2(wheel, work / wheel.name)
    shutil.copy2(ROOT / "requirements.txt", work / "requirements.txt")
    [install] = doc_commands("install")  # docs/onboarding.md's command, as a user types it in the venv
    assert install.startswith(f"pip install {wheel.name} "), f"docs/onboarding.md installs another file: {install}"
    env = clean_env(PATH=os.pathsep.join([str(venv / "bin"), clean_env()["PATH"]]))
    started = time.monotonic()
    run(["bash", "-c", f"{install} --no-compile -q"], work, env, timeout=900)  # bytecode is not what is tested
    print(f"wheel and dependencies installed in {time.monotonic() - started:.0f} s")
    return venv


@pytest.fixture(scope="module")
def deployment(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An Airflow home whose airflow.cfg names one new use case's folders; the outputs of the commands run on it."""
    base = tmp_path_factory.mktemp("deployment")
    policies, suites, home, plugins, dags = (base / n for n in ("policies", "suites", "home", "plugins", "dags"))
    for folder in (policies, suites, home, plugins, dags):
        folder.mkdir()
    policy = (ROOT / "include" / "policies" / "waste_tonnage.yaml").read_text(encoding="utf-8")
    assert "\nid: waste_tonnage\n" in policy
    policy = policy.replace("\nid: waste_tonnage\n", f"\nid: {USE_CASE}\n").replace("waste_tonnage.", f"{USE_CASE}.")
    (policies / f"{USE_CASE}.yaml").write_text(policy, encoding="utf-8")
    for role in ("training", "inference"):
        suite = (ROOT / "expectations" / f"waste_tonnage.{role}.json").read_text(encoding="utf-8")
        suite = suite.replace(f'"waste_tonnage.{role}"', f'"{USE_CASE}.{role}"')
        (suites / f"{USE_CASE}.{role}.json").write_text(suite, encoding="utf-8")
    python, airflow = str(venv / "bin" / "python"), str(venv / "bin" / "airflow")
    env = clean_env(AIRFLOW_HOME=str(base / "airflow"))
    shipped = run(
        [python, "-c", "import importlib.util; print(importlib.util.find_spec('charter_airflow.charter_dags').origin)"],
        base,
        env,
    ).stdout.strip()
    shutil.copy2(shipped, dags / "charter_dags.py")
    (base / "airflow").mkdir()
    (base / "airflow" / "airflow.cfg").write_text(
        "[core]\n"
        f"dags_folder = {dags}\nplugins_folder = {plugins}\nload_examples = False\n\n"
        "[charter]\n"
        f"home = {home}\npolicies_dir = {policies}\nexpectations_dir = {suites}\n",
        encoding="utf-8",
    )
    run([airflow, "db", "migrate"], base, env)
    run([airflow, "dags", "reserialize"], base, env)
    files = (
        "import charter_guardrails, charter_airflow, charter_demo as m, json; print(json.dumps([x.__file__ for x in "
    )
    files += "(charter_guardrails, charter_airflow, m)]))"
    return {
        "venv": venv,
        "shipped": shipped,
        "dags": run([airflow, "dags", "list", "-o", "json"], base, env).stdout,
        "plugins": run([airflow, "plugins", "-o", "json"], base, env).stdout,
        "providers": run([airflow, "providers", "list", "-o", "json"], base, env).stdout,
        "files": run([python, "-c", files], base, env).stdout,
        "packages": run([python, "-m", "pip", "list", "--format", "json"], base, env).stdout,
    }


def test_the_wheel_holds_the_code_and_its_own_data_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "charter_guardrails/core/engagements.yaml",
        "charter_guardrails/locale/fr/LC_MESSAGES/charter.po",
        "charter_guardrails/reporting/templates/model_card.html",
        "charter_airflow/ui/templates/base.html",
        "charter_airflow/charter_dags.py",
        "charter_airflow/provider.py",
    ):
        assert shipped in names, f"the wheel lacks {shipped}"
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"charter_guardrails", "charter_airflow", "charter_demo", wheel.name.split("-py3")[0] + ".dist-info"}
    assert not [n for n in names if n.endswith((".csv", ".parquet")) or "/policies/" in n or "expectations/" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "charter_governance = charter_airflow.plugin:CharterGovernancePlugin" in text
    assert "provider_info = charter_airflow.provider:get_provider_info" in text


def test_an_airflow_with_the_wheel_builds_the_new_use_case_and_loads_the_plugin(deployment: dict[str, Any]) -> None:
    dag_ids = {dag["dag_id"] for dag in json_output(deployment["dags"])}
    assert dag_ids == {f"{USE_CASE}_policy_review", f"{USE_CASE}_model_refresh", f"{USE_CASE}_inference_guardrails"}
    plugins = json_output(deployment["plugins"])
    assert [p["name"] for p in plugins] == ["charter_governance"], "loaded once, from the entry point"
    assert "EntryPoint(name='charter_governance'" in plugins[0]["source"]
    providers = {p["package_name"]: p for p in json_output(deployment["providers"])}
    assert "charter-guardrails" in providers


def test_nothing_of_the_checkout_is_used(deployment: dict[str, Any]) -> None:
    site = deployment["venv"] / "lib"
    for module_file in json.loads(deployment["files"]):
        assert Path(module_file).is_relative_to(site), f"{module_file} is not the installed package"
    assert Path(deployment["shipped"]).is_relative_to(site)
    for name in ("dags", "plugins", "providers", "files"):
        assert str(ROOT) not in deployment[name], f"the checkout's path appears in the output of {name}"


def test_the_install_holds_no_development_tool(deployment: dict[str, Any]) -> None:
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(deployment["packages"])}
    assert {"apache-airflow", "presidio-analyzer", "charter-guardrails"} <= installed, "the listing found too little"
    assert not installed & DEV_TOOLS, f"development tools installed as dependencies: {sorted(installed & DEV_TOOLS)}"


def test_the_provider_describes_every_charter_option_in_airflows_format() -> None:
    """The ``[charter]`` section of the provider lists exactly the library's options, valid against Airflow's schema."""
    import airflow
    import jsonschema
    from charter_airflow.provider import get_provider_info
    from charter_guardrails.core.settings import OPTIONS

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text(encoding="utf-8"))
    info = get_provider_info()
    jsonschema.validate(info, schema)
    options = info["config"]["charter"]["options"]
    assert set(options) == set(OPTIONS)
    assert all(option["default"] is None for option in options.values()), "a default would shadow the library's"
    assert {"ledger_url", "data_url"} == {name for name, option in options.items() if option.get("sensitive")}


def test_each_option_comes_from_the_variable_then_airflow_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_guardrails.core import settings

    monkeypatch.setattr(settings, "_config_sources", [])
    for name in (*settings.OPTIONS.values(), *(f"AIRFLOW__CHARTER__{o.upper()}" for o in settings.OPTIONS)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = {"policies_dir": str(tmp_path / "cfg"), "reference_dir": str(tmp_path / "cfg_ref"), "keys_dir": ""}
    settings.register_config_source(cfg.get)
    settings.register_config_source(cfg.get)
    assert settings._config_sources == [cfg.get], "registering twice is a no-op"
    monkeypatch.setenv("AIRFLOW__CHARTER__REFERENCE_DIR", str(tmp_path / "env_ref"))
    monkeypatch.setenv("AIRFLOW__CHARTER__HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "charter_home"))
    got = settings.get_settings()
    assert got.home == tmp_path / "charter_home"  # CHARTER_HOME before AIRFLOW__CHARTER__HOME
    assert got.reference_dir == tmp_path / "env_ref"  # AIRFLOW__CHARTER__* before airflow.cfg
    assert got.policies_dir == tmp_path / "cfg"  # airflow.cfg before the default
    assert got.expectations_dir == tmp_path / "charter_home" / "expectations"  # the default, under the home
    assert got.keys_dir == tmp_path / "charter_home" / "keys"  # an empty value is unset
    monkeypatch.delenv("CHARTER_HOME")
    monkeypatch.delenv("AIRFLOW__CHARTER__HOME")
    assert settings.get_settings().home == tmp_path / ".charter"
    assert settings.get_settings().ledger_url == f"sqlite:///{tmp_path / '.charter' / 'ledger.db'}"


_PLUGINS_PROBE = """
import json
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors}))
"""


def test_the_checkout_loads_the_plugin_once_from_the_entry_point(tmp_path: Path) -> None:
    """The checkout sets no plugins folder: its editable install's entry point provides the plugin, once."""
    from importlib.metadata import entry_points

    assert "charter_governance" in {ep.name for ep in entry_points(group="airflow.plugins")}, "run `make venv`"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__DATABASE__", "AIRFLOW__CORE__PLUGINS"))}
    env["AIRFLOW_HOME"] = str(tmp_path)
    found = json_output(run([sys.executable, "-c", _PLUGINS_PROBE], tmp_path, env).stdout)
    assert found == {"plugins": ["charter_governance"], "errors": {}}
    # why: with plugins/ as the plugins folder too, Airflow skips the entry point's copy and records an error
    env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    found = json_output(run([sys.executable, "-c", _PLUGINS_PROBE], tmp_path, env).stdout)
    assert found["plugins"] == ["charter_governance"]
    assert list(found["errors"].values()) == ["Plugin 'charter_governance' already registered, skipping"]
