"""phi4-recipes: the Phi-4 training recipe (arXiv 2412.08905) on Hugging Face transformers and TRL."""

__version__ = "0.1.0"
