"""Keep Roboflow Inference's noise out of notebooks and the command line, and nothing else.

Targeted, not blanket:
- the warnings Inference's import raises (its optional extras, deprecations inside it and its
  pydantic models) are ignored around that import only;
- onnxruntime's "provider not available" (one per GPU provider a CPU lacks, each time a
  session opens) is ignored by its message, for the process;
- Inference's models `print` their load messages ("Creating inference sessions", "CLIP model
  loaded in ..."): those go to the `inference` logger at INFO level instead, where a user who
  wants them can turn them on.
Any other warning still reaches the user.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

NOISY_MODULES = r"(inference|inference_models|inference_sdk|roboflow_workflows|pydantic)(\.|$)"
MISSING_PROVIDER = r"Specified provider '\w+' is not in available provider names"
logger = logging.getLogger("inference")


@contextlib.contextmanager
def quiet_import() -> Iterator[None]:
    """Around Inference's import: its import-time warnings are ignored."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=NOISY_MODULES)
        yield


def log_instead_of_print(model, message: str) -> None:
    logger.info(message)


def quiet_inference_models() -> None:
    """After Inference's import: provider warnings ignored, model messages logged, not printed."""
    from inference.core.models.base import Model

    warnings.filterwarnings("ignore", message=MISSING_PROVIDER, category=UserWarning)
    Model.log = log_instead_of_print
