"""The page of `unionpose serve` in a real browser: the command runs as a server on loopback, and headless Chromium
(Debian's `chromium` + `chromium-driver`, driven by Selenium) uploads fixture images and a video, waits for the
drawings, and the test reads the people tables, hovers a keypoint, toggles a part, downloads the COCO JSON and saves
a screenshot; it also checks that the API docs render from the package's own files. Skipped, with the reason,
where the browser is not installed (`make browser` installs it as root).

UNIONPOSE_SCREENSHOT=path also saves the screenshot there (docs/serve.png was made so).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from conftest import DATA, FIXTURES, require
from unionpose.export.onnx import export_onnx
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000")
IMAGE = FIXTURES / "coco" / "images" / "000000000785.jpg"
VIDEO = DATA / "videos" / "street_5frames.mp4"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`unionpose serve` with two models (a model file and its ONNX export), as a user starts it."""
    folder = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    model = save_model_file(folder / "student.safetensors", RTMPose("t", 17, (128, 96)), get_skeleton("coco17"))
    exported = export_onnx(*load_model_file(model), folder / "student.onnx")
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "unionpose", "serve", "--model", str(model),
                                "--model", f"exported={exported}", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the server stopped: {(folder / 'server.log').read_text()}"
            assert time.monotonic() < deadline, "the server did not answer /healthz within 120 s"
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (Debian packages chromium and "
                    "chromium-driver; `make browser` installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    downloads = tmp_path_factory.mktemp("downloads")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda _: condition())


def _panels(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#panels .panel")


def _api_prediction(url: str, image: Path, model: str) -> dict:
    """The same request the page makes, sent without the page."""
    boundary = "unionpose-browser-test"
    fields = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
                      for name, value in (("model", model), ("formats", "coco")))
    body = (fields + f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{image.name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n".encode() + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
    request = urllib.request.Request(f"{url}/v1/predict", body,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def test_the_page_draws_two_models_side_by_side(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    image = require(IMAGE)
    browser.get(server)
    _wait(browser, lambda: "exported" in browser.find_element(By.ID, "status").text)
    assert browser.find_element(By.ID, "compare").is_selected()        # two models: side by side from the start
    browser.execute_script("const s = document.getElementById('threshold'); s.value = 0;"
                           "s.dispatchEvent(new Event('input'));")     # an untrained model: show every point
    browser.find_element(By.ID, "files").send_keys(str(image))
    _wait(browser, lambda: [panel.get_attribute("data-state") for panel in _panels(browser)] == ["drawn", "drawn"])

    for panel, model in zip(_panels(browser), ("student", "exported")):
        assert panel.find_element(By.CSS_SELECTOR, "select.model").get_attribute("value") == model
        expected = _api_prediction(server, image, model)["people"]
        rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in panel.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert len(rows) == len(expected) == 1                        # no detector: one full-image box
        assert rows[0][:4] == ["1", f"{expected[0]['score']:.3f}", f"{expected[0]['box_score']:.3f}", "17 / 17"]

    left = _panels(browser)[0]
    canvas = left.find_element(By.TAG_NAME, "canvas")
    point = browser.execute_script(
        "const p = state.panels[0].drawn.find(q => q.x > 20 && q.y > 20 && q.x < arguments[0] - 20 &&"
        " q.y < arguments[1] - 20); return p && {x: p.x, y: p.y, name: p.name};",
        int(canvas.get_attribute("width")), int(canvas.get_attribute("height")))
    assert point, "no keypoint drawn inside the image"
    scale = canvas.size["width"] / int(canvas.get_attribute("width"))
    ActionChains(browser).move_to_element_with_offset(
        canvas, point["x"] * scale - canvas.size["width"] / 2, point["y"] * scale - canvas.size["height"] / 2
    ).perform()
    tooltip = left.find_element(By.CLASS_NAME, "tooltip")
    _wait(browser, tooltip.is_displayed, 10)
    assert tooltip.text.startswith(point["name"]) and "person 1" in tooltip.text

    screenshot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    if os.environ.get("UNIONPOSE_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["UNIONPOSE_SCREENSHOT"])

    body = browser.find_element(By.CSS_SELECTOR, "#parts input[data-part='body']")
    body.click()                                                       # hide the body: nothing is drawn
    _wait(browser, lambda: left.find_element(By.CSS_SELECTOR, "tbody td:nth-child(4)").text == "0 / 17", 10)
    body.click()

    left.find_element(By.CLASS_NAME, "download-coco").click()
    download = browser.downloads / "student.coco.json"
    _wait(browser, download.exists, 20)
    _wait(browser, lambda: download.stat().st_size > 0, 10)
    assert json.loads(download.read_text()) == _api_prediction(server, image, "student")["coco"]


def test_a_video_is_sampled_in_the_browser(server, browser):
    from selenium.webdriver.common.by import By

    video = require(VIDEO)
    browser.get(server)
    _wait(browser, lambda: "exported" in browser.find_element(By.ID, "status").text)
    browser.find_element(By.ID, "files").send_keys(str(video))
    _wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#items button")
          or "skipped" in browser.find_element(By.ID, "status").text)
    status = browser.find_element(By.ID, "status").text
    if "cannot play" in status:
        pytest.skip(f"this Chromium cannot decode the fixture video: {status}")
    frames = browser.find_elements(By.CSS_SELECTOR, "#items button")
    assert len(frames) == browser.execute_script("return VIDEO_FRAMES;") == 12
    frames[5].click()
    _wait(browser, lambda: [panel.get_attribute("data-state") for panel in _panels(browser)] == ["drawn", "drawn"])
    assert "960x540" in _panels(browser)[0].find_element(By.CLASS_NAME, "note").text


def test_the_api_docs_render_offline(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/docs")
    _wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path"), 30)
    paths = {element.text for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/v1/predict", "/v1/models", "/healthz"} <= paths
