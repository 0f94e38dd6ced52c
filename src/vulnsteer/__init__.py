"""vulnsteer: probe and steer code LLMs for vulnerability detection, with honest evaluation."""

__version__ = "0.1.0"
