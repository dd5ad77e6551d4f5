"""Training callbacks: hooks the engine calls at fixed points of the loop."""

from __future__ import annotations

__all__ = ["Callback", "ProgressBar"]


class Callback:
    """Base class: override any hook. ``on_epoch_end`` may return True to stop training;
    ``on_batch_end`` (after each optimizer step) may return True to end the epoch there and
    stop training (the shortened epoch is validated and logged as usual, over the rows it saw).

    ``state`` is the engine's :class:`~tabular_suite.training.engine.TrainState` (module,
    optimizer, epoch, history, config).

    Examples
    --------
    >>> class StopAtTwo(Callback):
    ...     def on_epoch_end(self, state, logs):
    ...         return logs["epoch"] >= 2
    """

    def on_train_begin(self, state) -> None:
        pass

    def on_batch_end(self, state) -> bool | None:
        return None

    def on_epoch_end(self, state, logs: dict) -> bool | None:
        return None

    def on_train_end(self, state) -> None:
        pass


class ProgressBar(Callback):
    """A rich progress bar over epochs with the latest losses (used when ``verbose``)."""

    def on_train_begin(self, state) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("epochs", total=state.config.max_epochs, info="")

    def on_epoch_end(self, state, logs: dict) -> None:
        info = "  ".join(
            f"{k} {v:.4g}" for k, v in logs.items() if k not in ("epoch", "seconds", "val_seconds", "lr", "rows_per_s")
        )
        self._progress.update(self._task, completed=logs["epoch"], info=info)

    def on_train_end(self, state) -> None:
        self._progress.stop()
