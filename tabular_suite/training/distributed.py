"""Data-parallel training on torch.distributed: what one process (rank) of a group does.

Every gradient-trained estimator trains data-parallel when it runs in a process group of more
than one process, started by ``torchrun --nproc-per-node N`` (or ``tabular-suite train ...
--workers N``, which starts it): each rank reads the same table and fits the same
preprocessing (deterministic), builds the same model (parameters and buffers broadcast from
rank 0 to be sure), and trains on its own share of each epoch's shuffled rows; after each
backward pass the gradients are averaged over the ranks (one all-reduce of all dense gradients,
sparse embedding gradients each on their own), as DistributedDataParallel does, so the ranks
keep identical parameters. The global batch is ``batch_size`` (each rank takes
``batch_size / N`` rows), so a run matches single-process training in its number of steps and
schedule. Validation, early stopping and the learning-rate schedule follow rank 0's
validation figures; rank 0 alone saves the model and logs to MLflow.

The process group is initialised from torchrun's environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ...) by :func:`init_from_env`: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import atexit
import math
import os

import torch
import torch.distributed as dist

from ..core.ranks import is_main_process, rank_and_world

__all__ = ["Ranks", "fit_on_ray", "init_from_env", "is_main_process", "rank_and_world"]


def init_from_env() -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1) unless already joined;
    returns whether this process is one of several.

    >>> init_from_env()  # a plain process: nothing to join
    False
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("LOCAL_RANK") is not None else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    # The rendezvous store under a prefix of this attempt: after torchrun restarts the workers (a
    # worker died), the new processes must not read the dead ones' addresses, which the default
    # prefix keeps (they fail to connect, or hang).
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=rank == 0 and not agent_store)  # fmt: skip
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(backend, store=dist.PrefixStore(f"tabular_suite/{attempt}", store), rank=rank,
                            world_size=world)  # fmt: skip
    atexit.register(_leave)
    return dist.get_world_size() > 1


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Ranks:
    """This process's part in data-parallel training (inactive outside a group of 2 or more).

    >>> ranks = Ranks()
    >>> ranks.active, ranks.shard(torch.arange(5)).tolist(), ranks.batch_size(256)
    (False, [0, 1, 2, 3, 4], 256)
    """

    def __init__(self):
        self.rank, self.world = rank_and_world()
        self.active = self.world > 1

    def batch_size(self, global_batch: int) -> int:
        """Rows per rank and step, so that the ranks together take ``global_batch``."""
        return max(1, math.ceil(global_batch / self.world))

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of an epoch's row order (the same order on every rank): every
        rank takes as many steps; the ``len(order) % world`` rows left over are not seen this
        epoch (the next epoch's order differs)."""
        if not self.active:
            return order
        share = len(order) // self.world
        return order[self.rank * share : (self.rank + 1) * share]

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if self.active:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters, sparse=()) -> None:
        """Average the gradients over the ranks: the dense ones in one all-reduce (a parameter
        without a gradient counts as zero), those of the ``sparse`` tables (sparse gradients)
        each on its own."""
        if not self.active:
            return
        tables = {id(t) for t in sparse}
        dense = [p for p in parameters if id(p) not in tables]
        for p in dense:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if dense:
            flat = torch.cat([p.grad.reshape(-1) for p in dense])
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for p in dense:
                n = p.grad.numel()
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n
        for table in sparse:
            grad = table.grad
            if grad is None:
                grad = torch.sparse_coo_tensor(
                    torch.zeros(1, 0, dtype=torch.long, device=table.device),
                    torch.zeros(0, *table.shape[1:], device=table.device, dtype=table.dtype), table.shape,
                )  # fmt: skip
            grad = grad.coalesce()
            if dist.get_backend() == "gloo":  # gloo sums sparse tensors (it gathers every rank's rows)
                dist.all_reduce(grad)
            else:  # nccl has no sparse all-reduce: gather the rows and sum them here
                gathered = [None] * self.world
                dist.all_gather_object(gathered, (grad.indices().cpu(), grad.values().cpu()))
                indices = torch.cat([i for i, _ in gathered], dim=1).to(grad.device)
                values = torch.cat([v for _, v in gathered]).to(grad.device)
                grad = torch.sparse_coo_tensor(indices, values, table.shape)
            table.grad = (grad.coalesce() / self.world).coalesce()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on some rank."""
        return self._reduce_flag(flag, dist.ReduceOp.MAX) if self.active else flag

    def all_have(self, flag: bool) -> bool:
        """True on every rank when it is true on every rank (e.g. "I have a batch")."""
        return self._reduce_flag(flag, dist.ReduceOp.MIN) if self.active else flag

    @staticmethod
    def _device() -> torch.device:
        """Where the group's collectives take their tensors (NCCL: this process's GPU)."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _reduce_flag(self, flag: bool, op) -> bool:
        value = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.all_reduce(value, op=op)
        return bool(value.item() > 0)

    def total(self, value: float) -> float:
        """The sum of ``value`` over the ranks."""
        if not self.active:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor)
        return float(tensor.item())

    def from_main(self, obj):
        """Rank 0's ``obj`` on every rank (validation figures: the ranks decide alike)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def fit_on_ray(estimator, X, y=None, *, num_workers: int = 2, ray_address: str | None = None, use_gpu: bool = False,
               storage_path: str | None = None, **fit_params):  # fmt: skip
    """Fit ``estimator`` data-parallel on a Ray cluster with Ray Train (``TorchTrainer``): each of
    ``num_workers`` workers joins one torch.distributed group and fits a copy of the estimator
    (the same data-parallel training as under torchrun); rank 0's model comes back through a Ray
    Train checkpoint and is returned, fitted.

    ``X, y``: a table (sent to the workers through Ray's object store), or with ``y=None`` and
    ``target=`` in ``fit_params`` a Parquet file or folder every worker can read, streamed by
    ``fit_parquet``. ``ray_address``: the cluster (None: the one this process is connected to,
    else a local Ray). ``use_gpu``: a GPU per worker. ``storage_path``: where Ray Train keeps its
    run (on a cluster, a folder every node reaches; None: a temporary folder here). Needs ``pip install
    "ray[train]"``.

    Examples
    --------
    A Ray instance starts here, so this is not a doctest (tests/test_distributed.py runs it)::

        import numpy as np, pandas as pd, tabular_suite
        X = pd.DataFrame(np.random.default_rng(0).normal(size=(500, 3)), columns=list("abc"))
        clf = fit_on_ray(tabular_suite.MLPClassifier(max_epochs=2), X, (X.a > 0).astype(int))
        clf.predict(X[:3]).shape  # (3,)
    """
    import tempfile

    try:
        import ray
        from ray.train import Checkpoint, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise ImportError('fit_on_ray needs Ray Train: pip install "ray[train]"') from exc
    from sklearn.base import clone

    from ..core.model_file import load

    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}.")
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False)
    streamed = y is None
    if streamed and "target" not in fit_params:
        raise ValueError("Without y, X is a Parquet path and fit_params must name its target= column.")
    data = X if streamed else ray.put((X, y))
    template = clone(estimator)

    def train_loop(config):
        import os

        import ray.train

        est = clone(config["estimator"])
        if config["streamed"]:
            params = dict(config["fit_params"])
            est.fit_parquet(config["data"], params.pop("target"), **params)
        else:
            X_, y_ = ray.get(config["data"])
            est.fit(X_, y_, **config["fit_params"])
        if ray.train.get_context().get_world_rank() == 0:
            folder = tempfile.mkdtemp()
            est.save(os.path.join(folder, "model.tsm"))
            ray.train.report({"epochs": len(est.history_)}, checkpoint=Checkpoint.from_directory(folder))
        else:
            ray.train.report({"epochs": len(est.history_)})

    own_storage = storage_path is None
    storage_path = storage_path or tempfile.mkdtemp(prefix="tabular_suite_ray_")
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"estimator": template, "data": data, "streamed": streamed, "fit_params": fit_params},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(storage_path=storage_path),
    )
    try:
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            return load(os.path.join(folder, "model.tsm"))
    finally:
        if own_storage:
            import shutil

            shutil.rmtree(storage_path, ignore_errors=True)
