"""``python -m trainers.report``: curves.png and a self-contained report.html from run directories."""

import base64
import io
import json
import math
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from trainers.report import load_run, write_report

DATA_URI = re.compile(r'<img[^>]* src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
GRID_SIDE = 40  # pixels of the synthetic sample grids


def make_run(path, *, loss, epochs=3, alarm=None, end="finished", steps_per_epoch=4):
    """Write a run directory in the format of docs/run_format.md with made-up numbers."""
    (path / "samples").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"loss": loss, "epochs": epochs, "epoch_images": 1280, "world_size": 1}))
    lines = []
    for step in range(epochs * steps_per_epoch + 1):
        epoch = 0 if step == 0 else (step - 1) // steps_per_epoch + 1
        common = {"epoch": epoch, "step": step, "critic_steps": 5 * step, "images_seen": 320 * step,
                  "seconds": 0.5 * step}
        decay = math.exp(-step / 5)
        if step:
            train = {"kind": "train", **common, "loss_d": 1 + decay, "loss_g": 2 - decay, "images_per_s": 640.0}
            if loss != "gan":
                train["w_estimate"] = 3 * decay
            lines.append(train)
        evaluation = {"kind": "eval", **common, "sliced_pixels": 0.5 * decay + 0.01,
                      "sinkhorn_pixels": decay + 0.02, "sliced_patches": 0.3 * decay + 0.01,
                      "grad_norm_g": 10 * decay + 1e-3, "grad_norm_x": 1 + decay,
                      "diversity_fake": 5 - decay, "diversity_real": 5.0, "modes_covered": min(step, 10),
                      "modes_total": 10}
        evaluation.update({"js_bound": math.log(2) * (1 - decay / 2)} if loss == "gan" else {"w_estimate": 3 * decay})
        lines.append(evaluation)
        if alarm and step == 5:
            lines.append({"kind": "alarm", **common, **alarm})
    for epoch in range(epochs + 1):
        grid = Image.new("RGB", (GRID_SIDE, GRID_SIDE), (20 * epoch, 100, 200))
        grid.save(path / "samples" / f"epoch_{epoch:03d}.png")
    if end:
        lines.append({"kind": "end", **common, "reason": end, "message": f"run {end}."})
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    alarms = [line for line in lines if line["kind"] == "alarm"]
    (path / "alarms.json").write_text(json.dumps(alarms))
    return path


VANISHING = {"name": "vanishing_gradient", "message": "The discriminator's gradient at the fakes fell below 1e-6.",
             "grad_norm_x": 1e-7}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    gan = make_run(root / "gan", loss="gan", alarm=VANISHING, end="alarm")
    wgan = make_run(root / "wgan", loss="wgan", epochs=12)
    return gan, wgan


@pytest.fixture(scope="module")
def report(runs):
    """The gan-vs-wgan report in its default place, written once for the tests that only read it."""
    return write_report(runs)


def embedded_pngs(html):
    return [Image.open(io.BytesIO(base64.b64decode(data, validate=True))) for data in DATA_URI.findall(html)]


def test_report_is_self_contained_with_every_image_inlined(report):
    html = report.read_text(encoding="utf-8")
    # Nothing to fetch: no URL scheme but data:, no external script, stylesheet or font.
    assert not re.search(r"(https?|file|ftp)://", html)
    assert not re.search(r"<(link|script)\b|@import|url\(", html)
    assert html.count("<img") == len(DATA_URI.findall(html))
    images = embedded_pngs(html)
    # curves.png, then gan's 4 grids (epochs 0-3), then wgan's 9 of 13 (epochs 0-12 every 1.5, rounded).
    assert len(images) == 1 + 4 + 9
    assert all(image.format == "PNG" for image in images)
    assert images[0].size == Image.open(report.parent / "curves.png").size
    assert all(image.size == (GRID_SIDE, GRID_SIDE) for image in images[1:])
    assert [int(e) for e in re.findall(r"<figcaption>epoch (\d+)", html)] == [0, 1, 2, 3, 0, 2, 3, 4, 6, 8, 9, 10, 12]


def test_report_and_curves_go_to_the_first_run_by_default(runs, report):
    assert report == runs[0] / "report.html"
    with Image.open(runs[0] / "curves.png") as curves:
        curves.verify()
        assert curves.format == "PNG" and curves.size[0] > 600


def test_summary_names_runs_losses_alarms_and_end_reasons(report):
    html = report.read_text(encoding="utf-8")
    assert "gan vs wgan" in html
    assert "vanishing_gradient" in html
    assert "The discriminator&#x27;s gradient at the fakes fell below 1e-6." in html
    assert "at step 5, epoch 2" in html
    assert "<b>alarm</b>: run alarm." in html and "<b>finished</b>: run finished." in html
    # Epochs done: an alarm stopped gan during epoch 3, wgan finished all 12.
    assert ">2 of 3<" in html and ">12 of 12<" in html


def test_alarm_only_in_alarms_json_is_reported(tmp_path):
    run = make_run(tmp_path / "run", loss="gan")
    alarm = {"kind": "alarm", "epoch": 1, "step": 3, "critic_steps": 3, "images_seen": 960, "seconds": 1.0,
             "name": "mode_collapse", "message": "Fakes are closer to each other than reals are."}
    (run / "alarms.json").write_text(json.dumps([alarm]))
    assert [a["name"] for a in load_run(run).alarms] == ["mode_collapse"]
    html = write_report([run], x="epoch").read_text(encoding="utf-8")
    assert "Fakes are closer to each other than reals are." in html


def test_truncated_last_metrics_line_is_dropped(tmp_path):
    run = make_run(tmp_path / "killed", loss="wgan", end=None)
    metrics = run / "metrics.jsonl"
    complete = metrics.read_text().count("\n")
    metrics.write_text(metrics.read_text() + '{"kind": "train", "epoch": 3, "step": 1')
    loaded = load_run(run)
    assert loaded.truncated and len(loaded.lines) == complete
    html = write_report([run]).read_text(encoding="utf-8")
    assert "cut short" in html and "still running, or killed" in html


def test_garbled_line_before_the_last_is_an_error(tmp_path):
    run = make_run(tmp_path / "run", loss="gan")
    (run / "metrics.jsonl").write_text('{"kind": "train"\n{"kind": "end"}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl', line 1: not valid JSON"):
        write_report([run])


def test_missing_run_directory_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run directory '.*nowhere' does not exist"):
        write_report([tmp_path / "nowhere"])


def test_folder_without_metrics_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"'.*empty' is not a run directory: it has no metrics.jsonl"):
        write_report([tmp_path / "empty"])


def test_garbled_config_is_an_error_naming_the_file(tmp_path):
    run = make_run(tmp_path / "run", loss="gan")
    (run / "config.json").write_text('{"loss": ')
    with pytest.raises(ValueError, match=r"config.json' is not valid JSON"):
        write_report([run])


def test_run_without_samples_alarms_or_metrics_still_reports(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.json").write_text('{"loss": "wgan-gp"}')
    (run / "metrics.jsonl").write_text("")
    html = write_report([run], x="epoch").read_text(encoding="utf-8")
    assert "No sample grids." in html and len(embedded_pngs(html)) == 1


def test_epoch_axis_is_images_seen_over_the_configured_epoch_length(runs):
    for run in map(load_run, runs):
        assert run.images_per_epoch == 1280  # exactly: read, not estimated


def test_epoch_length_of_a_config_without_one_is_estimated(runs):
    # 4 steps of 320 images per epoch, logged every step: the estimate of 1280 images per epoch is
    # off by at most half a logging interval spread over the completed epochs.
    for run, completed in zip(map(load_run, runs), (2, 11)):
        del run.config["epoch_images"]
        assert run.config.get("epoch_images") is None
        assert run.images_per_epoch == pytest.approx(1280, abs=320 / 2 / completed)


def test_bad_arguments(runs):
    with pytest.raises(ValueError, match="x should be one of"):
        write_report(runs, x="step")
    with pytest.raises(ValueError, match="at least one run directory"):
        write_report([])


def test_cli_prints_the_report_path(runs, tmp_path):
    out = tmp_path / "x.html"
    result = subprocess.run([sys.executable, "-m", "trainers.report", *map(str, runs), "--out", str(out)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(out)
    assert out.is_file() and (tmp_path / "curves.png").is_file()


def test_cli_error_is_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainers.report", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "nowhere' does not exist" in result.stderr and "Traceback" not in result.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Appended to a copy of the report: once the page has loaded, count the images that decoded and the
# resources fetched from anywhere but data: URIs.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  const fetched = performance.getEntriesByType("resource").filter((r) => !r.name.startsWith("data:")).length;
  document.body.setAttribute("data-probe", `images=${images.length} loaded=${loaded} fetched=${fetched}`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium/chromium-browser on PATH (apt-get install chromium)")
def test_report_renders_offline_in_headless_chromium(report, tmp_path):
    html = report.read_text(encoding="utf-8")
    page = tmp_path / "probed.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    offline = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--proxy-server=127.0.0.1:9",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *offline, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-probe="images=14 loaded=14 fetched=0"' in dom
    screenshot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, *offline, "--window-size=1200,2400", f"--screenshot={screenshot}",
                    report.as_uri()], capture_output=True, timeout=120)
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    # Not a blank page: the curves and the grids bring hundreds of colours.
    assert colours is not None and len(colours) > 200
