"""The steamer's portable firmware: it asks its board for every piece of hardware."""
