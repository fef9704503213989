"""Step runners for tests: the CUDA-graphed step's control flow, simulated on the CPU."""

from common.train_step import GraphedStep


class SimulatedCapture(GraphedStep):
    """The graphed step as it runs on CUDA, on the CPU: eager warm-up steps, then a 'capture'
    whose graph replays the step; ``fail`` makes the capture raise after it touched the state, as
    a step that reads a tensor on the host does inside ``torch.cuda.graph``. ``log`` receives
    ('step', replayed) for every call."""

    fail = False
    log: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.capture = True

    def __call__(self, x, y, lr):
        self.log.append(("step", self.graph is not None))
        super().__call__(x, y, lr)

    def _warm_up(self):
        self._eager()

    def _record_graph(self):
        if self.fail:
            self._eager()     # what a failed capture may have touched: BatchNorm stats, moments...
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        step = self

        class Graph:
            def replay(self):
                step._eager()
        return Graph()


class FailingCapture(SimulatedCapture):
    fail = True


class BrokenCapture(SimulatedCapture):
    """A wrong capture: its graph skips every second update (a replay that silently does less)."""

    def _record_graph(self):
        step, calls = self, [0]

        class Graph:
            def replay(self):
                calls[0] += 1
                if calls[0] % 2:
                    step._eager()
        return Graph()
