"""paperbridge: new research papers, where researchers already are."""

__version__ = "0.1.0"
