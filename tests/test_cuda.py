"""The CUDA-only paths of the training engine: mixed precision and the trial step that measures memory.

They skip with a reason on a machine without a CUDA device (CI has none); run them where there is one:
`python -m pytest -m cuda`.
"""
from __future__ import annotations

import math

import pytest
import torch

from core.checkpoint import load_checkpoint
from core.train import estimate_batch_memory, memory_in_use, setup, train, train_step
from models.registry import build_model
from tests.test_train import SMALL, config, pattern_splits

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                   reason="no CUDA device: torch.cuda.is_available() is False")]

CUDA = torch.device("cuda")


def output_dtypes(run_it) -> set[torch.dtype]:
    """The dtypes of every convolution's output while `run_it()` runs."""
    seen: set[torch.dtype] = set()

    def hook(module, _inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        run_it()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("amp, dtype", [(True, torch.float16), (False, torch.float32)])
def test_mixed_precision_switch(tmp_path, amp, dtype):
    splits = pattern_splits(8, 2)
    run = setup(config(tmp_path, amp=amp), splits, CUDA)
    assert run.use_amp is amp and run.scaler.is_enabled() is amp
    batch = torch.arange(16).numpy()
    losses = []
    assert output_dtypes(lambda: losses.append(train_step(run, batch))) == {dtype}
    loss, correct = losses[0]
    assert math.isfinite(loss) and 0 <= correct <= 16
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # the weights stay float32


def test_a_mixed_precision_run_learns_and_saves_float32_weights(tmp_path):
    splits = pattern_splits(40, 10, seed=1)
    cfg = config(tmp_path, arch_args={"width": 8, "hidden": 64, "dropout": 0.1}, epochs=6, batch_size=16, lr=0.02,
                 seed=1, amp=True)
    progress = train(cfg, splits, device=CUDA)
    assert progress.status == "finished"
    assert all(math.isfinite(loss) for loss in progress.iteration_loss)
    assert progress.epochs[-1].train_loss < progress.epochs[0].train_loss
    assert progress.best_accuracy > 2 / 7  # chance is 1/7
    assert 0 < progress.memory_bytes <= memory_in_use(CUDA)  # the GPU's peak, not the process's
    checkpoint = load_checkpoint(cfg.out)
    assert all(value.dtype in (torch.float32, torch.int64) for value in checkpoint.state_dict.values())
    checkpoint.build()


def test_the_trial_step_measures_a_batch_on_cuda():
    small, measured = estimate_batch_memory("face_vgg", SMALL, 16, device=CUDA)
    large, _ = estimate_batch_memory("face_vgg", SMALL, 256, device=CUDA)
    assert measured is True and 0 < small < large
    parameters = sum(p.numel() for p in build_model("face_vgg", 7, **SMALL).parameters())
    assert small >= 4 * parameters  # at least the gradients (the weights were there before the step)
    estimate, measured = estimate_batch_memory("face_vgg", SMALL, 16, device=CUDA, measure=False)
    assert measured is False and estimate > 0  # while a job holds the GPU, no trial step


def test_a_batch_that_does_not_fit_falls_back_to_the_estimate():
    before = torch.cuda.memory_allocated(CUDA)
    need, measured = estimate_batch_memory("face_vgg", {}, 2**20, device=CUDA)  # its input alone is 9 GiB
    assert measured is False and need > torch.cuda.get_device_properties(CUDA).total_memory
    # the failed trial left nothing behind, not even in the caching allocator
    assert torch.cuda.memory_allocated(CUDA) <= before + 2**20
    assert torch.cuda.memory_reserved(CUDA) - torch.cuda.memory_allocated(CUDA) < 2**30
