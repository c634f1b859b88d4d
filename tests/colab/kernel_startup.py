# Colab's kernel imports these before the first cell runs (google.colab registers its
# extensions and output hooks; numpy, PIL, packaging, psutil and setuptools come with them).
# A package the bootstrap changes among them is only visible after a restart.
import google.colab
import numpy
import packaging.version
import PIL.Image
import psutil
import setuptools

del google, numpy, packaging, PIL, psutil, setuptools
