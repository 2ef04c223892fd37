"""The REST route (`api.py`) over real HTTP: the routes on a bare Starlette app served by uvicorn in a
thread (httpx, which Starlette's TestClient needs, is not installed), and the launcher `app.py` as a user
starts it."""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
import starlette.formparsers
import uvicorn
from skimage import data as skimage_data
from starlette.applications import Starlette

import api
from core.classes import EXPRESSION_KEYS
from core.images import decode_image, encode_jpeg, encode_png, sample_photo
from core.predict import bundled_predictor
from core.settings import Settings
from tests.browser import free_port, running_app
from tests.test_bundled_model import card_accuracy

# At JPEG quality 85-92 HOG also finds a "face" on the suit's patch; at 95 the astronaut has one face.
ASTRONAUT = encode_jpeg(sample_photo(), quality=95)


@pytest.fixture(scope="module")
def base_url():
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=api.routes()), host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(autouse=True)
def fresh_rate_limiter():
    api.rate_limiter.cache_clear()
    yield
    api.rate_limiter.cache_clear()


def call(url: str, body=None, headers: dict | None = None, timeout: float = 60):
    """(status, headers, JSON) of a GET, or of a POST when `body` is given (bytes or an iterable of
    chunks, which urllib sends chunked, without a Content-Length)."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, json.load(error)


def post_image(base_url: str, body, query: str = ""):
    return call(f"{base_url}/api/v1/recognize{query}", body, {"Content-Type": "image/jpeg"})


def post_form(base_url: str, *files: tuple[str, bytes]):
    boundary = "facelab-test-boundary"
    parts = [(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
              f"Content-Type: image/jpeg\r\n\r\n").encode() + content + b"\r\n" for name, content in files]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return call(f"{base_url}/api/v1/recognize", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def use_settings(monkeypatch, **changes) -> None:
    monkeypatch.setattr(api, "settings", lambda: replace(Settings(), **changes))


def assert_error(answer, status: int, code: str) -> str:
    got_status, _, payload = answer
    assert (got_status, payload["error"]["code"]) == (status, code), payload
    return payload["error"]["message"]


def test_one_face_photo_gets_the_predictors_faces(base_url):
    status, headers, faces = post_image(base_url, ASTRONAUT)
    assert status == 200 and headers["Content-Type"] == "application/json"
    expected = bundled_predictor().predict(decode_image(ASTRONAUT))
    assert len(faces) == 1
    assert list(faces[0]["scores"]) == list(EXPRESSION_KEYS)
    assert sum(faces[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert [face["faceRectangle"] for face in faces] == [face["faceRectangle"] for face in expected]
    assert faces[0]["scores"] == pytest.approx(expected[0]["scores"], abs=1e-6)


def test_form_of_several_files_answers_by_file_name_and_of_one_file_with_a_list(base_url):
    png = encode_png(sample_photo())
    status, _, results = post_form(base_url, ("astronaut.jpg", ASTRONAUT), ("astronaut.png", png))
    assert status == 200 and list(results) == ["astronaut.jpg", "astronaut.png"]
    assert [len(faces) for faces in results.values()] == [1, 1]
    status, _, faces = post_form(base_url, ("astronaut.jpg", ASTRONAUT))
    assert status == 200 and isinstance(faces, list) and len(faces) == 1


def test_photo_without_a_face_gets_an_empty_list(base_url):
    status, _, faces = post_image(base_url, encode_jpeg(skimage_data.chelsea()))
    assert (status, faces) == (200, [])


@pytest.mark.parametrize("body, code", [(b"this is not an image", "err_image_not_image"),
                                        (ASTRONAUT[: len(ASTRONAUT) // 2], "err_image_truncated"),
                                        (b"", "err_image_empty")])
def test_bad_image_is_a_400_with_the_errors_key(base_url, body, code):
    assert_error(post_image(base_url, body), 400, code)


def test_bad_file_of_a_form_is_named_in_the_message(base_url):
    message = assert_error(post_form(base_url, ("astronaut.jpg", ASTRONAUT), ("notes.jpg", b"hello")),
                           400, "err_image_not_image")
    assert message.startswith("notes.jpg: ")


def test_form_without_a_file_with_one_name_twice_or_broken_is_a_400(base_url):
    assert_error(post_form(base_url), 400, "no_files")
    assert_error(post_form(base_url, ("a.jpg", ASTRONAUT), ("a.jpg", ASTRONAUT)), 400, "duplicate_file_names")
    no_boundary = call(f"{base_url}/api/v1/recognize", b"--x\r\n", {"Content-Type": "multipart/form-data"})
    assert_error(no_boundary, 400, "bad_multipart")


@pytest.mark.parametrize("query", ["?search=fast", "?tta=maybe"])
def test_bad_query_parameter_is_a_400(base_url, query):
    assert_error(post_image(base_url, ASTRONAUT, query), 400, "bad_parameter")


def test_body_over_the_limit_is_a_413_whether_declared_or_streamed(base_url, monkeypatch):
    monkeypatch.setattr(api, "MAX_BYTES", 1000)
    assert_error(post_image(base_url, bytes(5000)), 413, "request_too_large")
    assert_error(post_image(base_url, iter([bytes(600), bytes(600)])), 413, "request_too_large")
    assert_error(post_form(base_url, ("big.jpg", bytes(1500))), 413, "request_too_large")


def test_more_files_than_allowed_is_a_413(base_url, monkeypatch):
    use_settings(monkeypatch, max_photos=2)
    message = assert_error(post_form(base_url, *[(f"{n}.jpg", b"x") for n in range(3)]), 413, "too_many_files")
    assert "At most 2 photos" in message


def test_uploads_stay_in_memory(base_url, monkeypatch):
    rolled_over = []

    class WatchedSpooledFile(tempfile.SpooledTemporaryFile):
        def rollover(self):
            rolled_over.append(self)
            super().rollover()

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", WatchedSpooledFile)
    assert_error(post_form(base_url, ("noise.jpg", os.urandom(3 * 2**20))), 400, "err_image_not_image")
    assert rolled_over == [], "an upload was written to a temporary file"


def test_too_many_requests_is_a_429_with_retry_after(base_url, monkeypatch):
    use_settings(monkeypatch, api_requests_per_minute=2)
    for _ in range(2):
        assert_error(post_image(base_url, b"x"), 400, "err_image_not_image")
    answer = post_image(base_url, b"x")
    assert_error(answer, 429, "rate_limited")
    assert 1 <= int(answer[1]["Retry-After"]) <= 60
    assert call(f"{base_url}/healthz")[0] == 200, "health checks are not rate limited"


def test_healthz_answers_without_the_model(base_url, monkeypatch):
    monkeypatch.setattr(api, "bundled_predictor", lambda: pytest.fail("/healthz loaded the model"))
    assert call(f"{base_url}/healthz")[::2] == (200, {"status": "ok"})


def test_model_lists_the_classes_and_the_model_cards_test_accuracy(base_url, monkeypatch):
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    status, _, model = call(f"{base_url}/api/v1/model")
    assert status == 200
    assert model["classes"] == list(EXPRESSION_KEYS) and len(model["classes"]) == 8
    assert (model["architecture"], model["input_size"], model["hosted"]) == ("face_vgg", 48, True)
    assert model["test_accuracy"] == {"FER+ majority": pytest.approx(card_accuracy("FER+ majority")),
                                      "FER2013 PrivateTest": pytest.approx(card_accuracy("FER2013 PrivateTest"))}


def test_unexpected_error_is_a_generic_500_with_the_traceback_in_the_log(base_url, monkeypatch, caplog):
    def broken():
        raise RuntimeError("secret detail")

    monkeypatch.setattr(api, "bundled_predictor", broken)
    message = assert_error(post_image(base_url, ASTRONAUT), 500, "internal_error")
    assert "secret detail" not in message
    assert any(record.exc_info and "secret detail" in str(record.exc_info[1]) for record in caplog.records)


def test_openapi_describes_every_route(base_url):
    status, _, description = call(f"{base_url}/api/v1/openapi.json")
    assert status == 200 and set(description["paths"]) == {route.path for route in api.ROUTES}


@pytest.mark.slow
def test_launcher_serves_the_app_and_the_api_on_one_port():
    with running_app(60) as url:
        status, _, faces = post_image(url, ASTRONAUT)
        assert status == 200 and len(faces) == 1
        assert call(f"{url}/api/v1/nothing")[0] == 404  # the API's own answer, before Streamlit's pages
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html") and "streamlit" in page.lower()


def test_other_api_requests_get_json_404_and_405_not_the_app_page(base_url):
    status, headers, answer = call(f"{base_url}/api/v1/recognize")
    assert status == 405 and answer["error"]["code"] == "method_not_allowed" and headers["Allow"] == "POST"
    status, _, answer = call(f"{base_url}/api/v1/nothing", b"x")
    assert status == 404 and answer["error"]["code"] == "not_found"
