"""The kernel manager the course's tools start labs with: encrypted where the kernel allows it.

ipykernel 7 warns at every start that a kernel "is running over TCP without encryption" unless its
manager provisions CurveZMQ keys. The kernels run on the loopback address, so the warning is no
threat here, but it is the first thing a newcomer reads: :class:`EncryptedKernelManager` asks
for the keys wherever pyzmq supports them (kernels that do not declare support run as before).
"""

from __future__ import annotations

import zmq
from jupyter_client.manager import KernelManager
from traitlets import CaselessStrEnum


class EncryptedKernelManager(KernelManager):
    """:class:`jupyter_client.KernelManager` with ``transport_encryption="auto"`` by default."""

    transport_encryption = CaselessStrEnum(
        ["disabled", "auto", "required"],
        default_value="auto" if zmq.has("curve") else "disabled",
        config=True,
        help="CurveZMQ keys for kernels that declare support ('auto'); 'disabled' where pyzmq has no Curve.",
    )
