"""Step runners for tests: the CUDA-graphed step's control flow, simulated on the CPU, and graphed
steps broken on purpose (the graph check must fail each)."""

from common.train_step import GraphedStep


class SimulatedCapture(GraphedStep):
    """The graphed step as it runs on CUDA, on the CPU: eager warm-up steps, then a 'capture'
    whose graph replays the step; ``capture=False`` runs it eagerly as on a CPU. The capture fails
    (raises after touching the state, as ``torch.cuda.graph`` may) when ``fail`` is set or the loss
    reads the host (``loss_fn.reads_host``, as ``study.graph_check``'s forced failure does). ``log``
    receives ('step', replayed) for every call."""

    fail = False
    log: list = []

    def __init__(self, *args, capture=True, **kwargs):
        super().__init__(*args, capture=capture, **kwargs)
        self.capture = capture

    def __call__(self, x, y, lr):
        self.log.append(("step", self.graph is not None))
        super().__call__(x, y, lr)

    def _warm_up(self):
        self._eager()

    def _replay(self):
        self._eager()

    def _record_graph(self):
        if self.fail or getattr(self.loss_fn, "reads_host", False):
            self._eager()     # what a failed capture may have touched: BatchNorm stats, moments...
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        step = self

        class Graph:
            def replay(self):
                step._replay()
        return Graph()


class FailingCapture(SimulatedCapture):
    fail = True


class SkipsEveryTenthUpdate(SimulatedCapture):
    """A wrong capture: every tenth replay does nothing."""

    replays = 0

    def _replay(self):
        self.replays += 1
        if self.replays % 10:
            self._eager()


class SkipsEverySecondUpdate(SkipsEveryTenthUpdate):
    def _replay(self):
        self.replays += 1
        if self.replays % 2:
            self._eager()


class ReplaysTheFirstBatch(SimulatedCapture):
    """A wrong capture: the batch is never copied into the graph's input after capture."""

    def __call__(self, x, y, lr):
        if self.graph is not None:
            x, y = self.static_x, self.static_y
        super().__call__(x, y, lr)


class KeepsTheFirstLearningRate(SimulatedCapture):
    """A wrong capture: the learning rate stays the one it had when the step was captured."""

    def __call__(self, x, y, lr):
        if self.graph is not None:
            lr = float(self.lr)
        super().__call__(x, y, lr)


class FallsBackWithoutRestoring(SimulatedCapture):
    """A wrong fallback: after a failed capture it trains on from what the attempt left."""

    def _restore(self, state):
        pass
