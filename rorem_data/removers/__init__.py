"""Removers: one spec for diffusers inpainting pipelines and classical OpenCV inpainting."""
