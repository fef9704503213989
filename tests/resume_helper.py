"""Train a tiny VGG-11 for 3 epochs with a resume file, as a separate process (tests/test_resume.py).

    python tests/resume_helper.py DATA_ROOT STATE_FILE OUT_WEIGHTS [--kill-after-epoch K]

With ``--kill-after-epoch K`` the process sends itself SIGKILL right after the state of epoch K
is written, as a user's kill or a power cut would stop it.
"""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import common.training as training  # noqa: E402
from common.data import load_splits  # noqa: E402
from common.models import build_model  # noqa: E402
from common.training import Recipe, fit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_root")
    parser.add_argument("state")
    parser.add_argument("out")
    parser.add_argument("--kill-after-epoch", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.kill_after_epoch is not None:
        save = training.save_state

        def save_then_die(path, key, model, optimizer, epoch, *rest):
            save(path, key, model, optimizer, epoch, *rest)
            if epoch == args.kill_after_epoch:
                os.kill(os.getpid(), signal.SIGKILL)

        training.save_state = save_then_die
    splits = load_splits("cifar10", args.data_root, val_images=64, train_images=256, test_images=64)
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    history = fit(model, splits, Recipe(epochs=3, batch_size=64, lr=0.05), "cpu", progress=False,
                  desc="resume-test", resume=Path(args.state))
    torch.save({"state": model.state_dict(), "history": [h["train_loss"] for h in history]}, args.out)


if __name__ == "__main__":
    main()
