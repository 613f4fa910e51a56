"""The template catalogue: every spelling the API docs use resolves to the exact server enum."""

from __future__ import annotations

import pytest

from airflow_provider_magicvideo.exceptions import InvalidInputError, UnknownModelError, UnknownTemplateError
from airflow_provider_magicvideo.templates import (
    DEFAULT_TEMPLATE,
    IMAGE_TO_VIDEO_TEMPLATES,
    TEMPLATES,
    TEXT_TO_VIDEO_TEMPLATES,
    VIDEO_TO_VIDEO_TEMPLATES,
    Model,
    resolve_model,
    resolve_template,
)

# Copied verbatim from the "Supported Templates" list at the top of the API doc seed
# the original doc page in the shared seed folder (kept here because CI clones have no shared/ folder).
# Note the doc's "(66)"/"(77)" without a space and the Cyrillic capital Es (U+0421) in "Rotating Cards".
DOC_SUPPORTED_TEMPLATES: list[tuple[str, str]] = [
    ("Art Gallery", "Art Gallery"),
    ("Cappadocia Balloons", "Cappadocia Balloons"),
    ("Desktop Reveal", "Desktop Reveal"),
    ("Digital Float", "Digital Float"),
    ("Dubai Museum", "Dubai Museum"),
    ("Egypt Pyramid", "Egypt Pyramid"),
    ("Las Vegas LED", "Las Vegas LED"),
    ("New York Times Square(66)", "New York Times Square (66)"),
    ("New York Times Square(77)", "New York Times Square (77)"),
    ("Paris Eiffel Tower", "Paris Eiffel Tower"),
    ("Phone App", "Phone App"),
    ("Phone Social", "Phone Social"),
    ("Rotating \u0421ards", "Rotating Cards"),
    ("San Francisco Skyscrapers", "San Francisco Skyscrapers"),
    ("Stockholm Metro", "Stockholm Metro"),
    ("Thailand Street", "Thailand Street"),
    ("Times Square Billboard", "Times Square Billboard"),
    ("Times Square Round Screen", "Times Square Round Screen"),
    ("Tokyo Billboard", "Tokyo Billboard"),
]
# The same doc's sample clients (Python and JavaScript) send this spelling.
DOC_SAMPLE_CLIENT_TEMPLATES: list[tuple[str, str]] = [
    ("New York Times Square (66)", "New York Times Square (66)"),
]


def test_doc_list_really_contains_the_cyrillic_spelling():
    # Guards the data above: if someone "fixes" the look-alike, the test below stops proving anything.
    assert "\u0421" in DOC_SUPPORTED_TEMPLATES[12][0]
    assert DOC_SUPPORTED_TEMPLATES[12][0] != "Rotating Cards"


@pytest.mark.parametrize(("spelling", "enum"), DOC_SUPPORTED_TEMPLATES + DOC_SAMPLE_CLIENT_TEMPLATES)
def test_every_documented_spelling_resolves_to_the_exact_enum(spelling, enum):
    resolved = resolve_template(spelling, Model.IMAGE_TO_VIDEO)
    assert resolved == enum
    assert resolved.isascii()
    assert resolved in TEMPLATES[Model.IMAGE_TO_VIDEO]


@pytest.mark.parametrize(
    ("spelling", "enum"),
    [
        ("rotating cards", "Rotating Cards"),
        ("ROTATING CARDS", "Rotating Cards"),
        ("  Thailand   Street \t", "Thailand Street"),
        ("thailandstreet", "Thailand Street"),
        ("new york times square(77)", "New York Times Square (77)"),
        ("NEW  YORK TIMES SQUARE ( 66 )", "New York Times Square (66)"),
        ("Las Vegas Led", "Las Vegas LED"),
        ("\uff34okyo Billboard", "Tokyo Billboard"),  # fullwidth T (U+FF34): NFKC folds it
    ],
)
def test_case_and_whitespace_variants(spelling, enum):
    assert resolve_template(spelling, "magic/image-to-video") == enum


@pytest.mark.parametrize("model", list(Model))
@pytest.mark.parametrize("empty", [None, "", "   ", "\t\n"])
def test_empty_template_gives_the_model_default(model, empty):
    assert resolve_template(empty, model) == DEFAULT_TEMPLATE[model]
    assert DEFAULT_TEMPLATE[model] in TEMPLATES[model]


def test_defaults_are_the_documented_ones():
    assert DEFAULT_TEMPLATE[Model.IMAGE_TO_VIDEO] == "Thailand Street"
    assert DEFAULT_TEMPLATE[Model.VIDEO_TO_VIDEO] == "Thailand Street"
    assert DEFAULT_TEMPLATE[Model.TEXT_TO_VIDEO] == "Shanghai Drone Show"
    assert resolve_template(None) == "Thailand Street"  # default model is image-to-video


def test_counts_per_model():
    assert len(IMAGE_TO_VIDEO_TEMPLATES) == 21
    assert len(VIDEO_TO_VIDEO_TEMPLATES) == 19
    assert len(TEXT_TO_VIDEO_TEMPLATES) == 1
    for names in TEMPLATES.values():
        assert len(set(names)) == len(names)
        assert all(name.isascii() and name == name.strip() for name in names)


def test_image_to_video_has_the_templates_missing_from_the_doc_list():
    documented = {enum for _, enum in DOC_SUPPORTED_TEMPLATES}
    assert documented <= set(IMAGE_TO_VIDEO_TEMPLATES)
    assert set(IMAGE_TO_VIDEO_TEMPLATES) - documented == {"Frames Drop", "Malaysia Shop"}


def test_video_to_video_renames_and_omissions():
    v2v = set(VIDEO_TO_VIDEO_TEMPLATES)
    assert {"New York Times Square (67)", "New York Times Square (78)"} <= v2v
    assert not v2v & {"New York Times Square (66)", "New York Times Square (77)", "Digital Float", "Frames Drop"}
    assert resolve_template("New York Times Square(67)", Model.VIDEO_TO_VIDEO) == "New York Times Square (67)"
    assert resolve_template("new york times square (78)", "magic/video-to-video") == "New York Times Square (78)"
    assert resolve_template("Rotating \u0421ards", Model.VIDEO_TO_VIDEO) == "Rotating Cards"


def test_text_to_video_template():
    assert resolve_template("shanghai drone show", Model.TEXT_TO_VIDEO) == "Shanghai Drone Show"


def test_unknown_template_lists_valid_names_and_suggests_the_closest():
    with pytest.raises(UnknownTemplateError) as info:
        resolve_template("Tokyo Bilboard", Model.IMAGE_TO_VIDEO)
    message = str(info.value)
    assert message.startswith("template: ")
    assert "Did you mean 'Tokyo Billboard'?" in message
    for name in IMAGE_TO_VIDEO_TEMPLATES:
        assert name in message
    assert isinstance(info.value, InvalidInputError)  # raised before any HTTP call, no credit spent


def test_unknown_template_without_a_close_match_has_no_suggestion():
    with pytest.raises(UnknownTemplateError) as info:
        resolve_template("zzzzzzzzzzzzzzzzzzzzzzzzzz", Model.TEXT_TO_VIDEO)
    assert "Did you mean" not in str(info.value)
    assert "Valid templates: Shanghai Drone Show." in str(info.value)
    assert "It is a template of" not in str(info.value)


@pytest.mark.parametrize(
    ("template", "model", "other"),
    [
        ("New York Times Square (66)", Model.VIDEO_TO_VIDEO, "magic/image-to-video"),
        ("Digital Float", Model.VIDEO_TO_VIDEO, "magic/image-to-video"),
        ("Frames Drop", Model.VIDEO_TO_VIDEO, "magic/image-to-video"),
        ("New York Times Square (78)", Model.IMAGE_TO_VIDEO, "magic/video-to-video"),
        ("Shanghai Drone Show", Model.IMAGE_TO_VIDEO, "magic/text-to-video"),
    ],
)
def test_a_template_of_another_model_says_so(template, model, other):
    with pytest.raises(UnknownTemplateError) as info:
        resolve_template(template, model)
    assert f"It is a template of {other}." in str(info.value)
    assert f"is not a template of {model.value}" in str(info.value)


def test_v2v_66_suggests_67():
    with pytest.raises(UnknownTemplateError, match=r"Did you mean 'New York Times Square \(67\)'\?"):
        resolve_template("New York Times Square(66)", Model.VIDEO_TO_VIDEO)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Model.TEXT_TO_VIDEO, Model.TEXT_TO_VIDEO),
        ("magic/image-to-video", Model.IMAGE_TO_VIDEO),
        ("Magic/Video-To-Video", Model.VIDEO_TO_VIDEO),
        (" magic/text-to-video ", Model.TEXT_TO_VIDEO),
        ("IMAGE_TO_VIDEO", Model.IMAGE_TO_VIDEO),
        ("image-to-video", Model.IMAGE_TO_VIDEO),
        ("video_to_video", Model.VIDEO_TO_VIDEO),
    ],
)
def test_resolve_model_variants(value, expected):
    assert resolve_model(value) is expected


@pytest.mark.parametrize("value", ["magic/audio-to-video", "", "image", "magic/image-to-video-2"])
def test_resolve_model_rejects_unknown_and_lists_models(value):
    with pytest.raises(UnknownModelError) as info:
        resolve_model(value)
    message = str(info.value)
    assert message.startswith("model: ")
    for model in Model:
        assert model.value in message


def test_unknown_model_in_resolve_template():
    with pytest.raises(UnknownModelError):
        resolve_template("Thailand Street", "magic/nope")


def test_media_field_per_model():
    assert Model.IMAGE_TO_VIDEO.media_field == "image_url"
    assert Model.VIDEO_TO_VIDEO.media_field == "video_url"
    assert Model.TEXT_TO_VIDEO.media_field == "prompt"
