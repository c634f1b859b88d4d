# Colab's kernel imports these before the first cell runs (google.colab registers its
# extensions and output hooks; numpy, PIL, packaging, psutil and setuptools come with them).
# A package the bootstrap changes among them is only visible after a restart.
import importlib
import os

import google.colab
import numpy
import packaging.version
import PIL.Image
import psutil
import setuptools

# The rehearsal's restart leg only (tests/support/colab/rehearse.py --restart-leg): packages that an
# earlier session of the same runtime had imported before the bootstrap cell runs again.
for _name in os.environ.get("COLAB_REHEARSAL_PREIMPORT", "").split():
    importlib.import_module(_name)

del google, importlib, numpy, os, packaging, PIL, psutil, setuptools
