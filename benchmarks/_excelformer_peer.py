"""Peer side of benchmarks/excelformer.py: pytorch-frame's ExcelFormer (run in its own venv).

Reads the split written by the driver, trains with pytorch-frame's recipe (its example:
CatToNumTransform + MutualInformationSort, Adam + ExponentialLR(0.95)), without mixup, and
prints one JSON line: test metric at the best validation epoch, seconds per epoch (training
+ validation pass) and prediction rows/second on the test rows.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torch_frame
from torch_frame.data import DataLoader, Dataset
from torch_frame.nn import ExcelFormer
from torch_frame.transforms import CatToNumTransform, MutualInformationSort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--split", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--d-token", type=int, required=True)
    p.add_argument("--n-heads", type=int, required=True)
    p.add_argument("--n-blocks", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    df = pd.read_parquet(a.split)
    part = df.pop("__part__").to_numpy()
    target = "__target__"
    classification = a.task == "classification"
    stypes = {
        c: (torch_frame.numerical if pd.api.types.is_numeric_dtype(df[c]) else torch_frame.categorical)
        for c in df.columns
        if c != target
    }
    stypes[target] = torch_frame.categorical if classification else torch_frame.numerical
    if classification:
        df[target] = df[target].astype(str)
    dataset = Dataset(df, col_to_stype=stypes, target_col=target)
    dataset.materialize()
    frames = {k: dataset[torch.from_numpy(np.flatnonzero(part == k))].tensor_frame for k in ("train", "val", "test")}

    cat = CatToNumTransform()
    cat.fit(frames["train"], dataset.col_stats)
    frames = {k: cat(v) for k, v in frames.items()}
    mis = MutualInformationSort(task_type=dataset.task_type)
    mis.fit(frames["train"], cat.transformed_stats)
    frames = {k: mis(v) for k, v in frames.items()}

    out_channels = dataset.num_classes if classification else 1
    model = ExcelFormer(
        in_channels=a.d_token,
        out_channels=out_channels,
        num_layers=a.n_blocks,
        num_cols=frames["train"].num_cols,
        num_heads=a.n_heads,
        residual_dropout=0.0,
        diam_dropout=0.3,
        aium_dropout=0.0,
        col_stats=mis.transformed_stats,
        col_names_dict=frames["train"].col_names_dict,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
    train_loader = DataLoader(frames["train"], batch_size=a.batch_size, shuffle=True)

    @torch.no_grad()
    def predict(tf):
        model.eval()
        return torch.cat([model(b) for b in DataLoader(tf, batch_size=4096)])

    def score(pred, y):
        if classification:
            return float((pred.argmax(-1) == y).float().mean())
        return float(F.mse_loss(pred.view(-1), y.view(-1)) ** 0.5)

    better = (lambda s, b: s > b) if classification else (lambda s, b: s < b)
    best_val, best_test, epoch_seconds = None, None, []
    for _ in range(a.epochs):
        started = time.perf_counter()
        model.train()
        for tf in train_loader:
            pred = model(tf)
            loss = F.cross_entropy(pred, tf.y) if classification else F.mse_loss(pred.view(-1), tf.y.view(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val = score(predict(frames["val"]), frames["val"].y)
        epoch_seconds.append(time.perf_counter() - started)
        scheduler.step()
        if best_val is None or better(val, best_val):
            best_val, best_test = val, score(predict(frames["test"]), frames["test"].y)
    started = time.perf_counter()
    predict(frames["test"])
    rows_per_second = len(frames["test"].y) / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "test": best_test,
                "val": best_val,
                "sec_per_epoch": float(np.mean(epoch_seconds)),
                "predict_rows_per_s": rows_per_second,
                "n_params": sum(p.numel() for p in model.parameters()),
            }
        )
    )


if __name__ == "__main__":
    main()
