"""Run a comparison's (model, fold) fits as Ray tasks (``pip install tabular-suite[ray]``)."""

from __future__ import annotations

import time

from .runner import FoldResult, _run_fold

__all__ = ["run_folds_on_ray"]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs Ray: pip install 'tabular-suite[ray]' (or pip install ray).") from None
    return ray


def run_folds_on_ray(candidates, ctx, df, target, folds, n_classes, model_time_limit, time_limit, started,
                     address, gpus_per_task):
    """Submit every (model, fold) as a task; gather results, cancelling what overruns ``time_limit``.

    Each task asks for ``ctx.num_threads`` CPUs and ``gpus_per_task`` GPUs (None: one GPU per
    deep-model task when the cluster has GPUs and ``device`` is not "cpu", else none). Uses
    the running Ray instance if there is one, else starts a local one (or joins ``address``)
    and shuts it down afterwards.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return _run(ray, candidates, ctx, df, target, folds, n_classes, model_time_limit, time_limit, started,
                    gpus_per_task)
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        return _run(ray, candidates, ctx, df, target, folds, n_classes, model_time_limit, time_limit, started,
                    gpus_per_task)
    finally:
        ray.shutdown()


def _run(ray, candidates, ctx, df, target, folds, n_classes, model_time_limit, time_limit, started, gpus_per_task):
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    data_ref, target_ref = ray.put(df), ray.put(target)
    # Each task gets its fold's share of the model budget up front (tasks run concurrently).
    budget = None if model_time_limit is None else model_time_limit / len(folds)
    remote = ray.remote(_remote_fold)
    pending = {}
    for cand in candidates:
        gpus = gpus_per_task
        if gpus is None:
            gpus = 1 if (has_gpu and cand.kind == "deep" and ctx.device != "cpu") else 0
        task = remote.options(num_cpus=ctx.num_threads, num_gpus=gpus, max_retries=0)
        for fold, (train_idx, valid_idx) in enumerate(folds):
            ref = task.remote(cand, ctx, data_ref, target_ref, train_idx, valid_idx, fold, budget, n_classes)
            pending[ref] = (cand.name, fold)

    results = {c.name: [] for c in candidates}
    while pending:
        timeout = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - started))
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        if not ready:  # total time limit: cancel what is left, mark it
            for ref, (name, fold) in pending.items():
                ray.cancel(ref, force=True)
                results[name].append(FoldResult(name, fold, "skipped", f"total time limit of {time_limit:.0f} s reached"))
            break
        ref = ready[0]
        name, fold = pending.pop(ref)
        try:
            results[name].append(ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - a crashed worker fails only its task
            results[name].append(FoldResult(name, fold, "failed", f"Ray task failed: {type(exc).__name__}: {exc}"))
    for name in results:
        results[name].sort(key=lambda r: r.fold)
    return results


def _remote_fold(candidate, ctx, df, target, train_idx, valid_idx, fold, budget, n_classes):
    import torch

    torch.set_num_threads(ctx.num_threads)
    return _run_fold(candidate, ctx, df, target, train_idx, valid_idx, fold, budget, n_classes)
