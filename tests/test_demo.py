"""The Gradio demo: its logic with a fake scorer, then the real app (tiny Qwen3-VL from the project, served on
127.0.0.1 once for the module) through ``gradio_client`` and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import json
import re
import socket
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_frames

from roboreward import demo as D
from roboreward.rubric import SCORE_NAMES, load_prompt
from roboreward.types import RewardOutput
from roboreward.video import probe, write_video

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class GrowingScorer:
    """A fake scorer whose score grows with the number of frames it is given (1 at the start, 5 at 30)."""

    name = "growing"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, video, instruction: str) -> RewardOutput:
        return self.score_batch([video], [instruction])[0]

    def score_batch(self, videos, instructions) -> list[RewardOutput]:
        out = []
        for v in videos:
            self.calls += 1
            n = len(v) if isinstance(v, np.ndarray) else probe(v).num_frames
            score = 1 + min(4, n * 4 // 30)
            probs = [0.6 if s == score else 0.1 for s in range(1, 6)]
            out.append(RewardOutput(score=score, probs=probs, expected=float(np.dot(probs, range(1, 6)))))
        return out


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Good and bad inputs: a 3 s clip, a 12 s clip, a text file, an empty and a corrupt mp4, a big file."""
    d = tmp_path_factory.mktemp("media")
    files = {
        "good": write_video(d / "episode.mp4", make_frames(30), fps=10),
        "long": write_video(d / "long.mp4", make_frames(120, 32, 32), fps=10),
    }
    files["text"] = d / "notes.txt"
    files["text"].write_text("not a video\n")
    files["empty"] = d / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["corrupt"] = d / "corrupt.mp4"
    files["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["big"] = d / "big.mp4"
    files["big"].write_bytes(b"\0" * (3 * 2**20 // 2))  # 1.5 MB: over the served app's 1 MB limit
    return files


# ----------------------------------------------------------------------------------------------------------
# Logic (fake scorer)
# ----------------------------------------------------------------------------------------------------------


def test_rubric_sentences_come_from_the_prompt_file():
    prompt = load_prompt("reward_prompt.txt")
    sentences = D.rubric_sentences()
    assert sorted(sentences) == [1, 2, 3, 4, 5]
    for s, text in sentences.items():
        assert f"{s} - {SCORE_NAMES[s]}: {text}" in prompt
    assert len(set(sentences.values())) == 5


def test_analyse_scores_curve_and_strip(media):
    scorer = GrowingScorer()
    result = D.analyse(scorer, media["good"], "  open   the drawer ", curve_points=5, strip_frames=6)
    # headline score = last curve point = the whole video (30 frames -> 5), scored once
    assert result.output.score == 5 and scorer.calls == 5
    assert result.curve_times == pytest.approx([0.6, 1.2, 1.8, 2.4, 3.0])
    assert result.curve_progress == sorted(result.curve_progress) and result.curve_progress[0] < 0.5
    assert result.voc == pytest.approx(1.0)
    assert len(result.frames) == 6 and result.frame_times[0] == 0.0 and result.frame_times[-1] == 2.9
    md = D.headline(result, "growing")
    assert "5 / 5 — Perfect Completion" in md and D.rubric_sentences()[5] in md
    assert f"E[score] = {result.output.expected:.2f}" in md and "(VOC) +1.00" in md
    data = json.loads(json.dumps(result.to_dict()))  # JSON-serialisable as the page sends it
    assert data["probs"] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.6]) and data["video"]["frames"] == 30
    assert list(D.distribution_frame(result)["probability"]) == pytest.approx(data["probs"])
    assert len(D.curve_frame(result)) == 5


def test_analyse_without_curve_scores_once(media):
    scorer = GrowingScorer()
    result = D.analyse(scorer, media["good"], "open the drawer", curve_points=0)
    assert scorer.calls == 1 and result.curve_times == [] and result.voc is None
    assert "Progress curve" not in D.headline(result, "g")


def test_text_only_scorer_shows_one_hot_distribution(media):
    class TextScorer(GrowingScorer):
        def score_batch(self, videos, instructions):
            return [RewardOutput(score=2, raw_text="ANSWER: 2") for _ in videos]

    result = D.analyse(TextScorer(), media["good"], "x", curve_points=0)
    assert result.probs == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert "no distribution" in D.headline(result, "api") and "Expected progress" not in D.headline(result, "api")

    class Unparsed(GrowingScorer):
        def score_batch(self, videos, instructions):
            return [RewardOutput(score=1, raw_text="I think it worked", parsed=False) for _ in videos]

    result = D.analyse(Unparsed(), media["good"], "x", curve_points=0)
    assert "could not be parsed" in D.headline(result, "api") and "'I think it worked'" in D.headline(result, "api")


@pytest.mark.parametrize(
    "video, instruction, limits, message",
    [
        (None, "x", D.Limits(), "Upload a video first"),
        ("text", "x", D.Limits(), "notes.txt: not a video file (text/plain)"),
        ("empty", "x", D.Limits(), "empty.mp4: the file is empty"),
        ("corrupt", "x", D.Limits(), "corrupt.mp4: not a readable video (corrupt.mp4: cannot open video"),
        ("good", "x", D.Limits(max_file_mb=0.001), "over the 0.001 MB limit"),
        ("long", "x", D.Limits(max_duration_s=10), "lasts 12.0 s, over the 10 s limit"),
        ("good", "   ", D.Limits(), "Type the instruction"),
        ("good", "a" * 30, D.Limits(max_instruction_chars=20), "30 characters, over the 20 limit"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(media, video, instruction, limits, message):
    scorer = GrowingScorer()
    with pytest.raises(D.DemoInputError, match=re.escape(message)):
        D.analyse(scorer, media[video] if video else None, instruction, limits=limits)
    assert scorer.calls == 0


@pytest.mark.parametrize(
    "limits, message",
    [
        (D.Limits(max_frame_pixels=1000), "episode.mp4: frames of 96x64 (6,144 pixels) exceed the frame budget"),
        (D.Limits(max_pixels=50_000), "episode.mp4: 96x64 x 30 frames = 184,320 pixels exceed the budget of 50,000"),
    ],
)
def test_pixel_budget_is_checked_from_the_header_before_decoding(media, monkeypatch, limits, message):
    """Issue 15: a decoded-size bomb (huge frames in a small file) is refused before any frame is decoded."""
    import roboreward.video

    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    for module in (roboreward.video, D.analysis):
        monkeypatch.setattr(module, "read_video", no_decoding, raising=False)
    monkeypatch.setattr(roboreward.video, "_decode_pyav", no_decoding)
    scorer = GrowingScorer()
    with pytest.raises(D.DemoInputError, match=re.escape(message) + ".*upload a smaller or shorter video"):
        D.analyse(scorer, media["good"], "open the drawer", limits=limits)
    assert scorer.calls == 0
    assert D.check_video(media["good"], D.Limits()).num_frames == 30  # within the default budget
    with pytest.raises(ValueError, match="keep_uploads_s must be >= 1"):
        D.Limits(keep_uploads_s=0)


def test_examples_come_from_several_episodes():
    from roboreward.types import Example

    rows = [Example(f"s/ep{e}_clip{c}.mp4", "t", 3, episode_id=str(e), source="s") for e in range(3) for c in range(3)]
    assert [r.file_name for r in D.spread_over_episodes(rows, 4)] == [
        "s/ep0_clip0.mp4",
        "s/ep1_clip0.mp4",
        "s/ep2_clip0.mp4",
        "s/ep0_clip1.mp4",
    ]
    one = [Example(f"s/ep0_clip{c}.mp4", "t", 3, episode_id="0", source="s") for c in range(3)]
    assert len(D.spread_over_episodes(one, 4)) == 3 and D.spread_over_episodes([], 4) == []
    # no episode_id: every file is its own episode; the same id in two subsets is two episodes
    other = [Example("a/x.mp4", "t", 3, episode_id="0"), Example("b/y.mp4", "t", 3, episode_id="0")]
    assert len(D.spread_over_episodes([*other, Example("a/z.mp4", "t", 3, episode_id="0")], 2)) == 2
    assert [r.file_name for r in D.spread_over_episodes(other + other, 2)] == ["a/x.mp4", "b/y.mp4"]


def test_served_app_deletes_its_uploads(media, tmp_path):
    """Issue 15: uploads do not stay on the server: gradio's cache cleanup deletes them ``keep_uploads_s`` after
    they arrive (checked every minute at most) and all of them when the server stops."""
    from gradio_client import Client, handle_file

    assert D.build_demo(GrowingScorer(), limits=D.Limits(keep_uploads_s=30)).delete_cache == (30, 30)
    assert D.build_demo(GrowingScorer()).delete_cache == (60, 900)
    seen: list[Path] = []

    class Recording(GrowingScorer):
        def score(self, video, instruction):
            seen.append(Path(video))
            return super().score(video, instruction)

    port = _free_port()
    app = D.launch(D.build_demo(Recording()), port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", download_files=str(tmp_path / "dl"), verbose=False)
        *_, details = client.predict(handle_file(str(media["good"])), "open the drawer", 0, api_name="/score")
        assert details["score"] in range(1, 6)
        (upload,) = seen
        assert upload.is_file() and upload != media["good"]  # the server's copy, kept while it serves
    finally:
        app.close()
    assert not upload.exists(), f"{upload} was kept after the server stopped"


def test_app_turns_failures_into_page_messages(media):
    """The click handler of a built app: bad input and a crashing scorer both become ``gr.Error``."""
    import gradio as gr

    class Crashing(GrowingScorer):
        def score_batch(self, videos, instructions):
            raise RuntimeError("CUDA out of memory")

    def handler_of(demo):
        (fn,) = [f.fn for f in demo.fns.values() if f.api_name == "score"]
        return fn

    handler = handler_of(D.build_demo(Crashing()))
    with pytest.raises(gr.Error, match="Scoring failed: RuntimeError: CUDA out of memory"):
        handler(str(media["good"]), "open the drawer", 0)
    with pytest.raises(gr.Error, match="notes.txt: not a video file"):
        handler(str(media["text"]), "open the drawer", 0)
    md, dist, curve, strip, details = handler_of(D.build_demo(GrowingScorer()))(str(media["good"]), "open it", 3)
    assert details["score"] == 5 and len(curve) == 3 and len(strip) == 8 and list(dist["score"]) == list("12345")


def test_default_model_spec(monkeypatch):
    monkeypatch.delenv(D.ENV_MODEL, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert D.default_model_spec() == D.DEFAULT_MODEL == "teetone/RoboReward-4B"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert D.default_model_spec() == "metaworld"
    monkeypatch.setenv(D.ENV_MODEL, "teetone/RoboReward-8B")
    assert D.default_model_spec() == "teetone/RoboReward-8B"
    assert D.default_model_spec("/models/mine") == "/models/mine"


def test_gpu_decorator_uses_spaces_only_when_importable(monkeypatch):
    def fn(x):
        return x + 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # import fails
    assert D.gpu_decorator(fn) is fn
    monkeypatch.setitem(sys.modules, "spaces", types.ModuleType("spaces"))  # e.g. the checkout's spaces/ folder
    assert D.gpu_decorator(fn) is fn
    seen = {}

    def gpu(duration):
        seen["duration"] = duration
        return lambda f: lambda *a: ("on-gpu", f(*a))

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    assert D.gpu_decorator(fn, duration=60)(1) == ("on-gpu", 2) and seen == {"duration": 60}


def test_space_readme_header_and_entry():
    text = (REPO / "spaces/demo/README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["sdk"] == "gradio" and (REPO / "spaces/demo" / header["app_file"]).is_file()
    assert D.DEFAULT_MODEL in header["models"] and "teetone/RoboReward" in header["datasets"]
    import gradio

    assert header["sdk_version"].split(".")[0] == gradio.__version__.split(".")[0]
    assert "from roboreward.demo import" in (REPO / "spaces/demo/app.py").read_text()


def test_cli_registers_demo():
    from typer.testing import CliRunner

    from roboreward.cli import app

    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    assert "--max-file-mb" in result.output and "--examples" in result.output


# ----------------------------------------------------------------------------------------------------------
# The real app: tiny Qwen3-VL, served on 127.0.0.1
# ----------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory) -> Path:
    """A one-example dataset in the released layout, for the page's examples."""
    root = tmp_path_factory.mktemp("sample")
    write_video(root / "test" / "bridge" / "ep0.mp4", make_frames(20, seed=3), fps=10)
    row = {"file_name": "bridge/ep0.mp4", "task": "push the square to the right", "reward": 5}
    (root / "test" / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    return root


def test_example_rows(sample_dataset, tmp_path):
    assert D.example_rows(sample_dataset) == [
        [str((sample_dataset / "test/bridge/ep0.mp4").resolve()), "push the square to the right"]
    ]
    assert D.example_rows(None) == [] and D.example_rows(tmp_path) == []


@pytest.fixture(scope="module")
def server(tiny_qwen3_vl, sample_dataset, tmp_path_factory):
    """The Space's own entry (spaces/demo/app.py) configured as on a Space, with nothing but the Hub offline:
    it serves ``metaworld``, the bundled Meta-World reward model (the offline default)."""
    import runpy

    cache = tmp_path_factory.mktemp("cache")
    (cache / "tiny-qwen3-vl").symlink_to(tiny_qwen3_vl)
    port = _free_port()
    env = {
        "HF_HUB_OFFLINE": "1",
        "ROBOREWARD_CACHE": str(cache),
        "ROBOREWARD_DEMO_EXAMPLES": str(sample_dataset),
        "ROBOREWARD_MAX_FILE_MB": "1",
        "ROBOREWARD_MAX_DURATION_S": "10",
        "GRADIO_SERVER_PORT": str(port),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(D.ENV_MODEL, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        main = runpy.run_path(str(REPO / "spaces/demo/app.py"), run_name="space_app")["main"]
        app = main(block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_space_serves_the_metaworld_model_offline_with_its_limits(server):
    import httpx

    config = httpx.get(f"{server}config", timeout=10).text
    assert "model: `metaworld`" in config and "Meta-World" in config and "Limits: 1 MB, 10 s" in config
    assert "randomly initialised" not in config


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client

    return Client(server, download_files=str(tmp_path_factory.mktemp("downloads")), verbose=False)


def test_client_scores_with_the_offline_model(client, media):
    from gradio_client import handle_file

    md, dist, curve, strip, details = client.predict(
        handle_file(str(media["good"])), "open the drawer", 4, api_name="/score"
    )
    assert details["score"] in range(1, 6) and f"{details['score']} / 5 — {details['name']}" in md
    assert details["rubric"] in md and sum(details["probs"]) == pytest.approx(1.0, abs=1e-4)
    assert [row[1] for row in dist["data"]] == pytest.approx(details["probs"], abs=1e-4)
    assert [row[0] for row in curve["data"]] == pytest.approx([0.8, 1.5, 2.3, 3.0], abs=0.05)
    assert len(details["curve"]["progress"]) == 4 and -1.0 <= details["curve"]["voc"] <= 1.0
    assert details["expected"] == pytest.approx(float(np.dot(details["probs"], range(1, 6))), abs=1e-4)
    # the model's own frame sampling (2 fps, 4..8 frames) is what the strip shows
    assert len(strip) == 6 and all(Path(item["image"]).is_file() for item in strip)
    # the same video with the curve off: one forward pass, the same distribution
    *_, alone = client.predict(handle_file(str(media["good"])), "open the drawer", 0, api_name="/score")
    assert alone["probs"] == pytest.approx(details["probs"], abs=1e-4) and alone["curve"]["times"] == []


@pytest.mark.parametrize(
    "video, instruction, message",
    [
        ("text", "open the drawer", "not a video file"),
        ("corrupt", "open the drawer", "not a readable video"),
        ("long", "open the drawer", "over the 10 s limit"),
        ("good", "", "Type the instruction"),
    ],
)
def test_client_bad_inputs_get_the_message_and_the_app_keeps_serving(client, media, video, instruction, message):
    from gradio_client import handle_file

    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(media[video])), instruction, 0, api_name="/score")
    *_, details = client.predict(handle_file(str(media["good"])), "open the drawer", 0, api_name="/score")
    assert details["score"] in range(1, 6)


def test_uploads_over_the_size_limit_are_refused_by_the_server(server, media):
    import httpx

    with open(media["big"], "rb") as fh:
        r = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.mp4", fh, "video/mp4")}, timeout=30)
    assert r.status_code == 413, r.text
    with open(media["good"], "rb") as fh:
        ok = httpx.post(f"{server}gradio_api/upload", files={"files": ("ok.mp4", fh, "video/mp4")}, timeout=30)
    assert ok.status_code == 200 and ok.json()[0].endswith("ok.mp4")


# ----------------------------------------------------------------------------------------------------------
# A real headless Chromium
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 1100})
        pg.requested_urls = []  # every URL the page asks for: nothing may leave 127.0.0.1
        pg.on("request", lambda request: pg.requested_urls.append(request.url))
        yield pg
        browser.close()


def _open(page, server) -> None:
    page.goto(server, wait_until="load")
    page.locator("#score-button").wait_for(state="visible", timeout=30_000)


def _upload(page, path: Path, *, playable: bool = True) -> None:
    page.locator("#video-input input[type=file]").set_input_files(str(path))
    if playable:
        page.locator("#video-input video").wait_for(state="attached", timeout=20_000)


def _score(page, instruction: str | None = None) -> None:
    if instruction is not None:
        page.locator("#instruction textarea").fill(instruction)
    page.locator("#score-button").click()


@pytest.mark.browser
def test_browser_upload_score_and_screenshot(page, server, media, tmp_path):
    _open(page, server)
    _upload(page, media["good"])
    _score(page, "open the drawer")
    result = page.locator("#result")
    result.get_by_text("/ 5 —").wait_for(timeout=60_000)
    assert any(name in result.inner_text() for name in SCORE_NAMES.values())
    assert "Expected progress" in result.inner_text()
    page.locator("#frames img").first.wait_for(timeout=20_000)
    assert page.locator("#frames img").count() == 6
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    outside = [u for u in page.requested_urls if not u.startswith((server, "data:", "blob:"))]
    assert page.requested_urls and not outside, outside  # no fonts, analytics or CDN fetched


@pytest.mark.browser
def test_browser_bad_inputs_show_an_error_and_the_page_recovers(page, server, media, tmp_path):
    _open(page, server)
    _upload(page, media["long"])
    _score(page, "open the drawer")
    page.get_by_text("long.mp4: the video lasts 12.0 s, over the 10 s limit").first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    # an empty instruction on the same page
    _score(page, "")
    page.get_by_text("Type the instruction").first.wait_for(timeout=30_000)
    # a corrupt mp4, then the page still scores a good video
    page.locator("#video-input button[aria-label='Clear']").first.click()
    _upload(page, media["corrupt"], playable=False)
    _score(page, "open the drawer")
    page.get_by_text("corrupt.mp4: not a readable video").first.wait_for(timeout=30_000)
    page.locator("#video-input button[aria-label='Clear']").first.click()
    # a non-video MIME type: refused by the page itself (API clients get the server's check, tested above)
    _upload(page, media["text"], playable=False)
    page.get_by_text("Invalid file type: notes.txt").first.wait_for(timeout=30_000)
    _score(page)
    page.get_by_text("Upload a video first").first.wait_for(timeout=30_000)
    _upload(page, media["good"])
    _score(page)
    page.locator("#result").get_by_text("/ 5 —").wait_for(timeout=60_000)


@pytest.mark.browser
def test_browser_example_from_the_sample_dataset(page, server):
    _open(page, server)
    page.get_by_text("push the square to the right").first.click()
    page.locator("#video-input video").wait_for(state="attached", timeout=20_000)
    assert page.locator("#instruction textarea").input_value() == "push the square to the right"
    _score(page)
    page.locator("#result").get_by_text("/ 5 —").wait_for(timeout=60_000)
