"""The Gradio web chat over ``qa.Assistant``."""
