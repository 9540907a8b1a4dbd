"""The plugins folder as Airflow loads it: only the plugin module is imported, and nothing fails to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Run in a fresh interpreter, as a scheduler or worker loads plugins: Airflow's own plugins_manager,
#: with this project's plugins folder; what it imported from that folder, and every import error.
_PROBE = """
import json, sys
from pathlib import Path
from airflow import plugins_manager, settings
from airflow.configuration import conf

folder = Path(settings.PLUGINS_FOLDER).resolve()
before = set(sys.modules)
# The folder alone: the installed package's entry point provides the same plugin (tests/deploy/test_wheel_install.py).
plugins_manager._load_entrypoint_plugins = lambda: ([], {})
plugins, errors = plugins_manager._get_plugins()
loaded = sorted(
    name for name, module in sys.modules.items()
    if name not in before and Path(getattr(module, "__file__", None) or "/").resolve().is_relative_to(folder)
)
print(json.dumps({
    "syntax": conf.get("core", "dag_ignore_file_syntax"),
    "errors": errors,
    "loaded": loaded,
    "plugins": sorted(p.name for p in plugins),
}))
"""


def _load_plugins_folder() -> dict[str, object]:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_airflow_imports_the_plugin_module_alone_without_import_errors() -> None:
    found = _load_plugins_folder()
    # Any import error fails the test, whatever its source (the plugins folder, an entry point, a provider).
    assert found["errors"] == {}
    assert "charter_governance" in found["plugins"]
    # The loader names a file's module after its stem: "plugin" is plugins/charter_airflow/plugin.py.
    # Nothing else of the folder is imported: not the DAG factory, the tasks or the Celery settings.
    assert found["loaded"] == ["plugin"], found["loaded"]


def test_the_ignore_file_keeps_only_the_plugin_module_in_the_configured_syntax() -> None:
    """plugins/.airflowignore is written in glob syntax, Airflow's default; another syntax needs another file."""
    from airflow._shared.module_loading import find_path_from_directory
    from airflow.configuration import conf

    syntax = conf.get("core", "dag_ignore_file_syntax")
    assert syntax == "glob"
    files = find_path_from_directory(ROOT / "plugins", ".airflowignore", syntax)
    python_files = sorted(Path(f).relative_to(ROOT / "plugins").as_posix() for f in files if f.endswith(".py"))
    assert python_files == ["charter_airflow/plugin.py"]
