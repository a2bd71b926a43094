"""Firmware developers' tooling: build and cross-compile, type-check, flash over mpremote,
the virtual board, where the interpreters and sources are (`steamer dev`)."""
