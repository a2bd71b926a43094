"""The steamer companion app and the libraries behind it."""
