"""Everything that works without a UI. Never imports gradio (tests/test_architecture.py enforces it)."""
