"""A stand-in for Colab's `google.colab` package (the real one is not published on PyPI).

What the project touches: the module's presence in `sys.modules` (the kernel imports it at
start, which is how the notebooks know they are on Colab) and `userdata.get` for secrets.
"""
