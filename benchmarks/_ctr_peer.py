"""Peer side of benchmarks/ctr.py: FuxiCTR's AutoInt+ / FinalMLP (run in FuxiCTR's own venv).

    ../peers/fuxictr/bin/python benchmarks/_ctr_peer.py --split SPLIT.parquet \
        --model {autoint_plus,finalmlp} --params '{"...": ...}' --threads 1 --seed 0 \
        [--max-epochs N] [--categorical col1,col2] [--fuxictr-repo PATH]

SPLIT.parquet holds the feature columns, ``__target__`` (0/1) and ``__part__``
("train" / "val" / "test"). Columns of pandas dtype object / string / category / bool (as read
back, or as written per the parquet's pandas metadata: a categorical of int ids is stored as
int64) and those named in ``--categorical`` are FuxiCTR "categorical" features (dtype str,
min_categr_count 1, FuxiCTR's default fill_na ""), the other columns are "numeric"
(dtype float, fill_na 0, normalizer StandardScaler). Numeric columns come first, then the
categorical ones (the order of our FieldEmbedding). FuxiCTR's FeatureProcessor
(preprocess -> fit on the train part only -> transform) builds the data; it is saved as npz
and read back with RankDataLoader (data_format "npz": NpzDataLoader, in memory).

The pip wheel of fuxictr has no AutoInt / FinalMLP (its model_zoo holds only LongCTR and
multitask), so their sources are extracted at run time from a git mirror of
reczoo/FuxiCTR (``git archive``) into a temporary directory and imported from there. The
commit is the mirror's HEAD unless HEAD's fuxictr/version.py is newer than the installed
fuxictr; then it is the tag ``v<installed version>`` or else the last commit before the
version was bumped past the installed one. The model folder's own fuxictr_version.py
requirement (e.g. ``>= 2.3.7``) is checked against the installed version.

Training is FuxiCTR's own BaseModel.fit, unchanged: Adam, loss + regularization_loss()
at every step, gradient-norm clipping at 10, learning rate x 0.1 (floor 1e-6) at every
validation (each epoch end) whose monitored AUC does not beat the best by 1e-6,
early stopping after ``early_stop_patience`` such validations in a row, then the best
checkpoint is reloaded. Checkpoints, feature map and data go to a temporary directory.

Hyperparameters (--params, JSON). FuxiCTR's own names are accepted as they are; our
estimators' names (tabular_suite.tabular.models, _CTRParams and subclasses) are
translated:

    ours (tabular_suite)         FuxiCTR
    --------------------------   ------------------------------------------------------
    lr                           learning_rate                 (default 1e-3)
    batch_size                   batch_size                    (default 1024)
    embedding_l2                 embedding_regularizer         (default 1e-5, L2 on all
                                                                embedding tables)
    max_epochs                   epochs                        (default 100; --max-epochs
                                                                overrides)
    patience                     early_stop_patience           (default 2)
    grad_clip                    max_gradient_norm (fit arg)   (default 10)
    embedding_dim                embedding_dim                 (autoint 16, finalmlp 10)
    net_regularizer              net_regularizer               (default 0)
    weight_decay, scheduler,     accepted only at their FuxiCTR-equivalent values
      num_threads, random_state    (0, "plateau", --threads, --seed): FuxiCTR has no
                                   weight decay nor another schedule
  autoint_plus:
    n_heads                      num_heads                     (2)
    attention_layers             attention_layers              (3)
    attention_dim                attention_dim                 (32)
    use_residual / use_scale /   same names                    (True / False / False)
      layer_norm
    use_dnn (False -> no DNN)    dnn_hidden_units = []         (AutoInt+: use_dnn True)
    dnn_hidden                   dnn_hidden_units              ([400, 400, 400])
    attention_dropout,           net_dropout                   (0; FuxiCTR has one rate
      dnn_dropout                                               for both: they must agree)
    batch_norm                   batch_norm                    (False)
    (use_wide)                   use_wide                      (False)
  finalmlp:
    mlp1_hidden / mlp2_hidden    mlp1_hidden_units / mlp2_hidden_units ([400]*3 / [800])
    mlp1_dropout / mlp2_dropout  same names                    (0 / 0)
    batch_norm                   mlp1_batch_norm and mlp2_batch_norm (False)
    use_gates                    use_fs                        (True)
    gate_hidden                  fs_hidden_units               ([800])
    gate_features_1 / _2         fs1_context / fs2_context     ([] / []; column names)
    n_heads                      num_heads                     (50)

Fixed: optimizer "adam", loss "binary_crossentropy", metrics ["logloss", "AUC"], monitor
"AUC" (mode max), shuffle True, gpu -1, verbose 0, DataLoader num_workers 0 (everything in
the one process/thread; FuxiCTR's configs use 3 loader workers: --num-workers).

The last stdout line is one JSON object: test_auc, test_logloss, sec_per_epoch (mean wall
seconds of BaseModel.train_epoch minus the validation run inside it, eval_step),
epochs, best_epoch, predict_rows_per_s (test rows / seconds of model.predict over the
prepared test loader), n_params (trainable parameters, embeddings included, as
BaseModel.count_parameters), fuxictr_version, model_zoo_commit. Logs go to stderr.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# A bare git mirror of reczoo/FuxiCTR (its model_zoo is loaded from it at run time, never committed);
# relative to the repository root unless FUXICTR_REPO says otherwise.
DEFAULT_REPO = os.environ.get("FUXICTR_REPO", "../.mirror/reczoo+FuxiCTR/repo")

MODELS = {
    # our name: (model_zoo folder, class name)
    "autoint_plus": ("AutoInt", "AutoInt"),
    "finalmlp": ("FinalMLP", "FinalMLP"),
}

COMMON_DEFAULTS = {
    "batch_size": 1024,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "loss": "binary_crossentropy",
    "metrics": ["logloss", "AUC"],
    "monitor": "AUC",
    "monitor_mode": "max",
    "embedding_regularizer": 1e-5,
    "net_regularizer": 0,
    "early_stop_patience": 2,
    "epochs": 100,
    "shuffle": True,
    "gpu": -1,
    "task": "binary_classification",
    "max_gradient_norm": 10.0,
}
MODEL_DEFAULTS = {
    "autoint_plus": {
        "embedding_dim": 16,
        "attention_layers": 3,
        "num_heads": 2,
        "attention_dim": 32,
        "use_residual": True,
        "use_scale": False,
        "layer_norm": False,
        "dnn_hidden_units": [400, 400, 400],
        "dnn_activations": "ReLU",
        "net_dropout": 0,
        "batch_norm": False,
        "use_wide": False,
    },
    "finalmlp": {
        "embedding_dim": 10,
        "mlp1_hidden_units": [400, 400, 400],
        "mlp1_hidden_activations": "ReLU",
        "mlp1_dropout": 0,
        "mlp1_batch_norm": False,
        "mlp2_hidden_units": [800],
        "mlp2_hidden_activations": "ReLU",
        "mlp2_dropout": 0,
        "mlp2_batch_norm": False,
        "use_fs": True,
        "fs_hidden_units": [800],
        "fs1_context": [],
        "fs2_context": [],
        "num_heads": 50,
    },
}
# ours -> FuxiCTR (one-to-one renames)
COMMON_RENAMES = {
    "lr": "learning_rate",
    "embedding_l2": "embedding_regularizer",
    "max_epochs": "epochs",
    "patience": "early_stop_patience",
    "grad_clip": "max_gradient_norm",
}
MODEL_RENAMES = {
    "autoint_plus": {"n_heads": "num_heads", "dnn_hidden": "dnn_hidden_units"},
    "finalmlp": {
        "n_heads": "num_heads",
        "mlp1_hidden": "mlp1_hidden_units",
        "mlp2_hidden": "mlp2_hidden_units",
        "use_gates": "use_fs",
        "gate_hidden": "fs_hidden_units",
        "gate_features_1": "fs1_context",
        "gate_features_2": "fs2_context",
    },
}
LIST_KEYS = {
    "dnn_hidden_units",
    "mlp1_hidden_units",
    "mlp2_hidden_units",
    "fs_hidden_units",
    "fs1_context",
    "fs2_context",
    "metrics",
}


def log(msg):
    print(f"[ctr_peer] {msg}", file=sys.stderr, flush=True)


def translate_params(model, raw, threads, seed):
    """--params JSON (our names or FuxiCTR's) -> FuxiCTR keyword arguments."""
    p = dict(COMMON_DEFAULTS)
    p.update(MODEL_DEFAULTS[model])
    known = set(p) | set(COMMON_RENAMES) | set(MODEL_RENAMES[model])
    raw = dict(raw)
    # keys that only make sense at FuxiCTR's (fixed) setting
    for key, ok in (
        ("weight_decay", lambda v: not v),
        ("scheduler", lambda v: v in (None, "plateau")),
        ("num_threads", lambda v: v in (None, threads)),
        ("random_state", lambda v: v in (None, seed)),
        ("seed", lambda v: v in (None, seed)),
    ):
        if key in raw:
            value = raw.pop(key)
            if not ok(value):
                raise SystemExit(
                    f"--params {key}={value!r}: FuxiCTR's recipe cannot do that "
                    f"(allowed: FuxiCTR's behaviour; threads/seed come from --threads/--seed)"
                )
    if model == "autoint_plus":
        use_dnn = raw.pop("use_dnn", True)
        drops = {k: raw.pop(k) for k in ("attention_dropout", "dnn_dropout") if k in raw}
        if drops:
            if "net_dropout" in raw:
                drops["net_dropout"] = raw.pop("net_dropout")
            if len({float(v) for v in drops.values()}) > 1:
                raise SystemExit(f"FuxiCTR's AutoInt has one dropout rate (net_dropout) for attention and DNN: {drops}")
            raw["net_dropout"] = next(iter(drops.values()))
        if not use_dnn:
            raw["dnn_hidden_units"] = []
    if model == "finalmlp" and "batch_norm" in raw:
        bn = raw.pop("batch_norm")
        raw.setdefault("mlp1_batch_norm", bn)
        raw.setdefault("mlp2_batch_norm", bn)
    unknown = sorted(k for k in raw if k not in known)
    if unknown:
        raise SystemExit(f"--params: unknown keys for {model}: {unknown} (see the mapping at the top of {__file__})")
    renames = {**COMMON_RENAMES, **MODEL_RENAMES[model]}
    for key, value in raw.items():
        target = renames.get(key, key)
        if key != target and target in raw and raw[target] != value:
            raise SystemExit(f"--params gives both {key}={value!r} and {target}={raw[target]!r}")
        if target in LIST_KEYS and value is not None and not isinstance(value, str):
            value = list(value)
        if target in LIST_KEYS and value is None:
            value = []
        p[target] = value
    for key in ("embedding_regularizer", "net_regularizer"):
        # FuxiCTR's get_regularizer treats a float as L2 weight; ints (e.g. 0) as "none"
        if isinstance(p[key], (int, float)) and not isinstance(p[key], bool):
            p[key] = float(p[key]) if p[key] else 0
    p["seed"] = seed
    return p


# ---------------------------------------------------------------------------- model_zoo


def _git(repo, *args):
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True, text=True).stdout


def _vtuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:4])


def _version_at(repo, commit):
    try:
        text = _git(repo, "show", f"{commit}:fuxictr/version.py")
    except subprocess.CalledProcessError:
        return None
    m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    return m.group(1) if m else None


def resolve_commit(repo, installed):
    """The mirror commit whose fuxictr matches the installed version (see module doc)."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    head_version = _version_at(repo, head)
    if head_version is None or _vtuple(head_version) <= _vtuple(installed):
        return head, head_version
    try:
        tagged = _git(repo, "rev-parse", f"v{installed}^{{commit}}").strip()
        return tagged, _version_at(repo, tagged)
    except subprocess.CalledProcessError:
        pass
    # newest commit on HEAD's history whose version is <= installed: the parent of the oldest
    # commit (newest first list) that still has a newer version
    candidate = head
    for commit in _git(repo, "log", "--format=%H", head, "--", "fuxictr/version.py").split():
        if _vtuple(_version_at(repo, commit) or "0") > _vtuple(installed):
            candidate = commit + "^"
        else:
            break
    commit = _git(repo, "rev-parse", candidate).strip()
    return commit, _version_at(repo, commit)


def load_model_class(repo, model, installed, workdir):
    folder, cls_name = MODELS[model]
    commit, mirror_version = resolve_commit(repo, installed)
    zoo = f"model_zoo/{folder}"
    tar_path = Path(workdir) / "zoo.tar"
    with open(tar_path, "wb") as fh:
        subprocess.run(
            ["git", f"--git-dir={repo}", "archive", "--format=tar", commit, f"{zoo}/src", f"{zoo}/fuxictr_version.py"],
            check=True,
            stdout=fh,
        )
    with tarfile.open(tar_path) as tar:
        tar.extractall(Path(workdir) / "zoo", filter="data")
    root = Path(workdir) / "zoo" / zoo
    # the model folder's own requirement on fuxictr (fuxictr_version.py: assert version >= "x")
    req = (root / "fuxictr_version.py").read_text()
    for op, need in re.findall(r"(>=|==|<=|>|<)\s*version\.parse\(['\"]([^'\"]+)['\"]\)", req):
        a, b = _vtuple(installed), _vtuple(need)
        if not {">=": a >= b, "==": a == b, "<=": a <= b, ">": a > b, "<": a < b}[op]:
            raise SystemExit(f"{zoo} at {commit[:10]} requires fuxictr {op} {need}; installed {installed}")
    import importlib.util

    pkg_name = f"_fuxictr_zoo_{folder}"
    spec = importlib.util.spec_from_file_location(
        pkg_name, root / "src" / "__init__.py", submodule_search_locations=[str(root / "src")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[pkg_name] = module
    spec.loader.exec_module(module)
    return getattr(module, cls_name), commit, mirror_version


# ---------------------------------------------------------------------------- data


def prepare_data(args, params, workdir):
    """FuxiCTR FeatureProcessor on the split -> npz files + FeatureMap (fit on train only)."""
    import numpy as np
    import pandas as pd
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess import FeatureProcessor

    df = pd.read_parquet(args.split)
    for col in ("__target__", "__part__"):
        if col not in df.columns:
            raise SystemExit(f"{args.split}: column {col} missing")
    forced = [c for c in (args.categorical or "").split(",") if c]
    missing = [c for c in forced if c not in df.columns]
    if missing:
        raise SystemExit(f"--categorical names columns not in the split: {missing}")
    features = [c for c in df.columns if c not in ("__target__", "__part__")]
    # The writer's pandas dtypes, from the parquet's pandas metadata: a pandas categorical of
    # integer ids can come back from read_parquet as plain int64 (pyarrow stores it undictionaried).
    written = {}
    try:
        import pyarrow.parquet as pq

        meta = (pq.read_schema(args.split).metadata or {}).get(b"pandas")
        if meta:
            written = {col["name"]: col.get("pandas_type") for col in json.loads(meta)["columns"]}
    except Exception as exc:  # no metadata: fall back on the dtypes read back
        log(f"no pandas metadata in {args.split}: {exc}")
    numeric, categorical = [], []
    for c in features:
        dt = df[c].dtype
        is_cat = (
            c in forced
            or pd.api.types.is_object_dtype(dt)
            or pd.api.types.is_string_dtype(dt)
            or isinstance(dt, pd.CategoricalDtype)
            or pd.api.types.is_bool_dtype(dt)
            or written.get(c) in ("categorical", "unicode", "string", "bytes", "bool", "mixed")
        )
        (categorical if is_cat else numeric).append(c)
    # hand FuxiCTR plain strings / floats (missing values stay null: FuxiCTR's fill_na applies)
    frame = {}
    for c in numeric:
        frame[c] = pd.to_numeric(df[c], errors="raise").astype("float64")
    for c in categorical:
        s = df[c]
        frame[c] = pd.Series([None if pd.isna(v) else str(v) for v in s.astype(object)], dtype=object)
    frame["__target__"] = df["__target__"].astype("float64").to_numpy()
    frame = pd.DataFrame(frame)
    parts = df["__part__"].astype(str).to_numpy()
    raw_dir = Path(workdir) / "raw"
    raw_dir.mkdir()
    n_rows = {}
    for part in ("train", "val", "test"):
        sub = frame[parts == part].reset_index(drop=True)
        if len(sub) == 0:
            raise SystemExit(f"{args.split}: no '{part}' rows")
        n_rows[part] = len(sub)
        sub.to_parquet(raw_dir / f"{part}.parquet", index=False)
    log(f"rows {n_rows}; numeric {numeric}; categorical {categorical}")

    feature_cols = []
    if numeric:
        feature_cols.append(
            {
                "name": numeric,
                "active": True,
                "dtype": "float",
                "type": "numeric",
                "fill_na": 0,
                "normalizer": "StandardScaler",
            }
        )
    if categorical:
        feature_cols.append(
            {"name": categorical, "active": True, "dtype": "str", "type": "categorical", "min_categr_count": 1}
        )
    label_col = {"name": "__target__", "dtype": "float"}
    dataset_id = "bench"
    data_root = str(Path(workdir) / "data")
    encoder = FeatureProcessor(
        feature_cols=feature_cols, label_col=label_col, dataset_id=dataset_id, data_root=data_root
    )
    ddfs = {
        part: encoder.preprocess(encoder.read_data(str(raw_dir / f"{part}.parquet"), data_format="parquet"))
        for part in ("train", "val", "test")
    }
    encoder.fit(ddfs["train"], min_categr_count=1)
    # FuxiCTR 2.3.10's build_dataset runs this same encoder.transform over numpy batches
    # inside Ray workers; here it runs in-process on the whole part (same result, no Ray).
    files = {}
    for part, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        table = ddfs[part].collect()
        batch = {c: table[c].to_numpy() for c in table.columns}
        batch = encoder.transform(batch)
        arrays = {c: np.asarray(batch[c]) for c in batch}
        files[part] = os.path.join(encoder.data_dir, f"{name}.npz")
        np.savez(files[part], **arrays)
    feature_map = FeatureMap(dataset_id, encoder.data_dir)
    feature_map.load(os.path.join(encoder.data_dir, "feature_map.json"), params)
    return feature_map, files, n_rows, dataset_id, data_root


# ---------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", required=True)
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--params", default="{}", help="JSON object of hyperparameters (our names or FuxiCTR's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    ap.add_argument("--fuxictr-repo", default=DEFAULT_REPO, help="bare git mirror of reczoo/FuxiCTR")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (FuxiCTR configs: 3)")
    ap.add_argument("--keep-workdir", action="store_true")
    args = ap.parse_args()

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass

    real_stdout = sys.stdout
    workdir = tempfile.mkdtemp(prefix="fuxictr_peer_")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = run(args, workdir)
    finally:
        if not args.keep_workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"workdir kept: {workdir}")
    print(json.dumps(result), file=real_stdout, flush=True)


def run(args, workdir):
    import logging

    import numpy as np

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import fuxictr
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything

    installed = fuxictr.__version__
    params = translate_params(args.model, json.loads(args.params), args.threads, args.seed)
    if args.max_epochs is not None:
        params["epochs"] = args.max_epochs
    model_cls, commit, mirror_version = load_model_class(args.fuxictr_repo, args.model, installed, workdir)
    log(f"fuxictr {installed}; model_zoo from {commit} (mirror fuxictr/version.py {mirror_version})")

    feature_map, files, n_rows, dataset_id, data_root = prepare_data(args, params, workdir)
    params.update(
        {
            "model_root": str(Path(workdir) / "checkpoints"),
            "verbose": 0,
            "dataset_id": dataset_id,
            "data_root": data_root,
            "data_format": "npz",
            "train_data": files["train"],
            "valid_data": files["val"],
            "test_data": files["test"],
            "num_workers": args.num_workers,
            "save_best_only": True,
            "eval_steps": None,
        }
    )
    log(
        "params: " + json.dumps({k: v for k, v in params.items() if k not in ("train_data", "valid_data", "test_data")})
    )

    seed_everything(seed=args.seed)
    model = model_cls(feature_map, model_id=model_cls.__name__, **{k: v for k, v in params.items() if k != "model_id"})
    os.makedirs(model.model_dir, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

    for name in ("train_epoch", "eval_step", "save_weights", "fit", "predict", "evaluate"):
        if not callable(getattr(model, name, None)):
            raise SystemExit(f"installed fuxictr {installed}: BaseModel has no {name}(); this script needs updating")
    epoch_seconds, eval_seconds, best = [], [0.0], {"epoch": None}
    train_epoch, eval_step, save_weights = model.train_epoch, model.eval_step, model.save_weights

    def timed_train_epoch(*a, **kw):
        eval_before = eval_seconds[0]
        t0 = time.perf_counter()
        out = train_epoch(*a, **kw)
        epoch_seconds.append(time.perf_counter() - t0 - (eval_seconds[0] - eval_before))
        return out

    def timed_eval_step(*a, **kw):
        t0 = time.perf_counter()
        out = eval_step(*a, **kw)
        eval_seconds[0] += time.perf_counter() - t0
        return out

    def tracked_save_weights(*a, **kw):  # called only when the monitor improves (save_best_only)
        best["epoch"] = model._epoch_index + 1
        return save_weights(*a, **kw)

    model.train_epoch, model.eval_step, model.save_weights = timed_train_epoch, timed_eval_step, tracked_save_weights

    loader_kw = {k: params[k] for k in ("batch_size", "shuffle", "num_workers")}
    train_gen, valid_gen = RankDataLoader(
        feature_map, stage="train", train_data=files["train"], valid_data=files["val"], data_format="npz", **loader_kw
    )
    model.fit(
        train_gen, epochs=params["epochs"], validation_data=valid_gen, max_gradient_norm=params["max_gradient_norm"]
    )

    test_gen = RankDataLoader(feature_map, stage="test", test_data=files["test"], data_format="npz", **loader_kw)
    logging.info("******** Test evaluation ********")
    test_logs = model.evaluate(test_gen)
    t0 = time.perf_counter()
    pred = model.predict(test_gen)
    predict_seconds = time.perf_counter() - t0
    assert len(pred) == n_rows["test"], (len(pred), n_rows["test"])
    return {
        "test_auc": float(test_logs["AUC"]),
        "test_logloss": float(test_logs["logloss"]),
        "sec_per_epoch": float(np.mean(epoch_seconds)) if epoch_seconds else None,
        "epochs": len(epoch_seconds),
        "best_epoch": best["epoch"],
        "predict_rows_per_s": float(n_rows["test"] / predict_seconds),
        "n_params": int(n_params),
        "fuxictr_version": installed,
        "model_zoo_commit": commit,
    }


if __name__ == "__main__":
    main()
