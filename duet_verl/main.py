"""``python -m duet_verl.main [hydra overrides]``: the command users type to train; the trainer lives in
``duet_verl/train/`` (``duet_verl.train.main``)."""

from duet_verl.train.main import main

if __name__ == "__main__":
    main()
