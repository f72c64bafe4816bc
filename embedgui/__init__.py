"""embedgui: fine-tune text-embedding models with InfoNCE, from a Gradio app or the command line."""

__version__ = "0.1.0"
