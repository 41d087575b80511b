"""Core: errors, progress, the schema's names, image reading, input checks. Imports nothing above it."""
