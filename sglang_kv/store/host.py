"""Host store: one pinned host buffer (plain memory where pinning is unavailable) that holds the
offloaded payload of every request, each request's rows of one layer contiguous.

``HostArena`` hands out byte ranges of that buffer (first fit over a sorted free list, coalescing on
free; 256-byte aligned so that every row block starts on a cache-line / DMA-friendly boundary).
Payload tensors are views into it, so a selector's ``gather`` reads them directly (zero-copy from
the GPU once the payload is pinned).
"""

from __future__ import annotations

import bisect
import weakref

import torch

ALIGN = 256


class HostStoreFull(RuntimeError):
    """The host store cannot hold one more request's payload."""


class HostArena:
    """Byte ranges of one host buffer of ``capacity`` bytes."""

    def __init__(self, capacity: int, pin: bool):
        if capacity <= 0:
            raise ValueError(f"host store capacity must be > 0 bytes, got {capacity}")
        self.capacity = capacity // ALIGN * ALIGN
        self.pinned = pin
        self.buffer = _host_buffer(self.capacity, pin)
        if pin:  # unregister before the memory can be reused (a later registration would overlap)
            weakref.finalize(self, _cuda_host_unregister, self.buffer.data_ptr())
        self._free: list[tuple[int, int]] = [(0, self.capacity)]  # sorted (offset, size)
        self._used: dict[int, int] = {}  # offset -> size
        self.used_bytes = 0

    def alloc(self, nbytes: int) -> int:
        """Offset of a fresh range of at least ``nbytes`` bytes. Raises HostStoreFull."""
        size = max(ALIGN, -(-nbytes // ALIGN) * ALIGN)
        for i, (off, free) in enumerate(self._free):
            if free >= size:
                if free == size:
                    del self._free[i]
                else:
                    self._free[i] = (off + size, free - size)
                self._used[off] = size
                self.used_bytes += size
                return off
        raise HostStoreFull(
            f"host store full: {nbytes} bytes requested, {self.capacity - self.used_bytes} of "
            f"{self.capacity} free (largest free range {max((s for _, s in self._free), default=0)}); "
            "raise --kv-offload-host-mem"
        )

    def free(self, offset: int) -> None:
        size = self._used.pop(offset)
        self.used_bytes -= size
        i = bisect.bisect(self._free, (offset, size))
        self._free.insert(i, (offset, size))
        # coalesce with the next and the previous range
        if i + 1 < len(self._free) and offset + size == self._free[i + 1][0]:
            size += self._free.pop(i + 1)[1]
            self._free[i] = (offset, size)
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == offset:
            prev_off, prev_size = self._free.pop(i - 1)
            self._free[i - 1] = (prev_off, prev_size + size)

    def view(self, offset: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        nbytes = _numel(shape) * torch.empty((), dtype=dtype).element_size()
        return self.buffer[offset: offset + nbytes].view(dtype).view(shape)


def _host_buffer(nbytes: int, pin: bool) -> torch.Tensor:
    """``nbytes`` of host memory, page-locked and mapped for the GPU when ``pin``.

    Pinned with ``cudaHostRegister`` on a plain allocation rather than ``pin_memory=True``: torch's
    caching host allocator rounds every block up to a power of two (72 GiB would lock 128 GiB).
    """
    buffer = torch.empty(nbytes, dtype=torch.uint8)
    if pin:
        cudart = torch.cuda.cudart()
        flags = 1 | 2  # cudaHostRegisterPortable | cudaHostRegisterMapped
        rc = cudart.cudaHostRegister(buffer.data_ptr(), nbytes, flags)
        if int(rc) != 0:
            raise RuntimeError(f"cudaHostRegister of {nbytes} bytes failed: {cudart.cudaGetErrorString(rc)}")
    return buffer


def _cuda_host_unregister(ptr: int) -> None:
    torch.cuda.cudart().cudaHostUnregister(ptr)


class HostBlock:
    """The payload tensors of one request and layer, placed in the arena (one range for all)."""

    def __init__(self, arena: HostArena, payload: dict[str, torch.Tensor]):
        sizes = {name: -(-t.numel() * t.element_size() // ALIGN) * ALIGN for name, t in payload.items()}
        self.arena = arena
        self.offset = arena.alloc(sum(sizes.values()))
        self.nbytes = sum(sizes.values())
        self.tensors: dict[str, torch.Tensor] = {}
        cursor = self.offset
        for name, t in payload.items():
            view = arena.view(cursor, tuple(t.shape), t.dtype)
            view.copy_(t)
            self.tensors[name] = view
            cursor += sizes[name]

    def release(self) -> None:
        if self.offset is not None:
            self.arena.free(self.offset)
            self.offset = None
            self.tensors = {}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
