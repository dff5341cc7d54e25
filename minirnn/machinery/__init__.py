"""The speed machinery: everything of minirnn that reaches beyond NumPy's arrays into the process and the machine.

- ``second_process``: the reverse direction of bidirectional layers in a second process (an opt-in speed-up, beyond
  torch). NumPy runs elementwise work on one core, and threads cannot share a time step's work (the GIL changes
  hands at every ufunc call, and the calls are small); but the two directions of a bidirectional layer are
  independent within the layer, so a second *process* can run the reverse one while this one runs the forward
  one: one exchange per layer and direction, not per step, each process with one BLAS thread::

      minirnn.set_direction_processes(2)   # from now on, bidirectional layers use a second process
      minirnn.set_direction_processes(1)   # one process (the default); stops the second one

  The same engine runs on the same arrays there, so the results equal the one-process results. Its memory is its
  own: a tracemalloc or RSS figure of this process does not include it.
- ``runners``: where a direction runs (here or there), behind one interface for ``recurrent.py``.
- ``link``: the pipe and shared-memory arenas between the two processes; ``worker``: the second process's loop.
- ``blas``: the BLAS thread count; ``malloc``: ``keep_freed_memory()``, an explicit, process-wide malloc setting.

Threads: one second process serves the whole process, one exchange at a time; other threads wait their turn.
The core (``engine``, ``kernels``) never imports this package, and importing minirnn changes nothing process-wide:
threads, BLAS and malloc are only touched by these explicit calls.
"""
from .malloc import keep_freed_memory
from .second_process import get_direction_processes, set_direction_processes

__all__ = ["get_direction_processes", "keep_freed_memory", "set_direction_processes"]
