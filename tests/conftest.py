"""Shared test setup: offline Hugging Face hub, quiet tqdm, fixed threads."""

import os

# Without this every hub lookup retries DNS for about 50 s on a machine with no internet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# One intra-op thread: on a shared 2-core machine tiny tensor ops run far faster without thread contention.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
