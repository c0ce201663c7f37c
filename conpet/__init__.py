"""ConPET Studio engine: continual parameter-efficient tuning (arXiv 2309.14763), headless.

This package never imports ``app`` or Qt (a test in the suite walks the imports).
"""

__version__ = "0.1.0"
