"""Counts of the fault tests (interrupts, thread misuse, in-place changes, kills, bytes left), printed at the end of the run."""
from collections import defaultdict

COUNTS: dict[str, list[int]] = defaultdict(lambda: [0, 0])


def record(what: str, tried: int, ok: int) -> None:
    """``tried`` events of kind ``what`` were provoked and ``ok`` of them ended in a correct result or a clear error."""
    COUNTS[what][0] += tried
    COUNTS[what][1] += ok
