# JupyterLab's settings for learners (`make lab` points JUPYTER_CONFIG_PATH at this folder).
import os

import zmq

c = get_config()  # noqa: F821 (Jupyter provides it)
# Kernels talk to the server over encrypted sockets where pyzmq can, so ipykernel does not warn
# that it "is running over TCP without encryption" at every start.
if zmq.has("curve"):
    c.KernelManager.transport_encryption = "auto"
# The course's kernel only (`make install` registers it): a lab opens in it, whatever other
# Python kernels the machine has, and no "select a kernel" dialog asks.
c.KernelSpecManager.allowed_kernelspecs = {"medlab"}
c.MultiKernelManager.default_kernel_name = "medlab"  # a new notebook or console starts it too
# nbgrader is the instructors' tool (`make grading`, then its command line); a learner's
# JupyterLab does without its panels, which would look for a course that is not there.
c.ServerApp.jpserver_extensions = {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.validate_assignment": False,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
}
# PyTorch's profiler (lab 10) would log trace markers from C++ to this terminal at every use.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")
