"""Hostile and careless inputs (issue #19), end to end through the real CLI where it matters.

One test (or a few) per hole the adversarial battery found, each failing on the code before the fix, plus the cases
that already held and are kept from regressing. ``docs/reliability.md`` maps every case to its test here.
Everything runs on a width-8 network and images of a few hundred pixels, so the module stays fast; the few cases
that need a separate process (signals, pipes, FIFOs) run ``python -m styler`` with a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from styler.cli import main
from styler.errors import ImageError
from styler.io.images import read_image, write_image
from styler.io.modelfile import save_model
from styler.io.names import safe_name
from styler.io.tempfiles import PROCESS_STARTED, clean_stale_temp_files
from styler.nn.network import ArchSpec, TransformerNet

REPO = Path(__file__).resolve().parents[1]
EVIL_NAME = "x/../../victim"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model, its evil twin whose metadata name climbs out of folders, and the tiny one's ONNX export cached
    (so the separate processes below start without importing torch)."""
    from styler.infer.stylizer import Stylizer

    folder = tmp_path_factory.mktemp("models")
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1))
    save_model(folder / "tiny.pth", net, {"name": "tiny"})
    save_model(folder / "evil.pth", net, {"name": EVIL_NAME})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STYLER_CACHE_DIR", str(folder / "cache"))
        Stylizer(folder / "tiny.pth", backend="auto", device="cpu")
    return folder


@pytest.fixture()
def env(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A work folder (the current directory) with a noise photo; ``-m tiny`` finds the tiny model."""
    monkeypatch.setenv("STYLER_CACHE_DIR", str(models / "cache"))
    monkeypatch.setenv("STYLER_MODEL_DIR", str(models))
    work = tmp_path / "work"
    work.mkdir()
    photo = work / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(photo)
    monkeypatch.chdir(work)
    return {"tmp": tmp_path, "work": work, "model": models / "tiny.pth", "evil": models / "evil.pth", "photo": photo}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``styler ARGS`` in this process (eager torch: no ONNX export to wait for); (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([*args, "--backend", "torch"] if args[0] == "apply" else args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def cli(args: list[str], cwd: Path, timeout: float = 120, stdout: object = subprocess.PIPE
        ) -> subprocess.CompletedProcess:
    """``python -m styler ARGS`` in a process of its own (stderr captured; stdout too unless redirected)."""
    return subprocess.run([sys.executable, "-m", "styler", *args], cwd=cwd, timeout=timeout, stdout=stdout,
                          stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.tmp"))


def noise_png(path: Path, size: int) -> Path:
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# --- 1. a model file steers where outputs are written; --force bypassed -----------------------------------------

def test_model_name_is_a_safe_token() -> None:
    assert safe_name("starry_night_in") == "starry_night_in" and safe_name("cpu-quick") == "cpu-quick"
    assert safe_name(EVIL_NAME) == "x_.._.._victim"
    assert safe_name("../.bashrc") == "_.bashrc" and "/" not in safe_name("/etc/passwd")
    assert safe_name("..") == safe_name("") == safe_name(None) == "model"
    assert safe_name("a\x00b\nc d") == "a_b_c_d" and len(safe_name("n" * 500)) == 64


def test_model_name_cannot_write_outside_the_out_dir(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    victim = env["tmp"] / "victim.png"
    victim.write_bytes(b"precious")
    (env["work"] / "victim.png").write_bytes(b"precious")
    code, _, err = run(["apply", "photo.png", "-m", str(env["evil"]), "--out-dir", "out"], capsys)
    assert code == 0, err
    assert victim.read_bytes() == b"precious" and (env["work"] / "victim.png").read_bytes() == b"precious"
    assert [p.name for p in (env["work"] / "out").iterdir()] == ["photo_x_.._.._victim.png"]
    # without --out-dir the name went into Path.with_name: a traceback before the fix
    code, _, err = run(["apply", "photo.png", "-m", str(env["evil"])], capsys)
    assert code == 0 and "Traceback" not in err and (env["work"] / "photo_x_.._.._victim.png").exists()


def test_out_dir_is_resolved_before_the_exists_check(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    keep = env["work"] / "keep"
    keep.mkdir()
    (keep / "photo_tiny.png").write_bytes(b"keep me")
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--out-dir", "newdir/../keep"], capsys)
    assert code == 1 and "exists (use --force" in err
    assert (keep / "photo_tiny.png").read_bytes() == b"keep me" and not (env["work"] / "newdir").exists()
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--out-dir", "newdir/../keep", "--force"], capsys)
    assert code == 0 and Image.open(keep / "photo_tiny.png").size == (32, 24)


def test_outputs_never_leave_the_chosen_folder(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--suffix", "/../../x"], capsys)
    assert code == 1 and "not a plain file name" in err and not (env["tmp"] / "x.png").exists()
    # a folder input whose sub-folder is, inside --out-dir, a symlink to somewhere else
    (env["work"] / "in" / "sub").mkdir(parents=True)
    Image.open(env["photo"]).save(env["work"] / "in" / "sub" / "p.png")
    elsewhere = env["tmp"] / "elsewhere"
    elsewhere.mkdir()
    (env["work"] / "out").mkdir()
    (env["work"] / "out" / "sub").symlink_to(elsewhere)
    code, _, err = run(["apply", "in", "-m", "tiny", "--out-dir", "out"], capsys)
    assert code == 1 and "outside --out-dir" in err and not list(elsewhere.iterdir())


# --- 4. stdout output silently truncated ----------------------------------------------------------------------

class _ShortWriter(io.RawIOBase):
    """stdout as ``PYTHONUNBUFFERED=1`` makes it: a raw file whose write may take only part and return the count.

    This one takes at most 300 bytes per call and nothing after 1000, like a pipe whose reader went away."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        n = max(0, min(300, len(data), 1000 - len(self.data)))
        self.data += bytes(data[:n])
        return n


def test_short_writes_to_stdout_are_an_error(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _ShortWriter()

    class Stdout:
        buffer = writer

    monkeypatch.setattr(sys, "stdout", Stdout())
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "-o", "-", "--strength", "0"], capsys)  # ~2.4 kB
    assert code == 1 and "cannot write image -" in err and len(writer.data) == 1000, (code, err, len(writer.data))


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_stdout_pipe_closed_early_exits_1(env: dict[str, Path], unbuffered: str) -> None:
    noise_png(env["work"] / "big.png", 600)  # ~1 MB of PNG: far more than a pipe holds
    env_vars = {"PYTHONUNBUFFERED": unbuffered} if unbuffered else {}
    proc = subprocess.Popen([sys.executable, "-m", "styler", "apply", "big.png", "-m", "tiny", "-o", "-",
                             "--strength", "0"], cwd=env["work"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO), **env_vars})
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1) == b"\x89"  # the PNG has started: the writer is in the middle of its write
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err
    assert "Broken pipe" in err and "Exception ignored" not in err and "Traceback" not in err


def test_stdout_to_a_full_disk_exits_1(env: dict[str, Path]) -> None:
    with open("/dev/full", "wb") as full:
        result = cli(["apply", "photo.png", "-m", "tiny", "-o", "-"], env["work"], stdout=full)
    assert result.returncode == 1 and b"No space left on device" in result.stderr


# --- 5. FIFOs and other non-regular files -------------------------------------------------------------------

def test_fifo_input_is_refused_at_once(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    fifo = env["work"] / "f.jpg"
    os.mkfifo(fifo)

    stop = threading.Event()

    def unblock() -> None:  # a reader stuck in open() is let go by a writer arriving (and the test then fails)
        if stop.wait(10):
            return
        while not stop.wait(0.2):
            with contextlib.suppress(OSError):  # ENXIO: no reader waiting right now
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        started = time.monotonic()
        code, _, err = run(["apply", "f.jpg", "photo.png", "-m", "tiny"], capsys)
        assert time.monotonic() - started < 10
    finally:
        stop.set()
    assert code == 1 and "f.jpg: is a FIFO (named pipe), not a regular file" in err
    assert (env["work"] / "photo_tiny.png").exists()
    # in a folder scan a FIFO is no image file: skipped, and the batch goes on
    (env["work"] / "d").mkdir()
    os.mkfifo(env["work"] / "d" / "g.png")
    Image.open(env["photo"]).save(env["work"] / "d" / "p.png")
    assert run(["apply", "d", "-m", "tiny"], capsys)[0] == 0 and (env["work"] / "d" / "p_tiny.png").exists()


def test_devices_and_symlink_loops_are_clean_errors(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    with pytest.raises(ImageError, match="character device, not a regular file"):
        read_image("/dev/zero")
    (env["work"] / "zero.jpg").symlink_to("/dev/zero")
    (env["work"] / "a.png").symlink_to("b.png")
    (env["work"] / "b.png").symlink_to("a.png")
    code, _, err = run(["apply", "zero.jpg", "a.png", "photo.png", "-m", "tiny"], capsys)
    assert code == 1 and "character device" in err and "symbolic links" in err
    assert (env["work"] / "photo_tiny.png").exists()


# --- 6. colour profiles ---------------------------------------------------------------------------------------

#: Display P3 colorants (D50-adapted, as in Apple's Display P3 profile); white point and sRGB curves as in sRGB.
_P3_COLORANTS = {b"rXYZ": (0.515121, 0.241196, -0.001053), b"gXYZ": (0.291977, 0.692245, 0.041885),
                 b"bXYZ": (0.157104, 0.066574, 0.784073)}


def display_p3_profile() -> bytes:
    """A Display P3 ICC profile built from LittleCMS's sRGB one: same curves and white, P3 primaries."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    for i in range(struct.unpack(">I", data[128:132])[0]):
        signature, offset, _ = struct.unpack(">4sII", data[132 + 12 * i:144 + 12 * i])
        if signature in _P3_COLORANTS:
            data[offset + 8:offset + 20] = struct.pack(">3i", *(round(v * 65536) for v in _P3_COLORANTS[signature]))
    return bytes(data).replace("sRGB".encode("utf-16-be"), "DiP3".encode("utf-16-be"))


def _p3_photo(path: Path, mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(2)
    pixels = rng.integers(30, 225, (16, 20, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    if mode == "RGBA":
        img.putalpha(Image.fromarray(rng.integers(0, 255, (16, 20), dtype=np.uint8)))
    img.save(path, icc_profile=display_p3_profile())
    return pixels


def test_display_p3_photo_is_converted_to_srgb(env: dict[str, Path]) -> None:
    pixels = _p3_photo(env["work"] / "p3.png")
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3_profile()))
    expected = np.asarray(ImageCms.profileToProfile(Image.fromarray(pixels), p3, ImageCms.createProfile("sRGB")))
    image = read_image(env["work"] / "p3.png")
    got = np.round(image.rgb * 255).astype(int)
    assert np.abs(got - expected.astype(int)).max() == 0 and image.profile == "DiP3 built-in"
    assert np.abs(got - pixels.astype(int)).max() > 15 and not image.warnings  # the raw values were off
    untagged = env["work"] / "plain.png"
    Image.fromarray(pixels).save(untagged)
    plain = read_image(untagged)
    assert plain.profile is None and np.array_equal(np.round(plain.rgb * 255).astype(np.uint8), pixels)


def test_converted_photos_are_written_as_tagged_srgb(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    pixels = _p3_photo(env["work"] / "p3.png", "RGBA")
    code, _, err = run(["apply", "p3.png", "-m", "tiny", "--strength", "0", "-o", "out.png"], capsys)
    assert code == 0 and "warning" not in err
    out = Image.open(env["work"] / "out.png")
    profile = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile) and out.mode == "RGBA"
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3_profile()))
    expected = np.asarray(ImageCms.profileToProfile(Image.fromarray(pixels), p3, ImageCms.createProfile("sRGB")))
    assert np.abs(np.asarray(out)[..., :3].astype(int) - expected).max() <= 1
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(Image.open(env["work"] / "p3.png"))[..., 3])
    # photos without a profile stay untagged, as before
    assert run(["apply", "photo.png", "-m", "tiny", "-o", "plain.png"], capsys)[0] == 0
    assert "icc_profile" not in Image.open(env["work"] / "plain.png").info


def test_an_unusable_profile_is_a_warning_not_an_error(env: dict[str, Path]) -> None:
    Image.new("RGB", (12, 12), (10, 200, 30)).save(env["work"] / "junk.png", icc_profile=b"not a profile at all")
    image = read_image(env["work"] / "junk.png")
    assert image.profile is None and "colour profile unreadable" in image.warnings[0]
    assert np.round(image.rgb[0, 0] * 255).tolist() == [10, 200, 30]


# --- 8. interrupts and the temporary files they leave ---------------------------------------------------------

_SIGNAL_DURING_SAVE = """
import os, signal, sys, time
from PIL import Image
save = Image.Image.save
def save_then_signal(self, fp, *args, **kwargs):
    save(self, fp, *args, **kwargs)
    if str(fp).endswith('.tmp'):  # the temporary output exists: the worst moment to be stopped
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(30)
Image.Image.save = save_then_signal
from styler.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_while_writing_exits_130_without_temp_files(env: dict[str, Path], signame: str) -> None:
    result = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_SAVE, signame, "apply", "photo.png", "-m", "tiny",
                             "--out-dir", "out"], cwd=env["work"], capture_output=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 130, result.stderr.decode()
    assert not temp_files(env["work"]) and not (env["work"] / "out" / "photo_tiny.png").exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_images_are_removed_when_an_output_folder_is_opened(env: dict[str, Path],
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = env["work"] / "out"
    out.mkdir()
    stale = out / f".old_tiny.png.{_dead_pid()}.tmp"
    live = out / f".other_tiny.png.{os.getpid()}.tmp"  # a process that is running (this one) still owns it
    foreign = [out / ".notes.txt.12345.tmp", out / ".old_tiny.png.tmp", out / "old_tiny.png.999999.tmp"]
    for path in (stale, live, *foreign):
        path.write_bytes(b"partial")
    assert run(["apply", "photo.png", "-m", "tiny", "--out-dir", "out"], capsys)[0] == 0
    assert not stale.exists() and live.exists() and all(p.exists() for p in foreign)


def test_stale_archive_temps_are_the_ones_older_than_the_process(tmp_path: Path) -> None:
    old = tmp_path / ".checkpoint.pth.k3j_x9a2.tmp"
    new = tmp_path / ".checkpoint.pth.abcdefgh.tmp"
    other = tmp_path / ".model.pth.abcdefgh.tmp"
    v2 = tmp_path / ".model.safetensors.abcdefgh.tmp"  # model format v2
    for path in (old, new, other, v2):
        path.write_bytes(b"torn")
    for path in (old, other, v2):
        os.utime(path, (PROCESS_STARTED - 60, PROCESS_STARTED - 60))
    os.utime(new, (PROCESS_STARTED + 1, PROCESS_STARTED + 1))  # written after this process started: maybe ours
    assert clean_stale_temp_files(tmp_path, names={"checkpoint.pth"}) == [old]
    assert new.exists() and other.exists()
    (tmp_path / ".link.pth.abcdefgh.tmp").symlink_to(other)
    os.utime(tmp_path / ".link.pth.abcdefgh.tmp", (0, 0), follow_symlinks=False)
    assert sorted(clean_stale_temp_files(tmp_path)) == [other, v2]
    assert (tmp_path / ".link.pth.abcdefgh.tmp").is_symlink()


# --- 9. concurrent applies into one folder --------------------------------------------------------------------

def test_an_output_created_meanwhile_is_never_overwritten(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from styler.infer.stylizer import Stylizer

    target = env["work"] / "out" / "photo_tiny.png"
    stylize_many = Stylizer.stylize_many

    def another_process_writes_first(self: Stylizer, *args: object, **kwargs: object) -> object:
        results = stylize_many(self, *args, **kwargs)  # type: ignore[arg-type]
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"the other run's output")  # after the exists check, before the rename
        return results

    monkeypatch.setattr(Stylizer, "stylize_many", another_process_writes_first)
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--out-dir", "out"], capsys)
    assert code == 1 and "exists" in err and target.read_bytes() == b"the other run's output"
    assert not temp_files(env["work"])
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--out-dir", "out", "--force"], capsys)
    assert code == 0 and Image.open(target).size == (32, 24)


def test_exclusive_write_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    rgb = np.full((8, 8, 3), 0.5, np.float32)
    write_image(rgb, tmp_path / "a.png", overwrite=False)
    assert Image.open(tmp_path / "a.png").size == (8, 8)
    with pytest.raises(ImageError, match="exists"):
        write_image(rgb, tmp_path / "a.png", overwrite=False)
    assert not temp_files(tmp_path)


# --- 10. messages ---------------------------------------------------------------------------------------------

def test_messages_name_the_real_problem(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(env["photo"].read_bytes())
    data[29] ^= 0xFF  # inside the IHDR chunk: its CRC no longer matches
    (env["work"] / "crc.png").write_bytes(bytes(data))
    Image.new("RGB", (5, 5)).save(env["work"] / "small.png")
    (env["work"] / "adir").mkdir()
    code, _, err = run(["apply", "crc.png", "small.png", "-m", "tiny", "--out-dir", "o"], capsys)
    assert code == 1 and "damaged PNG file" in err and "bad header checksum" in err and "not an image" not in err
    assert "--scale" in err and "--max-size" not in err
    for force in ([], ["--force"]):
        code, _, err = run(["apply", "photo.png", "-m", "tiny", "-o", "adir", *force], capsys)
        assert code == 1 and "adir is a directory" in err and "--force" not in err


class _RunsCode:
    """Unpickling this would create a marker folder: the proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle's protocol
        return (os.mkdir, (str(self.marker),))


def _training_inputs(folder: Path) -> list[str]:
    """A style image and a one-photo dataset: enough for ``styler train`` to get as far as the VGG load."""
    (folder / "ds").mkdir()
    noise_png(folder / "ds" / "p.png", 40)
    Image.new("RGB", (40, 40), (200, 40, 30)).save(folder / "style.png")
    return ["train", "-s", str(folder / "style.png"), "-d", str(folder / "ds"), "-o", str(folder / "m.pth"), "-q"]


def test_a_bad_vgg_file_is_described_without_torch_advice(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    import torch

    args = _training_inputs(env["work"])
    pickled = env["work"] / "code.pth"
    torch.save({"0.weight": _RunsCode(env["work"] / "ran")}, pickled)
    (env["work"] / "notes.pth").write_text("these are not weights\n")
    for bad, what in ((pickled, "Python objects beyond tensors"), (env["work"] / "notes.pth", "a text file")):
        code, _, err = run([*args, "--vgg-weights", str(bad)], capsys)
        assert code == 1 and what in err and "VGG16 features state_dict" in err and "Caffe or torchvision" in err
        assert "weights_only" not in err and len(err.strip().splitlines()) == 1, err
    assert not (env["work"] / "ran").exists()


# --- 7. styler train option validation ------------------------------------------------------------------------

_BAD_TRAIN_OPTIONS = [["--lr", "-1"], ["--lr", "nan"], ["--style-size", "4"], ["--epochs", "nan"],
                      ["--style-layers", ""], ["--epochs", "-1"], ["--epochs", "inf"], ["--content-weight", "nan"],
                      ["--threads", "0"], ["--lr-drop", "5000"], ["--lr-drop", "0:0.1"], ["--lr-drop", "100:2"],
                      ["--lr-drop", "100:nan"], ["--lr-drop", "x:0.1"]]

_TRAIN_PROBE = """
import json, sys
from styler.cli import main
codes = []
for bad in json.loads(sys.argv[1]):
    try:
        main([*sys.argv[2:], *bad])
    except SystemExit as exc:
        codes.append(exc.code)
print('RESULT', json.dumps(codes), 'torch' in sys.modules, file=sys.stderr)
"""


def test_bad_train_options_are_usage_errors_before_torch(env: dict[str, Path]) -> None:
    import json

    args = _training_inputs(env["work"])
    result = subprocess.run([sys.executable, "-c", _TRAIN_PROBE, json.dumps(_BAD_TRAIN_OPTIONS), *args],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert f"RESULT {json.dumps([2] * len(_BAD_TRAIN_OPTIONS))} False" in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: Invalid value")]
    assert len(errors) == len(_BAD_TRAIN_OPTIONS) and "Traceback" not in result.stderr
    assert not (env["work"] / "m.pth").exists() and not (env["work"] / "m.run").exists()


def test_train_config_refuses_the_same_values() -> None:
    from styler.errors import StylerError
    from styler.train.config import TrainConfig, iterations_for_epochs

    common = {"style": "s.png", "dataset": "d", "output": "m.pth"}
    for bad, match in (({"lr": float("nan")}, "learning rate"), ({"lr": -1.0}, "learning rate"),
                       ({"style_size": 4}, "style size 4 is too small"), ({"style_layers": ()}, "no style layers"),
                       ({"tv_weight": float("inf")}, "tv-weight"), ({"threads": 0}, "threads")):
        with pytest.raises(StylerError, match=match):
            TrainConfig(**common, **bad)  # type: ignore[arg-type]
    for epochs in (float("nan"), float("inf"), -1.0, 0.0):
        with pytest.raises(StylerError, match="epochs must be a positive number"):
            iterations_for_epochs(epochs, 10, 2)
    assert TrainConfig(**common, style_size=0).style_size == 0 and iterations_for_epochs(0.5, 10, 2) == 2


def test_opening_a_run_removes_torn_checkpoint_temps(env: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    args = _training_inputs(env["work"])
    run_dir = env["work"] / "m.run"
    run_dir.mkdir()
    torn = run_dir / ".checkpoint.pth.q7w2e9r1.tmp"  # what kill -9 during a checkpoint write leaves
    torn_model = env["work"] / ".m.pth.a1b2c3d4.tmp"
    kept = [run_dir / "notes.tmp", run_dir / ".previews.png.abcdefgh.tmp", run_dir / "checkpoint.pth"]
    for path in (torn, torn_model, *kept):
        path.write_bytes(b"torn")
        os.utime(path, (PROCESS_STARTED - 60, PROCESS_STARTED - 60))  # from a run before this process
    code, _, err = run([*args, "--vgg-weights", str(env["work"] / "missing.pth")], capsys)
    assert code == 1 and "VGG16 weights file not found" in err  # the run was opened, then stopped at the VGG load
    assert not torn.exists() and not torn_model.exists() and all(p.exists() for p in kept)
    torn.write_bytes(b"torn")
    os.utime(torn, (PROCESS_STARTED - 60, PROCESS_STARTED - 60))
    code, _, err = run(["train", "--resume", str(run_dir / "checkpoint.pth"), "-q"], capsys)
    assert code == 1 and not torn.exists()


# --- cases that already held ----------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width``×``height``, and no pixel data: a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"") + _png_chunk(b"IEND", b"")


def test_a_bomb_header_is_refused_before_decoding(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (env["work"] / "bomb.png").write_bytes(_png_header_only(60000, 60000))
    code, _, err = run(["apply", "bomb.png", "-m", "tiny"], capsys)
    assert code == 1 and "decompression-bomb limit" in err and "--max-pixels 3600000000" in err


@pytest.mark.parametrize("failure", [errno.EROFS, errno.ENOSPC])
def test_read_only_and_full_disks_leave_no_partial_output(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, failure: int) -> None:
    save = Image.Image.save

    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        if str(fp).endswith(".tmp"):
            Path(str(fp)).write_bytes(b"half a PNG")
            raise OSError(failure, os.strerror(failure))
        save(self, fp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", failing_save)
    code, _, err = run(["apply", "photo.png", "-m", "tiny", "--out-dir", "out"], capsys)
    assert code == 1 and os.strerror(failure) in err and "Traceback" not in err
    assert not temp_files(env["work"]) and not (env["work"] / "out" / "photo_tiny.png").exists()
