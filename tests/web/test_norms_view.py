"""The Norms view's endpoints: the ablation models side by side, and the batch-independence demo, measured live."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from web_helpers import assert_error, assert_healthy, make_config, photo

from styler.web.app import create_app

pytestmark = pytest.mark.usefixtures("models_env")


def _image(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def _files(*extra: tuple[str, bytes]) -> dict[str, tuple[str, bytes]]:
    files = {"image": ("photo.png", photo(70, 50, seed=1))}
    files.update({name: (f"{name}.png", data) for name, data in extra})
    return files


def test_side_by_side(client: TestClient) -> None:
    response = client.post("/api/norms/side-by-side", files=_files(), data={"size": "40"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [m["model"] for m in body["models"]] == ["tiny_in", "tiny_bn"]
    assert [m["norm_short"] for m in body["models"]] == ["IN", "BN"]
    for model in body["models"]:
        assert _image(model["image"]).size == (40, 29) and model["seconds"] >= 0
    assert _image(body["photo"]).size == (40, 29)


def test_independence_with_a_dark_copy(client: TestClient) -> None:
    response = client.post("/api/norms/independence", files=_files(), data={"size": "40"})
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {m["model"]: m for m in body["models"]}
    assert body["companion"] == "dark" and _image(body["mate"]).size == (40, 40)
    assert rows["tiny_in"]["independent"] and rows["tiny_in"]["max_abs"] <= rows["tiny_in"]["tolerance"]
    assert rows["tiny_in"]["mode"] == "train" and not rows["tiny_in"]["batch_statistics"]
    assert not rows["tiny_bn"]["independent"] and rows["tiny_bn"]["max_abs"] > 1e-3
    assert rows["tiny_bn"]["mode"] == "train (batch statistics)"
    for row in rows.values():
        assert {_image(row[k]).size for k in ("alone", "in_batch", "difference")} == {(40, 40)}
    difference = _image(rows["tiny_in"]["difference"]).convert("L")
    assert difference.getextrema()[1] <= 1  # instance norm: a black difference map


def test_independence_with_another_photo(client: TestClient) -> None:
    other = client.post("/api/norms/independence", files=_files(("other", photo(30, 60, seed=9))),
                        data={"companion": "photo", "size": "32"})
    assert other.status_code == 200, other.text
    rows = {m["model"]: m for m in other.json()["models"]}
    assert rows["tiny_in"]["independent"] and not rows["tiny_bn"]["independent"]
    sample = client.get("/api/samples").json()[0]["name"]
    by_sample = client.post("/api/norms/independence", files=_files(),
                            data={"companion": "photo", "sample": sample, "size": "32"})
    assert by_sample.status_code == 200, by_sample.text


def test_norms_errors(client: TestClient) -> None:
    assert_error(client.post("/api/norms/independence", files=_files(), data={"companion": "photo"}), 422)
    assert_error(client.post("/api/norms/independence", files=_files(),
                             data={"companion": "photo", "sample": "nope"}), 404)
    assert_error(client.post("/api/norms/independence", files=_files(), data={"companion": "moon"}), 422)
    assert_error(client.post("/api/norms/independence", files=_files(("other", b"text"))
                             , data={"companion": "photo"}), 415)
    assert_error(client.post("/api/norms/side-by-side", files=_files(), data={"size": "9999"}), 422)
    assert_error(client.post("/api/norms/side-by-side", files={"image": ("x.png", b"nope")}), 415)
    assert_healthy(client)


def test_no_ablation_models_is_404(models_env: object) -> None:
    with TestClient(create_app(make_config(ablation_models=("not_installed",)))) as client:
        assert "ablation" in assert_error(client.post("/api/norms/side-by-side", files=_files()), 404)
        assert_healthy(client)


@pytest.mark.slow
def test_bundled_ablation_models_tell_the_story(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real Starry Night models: IN, GN and LN unchanged beside a dark copy, BN and SN shifted."""
    monkeypatch.delenv("STYLER_MODEL_DIR", raising=False)
    from styler.web.config import ABLATION_MODELS

    with TestClient(create_app(make_config(ablation_models=ABLATION_MODELS))) as client:
        response = client.post("/api/norms/independence", files=_files(), data={"size": "64"})
        if response.status_code == 404:
            pytest.skip("the bundled ablation models are not installed")
        assert response.status_code == 200, response.text
        verdicts = {m["norm_short"][:2]: m["independent"] for m in response.json()["models"]}
        assert verdicts == {"IN": True, "BN": False, "GN": True, "LN": True, "SN": False}
