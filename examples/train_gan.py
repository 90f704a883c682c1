"""Train a DCGAN on anime faces (BCE, Adam 2e-4, beta = (0.5, 0.999)): the run that broke at epoch 18 in the anime-face experiment (docs/theory.md).

    .venv/bin/python examples/train_gan.py                           # embedded procedural faces, paper preset: hours on a CPU
    .venv/bin/python examples/train_gan.py --data faces.zip --epochs 25
    .venv/bin/python examples/train_gan.py --loss gan-minimax        # the original, saturating generator loss
    .venv/bin/python examples/train_gan.py --help                    # every setting and its default
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("train_gan.py")

from trainers.train import main

if __name__ == "__main__":
    main(loss="gan")
