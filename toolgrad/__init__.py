"""The answer-first (ToolGrad) tool-use data generator."""

__version__ = "0.1.0"
