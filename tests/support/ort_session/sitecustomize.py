"""ONNX Runtime asked to compute differently on purpose, in every process of a test run.

`make ort-check` runs the notebook suite once per configuration; tests/support/environment.py puts this
folder on PYTHONPATH only when ORT_SESSION_CONFIG names one. Each configuration rounds the
same model's arithmetic differently (other kernels, other summation orders), as another CPU
would: a stored output that differs between them depends on digits no reader needs.
"""

import os

import onnxruntime

CONFIG = os.environ["ORT_SESSION_CONFIG"]
_open = onnxruntime.InferenceSession.__init__


def _configured(self, path_or_bytes, sess_options=None, *args, **kwargs):
    options = sess_options or onnxruntime.SessionOptions()
    if CONFIG == "no-graph-optimisation":
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    else:
        options.intra_op_num_threads = int(CONFIG.split("-")[0])
    _open(self, path_or_bytes, options, *args, **kwargs)


onnxruntime.InferenceSession.__init__ = _configured
