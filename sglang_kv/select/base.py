"""The selector interface: summarize a request's prompt keys once, then pick top-k tokens per step.

A selector sees one layer of one request at a time and knows nothing about SGLang:

* ``build(keys, values)`` runs once, when the prompt is complete, on the *candidate* tokens (the
  prompt minus the exact sink and local windows) and returns the method's summary;
* ``select(q, summary, k, scale)`` runs every decode step and returns, for each kv head, the
  ``k`` candidate indices to attend to, in ascending order.

Scoring convention shared by every selector (the papers'): per query head a softmax over all
candidates of ``scale * q . key_estimate``, then the max over the query heads of each GQA group,
then top-k per kv head (each kv head selects its own set).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import torch


class ModelShape(NamedTuple):
    """Attention shape of one layer on one tensor-parallel rank."""

    num_q_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        return self.num_q_heads // self.num_kv_heads


class Selector(ABC):
    """One selection method. Subclasses set ``name`` and implement ``build`` and ``select``."""

    name: ClassVar[str]

    def __init__(self, shape: ModelShape, config: Any):
        if shape.num_q_heads % shape.num_kv_heads:
            raise ValueError(f"query heads {shape.num_q_heads} not a multiple of kv heads {shape.num_kv_heads}")
        self.shape = shape
        self.config = config

    @abstractmethod
    def build(self, keys: torch.Tensor, values: torch.Tensor) -> Any:
        """Summarize the candidate tokens of one layer.

        keys, values: ``[num_tokens, num_kv_heads, head_dim]`` post-RoPE, in position order.
        Returns the method's summary (device-side state).
        """

    @abstractmethod
    def select(self, q: torch.Tensor, summary: Any, k: int, scale: float) -> torch.Tensor:
        """Top-``k`` candidate indices per kv head for one decode query.

        q: ``[num_q_heads, head_dim]``. Returns int64 ``[num_kv_heads, min(k, num_tokens)]``, each
        row sorted ascending.
        """

    @abstractmethod
    def summary_bytes(self, summary: Any) -> int:
        """Device bytes held by ``summary``."""


def group_max_softmax(logits: torch.Tensor, num_kv_heads: int) -> torch.Tensor:
    """Softmax over tokens per query head, then max over each GQA group.

    logits: ``[num_q_heads, num_tokens]`` (query heads of one kv head are contiguous, as in
    SGLang and Hugging Face). Returns float32 ``[num_kv_heads, num_tokens]``.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    return probs.view(num_kv_heads, -1, probs.shape[-1]).amax(dim=1)


def topk_sorted(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores per row, sorted ascending. scores: ``[rows, n]``."""
    k = min(k, scores.shape[-1])
    idx = torch.topk(scores, k, dim=-1, sorted=False).indices
    return torch.sort(idx, dim=-1).values
