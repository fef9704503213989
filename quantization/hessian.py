"""Hutchinson's estimator of Hessian traces (as HAWQ-v2 uses to rank layers for bit allocation).

tr(H) = E_v[v^T H v] for Rademacher v; each sample needs one Hessian-vector product, computed by
double back-propagation, so the Hessian itself is never formed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def hutchinson_trace(loss: torch.Tensor, params: Sequence[torch.Tensor], samples: int = 32,
                     generator: torch.Generator | None = None) -> list[float]:
    """Estimated trace of the Hessian block of ``loss`` for each tensor in ``params``.

    ``loss`` must be a scalar built with a differentiable graph to ``params``. Returns one float
    per parameter tensor: the mean of ``samples`` Rademacher quadratic forms v^T H v.
    """
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    totals = [0.0] * len(params)
    for i in range(samples):
        vs = [torch.randint(0, 2, p.shape, generator=generator, device=p.device).to(p.dtype) * 2 - 1
              for p in params]
        hvs = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=i < samples - 1)
        for j, (v, hv) in enumerate(zip(vs, hvs)):
            totals[j] += float((v * hv).sum())
    return [t / samples for t in totals]
