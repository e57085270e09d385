"""Loaders turn external telemetry formats into the platform's landing files."""
