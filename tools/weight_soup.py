"""A greedy weight soup: average fine-tuned siblings' weights while validation accuracy improves.

    FACELAB_DATA_DIR=... python -m tools.weight_soup --data $FACELAB_DATA_DIR/fer2013.npz --labels ferplus \
        --out runs/ferplus_soup.pt runs/ferplus_cycle2.pt runs/ferplus_mild.pt ...

The checkpoints must share one network and one class list, and should be fine-tuned from one starting point
(Wortsman et al. 2022, "Model soups"). They are sorted by validation accuracy; each is added to the soup
only if the averaged weights score higher on validation. Batch-norm statistics are recomputed for every
soup on a fixed sample of training images (`torch.optim.swa_utils.update_bn`), since averaged weights
no longer match any one network's running statistics.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.data import LABEL_SOURCES, Dataset, load_npz
from core.evaluate import evaluate_model
from core.metrics import Metrics
from core.presets import to_network_input


def averaged(checkpoints: list[Checkpoint], bn_images: np.ndarray, batch_size: int = 256) -> nn.Module:
    """The network with the mean of the checkpoints' weights and batch-norm statistics measured anew."""
    first = checkpoints[0]
    model = first.build()
    model.load_state_dict({name: (sum(c.state_dict[name].float() for c in checkpoints) / len(checkpoints))
                           .to(value.dtype) if value.is_floating_point() else value
                           for name, value in first.state_dict.items()})
    arch = first.meta["arch"]
    update_bn([to_network_input(torch.from_numpy(bn_images[start:start + batch_size]).float(), arch)
               for start in range(0, len(bn_images), batch_size)], model)
    return model.eval()


def greedy_soup(checkpoints: list[Checkpoint], val: Dataset, bn_images: np.ndarray,
                report=print) -> tuple[nn.Module, list[int], Metrics]:
    """The greedy soup of `checkpoints` (best on validation first), its members' indices and its validation
    metrics."""
    device, arch = torch.device("cpu"), checkpoints[0].meta["arch"]

    def metrics(model: nn.Module) -> Metrics:
        return evaluate_model(model, arch, val, device)[0]

    alone = [metrics(c.build()).accuracy for c in checkpoints]
    order = sorted(range(len(checkpoints)), key=lambda i: -alone[i])
    members = [order[0]]
    best_model = averaged([checkpoints[order[0]]], bn_images)
    best = metrics(best_model)
    report(f"{order[0]}: alone {alone[order[0]]:.4f}, with new batch-norm statistics {best.accuracy:.4f}")
    for index in order[1:]:
        model = averaged([checkpoints[i] for i in [*members, index]], bn_images)
        score = metrics(model)
        kept = score.accuracy > best.accuracy
        report(f"+{index} (alone {alone[index]:.4f}): soup {score.accuracy:.4f}{' kept' if kept else ''}")
        if kept:
            members, best, best_model = [*members, index], score, model
    return best_model, members, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="fer2013-style .npz")
    parser.add_argument("--labels", choices=LABEL_SOURCES, default="fer2013")
    parser.add_argument("--bn-images", type=int, default=8192, help="training images for batch-norm statistics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    splits = load_npz(args.data, args.labels)
    chosen = np.random.default_rng(args.seed).choice(len(splits.train), min(args.bn_images, len(splits.train)),
                                                     replace=False)
    checkpoints = [load_checkpoint(path) for path in args.checkpoints]
    model, members, metrics = greedy_soup(checkpoints, splits.val, splits.train.x[np.sort(chosen)])
    first = checkpoints[members[0]]
    meta = first.meta | {"soup": [args.checkpoints[i] for i in members], "metrics": {"val": metrics.to_dict()}}
    save_checkpoint(args.out, model, meta)
    print(json.dumps({"members": meta["soup"], "val_accuracy": metrics.accuracy, "checkpoint": args.out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
