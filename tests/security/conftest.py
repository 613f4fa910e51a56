"""The ``hostile_server`` fixture for every test under tests/security (other folders can import it the same way)."""

from tests.security.hostile_server import hostile_server  # noqa: F401
