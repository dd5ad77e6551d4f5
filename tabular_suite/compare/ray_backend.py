"""Run a comparison's (model, fold) fits as Ray tasks (``pip install tabular-suite[ray]``)."""

from __future__ import annotations

import time

from .folds import FoldResult, fold_budget, run_fold, total_limit_reached

__all__ = ["run_folds_on_ray"]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs Ray: pip install 'tabular-suite[ray]' (or pip install ray).") from None
    return ray


def run_folds_on_ray(plan, address, gpus_per_task):
    """Submit every (model, fold) of ``plan`` (a :class:`~.folds.FoldPlan`) as a task; gather
    results, cancelling what overruns ``time_limit`` less the ``reserved`` seconds kept for the
    refit; ``on_model_done`` is called as each model's folds are all back. Each task
    asks for ``ctx.num_threads`` CPUs and ``gpus_per_task`` GPUs (None: one GPU per
    deep-model task when the cluster has GPUs and ``device`` is not "cpu", else none). Uses
    the running Ray instance if there is one, else starts a local one (or joins ``address``)
    and shuts it down afterwards.
    """
    ray = _import_ray()
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        return _run(ray, plan, gpus_per_task)
    finally:
        if started_ray:
            ray.shutdown()


def _run(ray, plan, gpus_per_task):
    candidates, ctx, df, target, folds = plan.candidates, plan.ctx, plan.df, plan.target, plan.folds
    started, time_limit, model_time_limit, reserved = (
        plan.started,
        plan.time_limit,
        plan.model_time_limit,
        plan.reserved,
    )
    n_classes, on_model_done = plan.n_classes, plan.on_model_done
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    data_ref, target_ref, weights_ref = ray.put(df), ray.put(target), ray.put(plan.weights)
    # Tasks run concurrently: each fold gets its share of the model budget up front.
    budget, reason = fold_budget(
        started=started,
        time_limit=time_limit,
        model_started=time.perf_counter(),
        model_time_limit=model_time_limit,
        folds_left=len(folds),
        reserved=reserved,
    )
    if reason:
        return {c.name: [FoldResult(c.name, fold, "skipped", reason) for fold in range(len(folds))] for c in candidates}
    # A task that starts late (queued behind others) gets only what is left before this wall-clock time.
    ends_at = None if time_limit is None else time.time() + time_limit - reserved - (time.perf_counter() - started)
    remote = ray.remote(_remote_fold)
    pending = {}
    for cand in candidates:
        gpus = gpus_per_task
        if gpus is None:
            gpus = 1 if (has_gpu and cand.kind == "deep" and ctx.device != "cpu") else 0
        task = remote.options(num_cpus=ctx.num_threads, num_gpus=gpus, max_retries=0)
        for fold, (train_idx, valid_idx) in enumerate(folds):
            ref = task.remote(
                cand,
                ctx,
                data_ref,
                target_ref,
                train_idx,
                valid_idx,
                fold,
                budget,
                n_classes,
                ends_at,
                plan.keep_models,
                weights_ref,
            )
            pending[ref] = (cand.name, fold)

    results = {c.name: [] for c in candidates}
    while pending:
        timeout = None if time_limit is None else max(0.0, time_limit - reserved - (time.perf_counter() - started))
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        if not ready:  # total time limit: cancel what is left, mark it
            for ref, (name, fold) in pending.items():
                ray.cancel(ref, force=True)
                reason = total_limit_reached(time_limit, reserved)
                results[name].append(FoldResult(name, fold, "skipped", reason))
            break
        ref = ready[0]
        name, fold = pending.pop(ref)
        try:
            results[name].append(ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - a crashed worker fails only its task
            results[name].append(FoldResult(name, fold, "failed", f"Ray task failed: {type(exc).__name__}: {exc}"))
        if plan.on_fold is not None:
            plan.on_fold(name, fold, results[name][-1])
        if len(results[name]) == len(folds) and on_model_done is not None:
            on_model_done(name, sorted(results[name], key=lambda r: r.fold))
    for name in results:
        results[name].sort(key=lambda r: r.fold)
        if pending and on_model_done is not None and any(n == name for n, _ in pending.values()):
            on_model_done(name, results[name])  # cut short by the time limit
    return results


def _remote_fold(
    candidate, ctx, df, target, train_idx, valid_idx, fold, budget, n_classes, ends_at=None, keep=False, weights=None
):
    import torch

    from ..training.device import resolve_device

    torch.set_num_threads(ctx.num_threads)
    if candidate.kind == "deep":
        try:
            on_cpu = resolve_device(ctx.device).type == "cpu"
        except ValueError:  # the fold fails with the message
            on_cpu = False
        if on_cpu:  # built (or loaded) once per worker process, before the fold's budget starts
            from ..nn import native

            native.load()
    if ends_at is not None:
        left = ends_at - time.time()
        if left <= 0:
            return FoldResult(candidate.name, fold, "skipped", "total time limit reached before this fold started")
        budget = left if budget is None else min(budget, left)
    return run_fold(candidate, ctx, df, target, train_idx, valid_idx, fold, budget, n_classes, keep, weights)
