"""The consumer's faces on the command line: `steamer` (main), its consumer commands
(consumer) and the session history (history), thin layers over the steamer library."""
