"""Train the WGAN paper's Algorithm 1 on anime faces (RMSProp 5e-5, clip 0.01, m = 64, n_critic = 5).

    .venv/bin/python examples/train_wgan.py                          # embedded procedural faces, paper preset: hours on a CPU
    .venv/bin/python examples/train_wgan.py --data faces.zip --epochs 25
    .venv/bin/python examples/train_wgan.py --preset quick           # small nets, 32x32: learning in minutes on a CPU
    .venv/bin/python examples/train_wgan.py --loss wgan-gp           # gradient penalty instead of clipping
    .venv/bin/python examples/train_wgan.py --resume runs/wgan-...   # continue a stopped run
    .venv/bin/python examples/train_wgan.py --help                   # every setting and its default
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("train_wgan.py")

from trainers.train import main

if __name__ == "__main__":
    main(loss="wgan")
