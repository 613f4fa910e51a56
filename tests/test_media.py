"""prepare_media: every accepted input shape, and a clear message (and one of three classes) per way it can be wrong."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from airflow_provider_magicvideo.exceptions import (
    InvalidInputError,
    InvalidMediaError,
    MediaError,
    MediaTooLargeError,
)
from airflow_provider_magicvideo.media import DEFAULT_MAX_BYTES, prepare_media, sniff_mime

# The smallest MP4 the structural check accepts: a 28-byte ftyp, a (dummy) moov, an mdat that runs to the end.
MP4_HEAD = (b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00\x00\x00\x10moov" + b"\x00" * 8
            + b"\x00\x00\x00\x00mdat" + b"\x00" * 24)


def _image_bytes(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buf, fmt)
    return buf.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _decode(data_uri: str) -> tuple[str, bytes]:
    head, _, payload = data_uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(payload, validate=True)


@pytest.fixture(scope="module")
def png() -> bytes:
    return _image_bytes("PNG")


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return _image_bytes("JPEG")


@pytest.fixture(scope="module")
def webp() -> bytes:
    return _image_bytes("WEBP")


@pytest.fixture(scope="module")
def gif() -> bytes:
    return _image_bytes("GIF")


@pytest.fixture
def png_file(tmp_path, png) -> Path:
    path = tmp_path / "frame.png"
    path.write_bytes(png)
    return path


# --------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "url",
    [
        "https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/aimlapi.jpg",
        "http://example.com/x.webp?sig=abc",
        "HTTPS://EXAMPLE.COM/A.PNG",
    ],
)
def test_http_urls_pass_through_unchanged(url):
    assert prepare_media(url) == url
    assert prepare_media(f"  {url}\n") == url


@pytest.mark.parametrize("url", ["https://", "http:///path-only.png", "https://exa mple.com/a.png"])
def test_invalid_urls(url):
    with pytest.raises(MediaError, match=r"^image: .* is not a valid URL\."):
        prepare_media(url)


# --------------------------------------------------------------------------- data URIs and base64
@pytest.mark.parametrize(("fixture", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"),
                                               ("webp", "image/webp")])
def test_valid_data_uris_become_canonical(request, fixture, mime):
    data = request.getfixturevalue(fixture)
    assert prepare_media(_data_uri(data, mime)) == _data_uri(data, mime)
    # The declared type is not trusted: the sniffed one is used, and spacing/case is normalised.
    b64 = base64.b64encode(data).decode()
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    assert prepare_media(f"DATA:application/octet-stream;name=x.bin;BASE64,{wrapped}") == _data_uri(data, mime)
    assert prepare_media(f"data:;base64,{b64}") == _data_uri(data, mime)


def test_data_uri_with_bad_base64():
    with pytest.raises(MediaError, match=r"^image: the data URI contains characters that are not base64"):
        prepare_media("data:image/png;base64,iVBOR*w0KGgo=")
    with pytest.raises(MediaError, match=r"^image: the data URI is not valid base64"):
        prepare_media("data:image/png;base64,iVBORw0KG")  # 9 chars: no padding can fix it
    with pytest.raises(MediaError, match="not base64"):
        prepare_media("data:image/png;base64,")


@pytest.mark.parametrize("uri", ["data:image/png,rawbytes", "data:text/plain;charset=utf-8,hello", "data:nonsense"])
def test_non_base64_data_uri(uri):
    with pytest.raises(MediaError, match=r"^image: a data URI must look like 'data:<mime>;base64,<data>'"):
        prepare_media(uri)


def test_bare_base64_standard_urlsafe_and_unpadded(png, webp):
    std = base64.b64encode(png).decode()
    assert prepare_media(std) == _data_uri(png, "image/png")
    assert prepare_media(std.rstrip("=")) == _data_uri(png, "image/png")
    # Find a payload whose encoding really uses the url-safe alphabet.
    blob = webp + b"\xfb\xff\xfe" * 3
    urlsafe = base64.urlsafe_b64encode(blob).decode()
    assert "-" in urlsafe or "_" in urlsafe
    assert prepare_media(urlsafe.rstrip("=")) == _data_uri(blob, "image/webp")


def test_bare_base64_jpeg_is_not_mistaken_for_a_path(jpeg):
    # JPEG base64 starts with "/9j/", which has a path's shape.
    b64 = base64.b64encode(jpeg).decode()
    assert b64.startswith("/9j/") and len(b64) < 4096
    assert prepare_media(b64) == _data_uri(jpeg, "image/jpeg")


def test_garbage_string_is_explained():
    with pytest.raises(MediaError) as info:
        prepare_media("definitely not an image!")
    message = str(info.value)
    assert message.startswith("image: 'definitely not an image!' is not an http(s) URL, an existing file")
    assert "valid base64" in message


# --------------------------------------------------------------------------- local paths and object storage
def test_local_path_as_str_path_and_file_uri(png_file, png):
    expected = _data_uri(png, "image/png")
    assert prepare_media(str(png_file)) == expected
    assert prepare_media(png_file) == expected
    assert prepare_media(png_file.as_uri()) == expected
    assert prepare_media(f"file://localhost{png_file}") == expected


def test_file_uri_is_percent_decoded(tmp_path, png):
    path = tmp_path / "my frame #1.png"
    path.write_bytes(png)
    assert "%20" in path.as_uri()
    assert prepare_media(path.as_uri()) == _data_uri(png, "image/png")


def test_relative_path_without_extension(tmp_path, png, monkeypatch):
    (tmp_path / "frame").write_bytes(png)
    monkeypatch.chdir(tmp_path)
    assert prepare_media("frame") == _data_uri(png, "image/png")


def test_home_expansion(tmp_path, png, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pic.png").write_bytes(png)
    assert prepare_media("~/pic.png") == _data_uri(png, "image/png")


@pytest.mark.parametrize("as_type", [str, Path, "uri"])
def test_missing_file(tmp_path, as_type):
    missing = tmp_path / "nope.png"
    value = missing.as_uri() if as_type == "uri" else as_type(missing)
    with pytest.raises(MediaError, match=r"^image: file '.*nope\.png' does not exist\."):
        prepare_media(value)


def test_directory(tmp_path):
    with pytest.raises(MediaError, match=r"^image: '.*' is a directory, not a file\."):
        prepare_media(tmp_path)
    with pytest.raises(MediaError, match="is a directory"):
        prepare_media(str(tmp_path))


def test_object_storage_path(png_file, png):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    assert prepare_media(ObjectStoragePath(png_file.as_uri())) == _data_uri(png, "image/png")


def test_fsspec_uri_goes_through_object_storage(png, monkeypatch):
    import airflow_provider_magicvideo.media as media

    seen = []

    class FakeStoragePath:
        def __init__(self, uri):
            seen.append(uri)

        def read_bytes(self):
            return png

    monkeypatch.setattr(media, "_object_storage_path", FakeStoragePath)
    assert prepare_media("s3://bucket/key/frame.png") == _data_uri(png, "image/png")
    assert seen == ["s3://bucket/key/frame.png"]


def test_object_storage_read_failure_names_the_cause():
    class Broken:
        def read_bytes(self):
            raise PermissionError("AccessDenied for s3://bucket/x.png")

        def __str__(self):
            return "s3://bucket/x.png"

    with pytest.raises(MediaError) as info:
        prepare_media(Broken(), field="image_url")
    assert str(info.value) == (
        "image_url: cannot read 's3://bucket/x.png': PermissionError: AccessDenied for s3://bucket/x.png"
    )


def test_object_storage_uri_that_does_not_exist(tmp_path):
    # A real fsspec-backed path through the default builder (a memory:// URI has a scheme, not file://).
    with pytest.raises(MediaError, match=r"^image: "):
        prepare_media("memory://magicvideo-tests/absent.png")


# --------------------------------------------------------------------------- raw bytes
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_like(png, wrap):
    assert prepare_media(wrap(png)) == _data_uri(png, "image/png")


# --------------------------------------------------------------------------- empty input
@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (None, r"^image: no image given\."),
        ("", r"^image: the image is an empty string\."),
        ("   \n", r"^image: the image is an empty string\."),
        (b"", r"^image: the given bytes is empty\."),
        ("data:image/png;base64,", None),
    ],
)
def test_empty_input(value, pattern):
    if pattern is None:  # an empty data URI payload is not base64
        with pytest.raises(MediaError):
            prepare_media(value)
        return
    with pytest.raises(MediaError, match=pattern):
        prepare_media(value)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"^image: file '.*empty\.png' is empty\."):
        prepare_media(empty)


def test_video_empty_uses_the_video_field():
    with pytest.raises(MediaError, match=r"^video: no video given\."):
        prepare_media(None, kind="video")


# --------------------------------------------------------------------------- wrong types
@pytest.mark.parametrize(
    ("data", "found"),
    [
        ("gif", "image/gif"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"<!DOCTYPE html><html><body>Access denied</body></html>", "text (HTML/XML/JSON)"),
        (b'  {"error": "not an image"}', "text (HTML/XML/JSON)"),
        (b"\x13\x37\xbe\xef\x00\x01\x02\x03\x04", "in an unrecognised format"),
        (b"BM\x00\x00", "image/bmp"),
        (b"II*\x00rest", "image/tiff"),
        (b"\x00\x00\x00\x1cftypheic", "image/heic"),
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
    ],
)
def test_wrong_image_types_name_what_was_found(request, data, found):
    if isinstance(data, str):
        data = request.getfixturevalue(data)
    with pytest.raises(MediaError) as info:
        prepare_media(data, field="image_url")
    message = str(info.value)
    assert message.startswith(f"image_url: the given bytes is {found};")
    assert "the API accepts image/jpeg, image/png, image/webp" in message


def test_wrong_type_via_data_uri_names_the_source(gif):
    with pytest.raises(MediaError, match=r"^image: the data URI is image/gif;"):
        prepare_media(_data_uri(gif, "image/png"))


@pytest.mark.parametrize("value", [42, 3.5, ["https://example.com/a.png"], {"url": "x"}, object()])
def test_non_str_non_bytes_objects(value):
    with pytest.raises(MediaError, match=rf"^image: got a {type(value).__name__}; pass a URL"):
        prepare_media(value)


# --------------------------------------------------------------------------- size limits
def test_default_size_limit(monkeypatch, png):
    big = png + b"\x00" * (DEFAULT_MAX_BYTES["image"] - len(png) + 1)
    with pytest.raises(MediaTooLargeError) as info:
        prepare_media(big)
    message = str(info.value)
    assert message.startswith(f"image: the given bytes is {len(big):,} bytes, over the 10,485,760-byte limit.")
    assert "max_media_bytes" in message
    exactly = big[:-1]
    assert prepare_media(exactly).startswith("data:image/png;base64,")


def test_custom_size_limit(png_file, png):
    assert prepare_media(png_file, max_bytes=len(png)).startswith("data:image/png;base64,")
    with pytest.raises(MediaTooLargeError, match=rf"over the {len(png) - 1:,}-byte limit"):
        prepare_media(png_file, max_bytes=len(png) - 1, field="image_url")
    with pytest.raises(MediaTooLargeError, match=r"^image: the data URI is"):
        prepare_media(_data_uri(png, "image/png"), max_bytes=10)


def test_video_default_limit_is_larger(png):
    assert DEFAULT_MAX_BYTES["video"] > DEFAULT_MAX_BYTES["image"]
    blob = MP4_HEAD + b"\x00" * (DEFAULT_MAX_BYTES["image"] + 1)
    assert prepare_media(blob, kind="video").startswith("data:video/mp4;base64,")


# --------------------------------------------------------------------------- video kind
def test_video_accepts_mp4(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(MP4_HEAD)
    expected = _data_uri(MP4_HEAD, "video/mp4")
    assert prepare_media(clip, kind="video") == expected
    assert prepare_media(MP4_HEAD, kind="video") == expected
    assert prepare_media("https://example.com/clip.mp4", kind="video") == "https://example.com/clip.mp4"


def test_video_rejects_png_and_quicktime(png):
    with pytest.raises(MediaError, match=r"^video_url: the given bytes is image/png; the API accepts "
                                                        r"video/mp4\. Convert the video first\."):
        prepare_media(png, kind="video", field="video_url")
    with pytest.raises(MediaError, match="video/quicktime"):
        prepare_media(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", kind="video")


def test_image_rejects_mp4():
    with pytest.raises(MediaError, match="is video/mp4;"):
        prepare_media(MP4_HEAD)


def test_three_media_error_classes():
    # One class per thing a caller can act on: unusable input, broken bytes, too big.
    assert issubclass(MediaError, InvalidInputError) and issubclass(MediaError, ValueError)
    for cls in (InvalidMediaError, MediaTooLargeError):
        assert issubclass(cls, MediaError)
    import airflow_provider_magicvideo.exceptions as exceptions

    removed = ("EmptyMediaError", "UnreadableMediaError", "InvalidBase64Error", "UnsupportedMediaTypeError")
    assert not [name for name in removed if hasattr(exceptions, name)]


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"GIF87a", "image/gif"),
        (b"MM\x00*", "image/tiff"),
        (b"\x1aE\xdf\xa3", "video/webm"),
        (b"PK\x03\x04", "application/zip"),
        (b"[1,2]", "text (HTML/XML/JSON)"),
        (b"\x00\x00\x00\x1cftypmp42", "video/mp4"),
        (b"", None),
    ],
)
def test_sniff_mime(head, mime):
    assert sniff_mime(head) == mime
