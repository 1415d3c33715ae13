"""SIGKILL `roboreward build --relabel` and `roboreward eval` at seeded random points, resume, and prove that
nothing is lost or repeated: the final output equals an uninterrupted run's, no finished LM/API call is made
again, and no row is duplicated or lost.

The LM / VLM is a real local HTTP server (:class:`openai_server.ChatServer`) answering the relabeling prompts
with the scripted :class:`relabel_helpers.World` (valid JSON for every stage) or the reward prompt with a
deterministic score. The server kills the CLI process from inside the handler of the chosen request, before
answering it, so the kill lands while the client waits on the network: the worst moment for a job that has
calls in flight. Every request body is hashed (prompt, frames, seed, temperature, model) to count repeats.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from build_helpers import make_lerobot_v3, make_lerobot_v21
from conftest import make_frames
from openai_server import ChatServer, chat_response
from relabel_helpers import World, prompt_of

from roboreward.dataset import MANIFEST, available_splits, build_dataset, read_split, relabel_fingerprint
from roboreward.relabel import make_relabeler
from roboreward.video import write_video

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
SEED = 8  # seeds the choice of kill points


def body_key(req: dict) -> str:
    """Content hash of a request body: two equal hashes are the same call."""
    return hashlib.sha256(json.dumps(req, sort_keys=True).encode()).hexdigest()


class EpisodeWorld(World):
    """:class:`World` whose counterfactual commands name the episode's command, so that every call of the job
    differs by its prompt (the scripted world otherwise writes the same commands for every episode)."""

    def instructions(self, prompt: str, n: int) -> str:
        command = re.search(r'^A robot was commanded "(.*)" and succeeded', prompt, re.M).group(1)
        tag = hashlib.sha1(command.encode()).hexdigest()[:6]
        return super().instructions(prompt, n).replace("put the red cup", f"put the red cup {tag}")


class KillingServer:
    """A ChatServer that answers with ``answer(req)`` and SIGKILLs the current child at its ``kill_at``-th request.

    After the kill it answers nothing more (503), so "answered" means the child received a full answer.
    """

    def __init__(self, answer) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.kill_at: int | None = None
        self.seen = 0
        self.killed = False
        self.answered: list[str] = []  # body keys answered in the current run
        self.server = ChatServer(self._handle)

    def _handle(self, req: dict):
        with self.lock:
            self.seen += 1
            if self.killed or (self.kill_at is not None and self.seen >= self.kill_at):
                if not self.killed and self.proc is not None:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.killed = True
                return (503, {"error": {"message": "gone"}})
        reply = self.answer(req)
        with self.lock:
            self.answered.append(body_key(req))

        return reply

    def run(self, cmd: list[str], kill_at: int | None, timeout: float = 240) -> tuple[int, list[str], str]:
        """Run ``cmd`` to its end or to the kill; return (returncode, answered body keys, stderr tail)."""
        with self.lock:
            self.kill_at, self.seen, self.killed, self.answered = kill_at, 0, False, []
            self.proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = self.proc.communicate(timeout=timeout)
        with self.lock:
            return self.proc.returncode, list(self.answered), err[-3000:]


def kill_point(remaining: int, rng: random.Random) -> int:
    """The request of the next run to kill at: a seeded random point in the first half of what is left."""
    return rng.randint(2, max(2, remaining // 2))


# ------------------------------------------------------------------------------------------------ build --relabel


def _outputs(root: Path) -> dict[str, bytes]:
    out = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.glob("*/metadata.jsonl")}
    out[MANIFEST] = (root / MANIFEST).read_bytes()
    out["README.md"] = (root / "README.md").read_bytes()
    return out


def _cached_calls(cache_dir: Path) -> set[tuple[str, object]]:
    """(prompt, seed) of every finished call in an LM cache folder."""
    out = set()
    for p in cache_dir.glob("*/*.json"):
        if p.name.startswith(".tmp-"):  # a write cut by the kill (LMCache ignores these)
            continue
        inputs = json.loads(p.read_text())["inputs"]
        out.add((inputs["prompt"], inputs["seed"]))
    return out


def _rows(root: Path) -> list[dict]:
    return [r.data for s in available_splits(root) for r in read_split(root, s)]


@pytest.fixture(scope="module")
def lerobot_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill-src") / "lerobot"
    tasks = ["put the red cup in teh sink", "open teh drawer", "stack the blocks", "wipe the table ✓ 清洁"]
    make_lerobot_v3(root / "so_arm", [8, 9, 10, 11], tasks, cameras=("observation.images.front",), per_file=2)
    return root


def test_build_relabel_sigkill_resume_no_repeated_call_no_lost_row(lerobot_source, tmp_path):
    world = EpisodeWorld()
    ks = KillingServer(world.http)
    with ks.server:
        url = ks.server.base_url
        # the uninterrupted reference, in process (the CLI's relabel fingerprint, so the same plan)
        ref = tmp_path / "ref"
        rel = make_relabeler("openai", base_url=url, paraphrases=1, cache_dir=ref / ".cache" / "lm")
        cfg = relabel_fingerprint("openai", None, None, paraphrases=1)
        build_dataset(
            [f"lerobot:{lerobot_source}"],
            ref,
            seed=5,
            clip_fractions="none",
            shard_size=1,
            workers=2,  # threads: episodes relabeled concurrently; the output equals the CLI's one-worker run
            relabeler=rel,
            relabel_config=cfg,
            show_progress=False,
        )
        rel.close()
        reference_calls = [body_key(r) for r in ks.server.requests]
        total = len(reference_calls)
        assert total == len(set(reference_calls)) == 4 * 13  # clean, scene, modes, commands, 4 checks, 5 paraphrases

        out = tmp_path / "killed"
        cmd = [sys.executable, "-m", "roboreward", "build", "--source", f"lerobot:{lerobot_source}"]
        cmd += ["--out", str(out), "--seed", "5", "--clip-fractions", "none", "--shard-size", "1"]
        cmd += ["--relabel", "--backend", "openai", "--base-url", url, "--paraphrases", "1"]
        assert len(_cached_calls(ref / ".cache" / "lm")) == total  # (prompt, seed) tells the calls apart
        rng = random.Random(SEED)
        persisted: set[tuple[str, object]] = set()  # (prompt, seed) of every call on disk
        asked_per_run: list[list[tuple[str, object]]] = []
        all_answered: list[str] = []
        lost = 0
        points = []
        for _ in range(3):
            kill_at = kill_point(total - len(persisted), rng)
            points.append(kill_at)
            rc, answered, err = ks.run(cmd, kill_at)
            assert rc == -signal.SIGKILL, f"the build ended before the kill at request {kill_at}: {err}"
            assert not (out / "README.md").exists()  # killed before the assembly
            asked = [(prompt_of(r), r.get("seed")) for r in ks.server.requests[-ks.seen :]]
            assert not persisted & set(asked), [(a[0][:200], a[1]) for a in persisted & set(asked)]
            now = _cached_calls(out / ".cache" / "lm")
            assert persisted <= now
            # answered by the server but not on disk: only calls running beside the one cut (concurrency 4)
            lost_here = len(answered) - len(now - persisted)
            assert 0 <= lost_here <= 3, lost_here
            lost += lost_here
            persisted = now
            asked_per_run.append(asked)
            all_answered += answered
        rc, answered, err = ks.run(cmd, None)
        assert rc == 0, err
        asked = [(prompt_of(r), r.get("seed")) for r in ks.server.requests[-ks.seen :]]
        assert not persisted & set(asked)
        all_answered += answered

    # every call the job needs was answered; the only calls made twice are the few cut in flight by a kill
    assert set(all_answered) == set(reference_calls)
    assert len(all_answered) - len(reference_calls) == lost
    # the dataset is the uninterrupted one, byte for byte (metadata, manifest with video hashes, card)
    assert _outputs(out) == _outputs(ref)
    rows = _rows(out)
    keys = [(r["file_name"], r["task"], r["reward"]) for r in rows]
    assert len(keys) == len(set(keys)) == 4 * 10  # original + 4 counterfactuals + 5 paraphrases per episode
    assert Counter(r["kind"] for r in rows) == {"original": 4, "counterfactual": 16, "paraphrase": 20}
    assert not [p for p in out.rglob(".tmp-*") if ".cache" not in p.parts]  # no half-written dataset file
    report = json.loads((out / "build_report.json").read_text())
    assert report["episodes"]["skipped"] == 0 and report["relabel"]["notes"] == []
    print(f"build --relabel: {total} calls, kill points {points}, answered-but-unsaved calls redone: {lost}")


# ------------------------------------------------------------------------------------------------ eval


def _score_of(task: str) -> int:
    return 1 + sum(task.encode()) % 5


def _api_answer(req: dict):
    task = re.search(r"^Task: (.*)$", prompt_of(req), re.M).group(1).strip()
    s = _score_of(task)
    alternatives = {str(k): (-0.1 if k == s else -3.0 - abs(k - s)) for k in range(1, 6)}
    return chat_response(str(s), top_logprobs=[alternatives])


@pytest.fixture(scope="module")
def eval_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill-eval")
    split = root / "test"
    rows = []
    for i in range(14):
        name = f"{['bridge', 'droid', 'robo_arena'][i % 3]}/ep{i // 2}.mp4"  # two instructions per video
        if not (split / name).exists():
            write_video(split / name, make_frames(5, 32, 48, seed=i), fps=10)
        rows.append({"file_name": name, "task": f"task number {i} — put the cup down", "reward": 1 + i % 5})
    (split / "metadata.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root


@pytest.mark.parametrize("batch_size,kills", [(1, 3), (3, 2)])
def test_eval_sigkill_resume_same_predictions_no_rescoring(eval_dataset, tmp_path, batch_size, kills):
    ks = KillingServer(_api_answer)
    with ks.server:
        spec = f"api=openai:fake@{ks.server.base_url}"
        base = [sys.executable, "-m", "roboreward", "eval", "--dataset", str(eval_dataset), "--model", spec]
        base += ["--num-frames", "2", "--batch-size", str(batch_size)]
        rc, reference, err = ks.run([*base, "--out", str(tmp_path / "ref")], None)
        assert rc == 0, err
        total = len(reference)
        assert total == 14 == len(set(reference))

        out = tmp_path / "killed"
        pred = out / "predictions" / "api.jsonl"
        rng = random.Random(SEED + batch_size)
        answered_before: list[str] = []
        points: list[int] = []
        done = 0
        for _ in range(kills):
            points.append(kill_point(total - done, rng))
            rc, answered, err = ks.run([*base, "--out", str(out)], points[-1])
            assert rc == -signal.SIGKILL, err
            rows = [json.loads(line) for line in pred.read_text().splitlines()] if pred.exists() else []
            assert len({r["key"] for r in rows}) == len(rows) >= done  # nothing duplicated, nothing lost
            # the answers of the batch cut by the previous kill were not on disk: at most batch_size - 1 redone
            assert len(set(answered_before) & set(answered)) <= batch_size - 1
            answered_before += answered
            done = len(rows)
        rc, answered, err = ks.run([*base, "--out", str(out)], None)
        assert rc == 0, err
        answered_before += answered

    repeats = sum(Counter(answered_before).values()) - len(set(answered_before))
    if batch_size == 1:
        assert repeats == 0  # one call per batch: a finished call is always on disk before the next starts
    assert set(answered_before) == set(reference)
    assert pred.read_text() == (tmp_path / "ref" / "predictions" / "api.jsonl").read_text()
    assert (out / "leaderboard.csv").read_text() == (tmp_path / "ref" / "leaderboard.csv").read_text()
    rows = [json.loads(line) for line in pred.read_text().splitlines()]
    assert len(rows) == 14 and all(r["score"] == _score_of(r["task"]) for r in rows)
    print(f"eval batch {batch_size}: kill points {points}, calls redone {repeats}")


# ------------------------------------------------------------------------------------------------ the cache


def test_concurrent_batch_stores_each_answer_as_it_arrives(tmp_path):
    """A kill in the middle of a concurrent batch must not lose the answers that already came back."""
    from roboreward.relabel import CachedLM, LMCache, LMRequest, OpenAIChatLM

    release = threading.Event()

    def answer(req: dict) -> str:
        if prompt_of(req) == "slow":
            release.wait(30)
        return f"answer to {prompt_of(req)}"

    cache = LMCache(tmp_path / "cache")
    with ChatServer(answer) as server:
        lm = CachedLM(OpenAIChatLM("m", base_url=server.base_url, api_key="k", concurrency=4), cache)
        requests = [LMRequest(prompt=p) for p in ("a", "b", "slow", "c")]
        results: list = []
        worker = threading.Thread(target=lambda: results.extend(lm.generate_batch(requests)))
        worker.start()
        deadline = time.monotonic() + 20
        while len(cache) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_while_waiting = len(cache)
        release.set()
        worker.join(30)
        lm.lm.close()
    assert stored_while_waiting == 3  # a, b, c are on disk while "slow" is still in flight
    assert [r.text for r in results] == ["answer to a", "answer to b", "answer to slow", "answer to c"]
    assert len(cache) == 4


# ------------------------------------------------------------------------------------- output-side faults of build


@pytest.fixture(scope="module")
def small_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault-src") / "ds"
    return make_lerobot_v21(root, [10, 11, 12, 13, 9, 8, 10, 12], [f"task {i}" for i in range(8)])


def _build(src: Path, out: Path, **kw):
    return build_dataset([f"lerobot:{src}"], out, seed=2, shard_size=2, show_progress=False, **kw)


def _markers(out: Path) -> list[str]:
    return sorted(p.name for p in (out / ".build" / "shards").glob("shard-*.json"))


def test_environment_errors_are_told_from_input_errors(tmp_path):
    import errno

    from roboreward.dataset.shards import environment_fault
    from roboreward.sources import SourceError
    from roboreward.video import VideoDecodeError

    def wrapped(inner: BaseException) -> BaseException:  # how the readers re-raise: "from None" keeps __context__
        try:
            try:
                raise inner
            except Exception:
                raise SourceError("ep", "video", "cannot decode") from None
        except SourceError as exc:
            return exc

    out = tmp_path / "out"
    for exc in (
        OSError(errno.ENOSPC, "No space left on device"),
        PermissionError(errno.EACCES, "Permission denied"),
        MemoryError(),
        FileNotFoundError(errno.ENOENT, "gone", str(out / ".build" / "tmp" / ".tmp-abc.mp4")),
        wrapped(OSError(errno.EDQUOT, "Disk quota exceeded")),
    ):
        assert environment_fault(exc, out), exc
    for exc in (
        VideoDecodeError("x.mp4: cannot decode video"),
        SourceError("ep", "video", "video file /data/x.mp4 is missing"),
        FileNotFoundError(errno.ENOENT, "no such source", "/data/src/x.mp4"),
        ValueError("bad"),
    ):
        assert not environment_fault(exc, out), exc


def test_disk_full_stops_the_shard_unmarked_and_a_rerun_redoes_exactly_what_is_missing(
    small_source, tmp_path, monkeypatch
):
    """ENOSPC injected into the 9th video written: the build stops with a clear error, the shard being built is
    not marked done (nor its episodes "skipped"), and a re-run builds what is missing: the rows of a clean build."""
    import errno

    import roboreward.dataset.media as media
    from roboreward.dataset.shards import BuildEnvironmentError

    reference = _build(small_source, tmp_path / "ref")
    real, calls = media._finish, []

    def full_disk(container):
        calls.append(1)
        if len(calls) == 9:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(container)

    monkeypatch.setattr(media, "_finish", full_disk)
    out = tmp_path / "out"
    with pytest.raises(BuildEnvironmentError, match="No space left on device.*nothing of this shard was marked done"):
        _build(small_source, out)
    marked = _markers(out)
    assert 0 < len(marked) < reference.shards_total  # the shards before the fault are done, the failed one is not
    for name in marked:
        assert not json.loads((out / ".build" / "shards" / name).read_text())["skipped"]
    monkeypatch.setattr(media, "_finish", real)
    resumed = _build(small_source, out)
    assert resumed.shards_reused == len(marked) and resumed.episodes_skipped == 0
    assert _rows(out) == _rows(tmp_path / "ref")
    assert not [p for p in out.rglob(".tmp-*") if ".build" not in p.parts]


def _can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if ok.returncode == 0:
        subprocess.run(["umount", str(where)], check=False)
    return ok.returncode == 0


def test_disk_full_on_a_small_tmpfs(small_source, tmp_path):
    """The same with a real full disk (a tmpfs half the build's size), through the CLI: exit 3 naming the fault;
    after the disk grows, the re-run exits 0 with every row."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("mounting a tmpfs needs root and CAP_SYS_ADMIN (the ENOSPC-injection test covers the logic)")
    _build(small_source, tmp_path / "ref")
    size = sum(p.stat().st_size for p in (tmp_path / "ref").rglob("*") if p.is_file())
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={(size // 2 // 4096 + 1) * 4096}", "tmpfs", str(disk)], check=True
    )
    try:
        out = disk / "out"
        cmd = [sys.executable, "-m", "roboreward", "build", "-s", f"lerobot:{small_source}", "-o", str(out)]
        cmd += ["--seed", "2", "--shard-size", "2"]
        first = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
        assert first.returncode == 3, first.stderr[-2000:]
        assert "No space left on device" in first.stderr and "re-run the same command" in first.stderr
        assert "Traceback" not in first.stderr
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        assert _rows(out) == _rows(tmp_path / "ref")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_done_markers_are_checked_against_their_files(small_source, tmp_path):
    """A deleted video, a video changed in place (same size) and the files another seed's assembly removed are
    all noticed on resume: those shards are redone and the dataset equals a clean build."""
    a, b = tmp_path / "a", tmp_path / "b"
    _build(small_source, a)
    first = _build(small_source, b)
    videos = sorted((b / "train").rglob("*.mp4"))
    videos[0].unlink()
    data = bytearray(videos[-1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    videos[-1].write_bytes(bytes(data))
    again = _build(small_source, b)
    assert again.shards_redone >= 1 and again.shards_reused + again.shards_redone == first.shards_total
    assert _outputs(b) == _outputs(a)
    # another seed's build, killed after its assembly removed the files its plan does not name but before it
    # removed the other plan's shard files: those stay, naming files that are gone
    saved = {p.name: p.read_bytes() for p in (b / ".build" / "shards").glob("shard-*.json")}
    build_dataset([f"lerobot:{small_source}"], b, seed=9, shard_size=2, show_progress=False)
    for name, data in saved.items():
        (b / ".build" / "shards" / name).write_bytes(data)
    back = _build(small_source, b)
    assert back.shards_redone >= 1 and _outputs(b) == _outputs(a)


def test_one_writer_per_output_folder(small_source, tmp_path):
    """A second build into a folder another process writes is refused naming its PID and host; once that
    process is killed its stale lock is taken over."""
    import socket

    from roboreward.lock import OutputLockedError, output_lock

    out = tmp_path / "out"
    out.mkdir()
    (out / ".build").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from roboreward.lock import output_lock\n"
            f"with output_lock({str(out)!r}, 'roboreward build', name='.build/lock'):\n"
            "    print('held', flush=True); time.sleep(120)",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError, match=rf"PID {holder.pid} on host {re.escape(socket.gethostname())}"):
            _build(small_source, out)
        cli = subprocess.run(
            [sys.executable, "-m", "roboreward", "build", "-s", f"lerobot:{small_source}", "-o", str(out)],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 3 and f"PID {holder.pid}" in cli.stderr and "Traceback" not in cli.stderr
    finally:
        holder.kill()
        holder.wait()
    summary = _build(small_source, out)  # the dead holder's lock is stale: taken over
    assert summary.episodes_built == 8
    with (
        output_lock(tmp_path / "eval", "roboreward eval"),
        pytest.raises(OutputLockedError, match="roboreward eval"),
        output_lock(tmp_path / "eval", "roboreward eval"),
    ):
        pass


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process children from /proc (Linux)")
def test_workers_die_with_their_parent(tmp_path):
    """SIGKILL of ``build --workers 2``: its two pool workers end too (they used to sleep forever)."""
    src = make_lerobot_v21(tmp_path / "src" / "big", [60] * 8, [f"t{i}" for i in range(8)], fps=30, size=(360, 480))
    cmd = [sys.executable, "-m", "roboreward", "build", "-s", f"lerobot:{src}", "-o", str(tmp_path / "out")]
    proc = subprocess.Popen([*cmd, "--workers", "2", "--shard-size", "1"], env=ENV, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def test_kills_leave_no_temp_file_in_the_dataset(small_source, tmp_path):
    """SIGKILLs at seeded random moments: no ``.tmp-*`` outside ``.build/`` (the documented ``hf upload``
    excludes only ``.build/*``), and the final re-run equals a clean build."""
    _build(small_source, tmp_path / "ref")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "roboreward", "build", "-s", f"lerobot:{small_source}", "-o", str(out)]
    cmd += ["--seed", "2", "--shard-size", "2"]
    rng = random.Random(SEED)
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 3.0))
        proc.kill()
        proc.wait()
        assert not [p for p in out.rglob(".tmp-*") if ".build" not in p.relative_to(out).parts]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _outputs(out) == _outputs(tmp_path / "ref")
