"""Offline emulator of the AI/ML API "magic" video endpoints, with real renders and fault injection.

Importing this package is cheap: the FastAPI app, PyAV and NumPy load only when a server starts.
"""

from airflow_provider_magicvideo.emulator.config import EmulatorConfig
from airflow_provider_magicvideo.emulator.server import EmulatorProcess, run_emulator, run_emulator_process

__all__ = ["EmulatorConfig", "EmulatorProcess", "run_emulator", "run_emulator_process"]
