"""The emulator's own copy of the API's enums, transcribed from the OpenAPI specs of the AI/ML API docs.

Source: https://github.com/aimlapi/api-docs, ``docs/api-references/video-models/magic/{image,video,text}-to-video.json``
(request ``model``/``template`` enums and defaults) and ``universal-video-fetch.json`` (the ``status`` enum).

This file deliberately does not import the provider's ``templates.py``: the emulator is the yardstick the client
is measured against, so it must not share the client's table. ``tests/emulator/test_emulator_catalogue.py``
checks this copy, the client's catalogue and the enums vendored from the spec agree, three ways.
"""

from __future__ import annotations

IMAGE_TO_VIDEO = "magic/image-to-video"
VIDEO_TO_VIDEO = "magic/video-to-video"
TEXT_TO_VIDEO = "magic/text-to-video"

MODELS: tuple[str, ...] = (IMAGE_TO_VIDEO, VIDEO_TO_VIDEO, TEXT_TO_VIDEO)

# The request body field that carries each model's input (the specs' required fields besides ``model``).
MEDIA_FIELD: dict[str, str] = {IMAGE_TO_VIDEO: "image_url", VIDEO_TO_VIDEO: "video_url", TEXT_TO_VIDEO: "prompt"}

# In the specs' order; the server checks the exact strings (ASCII "Rotating Cards", "(66)" with a space).
TEMPLATES: dict[str, tuple[str, ...]] = {
    IMAGE_TO_VIDEO: (
        "Thailand Street",
        "Times Square Billboard",
        "New York Times Square (77)",
        "Phone Social",
        "Art Gallery",
        "New York Times Square (66)",
        "Dubai Museum",
        "Digital Float",
        "Rotating Cards",
        "Desktop Reveal",
        "Egypt Pyramid",
        "Frames Drop",
        "Cappadocia Balloons",
        "Times Square Round Screen",
        "Stockholm Metro",
        "Tokyo Billboard",
        "San Francisco Skyscrapers",
        "Malaysia Shop",
        "Las Vegas LED",
        "Phone App",
        "Paris Eiffel Tower",
    ),
    VIDEO_TO_VIDEO: (
        "Thailand Street",
        "Times Square Billboard",
        "New York Times Square (78)",
        "Phone Social",
        "Art Gallery",
        "New York Times Square (67)",
        "Dubai Museum",
        "Rotating Cards",
        "Desktop Reveal",
        "Egypt Pyramid",
        "Cappadocia Balloons",
        "Times Square Round Screen",
        "Stockholm Metro",
        "Tokyo Billboard",
        "San Francisco Skyscrapers",
        "Malaysia Shop",
        "Las Vegas LED",
        "Phone App",
        "Paris Eiffel Tower",
    ),
    TEXT_TO_VIDEO: ("Shanghai Drone Show",),
}

DEFAULT_TEMPLATE: dict[str, str] = {
    IMAGE_TO_VIDEO: "Thailand Street",
    VIDEO_TO_VIDEO: "Thailand Street",
    TEXT_TO_VIDEO: "Shanghai Drone Show",
}

# The documented status enum of GET /v2/video/generations.
STATUSES: tuple[str, ...] = ("queued", "generating", "completed", "error")
FINAL_STATUSES: tuple[str, ...] = ("completed", "error")
# Not in the enum but polled on by the docs' sample loops (BullMQ queue states showing through):
# ``active`` appears in the text-to-video sample loop, ``waiting`` in all of them (never in a sample output).
EXTRA_STATUSES: tuple[str, ...] = ("active", "waiting")

# Models whose docs' own sample loop keeps polling on ``active``. The image- and video-to-video samples
# poll only on waiting/queued/generating and would stop at ``active``, so the emulator shows it only here
# unless a fault profile asks for it everywhere.
ACTIVE_MODELS: tuple[str, ...] = (TEXT_TO_VIDEO,)

# Models whose output has a sound track ("608x1080, with sound" / "without sound" on the doc pages).
SOUND_MODELS: tuple[str, ...] = (IMAGE_TO_VIDEO, VIDEO_TO_VIDEO)

# Price of one render: the docs' sample answer quotes ``meta.usage.credits_used: 1050000``.
CREDITS_PER_GENERATION = 1_050_000
# 1 USD buys 2,000,000 credits (used for ``x-aimlapi-usd-spent`` and the logs' ``cost.usd``).
CREDITS_PER_USD = 2_000_000
