"""Back-off, shared by the relay, consumers and delivery workers."""


def backoff_delay(base: float, attempt: int, cap: float = 30.0) -> float:
    """Exponential back-off for the n-th consecutive failure (1-based): base, 2×base, 4×base… capped."""
    return min(cap, base * 2 ** (max(attempt, 1) - 1))
