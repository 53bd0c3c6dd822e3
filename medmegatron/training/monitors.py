"""Guards that watch a continual-pretraining run: forgetting, loss spikes, preemption signals."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field


@dataclass
class ForgettingMonitor:
    """General-domain validation loss against its step-0 value (catastrophic forgetting).

    Continual pretraining on medical text trades general ability for domain ability; the replayed
    general data (Meditron's 1%, Me-LLaMA's 4/20) is only worth its tokens if someone watches that
    trade. A rise above `threshold` (relative) is reported as a warning event each time it happens.
    """

    source: str | None
    threshold: float
    baseline: float | None = None

    def check(self, iteration: int, losses_by_source: dict[str, float]) -> dict | None:
        if self.source is None or self.source not in losses_by_source:
            return None
        value = losses_by_source[self.source]
        if self.baseline is None:
            self.baseline = value
            return None
        rise = value / self.baseline - 1.0
        if rise > self.threshold:
            return {"iteration": iteration, "event": "forgetting", "source": self.source,
                    "valid_loss": value, "baseline": self.baseline, "relative_rise": rise}
        return None


@dataclass
class SpikeDetector:
    """Flags a training loss far above its running mean (exponential, after a short warm-in)."""

    threshold: float
    decay: float = 0.9
    warmup: int = 5
    _mean: float | None = None
    _seen: int = 0

    def check(self, iteration: int, loss: float) -> dict | None:
        event = None
        if self._mean is not None and self._seen >= self.warmup and loss > (1 + self.threshold) * self._mean:
            event = {"iteration": iteration, "event": "loss_spike", "loss": loss,
                     "running_mean": self._mean}
        else:  # a spike does not pull the reference up
            self._mean = loss if self._mean is None else self.decay * self._mean + (1 - self.decay) * loss
        self._seen += 1
        return event


@dataclass
class PreemptionSignal:
    """Remembers SIGTERM (Slurm preemption, `scancel`) so the loop can checkpoint and stop.

    The handler only sets a flag; the loop agrees on it across ranks after a step, so every rank
    saves the same step. Installed only from the main thread (signals cannot be set elsewhere).
    """

    received: bool = False
    _previous: dict = field(default_factory=dict)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = True

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
