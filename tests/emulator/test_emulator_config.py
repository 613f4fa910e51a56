"""One source of configuration: the CLI, the thread server and EmulatorProcess all come from EmulatorConfig."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from airflow_provider_magicvideo.emulator import EmulatorConfig, EmulatorProcess
from airflow_provider_magicvideo.emulator.__main__ import EXTRA_HINT, parser
from airflow_provider_magicvideo.emulator.config import build_config, cli_fields, from_namespace, to_argv

REPO = Path(__file__).resolve().parents[2]


def test_every_cli_flag_has_a_help_text():
    actions = [a for a in parser()._actions if a.dest != "help"]
    assert {a.dest for a in actions} == {f.name for f in cli_fields()}
    for action in actions:
        assert action.help and len(action.help) > 10, action.dest
    python_only = {f.name for f in fields(EmulatorConfig)} - {f.name for f in cli_fields()}
    assert python_only == {"url_fixtures"}


def test_cli_defaults_are_the_dataclass_defaults():
    assert from_namespace(parser().parse_args([])) == EmulatorConfig()


def test_child_process_flags_rebuild_the_same_config(tmp_path):
    config = build_config({
        "port": 9999, "render_seconds": 2.5, "render": "fast", "keys": ["b", "a"], "credits": 5,
        "state_dir": tmp_path, "faults": "late_logs,slow", "render_workers": 3, "log_delay": 0.0,
        "active_share": 0.5, "offline_prefixes": ["https://x/", "https://y/"], "log_level": "warning",
    })
    assert from_namespace(parser().parse_args(to_argv(config))) == config
    process = EmulatorProcess(render_seconds=2.5, render="fast", keys=["k"], log_delay=0.0)
    assert process.config == build_config({"port": process.port, "render_seconds": 2.5, "render": "fast",
                                           "keys": ["k"], "log_delay": 0.0})
    assert process.args[process.args.index("--port") + 1] == str(process.port)


def test_unknown_options_and_python_only_options_are_refused():
    with pytest.raises(TypeError, match="unknown emulator option"):
        EmulatorProcess(render_secs=1)
    with pytest.raises(TypeError, match="url_fixtures"):
        EmulatorProcess(url_fixtures={"https://x/a.png": b"x"})


def test_without_the_extra_the_cli_names_it():
    code = (
        "import sys; sys.modules['PIL'] = None; "
        "from airflow_provider_magicvideo.emulator.__main__ import main; main([])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert EXTRA_HINT in result.stderr and "pillow" in result.stderr
    assert "No module named" not in result.stderr
