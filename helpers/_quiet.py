"""Keep Roboflow Inference's import and load noise out of notebooks and the command line.

Targeted, not blanket: only the warnings that Inference's own import raises (its optional
extras, deprecations inside it and its pydantic models) and onnxruntime's "provider not
available" for every GPU provider a CPU lacks are filtered, and only around the calls that
raise them; Inference's `print` lines during a model load are captured. Any other warning
still reaches the user.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

NOISY_MODULES = r"(inference|inference_models|inference_sdk|roboflow_workflows|pydantic)(\.|$)"
MISSING_PROVIDER = r"Specified provider '\w+' is not in available provider names"


@contextlib.contextmanager
def quiet_inference() -> Iterator[io.StringIO]:
    """Inside: Inference's import warnings and onnxruntime's provider warnings are ignored and
    standard output is captured (yielded, for a caller that wants to look at it)."""
    captured = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
        warnings.filterwarnings("ignore", module=NOISY_MODULES)
        warnings.filterwarnings("ignore", message=MISSING_PROVIDER, category=UserWarning)
        yield captured
