"""izkit: a Jupyter-first teaching toolkit for InstructZero (Chen et al., ICML 2024).

Soft prompts on an open-source LLM generate instructions, a black-box LLM scores them zero-shot, and Bayesian
optimisation with the instruction-coupled kernel (paper eq. 9) proposes better soft prompts.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("izkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
