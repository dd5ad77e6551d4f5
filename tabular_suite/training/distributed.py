"""Data-parallel training on torch.distributed: what one process (rank) of a group does.

Every gradient-trained estimator trains data-parallel when it runs in a process group of more
than one process, started by ``torchrun --nproc-per-node N`` (or ``tabular-suite train ...
--workers N``, which starts it): each rank reads the same table and fits the same
preprocessing (deterministic), builds the same model (parameters and buffers broadcast from
rank 0 to be sure), and trains on its own share of each epoch's shuffled rows; after each
backward pass the gradients are averaged over the ranks, as DistributedDataParallel does, so
the ranks keep identical parameters: ranks of one machine write them to a shared-memory file
and wait there until all have (a spin on x86-64, else one small all-gather), ranks of several
machines (or NCCL) all-reduce the dense gradients and all-gather the sparse embedding rows
(:meth:`Ranks.average_gradients`). Ranks of one machine also share out the optimizer's work:
the parameters and their Adam moments live in that shared memory, and each rank updates its
part of them (:meth:`Ranks.step`). The global batch is ``batch_size`` (each rank takes
``batch_size / N`` rows), so a run matches single-process training in its number of steps and
schedule; with ``per_process_batch=True`` each rank takes ``batch_size`` rows (N times the rows
a step, N times fewer steps: the usual DistributedDataParallel recipe, faster when a step's
fixed costs matter). Validation, early stopping and the learning-rate schedule follow rank 0's
validation figures (each rank predicts a share of the validation rows); rank 0 alone saves the
model and logs to MLflow.

The process group is initialised from torchrun's environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ...) by :func:`init_from_env`: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import socket
import time
import uuid
from collections.abc import Callable

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
        self._shared = None  # the same-machine exchange, once known (False: none)
        self._capacity = None  # rows per sparse table and rank in an all-gather
        self._sharded = None  # the optimizers' work shared out, once known (False: not)

    def batch_size(self, batch_size: int, per_process: bool = False) -> int:
        """Rows per rank and step: ``batch_size`` with ``per_process``, else a share, so that the
        ranks together take ``batch_size``."""
        return batch_size if per_process else max(1, math.ceil(batch_size / self.world))

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

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (e.g. BatchNorm statistics, which each rank updates from its own rows)
        on every rank; the parameters need none: the averaged gradients keep them identical."""
        if self.active:
            for tensor in module.buffers():
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters, sparse=(), has_next: bool | None = None) -> bool | None:
        """Average the gradients over the ranks, as DistributedDataParallel does (a dense
        parameter without a gradient counts as zero; the ``sparse`` tables' gradients are
        coalesced sparse tensors, whose rows are gathered and summed). ``has_next``: whether this
        rank has a batch for the next step, sent with the gradients; the result is whether every
        rank has (streamed shares differ in size: the ranks stop together, with no collective of
        their own).

        Ranks on one machine (gloo) exchange the gradients through a shared-memory file: each
        writes its own slot, the ranks wait until all have (see :class:`_SharedExchange`), each
        sums the slots. Over the network (several machines, or NCCL) the dense gradients take
        one all-reduce and the sparse rows one all-gather, both in flight at once. (On this
        project's 2-core VM a FinalMLP step's exchange takes 1.8 ms through shared memory, 3.9 ms
        by the network path: benchmarks/exchange.py.)
        """
        if not self.active:
            return has_next
        tables = {id(t) for t in sparse}
        dense = [p for p in parameters if id(p) not in tables]
        for p in dense:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [_coalesced_grad(t) for t in sparse]
        if self._shared is None:
            self._shared = _SharedExchange.join(self, sum(p.numel() for p in dense), sparse) or False
        if self._shared:
            return self._shared.average(dense, sparse, grads, has_next)
        device = dense[0].device if dense else sparse[0].device
        pieces = [p.grad.reshape(-1).float() for p in dense]
        if has_next is not None:
            pieces.append(torch.ones(1, device=device) if has_next else torch.zeros(1, device=device))
        flat = torch.cat(pieces) if pieces else None
        pending = dist.all_reduce(flat, async_op=True) if flat is not None else None
        if sparse:
            self._gather_sparse(sparse, grads)
        if pending is None:
            return has_next
        pending.wait()
        _unpack_dense(dense, flat, self.world)
        return None if has_next is None else bool(flat[-1].item() == self.world)

    def step(self, optimizers, sparse=()) -> None:
        """Each optimizer's step (None: none). Ranks that exchange their gradients through shared
        memory share the work instead of each doing all of it: each updates its part of the
        parameters, held in shared memory (see :class:`_ShardedOptimizer`); the ``sparse``
        tables are shared out by rows. After a shared step a rank holds the gradients of its
        part only (the other ranks' dense parameters have none, its tables only its rows).

        >>> w = torch.nn.Parameter(torch.ones(2)); w.grad = torch.ones(2)
        >>> Ranks().step([torch.optim.SGD([w], lr=0.5), None]); w.tolist()
        [0.5, 0.5]
        """
        optimizers = [o for o in optimizers if o is not None]
        if self._sharded is None:
            self._sharded = (self._shared and _ShardedOptimizer.join(self._shared, optimizers, sparse)) or False
        if self._sharded:
            self._sharded.step(optimizers)
        else:
            for o in optimizers:
                o.step()

    def release(self) -> None:
        """After training: parameters and optimizer state that lived in shared memory (a sharded
        update) back in this process's own memory; otherwise nothing to do."""
        if self._sharded:
            self._sharded.release()
        self._sharded = None

    def _gather_sparse(self, tables, grads) -> None:
        """The tables' gradients summed over the ranks (divided by their number), by one
        all-gather of every rank's rows at an agreed capacity per table (grown alike, and
        gathered once more, when some rank's rows exceed it)."""
        counts = [g._nnz() for g in grads]
        while True:
            layout = _Layout(0, tables, self._capacity or [0] * len(tables))
            buffer = torch.zeros(2 * len(tables) + layout.size, device=tables[0].device)
            buffer[: 2 * len(tables)] = torch.tensor(counts, dtype=torch.long).view(torch.float32)
            layout.pack(buffer[2 * len(tables) :], grads)
            gathered = torch.empty(self.world * buffer.numel(), device=buffer.device)
            _all_gather(gathered, buffer)
            gathered = gathered.view(self.world, -1)
            rank_counts = gathered[:, : 2 * len(tables)].contiguous().view(torch.long).cpu()  # (world, tables)
            if not layout.grow(rank_counts):
                break
            self._capacity = layout.capacity
        layout.unpack(gathered[:, 2 * len(tables) :], rank_counts, tables, self.world)

    def predict_shared(self, predict, inputs, unit: int) -> torch.Tensor:
        """``predict(inputs)`` (rows in, a row of outputs each out), the ranks sharing the rows out
        in runs of whole ``unit``-row chunks and gathering the outputs, so that every rank holds
        them all (validation in 1/N of the time).

        >>> Ranks().predict_shared(lambda part: part[0] * 2, [torch.arange(3)], 256).tolist()
        [0, 2, 4]
        """
        n = inputs[0].shape[0]
        chunks = math.ceil(n / unit)
        if not self.active or chunks < self.world:
            return predict(inputs)
        bounds = [min(n, chunks * r // self.world * unit) for r in range(self.world + 1)]
        mine = predict([t[bounds[self.rank] : bounds[self.rank + 1]] for t in inputs])
        width = max(b - a for a, b in zip(bounds, bounds[1:]))
        padded = torch.zeros((width, *mine.shape[1:]), dtype=mine.dtype, device=self._device())
        padded[: len(mine)] = mine
        gathered = torch.empty(self.world * padded.numel(), dtype=mine.dtype, device=padded.device)
        _all_gather(gathered, padded.reshape(-1))
        parts = gathered.view(self.world, width, *mine.shape[1:]).to(mine.device)
        return torch.cat([parts[r, : bounds[r + 1] - bounds[r]] for r in range(self.world)])

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


def _all_gather(output: torch.Tensor, tensor: torch.Tensor) -> None:
    """Every rank's ``tensor``, one after the other, into ``output`` (newer torch names it
    ``all_gather_single`` and warns for the older name)."""
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather(output, tensor)


def _coalesced_grad(table: torch.Tensor) -> torch.Tensor:
    """A sparse table's gradient, coalesced (an empty one when the table got none)."""
    if table.grad is None:
        return torch.sparse_coo_tensor(
            torch.zeros(1, 0, dtype=torch.long, device=table.device),
            torch.zeros(0, *table.shape[1:], device=table.device, dtype=table.dtype), table.shape,
        ).coalesce()  # fmt: skip
    return table.grad.coalesce()


def _unpack_dense(dense, summed: torch.Tensor, world: int) -> None:
    """The dense gradients from their flat sum over the ranks (a tensor of this process, which
    may hold more after them), averaged: each gradient becomes a view of it (no copies)."""
    offset = 0
    averaged = summed[: sum(p.numel() for p in dense)].div_(world)
    for p in dense:
        n = p.numel()
        grad = averaged[offset : offset + n].view_as(p)
        p.grad = grad if grad.dtype == p.dtype else grad.to(p.dtype)
        offset += n


def _even(n: int) -> int:
    return n + n % 2


class _Layout:
    """Where one rank's gradients lie in a flat float32 buffer: the dense gradients (``dense``
    values), then per sparse table ``capacity`` row indices (int64, carried bit for bit as two
    float32 each) and ``capacity`` rows. Every part starts at an even offset, so the indices
    can be viewed as int64 in place."""

    def __init__(self, dense: int, tables, capacity: list[int]):
        self.dense, self.capacity, self.tables = dense, list(capacity), tables
        self.widths = [math.prod(t.shape[1:]) for t in tables]
        self.starts, offset = [], _even(dense)
        for cap, width in zip(self.capacity, self.widths):
            self.starts.append(offset)
            offset += _even(cap * (2 + width))
        self.size = offset

    def pack(self, slot: torch.Tensor, grads) -> None:
        """Write the sparse gradients' rows that fit (a rank whose rows do not fit says so by
        its count; see :meth:`grow`)."""
        for grad, start, cap, width in zip(grads, self.starts, self.capacity, self.widths):
            n = grad._nnz()
            if n <= cap:
                slot[start : start + 2 * n] = grad.indices()[0].view(torch.float32)
                slot[start + 2 * cap : start + 2 * cap + n * width] = grad.values().reshape(-1).float()

    def grow(self, rank_counts: torch.Tensor) -> bool:
        """Given every rank's row count per table (world, tables): whether some rank's rows did
        not fit; then the capacity grows (alike on every rank) to hold them with a margin."""
        needed = rank_counts.max(0).values.tolist()
        if all(n <= c for n, c in zip(needed, self.capacity)):
            return False
        self.__init__(self.dense, self.tables, [max(c, n + n // 4) for c, n in zip(self.capacity, needed)])
        return True

    def unpack(self, slots: torch.Tensor, rank_counts: torch.Tensor, tables, world: int) -> None:
        """Set each table's gradient to the sum of the ranks' rows (``slots``: world x size),
        divided by ``world``."""
        for j, (table, start, cap, width) in enumerate(zip(tables, self.starts, self.capacity, self.widths)):
            indices, values = [], []
            for r in range(world):
                n = int(rank_counts[r, j])
                indices.append(slots[r, start : start + 2 * n].view(torch.long))
                values.append(slots[r, start + 2 * cap : start + 2 * cap + n * width].view(n, *table.shape[1:]))
            grad = torch.sparse_coo_tensor(
                torch.cat(indices)[None],
                torch.cat(values).div_(world).to(table.dtype),
                table.shape,
                check_invariants=False,
            )
            table.grad = grad.coalesce()


class _SharedExchange:
    """Gradient averaging for ranks on one machine through one shared-memory file (in
    ``/dev/shm``, unlinked as soon as every rank has mapped it): a slot per rank, twice over
    (steps alternate between the two halves, so a rank that writes step k+1 never overwrites
    what another still reads of step k), and per half a header row per rank (the step it last
    wrote, whether it has a next batch, its sparse row counts). A step: each rank writes its
    dense gradients, sparse rows and header row (the step number last); the ranks wait until
    every header shows this step (x86-64, whose stores become visible in program order: a short
    spin, a few microseconds, that yields the core after a thousand looks; elsewhere, or with
    ``TABULAR_SUITE_SPIN_BARRIER=0``, one small gloo all-gather of the row counts is the barrier,
    about 0.7 ms on this project's 2-core VM); each rank sums the slots. When some rank's rows
    exceed the slots' capacity the ranks map a larger file and repeat the step."""

    #: Seconds a rank waits for the others at a step before it gives up (gloo's default timeout).
    timeout = 1800.0

    def __init__(self, ranks: Ranks, folder: str):
        self.ranks, self.folder, self.step = ranks, folder, 0
        self.layout, self.memory, self.header = None, None, None
        self.spin = (
            platform.machine().lower() in ("x86_64", "amd64")
            and os.environ.get("TABULAR_SUITE_SPIN_BARRIER", "1") != "0"
        )

    @classmethod
    def join(cls, ranks: Ranks, n_dense: int, tables):
        """The exchange, mapped, when every rank is on this machine with the gloo backend and
        room in ``/dev/shm`` (``TABULAR_SUITE_SHARED_GRADIENTS=0`` turns it off), else None."""
        folder = "/dev/shm"
        usable = (
            dist.get_backend() == "gloo"
            and os.environ.get("TABULAR_SUITE_SHARED_GRADIENTS", "1") != "0"
            and os.path.isdir(folder)
            and os.access(folder, os.W_OK)
        )
        hosts = [None] * ranks.world
        dist.all_gather_object(hosts, (socket.gethostname(), _boot_id(), usable))
        if not all(h[:2] == hosts[0][:2] and h[2] for h in hosts):
            return None
        exchange = cls(ranks, folder)
        return exchange if exchange._map(_Layout(n_dense, tables, [0] * len(tables))) else None

    def _map(self, layout: _Layout) -> bool:
        """Every rank maps a new file of two headers and two slots per rank for ``layout``; False
        on every rank when some rank could not (see :func:`_shared_file`)."""
        world = self.ranks.world
        header_words = 2 * 2 * world * (2 + len(layout.widths))  # int64 entries, two float32 words each
        memory = _shared_file(self.ranks, self.folder, header_words + 2 * world * layout.size)
        if memory is not None:
            self.header = memory[:header_words].view(torch.int64).view(2, world, 2 + len(layout.widths))
            self.memory, self.layout = memory[header_words:].view(2, world, layout.size), layout
        return memory is not None

    def _wait(self, headers: torch.Tensor, step: int) -> None:
        """Until every rank's header row shows ``step``."""
        _spin_until(headers[:, 0], step, self.timeout, self.ranks.rank)

    def average(self, dense, tables, grads, has_next: bool | None) -> bool | None:
        world, rank = self.ranks.world, self.ranks.rank
        n_dense = sum(p.numel() for p in dense)
        counts = torch.tensor([int(bool(has_next)), *(g._nnz() for g in grads)], dtype=torch.long)
        layout = self.layout
        if layout.dense != n_dense or len(layout.widths) != len(tables):  # other parameters than before
            layout = _Layout(n_dense, tables, [0] * len(tables))
        while True:
            if layout is not self.layout and not self._map(layout):
                raise RuntimeError(
                    f"No room in /dev/shm for the gradient exchange ({8 * world * layout.size / 2**20:,.0f} MB): "
                    "enlarge it (docker run --shm-size=...) or set TABULAR_SUITE_SHARED_GRADIENTS=0."
                )
            half = self.step % 2
            slots, headers = self.memory[half], self.header[half]
            if dense:
                torch.cat([p.grad.reshape(-1).float() for p in dense], out=slots[rank, :n_dense])
            self.layout.pack(slots[rank], grads)
            if self.spin:
                headers[rank, 1:] = counts
                headers[rank, 0] = self.step + 1  # last: the slot and the counts are written
                self._wait(headers, self.step + 1)
                gathered = headers[:, 1:].clone()
            else:
                gathered = torch.empty(world, len(counts), dtype=torch.long)
                _all_gather(gathered.view(-1), counts)  # the barrier: every slot is written
            layout = _Layout(n_dense, tables, self.layout.capacity)
            if not layout.grow(gathered[:, 1:]):  # else a larger file, and the step once more
                break
        self.step += 1
        if dense:  # a sum in rank order (the same on every rank), one add at a time: 3x a strided sum(0)
            summed = torch.add(slots[0, :n_dense], slots[1, :n_dense])
            for r in range(2, world):
                summed.add_(slots[r, :n_dense])
            _unpack_dense(dense, summed, world)
        if tables:
            self.layout.unpack(slots, gathered[:, 1:], tables, world)
        return None if has_next is None else bool(gathered[:, 0].min() == 1)


class _ShardedOptimizer:
    """The optimizers' work shared out over the ranks of one machine (stage 1 of ZeRO, Rajbhandari
    et al., 2020, in shared memory): the parameters and their Adam moments live in one
    shared-memory file that every rank maps; each rank updates its part of them, whole dense
    parameters (balanced by size) and the rows of each sparse table whose index modulo the
    number of ranks is its rank, and the ranks meet (a spin, as the exchange's) before the next
    forward pass reads them. Every value is updated once, by the arithmetic the replicated
    update uses, so training is the same; a rank's optimizer step does 1/N of the work (FinalMLP
    on 2M rows, two ranks: dense AdamW 0.9 ms a step alone, 0.4-0.6 ms shared; lazy Adam 1.1-1.2
    ms over half of both ranks' looked-up rows instead of all of them; benchmarks/RESULTS.md,
    "Where a data-parallel step goes"). The checkpoint rank 0 writes holds everything (it reads the
    shared file). ``TABULAR_SUITE_SHARD_OPTIMIZER=0`` keeps the replicated update (each rank
    updates everything)."""

    def __init__(self, exchange: _SharedExchange, memory: torch.Tensor, others: list, tables: list):
        self.exchange, self.others, self.tables = exchange, others, tables
        world = exchange.ranks.world
        self.counters, self.step_count = memory[: 2 * world].view(torch.int64), 0
        self.bound: list = []  # (holder, key) of every tensor that lives in the shared file

    @classmethod
    def join(cls, exchange: _SharedExchange, optimizers: list, tables) -> _ShardedOptimizer | None:
        """The sharded update when every optimizer is Adam, AdamW or SparseAdam over float32 CPU
        parameters and the ranks meet by the spin, with room in ``/dev/shm``; else None (on every
        rank alike)."""
        ranks = exchange.ranks
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        usable = (
            exchange.spin
            and os.environ.get("TABULAR_SUITE_SHARD_OPTIMIZER", "1") != "0"
            and all(
                type(o) in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SparseAdam)
                and not any(g.get("amsgrad") for g in o.param_groups)
                for o in optimizers
            )
            and all(p.dtype == torch.float32 and p.device.type == "cpu" and p.is_contiguous() for p in params)
            and torch.get_default_dtype() == torch.float32
        )
        if not ranks.all_have(bool(usable)):
            return None
        for o in optimizers:  # the state torch would create at the first step, created now to place it
            for p in (p for g in o.param_groups for p in g["params"]):
                state = o.state[p]
                if not state:
                    state["step"] = 0 if isinstance(o, torch.optim.SparseAdam) else torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
        holders = [(p, None) for p in params]  # the parameters, then their float32 state tensors
        for o in optimizers:
            for p in (p for g in o.param_groups for p in g["params"]):
                holders += [(o.state[p], k) for k, v in o.state[p].items() if isinstance(v, torch.Tensor)]
        values = [h.data if k is None else h[k] for h, k in holders]
        if any(v.dtype != torch.float32 for v in values):
            return None  # (alike on every rank: the same model and optimizers)
        world = ranks.world
        memory = _shared_file(ranks, exchange.folder, 2 * world + sum(v.numel() for v in values))
        if memory is None:
            return None
        # Dense parameters to ranks by size (the largest first, each to the least loaded rank).
        table_ids = {id(t) for t in tables}
        dense = sorted((p for p in params if id(p) not in table_ids), key=lambda p: -p.numel())
        load, others = [0] * world, []
        for p in dense:
            owner = load.index(min(load))
            load[owner] += p.numel()
            if owner != ranks.rank:
                others.append(p)
        param_ids = {id(p) for p in params}
        sharded = cls(exchange, memory, others, [t for t in tables if id(t) in param_ids])
        views, offset = [], 2 * world
        for v in values:
            views.append(memory[offset : offset + v.numel()].view_as(v))
            offset += v.numel()
        if ranks.rank == 0:  # (every rank holds the same values: rank 0 writes them)
            for view, v in zip(views, values):
                view.copy_(v)
        ranks.all_have(True)  # written
        for (holder, key), view in zip(holders, views):
            if key is None:
                holder.data = view
            else:
                holder[key] = view
            sharded.bound.append((holder, key))
        return sharded

    def step(self, optimizers: list) -> None:
        """This rank's part of the update, then the meeting: every rank's part is written."""
        ranks = self.exchange.ranks
        for p in self.others:
            p.grad = None  # another rank updates it (Adam skips a parameter without a gradient)
        for table in self.tables:
            grad = table.grad
            if grad is not None:  # coalesced by the exchange: its rows of this rank stay sorted and unique
                rows = grad.indices()
                mine = rows[0] % ranks.world == ranks.rank
                table.grad = torch.sparse_coo_tensor(
                    rows[:, mine], grad.values()[mine], grad.shape, is_coalesced=True, check_invariants=False
                )
        for o in optimizers:
            o.step()
        self.step_count += 1
        self.counters[ranks.rank] = self.step_count
        _spin_until(self.counters, self.step_count, self.exchange.timeout, ranks.rank)

    def release(self) -> None:
        """The parameters and the optimizers' state in this process's own memory again (a copy of
        the shared file's values): the trained model does not hold the other ranks' memory."""
        for holder, key in self.bound:
            if key is None:
                holder.data = holder.data.clone()
            else:
                holder[key] = holder[key].clone()
        self.bound = []


def _shared_file(ranks: Ranks, folder: str, words: int) -> torch.Tensor | None:
    """``words`` float32 values (zeros) in a new file in ``folder`` that every rank maps: rank 0
    creates it and unlinks it once every rank has mapped it (the mappings stay; nothing is left
    behind, even after a crash). None on every rank when some rank could not map it (e.g. too
    little room in ``/dev/shm``: a container's default is 64 MB, and a write past the room would
    kill the process with SIGBUS)."""
    nbytes, path = 4 * words, None
    if ranks.rank == 0:
        candidate = os.path.join(folder, f"tabular_suite-{uuid.uuid4().hex}")
        try:
            room = os.statvfs(folder)
            if room.f_bavail * room.f_frsize >= 2 * nbytes:  # with room to spare (the exchange may grow)
                fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
                path = candidate
                try:  # the pages taken now: too little room fails here (not as SIGBUS at a later write)
                    os.posix_fallocate(fd, 0, nbytes)
                finally:
                    os.close(fd)
        except OSError:
            if path is not None:
                os.unlink(path)
            path = None
    path = ranks.from_main(path)
    memory = None
    if path is not None:
        try:
            memory = torch.from_file(path, shared=True, size=words, dtype=torch.float32)
        except RuntimeError:
            memory = None
    mapped = ranks.all_have(memory is not None)  # (the barrier: every rank has mapped it, or failed)
    if ranks.rank == 0 and path is not None:
        os.unlink(path)
    return memory if mapped else None


def _spin_until(steps: torch.Tensor, step: int, timeout: float, rank: int) -> None:
    """Until every entry of ``steps`` (the ranks' counters in shared memory) reaches ``step``:
    a spin, that yields the core after a thousand looks (more ranks than cores must not starve
    the rank being waited for) and raises after ``timeout`` seconds."""
    spins, started = 0, None
    while int(steps.min()) < step:
        spins += 1
        if spins > 1000:
            os.sched_yield()
            if started is None:
                started = time.monotonic()
            elif time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"Rank {rank}: the other ranks did not reach training step {step} within {timeout:.0f} s "
                    "(a rank stopped or hangs)."
                )


def _boot_id() -> str:
    """This machine's boot, to tell machines of one host name apart (containers)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


#: Callables run here before a Ray fit, each returning a picklable callable that every worker runs
#: before it fits: how a part of the package above this one reaches the workers without this
#: module importing it (tracking registers the caller's MLflow settings).
WORKER_SETUP: list[Callable[[], Callable[[], None]]] = []


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
    run (on a cluster, a folder every node reaches; None: a temporary folder here). A tracked fit
    (:func:`~tabular_suite.tracking.autolog` or ``tracking=True``; a table or a stream) is logged by rank 0,
    as a run of its own, to this process's store and experiment (autolog's, or
    ``MLFLOW_EXPERIMENT_NAME``), and the returned model has its ``mlflow_run_id_``. A local store
    is passed by its absolute path, which rank 0 must reach (on a cluster: a tracking server).
    Needs ``pip install "ray[train]"``.

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

        for setup in config["setup"]:
            setup()
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
            run_id = est.__dict__.get("mlflow_run_id_") or ""
            ray.train.report(
                {"epochs": len(est.history_), "mlflow_run_id": run_id}, checkpoint=Checkpoint.from_directory(folder)
            )
        else:
            ray.train.report({"epochs": len(est.history_)})

    setup = [make() for make in WORKER_SETUP]  # (a worker starts with the defaults)
    own_storage = storage_path is None
    storage_path = storage_path or tempfile.mkdtemp(prefix="tabular_suite_ray_")
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=dict(estimator=template, data=data, streamed=streamed, fit_params=fit_params, setup=setup),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(storage_path=storage_path),
    )
    try:
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            model = load(os.path.join(folder, "model.tsm"))
        if result.metrics.get("mlflow_run_id"):
            model.mlflow_run_id_ = result.metrics["mlflow_run_id"]
        return model
    finally:
        if own_storage:
            import shutil

            shutil.rmtree(storage_path, ignore_errors=True)
