"""cds: AI clinical decision-support and imaging inference engine."""

from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout: default registry, data and run folders
