"""The Gradio app: builds widgets, wires events, draws Plotly figures. All work is done by embedgui.engine."""
