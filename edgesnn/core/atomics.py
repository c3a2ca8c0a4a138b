"""Atomic loads and stores on int64 arrays, for kernels that hand work between threads.

numba has no CPU atomics; these intrinsics emit LLVM's atomic load (acquire) and store
(release), so the plain writes a thread makes before `publish` are seen by the thread whose
`wait_for` returns after it. `relax` is the spin-wait hint (x86 `pause`; nothing elsewhere).
Waits spin: yielding the CPU instead (`sched_yield`) made a two-thread run on a loaded
machine 8x slower still, since the waiting thread then lost whole scheduler slices.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] (an int64 array), read with acquire ordering."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def store_release(typingctx, arr, idx, val):
    """arr[idx] = val (an int64 array), written with release ordering."""
    sig = types.void(arr, idx, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(val, ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def relax(typingctx):
    """The spin-wait hint of the CPU (lets the sibling hyperthread run; saves power)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            fn = builder.module.declare_intrinsic("llvm.x86.sse2.pause",
                                                  fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def publish(flags, i, value):
    """flags[i] = value, after every earlier write of this thread."""
    store_release(flags, i, value)


@njit(cache=True, nogil=True)
def wait_for(flags, i, value, stop):
    """Spin until flags[i] >= value (True) or flags[stop] != 0 (False)."""
    while True:
        if load_acquire(flags, i) >= value:
            return True
        if load_acquire(flags, stop) != 0:
            return False
        relax()
