"""The `tabm` package's TabM trained as its official example does; run by benchmarks/tabm_vs_official.py in the
peer's own virtual environment (numpy, torch, tabm). Reads the prepared arrays (.npz) and prints
one JSON line: test metric at the best validation epoch, seconds per epoch, prediction rows/s.

The loop follows the official example: ``TabM.make`` with the given k / widths / depth, AdamW
(lr 2e-3, weight decay 3e-4, none on biases and 1-d parameters), one random permutation of the
training rows per epoch shared by the members, the loss the mean of the members' losses, the
prediction the mean of their probabilities (or values), evaluation batches of 32,768 rows; the
validation criterion is the ensemble's loss (log loss / MSE), as in our engine. ``--check FILE``
instead compares the package's module with ours given the same weights.
"""

import argparse
import json
import math
import time

import numpy as np
import tabm
import torch
import torch.nn.functional as F


def check(path: str) -> None:
    """Load our module's weights (renamed to the package's parameter names) into ``TabM.make`` and
    print the largest difference between the two modules' outputs on the same input."""
    d = np.load(path)
    shape = json.loads(str(d["shape"]))
    model = tabm.TabM.make(**shape).eval()
    model.load_state_dict({k[2:]: torch.as_tensor(d[k]) for k in d.files if k.startswith("w:")})
    x_num, x_cat = torch.as_tensor(d["x_num"]), torch.as_tensor(d["x_cat"])
    with torch.no_grad():
        out = model(x_num, x_cat).numpy()
    print(json.dumps({"max_abs_diff": float(np.abs(out - d["out"]).max()), "max_abs_out": float(np.abs(out).max())}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--check", help="compare with our module's outputs (an .npz written by benchmarks/tabm_vs_official.py)"
    )
    p.add_argument("--data")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--d-block", type=int, default=512)
    p.add_argument("--n-blocks", type=int, default=3)
    p.add_argument("--arch-type", default="tabm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.check:
        return check(a.check)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = np.load(a.data)
    task = str(d["task"])
    n_classes = int(d["n_classes"])
    parts = {
        part: (
            torch.as_tensor(d[f"x_num_{part}"], dtype=torch.float32),
            torch.as_tensor(d[f"x_cat_{part}"], dtype=torch.long),
            torch.as_tensor(d[f"y_{part}"]),
        )
        for part in ("train", "val", "test")
    }
    cardinalities = [int(c) for c in d["cardinalities"]]
    n_num = parts["train"][0].shape[1]
    d_out = 1 if task == "regression" else n_classes
    model = tabm.TabM.make(
        n_num_features=n_num,
        cat_cardinalities=cardinalities,
        d_out=d_out,
        k=a.k,
        d_block=a.d_block,
        n_blocks=a.n_blocks,
        arch_type=a.arch_type,
    )
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and not n.endswith("bias"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 3e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-3
    )

    def apply(x_num, x_cat):
        return model(x_num, x_cat if cardinalities else None).float()

    def loss_fn(out, y):  # out (n, k, d_out): every member trained on its own loss
        k = out.shape[1]
        if task == "regression":
            return F.mse_loss(out.squeeze(-1).flatten(0, 1), y.repeat_interleave(k))
        return F.cross_entropy(out.flatten(0, 1), y.long().repeat_interleave(k))

    @torch.inference_mode()
    def predict(part):
        model.eval()
        x_num, x_cat, _ = parts[part]
        outs = [apply(x_num[i : i + 32768], x_cat[i : i + 32768]) for i in range(0, len(x_num), 32768)]
        out = torch.cat(outs)
        if task == "regression":
            return out.squeeze(-1).mean(1)
        return torch.softmax(out, dim=-1).mean(1)  # the mean of the members' probabilities

    def criterion(pred, y):
        if task == "regression":
            return float(F.mse_loss(pred, y))
        return float(F.nll_loss(torch.log(pred.clamp_min(1e-12)), y.long()))

    x_num, x_cat, y = parts["train"]
    generator = torch.Generator().manual_seed(a.seed)
    best, best_state, seconds = math.inf, None, []
    for _ in range(a.epochs):
        started = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(y), generator=generator).split(a.batch_size):
            optimizer.zero_grad()
            loss_fn(apply(x_num[idx], x_cat[idx]), y[idx]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # (the example's gradient_clipping_norm)
            optimizer.step()
        val = criterion(predict("val"), parts["val"][2])
        seconds.append(time.perf_counter() - started)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    started = time.perf_counter()
    pred = predict("test")
    rows_per_s = len(pred) / (time.perf_counter() - started)
    y_test = parts["test"][2]
    if task == "regression":  # the targets are standardized: RMSE in the target's units
        test = float(torch.sqrt(F.mse_loss(pred, y_test))) * float(d["y_scale"])
    else:
        test = float((pred.argmax(1) == y_test.long()).float().mean())
    n_params = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            {
                "test": test,
                "sec_per_epoch": float(np.mean(seconds)),
                "predict_rows_per_s": rows_per_s,
                "n_params": n_params,
            }
        )
    )


if __name__ == "__main__":
    main()
