"""Training speed of the chest X-ray network (MONAI DenseNet-121, 1×224×224, 18 outputs) through the shared fit
loop: seconds per epoch and images/s, fp32 against bf16 autocast, on the device torch finds.

    python -m benchmarks.training_throughput                       # GPU: 512 images, batch 32; CPU: 64, batch 16
    python -m benchmarks.training_throughput --images 2048 --batch-size 64 --precisions fp32,bf16

Data are generated radiographs (``training/data/chest_xray.py``), cached before timing. Each precision trains
one warm-up epoch (not reported: cuDNN autotuning, allocator growth) and then ``--epochs`` timed epochs from the
same initial weights. Writes ``benchmarks/results/<device>-<date>-training-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt

import torch
from monai.data import CacheDataset

from benchmarks.reporting import command_line, device_name, write_results
from cds.models.nets import build_network
from cds.models.spec import Activation, Architecture, NetworkSpec
from cds.pipelines.imaging.radiograph import to_model_input
from training.core.config import TrainConfig
from training.core.distributed import init_world
from training.core.loop import fit
from training.data.chest_xray import LABELS, generate

NETWORK = NetworkSpec(architecture=Architecture.DENSENET121,
                      params={"spatial_dims": 2, "in_channels": 1, "out_channels": len(LABELS)},
                      output_activation=Activation.NONE)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its results."""
    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512 if gpu else 64)
    parser.add_argument("--batch-size", type=int, default=32 if gpu else 16)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per precision")
    parser.add_argument("--precisions", default="fp32,bf16" if gpu else "fp32")
    args = parser.parse_args(argv)
    world = init_world("auto")
    data = generate(args.images, seed=0)
    items = [{"image": to_model_input(x[0], 224), "label": y} for x, y in zip(data.images, data.labels, strict=True)]
    dataset = CacheDataset(items, transform=None, progress=False)
    validation = CacheDataset(items[: args.batch_size], transform=None, progress=False)
    rows = []
    for precision in args.precisions.split(","):
        torch.manual_seed(0)
        model = build_network(NETWORK)
        config = TrainConfig(epochs=args.epochs + 1, batch_size=args.batch_size, lr=1e-3,
                             precision=precision, channels_last=True)  # type: ignore[arg-type]
        result = fit(model, dataset, validation, loss_fn=torch.nn.functional.binary_cross_entropy_with_logits,
                     config=config, world=world)
        timed = result.history[1:]
        seconds = sum(r.seconds for r in timed) / len(timed)
        rows.append({"precision": precision, "seconds_per_epoch": seconds,
                     "images_per_second": args.images / seconds, "epochs_timed": len(timed)})
    device = device_name()
    report = {"device": device, "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.training_throughput", argv),
              "network": "monai.DenseNet121 1x224x224 -> 18", "images": args.images,
              "batch_size": args.batch_size, "torch": torch.__version__, "results": rows}
    table = "\n".join(
        [f"# Training throughput: DenseNet-121 1×224×224, {args.images} images, batch {args.batch_size}",
         "", f"Device: {device}; command: `{report['command']}`", "",
         "| precision | s / epoch | images/s |", "| --- | --- | --- |"]
        + [f"| {r['precision']} | {r['seconds_per_epoch']:.2f} | {r['images_per_second']:.1f} |" for r in rows]
    ) + "\n"
    write_results("training-throughput", report, table)


if __name__ == "__main__":
    main()
