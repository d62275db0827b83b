"""The demo city: its generator, loader and live simulator."""
