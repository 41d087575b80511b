"""Discriminators: sklearn feature heads, the pair classifier, the RORem UNet discriminator, specs and save/load."""
