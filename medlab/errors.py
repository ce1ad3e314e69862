"""How MedLab quotes an exception it catches from a library, inside its own error message.

>>> reason(ValueError("bad header\\nmore detail"))
'ValueError: bad header'
>>> reason(RuntimeError("Error(s) in loading state_dict for Linear:\\n\\tsize mismatch for weight"))
'RuntimeError: size mismatch for weight'
"""

from __future__ import annotations


def reason(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (at most 200 characters), skipping a first line
    that only introduces the next one (ends with ``":"``), as PyTorch's messages often do."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
