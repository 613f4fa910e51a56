"""Response check for the HTTP provider's ``HttpEventTrigger`` in ``bench.trigger_scale``.

``HttpEventTrigger`` imports (and re-imports, on every poll) the module named by ``response_check_path``;
keep this module tiny and free of state: anything defined here is re-executed on each reload.
"""

from __future__ import annotations

FINAL = ("completed", "error")


async def is_final(response) -> bool:
    """True once the AI/ML API status body says the render is done (``completed`` or ``error``)."""
    return response.json().get("status") in FINAL
