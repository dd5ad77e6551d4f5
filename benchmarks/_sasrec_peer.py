"""Peer side of benchmarks/sasrec.py: RecBole's SASRec (run in its own venv, numpy<2).

Reads the benchmark's interaction file (user, item, position), writes it as RecBole atomic
files (the position is the timestamp: RecBole orders each user's items by it), trains with
the driver's settings and prints one JSON line: test HR@10 / NDCG@10 under the requested
protocol, seconds per training epoch (without validation) and the number of epochs run.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--loss", required=True, choices=["CE", "BPR"])
    p.add_argument("--protocol", required=True, choices=["full", "sampled"])
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--maxlen", type=int, default=50)
    p.add_argument("--hidden", type=int, default=50)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--eval-step", type=int, default=1, help="validate every N epochs (RecBole's uni100 validation takes minutes)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    log = pd.read_csv(a.data)
    work = Path(tempfile.mkdtemp(prefix="recbole_"))
    (work / "bench").mkdir()
    inter = pd.DataFrame(
        {
            "user_id:token": log["user_id"].astype(str),
            "item_id:token": log["item_id"].astype(str),
            "timestamp:float": log["position"].astype(float),
        }
    )
    inter.to_csv(work / "bench" / "bench.inter", sep="\t", index=False)
    config = Config(
        model="SASRec",
        dataset="bench",
        config_dict={
            "data_path": str(work),
            "checkpoint_dir": str(work / "ckpt"),
            "show_progress": False,
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            "TIME_FIELD": "timestamp",
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "MAX_ITEM_LIST_LENGTH": a.maxlen,
            "hidden_size": a.hidden,
            "inner_size": a.hidden,
            "n_layers": a.blocks,
            "n_heads": a.heads,
            "hidden_dropout_prob": a.dropout,
            "attn_dropout_prob": a.dropout,
            "hidden_act": "relu",
            "layer_norm_eps": 1e-8,
            "loss_type": a.loss,
            "train_neg_sample_args": None if a.loss == "CE" else {"distribution": "uniform", "sample_num": 1},
            "epochs": a.epochs,
            "train_batch_size": a.batch_size,
            "eval_batch_size": 2048,
            "learning_rate": a.lr,
            "stopping_step": a.patience,
            "eval_step": a.eval_step,
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "group_by": "user",
                "mode": "full" if a.protocol == "full" else "uni100",
            },
            "metrics": ["Hit", "NDCG"],
            "topk": [10],
            "valid_metric": "NDCG@10",
            "device": "cpu",
            "use_gpu": False,
            "gpu_id": "",
            "worker": 0,
            "seed": a.seed,
            "reproducibility": True,
            "user_inter_num_interval": "[0,inf)",
            "item_inter_num_interval": "[0,inf)",
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(a.threads)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    epoch_seconds = []
    train_epoch = trainer._train_epoch

    def timed_epoch(*args, **kwargs):
        started = time.perf_counter()
        out = train_epoch(*args, **kwargs)
        epoch_seconds.append(time.perf_counter() - started)
        print(f"epoch {len(epoch_seconds)}: {epoch_seconds[-1]:.1f} s", file=sys.stderr, flush=True)
        return out

    trainer._train_epoch = timed_epoch
    started = time.perf_counter()
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - started
    # RecBole 1.2.1's own reload uses torch.load's old default (weights_only=False), refused by
    # torch >= 2.6; the checkpoint is the file this run just wrote, so it is loaded here.
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    started_eval = time.perf_counter()
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    print(f"test evaluation {time.perf_counter() - started_eval:.1f} s", file=sys.stderr)
    print(
        json.dumps(
            {
                "HR@10": float(result["hit@10"]),
                "NDCG@10": float(result["ndcg@10"]),
                "sec_per_epoch": sum(epoch_seconds) / len(epoch_seconds),
                "epochs": len(epoch_seconds),
                "fit_seconds": fit_seconds,
                "n_params": sum(p.numel() for p in model.parameters()),
                "threads": torch.get_num_threads(),
                "pid": os.getpid(),
            }
        )
    )


if __name__ == "__main__":
    main()
