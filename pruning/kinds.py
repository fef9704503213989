"""The two kinds of pruning as the command lines see them: names, grids and the final target.

Plain names and numbers (no torch), so a pruning script's ``--help`` and the stage declaration read
them without building a model; ``pruning.study.PruningKind`` adds to each what it does (its sweep,
its rule's measure, its fine-tune) and ``pruning.study`` re-exports the grids and the target.
"""

from __future__ import annotations

from dataclasses import dataclass

SPARSITY_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CHANNEL_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FINAL_TARGET = 0.7   # the pruned models every later stage reads: 70% sparsity / 70% of parameters removed


@dataclass(frozen=True)
class KindNames:
    """What names a kind of pruning in files, columns and flags."""

    name: str                    # 'unstructured' | 'structured' (file and checkpoint names)
    x_key: str                   # the sweep's ratio column: 'sparsity' | 'ratio'
    target_key: str              # 'target' (overall sparsity) | 'reduction' (parameters removed)
    grid: tuple[float, ...]      # the sensitivity sweep's default grid

    @property
    def reachable(self) -> float:
        """An upper bound of the target the default grid can reach (every layer at the grid's
        largest ratio r): r of the weights for unstructured pruning; for channel pruning, a conv
        keeps at least (1 - r)^2 of its weights (its inputs and outputs both thinned)."""
        r = max(self.grid)
        return r if self.x_key == "sparsity" else round(1 - (1 - r) ** 2, 4)


UNSTRUCTURED = KindNames("unstructured", "sparsity", "target", SPARSITY_GRID)
STRUCTURED = KindNames("structured", "ratio", "reduction", CHANNEL_GRID)
