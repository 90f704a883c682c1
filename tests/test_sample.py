"""trainers.sample: images from a run's generator, as files or a grid, and the three-line way to get the generator."""

import pytest
import torch
from PIL import Image

from trainers.config import TrainConfig
from trainers.sample import generate, load_generator, main
from trainers.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "run"
    train(TrainConfig(image_size=16, nz=8, ngf=8, ndf=8, batch_size=8, procedural_images=200, holdout_images=20,
                      epoch_images=80, epochs=1, eval_every=1000, progress=False, device="cpu", out=str(out),
                      monitor=False))
    return out


def test_the_documented_three_lines_give_images(run):
    generator = load_generator(run)
    images = generator(generator.noise(16))
    assert images.shape == (16, 3, 16, 16) and images.abs().max() <= 1 and not generator.training


def test_the_generator_is_the_checkpoints_and_plain_torch_load_reads_it(run):
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["generator"]
    loaded = load_generator(run).state_dict()
    assert state.keys() == loaded.keys() and all(torch.equal(state[key], loaded[key]) for key in state)


def test_the_same_seed_gives_the_same_images_and_another_seed_others(run):
    generator = load_generator(run)
    assert torch.equal(generate(generator, 7, seed=3), generate(generator, 7, seed=3, batch=2))
    assert not torch.equal(generate(generator, 7, seed=3), generate(generator, 7, seed=4))


def test_a_png_out_is_one_grid_and_anything_else_a_folder_of_images(run, tmp_path, capsys):
    main([str(run), "--n", "9", "--out", str(tmp_path / "grid.png")])
    assert Image.open(tmp_path / "grid.png").size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)  # 3 x 3, padding 2
    main([str(run), "--n", "3", "--out", str(tmp_path / "images")])
    files = sorted(path.name for path in (tmp_path / "images").iterdir())
    assert files == ["0000.png", "0001.png", "0002.png"] and Image.open(tmp_path / "images" / "0000.png").size == (16, 16)
    assert "generator step" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, words", [
    (["--n", "0"], "--n should be a positive integer"),
    (["--seed", "-1"], "--seed should be >= 0"),
])
def test_bad_arguments_are_one_error_line(run, tmp_path, capsys, arguments, words):
    with pytest.raises(SystemExit) as stop:
        main([str(run), "--out", str(tmp_path / "x.png"), *arguments])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and words in error and error.count("\n") == 1


def test_a_folder_that_is_no_run_or_a_damaged_checkpoint_is_one_error_line(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert stop.value.code == 2 and "is not a run directory" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    (damaged / "checkpoints").mkdir(parents=True)
    (damaged / "config.json").write_bytes((run / "config.json").read_bytes())
    (damaged / "checkpoints" / "last.pt").write_bytes((run / "checkpoints" / "last.pt").read_bytes()[:-10])
    with pytest.raises(SystemExit) as stop:
        main([str(damaged), "--out", str(tmp_path / "x.png")])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "is damaged" in error and error.count("\n") == 1
